"""Tests for :mod:`logstream._streaming`: ``astream_log`` and ``stream_log`` of plain callables.

Timeliness is checked with events, never with timing: the target waits until the
consumer has seen its previous token, which can only happen if that token was delivered
while the target was still running.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import jsonpatch  # type: ignore[import-untyped,unused-ignore]
import pytest

from logstream import RunLog, RunLogPatch, astream_log, stream_log, trace, traced

TIMEOUT = 30.0
Ops = list[dict[str, Any]]


class Clock:
    """A fake clock moving 1 ms per read (thread-safe)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self.lock = threading.Lock()

    def __call__(self) -> datetime:
        with self.lock:
            now = self.now
            self.now += timedelta(milliseconds=1)
        return now


def counted_ids() -> Callable[[], uuid.UUID]:
    """Return an id factory giving uuid(1), uuid(2), ..."""
    counter = iter(range(1, 1_000_000))
    lock = threading.Lock()

    def new_id() -> uuid.UUID:
        with lock:
            return uuid.UUID(int=next(counter))

    return new_id


def det() -> dict[str, Any]:
    """Options for deterministic ids and times."""
    return {"clock": Clock(), "id_factory": counted_ids()}


def collect(target: Any, value: Any, **options: Any) -> list[Any]:
    """Run ``stream_log`` to the end and return what it yielded."""
    return list(stream_log(target, value, **options))


def acollect(target: Any, value: Any, **options: Any) -> list[Any]:
    """Run ``astream_log`` to the end in a fresh loop and return what it yielded."""

    async def main() -> list[Any]:
        return [item async for item in astream_log(target, value, **options)]

    return asyncio.run(main())


def all_ops(patches: list[Any]) -> Ops:
    """Flatten patches into their ops."""
    return [op for patch in patches for op in patch.ops]


def letters(_: Any) -> Iterator[str]:
    """Yield three letters."""
    yield from ["a", "b", "c"]


ROOT_ID = str(uuid.UUID(int=1))


