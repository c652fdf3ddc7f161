"""Tests for :mod:`logstream._tracing`: native runs via ``trace`` blocks and ``traced``.

Runs are recorded on a :class:`~logstream.Tracer` with a fake clock and counted ids, so
the ops are exact; the same events sent through the callback adapter must give the same
ops. Nesting is checked across plain calls, gathered tasks, ``create_task`` and threads.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import jsonpatch  # type: ignore[import-untyped,unused-ignore]
import pytest

from logstream import (
    ContextThreadPoolExecutor,
    LogStreamCallbackHandler,
    RunTypeError,
    Tracer,
    bind_context,
    current_run,
    trace,
    traced,
)
from logstream._tracing import accumulate

Ops = list[dict[str, Any]]
TIMEOUT = 60.0


class Clock:
    """A fake clock moving 1 ms per read."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def __call__(self) -> datetime:
        now = self.now
        self.now += timedelta(milliseconds=1)
        return now


def counted_ids() -> Callable[[], uuid.UUID]:
    """Return an id factory giving uuid(1), uuid(2), ..."""
    counter = iter(range(1, 1_000_000))
    return lambda: uuid.UUID(int=next(counter))


def make_tracer(**kwargs: Any) -> Tracer:
    """Return a tracer with a fake clock and counted ids."""
    return Tracer(clock=Clock(), id_factory=counted_ids(), **kwargs)


def ops_of(source: Any) -> Ops:
    """Drain a closed tracer or handler into one list of ops."""
    return [op for patch in source for op in patch.ops]


def drain(tracer: Tracer) -> Ops:
    """Take the ops queued so far without waiting for close."""
    return [op for patch in tracer.drain() for op in patch.ops]


def state_of(ops: Ops) -> dict[str, Any]:
    """Apply ``ops`` to an empty document."""
    result: dict[str, Any] = jsonpatch.apply_patch(None, ops)
    return result


