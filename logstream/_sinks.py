r"""Writing run logs: JSON Lines and Server-Sent Events sinks.

This module's one responsibility is turning patches into text. A sink takes patches
(from a handler, a :class:`~logstream._tracer.Tracer` or :func:`~logstream.stream_log`)
and writes one record per patch, then an end record. Reading a recording back, as
untrusted data, is :mod:`logstream._reader`'s job.

The JSON Lines format (UTF-8, one JSON object per line, ``\n`` after each):

=====================================================  =====================================
line                                                   meaning
=====================================================  =====================================
``{"ops": [{"op": "add", "path": ..., ...}, ...]}``    one patch: RFC 6902 ops, in order (the
                                                       payload LangServe's ``stream_log``
                                                       endpoint sends)
``{"ops": [...], "time": 1767225600.5}``               a patch written with ``timestamps=True``:
                                                       when it was written (epoch seconds)
``{"end": true, "patches": 12, "error": null}``        the last line: the stream ended after
                                                       12 patches; ``error`` is ``null``, or
                                                       ``"ValueError: boom"`` if the traced
                                                       code raised
=====================================================  =====================================

A bare JSON array of ops is read as a patch too, so the output of other RFC 6902 tools
replays. The Server-Sent Events frames carry the same JSON: ``event: data`` with the patch
object, then ``event: end`` with the end record's ``patches`` and ``error``.

Example:
    >>> import io
    >>> from logstream import RunLogPatch, read_jsonl
    >>> out = io.StringIO()
    >>> with JsonLinesSink(out) as sink:
    ...     sink.write(RunLogPatch({"op": "replace", "path": "", "value": {"logs": {}}}))
    >>> print(out.getvalue(), end="")
    {"ops":[{"op":"replace","path":"","value":{"logs":{}}}]}
    {"end":true,"patches":1,"error":null}
    >>> read_jsonl(io.StringIO(out.getvalue())).state
    {'logs': {}}
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from types import TracebackType
from typing import IO, Any, Callable, Optional, Union

from ._errors import NotAPatchError, SinkClosedError, SinkTargetError
from ._patches import JsonPatchOp, RunLog, RunLogPatch, check_op
from ._serialize import dumps
from ._text import error_text
from ._wire import Frame, LogEnd, WireItem, error_payload, format_event_id

__all__ = [
    "JsonLinesSink",
    "SseSink",
    "asse_frames",
    "patch_ops",
    "sse_error",
    "sse_frames",
    "sse_wire",
]

Target = Union[str, "os.PathLike[str]", IO[str], IO[bytes]]
"""Where a sink writes: a file name (created or truncated), or an open text or binary stream."""

PatchSource = Union[RunLogPatch, Sequence[JsonPatchOp]]
"""What a sink takes: a :class:`RunLogPatch`, or a list of its ops."""


def _ops_of(patch: PatchSource) -> Sequence[JsonPatchOp]:
    if isinstance(patch, RunLog):
        msg = (
            "a sink takes patches, not RunLog states: a RunLog holds every op so far "
            "(stream with diff=True, or write RunLogPatch(*log.ops) once)"
        )
        raise NotAPatchError(patch, "sink write", msg)
    if isinstance(patch, RunLogPatch):
        ops: Sequence[JsonPatchOp] = patch.ops
    elif isinstance(patch, (list, tuple)):
        ops = patch
    else:
        msg = f"a sink takes a RunLogPatch or a list of ops, not {type(patch).__name__}"
        raise NotAPatchError(patch, "sink write", msg)

    def fail(reason: str) -> NotAPatchError:
        msg = f"can't write the patch to a sink: {reason}; its reader would refuse it"
        return NotAPatchError(patch, "sink write", msg)

    for index, op in enumerate(ops, 1):
        check_op(op, index, fail)
    return ops


def patch_ops(patch: PatchSource) -> Sequence[JsonPatchOp]:
    """Return the ops of ``patch``, checked as every sink checks them (for other writers).

    Raises:
        NotAPatchError: ``patch`` is a :class:`RunLog` state, not a patch, or has an op
            its reader would refuse.
    """
    return _ops_of(patch)


class _Sink:
    """Shared plumbing: the target, a lock, the count, the end record, context management."""

    def __init__(self, target: Target, *, flush: bool = True) -> None:
        self._lock = threading.Lock()
        self._flush = flush
        self._owned: Optional[IO[bytes]] = None
        self._write: Callable[[str], Any]
        self._stream: Any
        if isinstance(target, (str, os.PathLike)):
            self._owned = open(target, "wb")
            self._stream = self._owned
            self.name = os.fspath(target)
        elif hasattr(target, "write"):
            self._stream = target
            self.name = str(getattr(target, "name", "<stream>"))
        else:
            msg = (
                f"a sink writes to a file name or an open stream (with .write), not "
                f"{type(target).__name__}; pass a path or e.g. open(path, 'w')"
            )
            raise SinkTargetError(msg)
        if self._owned is not None or _is_binary(self._stream):
            stream = self._stream
            self._write = lambda text: stream.write(text.encode("ascii"))
        else:
            self._write = self._stream.write
        self.patches = 0
        """How many patches were written so far."""
        self.ended = False
        """Whether the end record was written (or the sink closed)."""

    def _format_patch(self, number: int, ops: Sequence[JsonPatchOp]) -> str:
        raise NotImplementedError

    def _format_end(self, patches: int, error: Optional[str]) -> str:
        raise NotImplementedError

    def _emit(self, text: str) -> None:
        self._write(text)
        if self._flush:
            self._stream.flush()

    def write(self, patch: PatchSource) -> None:
        """Write one patch.

        Args:
            patch: A :class:`RunLogPatch`, or a list of its ops. Values that are not JSON
                are written as :func:`~logstream.dumps` renders them.

        Raises:
            SinkClosedError: The sink has ended or closed (a ``ValueError``).
            NotAPatchError: ``patch`` is a :class:`RunLog` state, not a patch at all, or
                has an op of the wrong shape (a ``TypeError``).
        """
        ops = _ops_of(patch)
        with self._lock:
            if self.ended:
                msg = f"can't write a patch to {self.name}: the sink has ended"
                raise SinkClosedError(msg)
            text = self._format_patch(self.patches + 1, ops)
            self._emit(text)
            self.patches += 1

    def end(self, error: Union[BaseException, str, None] = None) -> None:
        """Write the end record, then close the file if the sink opened it.

        Args:
            error: What the traced code raised, if it failed; written as
                ``"Type: message"``.

        Raises:
            SinkClosedError: The sink has already ended or closed.
        """
        with self._lock:
            if self.ended:
                msg = f"can't end {self.name}: the sink has already ended"
                raise SinkClosedError(msg)
            self._emit(self._format_end(self.patches, error_text(error)))
            self.ended = True
            self._close_owned()

    def close(self) -> None:
        """End the sink without an end record, so readers see the recording as incomplete.

        Closes the file if the sink opened it; a stream passed in is flushed, not closed.
        Closing twice, or after :meth:`end`, does nothing.
        """
        with self._lock:
            if not self.ended:
                self.ended = True
                self._stream.flush()
            self._close_owned()

    def _close_owned(self) -> None:
        if self._owned is not None:
            self._owned.close()
            self._owned = None

    @contextlib.contextmanager
    def _ending(self) -> Iterator[None]:
        """Write the end record after the block, naming its error if it raised one."""
        try:
            yield
        except BaseException as exc:
            if not self.ended:
                self.end(exc)
            raise
        self.end()

    def consume(self, patches: Iterable[PatchSource]) -> int:
        """Write every patch of ``patches``, then the end record.

        If iterating ``patches`` raises (e.g. :func:`~logstream.stream_log` passing on the
        traced code's error), the end record names the error, and the error propagates.

        Args:
            patches: The patches, e.g. a handler or ``stream_log(...)``.

        Returns:
            How many patches were written.
        """
        with self._ending():
            for patch in patches:
                self.write(patch)
        return self.patches

    async def aconsume(self, patches: AsyncIterable[PatchSource]) -> int:
        """Write every patch of the async iterable ``patches``, then the end record.

        Args:
            patches: The patches, e.g. a handler or ``astream_log(...)``.

        Returns:
            How many patches were written.
        """
        with self._ending():
            async for patch in patches:
                self.write(patch)
        return self.patches

    def __enter__(self) -> _Sink:
        """Return the sink."""
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Write the end record (naming ``exc`` if the block raised) unless already ended."""
        if not self.ended:
            self.end(exc)
        self._close_owned()


def _is_binary(stream: Any) -> bool:
    if isinstance(stream, io.TextIOBase):
        return False
    if isinstance(stream, (io.RawIOBase, io.BufferedIOBase)):
        return True
    return "b" in str(getattr(stream, "mode", ""))


class JsonLinesSink(_Sink):
    """Write patches as JSON Lines: ``{"ops": [...]}`` per patch, then an end record.

    Each line is strict ASCII JSON written by :func:`~logstream.dumps`, so a value that is
    not JSON never fails the write. Lines are flushed as they are written (``flush=True``),
    so ``logstream replay --follow`` can watch the file live. Thread-safe.

    Args:
        target: A file name (created or truncated, and closed by :meth:`end` or
            :meth:`close`), or an open text or binary stream (flushed, never closed).
        flush: Flush after every line.
        timestamps: Add ``"time"`` to each patch line: when it was written, in seconds
            since the epoch (``{"ops": [...], "time": 1767225600.123456}``), so a viewer
            can show when each token came. Off by default (the lines are then the same
            for the same patches).

    Raises:
        SinkTargetError: ``target`` is neither a file name nor a stream (a ``TypeError``).

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> sink = JsonLinesSink(out)
        >>> sink.write([{"op": "add", "path": "/streamed_output/-", "value": "hi"}])
        >>> sink.end()
        >>> out.getvalue().splitlines()[1]
        '{"end":true,"patches":1,"error":null}'
    """

    def __init__(self, target: Target, *, flush: bool = True, timestamps: bool = False) -> None:
        """Open the sink (see the class docs)."""
        super().__init__(target, flush=flush)
        self._timestamps = timestamps

    def _format_patch(self, number: int, ops: Sequence[JsonPatchOp]) -> str:
        if self._timestamps:
            return '{"ops":' + dumps(ops) + f',"time":{time.time():.6f}}}\n'
        return '{"ops":' + dumps(ops) + "}\n"

    def _format_end(self, patches: int, error: Optional[str]) -> str:
        return dumps({"end": True, "patches": patches, "error": error}) + "\n"

    def __enter__(self) -> JsonLinesSink:
        """Return the sink."""
        return self


class SseSink(_Sink):
    """Write patches as Server-Sent Events frames, e.g. into an HTTP response body.

    Each patch is an ``event: data`` frame whose ``id`` is its 1-based number and whose
    ``data`` is ``{"ops": [...]}``; the stream ends with an ``event: end`` frame whose
    ``data`` is ``{"patches": N, "error": null}``. Thread-safe.

    Args:
        target: A file name, or an open text or binary stream.
        flush: Flush after every frame.

    Raises:
        SinkTargetError: ``target`` is neither a file name nor a stream (a ``TypeError``).
    """

    def _format_patch(self, number: int, ops: Sequence[JsonPatchOp]) -> str:
        return _sse_patch(number, ops)

    def _format_end(self, patches: int, error: Optional[str]) -> str:
        return _sse_end(patches, error)

    def __enter__(self) -> SseSink:
        """Return the sink."""
        return self


def _sse_patch(event_id: Union[int, str], ops: Sequence[JsonPatchOp]) -> str:
    return f'event: data\nid: {event_id}\ndata: {{"ops":{dumps(ops)}}}\n\n'


def _sse_end(patches: int, error: Optional[str], event_id: Optional[str] = None) -> str:
    id_line = "" if event_id is None else f"id: {event_id}\n"
    return f"event: end\n{id_line}data: {dumps({'patches': patches, 'error': error})}\n\n"


def sse_frames(patches: Iterable[PatchSource]) -> Iterator[str]:
    r"""Yield Server-Sent Events frames for ``patches``, then the end frame.

    Hand it to a web framework's streaming response (``text/event-stream``). If iterating
    ``patches`` raises, the end frame names the error, then the error propagates.

    Args:
        patches: The patches, e.g. ``stream_log(...)``.

    Yields:
        One ``event: data`` frame per patch, then one ``event: end`` frame.

    Example:
        >>> frames = list(sse_frames([[{"op": "replace", "path": "", "value": 1}]]))
        >>> print(frames[0], end="")
        event: data
        id: 1
        data: {"ops":[{"op":"replace","path":"","value":1}]}
        <BLANKLINE>
        >>> frames[1]
        'event: end\ndata: {"patches":1,"error":null}\n\n'
    """
    count = 0
    try:
        for patch in patches:
            ops = _ops_of(patch)
            count += 1
            yield _sse_patch(count, ops)
    except Exception as exc:  # not a cancellation or exit: those propagate at once
        yield _sse_end(count, error_text(exc))
        raise
    yield _sse_end(count, None)


async def asse_frames(patches: AsyncIterable[PatchSource]) -> AsyncIterator[str]:
    """Yield Server-Sent Events frames for the async iterable ``patches``, then the end frame.

    Args:
        patches: The patches, e.g. ``astream_log(...)`` or a handler.

    Yields:
        One ``event: data`` frame per patch, then one ``event: end`` frame.
    """
    count = 0
    try:
        async for patch in patches:
            ops = _ops_of(patch)
            count += 1
            yield _sse_patch(count, ops)
    except Exception as exc:  # not a cancellation or exit: those propagate at once
        yield _sse_end(count, error_text(exc))
        raise
    yield _sse_end(count, None)


SSE_KEEP_ALIVE = ": keep-alive\n\n"
"""The comment a server sends when no frame came for a while (clients ignore it)."""


def sse_wire(item: WireItem) -> str:
    r"""Return the Server-Sent Events text of one item of a served log.

    A :class:`~logstream._wire.Frame` (patch or snapshot) is an ``event: data`` frame
    whose ``id`` is ``<log_id>:<position>``; a :class:`~logstream._wire.LogEnd` is the
    ``event: end`` frame, with the same kind of ``id``; ``None`` (a heartbeat) is a
    keep-alive comment.

    Args:
        item: What a :class:`~logstream._wire.LogSource` yielded.

    Returns:
        The frame's text, ending with a blank line.

    Example:
        >>> from logstream._wire import Frame, LogEnd
        >>> print(sse_wire(Frame("r1", 2, [{"op": "remove", "path": "/a"}], False)), end="")
        event: data
        id: r1:2
        data: {"ops":[{"op":"remove","path":"/a"}]}
        <BLANKLINE>
        >>> sse_wire(LogEnd("r1", 2, None))
        'event: end\nid: r1:2\ndata: {"patches":2,"error":null}\n\n'
    """
    if item is None:
        return SSE_KEEP_ALIVE
    if isinstance(item, Frame):
        return _sse_patch(format_event_id(item.log_id, item.position), item.ops)
    if isinstance(item, LogEnd):
        event_id = format_event_id(item.log_id, item.position)
        return _sse_end(item.position, item.error, event_id)
    msg = f"sse_wire takes a Frame, a LogEnd or None, not {type(item).__name__}"
    raise NotAPatchError(item, "sse_wire", msg)


def sse_error(exc: BaseException, log_id: Optional[str] = None) -> str:
    """Return the ``event: error`` frame for ``exc`` (a resume error, a failed source).

    Args:
        exc: The error.
        log_id: The log, when ``exc`` does not name it.

    Returns:
        The frame's text; its ``data`` is :func:`~logstream._wire.error_payload`'s JSON.
    """
    return f"event: error\ndata: {dumps(error_payload(exc, log_id))}\n\n"