class TestRootOps:
    @pytest.mark.parametrize("runner", [collect, acollect])
    def test_string_chunks(self, runner: Callable[..., list[Any]]) -> None:
        """Each chunk is appended to streamed_output and final_output replaced by the sum."""
        ops = all_ops(runner(letters, "x", **det()))
        assert ops == [
            {
                "op": "replace",
                "path": "",
                "value": {
                    "id": ROOT_ID,
                    "streamed_output": [],
                    "final_output": None,
                    "logs": {},
                    "name": "letters",
                    "type": "chain",
                },
            },
            {"op": "add", "path": "/streamed_output/-", "value": "a"},
            {"op": "replace", "path": "/final_output", "value": "a"},
            {"op": "add", "path": "/streamed_output/-", "value": "b"},
            {"op": "replace", "path": "/final_output", "value": "ab"},
            {"op": "add", "path": "/streamed_output/-", "value": "c"},
            {"op": "replace", "path": "/final_output", "value": "abc"},
        ]

    def test_list_chunks_diff_as_appends(self) -> None:
        """Lists add up, so final_output grows by JSON Patch appends."""

        def lists(_: Any) -> Iterator[list[int]]:
            yield [1]
            yield [2, 3]

        ops = all_ops(collect(lists, None, with_streamed_output_list=False))[1:]
        assert ops == [
            {"op": "replace", "path": "/final_output", "value": [1]},
            {"op": "add", "path": "/final_output/1", "value": 2},
            {"op": "add", "path": "/final_output/2", "value": 3},
        ]

    def test_unaddable_chunks_replace(self) -> None:
        """Where ``+`` fails (dict + dict, str + int) the latest chunk replaces the output."""

        def mixed(_: Any) -> Iterator[Any]:
            yield {"a": 1}
            yield {"b": 2}
            yield 3

        ops = all_ops(collect(mixed, None, with_streamed_output_list=False))[1:]
        assert ops == [
            {"op": "replace", "path": "/final_output", "value": {"a": 1}},
            {"op": "replace", "path": "/final_output", "value": {"b": 2}},
            {"op": "replace", "path": "/final_output", "value": 3},
        ]

    def test_function_result_is_one_chunk(self) -> None:
        """A plain function's return value is the single output chunk."""
        ops = all_ops(collect(lambda x: {"x": x}, 1, name="f"))
        assert ops[0]["value"]["name"] == "f"
        assert ops[1:] == [
            {"op": "add", "path": "/streamed_output/-", "value": {"x": 1}},
            {"op": "replace", "path": "/final_output", "value": {"x": 1}},
        ]

    def test_async_targets(self) -> None:
        """Coroutine functions and async generators stream through both entry points."""

        async def coro(x: int) -> int:
            await asyncio.sleep(0)
            return x

        async def agen(x: int) -> AsyncIterator[int]:
            for i in range(x):
                yield i

        for runner in (collect, acollect):
            assert jsonpatch.apply_patch(None, all_ops(runner(coro, 5)))["final_output"] == 5
            state = jsonpatch.apply_patch(None, all_ops(runner(agen, 3)))
            assert (state["streamed_output"], state["final_output"]) == ([0, 1, 2], 3)

    def test_callable_instance_with_async_call(self) -> None:
        """An object whose ``__call__`` is async is awaited, named after its class."""

        class Step:
            async def __call__(self, x: int) -> int:
                return x * 2

        ops = all_ops(acollect(Step(), 2))
        assert ops[0]["value"]["name"] == "Step"
        assert ops[-1] == {"op": "replace", "path": "/final_output", "value": 4}

    def test_chunks_are_copied(self) -> None:
        """A chunk mutated after it was yielded does not change what was streamed."""

        def mutating(_: Any) -> Iterator[dict[str, Any]]:
            chunk: dict[str, Any] = {"n": 1}
            yield chunk
            chunk["n"] = 2
            yield {"done": True}

        ops = all_ops(collect(mutating, None))
        assert ops[1] == {"op": "add", "path": "/streamed_output/-", "value": {"n": 1}}
        assert ops[2] == {"op": "replace", "path": "/final_output", "value": {"n": 1}}

    def test_redact_applies_to_root_output(self) -> None:
        """``redact=`` masks root chunks before they enter any patch."""

        def leak(_: Any) -> Iterator[str]:
            yield "secret"

        def mask(value: Any) -> Any:
            return "***" if value == "secret" else value

        ops = all_ops(collect(leak, None, redact=mask))
        assert "secret" not in repr(ops)


class _ReprRaises:
    """A chunk whose repr and str raise."""

    def __repr__(self) -> str:
        msg = "no text"
        raise RuntimeError(msg)

    __str__ = __repr__


class _EqRaises:
    """A chunk whose ==, truth value and hash raise, as a numpy array's do."""

    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        msg = "ambiguous"
        raise ValueError(msg)

    def __bool__(self) -> bool:
        msg = "ambiguous"
        raise ValueError(msg)


class TestHostileChunks:
    @pytest.mark.parametrize("make", [_ReprRaises, _EqRaises, lambda: [_ReprRaises()]])
    def test_chunks_whose_dunders_raise_stream_to_the_end(self, make: Callable[[], Any]) -> None:
        """Root chunks whose repr, == or truth value raise are streamed; the diff holds."""
        chunks = [make(), make()]

        def agent(_: Any) -> Iterator[Any]:
            yield from chunks

        log: Any = RunLogPatch()
        for patch in stream_log(agent, None):
            log = log + patch
        streamed = log.state["streamed_output"]
        assert [type(item) for item in streamed] == [type(chunk) for chunk in chunks]
        final = log.state["final_output"]  # the latest chunk (+ fails), or the lists joined
        assert len(final) == 2 if isinstance(final, list) else type(final) is type(chunks[1])


