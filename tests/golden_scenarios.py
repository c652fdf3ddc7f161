"""The scenarios behind the golden wire files in ``tests/golden/``.

Each scenario drives logstream (through the callback handler, or natively through
:func:`~logstream.stream_log`) with a deterministic clock and deterministic run ids, and
writes what it streams with :class:`~logstream.JsonLinesSink`: one ``{"ops": [...]}`` line
per patch, then the end record. ``tests/test_golden.py`` compares that text to the stored
file byte for byte; ``tests/compat/test_compat_golden.py`` drives LangChain's own handler
through the same callback scenarios and checks it streams the same ops.

The module imports no LangChain: what a callback scenario passes that LangChain would
build (an ``LLMResult``, a chat generation chunk) comes from a :class:`Kit`, plain values
here, LangChain's objects in the differential test.

To regenerate the files after an intended wire change, run
``LOGSTREAM_REGEN_GOLDEN=1 python -m pytest tests/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from logstream import JsonLinesSink, LogStreamCallbackHandler, stream_log, trace, traced
from logstream.testing import FakeClock, SequentialIds

GOLDEN_DIR = Path(__file__).resolve().parent / "golden"
REGEN_ENV = "LOGSTREAM_REGEN_GOLDEN"
FORMATS = ("original", "streaming_events")


class Kit:
    """Builds the values LangChain's callback manager would pass: plain values here."""

    def llm_result(self, text: str) -> Any:
        """Return what an LLM's end event carries (an ``LLMResult``, as it dumps)."""
        generation = {"text": text, "generation_info": None, "type": "Generation"}
        return {"generations": [[generation]], "llm_output": None, "run": None, "type": "LLMResult"}

    def chat_chunk(self, text: str, message_id: str) -> Any:
        """Return a chat generation chunk: an object whose ``message`` is a chunk message."""
        message = {
            "content": text,
            "additional_kwargs": {},
            "response_metadata": {},
            "type": "AIMessageChunk",
            "name": None,
            "id": message_id,
            "tool_calls": [],
            "invalid_tool_calls": [],
            "usage_metadata": None,
            "tool_call_chunks": [],
            "chunk_position": None,
        }
        return _Chunk(message)


@dataclass(frozen=True)
class _Chunk:
    message: Any


Driver = Callable[[Any, SequentialIds, Kit], None]


@dataclass(frozen=True)
class CallbackScenario:
    """Callbacks driven into a handler built with ``options`` (its keyword arguments)."""

    name: str
    drive: Driver
    schema_format: str
    options: dict[str, Any] = field(default_factory=dict)
    langchain_differs: Optional[str] = None
    """The README's row of a deviation from LangChain this scenario shows, if any."""

    @property
    def file(self) -> Path:
        """Where the scenario's golden file lives."""
        return GOLDEN_DIR / f"callbacks_{self.name}_{self.schema_format}.jsonl"

    def handler_options(self) -> dict[str, Any]:
        """The handler's keyword arguments (LangChain's names), format included."""
        return {**self.options, "_schema_format": self.schema_format}

    def record(self) -> str:
        """Drive logstream's handler and return the JSON Lines text it streams."""
        handler = LogStreamCallbackHandler(clock=FakeClock(), **self.handler_options())
        self.drive(handler, SequentialIds(), Kit())
        out = io.StringIO()
        JsonLinesSink(out).consume(handler)
        return out.getvalue()


@dataclass(frozen=True)
class NativeScenario:
    """A :func:`~logstream.stream_log` run of ``target(input)`` with ``options``."""

    name: str
    target: Callable[[Any], Any]
    input: Any
    schema_format: str
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def file(self) -> Path:
        """Where the scenario's golden file lives."""
        return GOLDEN_DIR / f"native_{self.name}_{self.schema_format}.jsonl"

    def record(self) -> str:
        """Run the target under ``stream_log`` and return the JSON Lines text it streams."""
        out = io.StringIO()
        patches = stream_log(
            self.target,
            self.input,
            clock=FakeClock(),
            id_factory=SequentialIds(),
            schema_format=self.schema_format,
            **self.options,
        )
        try:
            JsonLinesSink(out).consume(patches)
        except Exception:  # the end record names it; the golden file pins that
            pass
        return out.getvalue()


# -- callback scenarios ----------------------------------------------------------------


def _tokens(handler: Any, ids: SequentialIds, kit: Kit) -> None:
    """A chain around an LLM that streams three tokens."""
    root, llm = ids.take(2)
    handler.on_chain_start({}, {"question": "hi"}, run_id=root, name="agent", tags=["root"])
    handler.on_llm_start(
        {}, ["say hello"], run_id=llm, parent_run_id=root, name="model", tags=["llm"],
        metadata={"temperature": 0},
    )  # fmt: skip
    for token in ("Hel", "lo", "!"):
        handler.on_llm_new_token(token, run_id=llm, parent_run_id=root)
    handler.on_llm_end(kit.llm_result("Hello!"), run_id=llm, parent_run_id=root)
    handler.on_chain_end({"answer": "Hello!"}, run_id=root)


