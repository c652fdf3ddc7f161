"""Tests for :mod:`logstream._callbacks`: the LangChain-shaped ``LogStreamCallbackHandler``.

The handler is driven directly, with ``uuid.uuid4()`` run ids, plain Python values and
small duck-typed stand-ins for LangChain's objects (a chat generation chunk is anything
with ``.message``, an ``LLMResult`` anything with ``model_dump()`` and ``.generations``),
so these tests run without LangChain. Waits across threads are bounded by :data:`TIMEOUT`.
"""

from __future__ import annotations

import asyncio
import copy
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Callable, ClassVar, Optional

import jsonpatch  # type: ignore[import-untyped,unused-ignore]
import pytest

from logstream import (
    DuplicateRunError,
    FilterConfigError,
    LogStreamCallbackHandler,
    LogStreamError,
    RunTypeError,
    SchemaFormatError,
    UnknownRunError,
)

TIMEOUT = 60.0
"""Seconds any single wait may take before the test fails (generous: CI machines are noisy)."""

Ops = list[dict[str, Any]]

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)


class StepClock:
    """A fake clock: 2024-01-01T00:00:00.000 UTC at the first call, then ``step`` more each call."""

    def __init__(self, start: datetime = T0, step: timedelta = timedelta(milliseconds=250)) -> None:
        self.now = start
        self.step = step

    def __call__(self) -> datetime:
        now = self.now
        self.now = now + self.step
        return now


def fixed_clock() -> datetime:
    """A clock that never moves, so a rejected call cannot shift later timestamps."""
    return T0


def make_handler(**kwargs: Any) -> LogStreamCallbackHandler:
    """Return a handler that stays open until closed, with a fixed clock unless given one."""
    kwargs.setdefault("auto_close", False)
    kwargs.setdefault("clock", fixed_clock)
    return LogStreamCallbackHandler(**kwargs)


def collect(handler: LogStreamCallbackHandler) -> list[Ops]:
    """Close the handler and return the ops of every patch it emitted, in order."""
    handler.close()
    return [patch.ops for patch in handler]


def rebuild(patches: list[Ops]) -> Any:
    """Apply every patch in order to an empty document with ``jsonpatch``."""
    doc: Any = None
    for ops in patches:
        doc = jsonpatch.apply_patch(doc, ops, in_place=True)
    return doc


def start_root(handler: LogStreamCallbackHandler, name: str = "root") -> uuid.UUID:
    """Start a root chain run and return its id."""
    root = uuid.uuid4()
    handler.on_chain_start({}, {"question": "q"}, run_id=root, name=name)
    return root


def root_op(root: uuid.UUID, name: str = "root", run_type: str = "chain") -> dict[str, Any]:
    """The op that replaces the whole document with a fresh root state."""
    state: dict[str, Any] = {
        "id": str(root),
        "streamed_output": [],
        "final_output": None,
        "logs": {},
        "name": name,
        "type": run_type,
    }
    return {"op": "replace", "path": "", "value": state}


def entry(
    run_id: uuid.UUID,
    name: str,
    run_type: str,
    *,
    start_time: str = "2024-01-01T00:00:00.000+00:00",
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    **extra: Any,
) -> dict[str, Any]:
    """A fresh log entry as the add op carries it (``extra`` adds e.g. ``inputs``)."""
    value: dict[str, Any] = {
        "id": str(run_id),
        "name": name,
        "type": run_type,
        "tags": tags or [],
        "metadata": metadata or {},
        "start_time": start_time,
        "streamed_output": [],
        "streamed_output_str": [],
        "final_output": None,
        "end_time": None,
    }
    value.update(extra)
    return value


class Chunk:
    """Stand-in for a ``ChatGenerationChunk``: a chunk that carries a ``message``."""

    def __init__(self, message: Any) -> None:
        self.message = message


class TextChunk:
    """Stand-in for a ``GenerationChunk``: a chunk with text and no message."""

    def __init__(self, text: str) -> None:
        self.text = text


class Message:
    """Stand-in for a LangChain message."""

    def __init__(self, content: str) -> None:
        self.content = content

    def __repr__(self) -> str:
        return f"Message({self.content!r})"


class ChatGeneration:
    """Stand-in for a ``ChatGeneration``: text and the message it holds."""

    def __init__(self, text: str, message: Any) -> None:
        self.text = text
        self.message = message


class Generation:
    """Stand-in for a ``Generation``: text only."""

    def __init__(self, text: str) -> None:
        self.text = text


class FakeLLMResult:
    """Stand-in for an ``LLMResult``: ``generations`` and a ``model_dump()`` of plain data."""

    def __init__(self, generations: list[list[Any]], llm_output: Any = None) -> None:
        self.generations = generations
        self.llm_output = llm_output

    def model_dump(self) -> dict[str, Any]:
        dumped: list[list[dict[str, Any]]] = []
        for batch in self.generations:
            row = []
            for gen in batch:
                item: dict[str, Any] = {"text": gen.text, "generation_info": None}
                if hasattr(gen, "message"):
                    item["message"] = {"dumped": gen.message.content}
                    item["type"] = "ChatGeneration"
                else:
                    item["type"] = "Generation"
                row.append(item)
            dumped.append(row)
        return {
            "generations": dumped,
            "llm_output": self.llm_output,
            "run": None,
            "type": "LLMResult",
        }


class Document:
    """Stand-in for a LangChain ``Document``."""

    def __init__(self, page_content: str) -> None:
        self.page_content = page_content


# -- the constructor and the surface LangChain's manager reads ------------------------------


class TestConstructor:
    """LogStreamCallbackHandler.__init__ and the attributes LangChain's manager reads."""

    def test_unknown_schema_format_raises_value_error(self) -> None:
        """An unknown _schema_format raises ValueError, which is a SchemaFormatError."""
        with pytest.raises(ValueError, match="bogus") as info:
            LogStreamCallbackHandler(_schema_format="bogus")  # type: ignore[arg-type]
        assert isinstance(info.value, SchemaFormatError)
        assert isinstance(info.value, LogStreamError)

    @pytest.mark.parametrize("fmt", ["original", "streaming_events"])
    def test_known_schema_formats_are_accepted(self, fmt: Any) -> None:
        """Both of LangChain's schema formats construct an open handler."""
        handler = LogStreamCallbackHandler(_schema_format=fmt)
        assert handler.closed is False
        assert handler.root_id is None

    def test_bare_string_filter_rule_raises_type_error(self) -> None:
        """A filter rule given as a bare string raises TypeError (a FilterConfigError)."""
        with pytest.raises(TypeError, match="include_names") as info:
            LogStreamCallbackHandler(include_names="model")
        assert isinstance(info.value, FilterConfigError)

    @pytest.mark.parametrize(
        "attribute",
        [
            "ignore_agent",
            "ignore_chain",
            "ignore_chat_model",
            "ignore_custom_event",
            "ignore_llm",
            "ignore_retriever",
            "ignore_retry",
            "raise_error",
            "run_inline",
        ],
    )
    def test_manager_flags_are_false(self, attribute: str) -> None:
        """Every flag LangChain's callback manager reads is False, as in LangChain's handler."""
        handler = LogStreamCallbackHandler()
        assert getattr(handler, attribute) is False

    def test_log_missing_parent_is_true(self) -> None:
        """log_missing_parent is True by default, as in LangChain's tracers."""
        assert LogStreamCallbackHandler().log_missing_parent is True

    def test_constructor_keeps_the_rules_it_was_given(self) -> None:
        """The filter rules and auto_close are readable as attributes, as in LangChain."""
        handler = LogStreamCallbackHandler(
            auto_close=False, include_names=["a"], exclude_tags=["hidden"]
        )
        assert handler.auto_close is False
        assert handler.include_names == ["a"]
        assert handler.exclude_tags == ["hidden"]
        assert handler.include_types is None

    def test_copy_and_deepcopy_return_the_same_handler(self) -> None:
        """copy.copy and copy.deepcopy return the handler itself, so the log stays one."""
        handler = LogStreamCallbackHandler()
        assert copy.copy(handler) is handler
        assert copy.deepcopy(handler) is handler
        assert copy.deepcopy({"callbacks": [handler]})["callbacks"][0] is handler

    def test_copies_feed_the_same_stream(self) -> None:
        """A run started through a copy shows up in the original handler's stream."""
        handler = make_handler()
        root = start_root(handler)
        clone = copy.deepcopy(handler)
        child = uuid.uuid4()
        clone.on_chain_start({}, 1, run_id=child, parent_run_id=root, name="child")
        assert [ops[0]["path"] for ops in collect(handler)] == ["", "/logs/child"]