class TestStates:
    @pytest.mark.parametrize("runner", [collect, acollect])
    def test_diff_false_yields_growing_states(self, runner: Callable[..., list[Any]]) -> None:
        """With ``diff=False`` each item is the RunLog after one more patch."""
        states = runner(letters, None, diff=False, **det())
        assert all(isinstance(s, RunLog) for s in states)
        assert [s.state["final_output"] for s in states] == [None, "a", "ab", "abc"]
        patches = collect(letters, None, **det())
        assert states[-1].state == jsonpatch.apply_patch(None, all_ops(patches))

    def test_patches_add_up_to_the_final_state(self) -> None:
        """Adding the yielded patches gives the state diff=False ends in."""
        patches = collect(letters, None, **det())
        total = patches[0]
        for patch in patches[1:]:
            total = total + patch
        assert isinstance(patches[0], RunLogPatch)
        assert total.state == collect(letters, None, diff=False, **det())[-1].state


class TestNestedRuns:
    def test_traced_steps_appear_under_logs(self) -> None:
        """Runs traced inside the target are logged, filtered as asked."""

        @traced(run_type="llm")
        def model(prompt: str) -> Iterator[str]:
            yield from ["Hi", "!"]

        @traced(run_type="tool")
        def search(q: str) -> str:
            return "found"

        def agent(q: str) -> Iterator[str]:
            yield "".join(model(q))
            yield search(q)

        logs = jsonpatch.apply_patch(None, all_ops(collect(agent, "q")))["logs"]
        assert sorted(logs) == ["model", "search"]
        assert logs["model"]["streamed_output_str"] == ["Hi", "!"]
        only_tools = collect(agent, "q", include_types=["tool"])
        assert list(jsonpatch.apply_patch(None, all_ops(only_tools))["logs"]) == ["search"]

    def test_async_target_with_gathered_children(self) -> None:
        """Children gathered in an async target nest under the root run."""

        @traced(run_type="tool")
        async def tool(name: str) -> str:
            await asyncio.sleep(0)
            return name

        async def agent(_: Any) -> list[str]:
            return list(await asyncio.gather(tool("a"), tool("b")))

        states = acollect(agent, None, diff=False)
        logs = states[-1].state["logs"]
        assert sorted(logs) == ["tool", "tool:2"]
        assert states[-1].state["final_output"] == ["a", "b"]

    def test_root_tags_are_inherited(self) -> None:
        """``tags=`` on the root reach the runs traced inside, so tag filters work."""

        def agent(_: Any) -> int:
            with trace("inner"):
                pass
            return 1

        patches = collect(agent, None, tags=["mine"], include_tags=["mine"])
        assert list(jsonpatch.apply_patch(None, all_ops(patches))["logs"]) == ["inner"]


class TestErrors:
    @pytest.mark.parametrize("runner", [collect, acollect])
    def test_patches_before_an_error_arrive_then_it_raises(
        self, runner: Callable[..., list[Any]]
    ) -> None:
        """The consumer gets every patch made before the error, then the error."""
        seen: list[Any] = []

        def failing(_: Any) -> Iterator[str]:
            yield "a"
            raise ValueError("boom")

        def consume() -> None:
            if runner is collect:
                for patch in stream_log(failing, None):
                    seen.append(patch)
            else:

                async def main() -> None:
                    async for patch in astream_log(failing, None):
                        seen.append(patch)

                asyncio.run(main())

        with pytest.raises(ValueError, match="boom"):
            consume()
        assert jsonpatch.apply_patch(None, all_ops(seen))["final_output"] == "a"

    def test_not_callable(self) -> None:
        """A target that is not callable is a TypeError, before anything runs."""
        with pytest.raises(TypeError, match="callable"):
            list(stream_log(42, None))  # type: ignore[arg-type]

    def test_unknown_option(self) -> None:
        """An option stream_log does not know is a TypeError naming it."""
        with pytest.raises(TypeError, match="bogus"):
            list(stream_log(letters, None, bogus=1))

    def test_bad_filter(self) -> None:
        """A bare-string filter rule is rejected."""
        with pytest.raises(TypeError):
            list(stream_log(letters, None, include_names="letters"))