class TestTraceBlocks:
    def test_nested_blocks_build_the_tree(self) -> None:
        """A trace block inside another is logged as its child, with inputs and outputs."""
        tracer = make_tracer()
        with trace("agent", tracer=tracer, inputs="q") as root:
            with trace("lookup", "tool", inputs="q") as tool:
                tool.outputs = "42"
            root.outputs = "done"
        state = state_of(ops_of(tracer))
        assert state["name"] == "agent"
        entry = state["logs"]["lookup"]
        assert entry["type"] == "tool"
        assert entry["inputs"] == "q"
        assert entry["final_output"] == "42"
        assert entry["end_time"] is not None
        assert tracer.closed

    def test_child_record_names_its_parent(self) -> None:
        """The run record of a nested block points at the enclosing run."""
        tracer = make_tracer()
        with trace("agent", tracer=tracer) as root:
            with trace("step") as child:
                assert current_run() is child
                assert child.run is not None and root.run is not None
                assert child.run.parent_id == root.run.id
                assert child.run.trace_id == root.run.id
            assert current_run() is root
        assert current_run() is None

    def test_error_fails_the_run_and_propagates(self) -> None:
        """An exception in a block fails its run (no outputs) and is re-raised."""
        tracer = make_tracer()
        with pytest.raises(ZeroDivisionError):
            with trace("agent", tracer=tracer):
                with trace("divide", "tool") as tool:
                    assert tool.run is not None and tool.run.status == "running"
                    1 / 0  # noqa: B018
        run = tool.run  # the record as the run finished
        assert run is not None
        assert run.status == "error"
        assert "ZeroDivisionError" in (run.error or "")
        state = state_of(ops_of(tracer))
        assert state["logs"]["divide"]["final_output"] is None
        assert state["logs"]["divide"]["end_time"] is not None

    def test_tokens_and_chunks_are_streamed(self) -> None:
        """scope.token fills streamed_output_str; scope.chunk fills streamed_output."""
        tracer = make_tracer()
        with trace("agent", tracer=tracer):
            with trace("model", "llm", inputs="hi") as model:
                model.token("Hel")
                model.token("lo")
                model.outputs = "Hello"
            with trace("parse", "parser") as parser:
                parser.chunk({"a": 1})
        logs = state_of(ops_of(tracer))["logs"]
        assert logs["model"]["streamed_output_str"] == ["Hel", "lo"]
        assert logs["model"]["inputs"] == {"prompts": ["hi"]}
        assert logs["model"]["final_output"]["generations"][0][0]["text"] == "Hello"
        assert logs["parse"]["streamed_output"] == [{"a": 1}]

    def test_token_on_a_chain_run_is_a_type_error(self) -> None:
        """Tokens belong to llm and chat_model runs; a chain's token raises RunTypeError."""
        tracer = make_tracer()
        with trace("agent", tracer=tracer):
            with trace("step") as step:
                with pytest.raises(RunTypeError):
                    step.token("x")

    def test_async_blocks_nest(self) -> None:
        """``async with trace(...)`` opens and closes runs like ``with``."""
        tracer = make_tracer()

        async def main() -> None:
            async with trace("agent", tracer=tracer):
                async with trace("step") as step:
                    step.outputs = 1

        asyncio.run(main())
        assert state_of(ops_of(tracer))["logs"]["step"]["final_output"] == 1

    def test_no_tracer_means_untraced(self) -> None:
        """With no tracer active a block runs untraced and its methods do nothing."""
        with trace("alone", "llm") as scope:
            scope.token("ignored")
            scope.chunk("ignored")
            assert scope.run is None and scope.id is None
            assert current_run() is scope

    def test_explicit_parent_overrides_the_context(self) -> None:
        """``parent=`` nests a run under a chosen run, not the current one."""
        tracer = make_tracer()
        with trace("agent", tracer=tracer) as root:
            with trace("a") as a:
                with trace("b", parent=root) as b:
                    assert b.run is not None and a.run is not None and root.run is not None
                    assert b.run.parent_id == root.run.id

    def test_other_tracer_starts_its_own_root(self) -> None:
        """A block on another tracer is a root there, not a child of the current run."""
        first, second = make_tracer(), make_tracer()
        with trace("agent", tracer=first):
            with trace("side", tracer=second) as side:
                assert side.run is not None and side.run.parent_id is None
        assert state_of(ops_of(second))["name"] == "side"

    def test_parent_on_another_tracer_is_rejected(self) -> None:
        """Giving a parent recorded elsewhere together with a tracer is a ValueError."""
        first, second = make_tracer(), make_tracer()
        with trace("agent", tracer=first) as root:
            with pytest.raises(ValueError, match="another tracer"):
                trace("x", parent=root, tracer=second)

    def test_tags_and_metadata_are_inherited(self) -> None:
        """A child run carries its parent's tags and metadata, as LangChain config does."""
        tracer = make_tracer()
        with trace("agent", tracer=tracer, tags=["t1"], metadata={"user": "u"}):
            with trace("step", tags=["t2"], metadata={"k": 1}):
                pass
        entry = state_of(ops_of(tracer))["logs"]["step"]
        assert entry["tags"] == ["t1", "t2"]
        assert entry["metadata"] == {"user": "u", "k": 1}

    def test_include_tags_filter_sees_inherited_tags(self) -> None:
        """Filtering by a root tag logs every run beneath it."""
        tracer = make_tracer(include_tags=["keep"])
        with trace("agent", tracer=tracer, tags=["keep"]):
            with trace("step"):
                pass
        assert list(state_of(ops_of(tracer))["logs"]) == ["step"]

    def test_reentering_a_scope_is_an_error(self) -> None:
        """A scope is one run: entering it twice raises RuntimeError."""
        tracer = make_tracer(auto_close=False)
        scope = trace("agent", tracer=tracer)
        with scope:
            pass
        with pytest.raises(RuntimeError, match="already entered"):
            scope.__enter__()

    def test_bad_run_type_is_a_type_error(self) -> None:
        """``run_type`` must be a string."""
        with pytest.raises(TypeError, match="run_type"):
            trace("x", 3)  # type: ignore[arg-type]

    def test_after_close_blocks_still_run(self) -> None:
        """Once the stream is closed, traced code keeps running and emits nothing."""
        tracer = make_tracer(auto_close=False)
        tracer.close()
        with trace("agent", tracer=tracer) as root:
            with trace("step") as step:
                step.outputs = 1
        assert root.run is None
        assert ops_of(tracer) == []