# -- starts ---------------------------------------------------------------------------------


class TestStart:
    """Run starts: the root state and the log entries of sub-runs."""

    def test_first_run_replaces_the_whole_document(self) -> None:
        """The first run seen becomes the root state, via one replace at path ''."""
        handler = make_handler()
        root = start_root(handler)
        assert handler.root_id == root
        assert collect(handler) == [[root_op(root)]]

    def test_child_gets_an_entry_in_original_format(self) -> None:
        """A sub-run adds /logs/<name> with tags, metadata and no inputs (original format)."""
        handler = make_handler(_schema_format="original")
        root = start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start(
            {}, {"x": 1}, run_id=child, parent_run_id=root, name="child",
            tags=["t1"], metadata={"m": 1},
        )  # fmt: skip
        expected = entry(child, "child", "chain", tags=["t1"], metadata={"m": 1})
        assert collect(handler) == [
            [root_op(root)],
            [{"op": "add", "path": "/logs/child", "value": expected}],
        ]

    def test_child_gets_an_entry_with_inputs_in_streaming_events_format(self) -> None:
        """In streaming_events format a sub-run's entry carries its inputs."""
        handler = make_handler()
        root = start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start({}, {"x": 1}, run_id=child, parent_run_id=root, name="child")
        expected = entry(child, "child", "chain", inputs={"x": 1})
        assert collect(handler)[1] == [{"op": "add", "path": "/logs/child", "value": expected}]

    def test_run_name_falls_back_to_serialized_then_unnamed(self) -> None:
        """Without name=, a run is named from serialized['name'], then serialized['id'][-1]."""
        handler = make_handler()
        root = start_root(handler)
        a, b, c = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({"name": "fromname"}, 1, run_id=a, parent_run_id=root)
        handler.on_chain_start({"id": ["pkg", "FromId"]}, 1, run_id=b, parent_run_id=root)
        handler.on_chain_start({}, 1, run_id=c, parent_run_id=root)
        assert [ops[0]["value"]["name"] for ops in collect(handler)[1:]] == [
            "fromname",
            "FromId",
            "Unnamed",
        ]

    def test_serialized_none_is_named_unnamed(self) -> None:
        """serialized=None (as LangChain passes for some runnables) names the run 'Unnamed'."""
        handler = make_handler()
        root = uuid.uuid4()
        handler.on_chain_start(None, 1, run_id=root)  # type: ignore[arg-type]
        child = uuid.uuid4()
        handler.on_llm_start(None, ["p"], run_id=child, parent_run_id=root)  # type: ignore[arg-type]
        patches = collect(handler)
        assert patches[0][0]["value"]["name"] == "Unnamed"
        assert patches[1][0]["path"] == "/logs/Unnamed"

    def test_run_type_is_taken_from_chain_start(self) -> None:
        """on_chain_start's run_type (e.g. 'prompt') becomes the entry's type."""
        handler = make_handler()
        root = start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=child, parent_run_id=root, name="p", run_type="prompt")
        assert collect(handler)[1][0]["value"]["type"] == "prompt"

    def test_metadata_mutated_after_start_does_not_change_the_streamed_entry(self) -> None:
        """The entry holds a copy of the metadata and tags the host passed."""
        handler = make_handler()
        root = start_root(handler)
        child = uuid.uuid4()
        metadata: dict[str, Any] = {"nested": {"k": [1]}}
        tags = ["a"]
        handler.on_chain_start(
            {}, 1, run_id=child, parent_run_id=root, name="c", tags=tags, metadata=metadata
        )
        metadata["nested"]["k"].append(2)
        metadata["new"] = True
        tags.append("b")
        value = collect(handler)[1][0]["value"]
        assert value["metadata"] == {"nested": {"k": [1]}}
        assert value["tags"] == ["a"]

    def test_llm_start_records_prompts(self) -> None:
        """An LLM run's entry has type 'llm' and inputs {'prompts': [...]}."""
        handler = make_handler()
        root = start_root(handler)
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["p1", "p2"], run_id=llm, parent_run_id=root, name="model")
        assert collect(handler)[1] == [
            {
                "op": "add",
                "path": "/logs/model",
                "value": entry(llm, "model", "llm", inputs={"prompts": ["p1", "p2"]}),
            }
        ]


class TestChatModelStart:
    """on_chat_model_start in both schema formats."""

    def test_raises_not_implemented_in_original_format(self) -> None:
        """In the original format chat-model starts raise NotImplementedError and emit nothing."""
        handler = make_handler(_schema_format="original")
        root = start_root(handler)
        chat = uuid.uuid4()
        with pytest.raises(NotImplementedError):
            handler.on_chat_model_start(
                {}, [[Message("hi")]], run_id=chat, parent_run_id=root, name="chat"
            )
        assert collect(handler) == [[root_op(root)]]

    def test_raises_before_becoming_the_root(self) -> None:
        """A rejected chat-model start as the first call does not take the root slot."""
        handler = make_handler(_schema_format="original")
        with pytest.raises(NotImplementedError):
            handler.on_chat_model_start({}, [[Message("hi")]], run_id=uuid.uuid4(), name="chat")
        assert handler.root_id is None
        root = start_root(handler)
        assert handler.root_id == root

    def test_adds_entry_with_messages_in_streaming_events_format(self) -> None:
        """In streaming_events format a chat-model run's entry has inputs {'messages': ...}."""
        handler = make_handler()
        root = start_root(handler)
        chat = uuid.uuid4()
        message = Message("hi")
        handler.on_chat_model_start({}, [[message]], run_id=chat, parent_run_id=root, name="chat")
        value = collect(handler)[1][0]["value"]
        assert value["type"] == "chat_model"
        assert value["inputs"] == {"messages": [[message]]}
        assert value["inputs"]["messages"][0][0] is message


# -- tokens ---------------------------------------------------------------------------------


