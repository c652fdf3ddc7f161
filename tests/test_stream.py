"""Tests for :mod:`logstream._stream`: the thread-safe patch channel and its readers.

Threads and event loops are synchronized with ``threading.Event`` / ``asyncio`` primitives,
never with sleeps, and every wait is bounded by :data:`TIMEOUT` so a bug fails the test
instead of hanging the suite. Nothing here asserts on timing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import gc
import pickle
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, Optional

import pytest
from threading_helpers import join_thread, run_in_thread

from logstream import LogStreamError
from logstream._errors import BufferFullError
from logstream._stream import BufferStats, PatchChannel

TIMEOUT = 30.0
"""Seconds any single wait may take before the test fails (generous: CI machines are noisy)."""


def wait_until_sync_reader_blocks(channel: PatchChannel[Any]) -> None:
    """Wait until a sync reader is parked in :meth:`PatchChannel.get`.

    This reads a private counter only to reach the state under test deterministically
    (a reader that is blocked, not one that is about to block); it asserts nothing itself.
    """
    deadline = time.monotonic() + TIMEOUT
    while channel._sync_waiters == 0:
        assert time.monotonic() < deadline, "the reader never blocked in get()"
        time.sleep(0.001)


async def collect_async(channel: PatchChannel[Any]) -> list[Any]:
    """Read ``channel`` with ``async for`` until it ends."""
    return [item async for item in channel]


class TestPut:
    """PatchChannel.put and close: queueing, order and the closed state."""

    def test_items_come_out_in_the_order_they_were_put(self) -> None:
        """A single producer's items are read first in, first out."""
        channel: PatchChannel[int] = PatchChannel()
        for i in range(10):
            assert channel.put(i) is True
        channel.close()
        assert list(channel) == list(range(10))

    def test_put_returns_false_after_close_and_drops_the_item(self) -> None:
        """A put after close is refused and the item is never delivered."""
        channel: PatchChannel[str] = PatchChannel()
        channel.put("before")
        assert channel.close() is True
        assert channel.put("after") is False
        assert len(channel) == 1
        assert list(channel) == ["before"]

    def test_close_twice_returns_false_the_second_time(self) -> None:
        """Closing a closed channel is a no-op that reports it was already closed."""
        channel: PatchChannel[int] = PatchChannel()
        assert channel.closed is False
        assert channel.close() is True
        assert channel.close() is False
        assert channel.closed is True

    def test_len_counts_waiting_items(self) -> None:
        """len() is the number of items put and not yet read."""
        channel: PatchChannel[int] = PatchChannel()
        assert len(channel) == 0
        channel.put(1)
        channel.put(2)
        assert len(channel) == 2
        assert channel.get(timeout=0) == (True, 1)
        assert len(channel) == 1

    def test_repr_shows_state_and_waiting_count(self) -> None:
        """repr() says whether the channel is open and how many items wait."""
        channel: PatchChannel[int] = PatchChannel()
        channel.put(1)
        assert "open" in repr(channel) and "1 waiting" in repr(channel)
        channel.close()
        assert "closed" in repr(channel)

    def test_items_put_from_many_threads_keep_each_threads_order(self) -> None:
        """Concurrent producers lose nothing and each producer's items stay in order."""
        channel: PatchChannel[tuple[int, int]] = PatchChannel()
        producers, per_producer = 8, 500
        go = threading.Event()

        def produce(p: int) -> None:
            assert go.wait(TIMEOUT)
            for i in range(per_producer):
                assert channel.put((p, i))

        threads = [run_in_thread(functools.partial(produce, p)) for p in range(producers)]
        go.set()
        for thread, box in threads:
            join_thread(thread, box)
        channel.close()
        items = list(channel)
        assert len(items) == producers * per_producer
        for p in range(producers):
            assert [i for q, i in items if q == p] == list(range(per_producer))


