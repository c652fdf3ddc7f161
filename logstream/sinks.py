r"""Recorded run logs: JSON Lines and Server-Sent Events sinks, and a reader for JSON Lines.

This module's one responsibility is moving patches to and from text. A sink takes patches
(from a handler, a :class:`~logstream.tracer.Tracer` or :func:`~logstream.stream_log`)
and writes one record per patch, then an end record; the reader turns a JSON Lines file
back into patches and the state they build, treating the file as untrusted data.

The JSON Lines format (UTF-8, one JSON object per line, ``\n`` after each):

=====================================================  =====================================
line                                                   meaning
=====================================================  =====================================
``{"ops": [{"op": "add", "path": ..., ...}, ...]}``    one patch: RFC 6902 ops, in order (the
                                                       payload LangServe's ``stream_log``
                                                       endpoint sends)
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
    >>> from logstream import RunLogPatch
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

import io
import json
import os
import threading
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import IO, Any, Callable, Optional, Union

from .errors import LogFileError, LogStreamError
from .patches import JsonPatchOp, RunLog, RunLogPatch, RunState
from .serialize import dumps

__all__ = [
    "MISSING_END",
    "EndRecord",
    "JsonLinesSink",
    "PatchSource",
    "Recording",
    "SinkClosedError",
    "SseSink",
    "Target",
    "asse_frames",
    "follow_jsonl",
    "read_jsonl",
    "sse_frames",
]

Target = Union[str, "os.PathLike[str]", IO[str], IO[bytes]]
"""Where a sink writes: a file name (created or truncated), or an open text or binary stream."""

PatchSource = Union[RunLogPatch, Sequence[JsonPatchOp]]
"""What a sink takes: a :class:`RunLogPatch`, or a list of its ops."""

MISSING_END = (
    "the file ends without an end record: it was cut short, or its writer is still running"
)
"""The reason of the :class:`~logstream.LogFileError` for a recording with no end record."""

_OPS = frozenset(("add", "remove", "replace", "move", "copy", "test"))
_NEEDS_VALUE = frozenset(("add", "replace", "test"))
_NEEDS_FROM = frozenset(("move", "copy"))


class SinkClosedError(LogStreamError, ValueError):
    """A patch or end record was written to a sink that has already ended or closed."""


def _error_text(error: Union[BaseException, str, None]) -> Optional[str]:
    if error is None or isinstance(error, str):
        return error
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _ops_of(patch: PatchSource) -> Sequence[JsonPatchOp]:
    if isinstance(patch, RunLog):
        msg = (
            "a sink takes patches, not RunLog states: a RunLog holds every op so far "
            "(stream with diff=True, or write RunLogPatch(*log.ops) once)"
        )
        raise TypeError(msg)
    if isinstance(patch, RunLogPatch):
        return patch.ops
    if isinstance(patch, (list, tuple)):
        return patch
    msg = f"a sink takes a RunLogPatch or a list of ops, not {type(patch).__name__}"
    raise TypeError(msg)


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
            msg = f"a sink writes to a file name or an open stream, not {type(target).__name__}"
            raise TypeError(msg)
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
            SinkClosedError: The sink has ended or closed.
            TypeError: ``patch`` is a :class:`RunLog` state or not a patch at all.
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
            self._emit(self._format_end(self.patches, _error_text(error)))
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

    def consume(self, patches: Iterable[PatchSource]) -> int:
        """Write every patch of ``patches``, then the end record.

        If iterating ``patches`` raises (e.g. :func:`~logstream.stream_log` passing on the
        traced code's error), the end record names the error, and the error propagates.

        Args:
            patches: The patches, e.g. a handler or ``stream_log(...)``.

        Returns:
            How many patches were written.
        """
        try:
            for patch in patches:
                self.write(patch)
        except BaseException as exc:
            if not self.ended:
                self.end(exc)
            raise
        self.end()
        return self.patches

    async def aconsume(self, patches: AsyncIterable[PatchSource]) -> int:
        """Write every patch of the async iterable ``patches``, then the end record.

        Args:
            patches: The patches, e.g. a handler or ``astream_log(...)``.

        Returns:
            How many patches were written.
        """
        try:
            async for patch in patches:
                self.write(patch)
        except BaseException as exc:
            if not self.ended:
                self.end(exc)
            raise
        self.end()
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

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> sink = JsonLinesSink(out)
        >>> sink.write([{"op": "add", "path": "/streamed_output/-", "value": "hi"}])
        >>> sink.end()
        >>> out.getvalue().splitlines()[1]
        '{"end":true,"patches":1,"error":null}'
    """

    def _format_patch(self, number: int, ops: Sequence[JsonPatchOp]) -> str:
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
    """

    def _format_patch(self, number: int, ops: Sequence[JsonPatchOp]) -> str:
        return _sse_patch(number, ops)

    def _format_end(self, patches: int, error: Optional[str]) -> str:
        return _sse_end(patches, error)

    def __enter__(self) -> SseSink:
        """Return the sink."""
        return self


def _sse_patch(number: int, ops: Sequence[JsonPatchOp]) -> str:
    return f'event: data\nid: {number}\ndata: {{"ops":{dumps(ops)}}}\n\n'


def _sse_end(patches: int, error: Optional[str]) -> str:
    return f"event: end\ndata: {dumps({'patches': patches, 'error': error})}\n\n"


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
    except GeneratorExit:
        raise
    except BaseException as exc:
        yield _sse_end(count, _error_text(exc))
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
    except GeneratorExit:
        raise
    except BaseException as exc:
        yield _sse_end(count, _error_text(exc))
        raise
    yield _sse_end(count, None)


@dataclass(frozen=True)
class EndRecord:
    """The last line of a complete recording.

    Attributes:
        patches: How many patches the writer wrote.
        error: ``"Type: message"`` if the traced code raised, else ``None``.
        line: The line it is on.
    """

    patches: int
    error: Optional[str]
    line: int


@dataclass(frozen=True)
class Recording:
    """A JSON Lines recording, read and applied.

    Attributes:
        source: The file's name, or ``"<stream>"``.
        patches: The patches, in file order.
        log: The :class:`RunLog` they build.
        end: The end record, or ``None`` if the file has none (it is incomplete).
        lines: How many lines were read.
    """

    source: str
    patches: tuple[RunLogPatch, ...]
    log: RunLog
    end: Optional[EndRecord]
    lines: int

    @property
    def state(self) -> RunState:
        """The state the patches build (``None`` if there were none)."""
        return self.log.state

    @property
    def complete(self) -> bool:
        """Whether the file ends with an end record."""
        return self.end is not None


class _Reader:
    """Validates and applies lines one at a time; every problem is a :class:`LogFileError`."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.line = 0
        self.log = RunLog(state=None)
        self.patches: list[RunLogPatch] = []
        self.end: Optional[EndRecord] = None

    def fail(self, reason: str, line: Optional[int] = None) -> LogFileError:
        return LogFileError(self.source, self.line if line is None else line, reason)

    def feed(self, raw: bytes, *, has_newline: bool = True) -> Union[RunLogPatch, EndRecord, None]:
        """Read the next line; return its record, or ``None`` for a blank line."""
        self.line += 1
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
            raise self.fail(reason) from None
        if not text.strip():
            return None
        if self.end is not None:
            raise self.fail(f"data after the end record on line {self.end.line}")
        try:
            value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_no_constant)
        except RecursionError:
            raise self.fail("nesting too deep to read") from None
        except ValueError as exc:
            if not has_newline:
                msg = "truncated: the file ends in the middle of this line (no newline, not JSON)"
                raise self.fail(msg) from None
            if isinstance(exc, json.JSONDecodeError):
                raise self.fail(f"not valid JSON at column {exc.colno}: {exc.msg}") from None
            raise self.fail(f"not valid JSON: {exc}") from None
        if isinstance(value, list):
            return self._patch(value)
        if isinstance(value, dict):
            if "ops" in value and "end" not in value:
                return self._patch(value["ops"])
            if "end" in value and "ops" not in value:
                return self._end(value)
        raise self.fail(
            'expected a patch {"ops": [...]} or an end record {"end": true, ...}, '
            f"got {_describe(value)}"
        )

    def _patch(self, ops: Any) -> RunLogPatch:
        if not isinstance(ops, list):
            raise self.fail(f'"ops" must be a list of ops, not {_describe(ops)}')
        for index, op in enumerate(ops, 1):
            _check_op(op, index, self.fail)
        patch = RunLogPatch.from_ops(ops)
        try:
            self.log = self.log + patch
        except RecursionError:
            raise self.fail("nesting too deep to apply") from None
        except Exception as exc:  # jsonpatch's and jsonpointer's errors, as they word them
            raise self.fail(f"the patch does not apply to the state so far: {exc}") from None
        self.patches.append(patch)
        return patch

    def _end(self, value: dict[str, Any]) -> EndRecord:
        if value.get("end") is not True:
            raise self.fail(f'an end record needs "end": true, not {_describe(value["end"])}')
        count = value.get("patches")
        if type(count) is not int or count < 0:
            raise self.fail(f'"patches" must be a count, not {_describe(count)}')
        error = value.get("error")
        if error is not None and not isinstance(error, str):
            raise self.fail(f'"error" must be a string or null, not {_describe(error)}')
        if count != len(self.patches):
            raise self.fail(
                f"the end record counts {count} patches but the file has {len(self.patches)}"
            )
        self.end = EndRecord(patches=count, error=error, line=self.line)
        return self.end

    def finish(self, *, require_end: bool) -> Recording:
        if require_end and self.end is None:
            raise self.fail(MISSING_END, line=self.line + 1)
        return Recording(self.source, tuple(self.patches), self.log, self.end, self.line)


