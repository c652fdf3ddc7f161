"""Run logs across processes through Redis Streams: a sink that appends, a source that reads.

This optional module (``pip install 'logstream[redis]'``, on ``redis`` from PyPI) moves a
positioned run log (see :mod:`logstream._wire`) between processes: an agent process
writes its patches with :class:`RedisSink`, and any number of other processes read them
back live, from any position, with :class:`RedisSource`, a
:class:`~logstream._wire.LogSource` the ASGI app serves like an in-process log.
``import logstream`` never imports this module or ``redis``.

Layout. A log with id ``L`` lives in three keys (``prefix`` is ``"logstream:"`` by
default):

=============================  =========================================================
key                            what it holds
=============================  =========================================================
``<prefix>L``                  the stream: patch ``p`` is the entry with id ``p-0`` and
                               one field, ``ops`` (the patch's ops as JSON); the end is
                               the entry ``N-1`` (``N`` patches) with the field ``end``:
                               ``{"patches": N, "error": null}``
``<prefix>L:meta``             a hash: ``producer`` (the sink that owns the stream),
                               ``last`` (the last position appended), ``end`` (the end
                               record, once written)
``<prefix>L:snapshot``         a hash: ``pos`` and ``state`` (JSON), the state after
                               patch ``pos``; written only by a sink with ``max_len``
=============================  =========================================================

Since the entry ids are the positions, a reader resumes after position ``p`` with
``XREAD ... STREAMS <key> p-0``, and compaction is ``XTRIM ... MINID``. Every append
goes through one Lua script that checks the sink still owns the stream and continues it
exactly where it left it, appends a batch of patches, writes the snapshot *before*
trimming the entries it covers, and writes the end, all atomically: a batch retried
after a lost connection is recognized and not written twice, and a second producer on
the same log id is refused (:class:`~logstream.StreamConflictError`).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Optional, Union

import redis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as _ConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as _TimeoutError

from ._apply import apply_atomic
from ._errors import (
    ConfigError,
    DataError,
    MalformedResumeIdError,
    RedisUnavailableError,
    SinkClosedError,
    StaleResumeIdError,
    StreamConflictError,
)
from ._serialize import dumps
from ._sinks import PatchSource, patch_ops
from ._text import error_text
from ._wire import Frame, LogEnd, WireItem, check_log_id, check_not_future, snapshot_ops

__all__ = [
    "RedisLogs",
    "RedisSink",
    "RedisSource",
    "RedisUnavailableError",
    "StreamConflictError",
]

DEFAULT_PREFIX = "logstream:"
"""The prefix of the Redis keys of a log: ``logstream:<log_id>``."""

_UNREACHABLE = (_ConnectionError, _TimeoutError, OSError)
"""What redis-py raises when the server is down, restarting (loading) or unreachable."""

_APPEND = """
local owner = redis.call('HGET', KEYS[2], 'producer')
local last = tonumber(redis.call('HGET', KEYS[2], 'last') or '0')
local ended = redis.call('HEXISTS', KEYS[2], 'end') == 1
local first = tonumber(ARGV[2])
local n = #ARGV - 6
local stop = first + n - 1
if owner and owner ~= ARGV[1] then
  return redis.error_reply('LOGSTREAM owner ' .. last)
end
if not owner and (redis.call('EXISTS', KEYS[1]) == 1 or last ~= 0) then
  return redis.error_reply('LOGSTREAM owner ' .. last)
end
if ended then
  if ARGV[3] ~= '' and last == stop then return last end
  return redis.error_reply('LOGSTREAM ended ' .. last)
end
if n > 0 and last >= stop then return last end
if last ~= first - 1 then
  return redis.error_reply('LOGSTREAM gap ' .. last)
end
if not owner then
  redis.call('HSET', KEYS[2], 'producer', ARGV[1], 'last', 0)
end
for i = 1, n do
  redis.call('XADD', KEYS[1], string.format('%d-0', first + i - 1), 'ops', ARGV[6 + i])
end
if n > 0 then redis.call('HSET', KEYS[2], 'last', stop) end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[3], 'pos', stop, 'state', ARGV[4])
  redis.call('XTRIM', KEYS[1], 'MINID', ARGV[5])
end
if ARGV[3] ~= '' then
  redis.call('XADD', KEYS[1], string.format('%d-1', stop), 'end', ARGV[3])
  redis.call('HSET', KEYS[2], 'end', ARGV[3])
  if ARGV[6] ~= '0' then
    for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
  end