class TestSyncIteration:
    """Reading with a plain ``for`` loop and with get()."""

    def test_iteration_delivers_everything_put_before_close_then_ends(self) -> None:
        """A for loop yields every item put before close, then stops."""
        channel: PatchChannel[int] = PatchChannel()
        channel.put(1)
        channel.put(2)
        channel.close()
        assert list(channel) == [1, 2]
        assert list(channel) == []

    def test_iteration_of_a_closed_empty_channel_ends_at_once(self) -> None:
        """A closed, drained channel yields nothing and does not block."""
        channel: PatchChannel[int] = PatchChannel()
        channel.close()
        assert list(channel) == []

    def test_blocked_reader_in_another_thread_is_woken_by_put(self) -> None:
        """A reader blocked in get() in another thread gets an item put later."""
        channel: PatchChannel[str] = PatchChannel()
        thread, box = run_in_thread(lambda: channel.get())
        wait_until_sync_reader_blocks(channel)
        assert channel.put("hello") is True
        assert join_thread(thread, box) == (True, "hello")

    def test_blocked_iterating_reader_is_ended_by_close(self) -> None:
        """A for loop blocked in another thread ends when the channel closes."""
        channel: PatchChannel[int] = PatchChannel()
        thread, box = run_in_thread(lambda: list(channel))
        wait_until_sync_reader_blocks(channel)
        channel.put(1)
        channel.put(2)
        channel.close()
        assert join_thread(thread, box) == [1, 2]

    def test_reader_thread_gets_everything_from_a_concurrent_producer(self) -> None:
        """A for loop in one thread reads every item another thread puts, in order."""
        channel: PatchChannel[int] = PatchChannel()
        thread, box = run_in_thread(lambda: list(channel))

        def produce() -> None:
            for i in range(5000):
                channel.put(i)
            channel.close()

        join_thread(*run_in_thread(produce))
        assert join_thread(thread, box) == list(range(5000))

    def test_get_with_timeout_returns_false_when_nothing_arrives(self) -> None:
        """get(timeout=...) on an empty open channel gives (False, None) instead of hanging."""
        channel: PatchChannel[int] = PatchChannel()
        assert channel.get(timeout=0) == (False, None)
        assert channel.get(timeout=0.01) == (False, None)
        assert channel.closed is False
        channel.put(7)
        assert channel.get(timeout=0) == (True, 7)

    def test_get_with_timeout_returns_a_waiting_item_at_once(self) -> None:
        """get(timeout=...) returns an item that is already waiting."""
        channel: PatchChannel[int] = PatchChannel()
        channel.put(3)
        assert channel.get(timeout=TIMEOUT) == (True, 3)

    def test_get_with_timeout_is_woken_by_a_put(self) -> None:
        """get(timeout=...) blocked in another thread returns the item a put delivers."""
        channel: PatchChannel[int] = PatchChannel()
        thread, box = run_in_thread(lambda: channel.get(timeout=TIMEOUT))
        wait_until_sync_reader_blocks(channel)
        channel.put(9)
        assert join_thread(thread, box) == (True, 9)

    def test_get_on_closed_and_drained_channel_returns_false_without_waiting(self) -> None:
        """get() with no timeout returns (False, None) once the channel is closed and empty."""
        channel: PatchChannel[int] = PatchChannel()
        channel.put(1)
        channel.close()
        assert channel.get() == (True, 1)
        assert channel.get() == (False, None)

    def test_early_break_does_not_block_producers(self) -> None:
        """A consumer that breaks out of its loop leaves producers free and items intact."""
        channel: PatchChannel[int] = PatchChannel()
        for i in range(3):
            channel.put(i)
        for item in channel:
            assert item == 0
            break

        def produce() -> list[bool]:
            return [channel.put(i) for i in range(3, 1003)]

        assert join_thread(*run_in_thread(produce)) == [True] * 1000
        channel.close()
        assert list(channel) == list(range(1, 1003))

    def test_abandoned_iterator_does_not_keep_the_reader_slot(self) -> None:
        """An iterator dropped after break does not stop a new reader from being woken."""
        channel: PatchChannel[int] = PatchChannel()
        channel.put(0)
        iterator: Iterator[int] = iter(channel)
        assert next(iterator) == 0
        del iterator
        thread, box = run_in_thread(lambda: list(channel))
        wait_until_sync_reader_blocks(channel)
        channel.put(1)
        channel.close()
        assert join_thread(thread, box) == [1]