def _check_op(op: Any, index: int, fail: Callable[[str], LogFileError]) -> None:
    if not isinstance(op, dict):
        raise fail(f"op {index} must be an object, not {_describe(op)}")
    name = op.get("op")
    if name not in _OPS:
        raise fail(f'op {index} has an unknown "op": {_describe(name)}')
    if not isinstance(op.get("path"), str):
        raise fail(f'op {index} ({name}) needs a string "path", not {_describe(op.get("path"))}')
    if name in _NEEDS_VALUE and "value" not in op:
        raise fail(f'op {index} ({name} {op["path"]}) has no "value"')
    if name in _NEEDS_FROM and not isinstance(op.get("from"), str):
        raise fail(f'op {index} ({name} {op["path"]}) needs a string "from"')


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                msg = f"duplicate key {key!r} in an object"
                raise ValueError(msg)
            seen.add(key)
    return result


def _no_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(_describe(key) for key in list(value)[:4])
        more = ", ..." if len(value) > 4 else ""
        return f"an object with keys {keys}{more}" if value else "an empty object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, ensure_ascii=True)
    return text if len(text) <= 40 else text[:37] + "..."


def _source_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def _lines(stream: Any) -> Iterator[tuple[bytes, bool]]:
    for line in stream:
        raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        if raw.endswith(b"\n"):
            yield raw, True
        else:
            yield raw, False


