"""Tests of the events view: EventStream on a tracer, stream_events and astream_events."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstream import (
    BufferFullError,
    ConfigError,
    ContextThreadPoolExecutor,
    EventStream,
    FilterConfigError,
    LogStreamCallbackHandler,
    RunFilter,
    StreamEvent,
    Tracer,
    TracerConfig,
    astream_events,
    current_run,
    stream_events,
    trace,
    traced,
)

# ---------------------------------------------------------------------------
# a native agent: sub-agent, tools in a thread pool (one fails), a streaming model
# ---------------------------------------------------------------------------


@traced(run_type="chat_model")
def model(prompt: str) -> Iterator[str]:
    yield from ["It", " is", " sunny"]


@traced(run_type="tool")
def weather(city: str) -> str:
    scope = current_run()
    assert scope is not None
    scope.event("looked_up", {"city": city})
    return "sunny"


@traced(run_type="tool")
def divide(expression: str) -> float:
    left, right = expression.split("/")
    return int(left) / int(right)


@traced(name="researcher", tags=["sub"])
def researcher(question: str) -> str:
    with ContextThreadPoolExecutor(max_workers=2) as pool:
        forecast = pool.submit(weather, "Paris").result()
        try:
            pool.submit(divide, "1/0").result()
        except ZeroDivisionError:
            pass
    return forecast


def agent(question: str) -> Iterator[str]:
    yield researcher(question)
    yield "".join(model(question))


def _names(events: list[StreamEvent]) -> list[tuple[str, str]]:
    return [(e["event"], e["name"]) for e in events]


def _by_id(events: list[StreamEvent]) -> dict[str, str]:
    return {e["run_id"]: e["name"] for e in events if e["event"].endswith("_start")}


class TestStreamEvents:
    """stream_events over a native agent."""

    def test_agent_events_in_order(self) -> None:
        """Starts, tool events, the custom event, tokens and ends come in event order."""
        events = list(stream_events(agent, "Weather?"))
        assert _names(events) == [
            ("on_chain_start", "agent"),
            ("on_chain_start", "researcher"),
            ("on_tool_start", "weather"),
            ("on_custom_event", "looked_up"),
            ("on_tool_end", "weather"),
            ("on_tool_start", "divide"),
            ("on_tool_error", "divide"),
            ("on_chain_end", "researcher"),
            ("on_chain_stream", "agent"),
            ("on_chat_model_start", "model"),
            ("on_chat_model_stream", "model"),
            ("on_chat_model_stream", "model"),
            ("on_chat_model_stream", "model"),
            ("on_chat_model_end", "model"),
            ("on_chain_stream", "agent"),
            ("on_chain_end", "agent"),
        ]

    def test_parent_ids_nest_runs(self) -> None:
        """parent_ids name the ancestors, root first, across the thread pool too."""
        events = list(stream_events(agent, "Weather?"))
        names = _by_id(events)
        parents = {
            e["name"]: [names[p] for p in e["parent_ids"]]
            for e in events
            if e["event"].endswith("_start")
        }
        assert parents == {
            "agent": [],
            "researcher": ["agent"],
            "weather": ["agent", "researcher"],
            "divide": ["agent", "researcher"],
            "model": ["agent"],
        }
        custom = next(e for e in events if e["event"] == "on_custom_event")
        assert [names[p] for p in custom["parent_ids"]] == ["agent", "researcher"]
        assert names[custom["run_id"]] == "weather"

    def test_data_by_run_type(self) -> None:
        """Each event's data has the input, chunk, output or error astream_events puts there."""
        events = {(e["event"], e["name"]): e for e in stream_events(agent, "Weather?")}
        assert events["on_chain_start", "agent"]["data"] == {"input": "Weather?"}
        assert events["on_tool_start", "weather"]["data"] == {"input": "Paris"}
        assert events["on_tool_end", "weather"]["data"] == {"output": "sunny", "input": "Paris"}
        error = events["on_tool_error", "divide"]["data"]
        assert isinstance(error["error"], ZeroDivisionError)
        assert error["input"] == "1/0" and error["tool_call_id"] is None
        assert events["on_custom_event", "looked_up"]["data"] == {"city": "Paris"}
        assert events["on_chat_model_start", "model"]["data"] == {
            "input": {"messages": [["Weather?"]]}
        }
        assert events["on_chat_model_end", "model"]["data"]["output"] == "It is sunny"
        assert events["on_chain_end", "researcher"]["data"] == {
            "output": "sunny",
            "input": "Weather?",
        }
        assert events["on_chain_end", "agent"]["data"] == {"output": "sunnyIt is sunny"}

    def test_tags_and_metadata_inherited(self) -> None:
        """A child run's events carry the tags and metadata it inherited."""
        events = list(stream_events(agent, "q", tags=["root"], metadata={"user": "u1"}))
        weather_start = next(e for e in events if e["event"] == "on_tool_start")
        assert sorted(weather_start["tags"]) == ["root", "sub"]
        assert weather_start["metadata"] == {"user": "u1"}
        assert all(e["run_id"] for e in events)

    def test_tokens_stream_as_chunks(self) -> None:
        """A chat model's tokens become on_chat_model_stream chunks, in order."""
        chunks = [
            e["data"]["chunk"]
            for e in stream_events(agent, "q")
            if e["event"] == "on_chat_model_stream"
        ]
        assert chunks == ["It", " is", " sunny"]

    def test_traced_target_is_the_root(self) -> None:
        """A @traced target's own run is the root, with its type and name."""
        events = list(stream_events(weather, "Rome"))
        assert _names(events)[0] == ("on_tool_start", "weather")
        assert events[0]["parent_ids"] == []
        assert events[-1]["event"] == "on_tool_end"

    def test_target_error_after_its_events(self) -> None:
        """A target that raises yields every event, its error events too, then raises."""
        seen: list[StreamEvent] = []

        def failing(question: str) -> str:
            return str(divide(question))

        with pytest.raises(ZeroDivisionError):
            for event in stream_events(failing, "1/0"):
                seen.append(event)
        assert _names(seen) == [
            ("on_chain_start", "failing"),
            ("on_tool_start", "divide"),
            ("on_tool_error", "divide"),
            ("on_chain_error", "failing"),
        ]
        assert isinstance(seen[-1]["data"]["error"], ZeroDivisionError)

    def test_early_break_stops_a_generator(self) -> None:
        """A consumer that breaks stops a generator target at its next chunk."""
        produced: list[int] = []

        slow = threading.Event()  # never set: each chunk waits a moment

        def numbers(n: int) -> Iterator[int]:
            for i in range(n):
                produced.append(i)
                yield i
                slow.wait(0.005)

        for event in stream_events(numbers, 1000):
            if event["event"] == "on_chain_stream":
                break
        assert len(produced) < 1000

    def test_filters_apply_to_every_event(self) -> None:
        """include_types keeps tool events only, the root's too being filtered."""
        events = list(stream_events(agent, "q", include_types=["tool"]))
        assert {e["event"] for e in events} == {"on_tool_start", "on_tool_end", "on_tool_error"}

    def test_custom_event_filtered_by_its_name(self) -> None:
        """A custom event's name counts as its name and its type for the rules."""
        events = list(stream_events(agent, "q", include_types=["looked_up"]))
        assert _names(events) == [("on_custom_event", "looked_up")]
        events = list(stream_events(agent, "q", exclude_names=["looked_up", "model"]))
        assert "looked_up" not in {e["name"] for e in events}
        assert "model" not in {e["name"] for e in events}

    def test_exclude_tags_inherited(self) -> None:
        """exclude_tags drops a tagged run and the runs that inherit its tag."""
        events = list(stream_events(agent, "q", exclude_tags=["sub"]))
        assert {e["name"] for e in events} == {"agent", "model"}

    def test_bounded_buffer_raise(self) -> None:
        """A full buffer with when_full='raise' ends the stream with BufferFullError."""

        def chatty(n: int) -> Iterator[int]:
            yield from range(n)

        stream = stream_events(chatty, 50, max_buffer=2, when_full="raise")
        with pytest.raises(BufferFullError):
            first = next(stream)
            assert first["event"] == "on_chain_start"
            threading.Event().wait(0.2)  # let the target outrun the buffer
            list(stream)

    def test_bounded_buffer_block_delivers_everything(self) -> None:
        """A blocking bounded buffer delivers every event to a slow consumer."""

        def chatty(n: int) -> Iterator[int]:
            yield from range(n)

        events = list(stream_events(chatty, 20, max_buffer=1))
        assert len([e for e in events if e["event"] == "on_chain_stream"]) == 20

    def test_early_break_frees_a_blocked_target(self) -> None:
        """A consumer leaving a full blocking buffer frees the target, which then ends."""
        ended = threading.Event()

        def chatty(n: int) -> Iterator[int]:
            try:
                yield from range(n)
            finally:
                ended.set()

        for event in stream_events(chatty, 10_000, max_buffer=1):
            if event["event"] == "on_chain_stream":
                threading.Event().wait(0.3)  # the target fills the buffer and waits
                break
        assert ended.wait(5)

    def test_refuses_original_schema_format(self) -> None:
        """schema_format='original' does not apply to the events view."""
        with pytest.raises(ConfigError, match="schema_format='original'"):
            list(stream_events(agent, "q", schema_format="original"))

    def test_refuses_auto_close_false(self) -> None:
        """auto_close=False does not apply: the stream ends with the root run."""
        with pytest.raises(ConfigError, match="auto_close=False"):
            list(stream_events(agent, "q", config=TracerConfig(auto_close=False)))

    def test_refuses_non_callable(self) -> None:
        """A target that is not callable is a ConfigError."""
        with pytest.raises(ConfigError, match="callable"):
            list(stream_events(42, "q"))  # type: ignore[arg-type]

    def test_values_that_refuse_comparison(self) -> None:
        """Inputs and outputs whose ==, truth value and hash raise pass through as given."""

        class Stubborn:
            def __eq__(self, other: object) -> bool:
                raise ValueError("no ==")

            def __bool__(self) -> bool:
                raise ValueError("no truth value")

            __hash__ = None  # type: ignore[assignment]

        value = Stubborn()

        @traced(run_type="tool")
        def echo(x: Any) -> Any:
            return x

        def root(x: Any) -> Any:
            return echo(x)

        events = list(stream_events(root, value))
        inputs = [e["data"]["input"] for e in events if "input" in e["data"]]
        assert len(inputs) == 3 and all(given is value for given in inputs)
        assert events[-1]["data"]["output"] is value

    def test_falsy_chain_input_on_end(self) -> None:
        """A chain's end shows a falsy plain input as {}, as LangChain's handler does."""
        events = EventStream()
        tracer = Tracer(processors=[events])
        root = tracer.start_run("agent", inputs={"input": "x"})
        assert root is not None
        child = tracer.start_run("step", parent_id=root.id, inputs={"input": 0})
        assert child is not None
        tracer.end_run(child.id, outputs={"output": 1})
        tracer.end_run(root.id, outputs={"output": 1})
        got = list(events)
        assert got[1]["data"] == {"input": 0}
        assert got[2]["data"] == {"output": 1, "input": {}}

    def test_user_processors_still_run(self) -> None:
        """Processors given as options see the runs next to the events view."""
        ended: list[str] = []

        class Ends:
            def on_start(self, run: Any) -> None:
                pass

            def on_end(self, run: Any) -> None:
                ended.append(run.name)

        list(stream_events(agent, "q", processors=[Ends()]))
        assert ended[-1] == "agent" and "weather" in ended


