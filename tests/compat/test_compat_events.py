"""Differential tests of the events view against LangChain's ``astream_events(version="v2")``.

Each scenario builds a real runnable twice: once it runs under LangChain's
``astream_events(value, version="v2")`` (list A), once under ``astream`` (or ``ainvoke``)
with our callback handler carrying an :class:`~logstream.EventStream` (list B). Run ids
(and the message ids made from them) are numbered by first appearance, and the lists are
compared event by event: event, name, run id, parent ids, tags, metadata and data.

``astream_events`` does two things outside its callbacks that a callback-driven view
cannot see (both rows of the README's differences table, each pinned below): it puts
the value it was called with into the first event it yields as ``data.input`` and drops
``data.input`` from that run's end event. :func:`_as_astream_events` applies exactly
those two steps to list B before the comparison. The other intended differences
(``on_<type>_error`` events for runs other than tools, an LLM's stream chunk being the
token text) are left out of B or mapped by :func:`_comparable`, and pinned by tests of
their own.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional

import pytest
from langchain_core.callbacks.manager import adispatch_custom_event
from langchain_core.documents import Document
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.language_models.llms import LLM
from langchain_core.messages import AIMessage
from langchain_core.outputs import GenerationChunk
from langchain_core.prompts import ChatPromptTemplate, PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda
from langchain_core.tools import tool

from logstream import EventStream, LogStreamCallbackHandler, StreamEvent

from .harness import Normalizer

Factory = Callable[[], tuple[Runnable[Any, Any], Any]]

# ---------------------------------------------------------------------------
# runnables
# ---------------------------------------------------------------------------


class _Docs(BaseRetriever):
    """A retriever that returns one document per word of the query."""

    def _get_relevant_documents(self, query: str, *, run_manager: Any) -> list[Document]:
        return [Document(page_content=word) for word in query.split()]


class _TokenLLM(LLM):
    """An LLM that streams its answer word by word through ``on_llm_new_token``."""

    answer: str = "one two"

    @property
    def _llm_type(self) -> str:
        return "token-llm"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
        return self.answer

    def _stream(
        self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[GenerationChunk]:
        for word in self.answer.split(" "):
            chunk = GenerationChunk(text=word)
            if run_manager is not None:
                run_manager.on_llm_new_token(word, chunk=chunk)
            yield chunk


@tool
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@tool
def explode(x: str) -> str:
    """Fail, always."""
    msg = f"cannot handle {x}"
    raise ValueError(msg)


def _chat(text: str = "hello big world") -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter([AIMessage(content=text)]))


async def _twice(chunks: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for chunk in chunks:
        yield chunk * 2


async def _count(n: int) -> AsyncIterator[int]:
    for i in range(n):
        yield i


async def _announce(x: Any) -> Any:
    await adispatch_custom_event("progress", {"seen": x})
    return x


def _nested() -> Runnable[Any, Any]:
    inner = (RunnableLambda(lambda x: x * 2) | RunnableLambda(lambda x: x - 1)).with_config(
        run_name="inner", tags=["in"], metadata={"depth": 2}
    )
    return (RunnableLambda(lambda x: x + 1) | inner).with_config(
        tags=["outer"], metadata={"depth": 1}
    )


SCENARIOS: dict[str, Factory] = {
    "lambda": lambda: (RunnableLambda(lambda x: x + 1), 1),
    "sequence": lambda: (RunnableLambda(lambda x: x + 1) | RunnableLambda(lambda x: x * 2), 1),
    "generator": lambda: (RunnableLambda(lambda x: [x, x + 1]) | RunnableGenerator(_twice), 3),
    "generator_lambda": lambda: (RunnableLambda(lambda x: x) | RunnableLambda(_count), 3),
    "chat_model": lambda: (_chat(), "hi"),
    "llm": lambda: (FakeListLLM(responses=["abc"]), "hi"),
    "streaming_llm": lambda: (RunnableLambda(lambda x: x) | _TokenLLM(), "hi"),
    "prompt_chat": lambda: (
        ChatPromptTemplate.from_messages([("human", "{q}")]) | _chat("a b"),
        {"q": "x"},
    ),
    "prompt_llm": lambda: (PromptTemplate.from_template("say {q}") | _TokenLLM(), {"q": "x"}),
    "tool": lambda: (add, {"a": 1, "b": 2}),
    "tool_in_chain": lambda: (RunnableLambda(lambda x: {"a": x, "b": 1}) | add, 2),
    "retriever": lambda: (_Docs(), "red fox"),
    "retriever_in_chain": lambda: (RunnableLambda(lambda x: x) | _Docs(), "red fox"),
    "nested": lambda: (_nested(), 1),
    "custom_event": lambda: (
        RunnableLambda(lambda x: x) | RunnableLambda(_announce).with_config(tags=["c"]),
        5,
    ),
}

FILTERS: dict[str, dict[str, list[str]]] = {
    "include_names": {"include_names": ["inner", "RunnableLambda"]},
    "include_types": {"include_types": ["chat_model", "llm", "progress"]},
    "include_tags": {"include_tags": ["in", "c"]},
    "exclude_names": {"exclude_names": ["inner"]},
    "exclude_types": {"exclude_types": ["chain"]},
    "exclude_tags": {"exclude_tags": ["seq:step:1"]},
}

# ---------------------------------------------------------------------------
# running and comparing
# ---------------------------------------------------------------------------


async def _alangchain_events(
    make: Factory, **rules: Any
) -> tuple[list[Any], Optional[BaseException]]:
    """Run LangChain's ``astream_events`` v2; return its events and the error it raised."""
    runnable, value = make()
    events: list[Any] = []
    try:
        async for event in runnable.astream_events(value, version="v2", **rules):
            events.append(event)
    except Exception as exc:
        return events, exc
    return events, None


