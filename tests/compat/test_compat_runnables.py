"""Differential tests over plain runnables: lambdas, sequences, generators, errors."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from langchain_core.callbacks.manager import adispatch_custom_event, dispatch_custom_event
from langchain_core.runnables import (
    Runnable,
    RunnableBranch,
    RunnableGenerator,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
)

from .harness import (
    ASYNC_MODES,
    BATCH_MODES,
    MODES,
    SYNC_MODES,
    LangChainHandler,
    Scenario,
    assert_same_ops_unordered,
    compare,
    run_scenario,
)

# ---------------------------------------------------------------------------
# factories
# ---------------------------------------------------------------------------


def _add_one(x: int) -> int:
    return x + 1


def _double(x: int) -> int:
    return x * 2


async def _aadd_one(x: int) -> int:
    return x + 1


async def _adouble(x: int) -> int:
    return x * 2


def lambda_sequence() -> Runnable[Any, Any]:
    return RunnableLambda(_add_one, name="add_one") | RunnableLambda(_double, name="double")


def single_lambda() -> Runnable[Any, Any]:
    return RunnableLambda(_add_one, name="solo")


def async_lambda_sequence() -> Runnable[Any, Any]:
    return RunnableLambda(_add_one, afunc=_aadd_one, name="add_one") | RunnableLambda(
        _double, afunc=_adouble, name="double"
    )


def nested_sequence() -> Runnable[Any, Any]:
    inner = (
        RunnableLambda(_add_one, name="inner_a") | RunnableLambda(_double, name="inner_b")
    ).with_config(run_name="inner_seq")
    return (
        RunnableLambda(_add_one, name="outer_a") | inner | RunnableLambda(_double, name="outer_b")
    )


def repeated_names_sequence() -> Runnable[Any, Any]:
    """Three sequential runs named "step" -> keys step, step:2, step:3."""
    return (
        RunnableLambda(_add_one, name="step")
        | RunnableLambda(_double, name="step")
        | RunnableLambda(_add_one, name="step")
    )


def dict_io_sequence() -> Runnable[Any, Any]:
    return (
        RunnablePassthrough()
        | RunnableLambda(
            lambda d: {"sum": d["a"] + d["b"], "items": [d["a"], d["b"]]}, name="shape"
        )
        | RunnableLambda(lambda d: d["sum"], name="pick")
    )


def assign_sequence() -> Runnable[Any, Any]:
    return RunnablePassthrough.assign(total=lambda d: d["a"] + d["b"]) | RunnableLambda(
        lambda d: d["total"] * 2, name="pick"
    )


def branch_runnable() -> Runnable[Any, Any]:
    return RunnableBranch(
        (RunnableLambda(lambda x: x > 10, name="is_big"), RunnableLambda(_double, name="big")),
        RunnableLambda(_add_one, name="small"),
    )


def same_name_parallel() -> Runnable[Any, Any]:
    return RunnableParallel(
        left=RunnableLambda(_add_one, name="x"), right=RunnableLambda(_double, name="x")
    )


def async_same_name_parallel() -> Runnable[Any, Any]:
    return RunnableParallel(
        left=RunnableLambda(_add_one, afunc=_aadd_one, name="x"),
        right=RunnableLambda(_double, afunc=_adouble, name="x"),
    )


def parallel_then_lambda() -> Runnable[Any, Any]:
    return same_name_parallel() | RunnableLambda(lambda d: d["left"] + d["right"], name="merge")


def _gen_words(inp: Iterator[str]) -> Iterator[str]:
    for text in inp:
        for word in text.split():
            yield word + " "


async def _agen_words(inp: AsyncIterator[str]) -> AsyncIterator[str]:
    async for text in inp:
        for word in text.split():
            yield word + " "


def generator_sequence() -> Runnable[Any, Any]:
    return (
        RunnableLambda(lambda s: s.upper(), name="upper")
        | RunnableGenerator(_gen_words, _agen_words, name="words")
        | RunnableLambda(lambda s: s.strip(), name="strip")
    )


def _yielding_lambda(x: int) -> Iterator[int]:
    yield from range(x)


def yielding_lambda_sequence() -> Runnable[Any, Any]:
    return RunnableLambda(_add_one, name="first") | RunnableLambda(_yielding_lambda, name="yielder")


def _fail(x: Any) -> Any:
    raise ValueError(f"boom {x}")


def fallback_runnable() -> Runnable[Any, Any]:
    primary = RunnableLambda(_fail, name="primary")
    backup = RunnableLambda(_double, name="backup")
    return RunnableLambda(_add_one, name="prep") | primary.with_fallbacks([backup])


def erroring_sequence() -> Runnable[Any, Any]:
    return (
        RunnableLambda(_add_one, name="ok_step")
        | RunnableLambda(_fail, name="bad_step")
        | RunnableLambda(_double, name="never")
    )


def erroring_root() -> Runnable[Any, Any]:
    return RunnableLambda(_fail, name="bad_root")


def _emit_custom(x: int) -> int:
    dispatch_custom_event("progress", {"at": x})
    dispatch_custom_event("progress", {"at": x + 1})
    return x + 1


async def _aemit_custom(x: int) -> int:
    await adispatch_custom_event("progress", {"at": x})
    await adispatch_custom_event("progress", {"at": x + 1})
    return x + 1


def custom_event_sequence() -> Runnable[Any, Any]:
    return RunnableLambda(_emit_custom, afunc=_aemit_custom, name="emitter") | RunnableLambda(
        _double, name="after"
    )


def tagged_sequence() -> Runnable[Any, Any]:
    a = RunnableLambda(_add_one, name="tagged_a").with_config(
        tags=["alpha", "shared"], metadata={"owner": "a", "n": 1}
    )
    b = RunnableLambda(_double, name="tagged_b").with_config(tags=["beta"], metadata={"owner": "b"})
    inner = (a | b).with_config(tags=["inner"], metadata={"level": "inner"}, run_name="inner")
    return inner | RunnableLambda(_add_one, name="plain")


# ---------------------------------------------------------------------------
# tests
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("auto_close", [True, False], ids=["autoclose", "noautoclose"])
@pytest.mark.parametrize("consumer_waiting", [False, True], ids=["drain", "waiting"])
@pytest.mark.parametrize("mode", MODES)
def test_lambda_sequence_ops_match(
    candidate: type, mode: str, consumer_waiting: bool, auto_close: bool
) -> None:
    """A two-lambda sequence yields identical ops in every mode, consumer timing and auto_close."""
    compare(
        Scenario(
            lambda_sequence,
            3,
            mode=mode,
            consumer_waiting=consumer_waiting,
            handler_kwargs={"auto_close": auto_close},
        ),
        candidate,
    )


@pytest.mark.parametrize("mode", MODES)
def test_root_only_emits_single_replace(candidate: type, mode: str) -> None:
    """A lone lambda (root run only) produces just the root replace op on both sides."""
    expected, _ = compare(Scenario(single_lambda, 1, mode=mode), candidate)
    assert len(expected.patches) == 1 and expected.patches[0][0]["op"] == "replace"


@pytest.mark.parametrize("mode", ASYNC_MODES)
def test_async_lambda_sequence_ops_match(candidate: type, mode: str) -> None:
    """Lambdas with native async functions give identical ops under astream/ainvoke."""
    compare(Scenario(async_lambda_sequence, 5, mode=mode), candidate)


@pytest.mark.parametrize("mode", MODES)
def test_nested_sequence_ops_match(candidate: type, mode: str) -> None:
    """A renamed sub-sequence nested in a sequence logs every level identically."""
    compare(Scenario(nested_sequence, 2, mode=mode), candidate)


@pytest.mark.parametrize("mode", MODES)
def test_repeated_names_get_counter_keys(candidate: type, mode: str) -> None:
    """Sequential runs sharing a name get the same step, step:2, step:3 keys on both sides."""
    expected, _ = compare(Scenario(repeated_names_sequence, 1, mode=mode), candidate)
    keys = [
        p[0]["path"]
        for p in expected.patches
        if p[0]["op"] == "add" and p[0]["path"].count("/") == 2
    ]
    assert keys == ["/logs/step", "/logs/step:2", "/logs/step:3"]


@pytest.mark.parametrize("mode", MODES)
def test_dict_inputs_and_assign_ops_match(candidate: type, mode: str) -> None:
    """Passthrough and dict-shaped inputs and outputs give identical ops."""
    compare(Scenario(dict_io_sequence, {"a": 2, "b": 5}, mode=mode), candidate)


@pytest.mark.parametrize("mode", MODES)
def test_assign_unordered(candidate: type, mode: str) -> None:
    """RunnablePassthrough.assign (its mapper runs concurrently) agrees order-insensitively."""
    scenario = Scenario(assign_sequence, {"a": 2, "b": 5}, mode=mode)
    assert_same_ops_unordered(
        run_scenario(LangChainHandler, scenario), run_scenario(candidate, scenario)
    )


@pytest.mark.parametrize("value", [3, 30])
@pytest.mark.parametrize("mode", MODES)
def test_branch_ops_match(candidate: type, mode: str, value: int) -> None:
    """RunnableBranch (condition + chosen branch) gives identical ops for both outcomes."""
    compare(Scenario(branch_runnable, value, mode=mode), candidate)


@pytest.mark.parametrize("mode", MODES)
def test_parallel_same_name_branches_unordered(candidate: type, mode: str) -> None:
    """Two parallel branches both named "x": same per-key op subsequences and final state.

    The branches run concurrently (threads in sync modes, executor/tasks in async
    modes), so LangChain itself interleaves them and assigns ``x`` / ``x:2``
    nondeterministically.  The comparison is therefore order-insensitive across
    keys but strict within each key: see ``harness.canonical_unordered``.
    """
    scenario = Scenario(same_name_parallel, 4, mode=mode)
    expected = run_scenario(LangChainHandler, scenario)
    actual = run_scenario(candidate, scenario)
    assert_same_ops_unordered(expected, actual)


@pytest.mark.parametrize("mode", ASYNC_MODES)
def test_async_parallel_same_name_branches_unordered(candidate: type, mode: str) -> None:
    """Async-native parallel branches named "x" agree per key and in the final state."""
    scenario = Scenario(async_same_name_parallel, 4, mode=mode)
    assert_same_ops_unordered(
        run_scenario(LangChainHandler, scenario), run_scenario(candidate, scenario)
    )


@pytest.mark.parametrize("mode", MODES)
def test_parallel_inside_sequence_unordered(candidate: type, mode: str) -> None:
    """A same-name parallel step followed by a merge lambda agrees order-insensitively."""
    scenario = Scenario(parallel_then_lambda, 4, mode=mode)
    assert_same_ops_unordered(
        run_scenario(LangChainHandler, scenario), run_scenario(candidate, scenario)
    )


@pytest.mark.parametrize("consumer_waiting", [False, True], ids=["drain", "waiting"])
@pytest.mark.parametrize("mode", MODES)
def test_runnable_generator_ops_match(candidate: type, mode: str, consumer_waiting: bool) -> None:
    """RunnableGenerator in a sequence streams identical per-run streamed_output ops."""
    compare(
        Scenario(
            generator_sequence, "hello big world", mode=mode, consumer_waiting=consumer_waiting
        ),
        candidate,
    )


@pytest.mark.parametrize("mode", MODES)
def test_yielding_lambda_ops_match(candidate: type, mode: str) -> None:
    """A lambda that yields (generator function) produces identical ops."""
    compare(Scenario(yielding_lambda_sequence, 3, mode=mode), candidate)


@pytest.mark.parametrize("auto_close", [True, False], ids=["autoclose", "noautoclose"])
@pytest.mark.parametrize("mode", ["astream", "stream"])
def test_early_break_of_stream_ops_match(candidate: type, mode: str, auto_close: bool) -> None:
    """Stopping the output stream after one chunk closes the generators identically.

    With auto_close, LangChain closes the stream when the root ends, which (in
    astream) happens before the last step's end ops; without it those arrive.
    """
    compare(
        Scenario(
            generator_sequence,
            "one two three four",
            mode=mode,
            take=1,
            handler_kwargs={"auto_close": auto_close},
        ),
        candidate,
    )


@pytest.mark.parametrize("mode", MODES)
def test_fallbacks_ops_match(candidate: type, mode: str) -> None:
    """with_fallbacks whose primary raises logs the failed primary and the backup identically."""
    compare(Scenario(fallback_runnable, 1, mode=mode), candidate)


@pytest.mark.parametrize("auto_close", [True, False], ids=["autoclose", "noautoclose"])
@pytest.mark.parametrize("consumer_waiting", [False, True], ids=["drain", "waiting"])
@pytest.mark.parametrize("mode", MODES)
def test_error_in_sequence_ops_match(
    candidate: type, mode: str, consumer_waiting: bool, auto_close: bool
) -> None:
    """A sequence whose middle step raises emits the same ops before the (same) exception."""
    expected, _ = compare(
        Scenario(
            erroring_sequence,
            1,
            mode=mode,
            consumer_waiting=consumer_waiting,
            handler_kwargs={"auto_close": auto_close},
        ),
        candidate,
    )
    assert expected.error_repr == "ValueError: boom 2"


@pytest.mark.parametrize("mode", MODES)
def test_error_at_root_ops_match(candidate: type, mode: str) -> None:
    """A root lambda that raises yields only the root replace op on both sides."""
    expected, _ = compare(Scenario(erroring_root, 7, mode=mode), candidate)
    assert expected.error_repr == "ValueError: boom 7"


@pytest.mark.parametrize("mode", MODES)
def test_custom_events_emit_nothing(candidate: type, mode: str) -> None:
    """dispatch_custom_event / adispatch_custom_event inside a lambda add no ops on either side."""
    expected, _ = compare(Scenario(custom_event_sequence, 1, mode=mode), candidate)
    assert all("custom" not in repr(p) and "progress" not in repr(p) for p in expected.patches)


@pytest.mark.parametrize("mode", MODES)
def test_with_config_tags_and_metadata_ops_match(candidate: type, mode: str) -> None:
    """Tags and metadata from with_config and from the call config propagate identically."""
    compare(
        Scenario(
            tagged_sequence,
            1,
            mode=mode,
            config={"tags": ["call-tag"], "metadata": {"request": "r1"}, "run_name": "root_name"},
        ),
        candidate,
    )


@pytest.mark.parametrize("mode", MODES)
def test_placeholder_input_dict_ops_match(candidate: type, mode: str) -> None:
    """A run whose real input is {"input": ""} is reported alike (LangChain maps it to None)."""
    compare(
        Scenario(
            lambda: (
                RunnableLambda(lambda d: d, name="id0") | RunnableLambda(lambda d: d, name="id1")
            ),
            {"input": ""},
            mode=mode,
        ),
        candidate,
    )


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_ours_drained_with_async_for_in_sync_mode(candidate: type, mode: str) -> None:
    """Ours, filled by a sync run and drained with `async for` in a new loop, matches LangChain."""
    compare(Scenario(generator_sequence, "a b", mode=mode, ours_collect="async"), candidate)


@pytest.mark.parametrize("mode", SYNC_MODES)
def test_ours_waiting_async_consumer_in_sync_mode(candidate: type, mode: str) -> None:
    """Ours, consumed by an `async for` already waiting in another thread's loop, matches."""
    compare(
        Scenario(generator_sequence, "a b", mode=mode, ours_collect="async", consumer_waiting=True),
        candidate,
    )