class TestAstreamEvents:
    """astream_events over sync and async targets."""

    def test_async_agent(self) -> None:
        """An async target with async sub-runs gives nested events in order."""

        @traced(run_type="tool")
        async def lookup(city: str) -> str:
            await asyncio.sleep(0)
            return city.upper()

        async def aagent(question: str) -> AsyncIterator[str]:
            yield await lookup("paris")
            with trace("step") as step:
                step.event("half", 1)
            yield "done"

        async def collect() -> list[StreamEvent]:
            return [e async for e in astream_events(aagent, "q")]

        events = asyncio.run(collect())
        assert _names(events) == [
            ("on_chain_start", "aagent"),
            ("on_tool_start", "lookup"),
            ("on_tool_end", "lookup"),
            ("on_chain_stream", "aagent"),
            ("on_chain_start", "step"),
            ("on_custom_event", "half"),
            ("on_chain_end", "step"),
            ("on_chain_stream", "aagent"),
            ("on_chain_end", "aagent"),
        ]
        assert events[-1]["data"] == {"output": "PARISdone"}

    def test_sync_target_in_async_consumer(self) -> None:
        """A sync target runs in a worker thread; the same events reach an async consumer."""

        async def collect() -> list[StreamEvent]:
            return [e async for e in astream_events(agent, "q")]

        assert _names(asyncio.run(collect())) == _names(list(stream_events(agent, "q")))

    def test_error_propagates(self) -> None:
        """An async target's error reaches the consumer after its events."""

        async def broken(x: int) -> int:
            return 1 // x

        async def collect(seen: list[StreamEvent]) -> None:
            async for event in astream_events(broken, 0):
                seen.append(event)

        seen: list[StreamEvent] = []
        with pytest.raises(ZeroDivisionError):
            asyncio.run(collect(seen))
        assert _names(seen) == [("on_chain_start", "broken"), ("on_chain_error", "broken")]

    def test_bounded_buffer_async_target(self) -> None:
        """With max_buffer an async target runs off the consumer's loop and loses nothing."""

        async def numbers(n: int) -> AsyncIterator[int]:
            for i in range(n):
                yield i

        async def collect() -> list[StreamEvent]:
            return [e async for e in astream_events(numbers, 10, max_buffer=1)]

        events = asyncio.run(collect())
        assert [e["data"]["chunk"] for e in events if e["event"] == "on_chain_stream"] == list(
            range(10)
        )