class TestAsyncIteration:
    """Reading with ``async for`` / aget(), in any event loop."""

    def test_async_iteration_delivers_everything_put_before_close_then_ends(self) -> None:
        """An async for loop yields every item put before close, then stops."""
        channel: PatchChannel[int] = PatchChannel()
        for i in range(5):
            channel.put(i)
        channel.close()
        assert asyncio.run(collect_async(channel)) == list(range(5))

    def test_aget_on_closed_and_drained_channel_returns_false(self) -> None:
        """aget() returns (False, None) once the channel is closed and empty."""
        channel: PatchChannel[int] = PatchChannel()
        channel.put(1)
        channel.close()

        async def read_twice() -> list[tuple[bool, Optional[int]]]:
            return [await channel.aget(), await channel.aget()]

        assert asyncio.run(read_twice()) == [(True, 1), (False, None)]

    def test_reader_in_a_loop_created_after_the_channel_in_another_thread(self) -> None:
        """A reader parked in a later-created loop in another thread is woken by puts here."""
        channel: PatchChannel[int] = PatchChannel()  # no event loop exists yet
        parked = threading.Event()

        async def main() -> list[int]:
            task = asyncio.ensure_future(collect_async(channel))
            await asyncio.sleep(0)  # the reader runs until it parks on the empty channel
            assert not task.done()
            parked.set()
            return await asyncio.wait_for(task, TIMEOUT)

        thread, box = run_in_thread(lambda: asyncio.run(main()))
        assert parked.wait(TIMEOUT)
        for i in range(100):
            assert channel.put(i)
        channel.close()
        assert join_thread(thread, box) == list(range(100))

    def test_async_reader_gets_everything_from_producer_threads(self) -> None:
        """An async reader reads every item several threads put while it runs."""
        channel: PatchChannel[tuple[int, int]] = PatchChannel()
        parked = threading.Event()

        async def main() -> list[tuple[int, int]]:
            task = asyncio.ensure_future(collect_async(channel))
            await asyncio.sleep(0)
            parked.set()
            return await asyncio.wait_for(task, TIMEOUT)

        reader, reader_box = run_in_thread(lambda: asyncio.run(main()))
        assert parked.wait(TIMEOUT)

        def produce(p: int) -> None:
            for i in range(1000):
                channel.put((p, i))

        producers = [run_in_thread(functools.partial(produce, p)) for p in range(4)]
        for thread, box in producers:
            join_thread(thread, box)
        channel.close()
        items = join_thread(reader, reader_box)
        assert len(items) == 4000
        for p in range(4):
            assert [i for q, i in items if q == p] == list(range(1000))

    def test_cancelled_reader_does_not_break_later_puts_or_readers(self) -> None:
        """Cancelling a parked async reader leaves the channel usable for puts and readers."""
        channel: PatchChannel[str] = PatchChannel()

        async def cancel_a_parked_reader() -> None:
            task = asyncio.ensure_future(channel.aget())
            await asyncio.sleep(0)  # parked
            assert not task.done()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # a put in the same (still running) loop after the cancel
            assert channel.put("a") is True

        asyncio.run(cancel_a_parked_reader())
        # the cancelled reader's loop is now closed: puts from here must still work
        assert channel.put("b") is True
        channel.close()
        assert asyncio.run(collect_async(channel)) == ["a", "b"]

    def test_reader_cancelled_after_being_woken_loses_no_item(self) -> None:
        """A reader cancelled between being woken and running leaves the item for the next."""
        channel: PatchChannel[str] = PatchChannel()

        async def main() -> list[str]:
            task = asyncio.ensure_future(channel.aget())
            await asyncio.sleep(0)  # parked
            channel.put("x")  # schedules the wake-up
            task.cancel()  # ... but the reader is cancelled before it runs
            got: list[str] = []
            try:
                ok, item = await task
                if ok and item is not None:
                    got.append(item)
            except asyncio.CancelledError:
                pass
            channel.close()
            return got + await collect_async(channel)

        assert asyncio.run(main()) == ["x"]

    def test_cancelled_reader_then_new_reader_in_another_thread(self) -> None:
        """After a cancelled reader, a new reader parked in another thread's loop is woken."""
        channel: PatchChannel[int] = PatchChannel()

        async def cancel_a_parked_reader() -> None:
            task = asyncio.ensure_future(collect_async(channel))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(cancel_a_parked_reader())
        parked = threading.Event()

        async def main() -> list[int]:
            task = asyncio.ensure_future(collect_async(channel))
            await asyncio.sleep(0)
            parked.set()
            return await asyncio.wait_for(task, TIMEOUT)

        thread, box = run_in_thread(lambda: asyncio.run(main()))
        assert parked.wait(TIMEOUT)
        channel.put(1)
        channel.put(2)
        channel.close()
        assert join_thread(thread, box) == [1, 2]

    def test_reader_left_parked_in_a_closed_loop_does_not_break_puts(self) -> None:
        """A put still works when a reader's loop was closed while the reader was parked."""
        channel: PatchChannel[int] = PatchChannel()
        loop = asyncio.new_event_loop()
        # the abandoned task is reported when collected; that report is expected here
        loop.set_exception_handler(lambda _loop, _context: None)
        try:
            task = loop.create_task(channel.aget())
            loop.run_until_complete(asyncio.sleep(0))  # the reader parks, then the loop stops
            assert not task.done()
        finally:
            loop.close()  # the parked reader is never resumed nor cancelled
        assert channel.put(1) is True
        assert channel.put(2) is True
        channel.close()
        assert asyncio.run(collect_async(channel)) == [1, 2]
        del task
        gc.collect()

    def test_early_break_of_async_consumer_does_not_block_producers(self) -> None:
        """An async consumer that breaks early leaves producers free and the rest readable."""
        channel: PatchChannel[int] = PatchChannel()
        for i in range(3):
            channel.put(i)

        async def take_first() -> int:
            async for item in channel:
                return item
            raise AssertionError("the channel yielded nothing")

        assert asyncio.run(take_first()) == 0

        def produce() -> list[bool]:
            return [channel.put(i) for i in range(3, 1003)]

        assert join_thread(*run_in_thread(produce)) == [True] * 1000
        channel.close()
        assert asyncio.run(collect_async(channel)) == list(range(1, 1003))

    def test_close_wakes_a_parked_async_reader(self) -> None:
        """A parked async reader ends when another thread closes the channel."""
        channel: PatchChannel[int] = PatchChannel()
        parked = threading.Event()

        async def main() -> list[int]:
            task = asyncio.ensure_future(collect_async(channel))
            await asyncio.sleep(0)
            parked.set()
            return await asyncio.wait_for(task, TIMEOUT)

        thread, box = run_in_thread(lambda: asyncio.run(main()))
        assert parked.wait(TIMEOUT)
        join_thread(*run_in_thread(channel.close))
        assert join_thread(thread, box) == []


