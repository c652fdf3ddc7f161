"""Concurrency stress tests: many producers, one handler, consumers that come and go.

Producers are threads and asyncio tasks in several event loops, each streaming LLM runs
(tokens) and chain runs (tapped chunks) under one root; consumers read with ``for`` in a
thread or ``async for`` in another thread's loop, break out early, get cancelled and are
replaced, or see the stream closed under them. The outcome is checked, never the timing:
the patches received rebuild a state holding every run exactly once, each with all of its
tokens in order, under unique keys. Every wait is bounded by :data:`TIMEOUT` and every
thread is joined with a check that it finished, so a deadlock fails instead of hanging.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from functools import partial
from typing import Any, Callable, Optional

import jsonpatch  # type: ignore[import-untyped,unused-ignore]
import pytest

from logstream import (
    DuplicateRunError,
    LogStreamCallbackHandler,
    RunTypeError,
    UnknownRunError,
)

TIMEOUT = 30.0
"""Seconds any single wait may take before the test fails (generous: CI machines are noisy)."""

THREADS, LOOPS, TASKS, RUNS, TOKENS, CHUNKS = 3, 2, 3, 16, 30, 10
"""Sync producer threads; producer event loops, each with TASKS tasks; runs per producer."""

Ops = list[dict[str, Any]]


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every 10 microseconds (not 5 ms), so callbacks interleave finely."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


# -- helpers -----------------------------------------------------------------------------------


def in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``target`` in a daemon thread; its result or exception lands in the dict."""
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:  # re-raised by join
            box["error"] = exc

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, box


def join(thread: threading.Thread, box: dict[str, Any]) -> Any:
    """Join within :data:`TIMEOUT`, fail if still alive, re-raise its error, return its result."""
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "a thread is stuck: deadlock or a consumer never woken"
    if "error" in box:
        raise box["error"]
    return box.get("result")


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until it holds, failing after :data:`TIMEOUT` (no timing asserted)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.001)


def rebuild(patches: list[Ops]) -> Any:
    """Apply every patch in order to an empty document."""
    doc: Any = None
    for ops in patches:
        doc = jsonpatch.apply_patch(doc, ops, in_place=True)
    return doc


def start_root(handler: LogStreamCallbackHandler) -> uuid.UUID:
    """Start the root chain run and return its id."""
    root = uuid.uuid4()
    handler.on_chain_start({}, {"q": "stress"}, run_id=root, name="root")
    return root


def tokens(n: int) -> list[str]:
    """The tokens an LLM run streams, in order."""
    return [f"t{i}" for i in range(n)]


def llm_run(handler: LogStreamCallbackHandler, root: uuid.UUID, runs: dict[str, str]) -> None:
    """Stream one LLM run named ``model``: start, TOKENS tokens, end; record its id."""
    run_id = uuid.uuid4()
    runs[str(run_id)] = "llm"
    handler.on_llm_start({}, ["p"], run_id=run_id, parent_run_id=root, name="model")
    for token in tokens(TOKENS):
        handler.on_llm_new_token(token, run_id=run_id)
    handler.on_llm_end({"generations": [], "id": str(run_id)}, run_id=run_id)


def tap_run(handler: LogStreamCallbackHandler, root: uuid.UUID, runs: dict[str, str]) -> None:
    """Stream one chain run named ``step`` whose output is tapped chunk by chunk."""
    run_id = uuid.uuid4()
    runs[str(run_id)] = "tap"
    handler.on_chain_start({}, {"i": 1}, run_id=run_id, parent_run_id=root, name="step")
    out = list(handler.tap_output_iter(run_id, iter(range(CHUNKS))))
    assert out == list(range(CHUNKS))
    handler.on_chain_end({"n": CHUNKS}, run_id=run_id)


