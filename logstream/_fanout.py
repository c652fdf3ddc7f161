"""A positioned run log in memory: history, snapshots, and fan-out to any number of readers.

This module's one responsibility is :class:`PositionedLog`, the in-process
:class:`~logstream._wire.LogSource`. It takes patches (from a tracer, ``stream_log`` or
by hand), numbers them 1, 2, 3..., keeps the state they build (applied in place) and their
history (optionally only the last ``max_history`` patches), and lets any number of
subscribers, sync or async, read from any position while the producer goes on.

Subscribers share the one history: a subscriber is a cursor into it, not a queue, so the
producer's cost per patch does not grow with the number of subscribers, and a slow
subscriber holds no memory of its own. Its bound, ``max_lag``, is how far behind the log
it may fall; past it, ``on_lag`` says what happens: ``"resync"`` (the default) skips it
ahead with a fresh snapshot, ``"error"`` ends it with
:class:`~logstream.SubscriberLagError`. A subscriber whose next patches were compacted
away is handled by the same policy.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Sequence
from typing import Any, Optional, Union

from typing_extensions import Literal

from ._apply import deep_copy, replay
from ._errors import (
    ConfigError,
    MalformedResumeIdError,
    NotAPatchError,
    SinkClosedError,
    StaleResumeIdError,
    SubscriberLagError,
)
from ._patches import JsonPatchOp, RunLog, RunLogPatch, apply_ops
from ._text import error_text
from ._wire import Frame, LogEnd, WireItem, check_log_id, check_not_future, snapshot_ops

__all__ = ["PositionedLog"]

OnLag = Literal["resync", "error"]
"""What happens to a subscriber that fell past its bound: a fresh snapshot, or an error."""

_ON_LAG: frozenset[str] = frozenset({"resync", "error"})
_PRUNE_AT = 64  # parked async readers kept before done (timed out, cancelled) ones go
_UNSET: Any = object()


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def _check_bound(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    if type(value) is not int or value < 1:
        msg = f"{name} must be None or an int >= 1, got {value!r}"
        raise ConfigError(msg)
    return value


def _check_on_lag(value: Any) -> OnLag:
    if value not in _ON_LAG:
        msg = f"on_lag must be 'resync' or 'error', got {value!r}"
        raise ConfigError(msg)
    return value  # type: ignore[no-any-return]


class PositionedLog:
    """A run log that numbers its patches and serves them to many subscribers at once.

    Feed it patches with :meth:`append` (or :meth:`consume` / :meth:`aconsume` /
    :meth:`pump` a tracer, ``stream_log(...)`` or a handler: it is their one consumer),
    end it with :meth:`end`, and read it with :meth:`frames` / :meth:`aframes` (any number
    of subscribers, any thread or event loop, joining any time, after the end too) or
    :meth:`snapshot`. It keeps the :class:`~logstream._wire.LogSource` contract.
    Thread-safe.

    Args:
        log_id: The log's id (``[A-Za-z0-9._-]``, 1 to 200 characters); a fresh
            ``uuid4().hex`` if ``None``.
        max_history: Keep at most this many patches replayable; older ones are compacted
            into a snapshot (a resume from before them gets the snapshot and the tail).
            ``None``: keep every patch.
        max_lag: The default bound of a subscriber, in patches behind the log; ``None``:
            unbounded (with ``max_history`` set, a subscriber behind the compacted part
            still meets ``on_lag``).
        on_lag: The default policy past the bound: ``"resync"`` (a fresh snapshot, then
            on) or ``"error"`` (:class:`~logstream.SubscriberLagError`).

    Raises:
        ConfigError: An option is of the wrong type or out of range.

    Example:
        >>> log = PositionedLog("run1")
        >>> log.append([{"op": "replace", "path": "", "value": {"n": 0}}])
        1
        >>> log.append([{"op": "replace", "path": "/n", "value": 1}])
        2
        >>> log.end()
        >>> [type(item).__name__ + str(item.position) for item in log.frames()]
        ['Frame2', 'LogEnd2']
        >>> [type(item).__name__ + str(item.position) for item in log.frames(after=0)]
        ['Frame1', 'Frame2', 'LogEnd2']
    """

    def __init__(
        self,
        log_id: Optional[str] = None,
        *,
        max_history: Optional[int] = None,
        max_lag: Optional[int] = None,
        on_lag: OnLag = "resync",
    ) -> None:
        """Create an empty, open log (position 0, state ``None``)."""
        if log_id is None:
            import uuid

            log_id = uuid.uuid4().hex
        try:
            self._log_id = check_log_id(log_id)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self._max_history = _check_bound("max_history", max_history)
        self._max_lag = _check_bound("max_lag", max_lag)
        self._on_lag = _check_on_lag(on_lag)
        self._cond = threading.Condition(threading.Lock())
        self._state: Any = None
        self._position = 0
        # history[i] is the patch at position base + i + 1; base_state is the state at base
        self._history: list[list[JsonPatchOp]] = []
        self._base = 0
        self._base_state: Any = None
        self._end: Optional[LogEnd] = None
        self._snap: Optional[Frame] = None  # the snapshot at _position, once made
        self._sync_waiting = 0
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._live: set[object] = set()

    # -- reading the log's state --------------------------------------------------------

    @property
    def log_id(self) -> str:
        """The log's id, as its SSE ids carry it."""
        return self._log_id

    @property
    def position(self) -> int:
        """The position of the last patch (0 before any)."""
        return self._position

    @property
    def oldest(self) -> int:
        """The oldest position a subscriber can resume after without a snapshot."""
        with self._cond:
            return self._oldest_locked()

    @property
    def ended(self) -> bool:
        """Whether :meth:`end` was called."""
        return self._end is not None

    @property
    def subscribers(self) -> int:
        """How many subscribers are reading now (started and not yet finished or closed)."""
        return len(self._live)

    def _oldest_locked(self) -> int:
        if self._max_history is None:
            return self._base
        return max(self._base, self._position - self._max_history)

    def snapshot(self, at: Optional[int] = None) -> Frame:
        """Return a snapshot: the state at a position as one ``replace`` at ``""``.

        Args:
            at: The position; ``None`` for the latest. A past position must not be older
                than :attr:`oldest`; it is rebuilt from the compacted base state by
                replaying the patches up to it, with the log's lock held.

        Returns:
            A frame with ``snapshot=True``; its value is a copy no one else changes
            (shared with other callers: treat it as read-only).

        Raises:
            FutureResumeIdError: ``at`` is beyond the latest position.
            StaleResumeIdError: ``at`` is older than :attr:`oldest`.
            MalformedResumeIdError: ``at`` is not an int >= 0.
        """
        with self._cond:
            if at is None or at == self._position:
                return self._snapshot_locked()
            self._check_after(at)
            if at < self._oldest_locked():
                msg = (
                    f"can't take a snapshot of log {self._log_id} at position {at}: the "
                    f"patches up to {self._oldest_locked()} were compacted (max_history="
                    f"{self._max_history}); take the latest snapshot"
                )
                raise StaleResumeIdError(msg, self._log_id, None, at, self._position)
            ops = [op for patch in self._history[: at - self._base] for op in patch]
            state = replay(deep_copy(self._base_state), ops, 0, len(ops))
        return Frame(self._log_id, at, snapshot_ops(state), True)

    async def asnapshot(self) -> Frame:
        """Return :meth:`snapshot` of the latest position (in memory: it does not wait)."""
        return self.snapshot()

    def end_record(self) -> Optional[LogEnd]:
        """Return the log's end, or ``None`` while it is live."""
        return self._end

    async def aend_record(self) -> Optional[LogEnd]:
        """Return :meth:`end_record`."""
        return self._end

    def _snapshot_locked(self) -> Frame:
        snap = self._snap
        if snap is None:
            state = deep_copy(self._state)
            snap = self._snap = Frame(self._log_id, self._position, snapshot_ops(state), True)
        return snap

    def _check_after(self, after: Any) -> None:
        if type(after) is not int:
            msg = f"can't resume log {self._log_id} after {after!r}: a position is an int >= 0"
            raise MalformedResumeIdError(msg, self._log_id, None, None, self._position)
        check_not_future(self._log_id, after, self._position)

    # -- writing -------------------------------------------------------------------------

    def append(self, patch: Union[RunLogPatch, Sequence[JsonPatchOp]]) -> int:
        """Add one patch at the next position and wake the subscribers.

        The log keeps the op list as given (subscribers get it): do not change it after.

        Args:
            patch: A :class:`~logstream.RunLogPatch`, or a list (or tuple) of ops.

        Returns:
            The patch's position.

        Raises:
            NotAPatchError: ``patch`` is a ``RunLog`` (every op so far) or not a patch.
            PatchApplyError: Its ops do not apply to the state; nothing changed.
            SinkClosedError: The log has ended.
        """
        if type(patch) is RunLogPatch:
            ops = patch.ops
        elif type(patch) is list:
            ops = patch
        elif type(patch) is tuple:
            ops = list(patch)
        elif isinstance(patch, RunLog) or not isinstance(patch, RunLogPatch):
            msg = (
                f"can't append a {type(patch).__name__} to log {self._log_id}: it takes a "
                "RunLogPatch or a list of ops (a RunLog holds every op so far)"
            )
            raise NotAPatchError(patch, "log append", msg)
        else:
            ops = patch.ops
        with self._cond:
            if self._end is not None:
                msg = (
                    f"can't append a patch to log {self._log_id}: it ended at position "
                    f"{self._position}"
                )
                raise SinkClosedError(msg)
            self._state = apply_ops(self._state, ops)
            self._history.append(ops)
            self._position += 1
            position = self._position
            self._snap = None
            limit = self._max_history
            if limit is not None and len(self._history) >= 2 * limit:
                self._compact_locked(len(self._history) - limit)
            if self._sync_waiting:
                self._cond.notify_all()
            waiters = self._async_waiters
            if waiters:
                self._async_waiters = []
        if waiters:
            _wake_all(waiters)
        return position

    write = append
    """The sink-shaped name of :meth:`append` (a sink's ``write(patch)``)."""

    def _compact_locked(self, drop: int) -> None:
        """Fold the ``drop`` oldest patches into the base state (each applied once more)."""
        ops = [op for patch in self._history[:drop] for op in patch]
        self._base_state = replay(self._base_state, ops, 0, len(ops))
        del self._history[:drop]
        self._base += drop

    def end(self, error: Union[BaseException, str, None] = None) -> None:
        """End the log: subscribers get a :class:`~logstream._wire.LogEnd` after the last patch.

        Args:
            error: What the traced code raised, if it failed; kept as ``"Type: message"``.

        Raises:
            SinkClosedError: The log has already ended.
        """
        with self._cond:
            if self._end is not None:
                msg = f"can't end log {self._log_id}: it already ended"
                raise SinkClosedError(msg)
            self._end = LogEnd(self._log_id, self._position, error_text(error))
            self._cond.notify_all()
            waiters, self._async_waiters = self._async_waiters, []
        _wake_all(waiters)

    def close(self) -> None:
        """End the log without an error if it is still open; otherwise do nothing."""
        with self._cond:
            if self._end is not None:
                return
        try:
            self.end()
        except SinkClosedError:  # ended by another thread meanwhile
            pass

    def consume(self, patches: Iterable[Any]) -> int:
        """Append every patch of ``patches``, then end the log.

        If iterating ``patches`` raises (``stream_log(...)`` passing on the traced code's
        error), the log ends with that error and the error propagates.

        Args:
            patches: A tracer, a handler, ``stream_log(...)``: anything yielding patches.

        Returns:
            The last position.
        """
        try:
            for patch in patches:
                self.append(patch)
        except BaseException as exc:
            if self._end is None:
                self.end(exc)
            raise
        self.end()
        return self._position

    async def aconsume(self, patches: AsyncIterable[Any]) -> int:
        """Append every patch of the async iterable ``patches``, then end the log.

        Args:
            patches: A tracer, a handler, ``astream_log(...)``.

        Returns:
            The last position.
        """
        try:
            async for patch in patches:
                self.append(patch)
        except BaseException as exc:
            if self._end is None:
                self.end(exc)
            raise
        self.end()
        return self._position

    def pump(self, patches: Iterable[Any], *, name: Optional[str] = None) -> threading.Thread:
        """Start a daemon thread that runs :meth:`consume` on ``patches``; return it.

        The thread is the one consumer of a tracer's stream, so the tracer's own
        ``get``/iteration must not be used besides. An error from ``patches`` ends the
        log (subscribers see it in the end frame) and is not raised again in the thread.

        Args:
            patches: A tracer, a handler, ``stream_log(...)``.
            name: The thread's name.

        Returns:
            The started thread (join it to wait for the end).
        """

        def run() -> None:
            try:
                self.consume(patches)
            except Exception:  # recorded in the end frame
                pass

        thread = threading.Thread(target=run, name=name or f"logstream-pump-{self._log_id}")
        thread.daemon = True
        thread.start()
        return thread

    # -- subscribing ---------------------------------------------------------------------

    def _start(
        self, after: Optional[int], snapshot_first: bool, max_lag: Any, on_lag: Any
    ) -> tuple[int, Optional[Frame], Optional[int], OnLag]:
        bound = self._max_lag if max_lag is _UNSET else _check_bound("max_lag", max_lag)
        policy = self._on_lag if on_lag is _UNSET else _check_on_lag(on_lag)
        with self._cond:
            if after is None:
                if snapshot_first:
                    snap = self._snapshot_locked()
                    return snap.position, snap, bound, policy
                after = 0
            self._check_after(after)
            if after < self._oldest_locked():
                snap = self._snapshot_locked()
                return snap.position, snap, bound, policy
        return after, None, bound, policy

    def _take_locked(
        self, cursor: int, bound: Optional[int], policy: OnLag
    ) -> tuple[Optional[Frame], list[list[JsonPatchOp]], Optional[LogEnd]]:
        """Return what a subscriber at ``cursor`` reads next: a resync, patches, the end."""
        position = self._position
        lagging = bound is not None and position - cursor > bound
        if lagging or cursor < self._oldest_locked():
            if policy == "error":
                raise SubscriberLagError(self._log_id, cursor, position, bound if lagging else None)
            return self._snapshot_locked(), [], self._end
        base = self._base
        return None, self._history[cursor - base : position - base], self._end

    def frames(
        self,
        after: Optional[int] = None,
        *,
        snapshot_first: bool = True,
        timeout: Optional[float] = None,
        max_lag: Optional[int] = _UNSET,
        on_lag: OnLag = _UNSET,
    ) -> Iterator[WireItem]:
        """Subscribe, blocking (see :class:`~logstream._wire.LogSource` for what comes).

        Args:
            after: The position to resume after, or ``None`` for a new subscriber.
            snapshot_first: For ``after=None``: a snapshot first, or the whole history.
            timeout: Yield ``None`` after this many seconds without a frame.
            max_lag: This subscriber's bound (default: the log's).
            on_lag: This subscriber's policy (default: the log's).

        Returns:
            An iterator of frames, heartbeats (``None``) and last the end.

        Raises:
            ResumeError: ``after`` is from the future or not a position (raised here, by
                the call).
            SubscriberLagError: Later, from ``next``, under ``on_lag="error"``.
        """
        cursor, first, bound, policy = self._start(after, snapshot_first, max_lag, on_lag)
        return self._follow(cursor, first, timeout, bound, policy)

    def _follow(
        self,
        cursor: int,
        first: Optional[Frame],
        timeout: Optional[float],
        bound: Optional[int],
        policy: OnLag,
    ) -> Iterator[WireItem]:
        token = object()
        self._live.add(token)
        try:
            if first is not None:
                yield first
            log_id = self._log_id
            cond = self._cond
            while True:
                with cond:
                    if cursor == self._position and self._end is None:
                        self._sync_waiting += 1
                        try:
                            cond.wait(timeout)
                        finally:
                            self._sync_waiting -= 1
                    idle = cursor == self._position and self._end is None
                    if not idle:
                        snap, batch, end = self._take_locked(cursor, bound, policy)
                if idle:
                    if timeout is not None:
                        yield None
                    continue
                if snap is not None:
                    cursor = snap.position
                yield from _taken(log_id, cursor, snap, batch)
                cursor += len(batch)
                if end is not None and cursor == end.position:
                    yield end
                    return
        finally:
            self._live.discard(token)

    def aframes(
        self,
        after: Optional[int] = None,
        *,
        snapshot_first: bool = True,
        timeout: Optional[float] = None,
        max_lag: Optional[int] = _UNSET,
        on_lag: OnLag = _UNSET,
    ) -> AsyncIterator[WireItem]:
        """Subscribe in an event loop: the items of :meth:`frames`, never blocking the loop.

        Args:
            after: The position to resume after, or ``None`` for a new subscriber.
            snapshot_first: For ``after=None``: a snapshot first, or the whole history.
            timeout: Yield ``None`` after this many seconds without a frame.
            max_lag: This subscriber's bound (default: the log's).
            on_lag: This subscriber's policy (default: the log's).

        Returns:
            An async generator of frames, heartbeats (``None``) and last the end; close it
            (``aclose()``) if you stop early.

        Raises:
            ResumeError: ``after`` is from the future or not a position (by the call).
        """
        cursor, first, bound, policy = self._start(after, snapshot_first, max_lag, on_lag)
        return self._afollow(cursor, first, timeout, bound, policy)

    async def _afollow(
        self,
        cursor: int,
        first: Optional[Frame],
        timeout: Optional[float],
        bound: Optional[int],
        policy: OnLag,
    ) -> AsyncIterator[WireItem]:
        token = object()
        self._live.add(token)
        try:
            if first is not None:
                yield first
            log_id = self._log_id
            cond = self._cond
            loop = asyncio.get_running_loop()
            while True:
                fut: Optional[asyncio.Future[None]] = None
                with cond:
                    if cursor == self._position and self._end is None:
                        fut = loop.create_future()
                        waiters = self._async_waiters
                        if len(waiters) >= _PRUNE_AT:
                            waiters[:] = [w for w in waiters if not w[1].done()]
                        waiters.append((loop, fut))
                    else:
                        snap, batch, end = self._take_locked(cursor, bound, policy)
                if fut is not None:
                    # No cleanup on timeout or cancellation (it would take the lock): a
                    # done future is dropped at the next wake-up or pruned.
                    if timeout is None:
                        await fut
                    else:
                        try:
                            await asyncio.wait_for(fut, timeout)
                        except asyncio.TimeoutError:
                            yield None
                    continue
                if snap is not None:
                    cursor = snap.position
                for item in _taken(log_id, cursor, snap, batch):
                    yield item
                cursor += len(batch)
                if end is not None and cursor == end.position:
                    yield end
                    return
        finally:
            self._live.discard(token)

    def __repr__(self) -> str:
        """Show the id, the position and whether it ended."""
        state = "ended" if self._end is not None else "live"
        return f"<PositionedLog {self._log_id} at {self._position}, {state}>"


def _taken(
    log_id: str, cursor: int, snap: Optional[Frame], batch: list[list[JsonPatchOp]]
) -> Iterator[Frame]:
    """Yield what a subscriber took: the snapshot, then the patches after ``cursor``."""
    if snap is not None:
        yield snap
    for position, ops in enumerate(batch, cursor + 1):
        yield Frame(log_id, position, ops, False)


def _wake_all(waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
    for loop, fut in waiters:
        if fut.done():
            continue
        try:
            loop.call_soon_threadsafe(_wake, fut)
        except RuntimeError:  # the loop is closed: no one waits there any more
            pass
