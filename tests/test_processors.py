"""Tests for run processors: frozen run records handed to a hook, in order, isolated."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Optional

import pytest
from threading_helpers import join_thread, run_in_thread

from logstream import (
    ContextThreadPoolExecutor,
    LogStreamCallbackHandler,
    RunRecord,
    Tracer,
    redact_secrets,
    stream_log,
    trace,
    traced,
)
from logstream._model import ReadOnlyDict, RunEvent
from logstream._processors import ProcessorDispatch
from logstream.testing import FakeClock, SequentialIds


class Collect:
    """A processor that keeps every call it gets, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def on_start(self, run: RunRecord) -> None:
        self.calls.append(("start", run))

    def on_end(self, run: RunRecord) -> None:
        self.calls.append(("end", run))

    def ended(self) -> dict[str, RunRecord]:
        return {run.name: run for kind, run in self.calls if kind == "end"}


class CollectAll(Collect):
    """A processor with every optional hook too."""

    def on_token(self, run_id: uuid.UUID, token: Any, chunk: Any) -> None:
        self.calls.append(("token", (run_id, token)))

    def on_chunk(self, run_id: uuid.UUID, chunk: Any) -> None:
        self.calls.append(("chunk", (run_id, chunk)))

    def on_event(self, run_id: uuid.UUID, event: RunEvent) -> None:
        self.calls.append(("event", (run_id, event.name)))

    def on_close(self) -> None:
        self.calls.append(("close", None))


def tracer_with(*processors: Any, **options: Any) -> Tracer:
    return Tracer(processors=processors, clock=FakeClock(), id_factory=SequentialIds(), **options)


class TestRecords:
    def test_start_and_end_hand_out_frozen_records(self) -> None:
        """start_run and end_run return RunRecords that later events do not change."""
        tracer = tracer_with(auto_close=False)
        root = tracer.start_run("agent", inputs={"input": "q"})
        llm = tracer.start_run("model", "llm", parent_id=root.id, metadata={"m": 1})
        tracer.add_token(llm.id, "a")
        end = tracer.end_run(llm.id, outputs={"generations": []})
        assert isinstance(llm, RunRecord) and isinstance(end, RunRecord)
        assert llm.token_count == 0 and llm.end_time is None and llm.status == "running"
        assert end is not None and end.token_count == 1 and end.status == "success"
        with pytest.raises(AttributeError):
            end.name = "other"  # type: ignore[misc]
        with pytest.raises(TypeError, match="read-only"):
            end.metadata["m"] = 2  # type: ignore[index]
        assert isinstance(end.metadata, ReadOnlyDict) and end.tags == ()

    def test_record_knows_parent_and_ancestry(self) -> None:
        """A record carries its parent id and every ancestor's id, root first."""
        tracer = tracer_with(auto_close=False)
        root = tracer.start_run("agent")
        sub = tracer.start_run("sub", parent_id=root.id)
        tool = tracer.start_run("tool", "tool", parent_id=sub.id)
        assert tool.parent_id == sub.id and tool.ancestors == (root.id, sub.id)
        assert root.ancestors == () and root.parent_id is None

    def test_failed_run_record_has_error_and_exception(self) -> None:
        """A failed run's record has the error text and the exception."""
        tracer = tracer_with(auto_close=False)
        root = tracer.start_run("agent")
        error = ValueError("bad")
        end = tracer.end_run(root.id, error=error)
        assert end is not None and end.status == "error"
        assert end.error == "ValueError('bad')" and end.exception is error

    def test_scope_run_is_a_record_that_follows_the_run(self) -> None:
        """RunScope.run is a fresh record while open (events show) and the final one after."""
        tracer = tracer_with(auto_close=False)
        with trace("agent", tracer=tracer) as scope:
            scope.event("step", 1)
            assert scope.run is not None and [e.name for e in scope.run.events][-1] == "step"
            scope.outputs = "done"
        assert scope.run is not None and scope.run.status == "success"
        assert scope.run.outputs == {"output": "done"}