async def allm_run(
    handler: LogStreamCallbackHandler, root: uuid.UUID, runs: dict[str, str]
) -> None:
    """Async twin of :func:`llm_run`, yielding to the loop between tokens."""
    run_id = uuid.uuid4()
    runs[str(run_id)] = "llm"
    handler.on_llm_start({}, ["p"], run_id=run_id, parent_run_id=root, name="model")
    for token in tokens(TOKENS):
        handler.on_llm_new_token(token, run_id=run_id)
        await asyncio.sleep(0)
    handler.on_llm_end({"generations": [], "id": str(run_id)}, run_id=run_id)


async def atap_run(
    handler: LogStreamCallbackHandler, root: uuid.UUID, runs: dict[str, str]
) -> None:
    """Async twin of :func:`tap_run`, through ``tap_output_aiter``."""
    run_id = uuid.uuid4()
    runs[str(run_id)] = "tap"
    handler.on_chain_start({}, {"i": 1}, run_id=run_id, parent_run_id=root, name="step")

    async def source() -> AsyncIterator[int]:
        for i in range(CHUNKS):
            yield i
            await asyncio.sleep(0)

    out = [chunk async for chunk in handler.tap_output_aiter(run_id, source())]
    assert out == list(range(CHUNKS))
    handler.on_chain_end({"n": CHUNKS}, run_id=run_id)


def sync_producer(
    handler: LogStreamCallbackHandler, root: uuid.UUID, go: threading.Event
) -> dict[str, str]:
    """RUNS runs, alternating LLM and tapped chain runs, from one thread."""
    assert go.wait(TIMEOUT)
    runs: dict[str, str] = {}
    for r in range(RUNS):
        (llm_run if r % 2 == 0 else tap_run)(handler, root, runs)
    return runs


def async_producer(
    handler: LogStreamCallbackHandler, root: uuid.UUID, go: threading.Event
) -> dict[str, str]:
    """TASKS concurrent tasks in a fresh event loop, each with RUNS alternating runs."""
    assert go.wait(TIMEOUT)
    runs: dict[str, str] = {}

    async def task() -> None:
        for r in range(RUNS):
            await (allm_run if r % 2 == 0 else atap_run)(handler, root, runs)

    async def main() -> None:
        await asyncio.gather(*(task() for _ in range(TASKS)))

    asyncio.run(main())
    return runs


def run_producers(handler: LogStreamCallbackHandler, root: uuid.UUID) -> dict[str, str]:
    """Run THREADS sync producers and LOOPS producer loops at once; return run id -> kind."""
    go = threading.Event()
    workers = [in_thread(lambda: sync_producer(handler, root, go)) for _ in range(THREADS)]
    workers += [in_thread(lambda: async_producer(handler, root, go)) for _ in range(LOOPS)]
    go.set()
    runs: dict[str, str] = {}
    for thread, box in workers:
        runs.update(join(thread, box))
    return runs


N_RUNS = (THREADS + LOOPS * TASKS) * RUNS
N_PATCHES = 1 + N_RUNS // 2 * (1 + TOKENS + 1) + N_RUNS // 2 * (1 + CHUNKS + 1)
"""Patches of a full stream: the root, then per run its start, tokens or chunks, and end."""


def key_set(name: str, n: int) -> set[str]:
    """The keys n runs of one name get: ``name``, ``name:2``, ... ``name:n``."""
    return {name if k == 1 else f"{name}:{k}" for k in range(1, n + 1)}