end
return stop
"""
"""KEYS: stream, meta, snapshot. ARGV: producer token, first position, end record ('' if
none), snapshot state ('' if none), trim MINID, ttl in ms ('0': none), then one ops JSON
per patch. Returns the last position; errors start with ``LOGSTREAM``."""

RedisClient = Union[str, "redis.Redis"]
"""A Redis URL (``redis://localhost:6379/0``) or a ready ``redis.Redis`` client."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _keys(prefix: str, log_id: str) -> tuple[str, str, str]:
    stream = prefix + log_id
    return stream, stream + ":meta", stream + ":snapshot"


def _check_id(log_id: Any, who: str) -> str:
    try:
        return check_log_id(log_id)
    except ValueError as exc:
        msg = f"{who}: {exc}; e.g. uuid.uuid4().hex"
        raise ConfigError(msg) from None


def _sync_client(client: Any, who: str, timeout: Optional[float]) -> tuple[redis.Redis, bool]:
    if isinstance(client, str):
        made = redis.Redis.from_url(client, socket_connect_timeout=5, socket_timeout=timeout)
        return made, True
    if isinstance(client, redis.Redis):
        return client, False
    msg = f"{who} takes a Redis URL or a redis.Redis client, not {type(client).__name__}"
    raise ConfigError(msg)


class RedisSink:
    """Append a run log's patches to a Redis stream, pipelined, for readers in any process.

    Each :meth:`write` gives the patch the next position (1, 2, 3...) and queues it; a
    background thread appends what is queued in batches (one round trip for up to
    ``batch_size`` patches), in order, so a fast producer is not held up by the network
    and a slow one sees each patch go out at once. :meth:`end` appends the end record
    (with the error the traced code raised, if any) and waits for everything to be in.

    With ``max_len``, the stream keeps at most that many patches: when a batch would pass
    it, the sink writes a snapshot of the state after the batch (``<key>:snapshot``),
    then trims the stream to its newest ``max_len // 2`` patches; a reader that needs
    trimmed patches gets the snapshot and the patches after it.

    If the server cannot be reached (down, restarting), nothing is lost: patches stay
    queued and the thread retries. :meth:`flush` and :meth:`end` raise
    :class:`~logstream.RedisUnavailableError` once the server has been unreachable for
    ``retry_for`` seconds of their wait; call :meth:`flush` again once it is back. A
    batch whose append reached the server before the connection broke is recognized when
    retried, so nothing is written twice. Thread-safe.

    Args:
        client: A Redis URL or a ``redis.Redis`` client (one made from a URL is closed by
            :meth:`end` / :meth:`close`).
        log_id: The log's id, the SSE id's first part (``[A-Za-z0-9._-]``, 1 to 200
            characters); a fresh ``uuid4().hex`` if ``None``. One sink per log id.
        prefix: The prefix of the log's Redis keys.
        max_len: Keep at most this many patches in the stream (compacting behind a
            snapshot); ``None``: keep them all.
        batch_size: The most patches appended in one round trip.
        max_pending: The most patches queued; :meth:`write` waits for room beyond it.
        retry_for: How long, in seconds, a wait may see the server unreachable before it
            raises :class:`~logstream.RedisUnavailableError`.
        ttl: Seconds the log's keys live after the end is written; ``None``: no expiry.

    Raises:
        ConfigError: A bad ``client``, ``log_id`` or option.

    Example:
        ``RedisSink("redis://localhost:6379/0", "run-1").consume(stream_log(agent, q))``
    """

    def __init__(
        self,
        client: RedisClient,
        log_id: Optional[str] = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        max_len: Optional[int] = None,
        batch_size: int = 1000,
        max_pending: int = 100_000,
        retry_for: float = 5.0,
        ttl: Optional[float] = None,
    ) -> None:
        """Make the sink; nothing is sent before the first patch."""
        self.log_id = _check_id(uuid.uuid4().hex if log_id is None else log_id, "RedisSink")
        """The log's id."""
        for name, value in (("batch_size", batch_size), ("max_pending", max_pending)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"RedisSink: {name} must be an int >= 1, got {value!r}"
                raise ConfigError(msg)
        if max_len is not None and (
            isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1
        ):
            msg = f"RedisSink: max_len must be an int >= 1 or None, got {max_len!r}"
            raise ConfigError(msg)
        if isinstance(retry_for, bool) or not isinstance(retry_for, (int, float)) or retry_for < 0:
            msg = f"RedisSink: retry_for must be a number of seconds >= 0, got {retry_for!r}"
            raise ConfigError(msg)
        if ttl is not None and (not isinstance(ttl, (int, float)) or ttl <= 0):
            msg = f"RedisSink: ttl must be a number of seconds > 0 or None, got {ttl!r}"
            raise ConfigError(msg)
        self._client, self._owns_client = _sync_client(client, "RedisSink", 30)
        self._keys = _keys(prefix, self.log_id)
        self.stream = self._keys[0]
        """The Redis key of the log's stream."""
        self._script = self._client.register_script(_APPEND)
        self._token = uuid.uuid4().hex
        self._max_len = max_len
        self._keep = 0 if max_len is None else max_len // 2
        self._batch_size = batch_size
        self._max_pending = max_pending
        self._retry_for = float(retry_for)
        self._ttl_ms = "0" if ttl is None else str(max(1, int(ttl * 1000)))
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[str] = deque()
        self._position = 0
        self._acked = 0
        self._end_text: Optional[str] = None  # queued end record
        self._ended = False  # end record acknowledged
        self._closed = False  # no more writes
        self._stopping = False
        self._failing_since: Optional[float] = None  # when the appends began to fail
        self._last_failure = 0.0  # when the latest append failed
        self._fatal: Optional[BaseException] = None
        self._thread: Optional[threading.Thread] = None
        self._state: Any = None  # kept only with max_len, for snapshots
        self._stream_len = 0
        self.batches = 0
        """How many appends (round trips that wrote) the sink made."""

    # -- the producer's side ---------------------------------------------------------------

    @property
    def position(self) -> int:
        """The position of the last patch written (queued or appended)."""
        return self._position

    @property
    def acknowledged(self) -> int:
        """The position of the last patch the server has appended."""
        return self._acked

    @property
    def pending(self) -> int:
        """How many written patches the server has not acknowledged yet."""
        return self._position - self._acked

    @property
    def ended(self) -> bool:
        """Whether the end record was written (or the sink closed)."""
        return self._closed

    def write(self, patch: PatchSource) -> int:
        """Queue one patch for appending and return its position.

        Args:
            patch: A :class:`~logstream.RunLogPatch`, or a list of its ops (values that
                are not JSON are written as :func:`~logstream.dumps` renders them).

        Returns:
            The patch's position.

        Raises:
            SinkClosedError: The sink has ended or closed.
            NotAPatchError: ``patch`` is not a patch.
            StreamConflictError: The stream does not continue where this sink left it.
            RedisUnavailableError: The queue is full and the server stayed unreachable
                for ``retry_for`` seconds; the patch was not queued.
        """
        text = dumps(patch_ops(patch))
        with self._cond:
            self._check_open("write a patch to")
            if len(self._queue) >= self._max_pending:
                self._wait(lambda: len(self._queue) < self._max_pending, None)
                self._check_open("write a patch to")
            self._queue.append(text)
            self._position += 1
            if self._thread is None:
                self._start()
            elif len(self._queue) == 1:
                self._cond.notify_all()
            return self._position

    def flush(self, timeout: Optional[float] = None) -> int:
        """Wait until the server has appended every patch written so far (and the end).

        Args:
            timeout: Give up after this many seconds (returning what is acknowledged);
                ``None``: wait as long as the server is reachable.

        Returns:
            The last position the server acknowledged.

        Raises:
            RedisUnavailableError: The server was unreachable for ``retry_for`` seconds
                of this wait; everything stays queued, call :meth:`flush` again.
            StreamConflictError: The stream does not continue where this sink left it.
        """
        with self._cond:
            self._wait(self._flushed, timeout)
            acked = self._acked
            done = self._ended and self._thread is not None
        if done:
            self._stop()  # the end is in: an end() that raised left the thread running
        return acked

    def end(self, error: Union[BaseException, str, None] = None) -> None:
        """Append the end record after every queued patch, and wait until it is in.

        Args:
            error: What the traced code raised, if it failed (``"Type: message"``).

        Raises:
            SinkClosedError: The sink has already ended or closed.
            RedisUnavailableError: The server was unreachable for ``retry_for`` seconds;
                the end stays queued: call :meth:`flush` again once it is back.
            StreamConflictError: The stream does not continue where this sink left it.
        """
        with self._cond:
            self._check_open("end")
            self._end_text = dumps({"patches": self._position, "error": error_text(error)})
            self._closed = True
            if self._thread is None:
                self._start()
            self._cond.notify_all()
        self.flush()
        self._stop()

    def close(self) -> None:
        """Stop without an end record; readers see the log as still running.

        Patches written but not yet appended are dropped; :meth:`flush` first to keep
        them. Closing twice, or after :meth:`end`, does nothing.
        """
        with self._cond:
            self._closed = True
        self._stop()

    def consume(self, patches: Iterable[PatchSource]) -> int:
        """Write every patch of ``patches``, then the end (naming the error if one was raised).

        Args:
            patches: The patches, e.g. a :class:`~logstream.Tracer` or ``stream_log(...)``.

        Returns:
            How many patches were written.
        """
        try:
            for patch in patches:
                self.write(patch)
        except BaseException as exc:
            if not self._closed:
                self.end(exc)
            raise
        self.end()
        return self._position

    async def aconsume(self, patches: AsyncIterable[PatchSource]) -> int:
        """Write every patch of the async iterable ``patches``, then the end.

        Args:
            patches: The patches, e.g. ``astream_log(...)``.

        Returns:
            How many patches were written.
        """
        try:
            async for patch in patches:
                self.write(patch)
        except BaseException as exc:
            if not self._closed:
                await asyncio.to_thread(self.end, exc)
            raise
        await asyncio.to_thread(self.end)
        return self._position

    def __enter__(self) -> RedisSink:
        """Return the sink."""
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Write the end (naming ``exc`` if the block raised) unless already ended."""
        if not self._closed:
            self.end(exc)

    def __repr__(self) -> str:
        """Show the stream and positions."""
        return f"<RedisSink {self.stream} position={self._position} acknowledged={self._acked}>"

    # -- waiting (with the condition held) --------------------------------------------------

    def _check_open(self, what: str) -> None:
        if self._fatal is not None:
            raise self._fatal
        if self._closed:
            msg = f"can't {what} Redis stream {self.stream}: the sink has ended"
            raise SinkClosedError(msg)

    def _flushed(self) -> bool:
        done = self._acked == self._position
        return done and (self._end_text is None or self._ended)

    def _unavailable(self) -> RedisUnavailableError:
        return RedisUnavailableError(self.stream, self._acked, "sink", self.pending)

    def _wait(self, ready: Any, timeout: Optional[float]) -> None:
        start = time.monotonic()
        self._cond.notify_all()  # a thread backing off retries now
        while not ready():
            if self._fatal is not None:
                raise self._fatal
            now = time.monotonic()
            if self._failing_since is not None:
                # unreachable for retry_for seconds of this wait, by the attempts made
                since = max(self._failing_since, start)
                if self._last_failure - since >= self._retry_for:
                    raise self._unavailable()
            if timeout is not None and now - start >= timeout:
                return
            if self._thread is None and not ready():
                return  # closed: nothing will change
            self._cond.wait(0.05)

    # -- the appending thread ---------------------------------------------------------------

    def _start(self) -> None:
        thread = threading.Thread(target=self._run, name=f"RedisSink {self.stream}", daemon=True)
        self._thread = thread
        thread.start()

    def _stop(self) -> None:
        with self._cond:
            self._stopping = True
            thread = self._thread
            self._cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()
        with self._cond:
            self._thread = None
        if self._owns_client:
            self._client.close()

    def _take(self) -> Optional[list[Any]]:
        """Wait for work; return the next batch's script arguments, or ``None`` to stop."""
        with self._cond:
            while not self._queue and (self._end_text is None or self._ended):
                if self._stopping:
                    return None
                self._cond.wait()
            if self._stopping:
                return None  # close(): what is queued is dropped
            count = min(len(self._queue), self._batch_size)
            texts = [self._queue.popleft() for _ in range(count)]
            first = self._acked + 1
            end = self._end_text if not self._queue and self._end_text is not None else ""
        snapshot, minid = "", "0"
        if self._max_len is not None and texts:
            for text in texts:
                self._state = apply_atomic(self._state, json.loads(text))
            self._stream_len += count
            if self._stream_len > self._max_len:
                stop = first + count - 1
                snapshot = dumps(self._state)
                minid = f"{stop - self._keep + 1}-0"
                self._stream_len = min(self._stream_len, self._keep)
        return [self._token, first, end, snapshot, minid, self._ttl_ms, *texts]

    def _run(self) -> None:
        backoff = 0.02
        while True:
            args = self._take()
            if args is None:
                return
            while True:
                try:
                    last = int(self._script(keys=list(self._keys), args=args))
                except _UNREACHABLE:
                    with self._cond:
                        self._last_failure = time.monotonic()
                        if self._failing_since is None:
                            self._failing_since = self._last_failure
                        self._cond.notify_all()
                        if self._stopping:
                            return  # close(): give up on what is queued
                        self._cond.wait(backoff)
                    backoff = min(backoff * 2, 0.5)
                    continue
                except ResponseError as exc:
                    self._fail(exc)
                    return
                break
            backoff = 0.02
            with self._cond:
                self._acked = last
                self._failing_since = None
                self.batches += 1
                if args[2]:
                    self._ended = True
                self._cond.notify_all()

    def _fail(self, exc: ResponseError) -> None:
        words = str(exc).split()
        found = int(words[-1]) if words and words[-1].isdigit() else -1
        reasons = {
            "owner": "another producer owns it",
            "ended": "it has already ended",
            "gap": "the server lost patches this sink appended (restarted without persistence)",
        }
        kind = words[1] if len(words) > 2 and words[0] == "LOGSTREAM" else ""
        if kind in reasons:
            error: BaseException = StreamConflictError(
                self.stream, self._acked, found, reasons[kind]
            )
        else:
            error = DataError(f"can't append to Redis stream {self.stream}: {exc}")
        with self._cond:
            self._fatal = error
            self._cond.notify_all()


# -- reading ----------------------------------------------------------------------------------


def _entry_id(raw: Any) -> tuple[int, int]:
    ms, _, seq = _text(raw).partition("-")
    return int(ms), int(seq)


def _fields(raw: Any) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in raw.items()}


class _Reader:
    """The reading rules, without I/O: entries in, items out, gaps found."""

    def __init__(self, log_id: str, stream: str) -> None:
        self.log_id = log_id
        self.stream = stream

    def bad(self, what: str) -> DataError:
        return DataError(f"can't read Redis stream {self.stream}: {what}")

    def decode(self, entry_id: Any, fields: Any) -> tuple[int, int, Any]:
        """Return ``(position, kind, payload)``: kind 0 a patch (its ops), 1 the end."""
        try:
            position, seq = _entry_id(entry_id)
            values = _fields(fields)
            if seq == 0:
                ops = json.loads(values["ops"])
                if not isinstance(ops, list):
                    raise ValueError("ops is not a list")
                return position, 0, ops
            end = json.loads(values["end"])
            return position, 1, end.get("error")
        except (KeyError, ValueError, AttributeError) as exc:
            raise self.bad(f"entry {_text(entry_id)} is not a logstream entry ({exc})") from None

    def items(self, entries: Sequence[Any], position: int) -> Iterator[Union[Frame, LogEnd, None]]:
        """Yield the items of ``entries`` read after ``position``, in order.

        Entries at or before the position are skipped; the end record is yielded (as a
        :class:`LogEnd`) last; a gap (patches compacted away under a slow reader) yields
        ``None`` and stops: the caller resyncs from a snapshot.
        """
        for entry_id, fields in entries:
            pos, kind, payload = self.decode(entry_id, fields)
            if kind == 1:
                yield LogEnd(self.log_id, pos, payload)
                return
            if pos <= position:
                continue
            if pos != position + 1:
                yield None
                return
            position = pos
            yield Frame(self.log_id, pos, payload, False)

    def end_of(self, meta: dict[str, str]) -> Optional[LogEnd]:
        text = meta.get("end")
        if text is None:
            return None
        try:
            record = json.loads(text)
            return LogEnd(self.log_id, int(record["patches"]), record.get("error"))
        except (KeyError, ValueError, TypeError) as exc:
            raise self.bad(f"its end record is malformed ({exc})") from None

    def snapshot(self, snap: dict[str, str], entries: Sequence[Any]) -> Frame:
        """Build the state now from the stored snapshot and the entries after it."""
        try:
            position = int(snap.get("pos", "0"))
            state: Any = json.loads(snap["state"]) if "state" in snap else None
        except ValueError as exc:
            raise self.bad(f"its snapshot is not a logstream snapshot ({exc})") from None
        for entry_id, fields in entries:
            pos, kind, ops = self.decode(entry_id, fields)
            if kind != 0 or pos <= position:
                continue
            if pos != position + 1:
                raise self.bad(f"patches {position + 1}..{pos - 1} are missing")
            state = apply_atomic(state, ops)
            position = pos
        return Frame(self.log_id, position, snapshot_ops(state), True)

    def start(
        self, after: int, meta: dict[str, str], snap_pos: Optional[Any], first: Sequence[Any]
    ) -> bool:
        """Check ``after`` against the log; return whether a snapshot must stand in."""
        try:
            last = int(meta.get("last", "0"))
            covered = int(_text(snap_pos)) if snap_pos is not None else -1
        except ValueError as exc:
            raise self.bad(f"its meta or snapshot position is not logstream's ({exc})") from None
        if type(after) is not int:
            msg = f"can't resume log {self.log_id} after {after!r}: a position is an int >= 0"
            raise MalformedResumeIdError(msg, self.log_id, None, None, last)
        check_not_future(self.log_id, after, last)
        if after == last:
            return False
        oldest = _entry_id(first[0][0]) if first else None
        if oldest is not None and oldest[1] == 0 and oldest[0] <= after + 1:
            return False
        if covered < after:
            msg = (
                f"can't resume log {self.log_id} after position {after}: the patches after "
                f"it are gone from Redis stream {self.stream} and no snapshot covers them "
                f"(snapshot at {covered}, log at {last}); reconnect without Last-Event-ID"
            )
            raise StaleResumeIdError(msg, self.log_id, None, after, last)
        return True


class RedisSource:
    """Read a run log from a Redis stream, live, from any position: a ``LogSource``.

    Each :meth:`frames` / :meth:`aframes` call is a subscriber of its own that reads with
    blocking ``XREAD`` (sync, or ``redis.asyncio``), so any number of readers in any
    number of processes follow a producer's :class:`RedisSink`. The subscription follows
    :class:`~logstream._wire.LogSource`'s contract: a snapshot or the history, or a resume
    after a position (a snapshot plus the patches after it where patches were compacted
    away), then live patches until the end. A lost connection raises
    :class:`~logstream.RedisUnavailableError` naming the last position handed out:
    subscribe again with ``after=`` that position once the server is back.

    Args:
        client: A Redis URL, or a ``redis.Redis`` client (then pass ``aclient`` too for
            the async methods).
        log_id: The log's id, as its :class:`RedisSink` was given it.
        prefix: The prefix of the log's Redis keys.
        aclient: A ``redis.asyncio.Redis`` client for the async methods; ``None`` with a
            URL: each async call opens its own (safe in any event loop).
        count: The most entries read in one round trip.

    Raises:
        ConfigError: A bad ``client`` or ``log_id``.
    """

    def __init__(
        self,
        client: RedisClient,
        log_id: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        aclient: Optional[aioredis.Redis] = None,
        count: int = 1000,
    ) -> None:
        """Make the source; nothing is read before the first call."""
        self._log_id = _check_id(log_id, "RedisSource")
        self._url = client if isinstance(client, str) else None
        self._client, _ = _sync_client(client, "RedisSource", None)
        self._aclient = aclient
        self._keys = _keys(prefix, self._log_id)
        self.stream = self._keys[0]
        """The Redis key of the log's stream."""
        self._count = count
        self._reader = _Reader(self._log_id, self.stream)

    @property
    def log_id(self) -> str:
        """The log's id."""
        return self._log_id

    def __repr__(self) -> str:
        """Show the stream."""
        return f"<RedisSource {self.stream}>"

    def close(self) -> None:
        """Close the sync client if the source made it from a URL."""
        if self._url is not None:
            self._client.close()

    def _unavailable(self, position: int) -> RedisUnavailableError:
        return RedisUnavailableError(self.stream, position, "source")

    # -- sync -------------------------------------------------------------------------------

    def _snapshot_reads(self, pipe: Any) -> None:
        stream, _, snap = self._keys
        pipe.hgetall(snap)
        pipe.xrange(stream, "-", "+")

    def snapshot(self) -> Frame:
        """Return the state now, at the latest position, as a snapshot frame.

        Raises:
            RedisUnavailableError: The server could not be reached.
        """
        return self._snapshot_at(0)

    def _snapshot_at(self, position: int) -> Frame:
        """Return :meth:`snapshot`; a lost server is named as lost at ``position``."""
        try:
            with self._client.pipeline(transaction=True) as pipe:
                self._snapshot_reads(pipe)
                snap, entries = pipe.execute()
        except _UNREACHABLE:
            raise self._unavailable(position) from None
        return self._reader.snapshot(_fields(snap), entries)

    def end_record(self) -> Optional[LogEnd]:
        """Return the log's end if it ended, else ``None``.

        Raises:
            RedisUnavailableError: The server could not be reached.
        """
        try:
            meta = self._client.hgetall(self._keys[1])
        except _UNREACHABLE:
            raise self._unavailable(0) from None
        return self._reader.end_of(_fields(meta))

    def _start_reads(self, pipe: Any) -> None:
        stream, meta, snap = self._keys
        pipe.hgetall(meta)
        pipe.hget(snap, "pos")
        pipe.xrange(stream, "-", "+", count=1)

    def frames(
        self,
        after: Optional[int] = None,
        *,
        snapshot_first: bool = True,
        timeout: Optional[float] = None,
    ) -> Iterator[WireItem]:
        """Subscribe, blocking: frames as :class:`~logstream._wire.LogSource` says, then the end.

        Args:
            after: The position to resume after, or ``None`` for a new subscriber.
            snapshot_first: For ``after=None``: start with a snapshot or the history.
            timeout: Yield ``None`` after this many seconds without an item.

        Yields:
            Frames, heartbeats (``None``), and last a :class:`~logstream._wire.LogEnd`.

        Raises:
            ResumeError: ``after`` is in the future, negative, or stale.
            RedisUnavailableError: The server could not be reached; resume from its
                ``position``.
        """
        position = 0 if after is None else after
        try:
            frame: Optional[Frame]
            if after is None and snapshot_first:
                frame = self._snapshot_at(position)
            else:
                with self._client.pipeline(transaction=True) as pipe:
                    self._start_reads(pipe)
                    meta, snap_pos, first = pipe.execute()
                need = self._reader.start(position, _fields(meta), snap_pos, first)
                frame = self._snapshot_at(position) if need else None
        except _UNREACHABLE:
            raise self._unavailable(position) from None
        if frame is not None:
            position = frame.position
            yield frame
        block = 5000 if timeout is None else max(1, int(timeout * 1000))
        while True:
            try:
                reply: Any = self._client.xread(
                    {self.stream: f"{position}-0"}, count=self._count, block=block
                )
            except _UNREACHABLE:
                raise self._unavailable(position) from None
            if not reply:
                if timeout is not None:
                    yield None
                continue
            for item in self._reader.items(reply[0][1], position):
                if item is None:  # compacted under a slow reader: resync
                    item = self._snapshot_at(position)
                yield item
                if isinstance(item, LogEnd):
                    return
                assert isinstance(item, Frame)
                position = item.position

    # -- async ------------------------------------------------------------------------------

    def _open_async(self) -> tuple[aioredis.Redis, bool]:
        if self._aclient is not None:
            return self._aclient, False
        if self._url is None:
            msg = (
                f"RedisSource {self.stream} was made with a client object: pass "
                "aclient=redis.asyncio.Redis(...) for the async methods, or a URL"
            )
            raise ConfigError(msg)
        return aioredis.Redis.from_url(self._url, socket_connect_timeout=5), True

    async def _asnapshot(self, client: aioredis.Redis) -> Frame:
        async with client.pipeline(transaction=True) as pipe:
            self._snapshot_reads(pipe)
            snap, entries = await pipe.execute()
        return self._reader.snapshot(_fields(snap), entries)

    async def asnapshot(self) -> Frame:
        """Return :meth:`snapshot` without blocking the event loop."""
        client, owned = self._open_async()
        try:
            return await self._asnapshot(client)
        except _UNREACHABLE:
            raise self._unavailable(0) from None
        finally:
            if owned:
                await client.aclose()

    async def aend_record(self) -> Optional[LogEnd]:
        """Return :meth:`end_record` without blocking the event loop."""
        client, owned = self._open_async()
        try:
            meta = await client.hgetall(self._keys[1])
        except _UNREACHABLE:
            raise self._unavailable(0) from None
        finally:
            if owned:
                await client.aclose()
        return self._reader.end_of(_fields(meta))

    async def aframes(
        self,
        after: Optional[int] = None,
        *,
        snapshot_first: bool = True,
        timeout: Optional[float] = None,
    ) -> AsyncIterator[WireItem]:
        """Subscribe in an event loop: the same items as :meth:`frames`, never blocking it.

        Args:
            after: The position to resume after, or ``None`` for a new subscriber.
            snapshot_first: For ``after=None``: start with a snapshot or the history.
            timeout: Yield ``None`` after this many seconds without an item.

        Yields:
            Frames, heartbeats (``None``), and last a :class:`~logstream._wire.LogEnd`.

        Raises:
            ResumeError: ``after`` is in the future, negative, or stale.
            RedisUnavailableError: The server could not be reached.
        """
        client, owned = self._open_async()
        position = 0 if after is None else after
        try:
            try:
                if after is None and snapshot_first:
                    frame: Optional[Frame] = await self._asnapshot(client)
                else:
                    async with client.pipeline(transaction=True) as pipe:
                        self._start_reads(pipe)
                        meta, snap_pos, first = await pipe.execute()
                    need = self._reader.start(position, _fields(meta), snap_pos, first)
                    frame = await self._asnapshot(client) if need else None
            except _UNREACHABLE:
                raise self._unavailable(position) from None
            if frame is not None:
                position = frame.position
                yield frame
            block = 5000 if timeout is None else max(1, int(timeout * 1000))
            while True:
                try:
                    reply: Any = await client.xread(
                        {self.stream: f"{position}-0"}, count=self._count, block=block
                    )
                    if not reply:
                        if timeout is not None:
                            yield None
                        continue
                    items = reply[0][1]
                except _UNREACHABLE:
                    raise self._unavailable(position) from None
                for item in self._reader.items(items, position):
                    if item is None:  # compacted under a slow reader: resync
                        try:
                            item = await self._asnapshot(client)
                        except _UNREACHABLE:
                            raise self._unavailable(position) from None
                    yield item
                    if isinstance(item, LogEnd):
                        return
                    assert isinstance(item, Frame)
                    position = item.position
        finally:
            if owned:
                await client.aclose()


def _is_log_id(text: Any) -> bool:
    try:
        check_log_id(text)
    except ValueError:
        return False
    return True


class RedisLogs(Mapping[str, RedisSource]):
    """Every log in a Redis database, by log id: a live mapping of :class:`RedisSource`.

    Hand it to the ASGI app (``RunLogApp(RedisLogs(url))``) to serve every run that any
    producer process writes, as it appears: the mapping asks Redis at each lookup, so a run
    started after the server is listed and served at once.

    Args:
        client: A Redis URL (the sources then work sync and async).
        prefix: The prefix of the logs' keys, as the sinks were given it.

    Raises:
        ConfigError: ``client`` is not a URL.
    """

    def __init__(self, client: str, *, prefix: str = DEFAULT_PREFIX) -> None:
        """Make the mapping; nothing is read before the first lookup."""
        if not isinstance(client, str):
            msg = f"RedisLogs takes a Redis URL, not {type(client).__name__}"
            raise ConfigError(msg)
        self._url = client
        self._prefix = prefix
        self._client, _ = _sync_client(client, "RedisLogs", 30)
        self._sources: dict[str, RedisSource] = {}

    def __getitem__(self, log_id: str) -> RedisSource:
        """Return the source of ``log_id``; ``KeyError`` if no producer wrote it.

        Raises:
            KeyError: No producer wrote ``log_id``.
            RedisUnavailableError: The server could not be reached.
        """
        source = self._sources.get(log_id)
        if source is not None:
            return source
        if not _is_log_id(log_id):
            raise KeyError(log_id)
        meta = _keys(self._prefix, log_id)[1]
        try:
            found = self._client.exists(meta)
        except _UNREACHABLE:
            raise RedisUnavailableError(self._prefix + log_id, 0, "source") from None
        if not found:
            raise KeyError(log_id)
        source = RedisSource(self._url, log_id, prefix=self._prefix)
        if len(self._sources) >= 10_000:
            self._sources.clear()  # a bound: sources are cheap to make again
        self._sources[log_id] = source
        return source

    def __iter__(self) -> Iterator[str]:
        """Yield the log ids in the database (``SCAN``: each at least once, in no order).

        Raises:
            RedisUnavailableError: The server could not be reached.
        """
        seen: set[str] = set()
        start, end = len(self._prefix), -len(":meta")
        keys = self._client.scan_iter(match=self._prefix + "*:meta", count=1000)
        while True:
            try:
                key = next(keys)
            except StopIteration:
                return
            except _UNREACHABLE:
                raise RedisUnavailableError(self._prefix + "*", 0, "source") from None
            log_id = _text(key)[start:end]
            if log_id not in seen and _is_log_id(log_id):
                seen.add(log_id)
                yield log_id

    def __len__(self) -> int:
        """Return how many logs the database holds."""
        return sum(1 for _ in self)

    def __repr__(self) -> str:
        """Show the prefix."""
        return f"<RedisLogs {self._prefix}*>"