class TestSameOpsAsTheAdapter:
    @pytest.mark.parametrize("schema_format", ["original", "streaming_events"])
    def test_native_runs_match_callbacks(self, schema_format: str) -> None:
        """Native runs emit the adapter's ops for the same events, plus the root's output."""
        native = make_tracer(schema_format=schema_format)  # type: ignore[arg-type]
        with trace("agent", tracer=native, inputs={"q": "hi"}, tags=["t"]) as root:
            with trace("model", "llm", inputs="hi") as model:
                model.token("Hel")
                model.token("lo")
                model.outputs = {"generations": [[{"text": "Hello"}]]}
            with trace("search", "tool", inputs="weather") as tool:
                tool.outputs = "sunny"
            with trace("docs", "retriever", inputs="weather") as docs:
                docs.outputs = ["d1"]
            with trace("fmt", "prompt", inputs={"x": 1}) as prompt:
                prompt.outputs = "text"
            root.outputs = {"answer": "Hello"}

        handler = LogStreamCallbackHandler(
            clock=Clock(),
            _schema_format=schema_format,  # type: ignore[arg-type]
        )
        ids = [uuid.UUID(int=n) for n in range(1, 6)]
        r, m, t, d, p = ids
        handler.on_chain_start({}, {"q": "hi"}, run_id=r, name="agent", tags=["t"])
        handler.on_llm_start({}, ["hi"], run_id=m, parent_run_id=r, name="model", tags=["t"])
        handler.on_llm_new_token("Hel", run_id=m)
        handler.on_llm_new_token("lo", run_id=m)
        handler.on_llm_end({"generations": [[{"text": "Hello"}]]}, run_id=m)
        handler.on_tool_start(
            {}, "weather", run_id=t, parent_run_id=r, name="search", tags=["t"], inputs="weather"
        )
        handler.on_tool_end("sunny", run_id=t)
        handler.on_retriever_start(
            {}, "weather", run_id=d, parent_run_id=r, name="docs", tags=["t"]
        )
        handler.on_retriever_end(["d1"], run_id=d)
        handler.on_chain_start(
            {}, {"x": 1}, run_id=p, parent_run_id=r, name="fmt", run_type="prompt", tags=["t"]
        )
        handler.on_chain_end("text", run_id=p)
        handler.on_chain_end({"answer": "Hello"}, run_id=r)
        # The one intended difference: a native root reports its outputs in /final_output
        root_output = {"op": "replace", "path": "/final_output", "value": {"answer": "Hello"}}
        assert ops_of(native) == [*ops_of(handler), root_output]


