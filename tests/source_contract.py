"""The LogSource contract as tests, for every implementation (in-process, Redis, ...).

Subclass :class:`LogSourceContract` in a test module and define ``make_log``; pytest
collects the subclass (its name starts with ``Test``) and runs every check against it.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from typing import Any, Optional, Protocol

import jsonpatch
import pytest

from logstream import FutureResumeIdError, MalformedResumeIdError
from logstream._wire import Frame, LogEnd, LogSource, WireItem


class Writer(Protocol):
    """The producer side: what appends patches to the log a source reads."""

    def append(self, patch: list[dict[str, Any]]) -> int: ...

    def end(self, error: Optional[str] = None) -> None: ...


def rebuild(items: list[WireItem]) -> tuple[Any, list[int]]:
    """Apply the frames with jsonpatch; return the state and the frames' positions."""
    state: Any = None
    positions = []
    for item in items:
        if isinstance(item, Frame):
            state = jsonpatch.apply_patch(state, copy.deepcopy(item.ops), in_place=True)
            positions.append(item.position)
    return state, positions


def patch(n: int) -> list[dict[str, Any]]:
    """The n-th test patch (n >= 1): the first sets the root, the rest add to a list."""
    if n == 1:
        return [{"op": "replace", "path": "", "value": {"xs": []}}]
    return [{"op": "add", "path": "/xs/-", "value": n}]


def state_after(n: int) -> Any:
    return None if n == 0 else {"xs": list(range(2, n + 1))}


def collect(frames: Any, limit: int = 10_000) -> list[WireItem]:
    """Read items up to the end (heartbeats skipped), at most ``limit``."""
    items: list[WireItem] = []
    for item in frames:
        if item is None:
            continue
        items.append(item)
        if isinstance(item, LogEnd) or len(items) >= limit:
            break
    return items


class LogSourceContract:
    """Checks of the LogSource contract; subclasses say how to make a log."""

    def make_log(self, log_id: str) -> tuple[Writer, LogSource]:
        """Return a writer and a source reading what it writes (a fresh, empty log)."""
        raise NotImplementedError

    def filled(self, n: int, *, end: bool = True) -> tuple[Writer, LogSource]:
        writer, source = self.make_log("contract-log")
        for k in range(1, n + 1):
            writer.append(patch(k))
        if end:
            writer.end()
        return writer, source

    def test_a_new_subscriber_gets_a_snapshot_then_the_end(self) -> None:
        """An ended log: one snapshot at the last position, then the LogEnd."""
        _, source = self.filled(5)
        items = collect(source.frames(timeout=0.5))
        assert [type(i) for i in items] == [Frame, LogEnd]
        first = items[0]
        assert isinstance(first, Frame) and first.snapshot and first.position == 5
        assert first.ops == [{"op": "replace", "path": "", "value": state_after(5)}]
        assert items[-1] == LogEnd(source.log_id, 5, None)

    def test_history_from_the_start_and_resume_after_k(self) -> None:
        """snapshot_first=False / after=0 gives 1..n; after=k gives k+1..n; then the end."""
        _, source = self.filled(6)
        for items in (
            collect(source.frames(snapshot_first=False, timeout=0.5)),
            collect(source.frames(after=0, timeout=0.5)),
        ):
            assert rebuild(items) == (state_after(6), [1, 2, 3, 4, 5, 6])
        tail = collect(source.frames(after=4, timeout=0.5))
        assert [i.position for i in tail] == [5, 6, 6]
        assert collect(source.frames(after=6, timeout=0.5)) == [LogEnd(source.log_id, 6, None)]

    def test_snapshot_and_end_record(self) -> None:
        """snapshot() is the state now at the latest position; end_record() once ended."""
        writer, source = self.filled(3, end=False)
        assert source.end_record() is None
        snap = source.snapshot()
        assert (snap.position, snap.snapshot, snap.ops[0]["value"]) == (3, True, state_after(3))
        writer.end("ValueError: boom")
        assert source.end_record() == LogEnd(source.log_id, 3, "ValueError: boom")

    def test_future_and_negative_positions_are_refused(self) -> None:
        """after beyond the latest position, or negative, raises a ResumeError."""
        _, source = self.filled(2)
        with pytest.raises(FutureResumeIdError):
            collect(source.frames(after=3, timeout=0.5))
        with pytest.raises(MalformedResumeIdError):
            collect(source.frames(after=-1, timeout=0.5))

    def test_live_frames_reach_a_waiting_subscriber_with_heartbeats(self) -> None:
        """A subscriber waiting on a live log gets heartbeats, then each patch, then the end."""
        writer, source = self.filled(1, end=False)
        frames = source.frames(after=1, timeout=0.05)
        assert next(frames) is None  # nothing yet: a heartbeat

        def produce() -> None:
            for k in range(2, 40):
                writer.append(patch(k))
            writer.end()

        thread = threading.Thread(target=produce)
        thread.start()
        items = collect(frames)
        thread.join(30)
        state, positions = rebuild([Frame(source.log_id, 1, patch(1), False), *items])
        assert positions == list(range(1, 40))
        assert items[-1] == LogEnd(source.log_id, 39, None)
        assert state == state_after(39)

    def test_async_subscribers_see_what_sync_ones_see(self) -> None:
        """aframes yields the same items as frames, live, in any event loop."""
        writer, source = self.filled(3, end=False)

        async def main() -> list[WireItem]:
            items: list[WireItem] = []
            agen = source.aframes(after=0, timeout=0.05)
            try:
                async for item in agen:
                    if item is None:
                        if len(items) == 3:
                            threading.Thread(target=lambda: finish(writer)).start()
                        continue
                    items.append(item)
                    if isinstance(item, LogEnd):
                        break
            finally:
                await agen.aclose()  # type: ignore[attr-defined]
            return items

        def finish(w: Writer) -> None:
            for k in range(4, 10):
                w.append(patch(k))
            w.end()

        items = asyncio.run(main())
        assert rebuild(items) == (state_after(9), list(range(1, 10)))
        assert items[-1] == LogEnd(source.log_id, 9, None)
