"""PositionedLog: positions, snapshots, compaction and fan-out to many subscribers."""

from __future__ import annotations

import asyncio
import copy
import random
import threading
import time
import uuid
from typing import Any

import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logstream import (
    ConfigError,
    FutureResumeIdError,
    MalformedResumeIdError,
    NotAPatchError,
    PatchApplyError,
    PositionedLog,
    RunLog,
    RunLogPatch,
    SinkClosedError,
    StaleResumeIdError,
    SubscriberLagError,
    Tracer,
    stream_log,
    traced,
)
from logstream._wire import Frame, LogEnd, LogSource
from tests.source_contract import LogSourceContract, Writer
from tests.threading_helpers import TIMEOUT, join_thread, run_in_thread

# -- a random run, made with the native Tracer API ----------------------------------------

actions = st.lists(
    st.tuples(
        st.sampled_from(["start", "start", "token", "token", "token", "end", "chunk"]),
        st.integers(0, 7),
        st.one_of(
            st.none(),
            st.integers(),
            st.text(max_size=4),
            st.lists(st.integers(), max_size=3),
            st.dictionaries(st.sampled_from(["a", "b/c", "~d"]), st.integers(), max_size=2),
        ),
    ),
    max_size=40,
)


def run_patches(steps: list[tuple[str, int, Any]]) -> list[RunLogPatch]:
    """Drive a Tracer through ``steps`` (a root chain, nested runs, tokens, ends)."""
    tracer = Tracer(auto_close=False)
    root = uuid.uuid4()
    tracer.start_run("agent", "chain", run_id=root, inputs={"q": "hi"})
    open_runs: list[tuple[uuid.UUID, str]] = [(root, "chain")]
    types = ["chain", "llm", "tool", "chat_model", "retriever"]
    for kind, pick, value in steps:
        if kind == "start":
            parent = open_runs[pick % len(open_runs)][0] if open_runs else None
            run_type = types[pick % len(types)]
            run_id = uuid.uuid4()
            name = ["model", "a/b", "tool", "x~y", "model"][pick % 5]
            tracer.start_run(name, run_type, run_id=run_id, parent_id=parent, inputs=value)
            open_runs.append((run_id, run_type))
        elif kind == "token":
            llms = [r for r in open_runs if r[1] in ("llm", "chat_model")]
            if llms:
                tracer.add_token(llms[pick % len(llms)][0], str(value))
        elif kind == "chunk":
            if len(open_runs) > 1:
                tracer.add_chunk(open_runs[-1][0], value)
        elif len(open_runs) > 1:
            run_id, run_type = open_runs.pop()
            if run_type in ("tool", "retriever") and pick % 3 == 0:
                tracer.end_run(run_id, error=ValueError("boom"))
            else:
                tracer.end_run(run_id, outputs={"out": value})
    while open_runs:
        tracer.end_run(open_runs.pop()[0], outputs=None)
    tracer.close()
    return tracer.drain()


def full_state(patches: list[RunLogPatch]) -> Any:
    """The state the whole history builds, through RunLog."""
    log = RunLog(state=None)
    for patch in patches:
        log = log + patch
    return log.state


def rebuild(items: list[Any]) -> tuple[Any, list[int]]:
    """Apply frames with jsonpatch (not our applier); return the state and the positions."""
    state: Any = None
    positions = []
    for item in items:
        if isinstance(item, Frame):
            state = jsonpatch.apply_patch(state, copy.deepcopy(item.ops), in_place=True)
            positions.append(item.position)
    return state, positions


def check_positions(positions: list[int]) -> None:
    """After the first frame, positions go up by exactly one: nothing lost or repeated."""
    for before, after in zip(positions, positions[1:]):
        assert after == before + 1, positions


def feed(log: PositionedLog, patches: list[RunLogPatch]) -> None:
    for patch in patches:
        log.append(patch)