def check_complete(patches: list[Ops], root: uuid.UUID, runs: dict[str, str]) -> None:
    """The patches rebuild every run exactly once, under unique keys, tokens in order."""
    assert len(patches) == N_PATCHES, "a patch was lost or delivered twice"
    state = rebuild(patches)
    assert state["id"] == str(root)
    by_id = {entry["id"]: entry for entry in state["logs"].values()}
    assert len(by_id) == len(state["logs"]) == len(runs) == N_RUNS
    assert set(by_id) == set(runs)
    n_llm = sum(kind == "llm" for kind in runs.values())
    model_keys = {key for key in state["logs"] if state["logs"][key]["name"] == "model"}
    assert model_keys == key_set("model", n_llm)
    for run_id, kind in runs.items():
        entry = by_id[run_id]
        if kind == "llm":
            assert entry["streamed_output_str"] == tokens(TOKENS)
            assert entry["streamed_output"] == tokens(TOKENS)
            assert entry["final_output"] == {"generations": [], "id": run_id}
        else:
            assert entry["streamed_output"] == list(range(CHUNKS))
            assert entry["final_output"] == {"n": CHUNKS}
        assert entry["end_time"] is not None


def sync_consumer(handler: LogStreamCallbackHandler, got: Optional[list[Ops]] = None) -> list[Ops]:
    """Read the whole stream with a blocking ``for`` loop, appending to ``got`` as it goes."""
    got = [] if got is None else got
    for patch in handler:
        got.append(patch.ops)
    return got


def async_consumer(
    handler: LogStreamCallbackHandler, parked: threading.Event, got: Optional[list[Ops]] = None
) -> list[Ops]:
    """Read the whole stream with ``async for`` in a fresh loop; set ``parked`` once waiting."""
    got = [] if got is None else got

    async def main() -> list[Ops]:
        task = asyncio.ensure_future(read(handler, got))
        await asyncio.sleep(0)
        parked.set()
        return await asyncio.wait_for(task, TIMEOUT)

    return asyncio.run(main())


async def read(handler: LogStreamCallbackHandler, got: Optional[list[Ops]] = None) -> list[Ops]:
    """Collect the ops of every patch with ``async for``, appending to ``got`` as it goes."""
    got = [] if got is None else got
    async for patch in handler:
        got.append(patch.ops)
    return got


# -- full streams ------------------------------------------------------------------------------