class TestDispatch:
    def test_hooks_see_every_run_in_event_order(self) -> None:
        """on_start and on_end arrive in the order the events happened."""
        collect = Collect()
        tracer = tracer_with(collect)
        root = tracer.start_run("agent")
        child = tracer.start_run("tool", "tool", parent_id=root.id)
        tracer.end_run(child.id, outputs={"output": 1})
        tracer.end_run(root.id, outputs={"output": 2})
        assert [(kind, run.name) for kind, run in collect.calls] == [
            ("start", "agent"),
            ("start", "tool"),
            ("end", "tool"),
            ("end", "agent"),
        ]

    def test_optional_hooks_are_called_when_defined(self) -> None:
        """on_token, on_chunk, on_event and on_close reach a processor that has them."""
        collect = CollectAll()
        tracer = tracer_with(collect)
        root = tracer.start_run("agent")
        llm = tracer.start_run("model", "llm", parent_id=root.id)
        tracer.add_token(llm.id, "hi")
        tracer.add_chunk(llm.id, "chunk")
        tracer.add_event(llm.id, "retry", {})
        tracer.end_run(llm.id, outputs={})
        tracer.end_run(root.id, outputs={})
        kinds = [kind for kind, _ in collect.calls]
        assert kinds == ["start", "start", "token", "chunk", "event", "end", "end", "close"]
        assert collect.calls[2][1] == (llm.id, "hi")

    def test_processor_sees_redacted_values(self) -> None:
        """Records carry values after redaction, never the secret."""
        collect = Collect()
        tracer = tracer_with(collect, redact=redact_secrets)
        root = tracer.start_run("agent", inputs={"input": {"api_key": "sk-abcdefghijklmnop1234"}})
        tracer.end_run(root.id, outputs={"output": "ok"})
        start = collect.calls[0][1]
        assert "sk-abcdefghijklmnop1234" not in repr(start.inputs)

    def test_raising_processor_is_logged_and_isolated(self, caplog: Any) -> None:
        """A processor that raises is logged once at warning; others and the stream go on."""

        class Broken:
            def on_start(self, run: RunRecord) -> None:
                raise RuntimeError("boom")

            def on_end(self, run: RunRecord) -> None:
                raise RuntimeError("boom")

        collect = Collect()
        tracer = tracer_with(Broken(), collect)
        with caplog.at_level(logging.DEBUG, logger="logstream"):
            root = tracer.start_run("agent")
            child = tracer.start_run("c", parent_id=root.id)
            tracer.end_run(child.id, outputs={})
            tracer.end_run(root.id, outputs={})
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 2  # once per hook
        assert "boom" in (warnings[0].exc_text or "")
        assert len(collect.calls) == 4
        assert tracer.processor_stats.total == 4
        patches = list(tracer)
        assert len(patches) == 3  # root state, child entry, child end (the root's end: none)

    def test_hook_runs_with_the_lock_released_and_may_trace(self) -> None:
        """A hook may report events to its tracer; they are processed after it returns."""
        seen: list[str] = []

        class Nested:
            def on_start(self, run: RunRecord) -> None:
                seen.append(f"start {run.name}")
                if run.name == "agent":
                    child = tracer.start_run("from-hook", parent_id=run.id)
                    tracer.end_run(child.id, outputs={})
                    seen.append("hook returned")

            def on_end(self, run: RunRecord) -> None:
                seen.append(f"end {run.name}")

        tracer = tracer_with(Nested(), auto_close=False)
        tracer.start_run("agent")
        assert seen == ["start agent", "hook returned", "start from-hook", "end from-hook"]

    def test_hooks_from_many_threads_never_overlap_and_lose_nothing(self) -> None:
        """Events from 8 threads reach the processor one call at a time, every one of them."""
        active = 0
        overlaps = 0
        count = 0
        guard = threading.Lock()

        class Counting:
            def _enter(self) -> None:
                nonlocal active, overlaps, count
                with guard:
                    active += 1
                    overlaps += active > 1
                    count += 1
                with guard:
                    active -= 1

            def on_start(self, run: RunRecord) -> None:
                self._enter()

            def on_end(self, run: RunRecord) -> None:
                self._enter()

        tracer = Tracer(processors=[Counting()], auto_close=False)
        root = tracer.start_run("agent")

        def work() -> None:
            for _ in range(200):
                run = tracer.start_run("step", parent_id=root.id)
                tracer.end_run(run.id, outputs={})

        threads = [run_in_thread(work) for _ in range(8)]
        for thread, box in threads:
            join_thread(thread, box)
        assert overlaps == 0 and count == 1 + 8 * 200 * 2

    def test_dispatch_without_hooks_of_a_kind_wants_nothing(self) -> None:
        """A processor without on_token makes no token call (the hot path checks once)."""
        dispatch = ProcessorDispatch((Collect(),))
        assert not dispatch.wants_tokens and not dispatch.wants_chunks
        assert ProcessorDispatch((CollectAll(),)).wants_tokens