def read_jsonl(
    source: Union[str, os.PathLike[str], IO[str], IO[bytes]], *, require_end: bool = True
) -> Recording:
    """Read a JSON Lines recording and apply its patches, treating the data as untrusted.

    Nothing in the file is turned into an object: values stay dicts, lists, strings,
    numbers, booleans and ``None``. Every problem is a :class:`~logstream.LogFileError`
    that names the line: invalid UTF-8 or JSON, ``NaN``, duplicate keys, a record or op
    of the wrong shape, a patch that does not apply, data after the end record, an end
    record whose count is wrong, and (with ``require_end``) a missing end record.

    Args:
        source: A file name, or an open text or binary stream.
        require_end: Raise if the file has no end record; with ``False``, an incomplete
            recording is returned with ``complete`` false.

    Returns:
        The recording: its patches, their state and its end record.

    Raises:
        LogFileError: The file is malformed, truncated or does not apply.
        OSError: The file can't be opened or read.
    """
    reader = _Reader(_source_name(source))
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:
            _feed_all(reader, stream)
    else:
        _feed_all(reader, source)
    return reader.finish(require_end=require_end)


def _feed_all(reader: _Reader, stream: Any) -> None:
    try:
        for raw, has_newline in _lines(stream):
            reader.feed(raw, has_newline=has_newline)
    except UnicodeDecodeError as exc:  # a text stream that could not decode its bytes
        reason = f"the text stream can't decode this line or the next: {exc}"
        raise reader.fail(reason, line=reader.line + 1) from None


