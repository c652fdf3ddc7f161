r"""Reading recorded run logs: JSON Lines files, treated as untrusted data.

This module's one responsibility is turning a JSON Lines recording (as
:class:`~logstream._sinks.JsonLinesSink` writes it; the format is described in
:mod:`logstream._sinks`) back into patches and the state they build, without trusting it:
nothing in the file becomes an object, every problem is one
:class:`~logstream.LogFileError` naming the line, and the work one file can cause is
bounded (``copy`` ops against a budget, lines against a length). :func:`follow_jsonl`
reads a file while its writer is still running, and refuses a file that shrinks or is
replaced meanwhile.

Example:
    >>> import io
    >>> text = '{"ops":[{"op":"replace","path":"","value":{"logs":{}}}]}\n'
    >>> recording = read_jsonl(io.StringIO(text + '{"end":true,"patches":1,"error":null}\n'))
    >>> recording.state, recording.complete
    ({'logs': {}}, True)
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any, Callable, Optional, Union

import jsonpointer

from ._apply import replay
from ._errors import LogFileError, ReadOptionError
from ._patches import JsonPatchOp, RunLog, RunLogPatch, RunState, check_op
from ._text import describe, printable, refuse_constant

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "MISSING_END",
    "EndRecord",
    "Recording",
    "follow_jsonl",
    "read_jsonl",
]

MISSING_END = (
    "the file ends without an end record: it was cut short, or its writer is still running"
)
"""The reason of the :class:`~logstream.LogFileError` for a recording with no end record."""


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
        times: For each patch, its ``"time"`` (epoch seconds, as
            :class:`~logstream.JsonLinesSink` writes with ``timestamps=True``), or ``None``
            for a line without one.
    """

    source: str
    patches: tuple[RunLogPatch, ...]
    log: RunLog
    end: Optional[EndRecord]
    lines: int
    times: tuple[Optional[float], ...] = ()

    @property
    def state(self) -> RunState:
        """The state the patches build (``None`` if there were none)."""
        return self.log.state

    @property
    def complete(self) -> bool:
        """Whether the file ends with an end record."""
        return self.end is not None


DEFAULT_MAX_COPIED_VALUES = 1_000_000
"""How many values the ``copy`` ops of one recording may duplicate, in all, by default."""

DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024
"""How many bytes one line of a recording may hold (its newline not counted), by default."""