class TestLlmNewToken:
    """on_llm_new_token: streamed_output_str and streamed_output."""

    def _llm(self, handler: LogStreamCallbackHandler) -> uuid.UUID:
        root = start_root(handler)
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        return llm

    def test_token_without_chunk_goes_to_both_lists(self) -> None:
        """A bare token is added to streamed_output_str and to streamed_output."""
        handler = make_handler()
        llm = self._llm(handler)
        handler.on_llm_new_token("Hel", run_id=llm)
        assert collect(handler)[2] == [
            {"op": "add", "path": "/logs/model/streamed_output_str/-", "value": "Hel"},
            {"op": "add", "path": "/logs/model/streamed_output/-", "value": "Hel"},
        ]

    def test_chunk_message_goes_to_streamed_output(self) -> None:
        """With a chat chunk, streamed_output gets its message and streamed_output_str the token."""
        handler = make_handler()
        llm = self._llm(handler)
        message = Message("Hel")
        handler.on_llm_new_token("Hel", chunk=Chunk(message), run_id=llm)
        ops = collect(handler)[2]
        assert ops[0] == {"op": "add", "path": "/logs/model/streamed_output_str/-", "value": "Hel"}
        assert ops[1]["path"] == "/logs/model/streamed_output/-"
        assert ops[1]["value"] is message

    def test_chunk_without_message_streams_the_token(self) -> None:
        """A chunk with no message (a text generation chunk) puts the token on streamed_output."""
        handler = make_handler()
        llm = self._llm(handler)
        handler.on_llm_new_token("Hel", chunk=TextChunk("Hel"), run_id=llm)
        assert [op["value"] for op in collect(handler)[2]] == ["Hel", "Hel"]

    def test_list_token_is_copied(self) -> None:
        """A token given as a list of content blocks is copied, so later mutation is not seen."""
        handler = make_handler()
        llm = self._llm(handler)
        token: list[Any] = [{"type": "text", "text": "Hel"}]
        handler.on_llm_new_token(token, run_id=llm)
        token[0]["text"] = "changed"
        token.append("more")
        ops = collect(handler)[2]
        assert ops[0]["value"] == [{"type": "text", "text": "Hel"}]

    def test_tokens_rebuild_in_order(self) -> None:
        """Many tokens rebuild, in order, in the entry's two lists."""
        handler = make_handler()
        llm = self._llm(handler)
        for i in range(20):
            handler.on_llm_new_token(f"t{i}", run_id=llm)
        state = rebuild(collect(handler))
        assert state["logs"]["model"]["streamed_output_str"] == [f"t{i}" for i in range(20)]
        assert state["logs"]["model"]["streamed_output"] == [f"t{i}" for i in range(20)]

    def test_token_on_a_chain_run_raises_run_type_error(self) -> None:
        """A token for a chain run raises RunTypeError, emits nothing, and the run stays open."""
        handler = make_handler()
        root = start_root(handler)
        chain = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=chain, parent_run_id=root, name="chain")
        with pytest.raises(RunTypeError) as info:
            handler.on_llm_new_token("t", run_id=chain)
        assert isinstance(info.value, LogStreamError)
        assert isinstance(info.value, TypeError)
        assert str(chain) in str(info.value)
        assert "token" in str(info.value)
        assert "chain" in str(info.value)
        handler.on_chain_end(2, run_id=chain)  # still open: ends normally
        patches = collect(handler)
        assert [ops[0]["path"] for ops in patches] == ["", "/logs/chain", "/logs/chain/inputs"]
        assert rebuild(patches)["logs"]["chain"]["streamed_output_str"] == []

    def test_token_on_the_root_is_not_logged(self) -> None:
        """A token for an LLM root run is accepted but adds no op (the root has no entry)."""
        handler = make_handler()
        root = uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=root, name="model")
        handler.on_llm_new_token("t", run_id=root)
        assert collect(handler) == [[root_op(root, "model", "llm")]]

    def test_token_on_an_excluded_run_is_not_logged(self) -> None:
        """A token for a run the filter excludes adds no op."""
        handler = make_handler(exclude_types=["llm"])
        llm = self._llm(handler)
        handler.on_llm_new_token("t", run_id=llm)
        assert len(collect(handler)) == 1


# -- ends and errors ------------------------------------------------------------------------


class TestChainEnd:
    """on_chain_end and on_chain_error: final_output and end_time in both formats."""

    def _chain(self, handler: LogStreamCallbackHandler, inputs: Any = "in") -> uuid.UUID:
        root = start_root(handler)
        chain = uuid.uuid4()
        handler.on_chain_start({}, inputs, run_id=chain, parent_run_id=root, name="c")
        return chain

    def test_end_in_original_format(self) -> None:
        """Original format: final_output is the outputs dict, end_time is set."""
        handler = make_handler(_schema_format="original")
        chain = self._chain(handler)
        handler.on_chain_end({"answer": 42}, run_id=chain)
        assert collect(handler)[2] == [
            {"op": "add", "path": "/logs/c/final_output", "value": {"answer": 42}},
            {"op": "add", "path": "/logs/c/end_time", "value": "2024-01-01T00:00:00.000+00:00"},
        ]

    def test_end_with_non_dict_output_in_original_format(self) -> None:
        """Original format: a non-dict output is wrapped as {'output': ...}."""
        handler = make_handler(_schema_format="original")
        chain = self._chain(handler)
        handler.on_chain_end("text", run_id=chain)
        assert collect(handler)[2][0]["value"] == {"output": "text"}

    def test_prompt_end_in_original_format_shows_the_bare_output(self) -> None:
        """Original format: a prompt run's final_output is what is under its 'output' key."""
        handler = make_handler(_schema_format="original")
        root = start_root(handler)
        prompt = uuid.uuid4()
        handler.on_chain_start(
            {}, 1, run_id=prompt, parent_run_id=root, name="p", run_type="prompt"
        )
        handler.on_chain_end("rendered", run_id=prompt)
        assert collect(handler)[2][0]["value"] == "rendered"

    def test_end_in_streaming_events_format(self) -> None:
        """streaming_events: inputs replaced, final_output is the bare output, end_time set."""
        handler = make_handler()
        chain = self._chain(handler)
        handler.on_chain_end({"answer": 42}, run_id=chain)
        assert collect(handler)[2] == [
            {"op": "replace", "path": "/logs/c/inputs", "value": "in"},
            {"op": "add", "path": "/logs/c/final_output", "value": {"answer": 42}},
            {"op": "add", "path": "/logs/c/end_time", "value": "2024-01-01T00:00:00.000+00:00"},
        ]

    def test_end_with_final_inputs_replaces_the_start_inputs(self) -> None:
        """streaming_events: inputs given at end replace the placeholder given at start."""
        handler = make_handler()
        chain = self._chain(handler, inputs={"input": ""})
        handler.on_chain_end("out", inputs="real input", run_id=chain)
        patches = collect(handler)
        assert patches[1][0]["value"]["inputs"] is None  # the streaming placeholder
        assert patches[2][0] == {"op": "replace", "path": "/logs/c/inputs", "value": "real input"}

    def test_error_in_original_format(self) -> None:
        """Original format: a failed chain's final_output is {} and end_time is set."""
        handler = make_handler(_schema_format="original")
        chain = self._chain(handler)
        handler.on_chain_error(ValueError("boom"), run_id=chain)
        assert collect(handler)[2] == [
            {"op": "add", "path": "/logs/c/final_output", "value": {}},
            {"op": "add", "path": "/logs/c/end_time", "value": "2024-01-01T00:00:00.000+00:00"},
        ]

    def test_error_in_streaming_events_format(self) -> None:
        """streaming_events: a failed chain's final_output is None and end_time is set."""
        handler = make_handler()
        chain = self._chain(handler)
        handler.on_chain_error(ValueError("boom"), run_id=chain)
        assert collect(handler)[2] == [
            {"op": "replace", "path": "/logs/c/inputs", "value": "in"},
            {"op": "add", "path": "/logs/c/final_output", "value": None},
            {"op": "add", "path": "/logs/c/end_time", "value": "2024-01-01T00:00:00.000+00:00"},
        ]

    def test_root_end_emits_nothing(self) -> None:
        """Ending the root adds no op: its state is not a log entry."""
        handler = make_handler()
        root = start_root(handler)
        handler.on_chain_end({"a": 1}, run_id=root)
        assert collect(handler) == [[root_op(root)]]

    def test_end_twice_raises_unknown_run_error(self) -> None:
        """A second end of the same run raises UnknownRunError and emits nothing more."""
        handler = make_handler()
        chain = self._chain(handler)
        handler.on_chain_end(1, run_id=chain)
        with pytest.raises(UnknownRunError, match="chain end"):
            handler.on_chain_end(1, run_id=chain)
        assert len(collect(handler)) == 3

    def test_outputs_mutated_after_end_do_not_change_the_stream(self) -> None:
        """final_output holds a copy of what the host reported."""
        handler = make_handler()
        chain = self._chain(handler)
        outputs: dict[str, Any] = {"items": [1]}
        handler.on_chain_end(outputs, run_id=chain)
        outputs["items"].append(2)
        assert collect(handler)[2][1]["value"] == {"items": [1]}