class TestManyProducers:
    """Threads and tasks in several loops stream into one handler; one consumer elsewhere."""

    @pytest.mark.parametrize("consumer", ["sync thread", "async loop in a thread"])
    def test_every_run_arrives_once_with_its_tokens_in_order(self, consumer: str) -> None:
        """Threads and tasks of two loops rebuild exactly, read by a for or async for elsewhere."""
        handler = LogStreamCallbackHandler()  # auto_close: the root's end ends the stream
        got: list[Ops] = []
        if consumer == "sync thread":
            reader = in_thread(lambda: sync_consumer(handler, got))
        else:
            parked = threading.Event()
            reader = in_thread(lambda: async_consumer(handler, parked, got))
            assert parked.wait(TIMEOUT)
        root = start_root(handler)
        runs = run_producers(handler, root)
        # every patch reaches the waiting consumer while the stream is still open
        wait_for(lambda: len(got) == N_PATCHES, "the consumer to receive every patch")
        handler.on_chain_end({"done": True}, run_id=root)
        assert join(*reader) is got
        check_complete(got, root, runs)

    def test_misuse_under_contention_raises_and_emits_nothing(self) -> None:
        """Racing misuse (unknown, ended, duplicate, wrong type) raises its error, emits nothing."""
        handler = LogStreamCallbackHandler()
        reader = in_thread(lambda: sync_consumer(handler))
        root = start_root(handler)
        go = threading.Event()

        def misuse(runs: dict[str, str]) -> int:
            assert go.wait(TIMEOUT)
            raised = 0
            for _ in range(RUNS):
                llm, chain = uuid.uuid4(), uuid.uuid4()
                handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
                handler.on_chain_start({}, 1, run_id=chain, parent_run_id=root, name="step")
                runs[str(llm)], runs[str(chain)] = "llm", "tap"
                calls: list[tuple[type[BaseException], Callable[[], Any]]] = [
                    (DuplicateRunError, partial(handler.on_llm_start, {}, [], run_id=llm)),
                    (RunTypeError, partial(handler.on_llm_new_token, "x", run_id=chain)),
                    (RunTypeError, partial(handler.on_tool_end, "x", run_id=llm)),
                    (UnknownRunError, partial(handler.on_llm_new_token, "x", run_id=uuid.uuid4())),
                ]
                for error, call in calls:
                    with pytest.raises(error):
                        call()
                    raised += 1
                for token in tokens(TOKENS):
                    handler.on_llm_new_token(token, run_id=llm)
                handler.on_llm_end({"generations": [], "id": str(llm)}, run_id=llm)
                with pytest.raises(UnknownRunError) as info:
                    handler.on_llm_new_token("late", run_id=llm)
                assert info.value.state == "ended"
                raised += 1
                assert list(handler.tap_output_iter(chain, iter(range(CHUNKS)))) == list(
                    range(CHUNKS)
                )
                handler.on_chain_error(ValueError("x"), run_id=chain)
                with pytest.raises(UnknownRunError) as info:
                    handler.on_chain_end(1, run_id=chain)
                assert info.value.state == "failed"
                raised += 1
            return raised

        boxes: list[dict[str, str]] = [{} for _ in range(THREADS * 2)]
        workers = [in_thread(lambda b=b: misuse(b)) for b in boxes]
        go.set()
        assert sum(join(*w) for w in workers) == THREADS * 2 * RUNS * 6
        handler.on_chain_end({}, run_id=root)
        patches = join(*reader)
        runs = {k: v for box in boxes for k, v in box.items()}
        state = rebuild(patches)
        n = THREADS * 2 * RUNS
        assert len(patches) == 1 + n * (1 + TOKENS + 1) + n * (1 + CHUNKS + 1)
        by_id = {entry["id"]: entry for entry in state["logs"].values()}
        assert set(by_id) == set(runs)
        for run_id, kind in runs.items():
            if kind == "llm":
                assert by_id[run_id]["streamed_output_str"] == tokens(TOKENS)
            else:
                assert by_id[run_id]["streamed_output"] == list(range(CHUNKS))
                assert by_id[run_id]["final_output"] is None  # failed: no output

    def test_rule_reassigned_while_runs_start_decides_each_run_whole(self) -> None:
        """A filter flipped while runs start logs each run whole or not at all, keys unique."""
        handler = LogStreamCallbackHandler(auto_close=False)
        root = start_root(handler)
        stop = threading.Event()

        def flip() -> int:
            flips = 0
            while not stop.is_set():
                handler.exclude_names = ["model"] if flips % 2 == 0 else None
                flips += 1
                time.sleep(0)
            return flips

        flipper = in_thread(flip)
        runs = run_producers(handler, root)
        stop.set()
        join(*flipper)
        handler.close()
        patches = [patch.ops for patch in handler]
        state = rebuild(patches)
        by_id = {entry["id"]: entry for entry in state["logs"].values()}
        assert len(by_id) == len(state["logs"])  # no key was handed out twice
        assert set(by_id) <= set(runs)
        for run_id, kind in runs.items():
            if kind == "tap":  # never excluded
                assert by_id[run_id]["streamed_output"] == list(range(CHUNKS))
            elif run_id in by_id:  # logged: then logged whole
                assert by_id[run_id]["streamed_output_str"] == tokens(TOKENS)
                assert by_id[run_id]["end_time"] is not None
        logged = sum(kind == "llm" and run_id in by_id for run_id, kind in runs.items())
        model_keys = {k for k, e in state["logs"].items() if e["name"] == "model"}
        assert model_keys == key_set("model", logged)


# -- consumers that leave early ----------------------------------------------------------------


