"""Tests for logstream.agui: AG-UI events that the protocol's models and validator accept."""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import operator
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

import ag_ui.core
import jsonpatch
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from readme_blocks import claimed_output, run_readme_block

from logstream import (
    ConfigError,
    LogStreamCallbackHandler,
    RunLog,
    RunLogPatch,
    Tracer,
    dumps,
    redact_secrets,
    stream_log,
    trace,
    traced,
)
from logstream.agui import (
    PROTOCOL_VERSION,
    UNFINISHED_CODE,
    AguiEncoder,
    AguiEvent,
    asse_events,
    sse_events,
)
from logstream.testing import FakeClock, SequentialIds

ROOT = Path(__file__).resolve().parent.parent
NEEDS_VALIDATOR = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="ag-ui-validate supports Python 3.11+ only"
)
FEATURES = "agentic-chat,backend-tool-rendering,shared-state"

# The protocol's own event models, by the wire "type" each one fixes.
EVENT_MODELS: dict[str, type[BaseModel]] = {
    cls.model_fields["type"].default.value: cls
    for cls in vars(ag_ui.core).values()
    if isinstance(cls, type)
    and issubclass(cls, ag_ui.core.BaseEvent)
    and cls is not ag_ui.core.BaseEvent
}

Scenario = Callable[[Tracer], None]


# -- helpers -----------------------------------------------------------------------------


def wire(event: AguiEvent) -> Any:
    """The event as a consumer reads it: parsed back from its JSON text."""
    return json.loads(dumps(event))


def check_models(events: Iterable[AguiEvent]) -> None:
    """Validate every event against the ag-ui-protocol model its type names, strictly.

    The models keep unknown keys, so a misspelt key would pass validation: it must not be
    there, and the model's own serialisation must give back exactly the wire object.
    """
    for event in events:
        data = wire(event)
        model = EVENT_MODELS[data["type"]].model_validate(data)
        assert not model.model_extra, (data["type"], model.model_extra)
        assert model.model_dump(mode="json", by_alias=True) == data


