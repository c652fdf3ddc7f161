"""The patch channel: many producer threads in, one consumer out, sync or async.

Producers call :meth:`PatchChannel.put` from any thread; it never blocks and never
raises, and returns ``False`` once the channel is closed. The consumer reads with a plain
``for`` loop (blocking, e.g. in another thread) or with ``async for`` in any event loop,
which need not exist when the channel is built: an async reader parks a future on its
own loop and producers wake it thread-safely. Items put before :meth:`close` are all
delivered, in order, before iteration ends. A consumer that stops early (``break``,
cancellation) leaves the channel usable and never blocks producers.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Generic, Optional, TypeVar

__all__ = ["PatchChannel"]

T = TypeVar("T")

_PRUNE_AT = 16  # parked async readers kept before done (cancelled) ones are pruned


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


class PatchChannel(Generic[T]):
    """A thread-safe, unbounded, closable FIFO with sync and async readers."""

    def __init__(self) -> None:
        """Create an open, empty channel."""
        self._items: deque[T] = deque()
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._closed = False
        self._sync_waiters = 0
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has been called (items may still be waiting)."""
        return self._closed

    def __len__(self) -> int:
        """Return how many items wait to be read."""
        return len(self._items)

    def put(self, item: T) -> bool:
        """Append ``item`` and wake the reader; return ``False`` if the channel is closed."""
        with self._lock:
            if self._closed:
                return False
            self._items.append(item)
            if self._sync_waiters:
                self._ready.notify()
            if self._async_waiters:
                self._wake_async_locked()
        return True

    def close(self) -> bool:
        """Close the channel; return ``False`` if it was already closed.

        Items already put are still delivered; iteration ends after the last one.
        """
        with self._lock:
            if self._closed:
                return False
            self._closed = True
            self._ready.notify_all()
            self._wake_async_locked()
        return True

    def _wake_async_locked(self) -> None:
        waiters, self._async_waiters = self._async_waiters, []
        for loop, fut in waiters:
            try:
                loop.call_soon_threadsafe(_wake, fut)
            except RuntimeError:  # the reader's loop is closed: nobody is waiting
                pass

    def get(self, timeout: Optional[float] = None) -> tuple[bool, Optional[T]]:
        """Wait for the next item.

        Args:
            timeout: Seconds to wait at most; ``None`` waits until an item or close.

        Returns:
            ``(True, item)``, or ``(False, None)`` when the channel is closed and drained
            or the timeout passed.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while not self._items:
                if self._closed:
                    return False, None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False, None
                self._sync_waiters += 1
                try:
                    self._ready.wait(remaining)
                finally:
                    self._sync_waiters -= 1
            return True, self._items.popleft()

    def drain(self) -> list[T]:
        """Remove and return every item waiting now, without blocking."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def __iter__(self) -> Iterator[T]:
        """Yield items as they arrive, blocking, until the channel is closed and drained."""
        while True:
            ok, item = self.get()
            if not ok:
                return
            yield item  # type: ignore[misc]

    async def aget(self) -> tuple[bool, Optional[T]]:
        """Wait, without blocking the event loop, for the next item.

        Returns:
            ``(True, item)``, or ``(False, None)`` when the channel is closed and drained.
        """
        loop: Optional[asyncio.AbstractEventLoop] = None
        while True:
            with self._lock:
                if self._items:
                    return True, self._items.popleft()
                if self._closed:
                    return False, None
                if loop is None:
                    loop = asyncio.get_running_loop()
                fut: asyncio.Future[None] = loop.create_future()
                if len(self._async_waiters) >= _PRUNE_AT:  # readers cancelled since a put
                    self._async_waiters = [w for w in self._async_waiters if not w[1].done()]
                self._async_waiters.append((loop, fut))
            # No cleanup on cancellation: it would have to take the lock, and a reader
            # abandoned in a closed loop runs its cleanup whenever the garbage collector
            # finds it, possibly inside a put that holds the lock. A cancelled waiter is
            # dropped at the next wake-up (waking a done future does nothing) or pruned.
            await fut

    async def __aiter__(self) -> AsyncIterator[T]:
        """Yield items as they arrive until the channel is closed and drained."""
        while True:
            ok, item = await self.aget()
            if not ok:
                return
            yield item  # type: ignore[misc]

    def __repr__(self) -> str:
        """Show whether the channel is open and how many items wait."""
        state = "closed" if self._closed else "open"
        return f"<PatchChannel {state}, {len(self._items)} waiting>"