class TestConsumersThatLeave:
    """Consumers that break out or are cancelled never block producers nor lose patches."""

    def test_sync_consumer_breaks_early_and_the_rest_is_read_later(self) -> None:
        """A for loop that breaks mid-stream blocks nobody; iterating again gets the rest."""
        handler = LogStreamCallbackHandler()

        def take(n: int) -> list[Ops]:
            got = []
            for patch in handler:
                got.append(patch.ops)
                if len(got) == n:
                    break
            return got

        first = in_thread(lambda: take(50))
        root = start_root(handler)
        runs = run_producers(handler, root)  # producers are never blocked by the leaver
        head = join(*first)
        assert len(head) == 50
        handler.on_chain_end({"done": True}, run_id=root)
        check_complete(head + [patch.ops for patch in handler], root, runs)

    def test_async_consumer_breaks_then_a_consumer_in_another_loop_continues(self) -> None:
        """async for that breaks in one loop; another loop and thread reads on, nothing lost."""
        handler = LogStreamCallbackHandler()

        async def take(n: int) -> list[Ops]:
            got = []
            async for patch in handler:
                got.append(patch.ops)
                if len(got) == n:
                    break
            return got

        first = in_thread(lambda: asyncio.run(take(70)))
        root = start_root(handler)
        go = threading.Event()
        producers = [in_thread(lambda: sync_producer(handler, root, go)) for _ in range(THREADS)]
        producers += [in_thread(lambda: async_producer(handler, root, go)) for _ in range(LOOPS)]
        go.set()
        head = join(*first)
        parked = threading.Event()
        second = in_thread(lambda: async_consumer(handler, parked))  # while producers run
        runs: dict[str, str] = {}
        for thread, box in producers:
            runs.update(join(thread, box))
        handler.on_chain_end({"done": True}, run_id=root)
        check_complete(head + join(*second), root, runs)

    def test_cancelled_consumers_hand_over_without_losing_a_patch(self) -> None:
        """Consumers cancelled mid-stream, each replaced in a new loop, see every patch once."""
        handler = LogStreamCallbackHandler()
        parts: list[list[Ops]] = []
        root = start_root(handler)
        go = threading.Event()
        producers = [in_thread(lambda: sync_producer(handler, root, go)) for _ in range(THREADS)]
        producers += [in_thread(lambda: async_producer(handler, root, go)) for _ in range(LOOPS)]
        go.set()
        for k in range(4):  # four consumers, each cancelled, then a last one
            got: list[Ops] = []
            parts.append(got)
            reached = threading.Event()
            box: dict[str, Any] = {}

            async def consume(got: list[Ops] = got, reached: threading.Event = reached) -> None:
                async for patch in handler:
                    got.append(patch.ops)
                    if len(got) >= 25:
                        reached.set()

            async def main(box: dict[str, Any] = box) -> None:
                box["loop"] = asyncio.get_running_loop()
                box["task"] = asyncio.ensure_future(consume())
                with pytest.raises(asyncio.CancelledError):
                    await box["task"]

            relay = in_thread(lambda main=main: asyncio.run(main()))
            if k == 0:
                assert reached.wait(TIMEOUT)
            else:
                # later relays may find the producers done and park at once: cancel anyway
                reached.wait(0.05)
            wait_for(lambda box=box: "task" in box, "the consumer task")
            box["loop"].call_soon_threadsafe(box["task"].cancel)
            join(*relay)  # the cancelled consumer is gone before the next one starts
        runs: dict[str, str] = {}
        for thread, box in producers:
            runs.update(join(thread, box))
        handler.on_chain_end({"done": True}, run_id=root)
        last = [patch.ops for patch in handler]
        check_complete([ops for part in parts for ops in part] + last, root, runs)

    def test_callbacks_keep_working_after_every_consumer_left(self) -> None:
        """With no consumer at all (one broke, one was cancelled), producers still run freely."""
        handler = LogStreamCallbackHandler()
        root = start_root(handler)

        async def park_then_cancel() -> None:
            task = asyncio.ensure_future(read(handler))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        first = next(iter(handler))  # a sync consumer takes the root and leaves
        assert first.ops[0]["path"] == ""
        asyncio.run(park_then_cancel())  # the root is gone: this reader parks, is cancelled
        runs = run_producers(handler, root)
        handler.on_chain_end({"done": True}, run_id=root)
        check_complete([first.ops] + [patch.ops for patch in handler], root, runs)