class TestDrain:
    """PatchChannel.drain: take everything waiting, without blocking."""

    def test_drain_returns_waiting_items_in_order_and_empties_the_channel(self) -> None:
        """drain() returns every waiting item, in order, and leaves none behind."""
        channel: PatchChannel[int] = PatchChannel()
        for i in range(4):
            channel.put(i)
        assert channel.drain() == [0, 1, 2, 3]
        assert len(channel) == 0
        assert channel.drain() == []
        assert channel.closed is False

    def test_drain_of_an_empty_open_channel_does_not_block(self) -> None:
        """drain() on an empty, open channel returns an empty list at once."""
        channel: PatchChannel[int] = PatchChannel()
        assert join_thread(*run_in_thread(channel.drain)) == []

    def test_drain_after_close_returns_the_rest_and_iteration_then_ends(self) -> None:
        """drain() after close takes what was left; a reader then sees the end."""
        channel: PatchChannel[int] = PatchChannel()
        channel.put(1)
        channel.put(2)
        channel.close()
        assert channel.drain() == [1, 2]
        assert list(channel) == []
        assert channel.put(3) is False
        assert channel.drain() == []


class TestAbandonedReaders:
    def test_collecting_an_abandoned_reader_while_the_lock_is_held_does_not_deadlock(
        self,
    ) -> None:
        """A reader abandoned in a closed loop can be garbage-collected inside a locked put."""
        channel: PatchChannel[str] = PatchChannel()
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(lambda _loop, _context: None)
        task = loop.create_task(channel.aget())
        loop.run_until_complete(asyncio.sleep(0))  # the reader parks
        loop.close()
        del task, loop  # gone without being cancelled
        channel.put("a")  # its future is dropped: the coroutine is now cyclic garbage

        def collect_under_lock() -> None:  # as an automatic GC pass inside put would
            with channel._lock:
                gc.collect()

        worker = threading.Thread(target=collect_under_lock, daemon=True)
        worker.start()
        worker.join(TIMEOUT)
        assert not worker.is_alive(), "the abandoned reader's cleanup took the held lock"
        assert channel.drain() == ["a"]

    def test_many_cancelled_readers_are_pruned(self) -> None:
        """Readers cancelled before any put do not pile up without bound."""

        async def cancel_many() -> None:
            for _ in range(100):
                task = asyncio.ensure_future(channel.aget())
                await asyncio.sleep(0)
                task.cancel()
                await asyncio.sleep(0)

        channel: PatchChannel[int] = PatchChannel()
        asyncio.run(cancel_many())
        assert len(channel._async_waiters) <= 16
        channel.put(1)
        channel.close()
        assert asyncio.run(collect_async(channel)) == [1]


def wait_until_producer_blocks(channel: PatchChannel[Any], count: int = 1) -> None:
    """Wait until ``count`` producers wait for room in a full bounded channel.

    Like :func:`wait_until_sync_reader_blocks`, this reads a private counter only to reach
    the state under test deterministically; it asserts nothing itself.
    """
    deadline = time.monotonic() + TIMEOUT
    while channel._room_waiters < count:
        assert time.monotonic() < deadline, "the producer never blocked on a full buffer"
        time.sleep(0.001)