async def _aour_events(
    make: Factory, *, invoke: bool = False, **rules: Any
) -> tuple[list[StreamEvent], Optional[BaseException]]:
    """Run the runnable with our handler and an EventStream; return the events and error."""
    runnable, value = make()
    events = EventStream(**rules)
    handler = LogStreamCallbackHandler(processors=[events])
    config: Any = {"callbacks": [handler]}
    error: Optional[BaseException] = None
    try:
        if invoke:
            await runnable.ainvoke(value, config=config)
        else:
            async for _ in runnable.astream(value, config=config):
                pass
    except Exception as exc:
        error = exc
    return events.drain(), error


def _as_astream_events(events: list[StreamEvent], value: Any) -> list[StreamEvent]:
    """Apply to our events the two steps ``astream_events`` takes outside its callbacks."""
    out = copy.copy([dict(event) for event in events])
    if out:
        first = out[0]
        first["data"] = {**first["data"], "input": value}
        for event in out[1:]:
            if event["run_id"] == first["run_id"] and event["event"].endswith("_end"):
                event["data"] = {k: v for k, v in event["data"].items() if k != "input"}
    return out  # type: ignore[return-value]


def _comparable(events: list[Any]) -> list[Any]:
    """Drop our error events for runs other than tools; an LLM chunk compares as its text."""
    out = []
    for event in events:
        name = event["event"]
        if name.endswith("_error") and name != "on_tool_error":
            continue
        chunk = event["data"].get("chunk") if isinstance(event["data"], dict) else None
        if name == "on_llm_stream" and isinstance(chunk, GenerationChunk):
            event = {**event, "data": {"chunk": chunk.text}}
        out.append(event)
    return Normalizer().value(out)  # type: ignore[no-any-return]


def langchain_events(make: Factory, **rules: Any) -> tuple[list[Any], Optional[BaseException]]:
    """Run LangChain's ``astream_events`` v2 in a fresh event loop."""
    return asyncio.run(_alangchain_events(make, **rules))


def our_events(
    make: Factory, *, invoke: bool = False, **rules: Any
) -> tuple[list[StreamEvent], Optional[BaseException]]:
    """Run the runnable with our handler in a fresh event loop."""
    return asyncio.run(_aour_events(make, invoke=invoke, **rules))