# -- closing under load ------------------------------------------------------------------------


class TestCloseUnderLoad:
    """close(), or the root's end with auto_close, while producers are still streaming."""

    @pytest.mark.parametrize("consumer", ["sync", "async"])
    @pytest.mark.parametrize("how", ["close()", "root end"])
    def test_close_delivers_what_was_sent_before_and_nothing_after(
        self, how: str, consumer: str
    ) -> None:
        """Producers racing a close raise nothing; each run's tokens arrive as a prefix, once."""
        handler = LogStreamCallbackHandler(auto_close=(how == "root end"))
        if consumer == "sync":
            reader = in_thread(lambda: sync_consumer(handler))
        else:
            parked = threading.Event()
            reader = in_thread(lambda: async_consumer(handler, parked))
            assert parked.wait(TIMEOUT)
        root = start_root(handler)
        go, halfway, closed = threading.Event(), threading.Event(), threading.Event()
        # run id -> [(token index, closed before the call, closed after it)]
        calls: dict[str, list[tuple[int, bool, bool]]] = {}
        sends: list[tuple[list[int], bool]] = []

        def produce(p: int) -> None:
            assert go.wait(TIMEOUT)
            for r in range(RUNS * 2):
                if p == 0 and r == RUNS:  # producer 0 streams half before, half after the close
                    halfway.set()
                    assert closed.wait(TIMEOUT)
                run_id = uuid.uuid4()
                log: list[tuple[int, bool, bool]] = []
                calls[str(run_id)] = log
                handler.on_llm_start({}, ["p"], run_id=run_id, parent_run_id=root, name="m")
                for i in range(TOKENS):
                    before = handler.closed
                    assert handler.on_llm_new_token(f"t{i}", run_id=run_id) is None
                    log.append((i, before, handler.closed))
                op = {"op": "add", "path": "/streamed_output/-", "value": [p, r]}
                sends.append(([p, r], handler.send(op)))
                if handler.closed:  # misuse after the close is a no-op too
                    assert handler.on_llm_new_token("x", run_id=uuid.uuid4()) is None
                    assert handler.on_chain_end(1, run_id=uuid.uuid4()) is None
                handler.on_llm_end({"generations": []}, run_id=run_id)

        def close() -> None:
            assert halfway.wait(TIMEOUT)
            if how == "close()":
                assert handler.close() is True
            else:
                handler.on_chain_end({"done": True}, run_id=root)
            assert handler.closed
            closed.set()

        workers = [in_thread(lambda p=p: produce(p)) for p in range(THREADS * 2)]
        closer = in_thread(close)
        go.set()
        for worker in workers:
            join(*worker)  # no exception escaped a producer
        join(*closer)
        patches = join(*reader)
        assert handler.send({"op": "add", "path": "/streamed_output/-", "value": 0}) is False
        assert handler.close() is False
        assert [ok for (p, r), ok in sends if p == 0] == [True] * RUNS + [False] * RUNS

        state = rebuild(patches)
        by_id = {entry["id"]: entry for entry in state["logs"].values()}
        assert len(by_id) == len(state["logs"])
        for run_id, log in calls.items():
            got = by_id[run_id]["streamed_output_str"] if run_id in by_id else []
            assert got == tokens(len(got)), "tokens reordered or duplicated"
            for i, before, after in log:
                if not after:  # closed only after this call returned: it was delivered
                    assert i < len(got)
                if before:  # closed before the call: it was not
                    assert i >= len(got)
        delivered = state["streamed_output"]
        assert sorted(delivered) == sorted(value for value, ok in sends if ok)
        for p in range(THREADS * 2):
            mine = [r for q, r in delivered if q == p]
            assert mine == sorted(mine)