def follow_jsonl(
    source: Union[str, os.PathLike[str], IO[bytes]],
    *,
    poll_interval: float = 0.1,
    timeout: Optional[float] = None,
) -> Iterator[tuple[Union[RunLogPatch, EndRecord], RunLog]]:
    """Read a JSON Lines recording while it is being written, until its end record.

    Given a file name, waits for the file to appear, reads each complete line as it lands
    (a partial last line waits for the rest) and stops after the end record, checking
    that nothing follows it. Given a binary stream (a pipe), reads it line by line the
    same way; ``poll_interval`` and ``timeout`` do not apply to it.

    Args:
        source: The file's name, or a binary stream.
        poll_interval: Seconds between looks at the file when nothing new is there.
        timeout: Give up after this many seconds with nothing new; ``None`` waits forever.

    Yields:
        Each record with the :class:`RunLog` built so far.

    Raises:
        LogFileError: A line is malformed or does not apply, the file shrank (it was
            truncated or rewritten), the stream ended without an end record, or
            ``timeout`` passed without new data.
        OSError: The file can't be read.
    """
    if not isinstance(source, (str, os.PathLike)):
        reader = _Reader(_source_name(source))
        for raw, has_newline in _lines(source):
            record = reader.feed(raw, has_newline=has_newline)
            if record is not None:
                yield record, reader.log
        reader.finish(require_end=True)
        return
    yield from _follow_file(source, poll_interval, timeout)


def _follow_file(
    path: Union[str, os.PathLike[str]], poll_interval: float, timeout: Optional[float]
) -> Iterator[tuple[Union[RunLogPatch, EndRecord], RunLog]]:
    reader = _Reader(os.fspath(path))
    last_news = time.monotonic()

    def idle() -> None:
        if timeout is not None and time.monotonic() - last_news > timeout:
            raise reader.fail(
                f"no new data for {timeout:g}s and no end record yet", line=reader.line + 1
            )
        time.sleep(poll_interval)

    while True:
        try:
            stream = open(path, "rb")
            break
        except FileNotFoundError:
            idle()
    with stream:
        pending = b""
        offset = 0
        while reader.end is None:
            chunk = stream.read(1 << 16)
            if not chunk:
                if os.stat(path).st_size < offset:
                    raise reader.fail("the file shrank while being followed", line=reader.line)
                idle()
                continue
            last_news = time.monotonic()
            offset += len(chunk)
            *lines, pending = (pending + chunk).split(b"\n")
            for raw in lines:
                record = reader.feed(raw + b"\n")
                if record is not None:
                    yield record, reader.log
        rest = pending + stream.read()
        for raw, has_newline in _lines(io.BytesIO(rest)):
            reader.feed(raw, has_newline=has_newline)