class _Reader:
    """Validates and applies lines one at a time; every problem is a :class:`LogFileError`.

    The document is private: values are copied in from the ops, so the patches kept stay
    as they were read. A patch that fails is the end of reading, so it need not be undone.
    """

    def __init__(
        self,
        source: str,
        max_copied_values: int = DEFAULT_MAX_COPIED_VALUES,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
    ) -> None:
        if type(max_line_bytes) is not int or max_line_bytes < 1:
            msg = (
                f"max_line_bytes must be a positive int (a number of bytes), got "
                f"{max_line_bytes!r}; e.g. max_line_bytes={DEFAULT_MAX_LINE_BYTES}"
            )
            raise ReadOptionError(msg)
        self.max_line_bytes = max_line_bytes
        self.source = source
        self.line = 0
        self.doc: Any = None
        self.ops: list[JsonPatchOp] = []
        self.patches: list[RunLogPatch] = []
        self.times: list[Optional[float]] = []
        self.end: Optional[EndRecord] = None
        self.copy_budget = max_copied_values
        self.max_copied_values = max_copied_values

    def check_length(self, size: int, line: Optional[int] = None) -> None:
        """Raise if a line of ``size`` bytes (so far) is longer than ``max_line_bytes``."""
        if size > self.max_line_bytes:
            reason = (
                f"the line is longer than max_line_bytes ({self.max_line_bytes} bytes); "
                "a recording this large needs a higher limit (--max-line-bytes)"
            )
            raise self.fail(reason, line)

    def fail(self, reason: str, line: Optional[int] = None) -> LogFileError:
        where = self.line if line is None else line
        return LogFileError(self.source, where, printable(reason))

    def feed(self, raw: bytes, *, has_newline: bool = True) -> Union[RunLogPatch, EndRecord, None]:
        """Read the next line; return its record, or ``None`` for a blank line."""
        self.line += 1
        self.check_length(len(raw) - raw.endswith(b"\n"))
        try:
            text = raw.decode("utf-8").rstrip("\r\n")
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}"
            raise self.fail(reason) from None
        if not text.strip():
            return None
        if self.end is not None:
            raise self.fail(f"data after the end record on line {self.end.line}")
        value = self._parse(text, has_newline)
        if isinstance(value, list):
            return self._patch(value)
        if isinstance(value, dict):
            if "ops" in value and "end" not in value:
                when = self._time(value.get("time"))
                patch = self._patch(value["ops"])
                self.times.append(when)
                return patch
            if "end" in value and "ops" not in value:
                return self._end(value)
        raise self.fail(
            'expected a patch {"ops": [...]} or an end record {"end": true, ...}, '
            f"got {describe(value)}"
        )

    def _parse(self, text: str, has_newline: bool) -> Any:
        try:
            return json.loads(
                text,
                object_pairs_hook=_unique_keys,
                parse_constant=refuse_constant,
                parse_float=_finite_float,
            )
        except RecursionError:
            raise self.fail("nesting too deep to read") from None
        except json.JSONDecodeError as exc:
            cut = exc.pos >= len(text) or exc.msg.startswith("Unterminated")
            if cut and not has_newline:
                msg = "truncated: the file ends in the middle of this line (no newline, not JSON)"
                raise self.fail(msg) from None
            raise self.fail(f"not valid JSON at column {exc.colno}: {exc.msg}") from None
        except ValueError as exc:  # NaN, 1e999, duplicate keys, too many digits
            raise self.fail(f"not valid JSON: {exc}") from None

    def _time(self, value: Any) -> Optional[float]:
        if value is None:
            return None
        if type(value) in (int, float) and value >= 0:
            with contextlib.suppress(OverflowError):  # an int past a float's range
                return float(value)
        raise self.fail(
            f'"time" must be a number of seconds since the epoch, not {describe(value)}'
        )

    def _patch(self, ops: Any) -> RunLogPatch:
        if not isinstance(ops, list):
            raise self.fail(f'"ops" must be a list of ops, not {describe(ops)}')
        for index, op in enumerate(ops, 1):
            check_op(op, index, self.fail)
            if op["op"] == "copy":
                self._charge_copy(op, index)
        try:
            self.doc = replay(self.doc, ops, 0, len(ops))
        except RecursionError:
            raise self.fail("nesting too deep to apply") from None
        except MemoryError:
            raise self.fail("out of memory applying this patch") from None
        except Exception as exc:  # jsonpatch's and jsonpointer's errors, as they word them
            raise self.fail(f"the patch does not apply to the state so far: {exc}") from None
        patch = RunLogPatch.from_ops(ops)
        self.ops.extend(ops)
        self.patches.append(patch)
        return patch

    def _charge_copy(self, op: dict[str, Any], index: int) -> None:
        """Count what a ``copy`` duplicates against the budget (a few lines can copy 2**40)."""
        try:
            value = jsonpointer.resolve_pointer(self.doc, op["from"])
        except Exception:  # the op will fail with jsonpatch's own message
            return
        left = self.copy_budget
        stack = [value]
        while stack and left >= 0:
            item = stack.pop()
            left -= 1
            if isinstance(item, dict):
                stack.extend(item.values())
            elif isinstance(item, list):
                stack.extend(item)
        if left < 0:
            reason = (
                f"op {index} (copy from {op['from']}) would copy more than the "
                f"{self.max_copied_values} values all copy ops of a recording may copy"
            )
            raise self.fail(reason)
        self.copy_budget = left

    def _end(self, value: dict[str, Any]) -> EndRecord:
        if value.get("end") is not True:
            raise self.fail(f'an end record needs "end": true, not {describe(value["end"])}')
        count = value.get("patches")
        if type(count) is not int or count < 0:
            raise self.fail(f'"patches" must be a count, not {describe(count)}')
        error = value.get("error")
        if error is not None and not isinstance(error, str):
            raise self.fail(f'"error" must be a string or null, not {describe(error)}')
        if count != len(self.patches):
            raise self.fail(
                f"the end record counts {describe(count)} patches "
                f"but the file has {len(self.patches)}"
            )
        self.end = EndRecord(patches=count, error=error, line=self.line)
        return self.end

    def feed_all(self, stream: Any, on_record: Optional[OnRecord] = None) -> None:
        """Feed every line of ``stream`` (binary or text), reporting each record."""
        try:
            for raw, has_newline in _lines(stream, self.max_line_bytes):
                record = self.feed(raw, has_newline=has_newline)
                if record is not None and on_record is not None:
                    on_record(record)
        except UnicodeDecodeError as exc:  # a text stream that could not decode its bytes
            reason = f"the text stream can't decode this line or the next: {exc}"
            raise self.fail(reason, line=self.line + 1) from None

    def finish(self, *, require_end: bool) -> Recording:
        if require_end and self.end is None:
            raise self.fail(MISSING_END, line=self.line + 1)
        log = RunLog(*self.ops, state=self.doc)
        return Recording(
            self.source, tuple(self.patches), log, self.end, self.line, tuple(self.times)
        )