class TestSnapshotProperty:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(actions, st.data())
    def test_snapshot_at_p_plus_patches_after_p_rebuilds_the_full_history(
        self, steps: list[tuple[str, int, Any]], data: st.DataObject
    ) -> None:
        """For a random run and a random cut p, snapshot(p) + patches after p == full state."""
        patches = run_patches(steps)
        expected = full_state(patches)
        max_history = data.draw(st.one_of(st.none(), st.integers(1, 8)), label="max_history")
        log = PositionedLog(max_history=max_history)
        feed(log, patches)
        log.end()
        assert log.position == len(patches)
        cut = data.draw(st.integers(log.oldest, len(patches)), label="cut")
        snap = log.snapshot(at=cut)
        assert snap.snapshot and snap.position == cut
        assert snap.ops == [{"op": "replace", "path": "", "value": snap.ops[0]["value"]}]
        tail = list(log.frames(after=cut))
        assert isinstance(tail[-1], LogEnd) and tail[-1].position == len(patches)
        state, positions = rebuild([snap, *tail])
        assert state == expected
        assert positions == list(range(cut, len(patches) + 1))
        # the snapshot at p is the state the first p patches build
        assert snap.ops[0]["value"] == full_state(patches[:cut])

    @settings(max_examples=40, deadline=None)
    @given(actions, st.data())
    def test_a_subscriber_joining_at_a_random_time_rebuilds_the_full_state(
        self, steps: list[tuple[str, int, Any]], data: st.DataObject
    ) -> None:
        """A subscriber that joins after p patches, snapshot or history first, ends equal."""
        patches = run_patches(steps)
        cut = data.draw(st.integers(0, len(patches)), label="cut")
        snapshot_first = data.draw(st.booleans(), label="snapshot_first")
        log = PositionedLog()
        feed(log, patches[:cut])
        frames = log.frames(snapshot_first=snapshot_first)
        feed(log, patches[cut:])
        log.end()
        items = list(frames)
        state, positions = rebuild(items)
        assert state == full_state(patches)
        check_positions(positions)
        first = items[0]
        assert isinstance(first, Frame)
        if snapshot_first:
            assert first.snapshot and first.position == cut
        else:
            assert not first.snapshot and first.position == 1


class TestPositions:
    def test_positions_count_patches_from_one(self) -> None:
        """append returns 1, 2, 3...; the empty log is at 0 with state None."""
        log = PositionedLog("r")
        assert (log.position, log.snapshot().ops[0]["value"]) == (0, None)
        assert log.append([{"op": "replace", "path": "", "value": {"n": 0}}]) == 1
        assert log.append(RunLogPatch({"op": "replace", "path": "/n", "value": 1})) == 2
        assert log.snapshot() == Frame(
            "r", 2, [{"op": "replace", "path": "", "value": {"n": 1}}], True
        )

    def test_a_snapshot_is_a_copy_the_log_does_not_change(self) -> None:
        """Later patches, applied in place, do not reach a snapshot handed out before."""
        log = PositionedLog()
        log.append([{"op": "replace", "path": "", "value": {"xs": []}}])
        snap = log.snapshot()
        log.append([{"op": "add", "path": "/xs/-", "value": 1}])
        assert snap.ops[0]["value"] == {"xs": []}
        assert log.snapshot().ops[0]["value"] == {"xs": [1]}

    def test_a_log_is_a_log_source(self) -> None:
        """PositionedLog keeps the LogSource protocol."""
        assert isinstance(PositionedLog(), LogSource)

    def test_bad_options_are_config_errors(self) -> None:
        """A bad id, bound or policy is refused when the log is made."""
        for kwargs in (
            {"log_id": "a b"},
            {"log_id": ""},
            {"max_history": 0},
            {"max_lag": True},
            {"on_lag": "drop"},
        ):
            with pytest.raises(ConfigError):
                PositionedLog(**kwargs)

    def test_a_patch_that_does_not_apply_changes_nothing(self) -> None:
        """A failing patch raises PatchApplyError and takes no position."""
        log = PositionedLog()
        log.append([{"op": "replace", "path": "", "value": {}}])
        with pytest.raises(PatchApplyError):
            log.append([{"op": "add", "path": "/a", "value": 1}, {"op": "remove", "path": "/b"}])
        assert log.position == 1 and log.snapshot().ops[0]["value"] == {}

    def test_a_run_log_or_other_value_is_not_a_patch(self) -> None:
        """A RunLog (every op so far) or a string is refused with NotAPatchError."""
        log = PositionedLog()
        for bad in (RunLog({"op": "replace", "path": "", "value": 1}, state=1), "ops"):
            with pytest.raises(NotAPatchError):
                log.append(bad)  # type: ignore[arg-type]
        assert log.position == 0

    def test_append_or_end_after_the_end_is_refused(self) -> None:
        """After end(), append and end raise SinkClosedError; close() does nothing."""
        log = PositionedLog()
        log.end()
        with pytest.raises(SinkClosedError):
            log.append([])
        with pytest.raises(SinkClosedError):
            log.end()
        log.close()
        assert log.end_record() == LogEnd(log.log_id, 0, None)