class TestEventStream:
    """EventStream as a processor on a Tracer and on the callback handler."""

    def test_on_a_tracer(self) -> None:
        """Records reported by id become events; the stream ends when the tracer closes."""
        events = EventStream()
        tracer = Tracer(processors=[events])
        root = tracer.start_run("agent", inputs={"input": "hi"})
        assert root is not None
        llm = tracer.start_run("model", "llm", parent_id=root.id, inputs={"prompts": ["hi"]})
        assert llm is not None
        tracer.add_token(llm.id, "Hel")
        tracer.end_run(llm.id, outputs={"generations": [[{"text": "Hel"}]], "llm_output": None})
        tracer.end_run(root.id, outputs={"output": "Hel"})
        got = list(events)
        assert _names(got) == [
            ("on_chain_start", "agent"),
            ("on_llm_start", "model"),
            ("on_llm_stream", "model"),
            ("on_llm_end", "model"),
            ("on_chain_end", "agent"),
        ]
        assert got[1]["parent_ids"] == [str(root.id)]
        assert got[3]["data"] == {
            "output": {
                "generations": [[{"text": "Hel", "generation_info": None, "type": None}]],
                "llm_output": None,
            },
            "input": {"prompts": ["hi"]},
        }
        assert events.closed

    def test_callbacks_give_both_views(self) -> None:
        """One handler streams the run log's patches and the events from the same calls."""
        events = EventStream()
        handler = LogStreamCallbackHandler(processors=[events])
        root, tool = uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, {"q": "hi"}, run_id=root, name="agent", tags=["t"])
        handler.on_tool_start(
            {}, "2+2", run_id=tool, parent_run_id=root, name="calc", inputs={"e": "2+2"}
        )
        handler.on_custom_event("progress", 50, run_id=tool, tags=["t"], metadata={"k": 1})
        handler.on_tool_end(4, run_id=tool)
        handler.on_chain_end({"a": 4}, run_id=root)
        patches = list(handler)
        got = list(events)
        assert len(patches) == 3  # root state, calc entry, calc end (the root's end adds none)
        assert _names(got) == [
            ("on_chain_start", "agent"),
            ("on_tool_start", "calc"),
            ("on_custom_event", "progress"),
            ("on_tool_end", "calc"),
            ("on_chain_end", "agent"),
        ]
        assert got[2]["tags"] == ["t"] and got[2]["metadata"] == {"k": 1}
        assert got[2]["data"] == 50
        assert got[3]["data"] == {"output": 4, "input": {"e": "2+2"}}
        assert got[-1]["data"] == {"output": {"a": 4}}  # input is on the start event

    def test_retry_is_no_event(self) -> None:
        """A retry recorded on a run is not an event, as in astream_events."""
        events = EventStream()
        handler = LogStreamCallbackHandler(processors=[events])
        root = uuid.uuid4()
        handler.on_chain_start({}, 1, run_id=root, name="agent")
        handler.on_retry(None, run_id=root)
        handler.on_chain_end(2, run_id=root)
        assert [e["event"] for e in events] == ["on_chain_start", "on_chain_end"]

    def test_streamed_start_keeps_end_input(self) -> None:
        """A root that starts with the placeholder input shows its input on the end event."""
        events = EventStream()
        handler = LogStreamCallbackHandler(processors=[events])
        root = uuid.uuid4()
        handler.on_chain_start({}, {"input": ""}, run_id=root, name="agent")
        handler.on_chain_end(2, run_id=root, inputs=1)
        got = list(events)
        assert got[0]["data"] == {}
        assert got[1]["data"] == {"output": 2, "input": 1}

    def test_run_filter_or_rules(self) -> None:
        """A compiled filter and keyword rules are the same; giving both is refused."""
        assert EventStream(include_names=["a"]).run_filter == RunFilter.from_rules(
            include_names=["a"]
        )
        with pytest.raises(ConfigError, match="not both"):
            EventStream(run_filter=RunFilter(), include_names=["a"])
        with pytest.raises(FilterConfigError, match="include_names=\\['a'\\]"):
            EventStream(include_names="a")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="RunFilter"):
            EventStream(run_filter={"include_names": ["a"]})  # type: ignore[arg-type]

    def test_async_consumer_in_another_thread(self) -> None:
        """An async consumer in its own loop reads events reported from another thread."""
        events = EventStream()
        tracer = Tracer(processors=[events])

        def produce() -> None:
            root = tracer.start_run("agent", inputs={"input": 1})
            assert root is not None
            tracer.end_run(root.id, outputs={"output": 2})

        async def consume() -> list[StreamEvent]:
            return [e async for e in events]

        thread = threading.Thread(target=produce)
        thread.start()
        got = asyncio.run(consume())
        thread.join()
        assert _names(got) == [("on_chain_start", "agent"), ("on_chain_end", "agent")]


