"""The live viewer: the viewer page and a run's resumable SSE stream, on one ASGI app.

This module's one responsibility is ``logstream serve``: putting a run into a
:class:`~logstream.PositionedLog` (from a recording being written, or a target run through
``stream_log``), and serving it with :class:`~logstream.asgi.RunLogApp` plus one route,
``GET /``, for the viewer page (:mod:`logstream._viewer`) in live mode. The page follows
``runs/<run>/stream``; its ``EventSource`` resumes after a dropped connection with
``Last-Event-ID``, and a reload starts from a snapshot. Running the app needs ``uvicorn``
(the ``serve`` extra); building it does not.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

from ._errors import LogFileError, SinkClosedError
from ._fanout import PositionedLog
from ._patches import RunLogPatch
from ._reader import DEFAULT_MAX_LINE_BYTES, follow_jsonl
from ._viewer import page_html
from ._wire import LogSource
from .asgi import Request, RunLogApp, Send

__all__ = ["follow_into", "viewer_app"]

RUN_ID = "run"
"""The id the served run has in the app's routes (``/runs/run/stream``)."""

_PAGE_HEADERS = [
    (b"content-type", b"text/html; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def viewer_app(
    source: LogSource,
    *,
    title: str = "live run",
    keep_alive: float = 15.0,
    retry: int = 1000,
    waiting: Optional[Callable[[], Optional[str]]] = None,
) -> RunLogApp:
    """Return an ASGI app serving the live viewer page for ``source`` and its stream.

    Routes: ``GET /`` (the page), and :class:`~logstream.asgi.RunLogApp`'s ``/runs``,
    ``/runs/run/state`` and ``/runs/run/stream``.

    Args:
        source: The run log to serve (a :class:`~logstream.PositionedLog`, or any
            :class:`~logstream._wire.LogSource`).
        title: The page's title.
        keep_alive: Seconds without a frame before the stream sends a keep-alive comment.
        retry: Milliseconds a browser waits before reconnecting a dropped stream.
        waiting: Called (it must not block) for each page served: a note such as
            ``"waiting for run.jsonl to appear"`` while the run is not there yet, which
            the page shows until the run's first patch arrives; ``None`` once it is.

    Returns:
        The app.
    """
    app = RunLogApp({RUN_ID: source}, keep_alive=keep_alive, retry=retry)

    @app.route("GET", "/")
    async def page(request: Request, send: Send) -> None:
        live = {"stream": f"runs/{RUN_ID}/stream"}
        note = None if waiting is None else waiting()
        if note is not None:
            live["waiting"] = note
        body = page_html(None, title=title, live=live)
        data = body.encode("utf-8")
        headers = [*_PAGE_HEADERS, (b"content-length", str(len(data)).encode("ascii"))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": data})

    return app


def follow_into(
    log: PositionedLog,
    path: str,
    *,
    poll_interval: float = 0.1,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    on_error: Optional[Callable[[str], Any]] = None,
) -> threading.Thread:
    """Start a daemon thread that appends a recording's patches to ``log`` as it grows.

    The file is read from its first line and followed until its end record, which ends
    ``log`` with the recording's error. A line that is not a valid record ends ``log`` with
    the :class:`~logstream.LogFileError` (and calls ``on_error`` with its message).

    Args:
        log: The log to feed (its one producer).
        path: The recording.
        poll_interval: Seconds between looks at a file with nothing new.
        max_line_bytes: The longest line accepted.
        on_error: Called with the one-line message when reading fails.

    Returns:
        The started thread.
    """

    def records() -> Iterator[Any]:
        return follow_jsonl(path, poll_interval=poll_interval, max_line_bytes=max_line_bytes)

    def run() -> None:
        try:
            for record in records():
                if isinstance(record, RunLogPatch):
                    log.append(record)
                else:
                    log.end(record.error)
        except (LogFileError, OSError) as exc:
            message = f"{type(exc).__name__}: {exc}"
            if on_error is not None:
                on_error(message)
            with contextlib.suppress(SinkClosedError):  # it ended before the bad line
                log.end(message)

    thread = threading.Thread(target=run, name=f"logstream-follow-{log.log_id}", daemon=True)
    thread.start()
    return thread
