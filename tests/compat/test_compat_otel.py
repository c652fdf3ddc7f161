"""logstream.otel under a real LangChain chain: span tree, GenAI attributes, token usage."""

from __future__ import annotations

import json
from typing import Any, Optional

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from logstream import LogStreamCallbackHandler, redact_secrets
from logstream.otel import OpenTelemetryProcessor

SECRET = "sk-proj-" + "Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4"


class ChatOpenAI(BaseChatModel):
    """A fake chat model named like OpenAI's, so LangChain derives ls_provider='openai'."""

    model: str = "gpt-4o-mini"
    temperature: float = 0.1

    @property
    def _llm_type(self) -> str:
        return "fake-openai"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Optional[CallbackManagerForLLMRun] = None,
        **kwargs: Any,
    ) -> ChatResult:
        last = str(messages[-1].content)
        if last.startswith("fail"):
            msg = f"provider refused {SECRET}"
            raise RuntimeError(msg)
        calls = [{"name": "add", "args": {"a": 2, "b": 3}, "id": "call_42", "type": "tool_call"}]
        message = AIMessage(
            content=f"adding for {last}",
            tool_calls=calls,
            id="chatcmpl-abc",
            usage_metadata={"input_tokens": 17, "output_tokens": 9, "total_tokens": 26},
            response_metadata={
                "model_name": "gpt-4o-mini-2024-07-18",
                "finish_reason": "tool_calls",
            },
        )
        generation = ChatGeneration(
            message=message, generation_info={"finish_reason": "tool_calls"}
        )
        llm_output = {"token_usage": {"prompt_tokens": 17, "completion_tokens": 9}}
        return ChatResult(generations=[generation], llm_output=llm_output)


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def make_agent() -> Any:
    model = ChatOpenAI()

    def agent(question: str) -> Any:
        reply = model.invoke([SystemMessage("be brief"), HumanMessage(question)])
        results = [add.invoke(call) for call in reply.tool_calls]
        return [result.content for result in results]

    return RunnableLambda(agent, name="agent")


def run(question: str, **options: Any) -> tuple[list[ReadableSpan], Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    processor = OpenTelemetryProcessor(tracer_provider=provider, **options)
    handler = LogStreamCallbackHandler(processors=[processor], redact=redact_secrets)
    try:
        result = make_agent().invoke(question, config={"callbacks": [handler], "tags": ["t1"]})
    except RuntimeError as error:
        result = error
    return list(exporter.get_finished_spans()), result


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    named = {span.name: span for span in spans}
    assert len(named) == len(spans), [span.name for span in spans]
    return named


class TestLangChainChainToSpans:
    def test_span_tree_of_a_chain_with_a_model_and_a_tool(self) -> None:
        """The agent chain's span holds the chat span and the tool span, in one trace."""
        spans, result = run("2+3?")
        assert result == ["5"]
        named = by_name(spans)
        assert set(named) == {"agent", "chat gpt-4o-mini", "execute_tool add"}
        agent = named["agent"]
        assert agent.parent is None
        for child in ("chat gpt-4o-mini", "execute_tool add"):
            assert named[child].parent is not None
            assert named[child].parent.span_id == agent.context.span_id
            assert named[child].context.trace_id == agent.context.trace_id
        assert named["chat gpt-4o-mini"].start_time < named["execute_tool add"].start_time
        assert all(span.status.status_code is StatusCode.UNSET for span in spans)
        assert named["agent"].attributes["logstream.tags"] == ("t1",)

    def test_genai_attributes_and_token_usage(self) -> None:
        """The chat span has LangChain's model, provider and params, usage and finish reason."""
        spans, _ = run("2+3?")
        named = by_name(spans)
        chat = named["chat gpt-4o-mini"]
        assert chat.kind is SpanKind.CLIENT
        attributes = dict(chat.attributes or {})
        expected = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.temperature": 0.1,
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.id": "chatcmpl-abc",
            "gen_ai.response.finish_reasons": ("tool_calls",),
            "gen_ai.usage.input_tokens": 17,
            "gen_ai.usage.output_tokens": 9,
        }
        assert {key: attributes.get(key) for key in expected} == expected
        tool_span = named["execute_tool add"].attributes or {}
        assert (tool_span["gen_ai.tool.name"], tool_span["gen_ai.tool.call.id"]) == (
            "add",
            "call_42",
        )
        assert "gen_ai.input.messages" not in attributes

    def test_content_when_opted_in(self) -> None:
        """With capture_content=True the messages, tool call and tool result are recorded."""
        spans, _ = run("2+3?", capture_content=True)
        named = by_name(spans)
        chat = named["chat gpt-4o-mini"].attributes or {}
        inputs = json.loads(chat["gen_ai.input.messages"])
        assert [message["role"] for message in inputs] == ["system", "user"]
        assert inputs[1]["parts"] == [{"type": "text", "content": "2+3?"}]
        (output,) = json.loads(chat["gen_ai.output.messages"])
        assert output["role"] == "assistant" and output["finish_reason"] == "tool_calls"
        assert {
            "type": "tool_call",
            "id": "call_42",
            "name": "add",
            "arguments": {"a": 2, "b": 3},
        } in (output["parts"])
        tool_span = named["execute_tool add"].attributes or {}
        assert json.loads(tool_span["gen_ai.tool.call.arguments"]) == {"a": 2, "b": 3}
        assert tool_span["gen_ai.tool.call.result"] == "5"

    def test_failing_model_marks_its_span_and_the_chain(self) -> None:
        """A model that raises gives an ERROR chat span with error.type, and an ERROR chain span."""
        spans, result = run("fail please", redact=redact_secrets, capture_content=True)
        assert isinstance(result, RuntimeError)
        named = by_name(spans)
        chat = named["chat gpt-4o-mini"]
        assert chat.status.status_code is StatusCode.ERROR
        assert chat.attributes["error.type"] == "RuntimeError"
        assert named["agent"].status.status_code is StatusCode.ERROR
        dumped = json.dumps(
            [
                [dict(span.attributes or {}), span.status.description]
                + [dict(event.attributes or {}) for event in span.events]
                for span in spans
            ]
        )
        assert SECRET not in dumped