class TestToolCallbacks:
    """on_tool_start, on_tool_end and on_tool_error."""

    def test_tool_run_in_original_format(self) -> None:
        """Original format: tool entry without inputs; final_output is {'output': ...}."""
        handler = make_handler(_schema_format="original")
        root = start_root(handler)
        tool = uuid.uuid4()
        handler.on_tool_start({}, "2+2", run_id=tool, parent_run_id=root, name="calc")
        handler.on_tool_end("4", run_id=tool)
        patches = collect(handler)
        assert patches[1] == [
            {"op": "add", "path": "/logs/calc", "value": entry(tool, "calc", "tool")}
        ]
        assert patches[2][0] == {
            "op": "add",
            "path": "/logs/calc/final_output",
            "value": {"output": "4"},
        }

    def test_tool_run_in_streaming_events_format(self) -> None:
        """streaming_events: inputs are the structured inputs, final_output the bare output."""
        handler = make_handler()
        root = start_root(handler)
        tool = uuid.uuid4()
        handler.on_tool_start(
            {}, "2+2", run_id=tool, parent_run_id=root, name="calc", inputs={"expr": "2+2"}
        )
        handler.on_tool_end("4", run_id=tool)
        patches = collect(handler)
        assert patches[1][0]["value"]["inputs"] == {"expr": "2+2"}
        assert patches[2] == [
            {"op": "replace", "path": "/logs/calc/inputs", "value": {"expr": "2+2"}},
            {"op": "add", "path": "/logs/calc/final_output", "value": "4"},
            {"op": "add", "path": "/logs/calc/end_time", "value": "2024-01-01T00:00:00.000+00:00"},
        ]

    def test_tool_error(self) -> None:
        """A failed tool gets final_output None (streaming_events) and its end_time."""
        handler = make_handler()
        root = start_root(handler)
        tool = uuid.uuid4()
        handler.on_tool_start({}, "x", run_id=tool, parent_run_id=root, name="calc")
        handler.on_tool_error(RuntimeError("no"), run_id=tool)
        ops = collect(handler)[2]
        assert ops[1:] == [
            {"op": "add", "path": "/logs/calc/final_output", "value": None},
            {"op": "add", "path": "/logs/calc/end_time", "value": "2024-01-01T00:00:00.000+00:00"},
        ]

    def test_tool_end_on_an_llm_run_raises_run_type_error(self) -> None:
        """on_tool_end for an LLM run raises RunTypeError, emits nothing, and the run stays open."""
        handler = make_handler()
        root = start_root(handler)
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        with pytest.raises(RunTypeError, match="tool end"):
            handler.on_tool_end("x", run_id=llm)
        handler.on_llm_new_token("still open", run_id=llm)
        patches = collect(handler)
        assert len(patches) == 3
        assert patches[2][0]["value"] == "still open"


class TestRetrieverCallbacks:
    """on_retriever_start, on_retriever_end and on_retriever_error."""

    def test_retriever_run(self) -> None:
        """A retriever is named 'Retriever' by default; inputs/final_output keep their envelopes."""
        handler = make_handler()
        root = start_root(handler)
        retriever = uuid.uuid4()
        doc = Document("text")
        handler.on_retriever_start({}, "query", run_id=retriever, parent_run_id=root)
        handler.on_retriever_end([doc], run_id=retriever)
        patches = collect(handler)
        assert patches[1] == [
            {
                "op": "add",
                "path": "/logs/Retriever",
                "value": entry(retriever, "Retriever", "retriever", inputs={"query": "query"}),
            }
        ]
        final = patches[2][1]
        assert final["path"] == "/logs/Retriever/final_output"
        assert final["value"] == {"documents": [doc]}
        assert final["value"]["documents"][0] is doc

    def test_retriever_error(self) -> None:
        """A failed retriever gets final_output {} and its end_time."""
        handler = make_handler(_schema_format="original")
        root = start_root(handler)
        retriever = uuid.uuid4()
        handler.on_retriever_start({}, "q", run_id=retriever, parent_run_id=root, name="docs")
        handler.on_retriever_error(RuntimeError("down"), run_id=retriever)
        assert collect(handler)[2] == [
            {"op": "add", "path": "/logs/docs/final_output", "value": {}},
            {"op": "add", "path": "/logs/docs/end_time", "value": "2024-01-01T00:00:00.000+00:00"},
        ]


class TestLlmEnd:
    """on_llm_end and on_llm_error with LLMResult-like responses."""

    def _llm(self, handler: LogStreamCallbackHandler) -> uuid.UUID:
        root = start_root(handler)
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        return llm

    def test_end_with_a_duck_typed_llm_result(self) -> None:
        """An LLMResult-like response is dumped; a chat generation keeps its message object."""
        handler = make_handler()
        llm = self._llm(handler)
        message = Message("hi")
        response = FakeLLMResult(
            [[ChatGeneration("hi", message), Generation("plain")]], llm_output={"usage": 3}
        )
        handler.on_llm_end(response, run_id=llm)
        ops = collect(handler)[2]
        assert ops[0] == {
            "op": "replace",
            "path": "/logs/model/inputs",
            "value": {"prompts": ["p"]},
        }
        final = ops[1]
        assert final["path"] == "/logs/model/final_output"
        assert final["value"] == {
            "generations": [
                [
                    {
                        "text": "hi",
                        "generation_info": None,
                        "message": message,
                        "type": "ChatGeneration",
                    },
                    {"text": "plain", "generation_info": None, "type": "Generation"},
                ]
            ],
            "llm_output": {"usage": 3},
            "run": None,
            "type": "LLMResult",
        }
        assert final["value"]["generations"][0][0]["message"] is message
        assert ops[2] == {
            "op": "add",
            "path": "/logs/model/end_time",
            "value": "2024-01-01T00:00:00.000+00:00",
        }

    def test_end_with_a_mapping(self) -> None:
        """A plain mapping response becomes final_output as is."""
        handler = make_handler(_schema_format="original")
        llm = self._llm(handler)
        handler.on_llm_end({"generations": [[{"text": "x"}]]}, run_id=llm)
        assert collect(handler)[2][0] == {
            "op": "add",
            "path": "/logs/model/final_output",
            "value": {"generations": [[{"text": "x"}]]},
        }

    def test_end_with_generations_but_no_model_dump(self) -> None:
        """A response with generations but no model_dump() shows generations and llm_output."""
        handler = make_handler(_schema_format="original")
        llm = self._llm(handler)
        gens = [[{"text": "x"}]]
        handler.on_llm_end(SimpleNamespace(generations=gens, llm_output=None), run_id=llm)
        assert collect(handler)[2][0]["value"] == {"generations": gens, "llm_output": None}

    def test_error_with_response(self) -> None:
        """on_llm_error with response= shows the partial response as final_output."""
        handler = make_handler()
        llm = self._llm(handler)
        response = FakeLLMResult([[Generation("partial")]])
        handler.on_llm_error(RuntimeError("cut"), run_id=llm, response=response)
        final = collect(handler)[2][1]
        assert final["path"] == "/logs/model/final_output"
        assert final["value"]["generations"] == [
            [{"text": "partial", "generation_info": None, "type": "Generation"}]
        ]

    def test_error_without_response(self) -> None:
        """on_llm_error without a response shows final_output {} and the end_time."""
        handler = make_handler()
        llm = self._llm(handler)
        handler.on_llm_error(RuntimeError("cut"), run_id=llm)
        assert collect(handler)[2][1:] == [
            {"op": "add", "path": "/logs/model/final_output", "value": {}},
            {"op": "add", "path": "/logs/model/end_time", "value": "2024-01-01T00:00:00.000+00:00"},
        ]

    def test_llm_end_on_a_chain_run_raises_run_type_error(self) -> None:
        """on_llm_end for a chain run raises RunTypeError and emits nothing."""
        handler = make_handler()
        root = start_root(handler)
        with pytest.raises(RunTypeError, match="llm end"):
            handler.on_llm_end({"generations": []}, run_id=root)
        assert handler.closed is False
        assert collect(handler) == [[root_op(root)]]


# -- misuse ---------------------------------------------------------------------------------