class TestResume:
    def test_resume_after_k_replays_exactly_the_patches_after_k(self) -> None:
        """frames(after=k) gives k+1.. then the end."""
        log = PositionedLog("r")
        for n in range(5):
            log.append([{"op": "replace", "path": "", "value": n}])
        log.end("ValueError: boom")
        items = list(log.frames(after=2))
        assert [i.position for i in items] == [3, 4, 5, 5]
        assert items[-1] == LogEnd("r", 5, "ValueError: boom")

    def test_future_and_bad_positions_are_resume_errors(self) -> None:
        """A position past the end, a negative one or a non-int is refused by the call."""
        log = PositionedLog("r")
        log.append([{"op": "replace", "path": "", "value": 1}])
        with pytest.raises(FutureResumeIdError) as info:
            log.frames(after=2)
        assert (info.value.position, info.value.latest, info.value.log_id) == (2, 1, "r")
        with pytest.raises(MalformedResumeIdError):
            log.frames(after=-1)
        with pytest.raises(MalformedResumeIdError):
            log.aframes(after="1")  # type: ignore[arg-type]

    def test_compacted_history_gives_a_snapshot_then_the_tail(self) -> None:
        """With max_history, a resume from before the kept patches starts with a snapshot."""
        log = PositionedLog(max_history=10)
        for n in range(100):
            log.append([{"op": "replace", "path": "", "value": n}])
        assert log.oldest == 90
        assert len(log._history) < 20  # compacted physically too
        log.end()
        items = list(log.frames(after=5))
        assert items[0] == Frame(
            log.log_id, 100, [{"op": "replace", "path": "", "value": 99}], True
        )
        kept = list(log.frames(after=95))
        assert [i.position for i in kept] == [96, 97, 98, 99, 100, 100]
        with pytest.raises(StaleResumeIdError):
            log.snapshot(at=89)
        assert log.snapshot(at=90).ops[0]["value"] == 89


