"""logstream.otel: runs become OpenTelemetry spans (tree, times, errors, GenAI attributes)."""

from __future__ import annotations

import asyncio
import gzip
import http.server
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from readme_blocks import claimed_output, run_readme_block

import logstream
from logstream import (
    ConfigError,
    RunRecord,
    Tracer,
    bind_context,
    redact_secrets,
    stream_log,
    trace,
    traced,
)
from logstream.otel import CAPTURE_CONTENT_ENV, OpenTelemetryProcessor
from logstream.testing import FakeClock, SequentialIds

ROOT = Path(__file__).resolve().parent.parent
SECRET = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"


class Spans:
    """A tracer provider with an in-memory exporter, and lookups over what it exported."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider()
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def processor(self, **options: Any) -> OpenTelemetryProcessor:
        return OpenTelemetryProcessor(tracer_provider=self.provider, **options)

    @property
    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def one(self, name: str) -> ReadableSpan:
        found = [span for span in self.finished if span.name == name]
        assert len(found) == 1, [span.name for span in self.finished]
        return found[0]

    def parent_name(self, span: ReadableSpan) -> Optional[str]:
        if span.parent is None:
            return None
        by_id = {s.context.span_id: s.name for s in self.finished}
        return by_id.get(span.parent.span_id, "<not exported>")

    def edges(self) -> set[tuple[Optional[str], str]]:
        return {(self.parent_name(span), span.name) for span in self.finished}


@pytest.fixture
def spans() -> Iterator[Spans]:
    made = Spans()
    yield made
    made.provider.shutdown()


def ns_of(when: datetime) -> int:
    """A time in ns since the epoch, computed independently of the processor."""
    return int(when.timestamp()) * 1_000_000_000 + when.microsecond * 1_000


def ns(record: RunRecord, field: str) -> int:
    """A record's start or end time in ns."""
    return ns_of(getattr(record, field))


class TestTree:
    def test_spans_follow_the_run_tree_with_the_runs_times(self, spans: Spans) -> None:
        """Each run is one span under its parent run's span, from its start to its end time."""
        tracer = Tracer(
            processors=[spans.processor()], clock=FakeClock(), id_factory=SequentialIds()
        )
        root = tracer.start_run("agent")
        step = tracer.start_run("plan", parent_id=root.id)
        tool = tracer.start_run("search", "tool", parent_id=step.id)
        tool_end = tracer.end_run(tool.id, outputs={"output": 1})
        step_end = tracer.end_run(step.id, outputs={"output": 2})
        root_end = tracer.end_run(root.id, outputs={"output": 3})
        assert spans.edges() == {
            (None, "agent"),
            ("agent", "plan"),
            ("plan", "execute_tool search"),
        }
        for record, end, name in [
            (root, root_end, "agent"),
            (step, step_end, "plan"),
            (tool, tool_end, "execute_tool search"),
        ]:
            assert end is not None
            span = spans.one(name)
            assert (span.start_time, span.end_time) == (
                ns(record, "start_time"),
                ns(end, "end_time"),
            )
            assert span.attributes["logstream.run.id"] == str(record.id)
        trace_ids = {span.context.trace_id for span in spans.finished}
        assert len(trace_ids) == 1

    def test_root_nests_in_the_current_opentelemetry_span(self, spans: Spans) -> None:
        """A root run started inside a host span is that span's child, in its trace."""
        tracer = Tracer(processors=[spans.processor()])
        with spans.provider.get_tracer("host").start_as_current_span("request") as host:
            root = tracer.start_run("agent")
        tracer.end_run(root.id)
        agent = spans.one("agent")
        assert agent.parent is not None
        assert agent.parent.span_id == host.get_span_context().span_id
        assert agent.context.trace_id == host.get_span_context().trace_id

    def test_root_without_a_current_span_is_a_trace_root(self, spans: Spans) -> None:
        """With no span current, the root run's span has no parent."""
        tracer = Tracer(processors=[spans.processor()])
        root = tracer.start_run("agent")
        tracer.end_run(root.id)
        assert spans.one("agent").parent is None

    def test_parents_across_threads_and_asyncio_tasks(self, spans: Spans) -> None:
        """Native runs in bound threads and in asyncio tasks nest under the run that made them."""

        @traced(run_type="tool")
        def fetch(n: int) -> int:
            return n

        @traced
        async def branch(n: int) -> int:
            await asyncio.sleep(0)
            return fetch(n)

        def agent(_: Any) -> int:
            with trace("workers"):
                threads = [
                    threading.Thread(target=bind_context(fetch), args=(i,)) for i in range(3)
                ]
                for thread in threads:
                    thread.start()
                for thread in threads:
                    thread.join()

            async def main() -> list[int]:
                return list(
                    await asyncio.gather(*(asyncio.create_task(branch(i)) for i in range(3)))
                )

            return sum(asyncio.run(main()))

        for _ in stream_log(agent, None, processors=[spans.processor()]):
            pass
        by_parent: dict[Optional[str], list[str]] = {}
        for parent, child in sorted(spans.edges(), key=str):
            by_parent.setdefault(parent, []).append(child)
        spans_by_name: dict[str, list[ReadableSpan]] = {}
        for span in spans.finished:
            spans_by_name.setdefault(span.name, []).append(span)
        tools = spans_by_name["execute_tool fetch"]
        assert len(tools) == 6
        parents = sorted(spans.parent_name(span) or "" for span in tools)
        assert parents == ["branch"] * 3 + ["workers"] * 3
        for span in spans_by_name["branch"]:  # each branch task holds exactly one tool
            kids = [
                t
                for t in tools
                if t.parent is not None and t.parent.span_id == span.context.span_id
            ]
            assert len(kids) == 1
        assert spans.parent_name(spans.one("workers")) == "agent"
        assert len({span.context.trace_id for span in spans.finished}) == 1