class TestTraced:
    def test_function_inputs_and_outputs(self) -> None:
        """A traced function's one argument is its input and its return value its output."""
        tracer = make_tracer()

        @traced(run_type="tool")
        def double(x: int) -> int:
            return x * 2

        with trace("agent", tracer=tracer):
            assert double(21) == 42
        entry = state_of(ops_of(tracer))["logs"]["double"]
        assert entry["inputs"] == 21
        assert entry["final_output"] == 42

    def test_several_arguments_are_named(self) -> None:
        """Several arguments become a dict by parameter name (defaults included when bound)."""
        tracer = make_tracer()

        @traced
        def add(a: int, b: int = 2) -> int:
            return a + b

        with trace("agent", tracer=tracer):
            add(1, b=5)
        assert state_of(ops_of(tracer))["logs"]["add"]["inputs"] == {"a": 1, "b": 5}

    def test_custom_name_tags_and_metadata(self) -> None:
        """``traced("name", tags=..., metadata=...)`` sets the run's name, tags and metadata."""
        tracer = make_tracer()

        @traced("renamed", "tool", tags=["x"], metadata={"v": 1})
        def f(x: int) -> int:
            return x

        with trace("agent", tracer=tracer):
            f(1)
        entry = state_of(ops_of(tracer))["logs"]["renamed"]
        assert (entry["tags"], entry["metadata"]) == (["x"], {"v": 1})

    def test_generator_llm_streams_tokens(self) -> None:
        """An llm generator's items are tokens; its output is their sum as an LLMResult."""
        tracer = make_tracer()

        @traced(run_type="llm")
        def model(prompt: str) -> Iterator[str]:
            yield from ["Hel", "lo"]

        with trace("agent", tracer=tracer):
            assert list(model("hi")) == ["Hel", "lo"]
        entry = state_of(ops_of(tracer))["logs"]["model"]
        assert entry["streamed_output_str"] == ["Hel", "lo"]
        assert entry["final_output"]["generations"][0][0]["text"] == "Hello"

    def test_generator_chain_streams_chunks(self) -> None:
        """A chain generator's items are chunks; its output adds them with ``+``."""
        tracer = make_tracer()

        @traced
        def numbers(n: int) -> Iterator[list[int]]:
            for i in range(n):
                yield [i]

        with trace("agent", tracer=tracer):
            assert list(numbers(3)) == [[0], [1], [2]]
        entry = state_of(ops_of(tracer))["logs"]["numbers"]
        assert entry["streamed_output"] == [[0], [1], [2]]
        assert entry["final_output"] == [0, 1, 2]

    def test_generator_return_value_and_send_pass_through(self) -> None:
        """A traced generator forwards sent values and returns the inner return value."""
        tracer = make_tracer()

        @traced
        def echo(_: None) -> Any:
            got = yield "first"
            yield got
            return "result"

        with trace("agent", tracer=tracer):
            gen = echo(None)
            assert next(gen) == "first"
            assert gen.send("sent") == "sent"
            with pytest.raises(StopIteration) as stop:
                next(gen)
        assert stop.value.value == "result"

    def test_generator_closed_early_fails_its_run(self) -> None:
        """Closing a traced generator early closes the inner one and fails the run."""
        tracer = make_tracer()
        closed = []

        @traced
        def forever(_: None) -> Iterator[int]:
            try:
                while True:
                    yield 1
            finally:
                closed.append(True)

        with trace("agent", tracer=tracer):
            gen = forever(None)
            next(gen)
            gen.close()
        assert closed == [True]
        entry = state_of(ops_of(tracer))["logs"]["forever"]
        assert entry["end_time"] is not None

    def test_generator_body_is_current_only_while_running(self) -> None:
        """Between items, the consumer's code does not see the generator's run as current."""
        tracer = make_tracer()
        seen_inside: list[Any] = []

        @traced
        def gen(_: None) -> Iterator[int]:
            seen_inside.append(current_run())
            yield 1
            seen_inside.append(current_run())
            yield 2

        with trace("agent", tracer=tracer) as root:
            for _ in gen(None):
                assert current_run() is root
        assert all(s is not None and s.name == "gen" for s in seen_inside)

    def test_async_function_and_async_generator(self) -> None:
        """Coroutine functions and async generator functions are traced too."""
        tracer = make_tracer()

        @traced(run_type="tool")
        async def fetch(x: int) -> int:
            await asyncio.sleep(0)
            return x + 1

        @traced(run_type="chat_model")
        async def chat(prompt: str) -> AsyncIterator[str]:
            for t in ["a", "b"]:
                await asyncio.sleep(0)
                yield t

        async def main() -> None:
            async with trace("agent", tracer=tracer):
                assert await fetch(1) == 2
                assert [t async for t in chat("hi")] == ["a", "b"]

        asyncio.run(main())
        logs = state_of(ops_of(tracer))["logs"]
        assert logs["fetch"]["final_output"] == 2
        assert logs["chat"]["streamed_output_str"] == ["a", "b"]

    def test_errors_fail_and_propagate(self) -> None:
        """A traced function that raises fails its run and the error reaches the caller."""
        tracer = make_tracer()

        @traced
        def boom(_: None) -> None:
            raise KeyError("k")

        with pytest.raises(KeyError):
            with trace("agent", tracer=tracer):
                boom(None)
        assert state_of(ops_of(tracer))["logs"]["boom"]["end_time"] is not None

    def test_untraced_without_tracer(self) -> None:
        """With no tracer active the wrapped callables behave exactly as the originals."""

        @traced
        def f(x: int) -> int:
            return x + 1

        @traced
        def g(x: int) -> Iterator[int]:
            yield x

        @traced
        async def h(x: int) -> int:
            return x

        @traced
        async def k(x: int) -> AsyncIterator[int]:
            yield x

        async def main() -> tuple[int, list[int]]:
            return await h(3), [v async for v in k(4)]

        assert f(1) == 2
        assert list(g(2)) == [2]
        assert asyncio.run(main()) == (3, [4])

    def test_explicit_tracer_on_the_decorator(self) -> None:
        """``traced(tracer=...)`` records calls made outside any run as roots there."""
        tracer = make_tracer()

        @traced(tracer=tracer)
        def job(x: int) -> int:
            return x

        job(7)
        assert state_of(ops_of(tracer))["name"] == "job"