# ---------------------------------------------------------------------------
# more shapes: retries, nested calls, unusual values, repeated root calls
# ---------------------------------------------------------------------------


class _Flaky:
    """Fails the first ``failures`` calls, then doubles its input."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self, x: int) -> int:
        if self.failures > 0:
            self.failures -= 1
            raise ValueError("flaky")
        return x * 2


def retry_sequence() -> Runnable[Any, Any]:
    flaky = RunnableLambda(_Flaky(2), name="flaky").with_retry(
        stop_after_attempt=3, wait_exponential_jitter=False, retry_if_exception_type=(ValueError,)
    )
    return RunnableLambda(_add_one, name="before") | flaky


def calls_inner_chain() -> Runnable[Any, Any]:
    inner = RunnableLambda(_add_one, name="inner_one") | RunnableLambda(_double, name="inner_two")

    def outer(x: int) -> int:
        # config (and so the handler) propagates through the context variable
        return inner.invoke(x) + inner.invoke(x + 1)

    async def aouter(x: int) -> int:
        return await inner.ainvoke(x) + await inner.ainvoke(x + 1)

    return RunnableLambda(outer, afunc=aouter, name="outer")


class Point:
    """A plain object with attributes (not JSON, not pydantic)."""

    def __init__(self, x: int, y: int) -> None:
        self.x = x
        self.y = y


def unusual_values() -> Runnable[Any, Any]:
    return RunnableLambda(
        lambda x: {"tuple": (1, 2), "nested": [{"k": None}, 1.5, True], "point": Point(x, -x)},
        name="shapes",
    ) | RunnableLambda(lambda d: (d["tuple"], d["point"].x), name="tuple_out")


@pytest.mark.parametrize("mode", MODES)
def test_with_retry_ops_match(candidate: type, mode: str) -> None:
    """with_retry: failed attempts (no end) and the successful retry are logged identically."""
    compare(Scenario(retry_sequence, 1, mode=mode), candidate)


@pytest.mark.parametrize("mode", MODES)
def test_nested_invocations_inside_lambda_ops_match(candidate: type, mode: str) -> None:
    """A lambda invoking a chain twice logs the inner runs (with counter keys) identically."""
    compare(Scenario(calls_inner_chain, 1, mode=mode), candidate)


@pytest.mark.parametrize("mode", MODES)
def test_unusual_values_ops_match(candidate: type, mode: str) -> None:
    """Tuples, floats, bools, None and plain objects in inputs/outputs pass through alike."""
    compare(Scenario(unusual_values, 3, mode=mode), candidate)


@pytest.mark.parametrize("auto_close", [True, False], ids=["autoclose", "noautoclose"])
@pytest.mark.parametrize("mode", MODES)
def test_second_root_call_on_same_handler(candidate: type, mode: str, auto_close: bool) -> None:
    """Reusing one handler for two calls: what the consumer sees matches LangChain.

    With auto_close the stream ends after the first root run; without it the
    second call's root is not the handler's root and is logged as an entry.
    """
    compare(
        Scenario(
            lambda_sequence, 1, mode=mode, repeat=2, handler_kwargs={"auto_close": auto_close}
        ),
        candidate,
    )


@pytest.mark.parametrize(
    "factory", [lambda_sequence, generator_sequence], ids=["lambdas", "generator"]
)
@pytest.mark.parametrize("mode", BATCH_MODES)
def test_batch_roots_unordered(candidate: type, mode: str, factory: Any) -> None:
    """batch/abatch of two inputs with one handler (auto_close off) agree order-insensitively.

    The two root calls run concurrently; whichever starts first is the handler's
    root and the other is logged as an entry, so the comparison is per key
    (see ``harness.canonical_unordered``).
    """
    inputs = [1, 2] if factory is lambda_sequence else ["a b", "c d"]
    scenario = Scenario(factory, inputs, mode=mode, handler_kwargs={"auto_close": False})
    assert_same_ops_unordered(
        run_scenario(LangChainHandler, scenario), run_scenario(candidate, scenario)
    )


@pytest.mark.parametrize("fmt", ["streaming_events", "original"])
@pytest.mark.parametrize("mode", MODES)
def test_dict_with_input_and_output_keys_ops_match(candidate: type, mode: str, fmt: str) -> None:
    """Inputs with an "input" key and outputs with an "output" key are reported alike."""
    compare(
        Scenario(
            lambda: (
                RunnableLambda(lambda d: d, name="a")
                | RunnableLambda(lambda d: {"output": d, "x": 1}, name="b")
            ),
            {"input": 5, "x": 1},
            mode=mode,
            handler_kwargs={"_schema_format": fmt},
        ),
        candidate,
    )


@pytest.mark.parametrize("mode", MODES)
def test_unicode_and_punctuated_names_ops_match(candidate: type, mode: str) -> None:
    """Run names with spaces, unicode, dots, commas and angle brackets: identical keys and ops."""
    compare(
        Scenario(
            lambda: (
                RunnableLambda(_add_one, name="café ☕ step")
                | RunnableLambda(_double, name="a.b<c>,d e")
                | RunnableLambda(_add_one, name="café ☕ step")
            ),
            1,
            mode=mode,
        ),
        candidate,
    )


def handler_on_inner_step(handler: Any) -> Runnable[Any, Any]:
    inner = (
        RunnableLambda(_add_one, name="inner_a") | RunnableLambda(_double, name="inner_b")
    ).with_config(callbacks=[handler], run_name="traced_part")
    return (
        RunnableLambda(_add_one, name="untraced_before")
        | inner
        | RunnableLambda(_double, name="untraced_after")
    )


@pytest.mark.parametrize("auto_close", [True, False], ids=["autoclose", "noautoclose"])
@pytest.mark.parametrize("mode", MODES)
def test_handler_attached_to_inner_step_ops_match(
    candidate: type, mode: str, auto_close: bool
) -> None:
    """A handler attached only to an inner sub-chain treats it as the root, identically."""
    compare(
        Scenario(
            handler_on_inner_step,
            1,
            mode=mode,
            handler_in_factory=True,
            handler_kwargs={"auto_close": auto_close},
        ),
        candidate,
    )