UNKNOWN_RUN_CALLS: list[tuple[str, Callable[[LogStreamCallbackHandler, uuid.UUID], None]]] = [
    ("chain end", lambda h, r: h.on_chain_end({"a": 1}, run_id=r)),
    ("chain error", lambda h, r: h.on_chain_error(ValueError("x"), run_id=r)),
    ("llm end", lambda h, r: h.on_llm_end({"generations": []}, run_id=r)),
    ("llm error", lambda h, r: h.on_llm_error(ValueError("x"), run_id=r)),
    ("token", lambda h, r: h.on_llm_new_token("t", run_id=r)),
    ("tool end", lambda h, r: h.on_tool_end("x", run_id=r)),
    ("tool error", lambda h, r: h.on_tool_error(ValueError("x"), run_id=r)),
    ("retriever end", lambda h, r: h.on_retriever_end([], run_id=r)),
    ("retriever error", lambda h, r: h.on_retriever_error(ValueError("x"), run_id=r)),
    (
        "retry",
        lambda h, r: h.on_retry(
            SimpleNamespace(idle_for=1.0, attempt_number=2, outcome=None), run_id=r
        ),
    ),
]


class TestUnknownRun:
    """Events naming a run id that is not open."""

    @pytest.mark.parametrize(
        ("event", "call"), UNKNOWN_RUN_CALLS, ids=[e for e, _ in UNKNOWN_RUN_CALLS]
    )
    def test_unknown_run_raises_and_emits_nothing(
        self, event: str, call: Callable[[LogStreamCallbackHandler, uuid.UUID], None]
    ) -> None:
        """An unknown id raises UnknownRunError naming the id and event; nothing is sent."""
        handler = make_handler()
        root = start_root(handler)
        unknown = uuid.uuid4()
        with pytest.raises(UnknownRunError) as info:
            call(handler, unknown)
        error = info.value
        assert isinstance(error, LogStreamError)
        assert isinstance(error, KeyError)
        assert error.run_id == unknown
        assert error.event == event
        assert str(unknown) in str(error)
        assert event in str(error)
        assert handler.closed is False
        assert collect(handler) == [[root_op(root)]]

    def test_unknown_run_leaves_open_runs_usable(self) -> None:
        """After an unknown-run error, open runs stream and end exactly as before."""
        handler = make_handler()
        root = start_root(handler)
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        with pytest.raises(UnknownRunError):
            handler.on_llm_new_token("t", run_id=uuid.uuid4())
        handler.on_llm_new_token("ok", run_id=llm)
        handler.on_llm_end({"generations": []}, run_id=llm)
        state = rebuild(collect(handler))
        assert state["logs"]["model"]["streamed_output_str"] == ["ok"]
        assert state["logs"]["model"]["final_output"] == {"generations": []}

    def test_end_before_any_start_raises(self) -> None:
        """An end on a fresh handler raises UnknownRunError and leaves no root."""
        handler = make_handler()
        with pytest.raises(UnknownRunError):
            handler.on_chain_end(1, run_id=uuid.uuid4())
        assert handler.root_id is None
        assert collect(handler) == []


class TestDuplicateStart:
    """A start for a run id that is already open."""

    def test_duplicate_child_start_raises_and_emits_nothing(self) -> None:
        """A second start of an open id raises DuplicateRunError; the first run is untouched."""
        handler = make_handler()
        root = start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start({}, "a", run_id=child, parent_run_id=root, name="first")
        with pytest.raises(DuplicateRunError) as info:
            handler.on_llm_start({}, ["p"], run_id=child, parent_run_id=root, name="second")
        assert isinstance(info.value, LogStreamError)
        assert isinstance(info.value, ValueError)
        assert info.value.run_id == child
        assert str(child) in str(info.value)
        assert "'first'" in str(info.value)
        handler.on_chain_end("out", run_id=child)  # still the chain run named 'first'
        patches = collect(handler)
        assert [ops[0]["path"] for ops in patches] == ["", "/logs/first", "/logs/first/inputs"]
        state = rebuild(patches)
        assert set(state["logs"]) == {"first"}
        assert state["logs"]["first"]["final_output"] == "out"

    def test_duplicate_root_start_raises_and_emits_nothing(self) -> None:
        """Starting the open root's id again raises and does not replace the root state."""
        handler = make_handler()
        root = start_root(handler)
        with pytest.raises(DuplicateRunError):
            handler.on_chain_start({}, 1, run_id=root, name="other")
        assert handler.root_id == root
        assert collect(handler) == [[root_op(root)]]


class TestMissingParent:
    """Runs whose parent id was never seen."""

    def test_orphan_is_a_log_entry_and_the_root_stays(self) -> None:
        """A run with an unseen parent still gets an entry; the first run stays the root."""
        handler = make_handler()
        root = start_root(handler)
        orphan, grandchild = uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=orphan, parent_run_id=uuid.uuid4(), name="orphan")
        handler.on_llm_start({}, ["p"], run_id=grandchild, parent_run_id=orphan, name="model")
        handler.on_llm_end({"generations": []}, run_id=grandchild)
        handler.on_chain_end(2, run_id=orphan)
        assert handler.root_id == root
        state = rebuild(collect(handler))
        assert state["id"] == str(root)
        assert set(state["logs"]) == {"orphan", "model"}
        assert state["logs"]["orphan"]["final_output"] == 2

    def test_ending_an_orphan_does_not_auto_close(self) -> None:
        """Only the handler's root closes the stream, not a run the tree treats as a root."""
        handler = make_handler(auto_close=True)
        start_root(handler)
        orphan = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=orphan, parent_run_id=uuid.uuid4(), name="orphan")
        handler.on_chain_end(2, run_id=orphan)
        assert handler.closed is False

    def test_first_run_with_an_unseen_parent_becomes_the_root(self) -> None:
        """The first run seen is the root even if it names a parent."""
        handler = make_handler()
        first = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=first, parent_run_id=uuid.uuid4(), name="first")
        assert handler.root_id == first
        assert collect(handler) == [[root_op(first, "first")]]


# -- closing --------------------------------------------------------------------------------


class TestAutoClose:
    """auto_close: the stream closes when the root run ends."""

    @pytest.mark.parametrize("how", ["end", "error"])
    def test_root_end_closes_when_auto_close(self, how: str) -> None:
        """With auto_close=True, ending or failing the root closes the stream."""
        handler = make_handler(auto_close=True)
        root = start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=child, parent_run_id=root, name="child")
        handler.on_chain_end(2, run_id=child)
        assert handler.closed is False
        if how == "end":
            handler.on_chain_end({"a": 1}, run_id=root)
        else:
            handler.on_chain_error(ValueError("x"), run_id=root)
        assert handler.closed is True
        patches = [patch.ops for patch in handler]  # ends without an explicit close
        assert [ops[0]["path"] for ops in patches] == ["", "/logs/child", "/logs/child/inputs"]

    def test_auto_close_is_the_default(self) -> None:
        """A handler built with no arguments closes when its root ends."""
        handler = LogStreamCallbackHandler()
        root = start_root(handler)
        handler.on_chain_end(1, run_id=root)
        assert handler.closed is True

    def test_root_end_does_not_close_without_auto_close(self) -> None:
        """With auto_close=False, ending the root leaves the stream open."""
        handler = make_handler(auto_close=False)
        root = start_root(handler)
        handler.on_chain_end(1, run_id=root)
        assert handler.closed is False
        assert handler.send({"op": "add", "path": "/final_output", "value": 1}) is True

    def test_child_end_does_not_close(self) -> None:
        """Ending a non-root run never closes the stream."""
        handler = make_handler(auto_close=True)
        root = start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=child, parent_run_id=root, name="child")
        handler.on_chain_end(2, run_id=child)
        assert handler.closed is False