class TestErrors:
    def test_failed_run_has_error_status_type_and_exception_event(self, spans: Spans) -> None:
        """A failed run's span is ERROR with error.type and an exception event; others UNSET."""
        tracer = Tracer(processors=[spans.processor()])
        root = tracer.start_run("agent")
        tool = tracer.start_run("divide", "tool", parent_id=root.id)
        try:
            1 / 0  # noqa: B018
        except ZeroDivisionError as error:
            tracer.end_run(tool.id, error=error, event="tool error")
        tracer.end_run(root.id)
        failed = spans.one("execute_tool divide")
        assert failed.status.status_code is StatusCode.ERROR
        assert "division by zero" in (failed.status.description or "")
        assert failed.attributes["error.type"] == "ZeroDivisionError"
        (event,) = failed.events
        assert event.name == "exception"
        assert event.attributes["exception.type"] == "ZeroDivisionError"
        assert "division by zero" in event.attributes["exception.message"]
        assert "1 / 0" in event.attributes["exception.stacktrace"]
        assert event.timestamp == failed.end_time
        assert spans.one("agent").status.status_code is StatusCode.UNSET

    def test_error_type_of_a_non_builtin_exception_is_qualified(self, spans: Spans) -> None:
        """error.type names the exception class with its module."""

        class QuotaError(Exception):
            pass

        tracer = Tracer(processors=[spans.processor()])
        root = tracer.start_run("agent")
        tracer.end_run(root.id, error=QuotaError("over"))
        assert (
            spans.one("agent").attributes["error.type"] == f"{__name__}.{QuotaError.__qualname__}"
        )

    @pytest.mark.parametrize("where", ["processor", "tracer"])
    def test_redact_masks_the_error_message(self, spans: Spans, where: str) -> None:
        """With redact= on the processor or the tracer, no error's secret reaches the span."""
        if where == "processor":
            tracer = Tracer(processors=[spans.processor(redact=redact_secrets)])
        else:
            tracer = Tracer(processors=[spans.processor()], redact=redact_secrets)
        root = tracer.start_run("agent")
        tracer.end_run(root.id, error=ValueError(f"bad key {SECRET}"))
        span = spans.one("agent")
        assert SECRET not in repr(span.status.description)
        assert SECRET not in json.dumps(dict(span.events[0].attributes or {}))
        assert "[REDACTED]" in (span.status.description or "")

    def test_unreadable_outputs_still_end_the_span(self, spans: Spans) -> None:
        """Outputs whose attributes raise leave the span without usage, but ended."""

        class Hostile:
            def __getattr__(self, name: str) -> Any:
                raise RuntimeError(name)

        tracer = Tracer(processors=[spans.processor()])
        run = tracer.start_run("model", "llm")
        tracer.end_run(run.id, outputs={"generations": [[Hostile()]]})
        span = spans.one("text_completion")
        assert span.end_time is not None
        assert "gen_ai.usage.input_tokens" not in (span.attributes or {})
        assert tracer.processor_stats.total == 0


