r"""The run viewer page: one self-contained HTML file that draws a run log as a waterfall.

This module's one responsibility is building the page. The page's assets (``viewer.html``,
``viewer.css``, ``viewer.js``, package data in ``logstream/viewer/``) are inlined into one
file, with no network access: a Content-Security-Policy allows only the page's own script
(by a fresh nonce), its inline style, and (live) connections to the server it came from.
The recording's patches go in as JSON inside ``<script type="application/json">``, with
``<``, ``>``, ``&`` and the line separators escaped as ``\uXXXX``, so no value can close
the element; the page's script replays them with its own JSON Patch applier, the same code
that applies live Server-Sent Events frames (``live=``). The script shows every value as
text, never as markup.

Example:
    >>> import io
    >>> from logstream import read_jsonl
    >>> text = '{"ops":[{"op":"replace","path":"","value":{"name":"</script>","logs":{}}}]}\n'
    >>> page = page_html(read_jsonl(io.StringIO(text), require_end=False))
    >>> page.count("</script>")  # the page's two script elements; the value is escaped
    2
"""

from __future__ import annotations

import html
import json
import re
import secrets
from importlib import resources
from typing import Any, Optional

from ._reader import Recording
from ._text import printable

__all__ = ["page_html"]

_MARKER = re.compile(r"@@(CSS|JS|DATA|TITLE|NONCE)@@")
_SCRIPT_UNSAFE = re.compile("[<>&\u2028\u2029]")


def script_json(value: Any) -> str:
    r"""Return ``value`` as JSON text that is safe inside an HTML ``<script>`` element.

    ``<``, ``>``, ``&``, U+2028 and U+2029 become ``\u003c``-style escapes (the text is
    ASCII: every other non-ASCII character is escaped by ``json.dumps``), so no string
    in it can end the element or start a comment.

    Args:
        value: A JSON value (dicts, lists, strings, numbers, booleans, ``None``).

    Returns:
        The JSON text.

    Example:
        >>> script_json({"a": "</script><b>&"})
        '{"a":"\\u003c/script\\u003e\\u003cb\\u003e\\u0026"}'
    """
    text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    return _SCRIPT_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _asset(name: str) -> str:
    return resources.files("logstream").joinpath("viewer", name).read_text(encoding="utf-8")


def page_html(
    recording: Optional[Recording],
    *,
    title: Optional[str] = None,
    live: Optional[dict[str, str]] = None,
) -> str:
    """Return the viewer page for ``recording`` as one self-contained HTML document.

    Args:
        recording: The recording whose patches the page replays; ``None`` for a live page
            that starts empty.
        title: The page title and heading (default: the recording's source name).
        live: For a live page, ``{"stream": url}``: the resumable SSE endpoint the page
            follows (a relative URL on the server that serves the page); with
            ``"waiting": note``, the page shows the note until the first patch arrives.

    Returns:
        The HTML text.
    """
    if title is None:
        title = recording.source if recording is not None else "live run"
    data: dict[str, Any] = {
        "source": title,
        "patches": [] if recording is None else [patch.ops for patch in recording.patches],
        "times": None,
        "end": None,
        "live": live,
    }
    if recording is not None and any(when is not None for when in recording.times):
        data["times"] = list(recording.times)
    if recording is not None and recording.end is not None:
        data["end"] = {"patches": recording.end.patches, "error": recording.end.error}
    values = {
        "CSS": _asset("viewer.css"),
        "JS": _asset("viewer.js"),
        "DATA": script_json(data),
        "TITLE": html.escape(f"{printable(title, 200)} - logstream viewer"),
        "NONCE": secrets.token_urlsafe(18),
    }
    return _MARKER.sub(lambda m: values[m.group(1)], _asset("viewer.html"))