class TestClose:
    """close(), send() and callbacks after the stream is closed."""

    def test_send_after_close_returns_false(self) -> None:
        """send() queues a patch while open and returns False once closed."""
        handler = make_handler()
        assert handler.send({"op": "replace", "path": "", "value": {}}) is True
        assert handler.close() is True
        assert handler.close() is False
        assert handler.send({"op": "add", "path": "/x", "value": 1}) is False
        assert [patch.ops for patch in handler] == [[{"op": "replace", "path": "", "value": {}}]]

    def test_callbacks_after_close_are_noops_and_earlier_patches_are_delivered(self) -> None:
        """After close, callbacks do nothing and raise nothing; earlier patches still arrive."""
        handler = make_handler()
        root = start_root(handler)
        llm, tool = uuid.uuid4(), uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        handler.on_llm_new_token("before", run_id=llm)
        handler.on_tool_start({}, "x", run_id=tool, parent_run_id=root, name="tool")
        handler.close()
        unknown = uuid.uuid4()
        new = uuid.uuid4()
        # valid calls on open runs, calls that would be errors when open, and new starts
        handler.on_llm_new_token("after", run_id=llm)
        handler.on_llm_end({"generations": []}, run_id=llm)
        handler.on_tool_end("x", run_id=tool)
        handler.on_chain_end(1, run_id=root)
        handler.on_llm_new_token("t", run_id=unknown)
        handler.on_llm_new_token("t", run_id=tool)
        handler.on_chain_end(1, run_id=unknown)
        handler.on_chain_error(ValueError("x"), run_id=unknown)
        handler.on_llm_error(ValueError("x"), run_id=unknown)
        handler.on_tool_error(ValueError("x"), run_id=unknown)
        handler.on_retriever_end([], run_id=unknown)
        handler.on_retriever_error(ValueError("x"), run_id=unknown)
        handler.on_retry(
            SimpleNamespace(idle_for=0, attempt_number=1, outcome=None), run_id=unknown
        )
        handler.on_custom_event("evt", {"a": 1}, run_id=unknown)
        handler.on_chain_start({}, 1, run_id=new, parent_run_id=root, name="late")
        handler.on_chain_start({}, 1, run_id=root, name="dup")
        handler.on_llm_start({}, ["p"], run_id=uuid.uuid4(), parent_run_id=root, name="late")
        handler.on_chat_model_start({}, [[]], run_id=uuid.uuid4(), parent_run_id=root, name="late")
        handler.on_tool_start({}, "x", run_id=uuid.uuid4(), parent_run_id=root, name="late")
        handler.on_retriever_start({}, "q", run_id=uuid.uuid4(), parent_run_id=root, name="late")
        assert list(handler.tap_output_iter(llm, iter([1, 2]))) == [1, 2]
        patches = [patch.ops for patch in handler]
        assert [ops[0]["path"] for ops in patches] == [
            "",
            "/logs/model",
            "/logs/model/streamed_output_str/-",
            "/logs/tool",
        ]
        state = rebuild(patches)
        assert state["logs"]["model"]["streamed_output_str"] == ["before"]
        assert state["logs"]["model"]["end_time"] is None

    def test_llm_end_and_error_after_close_do_not_touch_the_response(self) -> None:
        """After close, on_llm_end/on_llm_error raise nothing even if dumping the response would."""

        class UndumpableResult:
            generations: ClassVar[list[list[Any]]] = []

            def model_dump(self) -> dict[str, Any]:
                raise RuntimeError("model_dump must not be called after close")

        handler = make_handler()
        root = start_root(handler)
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        handler.close()
        handler.on_llm_end(UndumpableResult(), run_id=llm)
        handler.on_llm_error(ValueError("x"), run_id=llm, response=UndumpableResult())
        assert len([patch for patch in handler]) == 2

    def test_consumer_in_another_thread_gets_everything_sent_before_close(self) -> None:
        """A blocked consumer thread receives every patch sent before close, then ends."""
        handler = make_handler()
        received: list[Ops] = []
        done = threading.Event()

        def consume() -> None:
            for patch in handler:
                received.append(patch.ops)
            done.set()

        thread = threading.Thread(target=consume, daemon=True)
        thread.start()
        root = start_root(handler)
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        for i in range(50):
            handler.on_llm_new_token(f"t{i}", run_id=llm)
        handler.close()
        handler.on_llm_new_token("after", run_id=llm)
        assert done.wait(TIMEOUT)
        thread.join(TIMEOUT)
        assert len(received) == 52
        assert rebuild(received)["logs"]["model"]["streamed_output_str"] == [
            f"t{i}" for i in range(50)
        ]


# -- filters and taps -----------------------------------------------------------------------


class TestIncludeRun:
    """include_run with duck-typed runs."""

    def test_include_run_follows_the_filter(self) -> None:
        """include_run answers with the include/exclude rules for a run-like object."""
        handler = make_handler(include_types=["llm"], exclude_tags=["hidden"])
        start_root(handler)

        def run(run_type: str, tags: Optional[list[str]]) -> SimpleNamespace:
            return SimpleNamespace(id=uuid.uuid4(), name="n", run_type=run_type, tags=tags)

        assert handler.include_run(run("llm", None)) is True
        assert handler.include_run(run("llm", ["visible"])) is True
        assert handler.include_run(run("llm", ["hidden"])) is False
        assert handler.include_run(run("chain", [])) is False

    def test_include_run_is_false_for_the_root(self) -> None:
        """The root run is never a log entry, whatever the rules say."""
        handler = make_handler()
        root = start_root(handler)
        assert (
            handler.include_run(SimpleNamespace(id=root, name="root", run_type="chain", tags=[]))
            is False
        )
        other = SimpleNamespace(id=uuid.uuid4(), name="root", run_type="chain", tags=[])
        assert handler.include_run(other) is True

    def test_filtered_out_run_gets_no_entry(self) -> None:
        """A run the rules exclude gets no ops for its start, tokens or end."""
        handler = make_handler(include_names=["keep"])
        root = start_root(handler)
        keep, drop = uuid.uuid4(), uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=drop, parent_run_id=root, name="drop")
        handler.on_llm_start({}, ["p"], run_id=keep, parent_run_id=root, name="keep")
        handler.on_llm_new_token("t", run_id=drop)
        handler.on_llm_end({"generations": []}, run_id=drop)
        state = rebuild(collect(handler))
        assert set(state["logs"]) == {"keep"}


