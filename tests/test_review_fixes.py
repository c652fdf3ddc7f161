"""Regression tests for bugs found in review of the entry fields, events view and exporters."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from logstream import (
    ConfigError,
    ContextThread,
    EventStream,
    RunLogPatch,
    Tracer,
    orphan_runs,
    redact_secrets,
    stream_log,
    trace,
    traced,
)
from logstream.agui import AguiEncoder
from logstream.otel import OpenTelemetryProcessor


class _BrokenRepr:
    """A value whose repr and str raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


class TestErrorWithFailingRepr:
    def test_run_failing_with_unprintable_error_still_ends(self) -> None:
        """An error whose repr raises still ends the run, marked failed, with its patch sent."""
        tracer = Tracer(entry_fields=["error"])
        root = tracer.start_run("agent")
        record = tracer.end_run(root.id, error=ValueError(_BrokenRepr()))
        assert record is not None and record.status == "error"
        assert record.error is not None and "repr raised RuntimeError" in record.error
        ops: list[Any] = [op for patch in tracer.drain() for op in patch.ops]
        assert {
            "op": "replace",
            "path": "/error",
            "value": "ValueError: <str() raised RuntimeError>",
        } in ops
        assert tracer.open_runs == 0 and json.dumps(ops)


SECRET = "sk-abcdefghijklmnopqrstuvwxyz0123456789"


class TestErrorRedaction:
    def test_recorded_error_is_redacted_for_processors(self) -> None:
        """With redact_secrets, a secret in an exception message is masked in the run record."""
        tracer = Tracer(redact=redact_secrets, entry_fields=["error"])
        root = tracer.start_run("agent")
        tool = tracer.start_run("calc", "tool", parent_id=root.id)
        record = tracer.end_run(tool.id, error=ValueError(f"bad key {SECRET}"))
        assert record is not None and record.status == "error"
        assert record.error is not None and SECRET not in record.error
        assert record.error.startswith("ValueError(")
        assert record.exception is not None  # the exception itself stays in process

    def test_agui_events_carry_no_secret_from_an_error(self) -> None:
        """No AG-UI event (RUN_ERROR, TOOL_CALL_RESULT, deltas) holds a secret from an error."""
        encoder = AguiEncoder(thread_id="t")
        tracer = encoder.bind(
            Tracer(processors=[encoder], redact=redact_secrets, entry_fields=["error"])
        )
        root = tracer.start_run("agent")
        tool = tracer.start_run("calc", "tool", parent_id=root.id, inputs={"input": "x"})
        tracer.end_run(tool.id, error=ValueError(f"bad key {SECRET}"))
        tracer.end_run(root.id, error=RuntimeError(f"boom {SECRET}"))
        events = list(encoder)
        kinds = [event["type"] for event in events]
        assert "RUN_ERROR" in kinds and "TOOL_CALL_RESULT" in kinds
        assert SECRET not in json.dumps(events)


class TestContextThreadSubclass:
    def test_overriding_run_keeps_the_starters_context(self) -> None:
        """A ContextThread subclass that overrides run() nests its traced runs, no orphan."""

        @traced(run_type="tool")
        def tool(x: int) -> int:
            return x

        class Worker(ContextThread):
            def run(self) -> None:
                tool(1)

        class Inner(Worker):
            def run(self) -> None:
                super().run()  # the context is entered once, by the outermost run
                tool(2)

        def agent(question: str) -> str:
            for worker in (Worker(), Inner()):
                worker.start()
                worker.join()
            return question

        before = orphan_runs()
        state = sum(stream_log(agent, "hi"), RunLogPatch()).state
        assert sorted(state["logs"]) == ["tool", "tool:2", "tool:3"]
        assert orphan_runs() == before


class TestEventsOfOddModelOutputs:
    @pytest.mark.parametrize("run_type", ["chat_model", "llm"])
    @pytest.mark.parametrize("batch", [None, 5, "text"])
    def test_model_end_event_survives_a_batch_that_is_not_a_list(
        self, run_type: str, batch: Any
    ) -> None:
        """A model's outputs whose generations hold a non-list batch still get an end event."""
        events = EventStream()
        tracer = Tracer(processors=[events])
        run = tracer.start_run("model", run_type)
        outputs = {"generations": [batch]}
        tracer.end_run(run.id, outputs=outputs)
        ends = [event for event in events.drain() if event["event"] == f"on_{run_type}_end"]
        assert len(ends) == 1 and ends[0]["data"]["output"] == outputs
        assert tracer.processor_stats.total == 0


class TestStrictContextEnvironment:
    @pytest.mark.parametrize(
        ("value", "strict"),
        [
            ("1", True),
            ("true", True),
            ("yes", True),
            ("0", False),
            ("false", False),
            ("False", False),
            ("no", False),
            ("off", False),
            ("", False),
        ],
    )
    def test_variable_turns_strict_mode_on_only_when_it_says_so(
        self, value: str, strict: bool
    ) -> None:
        """LOGSTREAM_STRICT_CONTEXT turns strict mode on for 1/true/yes, not for 0/false/no/off."""
        code = "from logstream import _tracing; print(_tracing._REACH.strict)"
        env = {**os.environ, "LOGSTREAM_STRICT_CONTEXT": value}
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == str(strict)


class TestOtelCustomEventNamedRetry:
    def test_custom_event_named_retry_keeps_its_data_out_by_default(self) -> None:
        """A custom event that happens to be called "retry" carries no data unless captured."""
        exporter = InMemorySpanExporter()
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        tracer = Tracer(processors=[OpenTelemetryProcessor(tracer_provider=provider)])
        with trace("agent", tracer=tracer) as scope:
            scope.event("retry", {"prompt": "private"})
        (span,) = exporter.get_finished_spans()
        (event,) = span.events
        assert event.name == "retry"
        assert "private" not in json.dumps(dict(event.attributes or {}))


class TestAguiLateBind:
    def test_bind_after_the_first_run_is_refused(self) -> None:
        """Binding once the root started is refused: the state events would lack a snapshot."""
        encoder = AguiEncoder()
        tracer = Tracer(processors=[encoder])
        tracer.start_run("agent")
        with pytest.raises(ConfigError, match="before its first run"):
            encoder.bind(tracer)