class TestFanOut:
    def test_subscribing_after_the_end_works(self) -> None:
        """A subscriber of an ended log gets a snapshot (or history) and the end at once."""
        log = PositionedLog()
        feed(log, run_patches([("start", 1, None), ("token", 0, "hi")]))
        log.end()
        items = list(log.frames())
        assert [type(i) for i in items] == [Frame, LogEnd]

    def test_a_slow_subscriber_is_resynced_with_a_snapshot(self) -> None:
        """Past max_lag under 'resync', a subscriber skips ahead to a fresh snapshot."""
        log = PositionedLog(max_lag=5)
        log.append([{"op": "replace", "path": "", "value": []}])
        frames = log.frames(after=1)
        for n in range(50):
            log.append([{"op": "add", "path": "/-", "value": n}])
        first = next(frames)
        assert first.snapshot and first.position == 51
        log.append([{"op": "add", "path": "/-", "value": 50}])
        log.end()
        state, positions = rebuild([first, *frames])
        assert state == list(range(51)) and positions == [51, 52]

    def test_a_slow_subscriber_can_be_ended_with_an_error_instead(self) -> None:
        """Under on_lag='error', the slow subscriber alone ends with SubscriberLagError."""
        log = PositionedLog(max_lag=5, on_lag="error")
        log.append([{"op": "replace", "path": "", "value": 0}])
        slow = log.frames(after=1)
        keen = log.frames(after=1, max_lag=None)
        for n in range(10):
            log.append([{"op": "replace", "path": "", "value": n}])
        with pytest.raises(SubscriberLagError) as info:
            next(slow)
        assert (info.value.position, info.value.latest, info.value.max_lag) == (1, 11, 5)
        assert "on_lag='error'" in str(info.value)
        assert next(keen).position == 2

    def test_a_subscriber_behind_compacted_history_meets_its_policy(self) -> None:
        """Without a bound, patches compacted past a subscriber resync it, or end it."""
        log = PositionedLog(max_history=3)
        log.append([{"op": "replace", "path": "", "value": 0}])
        resync = log.frames(after=1)
        strict = log.frames(after=1, on_lag="error")
        for n in range(10):
            log.append([{"op": "replace", "path": "", "value": n}])
        first = next(resync)
        assert first.snapshot and first.position == 11
        with pytest.raises(SubscriberLagError) as info:
            next(strict)
        assert info.value.max_lag is None and "compacted" in str(info.value)

    def test_a_subscriber_that_never_reads_does_not_hold_up_the_producer(self) -> None:
        """The producer appends 20,000 patches past a stalled subscriber, which holds nothing."""
        log = PositionedLog(max_history=100)
        log.append([{"op": "replace", "path": "", "value": 0}])
        stalled = log.frames(after=0)
        assert next(stalled).position == 1  # subscribed, then never reads again
        thread, box = run_in_thread(
            lambda: [log.append([{"op": "replace", "path": "", "value": n}]) for n in range(20_000)]
        )
        join_thread(thread, box)
        assert log.position == 20_001 and len(log._history) <= 200
        assert log.subscribers == 1
        resumed = next(stalled)  # it fell behind the compacted history: a resync
        assert resumed.snapshot and resumed.position == 20_001

    def test_idle_subscribers_get_heartbeats(self) -> None:
        """With a timeout, a subscriber of an idle log gets None, sync and async."""
        log = PositionedLog()
        frames = log.frames(timeout=0.01)
        assert next(frames).snapshot and next(frames) is None

        async def main() -> Any:
            agen = log.aframes(timeout=0.01)
            first = await agen.__anext__()
            second = await agen.__anext__()
            await agen.aclose()
            return first, second

        first, second = asyncio.run(main())
        assert first.snapshot and second is None

    def test_closed_or_cancelled_subscribers_are_let_go(self) -> None:
        """Closing a sync iterator or cancelling an async reader drops its subscription."""
        log = PositionedLog()
        frames = log.frames()
        next(frames)
        assert log.subscribers == 1
        frames.close()
        assert log.subscribers == 0

        async def main() -> int:
            async def read() -> None:
                async for _ in log.aframes():
                    pass

            tasks = [asyncio.ensure_future(read()) for _ in range(5)]
            await asyncio.sleep(0.05)
            during = log.subscribers
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            return during

        assert asyncio.run(main()) == 5
        assert log.subscribers == 0

    def test_one_producer_thread_and_many_sync_and_async_subscribers_agree(self) -> None:
        """A tracer pumped from a thread; subscribers join at random times and end equal."""
        log = PositionedLog()

        @traced(run_type="llm")
        def model(n: int) -> Any:
            for i in range(n):
                time.sleep(0.0005)  # the run lasts a while: readers join during it
                yield f"t{i} "

        @traced(run_type="tool")
        def tool(x: int) -> int:
            return x * 2

        def agent(q: str) -> str:
            out = []
            for k in range(30):
                out.append(str(tool(k)))
                out.append("".join(model(20)))
            return "".join(out)

        start = threading.Event()
        results: dict[str, Any] = {}
        rng = random.Random(7)

        def sync_reader(name: str, snapshot_first: bool, delay: float) -> None:
            start.wait(TIMEOUT)
            threading.Event().wait(delay)
            items = list(log.frames(snapshot_first=snapshot_first))
            results[name] = items

        async def async_readers() -> None:
            async def one(name: str, snapshot_first: bool, delay: float) -> None:
                await asyncio.sleep(delay)
                results[name] = [i async for i in log.aframes(snapshot_first=snapshot_first)]

            start.wait(TIMEOUT)
            await asyncio.gather(*(one(f"a{k}", k % 2 == 0, rng.random() * 0.3) for k in range(20)))

        threads = [
            run_in_thread(lambda k=k: sync_reader(f"s{k}", k % 2 == 0, rng.random() * 0.3))
            for k in range(10)
        ]
        threads.append(run_in_thread(lambda: asyncio.run(async_readers())))
        pump = log.pump(stream_log(agent, "go"))
        start.set()
        pump.join(TIMEOUT)
        for thread, box in threads:
            join_thread(thread, box)
        expected = log.snapshot().ops[0]["value"]
        assert expected["final_output"] and log.end_record() == LogEnd(
            log.log_id, log.position, None
        )
        assert len(results) == 30
        mid_run = [
            name
            for name, items in results.items()
            if items[0].snapshot and 0 < items[0].position < log.position
        ]
        assert mid_run  # the test exercised joining a live run, not only the two ends
        for name, items in results.items():
            state, positions = rebuild(items)
            assert state == expected, name
            check_positions(positions)
            assert isinstance(items[-1], LogEnd)

    def test_a_failing_producer_ends_the_log_with_its_error(self) -> None:
        """consume() records the traced code's error in the end and raises it."""
        log = PositionedLog()

        def agent(q: str) -> str:
            raise ValueError("no answer")

        with pytest.raises(ValueError):
            log.consume(stream_log(agent, "q"))
        end = log.end_record()
        assert end is not None and end.error == "ValueError: no answer"
        assert list(log.frames())[-1] == end

    def test_aconsume_feeds_async_subscribers_in_the_same_loop(self) -> None:
        """aconsume in one task and async subscribers in others rebuild the same state."""

        async def agent(q: str) -> str:
            await asyncio.sleep(0)
            return q * 3

        async def main() -> tuple[Any, list[Any]]:
            from logstream import astream_log

            log = PositionedLog()

            async def read() -> list[Any]:
                return [i async for i in log.aframes(snapshot_first=False)]

            readers = [asyncio.ensure_future(read()) for _ in range(3)]
            await log.aconsume(astream_log(agent, "ab"))
            return log.snapshot().ops[0]["value"], await asyncio.gather(*readers)

        expected, all_items = asyncio.run(main())
        for items in all_items:
            assert rebuild(items)[0] == expected


class TestPositionedLogContract(LogSourceContract):
    """The LogSource contract, against PositionedLog."""

    def make_log(self, log_id: str) -> tuple[Writer, LogSource]:
        log = PositionedLog(log_id)
        return log, log