def _chat_chunks(handler: Any, ids: SequentialIds, kit: Kit) -> None:
    """A chain around a chat model that streams generation chunks."""
    root, chat = ids.take(2)
    handler.on_chain_start({}, {"question": "hi"}, run_id=root, name="agent")
    handler.on_chat_model_start({}, [[]], run_id=chat, parent_run_id=root, name="chat")
    for text in ("Hi", " there"):
        chunk = kit.chat_chunk(text, "msg-1")
        handler.on_llm_new_token(text, chunk=chunk, run_id=chat, parent_run_id=root)
    handler.on_llm_end(kit.llm_result("Hi there"), run_id=chat, parent_run_id=root)
    handler.on_chain_end({"answer": "Hi there"}, run_id=root)


def _odd_names(handler: Any, ids: SequentialIds, kit: Kit) -> None:
    """Names with ``/``, ``~`` and ``:``, and a name repeated three times."""
    _siblings(handler, ids, ["a/b", "t~0", "n:1", "step", "step", "step"])


def _key_clash(handler: Any, ids: SequentialIds, kit: Kit) -> None:
    """Runs named ``x``, ``x``, ``x:2``: the third's natural key is taken by the second."""
    _siblings(handler, ids, ["x", "x", "x:2"])


def _siblings(handler: Any, ids: SequentialIds, names: list[str]) -> None:
    """A root named with ``/``, ``~`` and ``:`` around one chain per name, all open at once."""
    root, *steps = ids.take(len(names) + 1)
    handler.on_chain_start({}, {"x": 1}, run_id=root, name="root/~:")
    for run_id, name in zip(steps, names):
        handler.on_chain_start({}, {"name": name}, run_id=run_id, parent_run_id=root, name=name)
    for run_id, name in zip(steps, names):
        handler.on_chain_end({"out": name}, run_id=run_id, parent_run_id=root)
    handler.on_chain_end({"done": True}, run_id=root)


def _errors(handler: Any, ids: SequentialIds, kit: Kit) -> None:
    """A tool that fails, an LLM that fails, then the chain around them fails."""
    root, tool, llm = ids.take(3)
    handler.on_chain_start({}, {"q": "weather?"}, run_id=root, name="agent")
    handler.on_tool_start(
        {"name": "weather"}, "Paris", run_id=tool, parent_run_id=root, name="weather",
        inputs={"city": "Paris"},
    )  # fmt: skip
    handler.on_tool_error(ConnectionError("weather service down"), run_id=tool)
    handler.on_llm_start({}, ["apologize"], run_id=llm, parent_run_id=root, name="model")
    handler.on_llm_new_token("Sorry", run_id=llm)
    handler.on_llm_error(TimeoutError("model timed out"), run_id=llm)
    handler.on_chain_error(RuntimeError("agent gave up"), run_id=root)


def _nested(handler: Any, ids: SequentialIds, kit: Kit) -> None:
    """Chains three deep with a retriever, a prompt, an LLM, a parser and a tool inside."""
    root, plan, retriever, prompt, llm, parser, tool = ids.take(7)
    handler.on_chain_start({}, {"q": "docs?"}, run_id=root, name="rag", tags=["app"])
    handler.on_chain_start({}, {"q": "docs?"}, run_id=plan, parent_run_id=root, name="plan")
    handler.on_retriever_start({}, "docs?", run_id=retriever, parent_run_id=plan, name="search")
    handler.on_retriever_end(
        [{"page_content": "logstream streams ops", "metadata": {"source": "README"}}],
        run_id=retriever,
    )
    handler.on_chain_start(
        {}, {"context": "logstream streams ops"}, run_id=prompt, parent_run_id=plan,
        name="prompt", run_type="prompt",
    )  # fmt: skip
    handler.on_chain_end({"output": "Context: logstream streams ops"}, run_id=prompt)
    handler.on_llm_start({}, ["Context: ..."], run_id=llm, parent_run_id=plan, name="model")
    handler.on_llm_new_token("ops", run_id=llm)
    handler.on_llm_end(kit.llm_result("ops"), run_id=llm)
    handler.on_chain_start(
        {}, {"text": "ops"}, run_id=parser, parent_run_id=plan, name="parse", run_type="parser"
    )
    handler.on_chain_end({"output": ["ops"]}, run_id=parser)
    handler.on_chain_end({"answer": ["ops"]}, run_id=plan)
    handler.on_tool_start({}, "ops", run_id=tool, parent_run_id=root, name="cite", inputs={})
    handler.on_tool_end("README", run_id=tool)
    handler.on_chain_end({"answer": "ops (README)"}, run_id=root)


