"""Private: short, safe text about values and errors, for messages and records.

One home for what the writers (:mod:`logstream._sinks`), the reader of untrusted files
(:mod:`logstream._reader`) and the command line (:mod:`logstream._cli`) all need: an
error as ``"Type: message"`` that never raises, text cut to one printable line, a short
description of a JSON value for a message, and the strict-JSON refusal of ``NaN``.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Union

__all__ = ["describe", "error_text", "printable", "refuse_constant"]

REASON_LIMIT = 300
"""How many characters a one-line reason may hold, by default."""

_PEP_479_ARGS = (("generator raised StopIteration",), ("async generator raised StopIteration",))


def error_text(error: Union[BaseException, str, None]) -> Optional[str]:
    """Return ``"Type: message"`` for ``error`` (``"Type"`` if it has no message).

    Never raises: a message whose ``__str__`` raises is named as such. A ``RuntimeError``
    that Python made of a ``StopIteration`` leaving a generator names the
    ``StopIteration``, which is what the code raised. A string or ``None`` is returned
    as it is.
    """
    if error is None or isinstance(error, str):
        return error
    cause = error.__cause__
    if (
        type(error) is RuntimeError
        and isinstance(cause, StopIteration)
        and error.args in _PEP_479_ARGS
    ):
        error = cause
    name = type(error).__name__
    try:
        text = str(error)
        if not isinstance(text, str):
            raise TypeError("__str__ returned a non-string")  # caught just below
    except Exception as exc:
        text = f"<str() raised {type(exc).__name__}>"
    return f"{name}: {text}" if text else name


def printable(text: str, limit: int = REASON_LIMIT) -> str:
    """Return ``text`` on one line, control and bidi characters escaped, cut to ``limit``."""
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text[: limit + 1])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def describe(value: Any) -> str:
    """Return a short description of a JSON value for a message (at most about 40 characters)."""
    if isinstance(value, dict):
        keys = ", ".join(describe(key) for key in list(value)[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"an object with keys {keys}{more}" if value else "an empty object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > 10**30:
        return "a huge number"
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def refuse_constant(name: str) -> Any:
    """Refuse ``NaN``, ``Infinity`` and ``-Infinity``: a ``parse_constant`` for ``json.loads``.

    Raises:
        ValueError: Always (``json.loads`` callers turn it into their own error).
    """
    msg = f"{name} is not JSON"
    raise ValueError(msg)