# ---------------------------------------------------------------------------
# property: any tree of runs, with failures
# ---------------------------------------------------------------------------

Tree = Any  # (fails, [children]) nested


def _node(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.tuples(st.booleans(), st.lists(children, max_size=3).map(tuple))


trees = st.recursive(st.tuples(st.booleans(), st.just(())), _node, max_leaves=12)


def _run_tree(tree: Tree, path: str, started: list[str]) -> None:
    fails, children = tree
    with trace(path, "tool" if not children else "chain", inputs=path):
        started.append(path)
        for i, child in enumerate(children):
            try:
                _run_tree(child, f"{path}.{i}", started)
            except ValueError:
                pass
        if fails:
            msg = f"{path} failed"
            raise ValueError(msg)


class TestEventProperties:
    """Invariants of the events of any run tree."""

    @settings(max_examples=60, deadline=None)
    @given(tree=st.lists(trees, max_size=4))
    def test_tree_invariants(self, tree: list[Tree]) -> None:
        """One end or error per start, after it; parent_ids prefix-consistent; start order."""
        started: list[str] = []

        def root(_: Any) -> None:
            for i, child in enumerate(tree):
                try:
                    _run_tree(child, f"r.{i}", started)
                except ValueError:
                    pass

        events = list(stream_events(root, None, name="r"))
        starts = [e for e in events if e["event"].endswith("_start")]
        assert [e["name"] for e in starts] == ["r", *started]
        by_id = {e["run_id"]: e for e in starts}
        seen_start: set[str] = set()
        finished: dict[str, int] = {}
        for event in events:
            kind = event["event"].rsplit("_", 1)[1]
            if kind == "start":
                seen_start.add(event["run_id"])
            elif kind in ("end", "error"):
                assert event["run_id"] in seen_start
                finished[event["run_id"]] = finished.get(event["run_id"], 0) + 1
                failed = event["name"] != "r" and _fails(tree, event["name"])
                assert (kind == "error") == failed
        assert finished == dict.fromkeys(by_id, 1)
        for event in starts:
            parents = event["parent_ids"]
            if parents:
                parent = by_id[parents[-1]]
                assert parent["parent_ids"] == parents[:-1]
                assert event["name"].rsplit(".", 1)[0] == parent["name"]


def _fails(tree: list[Tree], name: str) -> bool:
    node: Any = (False, tuple(tree))
    for part in name.split(".")[1:]:
        node = node[1][int(part)]
    return bool(node[0])