def _filtered(handler: Any, ids: SequentialIds, kit: Kit) -> None:
    """A tree of runs of every kind and tag, for the include/exclude rules to pick from."""
    root, keep, hide, llm, tool, inner = ids.take(6)
    handler.on_chain_start({}, {"q": 1}, run_id=root, name="app", tags=["root"])
    handler.on_chain_start(
        {}, {"q": 1}, run_id=keep, parent_run_id=root, name="keep", tags=["visible"]
    )
    handler.on_chain_start(
        {}, {"q": 1}, run_id=hide, parent_run_id=root, name="hide", tags=["secret"]
    )
    handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=keep, name="model", tags=["llm"])
    handler.on_llm_new_token("t", run_id=llm)
    handler.on_llm_end(kit.llm_result("t"), run_id=llm)
    handler.on_tool_start({}, "x", run_id=tool, parent_run_id=hide, name="lookup", inputs={})
    handler.on_tool_end("y", run_id=tool)
    handler.on_chain_start({}, {"q": 2}, run_id=inner, parent_run_id=keep, name="inner")
    handler.on_chain_end({"r": 2}, run_id=inner)
    handler.on_chain_end({"r": 1}, run_id=hide)
    handler.on_chain_end({"r": 1}, run_id=keep)
    handler.on_chain_end({"r": 0}, run_id=root)


_FILTERS: dict[str, dict[str, Any]] = {
    "include": {"include_names": ["model", "lookup"], "include_tags": ["visible"]},
    "exclude": {"exclude_tags": ["secret"], "exclude_types": ["llm"]},
    "both": {"include_types": ["chain", "tool"], "exclude_names": ["inner"]},
}


def _callback_scenarios() -> Iterator[CallbackScenario]:
    for schema_format in FORMATS:
        yield CallbackScenario("tokens", _tokens, schema_format)
        yield CallbackScenario("odd_names", _odd_names, schema_format)
        yield CallbackScenario(
            "key_clash", _key_clash, schema_format, langchain_differs="Runs named `x`, `x`, `x:2`"
        )
        yield CallbackScenario("errors", _errors, schema_format)
        yield CallbackScenario("nested", _nested, schema_format)
        for name, rules in _FILTERS.items():
            yield CallbackScenario(f"filter_{name}", _filtered, schema_format, rules)
    # LangChain's handler refuses chat-model runs in the "original" format.
    yield CallbackScenario("chat_chunks", _chat_chunks, "streaming_events")


# -- native scenarios ------------------------------------------------------------------


@traced("search", "retriever")
def _search(query: str) -> list[dict[str, Any]]:
    return [{"page_content": f"about {query}", "metadata": {"rank": 1}}]


@traced("model", "llm")
def _model(prompt: str) -> Iterator[str]:
    yield from ("an", "swer")


@traced("a/b~c:d")
def _odd(value: int) -> int:
    return value + 1


def _pipeline(question: str) -> Iterator[str]:
    """Search, stream an LLM's tokens, and stream the answer out as chunks."""
    docs = _search(question)
    with trace("format", "prompt", inputs={"docs": docs}) as scope:
        scope.outputs = {"output": f"{question}: {docs[0]['page_content']}"}
    _odd(1)
    _odd(2)
    yield from _model(question)


def _failing(question: str) -> str:
    """Run one step that succeeds and one that fails inside the root."""
    _odd(1)
    with trace("fetch", "tool", inputs={"url": "http://example.invalid"}):
        raise ConnectionError(f"can't fetch for {question!r}")


def _native_scenarios() -> Iterator[NativeScenario]:
    for schema_format in FORMATS:
        yield NativeScenario("pipeline", _pipeline, "logs?", schema_format)
        yield NativeScenario("error", _failing, "logs?", schema_format)
    yield NativeScenario(
        "filtered",
        _pipeline,
        "logs?",
        "streaming_events",
        {"include_types": ["llm", "retriever"], "exclude_names": ["search"]},
    )


SCENARIOS: tuple[Any, ...] = (*_callback_scenarios(), *_native_scenarios())
"""Every scenario, callback and native."""

CALLBACK_SCENARIOS: tuple[CallbackScenario, ...] = tuple(
    scenario for scenario in SCENARIOS if isinstance(scenario, CallbackScenario)
)


def scenario_id(scenario: Any) -> str:
    """Return the scenario's pytest id: its golden file's name without the suffix."""
    return str(scenario.file.stem)


def regenerating() -> bool:
    """Whether ``LOGSTREAM_REGEN_GOLDEN=1`` asks the golden test to rewrite the files."""
    return os.environ.get(REGEN_ENV) == "1"


__all__ = [
    "CALLBACK_SCENARIOS",
    "FORMATS",
    "GOLDEN_DIR",
    "REGEN_ENV",
    "SCENARIOS",
    "CallbackScenario",
    "Kit",
    "NativeScenario",
    "regenerating",
    "scenario_id",
]