class TestBoundedRaise:
    """A bounded channel with ``when_full="raise"``."""

    def test_put_beyond_the_limit_raises_and_queues_nothing(self) -> None:
        """The put that finds the buffer full raises BufferFullError; the item is not queued."""
        channel: PatchChannel[int] = PatchChannel(2, when_full="raise")
        assert channel.put(1) and channel.put(2)
        with pytest.raises(BufferFullError) as info:
            channel.put(3, event="token", run_id="r1")
        assert (info.value.max_buffer, info.value.when_full) == (2, "raise")
        assert (info.value.event, info.value.run_id, info.value.timeout) == ("token", "r1", None)
        assert len(channel) == 2
        channel.close()
        assert list(channel) == [1, 2]

    def test_reading_makes_room_again(self) -> None:
        """After the reader takes an item, the next put fits."""
        channel: PatchChannel[int] = PatchChannel(1, when_full="raise")
        channel.put(1)
        with pytest.raises(BufferFullError):
            channel.put(2)
        assert channel.get(timeout=0) == (True, 1)
        assert channel.put(2) is True
        assert channel.drain() == [2]

    def test_message_names_limit_policy_event_and_run(self) -> None:
        """The error message says which event of which run met which limit under which policy."""
        channel: PatchChannel[int] = PatchChannel(1, when_full="raise")
        channel.put(0)
        with pytest.raises(BufferFullError) as info:
            channel.put(1, event="chain start", run_id="abc")
        message = str(info.value)
        assert "chain start" in message and "abc" in message
        assert "limit of 1 patch" in message and "when_full='raise'" in message

    def test_error_is_a_logstream_error_and_pickles(self) -> None:
        """BufferFullError is a LogStreamError and survives pickling with its fields."""
        error = BufferFullError(10, "block", "token", "r", 0.5)
        copy = pickle.loads(pickle.dumps(error))
        assert isinstance(copy, BufferFullError) and isinstance(copy, LogStreamError)
        assert (copy.max_buffer, copy.when_full, copy.event, copy.run_id, copy.timeout) == (
            10,
            "block",
            "token",
            "r",
            0.5,
        )
        assert str(copy) == str(error)

    def test_put_after_close_returns_false_even_when_full(self) -> None:
        """A closed channel refuses puts without raising, full or not."""
        channel: PatchChannel[int] = PatchChannel(1, when_full="raise")
        channel.put(1)
        channel.close()
        assert channel.put(2) is False

    def test_reservations_count_against_the_limit(self) -> None:
        """Room claimed with reserve() is not available to other puts until used or released."""
        channel: PatchChannel[int] = PatchChannel(2, when_full="raise")
        assert channel.reserve("start", "r") is True
        channel.put(1)
        with pytest.raises(BufferFullError):
            channel.put(2)
        with pytest.raises(BufferFullError):
            channel.reserve("start", "s")
        channel.release()
        assert channel.put(2) is True
        assert channel.drain() == [1, 2]

    def test_put_reserved_uses_the_claimed_room(self) -> None:
        """An item put into reserved room never raises, and the room is then used."""
        channel: PatchChannel[int] = PatchChannel(1, when_full="raise")
        assert channel.reserve() is True
        assert channel.put_reserved(7) is True
        with pytest.raises(BufferFullError):
            channel.reserve()
        assert channel.drain() == [7]
        assert channel.reserve() is True
        channel.release()
        assert channel.stats.waiting == 0


class TestBoundedBlock:
    """A bounded channel with ``when_full="block"`` (the default policy)."""

    def test_blocked_put_resumes_when_the_reader_takes_an_item(self) -> None:
        """A producer waiting for room finishes its put once the reader reads one item."""
        channel: PatchChannel[int] = PatchChannel(1)
        channel.put(1)
        thread, box = run_in_thread(lambda: channel.put(2))
        wait_until_producer_blocks(channel)
        assert len(channel) == 1
        assert channel.get(timeout=0) == (True, 1)
        assert join_thread(thread, box) is True
        channel.close()
        assert list(channel) == [2]

    def test_blocked_put_resumes_for_a_for_loop_reader(self) -> None:
        """A reader iterating in another thread frees room for a producer blocked on each item."""
        channel: PatchChannel[int] = PatchChannel(2)
        reader, box = run_in_thread(lambda: list(channel))
        for i in range(500):
            assert channel.put(i) is True
        channel.close()
        assert join_thread(reader, box) == list(range(500))
        stats = channel.stats
        assert stats.high_water <= 2 and stats.queued == stats.delivered == 500

    def test_async_reader_frees_room_for_producer_threads(self) -> None:
        """An async reader in an event loop unblocks producers in other threads."""
        channel: PatchChannel[tuple[int, int]] = PatchChannel(3)

        def produce(p: int) -> None:
            for i in range(300):
                assert channel.put((p, i))

        producers = [run_in_thread(functools.partial(produce, p)) for p in range(3)]

        async def main() -> list[tuple[int, int]]:
            return await asyncio.wait_for(collect_async(channel), TIMEOUT)

        reader, reader_box = run_in_thread(lambda: asyncio.run(main()))
        for thread, box in producers:
            join_thread(thread, box)
        channel.close()
        items = join_thread(reader, reader_box)
        assert len(items) == 900
        for p in range(3):
            assert [i for q, i in items if q == p] == list(range(300))
        assert channel.stats.high_water <= 3

    def test_block_timeout_raises_and_queues_nothing(self) -> None:
        """A put still finding the buffer full after block_timeout raises BufferFullError."""
        channel: PatchChannel[int] = PatchChannel(1, block_timeout=0.01)
        channel.put(1)
        with pytest.raises(BufferFullError) as info:
            channel.put(2, event="token", run_id="r")
        assert (info.value.when_full, info.value.timeout) == ("block", 0.01)
        assert "block_timeout=0.01" in str(info.value)
        assert channel.drain() == [1]
        stats = channel.stats
        assert (stats.blocked, stats.rejected, stats.queued) == (1, 1, 1)

    def test_zero_timeout_raises_at_once(self) -> None:
        """block_timeout=0 makes a full buffer raise without waiting."""
        channel: PatchChannel[int] = PatchChannel(1, block_timeout=0)
        channel.put(1)
        with pytest.raises(BufferFullError):
            channel.put(2)

    def test_close_unblocks_a_waiting_producer(self) -> None:
        """Closing the channel (a consumer that went away) ends a blocked put with False."""
        channel: PatchChannel[int] = PatchChannel(1)
        channel.put(1)
        thread, box = run_in_thread(lambda: channel.put(2))
        wait_until_producer_blocks(channel)
        join_thread(*run_in_thread(channel.close))
        assert join_thread(thread, box) is False
        assert list(channel) == [1]

    def test_close_unblocks_a_waiting_reservation(self) -> None:
        """A reserve() waiting for room returns False when the channel closes."""
        channel: PatchChannel[int] = PatchChannel(1)
        channel.put(1)
        thread, box = run_in_thread(lambda: channel.reserve("start", "r"))
        wait_until_producer_blocks(channel)
        channel.close()
        assert join_thread(thread, box) is False

    def test_release_wakes_a_waiting_producer(self) -> None:
        """Room given back with release() lets a blocked producer in."""
        channel: PatchChannel[int] = PatchChannel(1)
        assert channel.reserve() is True
        thread, box = run_in_thread(lambda: channel.put(5))
        wait_until_producer_blocks(channel)
        channel.release()
        assert join_thread(thread, box) is True
        assert channel.drain() == [5]

    def test_drain_wakes_waiting_producers(self) -> None:
        """drain() empties the buffer and lets blocked producers in."""
        channel: PatchChannel[int] = PatchChannel(1)
        channel.put(1)
        thread, box = run_in_thread(lambda: channel.put(2))
        wait_until_producer_blocks(channel)
        assert channel.drain() == [1]
        assert join_thread(thread, box) is True
        assert channel.drain() == [2]


