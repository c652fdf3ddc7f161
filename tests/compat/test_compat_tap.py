"""Differential tests for ``tap_output_iter`` / ``tap_output_aiter`` and ``send``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.runnables import RunnableGenerator
from langchain_core.tracers._streaming import _StreamingCallbackHandler
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler

from .harness import (
    LangChainHandler,
    Normalizer,
    Result,
    Scenario,
    assert_same_ops,
    run_scenario,
    run_with_handler,
)
from .test_compat_runnables import _agen_words, _gen_words, generator_sequence, lambda_sequence

_spy_classes: dict[type, type] = {}


def spy_class(base: type) -> type:
    """A subclass of ``base`` recording every tap call and the chunks passed through it."""
    if base in _spy_classes:
        return _spy_classes[base]

    class TapSpy(base):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.tap_calls: list[dict[str, Any]] = []

        def tap_output_iter(self, run_id: uuid.UUID, output: Iterator[Any]) -> Iterator[Any]:
            record: dict[str, Any] = {"kind": "iter", "run_id": run_id, "chunks": []}
            self.tap_calls.append(record)
            for chunk in super().tap_output_iter(run_id, output):
                record["chunks"].append(chunk)
                yield chunk

        async def tap_output_aiter(
            self, run_id: uuid.UUID, output: AsyncIterator[Any]
        ) -> AsyncIterator[Any]:
            record: dict[str, Any] = {"kind": "aiter", "run_id": run_id, "chunks": []}
            self.tap_calls.append(record)
            async for chunk in super().tap_output_aiter(run_id, output):
                record["chunks"].append(chunk)
                yield chunk

    TapSpy.__name__ = f"TapSpy[{base.__module__}.{base.__name__}]"
    _spy_classes[base] = TapSpy
    return TapSpy


def _normalized_taps(result: Result) -> Any:
    """The recorded tap calls, with run ids numbered consistently with the patches."""
    n = Normalizer()
    n.patches(result.patches)
    return n.value(result.handler.tap_calls)


def _compare_taps(candidate: type, scenario: Scenario) -> list[dict[str, Any]]:
    expected = run_scenario(spy_class(LangChainHandler), scenario)
    actual = run_scenario(spy_class(candidate), scenario)
    assert_same_ops(expected, actual)
    assert _normalized_taps(actual) == _normalized_taps(expected)
    return expected.handler.tap_calls  # type: ignore[no-any-return]


def test_candidate_is_a_streaming_callback_handler(candidate: type) -> None:
    """The runtime protocol check LangChain uses to find a tap target accepts ours."""
    assert isinstance(candidate(), _StreamingCallbackHandler)


@pytest.mark.parametrize("mode", ["stream", "astream", "invoke", "ainvoke"])
def test_taps_called_identically_by_runnables(candidate: type, mode: str) -> None:
    """Runnables call tap_output_iter/aiter on ours as on LangChain's, same chunks through."""
    calls = _compare_taps(candidate, Scenario(generator_sequence, "a b c", mode=mode))
    if mode in ("stream", "astream"):
        assert calls, "streaming a sequence should tap its children's output"


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_tap_on_root_generator_emits_nothing(candidate: type, mode: str) -> None:
    """A RunnableGenerator as the root run is tapped, but its chunks are not logged (root)."""
    scenario = Scenario(
        lambda: RunnableGenerator(_gen_words, _agen_words, name="root_gen"), "x y z", mode=mode
    )
    calls = _compare_taps(candidate, scenario)
    assert calls and calls[0]["chunks"] == ["x ", "y ", "z "]


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_tap_on_excluded_child_emits_nothing(candidate: type, mode: str) -> None:
    """An excluded streaming child is tapped but contributes no streamed_output ops."""
    _compare_taps(
        candidate,
        Scenario(generator_sequence, "a b", mode=mode, handler_kwargs={"exclude_names": ["words"]}),
    )


