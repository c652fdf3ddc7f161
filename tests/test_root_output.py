"""Tests for native roots reporting their outputs in ``/final_output`` (and nothing twice)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from logstream import (
    LogStreamCallbackHandler,
    RunLogPatch,
    Tracer,
    TracerConfig,
    redact_secrets,
    stream_log,
    trace,
    traced,
)


def final_writes(patches: list[RunLogPatch]) -> list[dict[str, Any]]:
    """Return every op that writes under ``/final_output`` (the root's output)."""
    return [op for p in patches for op in p.ops if op["path"].startswith("/final_output")]


def state_of(patches: list[RunLogPatch]) -> dict[str, Any]:
    """Return the state the patches rebuild."""
    log = RunLogPatch()
    for patch in patches:
        log = log + patch
    return dict(log.state)  # type: ignore[arg-type]


class TestNativeRoot:
    def test_trace_root_reports_outputs_once(self) -> None:
        """A ``trace`` root on a plain Tracer writes its outputs to /final_output once."""
        tracer = Tracer()
        with trace("agent", tracer=tracer) as root:
            with trace("step"):
                pass
            root.outputs = {"answer": 42}
        patches = list(tracer)
        assert final_writes(patches) == [
            {"op": "replace", "path": "/final_output", "value": {"answer": 42}}
        ]
        assert state_of(patches)["final_output"] == {"answer": 42}

    def test_traced_root_reports_its_return_value(self) -> None:
        """A ``@traced`` function run as the root reports what it returned."""
        tracer = Tracer(schema_format="original")

        @traced(tracer=tracer)
        def agent(question: str) -> str:
            return question.upper()

        agent("hi")
        assert state_of(list(tracer))["final_output"] == "HI"

    def test_async_root_reports_outputs(self) -> None:
        """An ``async with trace(...)`` root reports its outputs too."""
        tracer = Tracer()

        async def main() -> None:
            async with trace("agent", tracer=tracer) as root:
                root.outputs = [1, 2]

        asyncio.run(main())
        assert state_of(list(tracer))["final_output"] == [1, 2]

    def test_failed_root_reports_no_output(self) -> None:
        """A root that raised writes no /final_output; it stays null."""
        tracer = Tracer()
        with pytest.raises(ValueError), trace("agent", tracer=tracer) as root:
            root.outputs = "partial"
            raise ValueError("no")
        patches = list(tracer)
        assert final_writes(patches) == []
        assert state_of(patches)["final_output"] is None

    def test_output_is_redacted_and_copied(self) -> None:
        """The reported output goes through redact, and later changes do not reach it."""
        secret = "sk-" + "b" * 40
        tracer = Tracer(redact=redact_secrets)
        value = {"key": secret, "items": [1]}
        with trace("agent", tracer=tracer) as root:
            root.outputs = value
        value["items"].append(2)
        final = state_of(list(tracer))["final_output"]
        assert secret not in str(final)
        assert final["items"] == [1]

    def test_bounded_stream_delivers_it(self) -> None:
        """With max_buffer the root's output patch is claimed and delivered."""
        tracer = Tracer(max_buffer=10)
        with trace("agent", tracer=tracer) as root:
            root.outputs = "done"
        assert state_of(list(tracer))["final_output"] == "done"

    def test_output_in_the_same_patch_as_the_end(self) -> None:
        """The root's output comes in the last patch, the one that ends the run."""
        tracer = Tracer()
        with trace("agent", tracer=tracer) as root:
            root.outputs = 1
        patches = list(tracer)
        assert patches[-1].ops == [{"op": "replace", "path": "/final_output", "value": 1}]


class TestNoDoubleReporting:
    def test_stream_log_function_writes_once(self) -> None:
        """stream_log of a plain function writes its single output exactly once."""
        patches = list(stream_log(lambda x: x + "!", "hi"))
        assert [op["value"] for op in final_writes(patches)] == ["hi!"]

    def test_stream_log_generator_writes_once_per_chunk(self) -> None:
        """stream_log of a generator writes /final_output once per chunk, none at the end."""

        def chunks(n: int) -> Iterator[str]:
            yield from ["a", "b", "c"][:n]

        patches = list(stream_log(chunks, 3, with_streamed_output_list=False))
        writes = final_writes(patches)
        assert len(writes) == 3
        assert state_of(patches)["final_output"] == "abc"

    def test_traced_target_of_stream_log_writes_once(self) -> None:
        """A @traced target run through stream_log is still reported by stream_log alone."""

        @traced
        def agent(x: int) -> int:
            return x + 1

        patches = list(stream_log(agent, 1))
        assert [op["value"] for op in final_writes(patches)] == [2]

    def test_handler_root_reports_nothing(self) -> None:
        """The LangChain-shaped handler keeps LangChain's root: no /final_output op."""
        handler = LogStreamCallbackHandler()
        root = uuid.uuid4()
        handler.on_chain_start({}, {"q": 1}, run_id=root, name="agent")
        handler.on_chain_end({"a": 1}, run_id=root)
        assert final_writes(list(handler)) == []


class TestDefaultFormats:
    def test_entry_point_defaults(self) -> None:
        """The README's table: handler and Tracer use streaming_events, stream_log original."""
        assert LogStreamCallbackHandler().config.schema_format == "streaming_events"
        assert Tracer().schema_format == "streaming_events"
        assert TracerConfig().schema_format == "streaming_events"
        seen: list[str] = []

        def target(x: int) -> int:
            with trace("step") as step:
                seen.append(step.tracer.schema_format if step.tracer else "none")
            return x

        list(stream_log(target, 1))
        assert seen == ["original"]

    @pytest.mark.parametrize(
        ("schema_format", "run_type", "expected"),
        [
            ("streaming_events", "tool", None),
            ("streaming_events", "chain", None),
            ("streaming_events", "retriever", {}),
            ("original", "tool", {}),
            ("original", "chain", {}),
        ],
    )
    def test_failed_entry_final_output(
        self, schema_format: Any, run_type: str, expected: Any
    ) -> None:
        """A failed run's final_output is what the README table says, per format and type."""
        tracer = Tracer(schema_format=schema_format, entry_fields=["error"])
        with trace("agent", tracer=tracer):
            with pytest.raises(KeyError), trace("failing", run_type, tracer=tracer):
                raise KeyError("k")
        entry = state_of(list(tracer))["logs"]["failing"]
        assert entry["final_output"] == expected
        assert entry["error"] == "KeyError: 'k'"