class TestBufferStats:
    """PatchChannel.stats: what the buffer went through."""

    def test_unbounded_channel_counts_queued_delivered_and_high_water(self) -> None:
        """An unbounded channel still counts what went through it and its largest backlog."""
        channel: PatchChannel[int] = PatchChannel()
        for i in range(5):
            channel.put(i)
        channel.get(timeout=0)
        channel.get(timeout=0)
        channel.put(5)
        stats = channel.stats
        assert stats == BufferStats(
            max_buffer=None,
            when_full="block",
            queued=6,
            delivered=2,
            waiting=4,
            high_water=5,
            blocked=0,
            blocked_seconds=0.0,
            rejected=0,
        )

    def test_stats_are_a_frozen_snapshot(self) -> None:
        """The stats object does not change afterwards and cannot be changed."""
        channel: PatchChannel[int] = PatchChannel(3, when_full="raise")
        stats = channel.stats
        channel.put(1)
        assert stats.queued == 0 and channel.stats.queued == 1
        with pytest.raises(dataclasses.FrozenInstanceError):
            stats.queued = 5  # type: ignore[misc]

    def test_blocked_waits_are_counted(self) -> None:
        """A put that had to wait for room counts as blocked, with time spent waiting."""
        channel: PatchChannel[int] = PatchChannel(1)
        channel.put(1)
        thread, box = run_in_thread(lambda: channel.put(2))
        wait_until_producer_blocks(channel)
        channel.get(timeout=0)
        join_thread(thread, box)
        stats = channel.stats
        assert (stats.blocked, stats.rejected, stats.queued, stats.high_water) == (1, 0, 2, 1)
        assert stats.blocked_seconds > 0

    def test_repr_shows_the_limit(self) -> None:
        """repr() of a bounded channel shows its limit."""
        assert "of 4" in repr(PatchChannel(4))
        assert "of" not in repr(PatchChannel())


class TestBufferConfig:
    """Validation of max_buffer, when_full and block_timeout."""

    @pytest.mark.parametrize(
        ("kwargs", "error"),
        [
            ({"max_buffer": 0}, ValueError),
            ({"max_buffer": -3}, ValueError),
            ({"max_buffer": True}, TypeError),
            ({"max_buffer": 2.5}, TypeError),
            ({"max_buffer": 2, "when_full": "drop"}, ValueError),
            ({"max_buffer": 2, "block_timeout": -1}, ValueError),
            ({"max_buffer": 2, "block_timeout": "1"}, TypeError),
            ({"max_buffer": 2, "when_full": "raise", "block_timeout": 1.0}, ValueError),
        ],
    )
    def test_bad_configuration_is_refused(self, kwargs: dict[str, Any], error: type) -> None:
        """An impossible buffering configuration raises at construction."""
        with pytest.raises(error):
            PatchChannel(**kwargs)

    def test_none_policy_means_block(self) -> None:
        """when_full=None is the default policy, "block"."""
        assert PatchChannel(2, when_full=None).stats.when_full == "block"
        assert PatchChannel().stats.when_full == "block"

    def test_unbounded_put_ignores_the_policy(self) -> None:
        """Without max_buffer nothing ever blocks or raises, whatever the policy."""
        channel: PatchChannel[int] = PatchChannel(when_full="raise")
        for i in range(10_000):
            assert channel.put(i)
        assert channel.stats.high_water == 10_000