def assert_same_events(make: Factory, **rules: Any) -> list[StreamEvent]:
    """Assert both lists agree (after the documented steps); return ours."""
    expected, expected_error = langchain_events(make, **rules)
    ours, our_error = our_events(make, **rules)
    _, value = make()
    assert _comparable(_as_astream_events(ours, value)) == _comparable(expected)
    assert repr(our_error) == repr(expected_error)
    return ours


# ---------------------------------------------------------------------------
# the differential suite
# ---------------------------------------------------------------------------


class TestSameEvents:
    """Our events equal astream_events v2's on real runnables."""

    @pytest.mark.parametrize("scenario", sorted(SCENARIOS))
    def test_scenario(self, scenario: str) -> None:
        """Every scenario gives LangChain's events, ids, parents, tags, metadata and data."""
        ours = assert_same_events(SCENARIOS[scenario])
        assert ours, "the scenario produced events"

    @pytest.mark.parametrize("rule", sorted(FILTERS))
    @pytest.mark.parametrize("scenario", ["nested", "prompt_chat", "custom_event"])
    def test_filters(self, scenario: str, rule: str) -> None:
        """Each include/exclude rule keeps the events astream_events keeps."""
        assert_same_events(SCENARIOS[scenario], **FILTERS[rule])

    def test_failing_tool(self) -> None:
        """A tool that raises gives LangChain's on_tool_error, then the error propagates."""
        ours = assert_same_events(lambda: (RunnableLambda(lambda x: {"x": x}) | explode, "a"))
        errors = [e for e in ours if e["event"] == "on_tool_error"]
        assert len(errors) == 1
        assert isinstance(errors[0]["data"]["error"], ValueError)

    def test_failing_chain(self) -> None:
        """A chain step that raises gives LangChain's events (ours add on_chain_error)."""
        assert_same_events(
            lambda: (RunnableLambda(lambda x: x) | RunnableLambda(lambda x: 1 / x), 0)
        )

    def test_invoke_root_input(self) -> None:
        """Driven by ainvoke, the root's start carries its real input, as astream_events."""
        runnable_value = SCENARIOS["sequence"]
        ours, _ = our_events(runnable_value, invoke=True)
        expected, _ = langchain_events(runnable_value)
        assert ours[0]["data"] == expected[0]["data"] == {"input": 1}
        assert "input" not in ours[-1]["data"]


# ---------------------------------------------------------------------------
# the intended differences (README: "Where we differ from LangChain's handler")
# ---------------------------------------------------------------------------