def run_cli(events: list[AguiEvent], path: Path) -> dict[str, Any]:
    """Record ``events`` as SSE into ``path``, run the ag-ui-validate CLI on it; its report."""
    path.write_text("".join(sse_events(events)), encoding="utf-8")
    cli = Path(sys.executable).with_name("ag-ui-validate")  # the installed console script
    done = subprocess.run(
        [str(cli), "--json", "--fail-on", "warning", "--features", FEATURES, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report: dict[str, Any] = json.loads(done.stdout)
    report["returncode"] = done.returncode
    return report


def validate_in_process(events: list[AguiEvent], features: str = FEATURES) -> list[str]:
    """Run ag-ui-validate's engine on the wire events; return its error and warning lines."""
    from ag_ui_validate.pytest_plugin import validate_agui

    report = validate_agui([wire(e) for e in events], features=features.split(","))
    return [
        f"{d.rule} {d.severity} #{d.event_index}: {d.message}"
        for d in report.diagnostics
        if d.severity != "info"
    ] + list(report.internal_errors)


def make_tracer(**options: Any) -> tuple[AguiEncoder, Tracer]:
    """A deterministic tracer with a bound encoder."""
    encoder = AguiEncoder(thread_id="thread-1")
    options.setdefault("clock", FakeClock())
    options.setdefault("id_factory", SequentialIds())
    tracer = encoder.bind(Tracer(processors=[encoder], **options))
    return encoder, tracer


def encode(scenario: Scenario, **options: Any) -> list[AguiEvent]:
    """Run ``scenario`` on a tracer with an encoder; return every event it made."""
    encoder, tracer = make_tracer(**options)
    scenario(tracer)
    tracer.close()
    return list(encoder)


def rebuilt_state(events: list[AguiEvent]) -> Any:
    """Apply the STATE_SNAPSHOT, then every STATE_DELTA, as a consumer would."""
    state: Any = None
    for event in events:
        data = wire(event)
        if data["type"] == "STATE_SNAPSHOT":
            state = data["snapshot"]
        elif data["type"] == "STATE_DELTA":
            state = jsonpatch.apply_patch(state, data["delta"])
    return state


def tracer_state(scenario: Scenario, **options: Any) -> Any:
    """The run-log state the same scenario gives on a tracer without an encoder."""
    tracer = Tracer(clock=FakeClock(), id_factory=SequentialIds(), **options)
    scenario(tracer)
    tracer.close()
    patches: list[RunLogPatch] = tracer.drain()
    return wire(functools.reduce(operator.add, patches, RunLog(state=None)).state)


def types(events: list[AguiEvent], *, state: bool = False) -> list[str]:
    """The events' types, without the state events unless asked."""
    return [e["type"] for e in events if state or not e["type"].startswith("STATE_")]


# -- scenarios ---------------------------------------------------------------------------


def nested(tracer: Tracer) -> None:
    """An agent with a chain holding a retriever, a streaming chat model and a tool."""
    root = tracer.start_run("agent", inputs={"question": "weather?"})
    assert root is not None
    chain = tracer.start_run("plan", parent_id=root.id)
    assert chain is not None
    docs = tracer.start_run("retrieve", "retriever", parent_id=chain.id, inputs={"query": "w"})
    assert docs is not None
    tracer.end_run(docs.id, outputs={"documents": [{"page_content": "sunny"}]})
    model = tracer.start_run("model", "chat_model", parent_id=chain.id)
    assert model is not None
    for token in ["It", "", " is", " sunny"]:
        tracer.add_token(model.id, token)
    tracer.end_run(model.id, outputs={"output": "It is sunny"})
    tool = tracer.start_run("weather", "tool", parent_id=chain.id, inputs={"input": "Paris"})
    assert tool is not None
    tracer.end_run(tool.id, outputs={"output": "18C"})
    tracer.end_run(chain.id, outputs={"output": "18C"})
    tracer.end_run(root.id, outputs={"output": "It is sunny and 18C"})


def failing(tracer: Tracer) -> None:
    """A root that fails while a step and a model message are still open."""
    root = tracer.start_run("agent")
    assert root is not None
    chain = tracer.start_run("plan", parent_id=root.id)
    assert chain is not None
    model = tracer.start_run("model", "llm", parent_id=chain.id)
    assert model is not None
    tracer.add_token(model.id, "Thinking")
    tracer.end_run(root.id, error=RuntimeError("model server went away"))


def recovering(tracer: Tracer) -> None:
    """A tool and a step fail inside a run that handles it and finishes."""
    root = tracer.start_run("agent")
    assert root is not None
    tool = tracer.start_run("divide", "tool", parent_id=root.id, inputs={"input": "1/0"})
    assert tool is not None
    tracer.end_run(tool.id, error=ZeroDivisionError("division by zero"))
    step = tracer.start_run("fallback", parent_id=root.id)
    assert step is not None
    tracer.end_run(step.id, error=ValueError("no fallback"))
    tracer.end_run(root.id, outputs={"output": "sorry"})


def filtered(tracer: Tracer) -> None:
    """A run whose tool and one step the filter leaves out (the tracer excludes them)."""
    root = tracer.start_run("agent")
    assert root is not None
    hidden = tracer.start_run("internal", parent_id=root.id)
    assert hidden is not None
    tool = tracer.start_run("search", "tool", parent_id=hidden.id, inputs={"input": "x"})
    assert tool is not None
    shown = tracer.start_run("answer", parent_id=root.id)
    assert shown is not None
    tracer.end_run(tool.id, outputs={"output": "found"})
    tracer.end_run(hidden.id)
    tracer.end_run(shown.id, outputs={"output": "x"})
    tracer.end_run(root.id, outputs={"output": "x"})


FILTER = {"exclude_names": ["internal"], "exclude_types": ["tool"]}


def concurrent_tools(tracer: Tracer) -> None:
    """Two same-named tools and a streaming model whose events interleave."""
    root = tracer.start_run("agent")
    assert root is not None
    first = tracer.start_run("search", "tool", parent_id=root.id, inputs={"input": "a"})
    second = tracer.start_run("search", "tool", parent_id=root.id, inputs={"input": "b"})
    model = tracer.start_run("model", "llm", parent_id=root.id)
    assert first is not None and second is not None and model is not None
    tracer.add_token(model.id, "a")
    tracer.end_run(second.id, outputs={"output": 2})
    tracer.add_token(model.id, "b")
    tracer.end_run(first.id, outputs={"output": [1]})
    tracer.end_run(model.id, outputs={"output": "ab"})
    tracer.end_run(root.id, outputs={"output": "ab"})


def never_ends(tracer: Tracer) -> None:
    """A root whose stream is closed while it, a step and a message are still open."""
    root = tracer.start_run("agent")
    assert root is not None
    step = tracer.start_run("plan", parent_id=root.id)
    assert step is not None
    model = tracer.start_run("model", "llm", parent_id=step.id)
    assert model is not None
    tracer.add_token(model.id, "half")


SCENARIOS: dict[str, tuple[Scenario, dict[str, Any]]] = {
    "nested": (nested, {}),
    "failing": (failing, {}),
    "recovering": (recovering, {}),
    "filtered": (filtered, FILTER),
    "concurrent_tools": (concurrent_tools, {}),
    "never_ends": (never_ends, {}),
    "failing_with_entry_fields": (failing, {"entry_fields": ["parent_ids", "error"]}),
    "recovering_with_entry_fields": (recovering, {"entry_fields": ["parent_ids", "error"]}),
}


# -- tests -------------------------------------------------------------------------------


class TestEvents:
    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_every_event_validates_against_the_protocol_models(self, name: str) -> None:
        """Each event of each representative run is its ag-ui-protocol model, exactly."""
        scenario, options = SCENARIOS[name]
        events = encode(scenario, **options)
        assert events
        check_models(events)

    def test_protocol_version_is_the_installed_protocols(self) -> None:
        """The version RUN_STARTED declares is the one ag-ui-protocol's models were made from."""
        assert PROTOCOL_VERSION == ag_ui.core.PROTOCOL_VERSION

    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_state_events_rebuild_the_tracers_run_log(self, name: str) -> None:
        """The snapshot and then every delta give the state the same run gives the tracer."""
        scenario, options = SCENARIOS[name]
        events = encode(scenario, **options)
        assert rebuilt_state(events) == tracer_state(scenario, **options)

    def test_nested_run_maps_each_run_kind_to_its_events(self) -> None:
        """Root, step, retriever step, streamed message and tool call come out in order."""
        events = encode(nested)
        assert types(events) == [
            "RUN_STARTED",
            "STEP_STARTED",
            "STEP_STARTED",
            "STEP_FINISHED",
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "TOOL_CALL_START",
            "TOOL_CALL_ARGS",
            "TOOL_CALL_END",
            "TOOL_CALL_RESULT",
            "STEP_FINISHED",
            "RUN_FINISHED",
        ]
        first, last = events[0], events[-1]
        assert first["protocolVersion"] == PROTOCOL_VERSION
        assert (first["threadId"], first["runId"]) == (last["threadId"], last["runId"])
        assert last["result"] == {"output": "It is sunny and 18C"}
        text = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
        assert text == "It is sunny"
        args = next(e for e in events if e["type"] == "TOOL_CALL_ARGS")
        assert json.loads(args["delta"]) == {"input": "Paris"}
        result = next(e for e in events if e["type"] == "TOOL_CALL_RESULT")
        assert result["content"] == "18C"
        steps = [e["stepName"] for e in events if e["type"] == "STEP_STARTED"]
        assert steps == ["plan", "retrieve"]

    def test_state_snapshot_comes_first_and_deltas_are_the_tracers_patches(self) -> None:
        """The first state event is the whole root state; the deltas are the patches' ops."""
        encoder, tracer = make_tracer()
        twin = Tracer(clock=FakeClock(), id_factory=SequentialIds())
        nested(tracer)
        nested(twin)
        events = list(encoder)
        state_events = [e for e in events if e["type"].startswith("STATE_")]
        patches = twin.drain()
        assert state_events[0]["type"] == "STATE_SNAPSHOT"
        assert wire([state_events[0]["snapshot"]]) == wire([patches[0].ops[0]["value"]])
        assert [wire(e["delta"]) for e in state_events[1:]] == [wire(p.ops) for p in patches[1:]]

    def test_failed_root_closes_what_is_open_then_errors(self) -> None:
        """A failing root ends its open message and step, then sends RUN_ERROR with the error."""
        events = encode(failing)
        assert types(events)[-4:] == [
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "STEP_FINISHED",
            "RUN_ERROR",
        ]
        assert "model server went away" in events[-1]["message"]
        assert events[-1]["metadata"]["logstream"]["status"] == "error"

    def test_failing_tool_inside_a_recovering_run_still_finishes_it(self) -> None:
        """A failed tool's result carries the error; the failed step finishes; the run finishes."""
        events = encode(recovering)
        result = next(e for e in events if e["type"] == "TOOL_CALL_RESULT")
        assert "division by zero" in result["content"]
        assert result["metadata"]["logstream"]["status"] == "error"
        finished = next(e for e in events if e["type"] == "STEP_FINISHED")
        assert "no fallback" in finished["metadata"]["logstream"]["error"]
        assert types(events)[-1] == "RUN_FINISHED"

    def test_filtered_runs_get_no_step_or_tool_events(self) -> None:
        """Runs the filter leaves out of the log make no events; the state is the filtered log."""
        events = encode(filtered, **FILTER)
        assert types(events) == ["RUN_STARTED", "STEP_STARTED", "STEP_FINISHED", "RUN_FINISHED"]
        assert [e["stepName"] for e in events if e["type"] == "STEP_STARTED"] == ["answer"]
        assert set(rebuilt_state(events)["logs"]) == {"answer"}

    def test_concurrent_same_named_tools_keep_apart(self) -> None:
        """Interleaved tools get their own ids, arguments and results."""
        events = encode(concurrent_tools)
        starts = [e for e in events if e["type"] == "TOOL_CALL_START"]
        results = {e["toolCallId"]: e["content"] for e in events if e["type"] == "TOOL_CALL_RESULT"}
        assert len({e["toolCallId"] for e in starts}) == 2
        assert sorted(results.values()) == ["2", "[1]"]
        assert len({e["messageId"] for e in events if e["type"] == "TOOL_CALL_RESULT"}) == 2

    def test_run_that_never_ends_ends_with_an_unfinished_error_on_close(self) -> None:
        """Closing the tracer with the root open closes its parts, then sends RUN_ERROR."""
        events = encode(never_ends)
        assert types(events)[-3:] == ["TEXT_MESSAGE_END", "STEP_FINISHED", "RUN_ERROR"]
        assert events[-1]["code"] == UNFINISHED_CODE

    def test_model_output_without_tokens_becomes_one_content_event(self) -> None:
        """A model that streamed nothing gets its output text as one content event."""

        def quiet(tracer: Tracer) -> None:
            root = tracer.start_run("agent")
            assert root is not None
            model = tracer.start_run("model", "llm", parent_id=root.id)
            assert model is not None
            tracer.end_run(model.id, outputs={"generations": [[{"text": "Hello"}]]})
            tracer.end_run(root.id)

        events = encode(quiet)
        content = [e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT"]
        assert content == ["Hello"]
        assert "result" not in events[-1]

    def test_content_block_tokens_send_their_text_parts(self) -> None:
        """A token that is a list of content blocks sends its text; one without text sends none."""

        def blocks(tracer: Tracer) -> None:
            root = tracer.start_run("agent")
            assert root is not None
            model = tracer.start_run("model", "chat_model", parent_id=root.id)
            assert model is not None
            tracer.add_token(model.id, [{"type": "text", "text": "Hi"}, {"type": "image"}])
            tracer.add_token(model.id, [{"type": "tool_call_chunk", "args": "{"}])
            tracer.end_run(model.id)
            tracer.end_run(root.id)

        events = encode(blocks)
        check_models(events)
        assert [e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT"] == ["Hi"]

    def test_a_clock_outside_the_epochs_range_still_gives_valid_events(self) -> None:
        """Times that have no epoch timestamp (year 1, naive) fall back to the time now."""
        events = encode(nested, clock=lambda: datetime(1, 1, 1))
        check_models(events)
        assert all(event["timestamp"] > 0 for event in events)

    def test_events_after_the_terminal_event_are_dropped(self) -> None:
        """Later roots on a tracer that stays open make no events and never fill its buffer."""

        def two_roots(tracer: Tracer) -> None:
            first = tracer.start_run("first")
            assert first is not None
            tracer.end_run(first.id)
            second = tracer.start_run("second")
            assert second is not None
            tracer.end_run(second.id)

        encoder, tracer = make_tracer(auto_close=False, max_buffer=2, when_full="raise")
        two_roots(tracer)  # the second root's patches are dropped, never left to fill up
        two_roots(tracer)
        tracer.close()
        assert types(list(encoder)) == ["RUN_STARTED", "RUN_FINISHED"]

    def test_redacted_values_never_reach_an_event(self) -> None:
        """With redact_secrets, a secret in a tool's inputs appears in no event."""
        secret = "sk-" + "a1b2c3d4" * 6

        def leaky(tracer: Tracer) -> None:
            root = tracer.start_run("agent", inputs={"api_key": secret})
            assert root is not None
            tool = tracer.start_run("call", "tool", parent_id=root.id, inputs={"input": secret})
            assert tool is not None
            tracer.end_run(tool.id, outputs={"output": f"used {secret}"})
            tracer.end_run(root.id, outputs={"output": secret})

        events = encode(leaky, redact=redact_secrets)
        assert types(events)[0] == "RUN_STARTED"
        assert secret not in "".join(sse_events(events))

    def test_a_tracer_closed_before_any_run_gives_an_empty_stream(self) -> None:
        """No run, then close: the event stream ends with nothing in it."""
        assert encode(lambda tracer: None) == []

    def test_encoder_not_bound_maps_every_run_but_sends_no_state(self) -> None:
        """Unbound, the encoder maps every run (no filter known) and sends no state events."""
        encoder = AguiEncoder()
        tracer = Tracer(processors=[encoder], **FILTER)
        filtered(tracer)
        events = list(encoder)
        check_models(events)
        assert types(events, state=True) == types(events)
        steps = [e["stepName"] for e in events if e["type"] == "STEP_STARTED"]
        assert steps == ["internal", "answer"]
        assert "TOOL_CALL_RESULT" in types(events)
        assert events[0]["threadId"] == events[0]["runId"]

    def test_stream_log_with_an_unbound_encoder_gives_the_run_events(self) -> None:
        """``stream_log(..., processors=[encoder])`` streams patches and the encoder its events."""

        @traced(run_type="tool")
        def search(query: str) -> str:
            return query * 2

        def agent(question: str) -> str:
            with trace("plan"):
                pass
            return search(question) + search(question)

        encoder = AguiEncoder()
        patches = list(stream_log(agent, "ab", processors=[encoder]))
        events = list(encoder)
        assert patches
        check_models(events)
        assert types(events) == [
            "RUN_STARTED",
            "STEP_STARTED",
            "STEP_FINISHED",
            *(["TOOL_CALL_START", "TOOL_CALL_ARGS", "TOOL_CALL_END", "TOOL_CALL_RESULT"] * 2),
            "RUN_FINISHED",
        ]
        assert events[-1]["result"] == {"output": "abababab"}
        if sys.version_info >= (3, 11):  # no state events, so no shared-state feature
            assert validate_in_process(events, "backend-tool-rendering") == []


class TestThreadsAndAsync:
    def test_tools_in_threads_give_a_valid_stream(self) -> None:
        """Tools and a model streaming from several threads at once still validate."""
        encoder, tracer = make_tracer(id_factory=uuid.uuid4)
        root = tracer.start_run("agent")
        assert root is not None
        model = tracer.start_run("model", "llm", parent_id=root.id)
        assert model is not None

        def tool(n: int) -> None:
            run = tracer.start_run("search", "tool", parent_id=root.id, inputs={"n": n})
            assert run is not None
            tracer.add_token(model.id, f"t{n}")
            tracer.end_run(run.id, outputs={"output": n})

        threads = [threading.Thread(target=tool, args=(n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        tracer.end_run(model.id)
        tracer.end_run(root.id)
        events = list(encoder)
        check_models(events)
        assert types(events).count("TOOL_CALL_RESULT") == 8
        if sys.version_info >= (3, 11):
            assert validate_in_process(events) == []

    def test_async_iteration_reads_events_as_another_thread_makes_them(self) -> None:
        """``async for`` over the encoder yields every event until the terminal one."""
        encoder, tracer = make_tracer()

        async def read() -> list[str]:
            return [frame async for frame in asse_events(encoder)]

        async def main() -> list[str]:
            reader = asyncio.ensure_future(read())
            await asyncio.get_running_loop().run_in_executor(None, nested, tracer)
            return await asyncio.wait_for(reader, 10)

        frames = asyncio.run(main())
        assert all(frame.startswith("data: {") and frame.endswith("}\n\n") for frame in frames)
        assert json.loads(frames[-1][len("data: ") :])["type"] == "RUN_FINISHED"
        assert len(frames) == len(encode(nested))

    def test_callback_handler_drives_the_encoder(self) -> None:
        """A LangChain-shaped handler with the encoder as processor gives a valid stream."""
        encoder = AguiEncoder()
        handler = encoder.bind(LogStreamCallbackHandler(processors=[encoder]))
        root, tool, model = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({"name": "agent"}, {"question": "hi"}, run_id=root)
        handler.on_llm_start({"name": "llm"}, ["hi"], run_id=model, parent_run_id=root)
        handler.on_llm_new_token("Hel", run_id=model)
        handler.on_llm_new_token("lo", run_id=model)
        handler.on_llm_end({"generations": [[{"text": "Hello"}]]}, run_id=model)
        handler.on_tool_start({"name": "lookup"}, "x", run_id=tool, parent_run_id=root)
        handler.on_tool_error(KeyError("x"), run_id=tool)
        handler.on_chain_end({"answer": "Hello"}, run_id=root)
        events = list(encoder)
        check_models(events)
        assert types(events)[0] == "RUN_STARTED" and types(events)[-1] == "RUN_FINISHED"
        assert "TOOL_CALL_RESULT" in types(events)
        if sys.version_info >= (3, 11):
            assert validate_in_process(events) == []


class TestBind:
    def test_bind_needs_the_encoder_among_the_processors(self) -> None:
        """Binding to a tracer that does not call the encoder is a ConfigError."""
        with pytest.raises(ConfigError, match="does not have this AguiEncoder"):
            AguiEncoder().bind(Tracer())

    def test_bind_twice_is_refused(self) -> None:
        """An encoder takes one tracer's stream; a second bind is a ConfigError."""
        encoder = AguiEncoder()
        encoder.bind(Tracer(processors=[encoder]))
        with pytest.raises(ConfigError, match="already bound"):
            encoder.bind(Tracer(processors=[encoder]))

    def test_bind_refuses_other_objects(self) -> None:
        """Binding to something that is not a tracer or handler is a ConfigError."""
        with pytest.raises(ConfigError, match="takes a Tracer"):
            AguiEncoder().bind(object())  # type: ignore[type-var]

    def test_thread_id_must_be_a_string(self) -> None:
        """A non-string thread_id is a ConfigError naming the type."""
        with pytest.raises(ConfigError, match="thread_id must be a string"):
            AguiEncoder(thread_id=7)  # type: ignore[arg-type]


@NEEDS_VALIDATOR
class TestConformanceValidator:
    @pytest.mark.parametrize("name", sorted(SCENARIOS))
    def test_validator_cli_finds_nothing_in_recorded_streams(
        self, name: str, tmp_path: Path
    ) -> None:
        """ag-ui-validate reports no error or warning on each recorded SSE stream."""
        scenario, options = SCENARIOS[name]
        report = run_cli(encode(scenario, **options), tmp_path / f"{name}.sse")
        assert report["diagnostics"] == [] or all(
            d["severity"] == "info" for d in report["diagnostics"]
        ), report["diagnostics"]
        assert report["summary"]["errors"] == report["summary"]["warnings"] == 0
        assert report["internalErrors"] == []
        assert report["returncode"] == 0

    def test_validator_cli_catches_a_stream_cut_before_its_end(self, tmp_path: Path) -> None:
        """The same check fails on a stream missing its RUN_FINISHED: it can tell."""
        events = encode(nested)[:-1]
        report = run_cli(events, tmp_path / "cut.sse")
        assert report["returncode"] == 1
        assert "AGUI003" in {d["rule"] for d in report["diagnostics"]}


# -- random runs -------------------------------------------------------------------------

RUN_TYPES = ["chain", "llm", "chat_model", "tool", "retriever", "prompt"]
NAMES = ["a", "b", "search", "model"]
ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["start", "token", "end", "fail"]),
        st.integers(0, 50),
        st.sampled_from(RUN_TYPES),
        st.sampled_from(NAMES),
        st.text(max_size=3),
    ),
    max_size=25,
)
ENDINGS = st.sampled_from(["end", "fail", "close"])
TRACER_OPTIONS = st.sampled_from(
    [
        {},
        {"exclude_types": ["tool"]},
        {"include_names": ["search", "model"]},
        {"entry_fields": ["parent_ids", "error"], "schema_format": "original"},
    ]
)


def random_run(actions: list[Any], ending: str) -> Scenario:
    """A scenario that plays ``actions`` under one root, then ends it as ``ending`` says."""

    def play(tracer: Tracer) -> None:
        root = tracer.start_run("root", inputs={"n": len(actions)})
        assert root is not None
        open_runs: list[tuple[uuid.UUID, str]] = [(root.id, "chain")]
        for kind, pick, run_type, name, text in actions:
            if kind == "start":
                parent = open_runs[pick % len(open_runs)][0]
                run = tracer.start_run(name, run_type, parent_id=parent, inputs={"x": text})
                assert run is not None
                open_runs.append((run.id, run_type))
            elif kind == "token":
                models = [rid for rid, rt in open_runs if rt in ("llm", "chat_model")]
                if models:
                    tracer.add_token(models[pick % len(models)], text)
            elif len(open_runs) > 1:
                run_id, _ = open_runs.pop(1 + pick % (len(open_runs) - 1))
                if kind == "end":
                    tracer.end_run(run_id, outputs={"output": text})
                else:
                    tracer.end_run(run_id, error=ValueError(text))
        if ending == "end":
            tracer.end_run(root.id, outputs={"output": "done"})
        elif ending == "fail":
            tracer.end_run(root.id, error=RuntimeError("root failed"))

    return play


class TestRandomRuns:
    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(actions=ACTIONS, ending=ENDINGS, rules=TRACER_OPTIONS)
    def test_random_runs_give_valid_consistent_streams(
        self, actions: list[Any], ending: str, rules: dict[str, Any]
    ) -> None:
        """Any native run tree gives model-valid, validator-clean events that rebuild its state."""
        scenario = random_run(actions, ending)
        events = encode(scenario, **rules)
        check_models(events)
        assert types(events)[0] == "RUN_STARTED"
        assert types(events)[-1] == ("RUN_FINISHED" if ending == "end" else "RUN_ERROR")
        assert rebuilt_state(copy.deepcopy(events)) == tracer_state(scenario, **rules)
        if sys.version_info >= (3, 11):
            assert validate_in_process(events) == []


class TestPackaging:
    def test_import_logstream_does_not_import_agui(self) -> None:
        """``import logstream`` leaves logstream.agui unloaded."""
        done = subprocess.run(
            [sys.executable, "-c", "import sys, logstream; print('logstream.agui' in sys.modules)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert done.stdout.strip() == "False"

    def test_readme_public_api_row_lists_the_module_names(self) -> None:
        """The README's Public API row for logstream.agui names exactly its ``__all__``."""
        import re

        import logstream.agui

        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        section = readme.split("## Public API", 1)[1].split("\n## ", 1)[0]
        row = next(line for line in section.splitlines() if line.startswith("| `logstream.agui`"))
        first = row.split("|")[1]
        assert set(re.findall(r"`([A-Za-z_]+)`", first)) == set(logstream.agui.__all__)

    def test_readme_snippet_runs_and_prints_what_it_claims(self) -> None:
        """The README's AG-UI snippet runs and prints the event types its comment shows."""
        code, out = run_readme_block("AG-UI")
        assert out.splitlines() == claimed_output(code)