class _BeforeAppend(deque):  # type: ignore[type-arg]
    """A deque that runs a hook just before its next append (and optionally its next pop).

    It puts a close (or a reader's end) exactly between put_serial's closed check and its
    append, a window that threads hit only by chance.
    """

    def __init__(self, before_append: Any) -> None:
        """Keep the hook for the next append."""
        super().__init__()
        self.before_append: Any = before_append
        self.before_pop: Any = None

    def append(self, item: Any) -> None:
        """Run the hook once, then append."""
        hook, self.before_append = self.before_append, None
        if hook is not None:
            hook()
        super().append(item)

    def pop(self) -> Any:
        """Run the pop hook once, then pop from the right."""
        hook, self.before_pop = self.before_pop, None
        if hook is not None:
            hook()
        return super().pop()


class _EmptyUnderLock(deque):  # type: ignore[type-arg]
    """A deque whose first popleft that finds it empty under the channel's lock lets a put in.

    A serial put from another thread then appends right after the reader's look, before
    it parks: the window where a wake-up is lost unless the reader looks again.
    """

    def __init__(self, channel: PatchChannel[int]) -> None:
        """Watch ``channel``'s lock."""
        super().__init__()
        self.channel = channel
        self.fired = False

    def popleft(self) -> Any:
        """Pop; on the first empty look under the lock, have another thread put 7 first."""
        try:
            return super().popleft()
        except IndexError:
            if not self.fired and self.channel._lock.locked():
                self.fired = True
                thread, box = run_in_thread(lambda: self.channel.put_serial(7))
                assert join_thread(thread, box) is True
            raise