class TestNesting:
    def test_gathered_tasks_nest_under_the_caller(self) -> None:
        """Runs in tasks made by ``gather`` and ``create_task`` get the right parents."""
        tracer = make_tracer()
        parents: dict[str, Any] = {}

        @traced(run_type="tool")
        async def tool(name: str) -> str:
            scope = current_run()
            assert scope is not None and scope.run is not None
            parents[name] = scope.run.parent_id
            await asyncio.sleep(0)
            return name

        async def main() -> None:
            async with trace("agent", tracer=tracer) as root:
                async with trace("plan") as plan:
                    await asyncio.gather(tool("a"), tool("b"))
                    task = asyncio.create_task(tool("c"))
                    await asyncio.sleep(0)  # the task starts while "plan" is open
                await task
                await tool("d")
                parents["plan"] = plan.id
                parents["root"] = root.id

        asyncio.run(main())
        assert parents["a"] == parents["b"] == parents["c"] == parents["plan"]
        assert parents["d"] == parents["root"]

    def test_threads_with_bind_context_nest(self) -> None:
        """A thread started with ``bind_context`` nests its runs under the current run."""
        tracer = make_tracer()
        found: list[Any] = []

        def work() -> None:
            with trace("in-thread") as scope:
                found.append(scope.run.parent_id if scope.run else None)

        with trace("agent", tracer=tracer) as root:
            thread = threading.Thread(target=bind_context(work))
            thread.start()
            thread.join(TIMEOUT)
            plain = threading.Thread(target=work)  # no context: untraced
            plain.start()
            plain.join(TIMEOUT)
        assert found == [root.id, None]
        assert list(state_of(ops_of(tracer))["logs"]) == ["in-thread"]

    def test_context_thread_pool_nests(self) -> None:
        """Tasks submitted to ContextThreadPoolExecutor nest under the submitting run."""
        tracer = make_tracer()

        @traced(run_type="tool")
        def work(i: int) -> int:
            scope = current_run()
            assert scope is not None and scope.run is not None
            return i

        with trace("agent", tracer=tracer):
            with trace("fan-out") as fan:
                with ContextThreadPoolExecutor(max_workers=4) as pool:
                    results = list(pool.map(work, range(8)))
        assert results == list(range(8))
        assert fan.run is not None
        state = state_of(ops_of(tracer))
        work_entries = [k for k in state["logs"] if k.startswith("work")]
        assert len(work_entries) == 8
        assert all(state["logs"][k]["final_output"] is not None for k in work_entries)

    def test_parallel_threads_stream_tokens_without_loss(self) -> None:
        """Eight threads streaming tokens under one root lose and reorder nothing."""
        tracer = make_tracer()

        @traced(run_type="llm")
        def model(i: int) -> Iterator[str]:
            for j in range(50):
                yield f"{i}:{j}"

        def worker(i: int) -> None:
            for _ in model(i):
                pass

        with trace("agent", tracer=tracer):
            threads = [threading.Thread(target=bind_context(worker), args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(TIMEOUT)
        logs = state_of(ops_of(tracer))["logs"]
        streams = sorted(entry["streamed_output_str"] for entry in logs.values())
        assert streams == sorted([f"{i}:{j}" for j in range(50)] for i in range(8))


class TestAccumulate:
    @pytest.mark.parametrize(
        ("total", "chunk", "expected"),
        [
            (None, "a", "a"),
            ("a", "b", "ab"),
            ([1], [2], [1, 2]),
            (1, 2, 3),
            ({"a": 1}, {"b": 2}, {"b": 2}),
            ("a", 1, 1),
        ],
    )
    def test_adds_or_falls_back(self, total: Any, chunk: Any, expected: Any) -> None:
        """Chunks add with ``+``; the latest chunk wins where ``+`` fails."""
        assert accumulate(total, chunk) == expected


class TestInputsOfACall:
    def test_method_self_is_left_out(self) -> None:
        """A traced method's input is its argument, not ``self``."""
        tracer = make_tracer()

        class Tool:
            @traced(run_type="tool")
            def run(self, query: str) -> str:
                return query.upper()

        with trace("agent", tracer=tracer):
            assert Tool().run("q") == "Q"
        assert state_of(ops_of(tracer))["logs"]["run"]["inputs"] == "q"

    def test_varargs_stay_named(self) -> None:
        """A lone ``*args`` is shown by name, as the tuple it is."""
        tracer = make_tracer()

        @traced
        def total(*numbers: int) -> int:
            return sum(numbers)

        with trace("agent", tracer=tracer):
            total(1, 2)
        assert state_of(ops_of(tracer))["logs"]["total"]["inputs"] == {"numbers": (1, 2)}


class TestBindContext:
    def test_one_bound_function_runs_in_two_threads_at_once(self) -> None:
        """A function bound once can run concurrently: each call gets its own context copy."""
        tracer = make_tracer()
        both_in = threading.Barrier(2, timeout=TIMEOUT)

        def work(i: int) -> int:
            both_in.wait()  # both calls are inside their contexts at the same time
            with trace(f"w{i}"):
                pass
            return i

        with trace("agent", tracer=tracer):
            bound = bind_context(work)
            with ContextThreadPoolExecutor(max_workers=2) as pool:
                assert sorted(pool.map(bound, [1, 2])) == [1, 2]
        assert sorted(state_of(ops_of(tracer))["logs"]) == ["w1", "w2"]


class TestTypes:
    def test_traced_keeps_the_signature_for_type_checkers(self) -> None:
        """``traced`` returns the same callable type (overloads), and records its spec."""
        from logstream._tracing import traced_spec

        def f(x: int) -> int:
            return x

        g = traced(f)
        h = traced("n", "tool")(f)
        assert traced_spec(g) is not None and traced_spec(g).name == "f"  # type: ignore[union-attr]
        assert traced_spec(h) is not None and traced_spec(h).run_type == "tool"  # type: ignore[union-attr]
        assert traced_spec(f) is None
        assert g.__wrapped__ is f  # type: ignore[attr-defined]


class TestMisuse:
    def test_token_after_the_block_is_an_unknown_run(self) -> None:
        """Using a scope after its block exited raises UnknownRunError saying it ended."""
        from logstream import UnknownRunError

        tracer = make_tracer()
        with trace("agent", tracer=tracer):
            with trace("model", "llm") as model:
                pass
            with pytest.raises(UnknownRunError) as caught:
                model.token("late")
        assert caught.value.state == "ended"

    def test_a_failing_redactor_records_nothing(self) -> None:
        """If ``redact`` raises, the error reaches the caller and no run or patch is made."""

        def broken(value: Any) -> Any:
            raise RuntimeError("redactor bug")

        tracer = make_tracer(redact=broken, auto_close=False)
        with pytest.raises(RuntimeError, match="redactor bug"):
            with trace("agent", tracer=tracer):
                pass  # pragma: no cover
        assert drain(tracer) == []
        assert tracer.open_runs == 0

    def test_chunk_after_the_block_lands_in_the_entry(self) -> None:
        """A chunk reported after the block exited is added to the entry, like a late tap."""
        tracer = make_tracer()
        with trace("agent", tracer=tracer):
            with trace("step") as step:
                pass
            step.chunk("late")
        assert state_of(ops_of(tracer))["logs"]["step"]["streamed_output"] == ["late"]


class TestGeneratorSemantics:
    def test_a_block_open_across_a_yield_stays_current(self) -> None:
        """Inside a traced generator, a ``trace`` block open across a yield is still current."""
        tracer = make_tracer()
        parents: dict[str, Any] = {}

        @traced
        def gen(_: None) -> Iterator[int]:
            with trace("inner") as inner:
                yield 1
                with trace("child") as child:
                    parents["child"] = child.run.parent_id if child.run else None
                parents["inner"] = inner.id

        with trace("agent", tracer=tracer):
            list(gen(None))
        assert parents["child"] == parents["inner"]

    def test_throw_reaches_the_wrapped_generator(self) -> None:
        """``throw()`` into a traced generator is handled by the generator's own code."""
        tracer = make_tracer()

        @traced
        def gen(_: None) -> Iterator[str]:
            try:
                yield "first"
            except KeyError:
                yield "handled"

        with trace("agent", tracer=tracer):
            g = gen(None)
            assert next(g) == "first"
            assert g.throw(KeyError("k")) == "handled"

    def test_redact_runs_once_per_token(self) -> None:
        """A native token without a chunk is redacted once, for both ops."""
        calls: list[Any] = []

        def redact(value: Any) -> Any:
            calls.append(value)
            return value

        tracer = make_tracer(redact=redact, auto_close=False)
        with trace("agent", tracer=tracer):
            with trace("model", "llm") as model:
                calls.clear()
                model.token("hello")
                assert calls == ["hello"]


class TestTagsAreChecked:
    def test_bare_string_tags_are_refused_at_trace(self) -> None:
        """trace(tags="abc") raises RunArgumentError instead of tagging 'a', 'b', 'c'."""
        from logstream import RunArgumentError

        tracer = make_tracer()
        with trace("agent", tracer=tracer, tags=["outer"]) as root:
            with pytest.raises(RunArgumentError, match=r"write tags=\['abc'\]"):
                trace("child", tags="abc")  # type: ignore[arg-type]
            with trace("child", tags=["abc"]) as child:
                pass
        assert root.run is not None and child.run is not None
        assert child.run.tags == ("abc", "outer")