class TestTimeliness:
    def test_sync_consumer_sees_each_token_while_the_target_runs(self) -> None:
        """stream_log delivers token k before the target produces token k+1."""
        seen = [threading.Event() for _ in range(5)]

        @traced(run_type="llm")
        def model(_: Any) -> Iterator[str]:
            for i in range(5):
                yield str(i)
                if not seen[i].wait(TIMEOUT):
                    raise TimeoutError(f"token {i} was not delivered while the run was live")

        def agent(x: Any) -> str:
            return "".join(model(x))

        for patch in stream_log(agent, None):
            for op in patch.ops:
                if op["path"].endswith("/streamed_output_str/-"):
                    seen[int(op["value"])].set()
        assert all(e.is_set() for e in seen)

    def test_async_consumer_sees_sync_code_live(self) -> None:
        """Sync code under astream_log runs in a thread, so tokens arrive one by one."""
        seen = [threading.Event() for _ in range(5)]

        def target(_: Any) -> Iterator[str]:
            for i in range(5):
                yield str(i)
                if not seen[i].wait(TIMEOUT):
                    raise TimeoutError(f"chunk {i} was not delivered while the run was live")

        async def main() -> None:
            async for patch in astream_log(target, None):
                for op in patch.ops:
                    if op["path"] == "/streamed_output/-":
                        seen[int(op["value"])].set()

        asyncio.run(main())
        assert all(e.is_set() for e in seen)

    def test_async_consumer_in_the_same_loop(self) -> None:
        """An async target and its consumer share a loop; each token arrives before the next."""

        async def main() -> None:
            seen = [asyncio.Event() for _ in range(5)]

            @traced(run_type="llm")
            async def model(_: Any) -> AsyncIterator[str]:
                for i in range(5):
                    yield str(i)
                    await asyncio.wait_for(seen[i].wait(), TIMEOUT)

            async def agent(x: Any) -> str:
                return "".join([t async for t in model(x)])

            async for patch in astream_log(agent, None):
                for op in patch.ops:
                    if op["path"].endswith("/streamed_output_str/-"):
                        seen[int(op["value"])].set()
            assert all(e.is_set() for e in seen)

        asyncio.run(main())

    def test_stream_log_inside_a_running_loop(self) -> None:
        """stream_log needs no event loop of its own: it works inside a coroutine's thread."""

        async def agen(_: Any) -> AsyncIterator[int]:
            yield 1

        async def main() -> Any:
            return jsonpatch.apply_patch(None, all_ops(collect(agen, None)))["final_output"]

        assert asyncio.run(main()) == 1


class TestEarlyExit:
    def test_break_closes_a_sync_generator_target(self) -> None:
        """Leaving stream_log early closes the target generator at its next chunk."""
        closed = threading.Event()
        may_go_on = threading.Event()

        def endless(_: Any) -> Iterator[int]:
            try:
                i = 0
                while True:
                    yield i
                    may_go_on.wait(TIMEOUT)
                    i += 1
            finally:
                closed.set()

        stream = stream_log(endless, None)
        for patch in stream:
            if any(op["path"] == "/streamed_output/-" for op in patch.ops):
                break
        stream.close()
        may_go_on.set()
        assert closed.wait(TIMEOUT)

    def test_break_cancels_an_async_target(self) -> None:
        """Leaving astream_log early cancels an async target."""
        outcome: list[str] = []

        async def endless(_: Any) -> AsyncIterator[int]:
            try:
                i = 0
                while True:
                    yield i
                    await asyncio.sleep(0)
                    i += 1
            except (asyncio.CancelledError, GeneratorExit):
                outcome.append("stopped")
                raise

        async def main() -> None:
            stream = astream_log(endless, None)
            async for patch in stream:
                if any(op["path"] == "/streamed_output/-" for op in patch.ops):
                    break
            await stream.aclose()  # type: ignore[attr-defined]

        asyncio.run(main())
        assert outcome == ["stopped"]

    def test_break_does_not_wait_for_a_blocked_sync_function(self) -> None:
        """A consumer leaving early is not held up by a sync target still running."""
        release = threading.Event()
        started = threading.Event()

        def slow(_: Any) -> int:
            started.set()
            release.wait(TIMEOUT)
            return 1

        async def main() -> None:
            stream = astream_log(slow, None)
            async for _ in stream:  # the root's start patch
                break
            await stream.aclose()  # type: ignore[attr-defined]

        asyncio.run(main())  # returns although `slow` is still blocked
        assert started.wait(TIMEOUT)
        release.set()