class TestTapOutput:
    """tap_output_iter and tap_output_aiter."""

    def _child(self, handler: LogStreamCallbackHandler, name: str = "child") -> uuid.UUID:
        root = handler.root_id or start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=child, parent_run_id=root, name=name)
        return child

    def test_tap_iter_records_chunks_of_an_included_run(self) -> None:
        """Each chunk is yielded to the host and added to the run's streamed_output."""
        handler = make_handler()
        child = self._child(handler)
        assert list(handler.tap_output_iter(child, iter(["a", "b", 3]))) == ["a", "b", 3]
        patches = collect(handler)
        assert patches[2:] == [
            [{"op": "add", "path": "/logs/child/streamed_output/-", "value": v}]
            for v in ["a", "b", 3]
        ]

    def test_tap_aiter_records_chunks_of_an_included_run(self) -> None:
        """The async tap yields every chunk and adds each to streamed_output."""
        handler = make_handler()
        child = self._child(handler)

        async def source() -> AsyncIterator[str]:
            for chunk in ["a", "b"]:
                yield chunk

        async def main() -> list[str]:
            return [c async for c in handler.tap_output_aiter(child, source())]

        assert asyncio.run(main()) == ["a", "b"]
        assert rebuild(collect(handler))["logs"]["child"]["streamed_output"] == ["a", "b"]

    def test_tap_copies_mutable_chunks(self) -> None:
        """A dict chunk is recorded as a copy; the host still gets its own object."""
        handler = make_handler()
        child = self._child(handler)
        chunk: dict[str, Any] = {"k": [1]}
        out = list(handler.tap_output_iter(child, iter([chunk])))
        assert out[0] is chunk
        chunk["k"].append(2)
        assert collect(handler)[2][0]["value"] == {"k": [1]}

    def test_tap_passes_root_chunks_through_unrecorded(self) -> None:
        """Chunks of the root run reach the host and add no ops."""
        handler = make_handler()
        root = start_root(handler)
        assert list(handler.tap_output_iter(root, iter([1, 2]))) == [1, 2]
        assert collect(handler) == [[root_op(root)]]

    def test_tap_passes_unknown_run_chunks_through_unrecorded(self) -> None:
        """Chunks of an unknown run id reach the host, add no ops and raise nothing."""
        handler = make_handler()
        start_root(handler)
        assert list(handler.tap_output_iter(uuid.uuid4(), iter([1, 2]))) == [1, 2]
        assert len(collect(handler)) == 1

    def test_tap_passes_excluded_run_chunks_through_unrecorded(self) -> None:
        """Chunks of a run the filter excludes reach the host and add no ops."""
        handler = make_handler(exclude_names=["hidden"])
        hidden = self._child(handler, "hidden")
        assert list(handler.tap_output_iter(hidden, iter([1, 2]))) == [1, 2]
        patches = collect(handler)
        assert all("streamed_output" not in ops[0]["path"] for ops in patches)

    def test_tap_of_an_ended_run_still_lands_in_its_entry(self) -> None:
        """Chunks tapped after a run ended are added to its entry, as in LangChain."""
        handler = make_handler()
        ended = self._child(handler, "ended")
        handler.on_chain_end(1, run_id=ended)
        assert list(handler.tap_output_iter(ended, iter([2]))) == [2]
        patches = collect(handler)
        assert patches[-1] == [{"op": "add", "path": "/logs/ended/streamed_output/-", "value": 2}]
        assert rebuild(patches)["logs"]["ended"]["streamed_output"] == [2]

    def test_tap_after_the_root_ended_passes_root_chunks_through(self) -> None:
        """Root chunks tapped after the root ended (auto_close off) still add no ops."""
        handler = make_handler()
        root = start_root(handler)
        handler.on_chain_end(1, run_id=root)
        assert list(handler.tap_output_iter(root, iter([1]))) == [1]
        assert collect(handler) == [[root_op(root)]]

    def test_tap_after_close_passes_chunks_through(self) -> None:
        """After close, the tap still yields every chunk (and records none)."""
        handler = make_handler()
        child = self._child(handler)
        handler.close()
        assert list(handler.tap_output_iter(child, iter(range(5)))) == [0, 1, 2, 3, 4]

    def test_tap_iter_is_not_cut_short_by_a_close_mid_stream(self) -> None:
        """A close while the host streams does not stop the host's iterator early."""
        handler = make_handler()
        child = self._child(handler)

        def source() -> Iterator[int]:
            yield 0
            handler.close()
            yield 1
            yield 2

        assert list(handler.tap_output_iter(child, source())) == [0, 1, 2]
        patches = [patch.ops for patch in handler]
        assert patches[-1] == [{"op": "add", "path": "/logs/child/streamed_output/-", "value": 0}]

    def test_tap_aiter_is_not_cut_short_by_a_close_mid_stream(self) -> None:
        """The async tap also yields every chunk when the stream closes mid-way."""
        handler = make_handler()
        child = self._child(handler)

        async def source() -> AsyncIterator[int]:
            yield 0
            handler.close()
            yield 1
            yield 2

        async def main() -> list[int]:
            return [c async for c in handler.tap_output_aiter(child, source())]

        assert asyncio.run(main()) == [0, 1, 2]
        assert rebuild([p.ops for p in handler])["logs"]["child"]["streamed_output"] == [0]

    def test_tap_aiter_passes_root_and_unknown_through(self) -> None:
        """The async tap passes root and unknown-run chunks through without ops."""
        handler = make_handler()
        root = start_root(handler)

        async def source() -> AsyncIterator[int]:
            yield 1
            yield 2

        async def main(run_id: uuid.UUID) -> list[int]:
            return [c async for c in handler.tap_output_aiter(run_id, source())]

        assert asyncio.run(main(root)) == [1, 2]
        assert asyncio.run(main(uuid.uuid4())) == [1, 2]
        assert collect(handler) == [[root_op(root)]]


# -- events that add no ops -----------------------------------------------------------------


class TestSilentEvents:
    """Custom events, text, agent actions and retries add no ops."""

    def test_silent_events_emit_nothing(self) -> None:
        """on_custom_event, on_text, on_agent_action/finish and on_retry emit no patch."""
        handler = make_handler()
        root = start_root(handler)
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        handler.on_custom_event("progress", {"pct": 50}, run_id=llm)
        handler.on_custom_event("progress", {"pct": 50}, run_id=uuid.uuid4())  # unknown: ignored
        handler.on_text("some text", run_id=llm)
        handler.on_agent_action(SimpleNamespace(tool="t", tool_input="x"), run_id=llm)
        handler.on_agent_finish(SimpleNamespace(return_values={}), run_id=llm)
        handler.on_stream_event({"event": "x"}, run_id=llm)
        handler.on_retry(SimpleNamespace(idle_for=0.5, attempt_number=1, outcome=None), run_id=llm)
        assert [ops[0]["path"] for ops in collect(handler)] == ["", "/logs/model"]

    def test_retry_with_failed_and_successful_outcomes_emits_nothing(self) -> None:
        """on_retry accepts tenacity-like states with failed or successful outcomes."""
        handler = make_handler()
        root = start_root(handler)
        failed = SimpleNamespace(failed=True, exception=lambda: ValueError("boom"))
        succeeded = SimpleNamespace(failed=False, result=lambda: 42)
        for outcome in (failed, succeeded):
            state = SimpleNamespace(idle_for=1.0, attempt_number=2, outcome=outcome)
            handler.on_retry(state, run_id=root)
        assert collect(handler) == [[root_op(root)]]

    def test_retry_on_an_unknown_run_raises(self) -> None:
        """on_retry for an unknown id raises UnknownRunError naming the 'retry' event."""
        handler = make_handler()
        start_root(handler)
        unknown = uuid.uuid4()
        with pytest.raises(UnknownRunError, match="retry") as info:
            handler.on_retry(
                SimpleNamespace(idle_for=0, attempt_number=1, outcome=None), run_id=unknown
            )
        assert info.value.run_id == unknown
        assert len(collect(handler)) == 1


# -- time -----------------------------------------------------------------------------------


class TestClock:
    """Times come from the injected clock and are written to the millisecond."""

    def test_injected_clock_gives_exact_times(self) -> None:
        """start_time and end_time are the clock's readings, ISO with milliseconds and offset."""
        handler = make_handler(clock=StepClock())
        root = start_root(handler)  # reads 00:00:00.000
        child = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=child, parent_run_id=root, name="c")  # .250
        handler.on_chain_end(2, run_id=child)  # .500
        entry_ = rebuild(collect(handler))["logs"]["c"]
        assert entry_["start_time"] == "2024-01-01T00:00:00.250+00:00"
        assert entry_["end_time"] == "2024-01-01T00:00:00.500+00:00"

    def test_times_are_truncated_to_milliseconds(self) -> None:
        """Microseconds are dropped, not rounded, as datetime.isoformat(timespec='milliseconds')."""
        times = iter(
            [
                datetime(2024, 5, 6, 7, 8, 9, 999, tzinfo=timezone.utc),
                datetime(2024, 5, 6, 7, 8, 9, 123999, tzinfo=timezone.utc),
                datetime(2024, 5, 6, 7, 8, 10, 0, tzinfo=timezone.utc),
            ]
        )
        handler = make_handler(clock=lambda: next(times))
        root = start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=child, parent_run_id=root, name="c")
        handler.on_chain_end(2, run_id=child)
        entry_ = rebuild(collect(handler))["logs"]["c"]
        assert entry_["start_time"] == "2024-05-06T07:08:09.123+00:00"
        assert entry_["end_time"] == "2024-05-06T07:08:10.000+00:00"

    def test_clock_offset_is_kept(self) -> None:
        """A clock in another time zone keeps its offset in the strings."""
        tz = timezone(timedelta(hours=2))
        handler = make_handler(clock=StepClock(datetime(2024, 1, 1, 12, tzinfo=tz)))
        root = start_root(handler)
        child = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=child, parent_run_id=root, name="c")
        assert collect(handler)[1][0]["value"]["start_time"] == "2024-01-01T12:00:00.250+02:00"


# -- log keys -------------------------------------------------------------------------------