OnRecord = Callable[[Union[RunLogPatch, EndRecord]], Any]
"""Called with each record as it is read: a :class:`RunLogPatch`, then an :class:`EndRecord`."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                msg = f"duplicate key {describe(key)} in an object"
                raise ValueError(msg)
            seen.add(key)
    return result


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        msg = f"{describe(text)} is too large for a float"
        raise ValueError(msg)
    return number


def _source_name(source: Any) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return str(getattr(source, "name", "<stream>"))


def _lines(stream: Any, limit: int) -> Iterator[tuple[bytes, bool]]:
    """Yield each line of ``stream`` and whether it ends with a newline.

    A line longer than ``limit`` bytes is cut after ``limit + 1`` bytes (the reader then
    refuses it), so an endless line (``/dev/zero``) never fills the memory.
    """
    readline = getattr(stream, "readline", None)
    if readline is None:  # any iterable of lines
        lines: Iterator[Any] = iter(stream)
    else:
        lines = iter(lambda: readline(limit + 1), stream.read(0))
    for line in lines:
        raw = line.encode("utf-8", "surrogateescape") if isinstance(line, str) else line
        yield raw, raw.endswith(b"\n")


def read_jsonl(
    source: Union[str, os.PathLike[str], IO[str], IO[bytes]],
    *,
    require_end: bool = True,
    follow: bool = False,
    on_record: Optional[OnRecord] = None,
    poll_interval: float = 0.1,
    timeout: Optional[float] = None,
    max_copied_values: int = DEFAULT_MAX_COPIED_VALUES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Recording:
    """Read a JSON Lines recording and apply its patches, treating the data as untrusted.

    Nothing in the file is turned into an object: values stay dicts, lists, strings,
    numbers, booleans and ``None``. Every problem is a :class:`~logstream.LogFileError`
    that names the line: invalid UTF-8 or JSON, ``NaN`` or a number too large for a
    float, duplicate keys, a record or op of the wrong shape, a patch that does not
    apply, ``copy`` ops that would duplicate more than ``max_copied_values`` values,
    data after the end record, an end record whose count is wrong, a line longer than
    ``max_line_bytes``, and (with ``require_end``) a missing end record.

    Args:
        source: A file name, or an open text or binary stream.
        require_end: Raise if the file has no end record; with ``False``, an incomplete
            recording is returned with ``complete`` false.
        follow: Read the file while it is being written, until its end record (see
            :func:`follow_jsonl`); ``require_end`` is then implied.
        on_record: Called with each record as it is read, e.g. to show patches live.
        poll_interval: With ``follow``: seconds between looks at a file with nothing new.
        timeout: With ``follow``: give up after this many seconds with no new line.
        max_copied_values: How many values the ``copy`` ops may duplicate in all (each
            dict, list and scalar counts one), so that a few lines can't fill the memory.
        max_line_bytes: How many bytes one line may hold, its newline not counted (64
            MiB by default). Reading stops at the first longer line, after reading at
            most this many bytes of it, so an endless line (``/dev/zero``, a file that
            grows without a newline) ends with a :class:`~logstream.LogFileError`.

    Returns:
        The recording: its patches, their state and its end record.

    Raises:
        LogFileError: The file is malformed, truncated or does not apply.
        OSError: The file can't be opened or read.
        ReadOptionError: ``max_line_bytes`` is not a positive int (a ``ValueError``).
    """
    reader = _Reader(_source_name(source), max_copied_values, max_line_bytes)
    if follow:
        for record in _follow(reader, source, poll_interval, timeout):
            if on_record is not None:
                on_record(record)
        return reader.finish(require_end=True)
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as stream:
            reader.feed_all(stream, on_record)
    else:
        reader.feed_all(source, on_record)
    return reader.finish(require_end=require_end)


def follow_jsonl(
    source: Union[str, os.PathLike[str], IO[bytes]],
    *,
    poll_interval: float = 0.1,
    timeout: Optional[float] = None,
    max_copied_values: int = DEFAULT_MAX_COPIED_VALUES,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Union[RunLogPatch, EndRecord]]:
    """Yield the records of a JSON Lines recording while it is being written.

    Given the name of a regular file, waits for the file to appear, reads each complete
    line as it lands (a partial last line waits for the rest; an end record needs no
    newline), and stops after the end record, checking that nothing follows it. A file
    that shrinks or is replaced (renamed over) while followed is an error, not re-read.
    Given a binary stream or a pipe (a FIFO), reads it line by line to its end; there
    ``poll_interval`` and ``timeout`` do not apply, and opening a FIFO waits for its writer
    (``logstream replay --follow --timeout`` refuses a FIFO for that reason).
    Each patch is checked against the state so far, as :func:`read_jsonl` does; for the
    state itself, use ``read_jsonl(source, follow=True, on_record=...)``.

    Args:
        source: The file's name, or a binary stream.
        poll_interval: Seconds between looks at the file when nothing new is there.
        timeout: Give up after this many seconds with no new line (data that does not
            complete a line does not count); ``None`` waits forever.
        max_copied_values: As for :func:`read_jsonl`.
        max_line_bytes: As for :func:`read_jsonl`; a partial last line longer than this
            is refused as soon as it is.

    Yields:
        Each :class:`RunLogPatch`, then the :class:`EndRecord`.

    Raises:
        LogFileError: A line is malformed or does not apply, the file shrank or was
            replaced, the stream ended without an end record, or ``timeout`` passed
            without a new line.
        ReadOptionError: ``max_line_bytes`` is not a positive int (at the first record).
        OSError: The file can't be read.
    """
    reader = _Reader(_source_name(source), max_copied_values, max_line_bytes)
    yield from _follow(reader, source, poll_interval, timeout)


def _follow(
    reader: _Reader, source: Any, poll_interval: float, timeout: Optional[float]
) -> Iterator[Union[RunLogPatch, EndRecord]]:
    if not isinstance(source, (str, os.PathLike)):
        yield from _follow_stream(reader, source)
        return
    last_news = time.monotonic()

    def check_time() -> None:
        if timeout is not None and time.monotonic() - last_news > timeout:
            reason = f"no new line for {timeout:g}s and no end record yet"
            raise reader.fail(reason, line=reader.line + 1)

    def idle() -> None:
        check_time()
        time.sleep(poll_interval)

    while True:
        try:
            stream = open(source, "rb")
            break
        except FileNotFoundError:
            idle()
    with stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):  # a FIFO, a device
            yield from _follow_stream(reader, stream)
            return
        pending: list[bytes] = []
        pending_size = 0
        offset = 0
        while reader.end is None:
            chunk = stream.read(1 << 16)
            if not chunk:
                _check_same_file(reader, source, stream, offset)
                if pending and _is_end_record(b"".join(pending)):
                    record = reader.feed(b"".join(pending), has_newline=False)
                    pending = []
                    pending_size = 0
                    if record is not None:
                        yield record
                    break
                idle()
                continue
            offset += len(chunk)
            pending.append(chunk)
            if b"\n" not in chunk:
                pending_size += len(chunk)
                reader.check_length(pending_size, line=reader.line + 1)
                check_time()
                continue
            last_news = time.monotonic()  # a line is complete
            *lines, rest = b"".join(pending).split(b"\n")
            pending = [rest] if rest else []
            pending_size = len(rest)
            for raw in lines:
                record = reader.feed(raw + b"\n")
                if record is not None:
                    yield record
            reader.check_length(pending_size, line=reader.line + 1)
        rest = b"".join(pending) + stream.read(reader.max_line_bytes + 1)
        for raw, has_newline in _lines(io.BytesIO(rest), reader.max_line_bytes):
            reader.feed(raw, has_newline=has_newline)


def _follow_stream(reader: _Reader, stream: Any) -> Iterator[Union[RunLogPatch, EndRecord]]:
    lines = _lines(stream, reader.max_line_bytes)
    while True:
        try:
            raw, has_newline = next(lines)
        except StopIteration:
            break
        except UnicodeDecodeError as exc:
            reason = f"the text stream can't decode this line or the next: {exc}"
            raise reader.fail(reason, line=reader.line + 1) from None
        record = reader.feed(raw, has_newline=has_newline)
        if record is not None:
            yield record
    reader.finish(require_end=True)


def is_fifo(path: Any) -> bool:
    """Return whether ``path`` names a FIFO (following one waits for its writer)."""
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:  # not there yet, or not ours to look at: open() will say
        return False


def _check_same_file(reader: _Reader, path: Any, stream: Any, offset: int) -> None:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return  # deleted: what is open can still be read to its end
    mine = os.fstat(stream.fileno())
    if (now.st_ino, now.st_dev) != (mine.st_ino, mine.st_dev):
        raise reader.fail("the file was replaced while being followed", line=reader.line + 1)
    if mine.st_size < offset:
        raise reader.fail("the file shrank while being followed", line=reader.line + 1)


def _is_end_record(raw: bytes) -> bool:
    """Return whether ``raw`` (a last line with no newline) already reads as an end record."""
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    return isinstance(value, dict) and "end" in value