def rebuild(records: dict[uuid.UUID, RunRecord]) -> dict[str, Any]:
    """A nested tree {name: (status, error, tokens, children)} from ended records."""
    children: dict[Optional[uuid.UUID], list[RunRecord]] = {}
    for run in sorted(records.values(), key=lambda r: r.dotted_order):
        children.setdefault(run.parent_id, []).append(run)

    def node(run: RunRecord) -> Any:
        return (
            run.status,
            run.error.split("(")[0] if run.error else None,
            run.token_count,
            {child.name: node(child) for child in children.get(run.id, [])},
        )

    (root,) = children[None]
    return {root.name: node(root)}


class TestNestedTreeFromProcessor:
    def test_native_stream_log_run_tree_with_threads_and_errors(self) -> None:
        """stream_log's processor rebuilds a sub-agent, a thread-pool tool and its error."""

        @traced(run_type="llm")
        def model(prompt: str) -> Any:
            yield from ["a", "b", "c"]

        @traced(run_type="tool")
        def divide(expression: str) -> float:
            left, right = expression.split("/")
            return float(left) / float(right)

        @traced
        def sub_agent(question: str) -> str:
            return "".join(model(question))

        def agent(question: str) -> str:
            plan = sub_agent(question)
            with ContextThreadPoolExecutor(max_workers=2) as pool:
                future = pool.submit(divide, "1/0")
                try:
                    future.result()
                except ZeroDivisionError:
                    pass
            return plan

        class Ended:
            def __init__(self) -> None:
                self.records: dict[uuid.UUID, RunRecord] = {}

            def on_start(self, run: RunRecord) -> None:
                pass

            def on_end(self, run: RunRecord) -> None:
                self.records[run.id] = run

        ended = Ended()
        list(stream_log(agent, "q", processors=[ended]))
        assert rebuild(ended.records) == {
            "agent": (
                "success",
                None,
                0,
                {
                    "sub_agent": ("success", None, 0, {"model": ("success", None, 3, {})}),
                    "divide": ("error", "ZeroDivisionError", 0, {}),
                },
            )
        }

    def test_handler_callbacks_run_tree_with_failing_tool(self) -> None:
        """The callback handler's processor rebuilds parents, tokens and a tool's error."""
        collect = Collect()
        handler = LogStreamCallbackHandler(processors=[collect])
        root, llm, tool = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, {"q": 1}, run_id=root, name="agent")
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        handler.on_llm_new_token("x", run_id=llm)
        handler.on_llm_end({"generations": []}, run_id=llm)
        handler.on_tool_start({}, "1/0", run_id=tool, parent_run_id=root, name="calc")
        handler.on_tool_error(ZeroDivisionError("division by zero"), run_id=tool)
        handler.on_chain_end({"a": 1}, run_id=root)
        records = {run.id: run for kind, run in collect.calls if kind == "end"}
        assert rebuild(records) == {
            "agent": (
                "success",
                None,
                0,
                {
                    "model": ("success", None, 1, {}),
                    "calc": ("error", "ZeroDivisionError", 0, {}),
                },
            )
        }