class TestSerialPut:
    """put_serial: puts serialized by the caller's own lock, without the channel's."""

    def test_serial_and_locked_puts_from_many_threads_all_arrive(self) -> None:
        """Serial puts under one lock and plain puts, all concurrent, are all delivered once."""
        channel: PatchChannel[tuple[str, int, int]] = PatchChannel()
        owner_lock = threading.Lock()
        reader, reader_box = run_in_thread(lambda: list(channel))

        def serial(p: int) -> None:
            for i in range(500):
                with owner_lock:
                    assert channel.put_serial(("serial", p, i))

        def plain(p: int) -> None:
            for i in range(500):
                assert channel.put(("plain", p, i))

        threads = [run_in_thread(functools.partial(serial, p)) for p in range(3)]
        threads += [run_in_thread(functools.partial(plain, p)) for p in range(2)]
        for thread, box in threads:
            join_thread(thread, box)
        channel.close()
        items = join_thread(reader, reader_box)
        assert len(items) == 2500
        for kind, producers in (("serial", 3), ("plain", 2)):
            for p in range(producers):
                assert [i for k, q, i in items if (k, q) == (kind, p)] == list(range(500))
        stats = channel.stats
        assert (stats.queued, stats.delivered, stats.waiting) == (2500, 2500, 0)

    @pytest.mark.parametrize("reader_kind", ["sync", "async"])
    def test_close_racing_serial_puts_never_loses_an_accepted_item(self, reader_kind: str) -> None:
        """Whatever the interleaving with close, exactly the puts that returned True arrive."""
        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads often: close lands mid-stream
        try:
            self._close_races(reader_kind)
        finally:
            sys.setswitchinterval(switch_interval)

    def _close_races(self, reader_kind: str) -> None:
        cut_short = sum(self._close_race(reader_kind, attempt) < 400 for attempt in range(60))
        assert cut_short > 0, "close never landed before the last put: the race went untested"

    def _close_race(self, reader_kind: str, attempt: int) -> int:
        """Race 400 serial puts against a close; check the reader got exactly the accepted."""
        channel: PatchChannel[int] = PatchChannel()
        owner_lock = threading.Lock()
        accepted: list[int] = []
        go = threading.Event()

        def produce() -> None:
            assert go.wait(TIMEOUT)
            for i in range(400):
                with owner_lock:
                    if channel.put_serial(i):
                        accepted.append(i)

        def close_midway() -> None:
            assert go.wait(TIMEOUT)
            for _ in range(attempt * 7):
                pass
            channel.close()

        if reader_kind == "sync":
            reader, reader_box = run_in_thread(lambda: list(channel))
        else:
            reader, reader_box = run_in_thread(lambda: asyncio.run(collect_async(channel)))
        workers = [run_in_thread(produce), run_in_thread(close_midway)]
        go.set()
        for thread, box in workers:
            join_thread(thread, box)
        assert join_thread(reader, reader_box) == accepted
        assert channel.put_serial(-1) is False
        return len(accepted)

    def test_serial_put_after_close_is_refused(self) -> None:
        """put_serial on a closed channel returns False and queues nothing."""
        channel: PatchChannel[int] = PatchChannel()
        channel.put_serial(1)
        channel.close()
        assert channel.put_serial(2) is False
        assert list(channel) == [1]

    def test_serial_put_wakes_a_parked_reader(self) -> None:
        """A reader blocked on an empty channel is woken by a serial put."""
        channel: PatchChannel[int] = PatchChannel()
        thread, box = run_in_thread(lambda: channel.get(timeout=TIMEOUT))
        wait_until_sync_reader_blocks(channel)
        assert channel.put_serial(4) is True
        assert join_thread(thread, box) == (True, 4)

    def test_bounded_channel_applies_its_policy_to_serial_puts(self) -> None:
        """On a bounded channel put_serial is a plain put: the policy applies."""
        channel: PatchChannel[int] = PatchChannel(1, when_full="raise")
        assert channel.put_serial(1) is True
        with pytest.raises(BufferFullError):
            channel.put_serial(2)

    @pytest.mark.parametrize("reader_kind", ["sync", "async"])
    def test_reader_parking_while_a_serial_put_appends_is_always_woken(
        self, reader_kind: str
    ) -> None:
        """Each serial put lands as the reader parks on the empty channel; none is missed."""
        rounds = 1500
        channel: PatchChannel[int] = PatchChannel()
        owner_lock = threading.Lock()
        ready = threading.Event()

        def produce() -> None:
            for i in range(rounds):
                assert ready.wait(TIMEOUT)
                ready.clear()
                for _ in range(i * 7 % 300):  # a delay that sweeps the reader's way in
                    pass
                with owner_lock:
                    assert channel.put_serial(i)

        def read_sync() -> list[int]:
            got = []
            for _ in range(rounds):
                ready.set()  # the put now races this reader's way into get()'s wait
                ok, item = channel.get(timeout=TIMEOUT)
                assert ok, "a serial put did not wake the parked reader"
                got.append(item)
            return got

        async def read_async() -> list[int]:
            got = []
            for _ in range(rounds):
                ready.set()
                ok, item = await asyncio.wait_for(channel.aget(), TIMEOUT)
                assert ok
                got.append(item)
            return got

        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads often: inside the parking window too
        try:
            if reader_kind == "sync":
                reader, reader_box = run_in_thread(read_sync)
            else:
                reader, reader_box = run_in_thread(lambda: asyncio.run(read_async()))
            producer, producer_box = run_in_thread(produce)
            join_thread(producer, producer_box)
            assert join_thread(reader, reader_box) == list(range(rounds))
        finally:
            sys.setswitchinterval(switch_interval)

    @pytest.mark.parametrize("reader_kind", ["sync", "async"])
    def test_serial_put_between_the_readers_last_look_and_its_wait_wakes_it(
        self, reader_kind: str
    ) -> None:
        """A serial put landing just after the reader, holding the lock, found nothing wakes it."""
        channel: PatchChannel[int] = PatchChannel()
        items = _EmptyUnderLock(channel)
        channel._items = items
        if reader_kind == "sync":  # no timeout: a lost wake-up leaves the thread stuck
            thread, box = run_in_thread(channel.get)
            ok, item = join_thread(thread, box)
        else:
            ok, item = asyncio.run(asyncio.wait_for(channel.aget(), TIMEOUT))
        assert items.fired, "the reader never looked at the empty channel under its lock"
        assert (ok, item) == (True, 7)

    def test_serial_put_racing_a_close_the_reader_already_ended_on_is_refused(self) -> None:
        """A close and a reader's end between put_serial's checks: the put is refused."""
        channel: PatchChannel[int] = PatchChannel()
        ended: list[tuple[bool, Optional[int]]] = []

        def close_and_end() -> None:
            channel.close()
            ended.append(channel.get(timeout=0))  # closed and drained: the reader ends

        channel._items = _BeforeAppend(close_and_end)
        assert channel.put_serial(1) is False
        assert ended == [(False, None)]
        assert list(channel) == []
        assert channel.stats.queued == 0

    def test_serial_put_racing_a_close_before_any_reader_ended_is_delivered(self) -> None:
        """A close between put_serial's checks with no reader done yet: the item is accepted."""
        channel: PatchChannel[int] = PatchChannel()
        channel._items = _BeforeAppend(channel.close)
        assert channel.put_serial(1) is True
        assert channel.closed
        assert list(channel) == [1]
        assert channel.stats.queued == 1

    def test_serial_put_racing_a_close_whose_item_a_new_reader_took_is_accepted(self) -> None:
        """A reader that iterates again and takes the raced item delivered it: put returns True."""
        channel: PatchChannel[int] = PatchChannel()
        took: list[tuple[bool, Optional[int]]] = []

        def close_and_end() -> None:
            channel.close()
            assert channel.get(timeout=0) == (False, None)

        items = _BeforeAppend(close_and_end)
        items.before_pop = lambda: took.append(channel.get(timeout=0))
        channel._items = items
        assert channel.put_serial(1) is True
        assert took == [(True, 1)]
        assert list(channel) == []

    def test_drain_during_serial_puts_loses_nothing(self) -> None:
        """drain() while serial puts run takes some items; the rest stay for the reader."""
        channel: PatchChannel[int] = PatchChannel()
        owner_lock = threading.Lock()
        drained: list[int] = []

        def produce() -> None:
            for i in range(3000):
                with owner_lock:
                    channel.put_serial(i)

        thread, box = run_in_thread(produce)
        while thread.is_alive():
            drained += channel.drain()
        join_thread(thread, box)
        drained += channel.drain()
        assert drained == list(range(3000))
