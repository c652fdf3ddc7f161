"""Tests for traced runs in threads: carried to their parent by the helpers, or signalled."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

import pytest

import logstream
from logstream import (
    ContextLostError,
    ContextThread,
    ContextThreadPoolExecutor,
    RunLogPatch,
    Tracer,
    orphan_runs,
    run_in_executor,
    set_strict_context,
    trace,
    traced,
)


@traced(run_type="tool")
def lookup(key: str) -> str:
    """A traced tool that runs wherever it is called."""
    return key.upper()


@pytest.fixture(autouse=True)
def lenient() -> Iterator[None]:
    """Leave strict mode off after each test."""
    set_strict_context(False)
    yield
    set_strict_context(False)


def state_of(tracer: Tracer) -> dict[str, Any]:
    """Return the state the tracer's patches rebuild."""
    log = RunLogPatch()
    for patch in tracer:
        log = log + patch
    return dict(log.state)  # type: ignore[arg-type]


def in_plain_thread(fn: Callable[[], Any]) -> list[BaseException]:
    """Run ``fn`` in a plain thread; return what it raised."""
    errors: list[BaseException] = []

    def body() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=body)
    worker.start()
    worker.join(10)
    return errors


class TestCarried:
    """With a helper the thread's run nests under the run open where it was started."""

    def check_nested(self, tracer: Tracer) -> None:
        """Assert ``lookup`` is logged under the ``agent`` root, with its output."""
        state = state_of(tracer)
        entry = state["logs"]["lookup"]
        assert entry["parent_ids"] == [state["id"]]
        assert entry["final_output"] == "X"

    def test_context_thread(self) -> None:
        """A ContextThread runs its target in the starter's context."""
        tracer = Tracer(entry_fields=["parent_ids"])
        before = orphan_runs()
        with trace("agent", tracer=tracer):
            worker = ContextThread(target=lookup, args=("x",))
            worker.start()
            worker.join(10)
        self.check_nested(tracer)
        assert orphan_runs() == before

    def test_run_in_executor(self) -> None:
        """run_in_executor(loop, executor, fn, *args) carries the context into the executor."""
        tracer = Tracer(entry_fields=["parent_ids"])

        async def main() -> str:
            with trace("agent", tracer=tracer):
                with ThreadPoolExecutor(1) as pool:
                    return await run_in_executor(None, pool, lookup, "x")

        assert asyncio.run(main()) == "X"
        self.check_nested(tracer)

    def test_context_executor(self) -> None:
        """ContextThreadPoolExecutor.submit carries the context into the pool."""
        tracer = Tracer(entry_fields=["parent_ids"])
        with trace("agent", tracer=tracer), ContextThreadPoolExecutor(2) as pool:
            assert pool.submit(lookup, "x").result() == "X"
        self.check_nested(tracer)


class TestSignalled:
    """Without a helper the lost run is counted, logged once per site, or raises in strict mode."""

    def test_plain_thread_is_counted_and_logged_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """Two @traced calls in plain threads count two orphans and log their site once."""
        tracer = Tracer()

        @traced(run_type="tool")
        def plain_site(key: str) -> str:
            return key

        before = orphan_runs()
        with caplog.at_level(logging.WARNING, logger="logstream"), trace("agent", tracer=tracer):
            assert in_plain_thread(lambda: plain_site("x")) == []
            assert in_plain_thread(lambda: plain_site("y")) == []
        assert orphan_runs() == before + 2
        assert len([r for r in caplog.records if "plain_site" in r.getMessage()]) == 1
        assert "plain_site" not in state_of(tracer)["logs"]

    def test_the_log_says_the_fix(self, caplog: pytest.LogCaptureFixture) -> None:
        """The first orphan at a new site logs a warning naming the helpers."""
        tracer = Tracer()

        @traced
        def fresh_site() -> None:
            pass

        with caplog.at_level(logging.WARNING, logger="logstream"), trace("agent", tracer=tracer):
            in_plain_thread(fresh_site)
        (record,) = [r for r in caplog.records if "fresh_site" in r.getMessage()]
        assert "ContextThread" in record.getMessage()
        assert "run_in_executor" in record.getMessage()

    def test_raw_run_in_executor_is_counted(self) -> None:
        """loop.run_in_executor without the helper loses the context: counted."""
        tracer = Tracer()
        before = orphan_runs()

        async def main() -> None:
            with trace("agent", tracer=tracer), ThreadPoolExecutor(1) as pool:
                await asyncio.get_running_loop().run_in_executor(pool, lookup, "x")

        asyncio.run(main())
        assert orphan_runs() == before + 1
        assert "lookup" not in state_of(tracer)["logs"]

    def test_raw_executor_is_counted(self) -> None:
        """ThreadPoolExecutor.submit without the helper loses the context: counted."""
        tracer = Tracer()
        before = orphan_runs()
        with trace("agent", tracer=tracer), ThreadPoolExecutor(1) as pool:
            pool.submit(lookup, "x").result()
        assert orphan_runs() == before + 1

    def test_trace_block_in_thread_is_counted(self, caplog: pytest.LogCaptureFixture) -> None:
        """A ``with trace(...)`` block in a plain thread is counted; the log names its line."""
        tracer = Tracer()
        before = orphan_runs()

        def body() -> None:
            with trace("step"):
                pass

        with caplog.at_level(logging.WARNING, logger="logstream"), trace("agent", tracer=tracer):
            in_plain_thread(body)
        assert orphan_runs() == before + 1
        assert any("test_threads.py:" in r.getMessage() for r in caplog.records)

    def test_strict_mode_raises(self) -> None:
        """In strict mode the orphan raises ContextLostError (a UsageError) in its thread."""
        tracer = Tracer()
        set_strict_context(True)
        with trace("agent", tracer=tracer):
            errors = in_plain_thread(lambda: lookup("x"))
        assert len(errors) == 1
        assert isinstance(errors[0], ContextLostError)
        assert isinstance(errors[0], logstream.UsageError)
        assert "bind_context" in str(errors[0])

    def test_nothing_traced_is_not_an_orphan(self) -> None:
        """With no traced run open anywhere, untraced code is not counted (it runs as it is)."""
        before = orphan_runs()
        set_strict_context(True)
        assert in_plain_thread(lambda: lookup("x")) == []
        assert lookup("y") == "Y"
        assert orphan_runs() == before

    def test_count_drops_when_runs_end(self) -> None:
        """After the traced runs end, a later untraced call is no orphan."""
        tracer = Tracer()
        with trace("agent", tracer=tracer):
            pass
        before = orphan_runs()
        assert in_plain_thread(lambda: lookup("x")) == []
        assert orphan_runs() == before