class TestTracedTargets:
    def test_a_traced_target_is_the_root_not_a_child(self) -> None:
        """Streaming a @traced callable makes its run the root, named and tagged as traced."""

        @traced("renamed", tags=["t"])
        def agent(_: Any) -> Iterator[str]:
            yield "a"

        patches = collect(agent, None)
        state = jsonpatch.apply_patch(None, all_ops(patches))
        assert state["name"] == "renamed"
        assert state["logs"] == {}
        assert state["final_output"] == "a"


class TestThreads:
    def test_stream_log_from_another_thread(self) -> None:
        """stream_log works when called from a thread that is not the main thread."""
        results: list[Any] = []

        async def agen(_: Any) -> AsyncIterator[str]:
            yield "x"

        def consume() -> None:
            for target in (letters, agen):
                results.append(jsonpatch.apply_patch(None, all_ops(collect(target, None))))

        thread = threading.Thread(target=consume)
        thread.start()
        thread.join(TIMEOUT)
        assert [r["final_output"] for r in results] == ["abc", "x"]


class TestBoundedBuffer:
    @pytest.mark.parametrize("runner", [collect, acollect])
    def test_a_small_buffer_blocks_the_target_and_loses_nothing(
        self, runner: Callable[..., list[Any]]
    ) -> None:
        """With ``max_buffer=1`` the target waits for the consumer; every chunk arrives."""

        def many(_: Any) -> Iterator[int]:
            yield from range(200)

        ops = all_ops(runner(many, None, max_buffer=1, block_timeout=TIMEOUT))
        state = jsonpatch.apply_patch(None, ops)
        assert state["streamed_output"] == list(range(200))
        assert state["final_output"] == sum(range(200))


def run_bounded(fn: Callable[[], Any]) -> list[Any]:
    """Run ``fn`` in a daemon thread; fail (instead of hanging) if it does not finish."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(fn()), daemon=True)
    thread.start()
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "hung"
    return out


class TestFoundInReview:
    def test_async_target_with_a_bounded_buffer_does_not_block_the_loop(self) -> None:
        """A burst of tokens from an async target with ``max_buffer`` never deadlocks."""

        async def target(_: Any) -> str:
            with trace("model", "llm") as model:
                for t in "abcdefgh":
                    model.token(t)  # no await between tokens
            return "done"

        ops = all_ops(run_bounded(lambda: acollect(target, 1, max_buffer=2))[0])
        state = jsonpatch.apply_patch(None, ops)
        assert state["logs"]["model"]["streamed_output_str"] == list("abcdefgh")

    @pytest.mark.parametrize("runner", [collect, acollect])
    def test_a_root_that_cannot_start_ends_the_stream(
        self, runner: Callable[..., list[Any]]
    ) -> None:
        """If the root's start raises (a broken redactor), the consumer gets the error."""

        def broken(_: Any) -> Any:
            raise ValueError("redactor bug")

        def attempt() -> str:
            try:
                runner(lambda x: x, 1, redact=broken)
            except ValueError as exc:
                return str(exc)
            return "no error"

        assert run_bounded(attempt) == ["redactor bug"]

    def test_leaving_early_is_not_replaced_by_the_target_error(self) -> None:
        """``aclose()`` after a break returns normally even if the target then fails."""

        async def failing(_: Any) -> AsyncIterator[int]:
            yield 1
            raise RuntimeError("after the consumer left")

        async def main() -> str:
            stream = astream_log(failing, None)
            async for _ in stream:
                break
            await stream.aclose()  # type: ignore[attr-defined]
            return "closed"

        assert asyncio.run(main()) == "closed"

    def test_a_bound_traced_method_keeps_self(self) -> None:
        """Streaming a bound ``@traced`` method calls it with its instance."""

        class Agent:
            prefix = "re: "

            @traced
            def answer(self, q: str) -> str:
                return self.prefix + q

        state = jsonpatch.apply_patch(None, all_ops(collect(Agent().answer, "hi")))
        assert (state["name"], state["final_output"]) == ("answer", "re: hi")

    def test_chunk_addition_may_trace(self) -> None:
        """Root output chunks are added outside the tracer's lock, so ``+`` may trace."""

        class Traced(str):
            def __add__(self, other: str) -> Traced:
                with trace("merge", "parser"):
                    return Traced(str.__add__(self, other))

        def target(_: Any) -> Iterator[str]:
            yield Traced("a")
            yield Traced("b")

        ops = all_ops(run_bounded(lambda: collect(target, None))[0])
        assert jsonpatch.apply_patch(None, ops)["final_output"] == "ab"