class TestReviewRegressions:
    """Cases an adversarial review found; each failed before its fix."""

    def test_close_during_an_event_drops_its_hook_and_on_close_comes_last(self) -> None:
        """A close that lands while an event holds the lock: no hook for it, on_close last."""
        collect = CollectAll()
        holder: dict[str, Tracer] = {}
        clock = FakeClock()
        calls = 0

        def closing_clock() -> Any:
            nonlocal calls
            calls += 1
            if calls == 2:  # the child's start, under the tracer's lock
                holder["tracer"]._channel.close()  # the channel alone, as a racing close() does
            return clock()

        tracer = Tracer(processors=[collect], clock=closing_clock, auto_close=False)
        holder["tracer"] = tracer
        root = tracer.start_run("root")
        assert root is not None
        assert tracer.start_run("child", parent_id=root.id) is None  # its patch was dropped
        tracer.close()  # already closed: returns False, but the hooks still end with on_close
        tracer._after_close()
        assert [kind for kind, _ in collect.calls] == ["start", "close"]

    def test_a_consumer_leaving_stream_log_gets_on_close_after_every_hook(self) -> None:
        """Breaking out of stream_log closes the tracer; no hook comes after on_close."""
        collect = CollectAll()

        def target(value: Any) -> Any:
            for i in range(50):
                with trace(f"step{i}"):
                    pass
                yield i

        for _ in stream_log(target, None, processors=[collect]):
            break
        kinds = [kind for kind, _ in collect.calls]
        assert kinds.count("close") == 1 and kinds[-1] == "close"

    def test_base_exception_in_a_hook_lets_the_others_run_then_propagates(self) -> None:
        """A KeyboardInterrupt from one hook: the other processor still sees every hook."""

        class Interrupting:
            def on_start(self, run: RunRecord) -> None:
                raise KeyboardInterrupt

            def on_end(self, run: RunRecord) -> None:
                pass

        collect = Collect()
        tracer = tracer_with(Interrupting(), collect, auto_close=False)
        with pytest.raises(KeyboardInterrupt):
            tracer.start_run("root")
        assert [kind for kind, _ in collect.calls] == ["start"]
        root_id = tracer.root_id
        assert root_id is not None
        tracer.end_run(root_id, outputs={})  # the dispatch is not stuck
        assert [kind for kind, _ in collect.calls] == ["start", "end"]
        assert tracer.processor_stats.total == 1

    def test_a_processor_whose_repr_raises_is_still_isolated(self) -> None:
        """The failure bookkeeping never calls the processor's own __repr__."""

        class Broken:
            def __repr__(self) -> str:
                raise RuntimeError("no repr")

            def on_start(self, run: RunRecord) -> None:
                raise ValueError("hook")

            def on_end(self, run: RunRecord) -> None:
                pass

        collect = Collect()
        tracer = tracer_with(Broken(), collect, auto_close=False)
        assert tracer.start_run("root") is not None
        assert len(collect.calls) == 1 and tracer.processor_stats.total == 1

    def test_record_values_do_not_follow_later_changes(self) -> None:
        """Metadata, outputs and event details are copied: later host changes do not show."""
        collect = CollectAll()
        tracer = tracer_with(collect, auto_close=False)
        metadata = {"user": {"plan": "free"}}
        outputs = {"output": {"items": [1]}}
        details = {"attempt": 1}
        root = tracer.start_run("root", metadata=metadata)
        assert root is not None
        tracer.add_event(root.id, "retry", details)
        end = tracer.end_run(root.id, outputs=outputs)
        metadata["user"]["plan"] = "changed"
        outputs["output"]["items"].append(2)
        details["attempt"] = 99
        assert root.metadata == {"user": {"plan": "free"}}
        assert end is not None and end.outputs == {"output": {"items": [1]}}
        (event,) = [e for e in end.events if e.name == "retry"]
        assert event.kwargs == {"attempt": 1}
        with pytest.raises(TypeError, match="read-only"):
            event.kwargs["attempt"] = 2  # type: ignore[index]

    def test_no_chunk_hook_for_a_run_that_is_not_open(self) -> None:
        """add_chunk for an unknown id streams nothing and tells no processor."""
        collect = CollectAll()
        tracer = tracer_with(collect, auto_close=False)
        tracer.start_run("root")
        tracer.add_chunk(uuid.uuid4(), "x")
        assert [kind for kind, _ in collect.calls] == ["start"]

    def test_scope_run_keeps_the_latest_record_when_the_stream_closed_first(self) -> None:
        """A scope whose stream closed before it ended keeps its record as it was last."""
        tracer = tracer_with(auto_close=False)
        with trace("agent", tracer=tracer):
            with trace("model", "llm") as model:
                model.token("a")
                model.token("b")
                tracer.close()
        assert model.run is not None and model.run.token_count == 2