class TestEvents:
    def test_retry_and_custom_events_become_span_events(self, spans: Spans) -> None:
        """A retry is a span event with its details; a custom event has no data by default."""
        tracer = Tracer(processors=[spans.processor()], clock=FakeClock())
        root = tracer.start_run("agent")
        tracer.add_event(root.id, "retry", {"attempt": 2})
        tracer.add_event(root.id, "progress", {"note": "private"})
        end = tracer.end_run(root.id)
        assert end is not None
        retry, progress = spans.one("agent").events
        assert (retry.name, dict(retry.attributes or {})) == (
            "retry",
            {"logstream.event.attempt": 2},
        )
        assert retry.timestamp == ns_of(end.events[1].time)
        assert (progress.name, dict(progress.attributes or {})) == ("progress", {})

    def test_custom_event_data_when_content_is_captured(self, spans: Spans) -> None:
        """With capture_content=True a custom event carries its data."""
        tracer = Tracer(processors=[spans.processor(capture_content=True)])
        root = tracer.start_run("agent")
        tracer.add_event(root.id, "progress", {"note": "half"})
        tracer.end_run(root.id)
        (event,) = spans.one("agent").events
        assert dict(event.attributes or {}) == {"logstream.event.note": "half"}


class TestAttributes:
    def test_tags_and_metadata_are_flattened_legal_attributes(self, spans: Spans) -> None:
        """Tags are a string array; metadata is flattened, non-OTel values become JSON text."""
        tracer = Tracer(processors=[spans.processor()])
        metadata = {
            "user": "u1",
            "nested": {"depth": 2, "flags": [True, False]},
            "mixed": [1, "a"],
            "none": None,
            "huge": 2**70,
            "at": uuid.UUID(int=5),
        }
        root = tracer.start_run("agent", tags=["prod", "v2"], metadata=metadata)
        tracer.end_run(root.id)
        attributes = spans.one("agent").attributes or {}
        assert attributes["logstream.tags"] == ("prod", "v2")
        assert attributes["logstream.metadata.user"] == "u1"
        assert attributes["logstream.metadata.nested.depth"] == 2
        assert attributes["logstream.metadata.nested.flags"] == (True, False)
        assert json.loads(attributes["logstream.metadata.mixed"]) == [1, "a"]
        assert "logstream.metadata.none" not in attributes
        assert attributes["logstream.metadata.huge"] == str(2**70)
        assert attributes["logstream.metadata.at"] == json.dumps(str(uuid.UUID(int=5)))

    @settings(max_examples=60, deadline=None)
    @given(
        st.dictionaries(
            st.text(min_size=1, max_size=5),
            st.recursive(
                st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
                lambda inner: (
                    st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=3), inner, max_size=3)
                ),
                max_leaves=8,
            ),
            max_size=4,
        )
    )
    def test_any_metadata_gives_only_legal_attribute_values(self, metadata: dict[str, Any]) -> None:
        """Whatever the metadata, each attribute is a str, bool, int64, float or a uniform array."""
        made = Spans()
        tracer = Tracer(processors=[made.processor()])
        root = tracer.start_run("agent", metadata=metadata)
        tracer.end_run(root.id)
        (span,) = made.finished
        for value in (span.attributes or {}).values():
            items = value if isinstance(value, tuple) else (value,)
            assert len({type(item) for item in items}) <= 1
            for item in items:
                assert type(item) in (str, bool, int, float)
                if type(item) is int:
                    assert -(2**63) <= item < 2**63
        assert tracer.processor_stats.total == 0

    def test_chat_model_run_carries_genai_request_and_usage(self, spans: Spans) -> None:
        """A chat run is 'chat {model}' (CLIENT) with provider, request params, usage and finish."""
        tracer = Tracer(processors=[spans.processor()])
        metadata = {
            "ls_model_name": "gpt-4o",
            "ls_provider": "openai",
            "ls_temperature": 0.2,
            "ls_max_tokens": 64,
            "ls_stop": ["\n"],
        }
        run = tracer.start_run(
            "ChatOpenAI", "chat_model", metadata=metadata, inputs={"messages": [[]]}
        )
        message = {
            "type": "ai",
            "content": "hi",
            "id": "chatcmpl-9",
            "usage_metadata": {
                "input_tokens": 11,
                "output_tokens": 7,
                "input_token_details": {"cache_read": 4},
            },
            "response_metadata": {"model_name": "gpt-4o-2024-08-06", "finish_reason": "stop"},
        }
        tracer.end_run(run.id, outputs={"generations": [[{"text": "hi", "message": message}]]})
        span = spans.one("chat gpt-4o")
        assert span.kind is SpanKind.CLIENT
        attributes = dict(span.attributes or {})
        expected = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o",
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 64,
            "gen_ai.request.stop_sequences": ("\n",),
            "gen_ai.response.model": "gpt-4o-2024-08-06",
            "gen_ai.response.id": "chatcmpl-9",
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": 11,
            "gen_ai.usage.output_tokens": 7,
            "gen_ai.usage.cache_read.input_tokens": 4,
        }
        assert {key: attributes.get(key) for key in expected} == expected
        assert not any(
            key in attributes for key in ("gen_ai.input.messages", "gen_ai.output.messages")
        )

    def test_llm_usage_from_llm_output_token_usage(self, spans: Spans) -> None:
        """An llm run without usage_metadata takes usage and model from llm_output."""
        tracer = Tracer(processors=[spans.processor()])
        run = tracer.start_run(
            "OpenAI", "llm", inputs={"prompts": ["hi"]}, metadata={"ls_provider": "azure"}
        )
        outputs = {
            "generations": [[{"text": "yo", "generation_info": {"finish_reason": "length"}}]],
            "llm_output": {
                "token_usage": {"prompt_tokens": 3, "completion_tokens": 5},
                "model_name": "davinci",
            },
        }
        tracer.end_run(run.id, outputs=outputs)
        attributes = spans.one("text_completion").attributes or {}
        assert attributes["gen_ai.operation.name"] == "text_completion"
        assert attributes["gen_ai.provider.name"] == "azure.ai.openai"
        assert (
            attributes["gen_ai.usage.input_tokens"],
            attributes["gen_ai.usage.output_tokens"],
        ) == (3, 5)
        assert attributes["gen_ai.response.model"] == "davinci"
        assert attributes["gen_ai.response.finish_reasons"] == ("length",)

    def test_request_model_from_invocation_params_in_inputs(self, spans: Spans) -> None:
        """Without ls_model_name, the request model is read from the inputs' invocation params."""
        tracer = Tracer(processors=[spans.processor()])
        run = tracer.start_run(
            "m", "chat_model", inputs={"invocation_params": {"model": "claude-x"}}
        )
        tracer.end_run(run.id)
        assert spans.one("chat claude-x").attributes["gen_ai.request.model"] == "claude-x"

    def test_tool_agent_retriever_and_chain_spans(self, spans: Spans) -> None:
        """Tools, agents and retrievers follow the conventions; a chain is a plain span."""
        tracer = Tracer(processors=[spans.processor()])
        root = tracer.start_run("planner", "agent")
        tool = tracer.start_run(
            "search", "tool", parent_id=root.id, metadata={"tool_call_id": "call_7"}
        )
        tracer.end_run(tool.id, outputs={"output": "x"})
        docs = tracer.start_run("vectors", "retriever", parent_id=root.id, inputs={"query": "q"})
        tracer.end_run(docs.id, outputs={"documents": []})
        chain = tracer.start_run("format", parent_id=root.id)
        tracer.end_run(chain.id)
        tracer.end_run(root.id)
        agent = spans.one("invoke_agent planner")
        assert (
            agent.attributes["gen_ai.operation.name"],
            agent.attributes["gen_ai.agent.name"],
        ) == (
            "invoke_agent",
            "planner",
        )
        search = spans.one("execute_tool search")
        assert search.kind is SpanKind.INTERNAL
        assert search.attributes["gen_ai.tool.name"] == "search"
        assert search.attributes["gen_ai.tool.call.id"] == "call_7"
        retrieval = spans.one("retrieval")
        assert retrieval.attributes["gen_ai.operation.name"] == "retrieval"
        assert "gen_ai.retrieval.query.text" not in (retrieval.attributes or {})
        plain = spans.one("format")
        assert not any(key.startswith("gen_ai.") for key in plain.attributes or {})
        assert spans.parent_name(plain) == "invoke_agent planner"


