"""The patch channel: many producer threads in, one consumer out, sync or async.

Producers call :meth:`PatchChannel.put` from any thread; it returns ``False`` once the
channel is closed. The consumer reads with a plain ``for`` loop (blocking, e.g. in
another thread) or with ``async for`` in any event loop, which need not exist when the
channel is built: an async reader parks a future on its own loop and producers wake it
thread-safely. Items put before :meth:`close` are all delivered, in order, before
iteration ends. A consumer that stops early (``break``, cancellation) leaves the channel
usable and loses nothing: iterating again continues where it left off.

By default the channel is unbounded and :meth:`~PatchChannel.put` never blocks nor
raises, as LangChain's stream. Given ``max_buffer``, at most that many items wait, and a
put that finds the buffer full either blocks until the consumer makes room (``"block"``,
for at most ``block_timeout`` seconds) or raises
:class:`~logstream._errors.BufferFullError` (``"raise"``); nothing is dropped silently.
:meth:`~PatchChannel.reserve` claims room before the caller changes any state, so a
producer that must not half-apply an event (the tracer) learns that the buffer is full
while nothing has moved yet. :attr:`~PatchChannel.stats` counts what happened.

The consumer never waits for a producer: it takes items without a lock while there are
any, and takes the channel's own lock only to park when the channel is empty (and, on a
bounded channel, to wake a producer that waits for room). Closing wakes every waiter,
producers included. A producer that already serializes all of its puts with a lock of
its own (the tracer) may use :meth:`~PatchChannel.put_serial`, which appends without
taking the channel's lock: one lock per event instead of two.

None of this leans on the GIL, so it holds on free-threaded CPython (PEP 703) too. What
is done without the lock uses only: a load or store of one attribute (one reference,
never torn), and ``collections.deque``'s ``append``, ``pop`` and ``popleft``, which are
documented thread-safe and run under the deque's own lock on a free-threaded build (the
GIL on others). Those deque operations therefore happen in one order, and what a thread
wrote before one of them is seen by a thread after a later one: the deque is where a
lock-free put and a parking reader meet. Each place says which of these it relies on.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any, Generic, Optional, TypeVar

from typing_extensions import Literal

from ._errors import BufferFullError, ConfigError

__all__ = ["BufferStats", "PatchChannel", "WhenFull"]

T = TypeVar("T")

WhenFull = Literal["block", "raise"]
"""What a put does when a bounded channel is full: wait for room, or raise."""

WHEN_FULL_POLICIES: frozenset[str] = frozenset({"block", "raise"})
"""Every valid :data:`WhenFull`."""

_PRUNE_AT = 16  # parked async readers kept before done (cancelled) ones are pruned


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


@dataclass(frozen=True)
class BufferStats:
    """What a channel's buffer went through, read at one moment.

    Attributes:
        max_buffer: The most items that may wait at once, or ``None`` (unbounded).
        when_full: The policy for a full buffer: ``"block"`` or ``"raise"``.
        queued: Items accepted so far.
        delivered: Items handed to a reader (or drained) so far.
        waiting: Items accepted and not yet read (``queued - delivered``).
        high_water: The most items that waited at once.
        blocked: Puts that found the buffer full and waited for room.
        blocked_seconds: The time those puts spent waiting, in total.
        rejected: Puts refused with ``BufferFullError`` (policy ``"raise"``, or a
            ``"block"`` that timed out); their items were never queued.
    """

    max_buffer: Optional[int]
    when_full: WhenFull
    queued: int
    delivered: int
    waiting: int
    high_water: int
    blocked: int
    blocked_seconds: float
    rejected: int


def check_buffer_policy(
    max_buffer: Optional[int], when_full: Optional[str], block_timeout: Optional[float]
) -> WhenFull:
    """Validate a buffering configuration and return its policy (``None`` means ``"block"``).

    Raises:
        ConfigError: ``max_buffer`` is not an int or is below 1, ``when_full`` is
            unknown, ``block_timeout`` is not a number or is negative, or a
            ``block_timeout`` comes with ``when_full="raise"`` (also a ``TypeError`` and
            a ``ValueError``).
    """
    if max_buffer is not None:
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int):
            msg = f"max_buffer must be an int or None, got {max_buffer!r}"
            raise ConfigError(msg)
        if max_buffer < 1:
            msg = f"max_buffer must be at least 1, got {max_buffer}"
            raise ConfigError(msg)
    policy = "block" if when_full is None else when_full
    if policy not in WHEN_FULL_POLICIES:
        msg = f"invalid when_full {when_full!r}: expected one of 'block', 'raise'"
        raise ConfigError(msg)
    if block_timeout is not None:
        if isinstance(block_timeout, bool) or not isinstance(block_timeout, (int, float)):
            msg = f"block_timeout must be a number of seconds or None, got {block_timeout!r}"
            raise ConfigError(msg)
        if block_timeout < 0:
            msg = f"block_timeout must not be negative, got {block_timeout}"
            raise ConfigError(msg)
        if policy != "block":
            msg = "block_timeout applies only to when_full='block'"
            raise ConfigError(msg)
    return policy  # type: ignore[return-value]


class PatchChannel(Generic[T]):
    """A thread-safe, closable FIFO with sync and async readers; unbounded by default.

    Args:
        max_buffer: The most items that may wait at once; ``None`` for no limit.
        when_full: What a put does when ``max_buffer`` items wait: ``"block"`` (the
            default; ``None`` means the same) waits until the consumer reads one or the
            channel closes, ``"raise"`` raises :class:`~logstream._errors.BufferFullError`.
        block_timeout: With ``"block"``, the most seconds a put waits before it raises
            :class:`~logstream._errors.BufferFullError`; ``None`` waits as long as it takes.

    Raises:
        TypeError: ``max_buffer`` or ``block_timeout`` has the wrong type.
        ValueError: A value is out of range or the policy is unknown.

    Example:
        >>> channel = PatchChannel(max_buffer=1, when_full="raise")
        >>> channel.put("a")
        True
        >>> channel.put("b")
        Traceback (most recent call last):
        ...
        logstream._errors.BufferFullError: can't queue the patch of put: the buffer holds \
its limit of 1 patch (when_full='raise')
        >>> channel.close(), list(channel), channel.stats.rejected
        (True, ['a'], 1)
    """

    def __init__(
        self,
        max_buffer: Optional[int] = None,
        *,
        when_full: Optional[WhenFull] = None,
        block_timeout: Optional[float] = None,
    ) -> None:
        """Create an open, empty channel."""
        self._when_full: WhenFull = check_buffer_policy(max_buffer, when_full, block_timeout)
        self._max_buffer = max_buffer
        self._block_timeout = block_timeout
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)  # a reader may go on
        self._room = threading.Condition(self._lock)  # a blocked producer may go on
        self.closed = False
        """Whether :meth:`close` has been called (items may still be waiting); read-only.

        Written only under the lock; read without it as one load of a reference (a
        bool), atomic in free-threaded builds too. A reader may miss a close racing with
        it; puts settle such a race."""
        self._sync_waiters = 0
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._room_waiters = 0  # producers waiting for room
        self._reserved = 0  # room promised by reserve() and not yet used by put_reserved()
        self._queued = 0
        self._high_water = 0
        # A reader found the channel closed and drained (written under the lock).
        self._reader_ended = False
        # put_serial() writes these without the lock, one caller at a time (its caller's
        # lock orders them); stats reads them under the lock, a moment late at worst.
        self._serial_queued = 0
        self._serial_high_water = 0
        self._blocked = 0
        self._blocked_seconds = 0.0
        self._rejected = 0

    # -- state ---------------------------------------------------------------------------

    @property
    def bounded(self) -> bool:
        """Whether the channel has a ``max_buffer``."""
        return self._max_buffer is not None

    @property
    def stats(self) -> BufferStats:
        """What the buffer went through so far (a snapshot)."""
        with self._lock:
            queued = self._queued + self._serial_queued
            waiting = len(self._items)
            return BufferStats(
                max_buffer=self._max_buffer,
                when_full=self._when_full,
                queued=queued,
                delivered=queued - waiting,
                waiting=waiting,
                high_water=max(self._high_water, self._serial_high_water),
                blocked=self._blocked,
                blocked_seconds=self._blocked_seconds,
                rejected=self._rejected,
            )

    def __len__(self) -> int:
        """Return how many items wait to be read."""
        # Without the lock: len() of a deque reads its size in one step (thread-safe in
        # free-threaded builds too); the count may change as soon as it is returned.
        return len(self._items)

    # -- producers -----------------------------------------------------------------------

    def put(self, item: T, *, event: str = "put", run_id: Any = None) -> bool:
        """Append ``item`` and wake the reader.

        Args:
            item: What to queue.
            event: What the item records, for the error message of a full buffer.
            run_id: Which run it belongs to, for that message.

        Returns:
            ``True`` if it was queued, ``False`` if the channel is closed (also when it
            closed while the put waited for room).

        Raises:
            BufferFullError: The channel is bounded and full, and the policy is
                ``"raise"`` or the ``"block"`` timed out; the item was not queued.
        """
        # The path of send(), of a bounded stream's events and of other producers: the
        # lock taken by hand and the append inlined. (The tracer's own unbounded puts
        # take put_serial.)
        lock = self._lock
        lock.acquire()
        try:
            if self.closed:
                return False
            if self._max_buffer is not None and not self._wait_for_room_locked(event, run_id):
                return False
            self._append_locked(item)
        finally:
            lock.release()
        return True

    def put_serial(self, item: T, event: str = "put", run_id: Any = None) -> bool:
        """Append ``item`` without taking the channel's lock; for one serialized producer.

        The caller must hold a lock of its own around every ``put_serial`` (the tracer
        holds its lock), so that no two run at once; :meth:`put` may still be called by
        others at the same time. A bounded channel takes the locked path (:meth:`put`).

        Args:
            item: The item.
            event: The event it comes from, for a :class:`BufferFullError` (bounded).
            run_id: The run it belongs to, likewise.

        Returns:
            ``True`` if it was queued, ``False`` if the channel is closed.

        Raises:
            BufferFullError: A bounded channel is full (see :meth:`put`).
        """
        # Without the channel's lock. It relies on the deque's append being ordered with
        # the readers' popleft (see the module's notes): a reader that parks or decides
        # "closed and drained" first writes its waiter count (or reads closed) under the
        # lock and then looks at the deque with a popleft. So this append either comes
        # before that popleft, and the reader sees the item, or after it, and then the
        # reads below (each one attribute load) see the count and the close. A close seen
        # only after the append raced with this put: _serial_after_close settles it.
        if self._max_buffer is not None:
            return self.put(item, event=event, run_id=run_id)
        if self.closed:  # one load; a close it misses is caught after the append
            return False
        items = self._items
        items.append(item)
        if self.closed:
            return self._serial_after_close()
        self._serial_queued += 1  # one writer at a time: the caller's lock orders them
        waiting = len(items)  # one atomic read of the deque's size
        if waiting > self._serial_high_water:
            self._serial_high_water = waiting
        if self._sync_waiters or self._async_waiters:  # a reader announced it parks
            self._wake_readers()
        return True

    def _serial_after_close(self) -> bool:
        # put_serial appended, then saw the channel closed: the close raced with it. If a
        # reader has already found the channel closed and drained, it ended without this
        # item: take it back and refuse the put. After a close nothing else is appended
        # (put() checks under the lock; put_serial's callers take turns), so the item is
        # the last one, or the only one; a reader that took it meanwhile delivered it.
        with self._lock:
            if self._reader_ended:
                try:
                    self._items.pop()
                except IndexError:  # read by a reader that iterated again: delivered
                    pass
                else:
                    return False
            self._serial_queued += 1
            self._serial_high_water = max(self._serial_high_water, len(self._items))
        return True

    def _wake_readers(self) -> None:
        with self._lock:
            self._wake_readers_locked()

    def reserve(self, event: str = "put", run_id: Any = None) -> bool:
        """Claim room for one item before changing anything that the item records.

        On an unbounded channel this only checks that the channel is open. On a bounded
        one it applies the policy (block or raise) now; the room it claims is kept for a
        :meth:`put_reserved` or given back with :meth:`release`.

        Args:
            event: What the coming item records, for the error message.
            run_id: Which run it belongs to, for that message.

        Returns:
            ``True`` if room is claimed, ``False`` if the channel is (or became) closed.

        Raises:
            BufferFullError: As :meth:`put`; nothing was claimed.
        """
        with self._lock:
            if self.closed:
                return False
            if self._max_buffer is not None:
                if not self._wait_for_room_locked(event, run_id):
                    return False
                self._reserved += 1
        return True

    def put_reserved(self, item: T) -> bool:
        """Append ``item`` into room claimed with :meth:`reserve`; it never waits nor raises.

        Returns:
            ``True`` if it was queued, ``False`` if the channel closed since the claim.
        """
        with self._lock:
            if self._max_buffer is not None:
                self._reserved -= 1
            if self.closed:
                return False
            self._append_locked(item)
        return True

    def release(self) -> None:
        """Give back room claimed with :meth:`reserve` and not used."""
        if self._max_buffer is not None:
            with self._lock:
                self._reserved -= 1
                if self._room_waiters:
                    self._room.notify()

    def _append_locked(self, item: T) -> None:
        items = self._items
        items.append(item)
        self._queued += 1
        waiting = len(items)
        if waiting > self._high_water:
            self._high_water = waiting
        if self._sync_waiters or self._async_waiters:
            self._wake_readers_locked()

    def _wake_readers_locked(self) -> None:
        if self._sync_waiters:
            self._ready.notify()
        if self._async_waiters:
            self._wake_async_locked()

    def _has_room_locked(self) -> bool:
        return len(self._items) + self._reserved < self._max_buffer  # type: ignore[operator]

    def _wait_for_room_locked(self, event: str, run_id: Any) -> bool:
        """Wait (or raise) until there is room; ``False`` if the channel closes first."""
        if self._has_room_locked():
            return True
        if self._when_full == "raise":
            self._rejected += 1
            raise BufferFullError(self._max_buffer, "raise", event, run_id)
        timeout = self._block_timeout
        started = time.monotonic()
        deadline = None if timeout is None else started + timeout
        self._blocked += 1
        self._room_waiters += 1
        try:
            while True:
                if self.closed:
                    return False
                if self._has_room_locked():
                    return True
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    self._rejected += 1
                    raise BufferFullError(self._max_buffer, "block", event, run_id, timeout)
                self._room.wait(remaining)
        finally:
            self._room_waiters -= 1
            self._blocked_seconds += time.monotonic() - started

    def _made_room(self) -> None:
        # A reader of a bounded channel took an item without the lock. The waiter count
        # is read under the lock: a producer raises it and checks for room under the
        # lock, so either it sees the room made or this sees it waiting (a read of the
        # count without the lock could miss it on a free-threaded build).
        with self._lock:
            if self._room_waiters:
                self._room.notify()

    def close(self) -> bool:
        """Close the channel; return ``False`` if it was already closed.

        Items already put are still delivered; iteration ends after the last one.
        Producers waiting for room return ``False`` from their put.
        """
        with self._lock:
            if self.closed:
                return False
            self.closed = True
            self._ready.notify_all()
            self._room.notify_all()
            self._wake_async_locked()
        return True

    def _wake_async_locked(self) -> None:
        waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_wake, fut)
            except RuntimeError:  # the reader's loop is closed: nobody is waiting
                pass

    # -- the consumer --------------------------------------------------------------------
    #
    # Items are taken with deque.popleft() without the lock: it is thread-safe and runs
    # under the deque's own lock (see the module's notes), and the one reader is the
    # only one that removes items. A popleft that finds nothing sends the reader to the
    # locked path. There it reads closed (written under the lock) and only then looks
    # with a popleft; before it waits it raises its waiter count and looks once more
    # with a popleft. put() appends and reads the counts under the lock; put_serial
    # appends and then reads closed and the counts: the deque orders its append with
    # those poplefts, so it sees what the reader wrote, or the reader sees its item.
    # Emptiness is judged by a popleft, never by len(), which reads the size without
    # the deque's lock. On a bounded channel a reader takes the lock after each item it
    # takes, to wake a producer waiting for room (_made_room).

    def get(self, timeout: Optional[float] = None) -> tuple[bool, Optional[T]]:
        """Wait for the next item.

        Args:
            timeout: Seconds to wait at most; ``None`` waits until an item or close.

        Returns:
            ``(True, item)``, or ``(False, None)`` when the channel is closed and drained
            or the timeout passed.
        """
        items = self._items
        try:
            item = items.popleft()
        except IndexError:
            pass
        else:
            if self._max_buffer is not None:
                self._made_room()
            return True, item
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                closed = self.closed  # read before the popleft (see put_serial)
                try:
                    item = items.popleft()
                except IndexError:
                    pass
                else:
                    if self._room_waiters:
                        self._room.notify()
                    return True, item
                if closed:
                    self._reader_ended = True
                    return False, None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False, None
                # Announce the wait, then look again with a popleft: a serial put reads
                # the count after its append.
                self._sync_waiters += 1
                try:
                    item = items.popleft()
                except IndexError:
                    try:
                        self._ready.wait(remaining)
                    finally:
                        self._sync_waiters -= 1
                else:
                    self._sync_waiters -= 1
                    if self._room_waiters:
                        self._room.notify()
                    return True, item

    def drain(self) -> list[T]:
        """Remove and return every item waiting now, without blocking."""
        popleft = self._items.popleft
        items: list[T] = []
        try:
            while True:
                items.append(popleft())
        except IndexError:
            pass
        if items and self._max_buffer is not None:
            with self._lock:  # the count read under the lock, as in _made_room
                if self._room_waiters:
                    self._room.notify_all()
        return items

    def __iter__(self) -> Iterator[T]:
        """Yield items as they arrive, blocking, until the channel is closed and drained."""
        popleft = self._items.popleft
        bounded = self._max_buffer is not None
        while True:
            try:
                item = popleft()
            except IndexError:
                ok, got = self.get()
                if not ok:
                    return
                item = got  # type: ignore[assignment]
            else:
                if bounded:
                    self._made_room()
            yield item

    async def aget(self) -> tuple[bool, Optional[T]]:
        """Wait, without blocking the event loop, for the next item.

        Returns:
            ``(True, item)``, or ``(False, None)`` when the channel is closed and drained.
        """
        loop: Optional[asyncio.AbstractEventLoop] = None
        while True:
            try:
                item = self._items.popleft()
            except IndexError:
                pass
            else:
                if self._max_buffer is not None:
                    self._made_room()
                return True, item
            with self._lock:
                closed = self.closed  # read before the popleft (see get)
                try:
                    item = self._items.popleft()
                except IndexError:
                    pass
                else:
                    if self._room_waiters:
                        self._room.notify()
                    return True, item
                if closed:
                    self._reader_ended = True
                    return False, None
                if loop is None:
                    loop = asyncio.get_running_loop()
                fut: asyncio.Future[None] = loop.create_future()
                if len(self._async_waiters) >= _PRUNE_AT:  # readers cancelled since a put
                    self._async_waiters = [w for w in self._async_waiters if not w[1].done()]
                self._async_waiters.append((loop, fut))
                # Look again with a popleft now that the wait is announced (see get); a
                # future left behind here is set by the next wake-up, which clears the
                # list.
                try:
                    item = self._items.popleft()
                except IndexError:
                    pass
                else:
                    if self._room_waiters:
                        self._room.notify()
                    return True, item
            # No cleanup on cancellation: it would have to take the lock, and a reader
            # abandoned in a closed loop runs its cleanup whenever the garbage collector
            # finds it, possibly inside a put that holds the lock. A cancelled waiter is
            # dropped at the next wake-up (waking a done future does nothing) or pruned.
            await fut

    async def __aiter__(self) -> AsyncIterator[T]:
        """Yield items as they arrive until the channel is closed and drained."""
        popleft = self._items.popleft
        bounded = self._max_buffer is not None
        while True:
            try:
                item = popleft()
            except IndexError:
                ok, got = await self.aget()
                if not ok:
                    return
                item = got  # type: ignore[assignment]
            else:
                if bounded:
                    self._made_room()
            yield item

    def __repr__(self) -> str:
        """Show whether the channel is open, how many items wait, and the limit if any."""
        # Without the lock: a snapshot of two one-step reads (see closed and __len__).
        state = "closed" if self.closed else "open"
        limit = "" if self._max_buffer is None else f" of {self._max_buffer}"
        return f"<PatchChannel {state}, {len(self._items)} waiting{limit}>"
