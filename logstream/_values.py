"""Walking values: the copy every recorded value gets, and the constants value walkers share.

Private: the one place that knows which types are plain scalars and how a value's
containers are copied. :func:`snapshot` is what the tracer applies to every value it
records, so a host that mutates its data after reporting it cannot change what was
already streamed.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

SCALAR_TYPES: frozenset[type] = frozenset({str, int, float, bool, type(None)})
"""The exact types no walker looks into or copies (subclasses are not in it)."""

SCALARS: tuple[type, ...] = (str, int, float, bool, type(None))
"""The same types for ``isinstance`` checks (which subclasses pass)."""

MISSING: Any = object()
"""A marker for "no value", where ``None`` is a value."""


def snapshot(value: Any) -> Any:
    """Return ``value`` with its dicts and lists copied, recursively; cycles are kept.

    Dict subclasses become plain dicts (as LangChain's tracer copies them); any other
    object is shared, not copied. A value nested too deeply to copy is passed through
    uncopied (logged at debug level) rather than failing the host program.

    The usual values (a scalar or object, a flat dict or list) take a fast path.

    Example:
        >>> inner = [1]
        >>> copied = snapshot({"a": inner})
        >>> copied == {"a": [1]}, copied["a"] is inner
        (True, False)
    """
    kind = type(value)
    if kind in SCALAR_TYPES:
        return value
    if kind is dict:
        for item in value.values():
            if type(item) not in SCALAR_TYPES:
                break
        else:
            return value.copy()
    elif kind is list:
        for item in value:
            if type(item) not in SCALAR_TYPES:
                break
        else:
            return value.copy()
    elif not isinstance(value, (dict, list)):
        return value
    try:
        return _copy(value, {})
    except RecursionError:
        logger.debug("value too deeply nested to snapshot; passing it through uncopied")
        return value


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    if isinstance(value, dict):
        done = memo.get(id(value))
        if done is not None:
            return done
        new: dict[Any, Any] = {}
        memo[id(value)] = new
        for k, v in value.items():
            new[k] = v if isinstance(v, SCALARS) else _copy(v, memo)
        return new
    if isinstance(value, list):
        done = memo.get(id(value))
        if done is not None:
            return done
        out: list[Any] = []
        memo[id(value)] = out
        out.extend(v if isinstance(v, SCALARS) else _copy(v, memo) for v in value)
        return out
    return value