@pytest.mark.parametrize("mode", ["stream", "astream"])
def test_tap_with_early_break_matches(candidate: type, mode: str) -> None:
    """Breaking out of the output after one chunk: same taps, same chunks through, same ops."""
    _compare_taps(candidate, Scenario(generator_sequence, "a b c d", mode=mode, take=1))


# ---------------------------------------------------------------------------
# direct calls on handlers that have seen (or not seen) real runs
# ---------------------------------------------------------------------------


def _compare_direct(candidate: type, kwargs: dict[str, Any], action: Any) -> Result:
    expected = run_with_handler(LangChainHandler, kwargs, action)
    actual = run_with_handler(candidate, kwargs, action)
    assert_same_ops(expected, actual)
    return expected


def test_tap_output_iter_unknown_run_passes_through(candidate: type) -> None:
    """tap_output_iter for a run id the handler never saw yields every chunk and emits nothing."""
    expected = _compare_direct(
        candidate,
        {"auto_close": False},
        lambda h: list(h.tap_output_iter(uuid.uuid4(), iter([1, "b", None]))),
    )
    assert expected.output == [1, "b", None] and expected.patches == []


def test_tap_output_aiter_unknown_run_passes_through(candidate: type) -> None:
    """tap_output_aiter for an unknown run id yields every chunk and emits nothing."""

    def action(h: Any) -> list[Any]:
        async def source() -> AsyncIterator[Any]:
            for item in (1, 2, 3):
                yield item

        async def go() -> list[Any]:
            return [c async for c in h.tap_output_aiter(uuid.uuid4(), source())]

        return asyncio.run(go())

    expected = _compare_direct(candidate, {"auto_close": False}, action)
    assert expected.output == [1, 2, 3] and expected.patches == []


ROOT_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


@pytest.mark.parametrize("target", ["root", "add_one", "double"])
def test_tap_after_run_by_id(candidate: type, target: str) -> None:
    """After a real run, tapping the root logs nothing; tapping a finished child matches."""

    def action(h: Any) -> list[Any]:
        collector = RunCollectorCallbackHandler()
        lambda_sequence().invoke(1, {"callbacks": [collector, h], "run_id": ROOT_ID})
        (root,) = collector.traced_runs
        ids = {child.name: child.id for child in root.child_runs}
        run_id = ROOT_ID if target == "root" else ids[target]
        return list(h.tap_output_iter(run_id, iter(["late-1", "late-2"])))

    expected = _compare_direct(candidate, {"auto_close": False}, action)
    assert expected.output == ["late-1", "late-2"]


def test_send_returns_true_and_is_delivered(candidate: type) -> None:
    """send(*ops) returns True and the ops arrive as one patch, as with LangChain's handler."""
    ops = (
        {"op": "add", "path": "/extra", "value": {"k": [1, 2]}},
        {"op": "remove", "path": "/extra"},
    )
    expected = _compare_direct(candidate, {"auto_close": False}, lambda h: h.send(*ops))
    assert expected.output is True and expected.patches == [list(ops)]


def test_send_with_no_ops_is_an_empty_patch(candidate: type) -> None:
    """send() with no ops delivers an empty patch on both sides."""
    expected = _compare_direct(candidate, {"auto_close": False}, lambda h: h.send())
    assert expected.patches == [[]]


def test_direct_callbacks_without_runnables_match(candidate: type) -> None:
    """Driving on_chain_start/on_chain_end by hand (root + one child) gives identical ops."""
    root, child = uuid.uuid4(), uuid.uuid4()

    def action(h: Any) -> None:
        h.on_chain_start({}, {"input": "q"}, run_id=root, name="root_chain")
        h.on_chain_start(
            {},
            {"input": "q"},
            run_id=child,
            parent_run_id=root,
            name="child",
            tags=["t"],
            metadata={"m": 1},
        )
        h.on_chain_end({"output": "done"}, run_id=child)
        h.on_chain_end({"output": "all done"}, run_id=root)

    expected = _compare_direct(candidate, {}, action)
    assert len(expected.patches) == 3
