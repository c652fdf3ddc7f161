"""Differential tests over models, prompts, parsers, tools and retrievers."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM, FakeStreamingListLLM
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.output_parsers import JsonOutputParser, StrOutputParser
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
    return PromptTemplate.from_template("say {word}") | FakeListLLM(responses=["said it"]) | StrOutputParser()


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
    return RunnableLambda(lambda q: {"text": q}, name="to_args") | shout | RunnableLambda(
        lambda s: s + "!", name="exclaim"
    )


class KeywordRetriever(BaseRetriever):
    """Returns the stored documents whose text contains the query."""

    docs: list[str] = ["apples are red", "bananas are yellow", "red cars"]

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
        | RunnableLambda(lambda docs: {"context": " / ".join(d.page_content for d in docs)}, name="fmt")
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
    """ChatPromptTemplate | GenericFakeChatModel | StrOutputParser: identical ops in both formats."""
    compare(
        Scenario(chat_chain, {"question": "hi"}, mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_fake_list_chat_model_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """FakeListChatModel (character streaming) in a chain: identical ops in both formats."""
    compare(
        Scenario(list_chat_chain, {"question": "q"}, mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_chat_model_as_root_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A chat model invoked directly (it is the root run) gives identical ops."""
    compare(
        Scenario(generic_chat_model, [HumanMessage(content="hey")], mode=mode,
                 handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_chat_model_tool_call_chunks_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A chat model streaming a tool call (tool_call_chunks) inside a chain gives identical ops."""
    compare(
        Scenario(
            lambda: RunnableLambda(lambda s: [HumanMessage(content=s)], name="wrap") | tool_call_chat_model(),
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
        Scenario(streaming_llm_chain, {"word": "hi"}, mode=mode, handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_llm_as_root_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A streaming fake LLM invoked directly (root run) gives identical ops."""
    compare(
        Scenario(lambda: FakeStreamingListLLM(responses=["tok"]), "prompt", mode=mode,
                 handler_kwargs={"_schema_format": fmt}),
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
        Scenario(tool_runnable, {"a": 6, "b": 7}, mode=mode, handler_kwargs={"_schema_format": fmt}),
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
    """A @tool invoked with a ToolCall dict inside a chain returns/logs a ToolMessage identically."""
    call = {"name": "multiply", "args": {"a": 2, "b": 3}, "id": "call_42", "type": "tool_call"}
    compare(
        Scenario(lambda: RunnableLambda(lambda c: c, name="route") | multiply, call, mode=mode),
        candidate,
    )


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_retriever_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """A BaseRetriever subclass as root and inside a renamed chain gives identical ops."""
    compare(Scenario(retriever_runnable, "red", mode=mode, handler_kwargs={"_schema_format": fmt}), candidate)
    compare(Scenario(retriever_chain, "red", mode=mode, handler_kwargs={"_schema_format": fmt}), candidate)


@pytest.mark.parametrize("consumer_waiting", [False, True], ids=["drain", "waiting"])
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("mode", MODES)
def test_rag_chain_ops_match(candidate: type, mode: str, fmt: str, consumer_waiting: bool) -> None:
    """Retriever | lambda | prompt | chat model | parser gives identical ops end to end."""
    compare(
        Scenario(rag_chain, "red", mode=mode, consumer_waiting=consumer_waiting,
                 handler_kwargs={"_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("auto_close", [True, False], ids=["autoclose", "noautoclose"])
@pytest.mark.parametrize("mode", MODES)
def test_chat_chain_auto_close_ops_match(candidate: type, mode: str, auto_close: bool) -> None:
    """A chat chain with a consumer already waiting agrees with and without auto_close."""
    compare(
        Scenario(chat_chain, {"question": "hi"}, mode=mode, consumer_waiting=True,
                 handler_kwargs={"auto_close": auto_close}),
        candidate,
    )