class TestIntendedDifferences:
    """Each row of the README's table about the events view, asserted."""

    def test_streamed_root_start_has_no_input(self) -> None:
        """A root driven by astream starts before its input is known: no data.input."""
        ours, _ = our_events(SCENARIOS["sequence"])
        expected, _ = langchain_events(SCENARIOS["sequence"])
        assert expected[0]["data"] == {"input": 1}
        assert ours[0]["event"] == "on_chain_start"
        assert ours[0]["data"] == {}

    def test_streamed_root_end_keeps_input(self) -> None:
        """The root's end carries data.input when its start could not."""
        ours, _ = our_events(SCENARIOS["sequence"])
        expected, _ = langchain_events(SCENARIOS["sequence"])
        assert "input" not in expected[-1]["data"]
        assert ours[-1]["data"] == {"output": 4, "input": 1}

    def test_filtered_root_input_stays_with_the_root(self) -> None:
        """With the root filtered out, the first event kept does not get the root's input."""
        expected, _ = langchain_events(SCENARIOS["custom_event"], include_types=["progress"])
        ours, _ = our_events(SCENARIOS["custom_event"], include_types=["progress"])
        assert expected[0]["data"] == {"seen": 5, "input": 5}
        assert ours[0]["data"] == {"seen": 5}

    def test_error_events_for_every_run_type(self) -> None:
        """A failed chain gives on_chain_error with the exception; LangChain gives none."""
        make: Factory = lambda: (RunnableLambda(lambda x: x) | RunnableLambda(lambda x: 1 / x), 0)  # noqa: E731
        expected, _ = langchain_events(make)
        ours, _ = our_events(make)
        assert not [e for e in expected if e["event"].endswith("_error")]
        errors = [e for e in ours if e["event"] == "on_chain_error"]
        assert [e["name"] for e in errors] == ["RunnableLambda", "RunnableSequence"]
        assert all(isinstance(e["data"]["error"], ZeroDivisionError) for e in errors)

    def test_llm_stream_chunk_is_the_token(self) -> None:
        """An LLM's on_llm_stream chunk is the token text, not a GenerationChunk."""
        expected, _ = langchain_events(SCENARIOS["streaming_llm"])
        ours, _ = our_events(SCENARIOS["streaming_llm"])
        theirs = [e["data"]["chunk"] for e in expected if e["event"] == "on_llm_stream"]
        mine = [e["data"]["chunk"] for e in ours if e["event"] == "on_llm_stream"]
        assert [c.text for c in theirs] == mine == ["one", "two"]
        assert all(isinstance(c, GenerationChunk) for c in theirs)

    def test_invoked_root_has_no_stream_events(self) -> None:
        """Driven by ainvoke, the root streams nothing: astream_events streams it itself."""

        def root_chunks(events: list[Any]) -> list[Any]:
            root = events[0]["run_id"]
            return [
                e["data"] for e in events if e["run_id"] == root and e["event"] == "on_chain_stream"
            ]

        expected, _ = langchain_events(SCENARIOS["sequence"])
        invoked, _ = our_events(SCENARIOS["sequence"], invoke=True)
        streamed, _ = our_events(SCENARIOS["sequence"])  # driven by astream it has them
        assert root_chunks(expected) == root_chunks(streamed) == [{"chunk": 4}]
        assert root_chunks(invoked) == []

    def test_tool_error_has_no_tool_call_id(self) -> None:
        """on_tool_error's tool_call_id is None, even for a tool called with a tool call."""
        call = {"name": "explode", "args": {"x": "a"}, "id": "call-1", "type": "tool_call"}
        make: Factory = lambda: (explode, call)  # noqa: E731
        expected, _ = langchain_events(make)
        ours, _ = our_events(make)
        (theirs,) = [e for e in expected if e["event"] == "on_tool_error"]
        (mine,) = [e for e in ours if e["event"] == "on_tool_error"]
        assert theirs["data"]["tool_call_id"] == "call-1"
        assert mine["data"]["tool_call_id"] is None


class TestBothViewsFromOneHandler:
    """One handler gives the run log and the events from one set of callbacks."""

    def test_sync_stream_gives_the_async_events(self) -> None:
        """Sync callbacks (Runnable.stream) give the events async ones (astream) give."""
        runnable, value = SCENARIOS["prompt_chat"]()
        events = EventStream()
        handler = LogStreamCallbackHandler(processors=[events])
        for _ in runnable.stream(value, config={"callbacks": [handler]}):
            pass
        ours, _ = our_events(SCENARIOS["prompt_chat"])
        assert Normalizer().value(list(events)) == Normalizer().value(ours)

    def test_patches_and_events(self) -> None:
        """The handler's patches rebuild the log while the processor streams the events."""
        from logstream import RunLog

        runnable, value = SCENARIOS["prompt_chat"]()
        events = EventStream()
        handler = LogStreamCallbackHandler(processors=[events])
        asyncio.run(runnable.ainvoke(value, config={"callbacks": [handler]}))
        log = RunLog(state=None)
        for patch in handler:
            log = log + patch
        seen = list(events)
        starts = [e["name"] for e in seen if e["event"].endswith("_start")]
        assert sorted(log.state["logs"]) == sorted(starts[1:])  # the root has no entry
        model = log.state["logs"]["GenericFakeChatModel"]
        tokens = [e["data"]["chunk"].content for e in seen if e["event"] == "on_chat_model_stream"]
        assert model["streamed_output_str"] == tokens == ["a", " ", "b"]
        assert seen[-1]["event"] == "on_chain_end"
        assert seen[-1]["data"]["output"].content == "a b"