_PROGRAM_WITH_A_THREAD = """
import asyncio, sys, threading, time
from logstream import astream_log, stream_log

def target(_):
    def late_work():
        time.sleep(0.3)
        with open(sys.argv[2], "w") as f:
            f.write("done")
    threading.Thread(target=late_work).start()
    return 1

if sys.argv[1] == "sync":
    list(stream_log(target, None))
else:
    async def main():
        return [p async for p in astream_log(target, None)]
    asyncio.run(main())
"""

_PROGRAM_LEAVING_EARLY = """
import sys, threading
from logstream import stream_log

def blocked(_):
    threading.Event().wait()
    return 1

stream = stream_log(blocked, None)
next(stream)
stream.close()
print("left")
"""


class TestTargetThreads:
    @pytest.mark.parametrize("mode", ["sync", "async"])
    def test_a_thread_started_by_the_target_is_not_a_daemon(self, mode: str, tmp_path: Any) -> None:
        """A thread the target starts finishes its work before the process exits."""
        out = tmp_path / "done.txt"
        subprocess.run(
            [sys.executable, "-c", _PROGRAM_WITH_A_THREAD, mode, str(out)],
            check=True,
            timeout=TIMEOUT,
        )
        assert out.read_text() == "done"

    def test_a_thread_of_a_daemon_caller_stays_a_daemon(self) -> None:
        """Called from a daemon thread, the target's threads are daemons, as they would be."""
        flags: list[bool] = []

        def target(_: Any) -> int:
            flags.append(threading.Thread(target=lambda: None).daemon)
            return 1

        run_bounded(lambda: collect(target, None))  # run_bounded calls from a daemon thread
        flags.append(threading.Thread(target=lambda: None).daemon)  # and this from main
        assert flags == [True, False]

    def test_a_target_left_running_does_not_hold_up_the_exit(self) -> None:
        """A consumer that leaves early can exit although its target is blocked for good."""
        done = subprocess.run(
            [sys.executable, "-c", _PROGRAM_LEAVING_EARLY],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert done.stdout == "left\n"


class TestStopIteration:
    @pytest.mark.parametrize("runner", [collect, acollect])
    def test_a_target_raising_stop_iteration_fails_with_it_as_the_cause(
        self, runner: Callable[..., list[Any]]
    ) -> None:
        """A sync target's StopIteration reaches the consumer as the cause of a RuntimeError."""

        def target(_: Any) -> int:
            raise StopIteration("out of items")

        def attempt() -> BaseException:
            try:
                runner(target, None)
            except RuntimeError as exc:
                return exc
            raise AssertionError("no error")

        error = run_bounded(attempt)[0]
        assert isinstance(error.__cause__, StopIteration)
        assert str(error.__cause__) == "out of items"