class TestLogKeys:
    """Sibling runs with clashing or JSON-Pointer-special names."""

    NAMES: ClassVar[list[str]] = ["x", "x", "x:2", "a/b", "a~1", "~", "/", ""]

    @pytest.mark.parametrize("fmt", ["original", "streaming_events"])
    def test_every_sibling_survives_under_its_own_key(self, fmt: Any) -> None:
        """Each sibling lands under a unique key and the stream applies cleanly with jsonpatch."""
        handler = make_handler(_schema_format=fmt)
        root = start_root(handler)
        ids = []
        for name in self.NAMES:
            run_id = uuid.uuid4()
            ids.append(run_id)
            handler.on_llm_start({}, ["p"], run_id=run_id, parent_run_id=root, name=name)
            handler.on_llm_new_token(f"tok-{len(ids)}", run_id=run_id)
        for run_id in ids:
            handler.on_llm_end({"generations": [], "who": str(run_id)}, run_id=run_id)
        state = rebuild(collect(handler))
        expected_keys = ["x", "x:2", "x:2:2", "a/b", "a~1", "~", "/", ""]
        assert sorted(state["logs"]) == sorted(expected_keys)
        for n, (key, name, run_id) in enumerate(zip(expected_keys, self.NAMES, ids), start=1):
            log = state["logs"][key]
            assert log["name"] == name
            assert log["id"] == str(run_id)
            assert log["streamed_output_str"] == [f"tok-{n}"]
            assert log["final_output"]["who"] == str(run_id)


# -- concurrency ----------------------------------------------------------------------------

THREADS, RUNS, TOKENS = 8, 60, 40


def produce_runs(
    handler: LogStreamCallbackHandler, root: uuid.UUID, go: threading.Event
) -> list[str]:
    """Start, stream and end RUNS runs under ``root``; return their ids."""
    assert go.wait(TIMEOUT)
    ids = []
    for _ in range(RUNS):
        run_id = uuid.uuid4()
        ids.append(str(run_id))
        handler.on_llm_start({}, ["p"], run_id=run_id, parent_run_id=root, name="worker")
        for i in range(TOKENS):
            handler.on_llm_new_token(f"t{i}", run_id=run_id)
        handler.on_llm_end({"generations": []}, run_id=run_id)
    return ids


def run_producers(handler: LogStreamCallbackHandler, root: uuid.UUID) -> list[str]:
    """Run THREADS producer threads to completion and return every run id they made."""
    go = threading.Event()
    results: list[list[str]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def main(k: int) -> None:
        try:
            results[k] = produce_runs(handler, root, go)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=main, args=(k,), daemon=True) for k in range(THREADS)]
    for thread in threads:
        thread.start()
    go.set()
    for thread in threads:
        thread.join(TIMEOUT)
        assert not thread.is_alive(), "a producer thread is stuck"
    assert errors == []
    return [run_id for ids in results for run_id in ids]


def check_rebuilt(patches: list[Ops], root: uuid.UUID, run_ids: list[str]) -> None:
    """Assert the rebuilt state holds every run, each with all its tokens in order."""
    state = rebuild(patches)
    assert state["id"] == str(root)
    by_id = {log["id"]: log for log in state["logs"].values()}
    assert len(state["logs"]) == THREADS * RUNS
    assert sorted(by_id) == sorted(run_ids)
    tokens = [f"t{i}" for i in range(TOKENS)]
    for log in by_id.values():
        assert log["streamed_output_str"] == tokens
        assert log["streamed_output"] == tokens
        assert log["final_output"] == {"generations": []}
        assert log["end_time"] is not None
    assert sum(len(ops) for ops in patches) == 1 + THREADS * RUNS * (1 + 2 * TOKENS + 3)


class TestConcurrency:
    """Many producer threads, one consumer in another thread or another thread's loop."""

    def test_sync_consumer_thread_sees_every_token_in_order(self) -> None:
        """8 threads x 60 runs x 40 tokens rebuild exactly when read with a for loop elsewhere."""
        handler = LogStreamCallbackHandler()  # auto_close: ending the root ends the consumer
        received: list[Ops] = []
        errors: list[BaseException] = []

        def consume() -> None:
            try:
                for patch in handler:
                    received.append(patch.ops)
            except BaseException as exc:
                errors.append(exc)

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        root = start_root(handler)
        run_ids = run_producers(handler, root)
        handler.on_chain_end({"done": True}, run_id=root)
        consumer.join(TIMEOUT)
        assert not consumer.is_alive(), "the consumer did not see the stream end"
        assert errors == []
        check_rebuilt(received, root, run_ids)

    def test_async_consumer_in_a_later_loop_in_another_thread(self) -> None:
        """The same load rebuilds when read by async for in a loop made after the handler."""
        handler = LogStreamCallbackHandler()  # built before any event loop exists
        parked = threading.Event()
        box: dict[str, Any] = {}

        async def read_all() -> list[Ops]:
            return [patch.ops async for patch in handler]

        async def main() -> list[Ops]:
            task = asyncio.ensure_future(read_all())
            await asyncio.sleep(0)  # the reader parks on the empty stream
            parked.set()
            return await asyncio.wait_for(task, TIMEOUT)

        def consume() -> None:
            try:
                box["patches"] = asyncio.run(main())
            except BaseException as exc:
                box["error"] = exc

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        assert parked.wait(TIMEOUT)
        root = start_root(handler)
        run_ids = run_producers(handler, root)
        handler.on_chain_end({"done": True}, run_id=root)
        consumer.join(TIMEOUT)
        assert not consumer.is_alive(), "the consumer did not see the stream end"
        assert "error" not in box, box.get("error")
        check_rebuilt(box["patches"], root, run_ids)


class TestRuleAssignment:
    def test_assigning_a_rule_applies_to_runs_started_afterwards(self) -> None:
        """Setting include_names after construction filters the runs that start later."""
        handler = LogStreamCallbackHandler()
        root, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=root, name="root")
        handler.on_chain_start({}, 1, run_id=first, parent_run_id=root, name="a")
        handler.include_names = ["b"]
        handler.on_chain_start({}, 1, run_id=second, parent_run_id=root, name="a")
        handler.close()
        paths = [patch.ops[0]["path"] for patch in handler]
        assert paths == ["", "/logs/a"]
        assert handler.include_names == ["b"]

    def test_assigning_a_bare_string_rule_raises_and_keeps_the_old_rule(self) -> None:
        """A bare-string rule is rejected on assignment and the previous rule stays."""
        handler = LogStreamCallbackHandler(exclude_tags=["x"])
        with pytest.raises(FilterConfigError):
            handler.exclude_tags = "x"  # type: ignore[assignment]
        assert handler.exclude_tags == ["x"]
        duck = SimpleNamespace(id=uuid.uuid4(), name="n", run_type="chain", tags=["x"])
        assert handler.include_run(duck) is False


class TestNoRevival:
    @pytest.mark.parametrize("fmt", ["original", "streaming_events"])
    def test_serialized_langchain_shapes_stay_inert_dicts(self, fmt: str) -> None:
        """Dicts shaped like serialized LangChain objects pass through every patch as dicts."""
        constructor = {
            "lc": 1,
            "type": "constructor",
            "id": ["langchain", "schema", "messages", "AIMessage"],
            "kwargs": {"content": "hi"},
        }
        secret = {"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]}
        payload = {"message": constructor, "key": secret, "items": [constructor]}
        handler = LogStreamCallbackHandler(_schema_format=fmt)
        root, step, tool = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, payload, run_id=root, name="root")
        handler.on_chain_start({}, payload, run_id=step, parent_run_id=root, name="step")
        handler.on_tool_start({}, "x", run_id=tool, parent_run_id=step, name="tool", inputs=payload)
        handler.on_tool_end(payload, run_id=tool)
        handler.on_chain_end(payload, run_id=step)
        handler.on_chain_end(payload, run_id=root)
        ops = [op for patch in handler for op in patch.ops]

        def walk(value: Any) -> Iterator[Any]:
            yield value
            if isinstance(value, dict):
                for item in value.values():
                    yield from walk(item)
            elif isinstance(value, list):
                for item in value:
                    yield from walk(item)

        seen = [v for op in ops for v in walk(op.get("value"))]
        assert all(type(v) in (dict, list, str, int, float, bool, type(None)) for v in seen)
        assert constructor in seen and secret in seen
        state = jsonpatch.apply_patch(None, ops)
        expected = payload if fmt == "streaming_events" else {"output": payload}
        assert state["logs"]["tool"]["final_output"] == expected