class TestContent:
    def run_all(self, tracer: Tracer) -> None:
        model = tracer.start_run(
            "m",
            "chat_model",
            metadata={"ls_model_name": "x"},
            inputs={"messages": [[{"type": "human", "content": "hi"}]]},
        )
        tracer.end_run(
            model.id,
            outputs={"generations": [[{"text": "yo", "message": {"type": "ai", "content": "yo"}}]]},
        )
        tool = tracer.start_run("calc", "tool", inputs={"input": {"a": 1}})
        tracer.end_run(tool.id, outputs={"output": 2})
        docs = tracer.start_run("r", "retriever", inputs={"query": "what"})
        tracer.end_run(
            docs.id,
            outputs={
                "documents": [{"id": "d1", "page_content": "text", "metadata": {"score": 0.5}}]
            },
        )

    def test_content_off_by_default(self, spans: Spans, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without opting in, no message, argument, result, query or document is recorded."""
        monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
        self.run_all(Tracer(processors=[spans.processor()], auto_close=False))
        content_keys = {
            "gen_ai.input.messages",
            "gen_ai.output.messages",
            "gen_ai.tool.call.arguments",
            "gen_ai.tool.call.result",
            "gen_ai.retrieval.query.text",
            "gen_ai.retrieval.documents",
        }
        for span in spans.finished:
            assert content_keys.isdisjoint(span.attributes or {}), span.name

    @pytest.mark.parametrize(("env", "option"), [(None, True), ("true", None), ("SPAN_ONLY", None)])
    def test_content_when_opted_in(
        self,
        spans: Spans,
        monkeypatch: pytest.MonkeyPatch,
        env: Optional[str],
        option: Optional[bool],
    ) -> None:
        """capture_content=True or the conventions' variable records content in their shapes."""
        if env is None:
            monkeypatch.delenv(CAPTURE_CONTENT_ENV, raising=False)
        else:
            monkeypatch.setenv(CAPTURE_CONTENT_ENV, env)
        self.run_all(Tracer(processors=[spans.processor(capture_content=option)], auto_close=False))
        chat = spans.one("chat x").attributes or {}
        assert json.loads(chat["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": "hi"}]}
        ]
        assert json.loads(chat["gen_ai.output.messages"]) == [
            {"role": "assistant", "parts": [{"type": "text", "content": "yo"}]}
        ]
        tool = spans.one("execute_tool calc").attributes or {}
        assert (
            json.loads(tool["gen_ai.tool.call.arguments"]),
            tool["gen_ai.tool.call.result"],
        ) == ({"a": 1}, "2")
        retrieval = spans.one("retrieval").attributes or {}
        assert retrieval["gen_ai.retrieval.query.text"] == "what"
        assert json.loads(retrieval["gen_ai.retrieval.documents"]) == [
            {"id": "d1", "score": 0.5, "content": "text"}
        ]

    def test_false_overrides_the_variable(
        self, spans: Spans, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """capture_content=False wins over the environment variable."""
        monkeypatch.setenv(CAPTURE_CONTENT_ENV, "true")
        self.run_all(Tracer(processors=[spans.processor(capture_content=False)], auto_close=False))
        assert "gen_ai.input.messages" not in (spans.one("chat x").attributes or {})

    def test_content_is_what_the_tracer_redacted(self, spans: Spans) -> None:
        """With the tracer's redact=, no captured content carries the secret."""
        tracer = Tracer(
            processors=[spans.processor(capture_content=True)],
            redact=redact_secrets,
            auto_close=False,
        )
        model = tracer.start_run(
            "m",
            "chat_model",
            metadata={"ls_model_name": "x"},
            inputs={"messages": [[{"type": "human", "content": f"key {SECRET}"}]]},
        )
        tracer.end_run(model.id, outputs={"generations": [[{"text": SECRET}]]})
        tool = tracer.start_run("login", "tool", inputs={"input": {"api_key": "hunter2"}})
        tracer.end_run(tool.id, outputs={"output": f"token {SECRET}"})
        text = json.dumps([dict(span.attributes or {}) for span in spans.finished])
        assert SECRET not in text and "hunter2" not in text
        assert "[REDACTED]" in text

    def test_processor_defines_no_token_hook(self) -> None:
        """The processor has no on_token, so streamed tokens never reach it (no per-token cost)."""
        processor = OpenTelemetryProcessor(tracer_provider=TracerProvider(), capture_content=True)
        assert not hasattr(processor, "on_token") and not hasattr(processor, "on_chunk")


class TestUnfinished:
    def test_on_close_ends_open_runs_with_a_clear_status(self, spans: Spans) -> None:
        """Runs open at the stream's close end as ERROR 'run did not end: ...', and unfinished."""
        tracer = Tracer(processors=[spans.processor()])
        root = tracer.start_run("agent")
        tracer.start_run("stuck", "tool", parent_id=root.id)
        tracer.close()
        assert {span.name for span in spans.finished} == {"agent", "execute_tool stuck"}
        for span in spans.finished:
            assert span.status.status_code is StatusCode.ERROR
            assert (span.status.description or "").startswith("run did not end: the stream closed")
            assert span.attributes["logstream.run.unfinished"] is True
        stuck, agent = spans.finished  # children end before their parents
        assert stuck.name == "execute_tool stuck" and agent.name == "agent"

    def test_end_on_close_false_leaves_them_to_flush(self, spans: Spans) -> None:
        """With end_on_close=False the stream's close ends nothing; flush() ends and counts them."""
        processor = spans.processor(end_on_close=False)
        tracer = Tracer(processors=[processor])
        tracer.start_run("agent")
        tracer.close()
        assert spans.finished == []
        assert processor.flush("test") == 1
        assert spans.one("agent").status.description == "run did not end: test"
        assert processor.flush() == 0

    def test_runs_open_at_exit_are_exported(self) -> None:
        """A process that exits with a run open still exports its span, ended as unfinished."""
        script = """
import json, sys
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult, SimpleSpanProcessor
from logstream import Tracer
from logstream.otel import OpenTelemetryProcessor

class Print(SpanExporter):
    def export(self, spans):
        for span in spans:
            print(json.dumps([span.name, span.status.description]), flush=True)
        return SpanExportResult.SUCCESS

provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(Print()))
trace.set_tracer_provider(provider)
tracer = Tracer(processors=[OpenTelemetryProcessor()])  # the global provider
tracer.start_run("agent")
print("exiting", flush=True)
"""
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        lines = done.stdout.splitlines()
        assert lines[0] == "exiting"
        assert json.loads(lines[1]) == [
            "agent",
            "run did not end: the process exited while the run was open",
        ]

    def test_shutdown_ends_open_runs(self, spans: Spans) -> None:
        """shutdown() ends what is open, as flush does."""
        processor = spans.processor(end_on_close=False)
        tracer = Tracer(processors=[processor])
        tracer.start_run("agent")
        processor.shutdown()
        assert "shut down" in (spans.one("agent").status.description or "")


class TestConfig:
    @pytest.mark.parametrize(
        "options",
        [{"capture_content": "yes"}, {"redact": "redact_secrets"}, {"end_on_close": 1}],
    )
    def test_bad_options_raise_config_error(self, options: dict[str, Any]) -> None:
        """A bad option is a ConfigError naming it."""
        with pytest.raises(ConfigError, match=next(iter(options))):
            OpenTelemetryProcessor(**options)

    def test_import_logstream_does_not_import_opentelemetry(self) -> None:
        """``import logstream`` loads no opentelemetry module; logstream.otel does."""
        code = (
            "import sys, logstream; print(any(m.startswith('opentelemetry') for m in sys.modules))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.strip() == "False"
        code = code.replace("import sys, logstream;", "import sys, logstream.otel;")
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.strip() == "True"


class TestReadme:
    def test_readme_snippet_prints_what_its_comment_says(self) -> None:
        """The README's OpenTelemetry example runs and prints the spans its comment shows."""
        code, out = run_readme_block("OpenTelemetry")
        assert out.splitlines() == claimed_output(code)

    def test_readme_public_api_row_lists_the_module_names(self) -> None:
        """The README's Public API row for logstream.otel names exactly its ``__all__``."""
        import re

        import logstream.otel

        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        section = readme.split("## Public API", 1)[1].split("\n## ", 1)[0]
        row = next(line for line in section.splitlines() if line.startswith("| `logstream.otel`"))
        first = row.split("|")[1]
        assert set(re.findall(r"`([A-Za-z_]+)`", first)) == set(logstream.otel.__all__)


class _Receiver(http.server.BaseHTTPRequestHandler):
    """An OTLP/HTTP collector stand-in: keeps each POST body, answers 200."""

    bodies: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        type(self).bodies.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


class TestOtlpHttp:
    def test_spans_exported_over_otlp_http_decode_with_parents_status_and_attributes(self) -> None:
        """Spans sent by the OTLP/HTTP exporter to a local receiver decode with the right tree."""
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        _Receiver.bodies = []
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            provider = TracerProvider()
            endpoint = f"http://127.0.0.1:{server.server_address[1]}/v1/traces"
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
            processor = OpenTelemetryProcessor(tracer_provider=provider)
            tracer = Tracer(processors=[processor], clock=FakeClock(step=timedelta(milliseconds=5)))
            root = tracer.start_run("agent", tags=["prod"])
            model = tracer.start_run(
                "model", "chat_model", parent_id=root.id, metadata={"ls_model_name": "gpt-4o"}
            )
            usage = {"token_usage": {"prompt_tokens": 12, "completion_tokens": 3}}
            tracer.end_run(
                model.id, outputs={"generations": [[{"text": "hi"}]], "llm_output": usage}
            )
            tool = tracer.start_run("search", "tool", parent_id=root.id)
            tracer.end_run(tool.id, error=TimeoutError("slow"), event="tool error")
            tracer.end_run(root.id)
            provider.shutdown()
        finally:
            server.shutdown()
            server.server_close()
        assert {path for path, _ in _Receiver.bodies} == {"/v1/traces"}
        decoded = []
        for _, body in _Receiver.bodies:
            request = ExportTraceServiceRequest()
            request.ParseFromString(body)
            for resource_spans in request.resource_spans:
                for scope_spans in resource_spans.scope_spans:
                    assert scope_spans.scope.name == "logstream"
                    assert scope_spans.scope.version == logstream.__version__
                    decoded.extend(scope_spans.spans)
        by_name = {span.name: span for span in decoded}
        assert set(by_name) == {"agent", "chat gpt-4o", "execute_tool search"}

        def attributes(span: Any) -> dict[str, Any]:
            out: dict[str, Any] = {}
            for item in span.attributes:
                kind = item.value.WhichOneof("value")
                value = getattr(item.value, kind)
                if kind == "array_value":
                    value = [getattr(v, v.WhichOneof("value")) for v in value.values]
                out[item.key] = value
            return out

        agent, chat, search = (
            by_name["agent"],
            by_name["chat gpt-4o"],
            by_name["execute_tool search"],
        )
        assert agent.parent_span_id == b""
        assert chat.parent_span_id == agent.span_id and search.parent_span_id == agent.span_id
        assert chat.trace_id == agent.trace_id == search.trace_id
        assert chat.end_time_unix_nano - chat.start_time_unix_nano == 5_000_000
        assert attributes(agent)["logstream.tags"] == ["prod"]
        chat_attributes = attributes(chat)
        assert chat_attributes["gen_ai.request.model"] == "gpt-4o"
        assert (
            chat_attributes["gen_ai.usage.input_tokens"],
            chat_attributes["gen_ai.usage.output_tokens"],
        ) == (12, 3)
        assert chat.kind == chat.SPAN_KIND_CLIENT
        assert search.status.code == search.status.STATUS_CODE_ERROR
        assert attributes(search)["error.type"] == "TimeoutError"
        assert [event.name for event in search.events] == ["exception"]
        assert agent.status.code == agent.status.STATUS_CODE_UNSET
