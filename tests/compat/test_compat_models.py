"""Differential tests over models, prompts, parsers, tools and retrievers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Optional

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models import LLM, BaseChatModel
from langchain_core.language_models.fake import FakeListLLM, FakeStreamingListLLM
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.output_parsers import JsonOutputParser, StrOutputParser
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult, GenerationChunk
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import tool

from .harness import MODES, Scenario, compare

FORMATS = ("streaming_events", "original")


# ---------------------------------------------------------------------------
# factories (fresh models every call: fake models consume their responses)
# ---------------------------------------------------------------------------


def generic_chat_model() -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content="hello brave new world")]))


def chat_chain() -> Runnable[Any, Any]:
    prompt = ChatPromptTemplate.from_messages([("system", "be brief"), ("human", "{question}")])
    return prompt | generic_chat_model() | StrOutputParser()


def list_chat_chain() -> Runnable[Any, Any]:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    return prompt | FakeListChatModel(responses=["abc"]) | StrOutputParser()


def tool_call_chat_model() -> GenericFakeChatModel:
    message = AIMessage(
        content="calling",
        tool_calls=[{"name": "lookup", "args": {"q": "x"}, "id": "call_1", "type": "tool_call"}],
    )
    return GenericFakeChatModel(messages=iter([message]))


def llm_chain() -> Runnable[Any, Any]:
    return (
        PromptTemplate.from_template("say {word}")
        | FakeListLLM(responses=["said it"])
        | StrOutputParser()
    )


def streaming_llm_chain() -> Runnable[Any, Any]:
    return (
        PromptTemplate.from_template("spell {word}")
        | FakeStreamingListLLM(responses=["xyz"])
        | StrOutputParser()
    )


def json_parser_chain() -> Runnable[Any, Any]:
    model = GenericFakeChatModel(messages=iter([AIMessage(content='{"a": [1, 2], "b": "c d"}')]))
    return ChatPromptTemplate.from_messages([("human", "{question}")]) | model | JsonOutputParser()


@tool
def multiply(a: int, b: int) -> int:
    """Multiply two integers."""
    return a * b


@tool
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


def tool_runnable() -> Runnable[Any, Any]:
    return multiply


def tool_chain() -> Runnable[Any, Any]:
    return (
        RunnableLambda(lambda q: {"text": q}, name="to_args")
        | shout
        | RunnableLambda(lambda s: s + "!", name="exclaim")
    )


class KeywordRetriever(BaseRetriever):
    """Returns the stored documents whose text contains the query."""

    docs: tuple[str, ...] = ("apples are red", "bananas are yellow", "red cars")

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return [
            Document(page_content=d, metadata={"rank": i})
            for i, d in enumerate(self.docs)
            if query in d
        ]


def retriever_runnable() -> Runnable[Any, Any]:
    return KeywordRetriever()


def retriever_chain() -> Runnable[Any, Any]:
    return (
        KeywordRetriever()
        | RunnableLambda(lambda docs: "\n".join(d.page_content for d in docs), name="join")
        | PromptTemplate.from_template("context: {context}")
    ).with_config(run_name="rag")


def rag_chain() -> Runnable[Any, Any]:
    """Retriever -> prompt -> chat model -> parser (docs passed via a lambda)."""
    prompt = ChatPromptTemplate.from_messages([("human", "{context}")])
    return (
        KeywordRetriever()
        | RunnableLambda(
            lambda docs: {"context": " / ".join(d.page_content for d in docs)}, name="fmt"
        )
        | prompt
        | GenericFakeChatModel(messages=iter([AIMessage(content="red things")]))
        | StrOutputParser()
    )


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_chat_prompt_model_parser_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """ChatPromptTemplate | GenericFakeChatModel | StrOutputParser: identical ops, both formats."""
    compare(
        Scenario(chat_chain, {"question": "hi"}, mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_fake_list_chat_model_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """FakeListChatModel (character streaming) in a chain: identical ops in both formats."""
    compare(
        Scenario(
            list_chat_chain, {"question": "q"}, mode=mode, handler_kwargs={"_schema_format": fmt}
        ),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_chat_model_as_root_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A chat model invoked directly (it is the root run) gives identical ops."""
    compare(
        Scenario(
            generic_chat_model,
            [HumanMessage(content="hey")],
            mode=mode,
            handler_kwargs={"_schema_format": fmt},
        ),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_chat_model_tool_call_chunks_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A chat model streaming a tool call (tool_call_chunks) inside a chain gives identical ops."""
    compare(
        Scenario(
            lambda: (
                RunnableLambda(lambda s: [HumanMessage(content=s)], name="wrap")
                | tool_call_chat_model()
            ),
            "go",
            mode=mode,
            handler_kwargs={"_schema_format": fmt},
        ),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_llm_chain_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """PromptTemplate | FakeListLLM | StrOutputParser gives identical ops in both formats."""
    compare(
        Scenario(llm_chain, {"word": "hi"}, mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_streaming_llm_chain_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """PromptTemplate | FakeStreamingListLLM | StrOutputParser gives identical ops."""
    compare(
        Scenario(
            streaming_llm_chain, {"word": "hi"}, mode=mode, handler_kwargs={"_schema_format": fmt}
        ),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_llm_as_root_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A streaming fake LLM invoked directly (root run) gives identical ops."""
    compare(
        Scenario(
            lambda: FakeStreamingListLLM(responses=["tok"]),
            "prompt",
            mode=mode,
            handler_kwargs={"_schema_format": fmt},
        ),
        candidate,
    )


@pytest.mark.parametrize("mode", MODES)
def test_json_output_parser_ops_match(candidate: type, mode: str) -> None:
    """JsonOutputParser streaming partial JSON after a chat model gives identical ops."""
    compare(Scenario(json_parser_chain, {"question": "json"}, mode=mode), candidate)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_tool_invoked_directly_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A @tool invoked directly with a dict input (root run) gives identical ops."""
    compare(
        Scenario(
            tool_runnable, {"a": 6, "b": 7}, mode=mode, handler_kwargs={"_schema_format": fmt}
        ),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_tool_in_chain_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A @tool between two lambdas logs a "tool" run with identical ops in both formats."""
    compare(
        Scenario(tool_chain, "quiet", mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("mode", MODES)
def test_tool_called_with_tool_call_ops_match(candidate: type, mode: str) -> None:
    """A @tool invoked with a ToolCall dict in a chain returns/logs a ToolMessage identically."""
    call = {"name": "multiply", "args": {"a": 2, "b": 3}, "id": "call_42", "type": "tool_call"}
    compare(
        Scenario(lambda: RunnableLambda(lambda c: c, name="route") | multiply, call, mode=mode),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_retriever_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A BaseRetriever subclass as root and inside a renamed chain gives identical ops."""
    compare(
        Scenario(retriever_runnable, "red", mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )
    compare(
        Scenario(retriever_chain, "red", mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("consumer_waiting", [False, True], ids=["drain", "waiting"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_rag_chain_ops_match(candidate: type, mode: str, fmt: str, consumer_waiting: bool) -> None:
    """Retriever | lambda | prompt | chat model | parser gives identical ops end to end."""
    compare(
        Scenario(
            rag_chain,
            "red",
            mode=mode,
            consumer_waiting=consumer_waiting,
            handler_kwargs={"_schema_format": fmt},
        ),
        candidate,
    )


@pytest.mark.parametrize("auto_close", [True, False], ids=["autoclose", "noautoclose"])
@pytest.mark.parametrize("mode", MODES)
def test_chat_chain_auto_close_ops_match(candidate: type, mode: str, auto_close: bool) -> None:
    """A chat chain with a consumer already waiting agrees with and without auto_close."""
    compare(
        Scenario(
            chat_chain,
            {"question": "hi"},
            mode=mode,
            consumer_waiting=True,
            handler_kwargs={"auto_close": auto_close},
        ),
        candidate,
    )


# ---------------------------------------------------------------------------
# errors inside tools, retrievers and models
# ---------------------------------------------------------------------------


@tool
def broken_tool(text: str) -> str:
    """Always fails."""
    raise ValueError(f"tool failed on {text}")


class BrokenRetriever(BaseRetriever):
    """Always fails."""

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        raise LookupError(f"no index for {query}")


class MidStreamFailingChatModel(GenericFakeChatModel):
    """Streams the first chunk of its message, then raises."""

    def _stream(self, *args: Any, **kwargs: Any) -> Any:
        for i, chunk in enumerate(super()._stream(*args, **kwargs)):
            if i == 2:
                raise RuntimeError("model died")
            yield chunk


def failing_model_chain() -> Runnable[Any, Any]:
    model = MidStreamFailingChatModel(messages=iter([AIMessage(content="one two three four")]))
    return ChatPromptTemplate.from_messages([("human", "{question}")]) | model | StrOutputParser()


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_tool_error_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A raising @tool inside a chain: identical ops before the identical ValueError."""
    expected, _ = compare(
        Scenario(
            lambda: RunnableLambda(lambda s: {"text": s}, name="args") | broken_tool,
            "x",
            mode=mode,
            handler_kwargs={"_schema_format": fmt},
        ),
        candidate,
    )
    assert expected.error_repr == "ValueError: tool failed on x"


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_retriever_error_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A raising retriever inside a chain: identical ops before the identical LookupError."""
    expected, _ = compare(
        Scenario(
            lambda: RunnableLambda(lambda s: s, name="q") | BrokenRetriever(),
            "x",
            mode=mode,
            handler_kwargs={"_schema_format": fmt},
        ),
        candidate,
    )
    assert expected.error_repr is not None and expected.error_repr.startswith("LookupError")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_chat_model_error_mid_stream_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A chat model failing after streaming some tokens: identical token ops, no end ops."""
    expected, _ = compare(
        Scenario(
            failing_model_chain,
            {"question": "q"},
            mode=mode,
            handler_kwargs={"_schema_format": fmt},
        ),
        candidate,
    )
    assert expected.error_repr == "RuntimeError: model died"


# ---------------------------------------------------------------------------
# hand-written models: token callbacks for LLMs, content blocks, no streaming
# ---------------------------------------------------------------------------


class CharLLM(LLM):
    """An LLM that upper-cases its prompt and streams it character by character."""

    @property
    def _llm_type(self) -> str:
        return "char-llm"

    def _call(
        self, prompt: str, stop: Optional[list[str]] = None, run_manager: Any = None, **kwargs: Any
    ) -> str:
        return prompt.upper()

    def _stream(
        self, prompt: str, stop: Optional[list[str]] = None, run_manager: Any = None, **kwargs: Any
    ) -> Iterator[GenerationChunk]:
        for ch in prompt.upper():
            chunk = GenerationChunk(text=ch, generation_info={"char": ch})
            if run_manager is not None:
                run_manager.on_llm_new_token(ch, chunk=chunk)
            yield chunk


class ContentBlocksChatModel(BaseChatModel):
    """A chat model whose messages carry list (content-block) content and metadata."""

    @property
    def _llm_type(self) -> str:
        return "content-blocks"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(
            content=[{"type": "text", "text": "ab"}],
            usage_metadata={"input_tokens": 1, "output_tokens": 2, "total_tokens": 3},
        )
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model": "b"})

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        for i, text in enumerate(["a", "b"]):
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(
                    content=[{"type": "text", "text": text, "index": 0}], response_metadata={"i": i}
                )
            )
            if run_manager is not None:
                run_manager.on_llm_new_token(chunk.text, chunk=chunk)
            yield chunk


class GenerateOnlyChatModel(BaseChatModel):
    """A chat model without ``_stream``: never streams tokens, even under a streaming handler."""

    @property
    def _llm_type(self) -> str:
        return "generate-only"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: Optional[list[str]] = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        message = AIMessage(content="whole answer")
        return ChatResult(
            generations=[ChatGeneration(message=message)], llm_output={"usage": {"n": 1}}
        )


def _as_messages() -> Runnable[Any, Any]:
    return RunnableLambda(lambda s: [HumanMessage(content=s)], name="as_messages")


HAND_WRITTEN = {
    "char-llm": lambda: RunnableLambda(lambda s: s, name="pre") | CharLLM(),
    "content-blocks": lambda: _as_messages() | ContentBlocksChatModel(),
    "generate-only": lambda: _as_messages() | GenerateOnlyChatModel(),
    "disable-streaming": lambda: (
        _as_messages()
        | GenericFakeChatModel(messages=iter([AIMessage(content="a b")]), disable_streaming=True)
    ),
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("model", sorted(HAND_WRITTEN))
def test_hand_written_models_ops_match(candidate: type, model: str, mode: str, fmt: str) -> None:
    """LLM token callbacks, list-content tokens, generate-only and non-streaming models agree."""
    compare(
        Scenario(HAND_WRITTEN[model], "ab", mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("mode", MODES)
def test_string_input_tool_ops_match(candidate: type, mode: str) -> None:
    """A single-argument @tool fed a plain string inside a chain gives identical ops."""
    compare(
        Scenario(lambda: RunnableLambda(lambda s: s, name="pre") | shout, "abc", mode=mode),
        candidate,
    )
