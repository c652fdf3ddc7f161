"""Tests for logstream._tracer: the lock, run tree, emitter and channel of one run log.

These cover what the tracer adds on top of its parts: the token fast path (its routes,
cached by run and by id object, must behave exactly as the tree and emitter would) and
bounded buffering (an event whose patch cannot be queued is rejected whole, so the stream
stays applicable). Threads are synchronized with events and bounded waits, never sleeps
that a test's outcome depends on, and nothing asserts on timing.
"""

from __future__ import annotations

import functools
import time
import uuid
from collections import ChainMap, UserDict
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any, Callable

import jsonpatch  # type: ignore[import-untyped,unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from threading_helpers import join_thread, run_in_thread

from logstream import (
    DuplicateRunError,
    LogStreamCallbackHandler,
    RunArgumentError,
    RunTypeError,
    Tracer,
    UnknownRunError,
    dumps,
    redact_secrets,
)
from logstream._errors import BufferFullError
from logstream._model import Run
from logstream._patches import RunLogPatch

TIMEOUT = 30.0
"""Seconds any single wait may take before the test fails (generous: CI machines are noisy)."""

T0 = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)

Ops = list[dict[str, Any]]


def fixed_clock() -> datetime:
    """A clock that never moves."""
    return T0


def make_tracer(**kwargs: Any) -> Tracer:
    """A tracer that stays open until closed, with a fixed clock."""
    kwargs.setdefault("auto_close", False)
    kwargs.setdefault("clock", fixed_clock)
    return Tracer(**kwargs)


def read_all(tracer: Tracer) -> list[Ops]:
    """Close the tracer and return the ops of every patch still waiting, in order."""
    tracer.close()
    return [patch.ops for patch in tracer]


def take(tracer: Tracer) -> Ops:
    """Read the next waiting patch (one must be waiting)."""
    ok, patch = tracer.get(timeout=0)
    assert ok and patch is not None
    return patch.ops


def rebuild(patches: list[Ops]) -> Any:
    """Apply every patch in order to an empty document; fails if any does not apply."""
    doc: Any = None
    for ops in patches:
        doc = jsonpatch.apply_patch(doc, ops)
    return doc


def wait_until_producer_blocks(tracer: Tracer) -> None:
    """Wait until a producer waits for room (reads a private counter to reach that state)."""
    deadline = time.monotonic() + TIMEOUT
    while tracer._channel._room_waiters == 0:
        assert time.monotonic() < deadline, "the producer never blocked on a full buffer"
        time.sleep(0.001)


class UUIDSubclass(uuid.UUID):
    """A UUID subclass, as some drivers hand out (e.g. asyncpg's)."""


class TestTokens:
    """The token fast path gives what the tree and emitter would give."""

    def test_token_ops_are_the_emitters(self) -> None:
        """A token's patch has the emitter's two ops, for text and for content blocks."""
        tracer = make_tracer()
        root = tracer.start_run("root")
        assert root is not None
        llm = tracer.start_run("model", "llm", parent_id=root.id)
        assert llm is not None
        tracer.add_token(llm.id, "Hi")
        blocks = [{"type": "text", "text": "Hi"}]
        tracer.add_token(llm.id, blocks, blocks)
        patches = read_all(tracer)
        assert patches[2:] == [
            tracer._emitter.token(llm.id, "Hi", "Hi"),
            tracer._emitter.token(llm.id, blocks, blocks),
        ]

    def test_content_blocks_are_copied(self) -> None:
        """Changing a content-block token after streaming it does not change the patch."""
        tracer = make_tracer()
        root = tracer.start_run("root")
        llm = tracer.start_run("model", "llm", parent_id=root.id)  # type: ignore[union-attr]
        blocks = [{"type": "text", "text": "Hi"}]
        tracer.add_token(llm.id, blocks, blocks)  # type: ignore[union-attr]
        blocks[0]["text"] = "changed"
        assert read_all(tracer)[-1][0]["value"] == [{"type": "text", "text": "Hi"}]

    def test_interleaved_runs_get_their_own_tokens(self) -> None:
        """Tokens of two runs in turn land on each run's own entry and count."""
        tracer = make_tracer()
        root = tracer.start_run("root")
        a = tracer.start_run("a", "llm", parent_id=root.id)  # type: ignore[union-attr]
        b = tracer.start_run("b", "chat_model", parent_id=root.id)  # type: ignore[union-attr]
        assert a is not None and b is not None
        for i in range(3):
            tracer.add_token(a.id, f"a{i}")
            tracer.add_token(b.id, f"b{i}")
        state = rebuild(read_all(tracer))
        assert state["logs"]["a"]["streamed_output_str"] == ["a0", "a1", "a2"]
        assert state["logs"]["b"]["streamed_output_str"] == ["b0", "b1", "b2"]
        assert [tracer.record(r.id).token_count for r in (a, b)] == [3, 3]  # type: ignore[union-attr]

    def test_an_equal_id_object_finds_the_run(self) -> None:
        """A token naming the run with another UUID object of the same value streams."""
        tracer = make_tracer()
        root = tracer.start_run("root")
        llm = tracer.start_run("model", "llm", parent_id=root.id)  # type: ignore[union-attr]
        assert llm is not None
        tracer.add_token(llm.id, "a")
        tracer.add_token(uuid.UUID(str(llm.id)), "b")
        tracer.add_token(UUIDSubclass(str(llm.id)), "c")
        state = rebuild(read_all(tracer))
        assert state["logs"]["model"]["streamed_output_str"] == ["a", "b", "c"]

    def test_uuid_subclass_ids_work_throughout(self) -> None:
        """Runs whose ids are UUID subclasses start, stream and end like any other."""
        tracer = make_tracer()
        root_id, llm_id = UUIDSubclass(int=1), UUIDSubclass(int=2)
        tracer.start_run("root", run_id=root_id)
        tracer.start_run("model", "llm", run_id=llm_id, parent_id=uuid.UUID(int=1))
        tracer.add_token(uuid.UUID(int=2), "t")
        tracer.end_run(llm_id, outputs={"generations": []})
        assert not tracer.is_open(uuid.UUID(int=2))
        state = rebuild(read_all(tracer))
        assert state["logs"]["model"]["streamed_output_str"] == ["t"]

    def test_token_after_end_raises_with_the_same_id_object(self) -> None:
        """The run's cached route dies with the run: a late token raises UnknownRunError."""
        tracer = make_tracer()
        root = tracer.start_run("root")
        llm = tracer.start_run("model", "llm", parent_id=root.id)  # type: ignore[union-attr]
        assert llm is not None
        tracer.add_token(llm.id, "a")
        tracer.end_run(llm.id, outputs={"generations": []})
        with pytest.raises(UnknownRunError, match="already ended"):
            tracer.add_token(llm.id, "late")

    def test_an_id_started_again_streams_to_its_new_entry(self) -> None:
        """An id reused after its run ended streams to the new run's entry."""
        tracer = make_tracer()
        root = tracer.start_run("root")
        run_id = uuid.uuid4()
        tracer.start_run("model", "llm", run_id=run_id, parent_id=root.id)  # type: ignore[union-attr]
        tracer.add_token(run_id, "first")
        tracer.end_run(run_id, outputs={"generations": []})
        tracer.start_run("model", "llm", run_id=run_id, parent_id=root.id)  # type: ignore[union-attr]
        tracer.add_token(run_id, "second")
        state = rebuild(read_all(tracer))
        assert state["logs"]["model"]["streamed_output_str"] == ["first"]
        assert state["logs"]["model:2"]["streamed_output_str"] == ["second"]

    def test_token_for_a_chain_run_raises_and_counts_nothing(self) -> None:
        """A token for a run of another type raises RunTypeError and changes nothing."""
        tracer = make_tracer()
        root = tracer.start_run("root")
        step = tracer.start_run("step", parent_id=root.id)  # type: ignore[union-attr]
        assert step is not None
        with pytest.raises(RunTypeError):
            tracer.add_token(step.id, "x")
        assert tracer.record(step.id).token_count == 0  # type: ignore[union-attr]
        assert len(read_all(tracer)) == 2

    def test_tokens_of_a_run_that_is_not_logged_count_but_emit_nothing(self) -> None:
        """A filtered-out LLM run's tokens are counted and add no patch."""
        tracer = make_tracer(include_types=["chain"])
        root = tracer.start_run("root")
        llm = tracer.start_run("model", "llm", parent_id=root.id)  # type: ignore[union-attr]
        assert llm is not None
        tracer.add_token(llm.id, "x")
        tracer.add_token(llm.id, "y")
        assert tracer.record(llm.id).token_count == 2  # type: ignore[union-attr]
        assert len(read_all(tracer)) == 1

    def test_redact_applies_on_the_fast_path(self) -> None:
        """The redact hook masks tokens and values before they enter a patch."""
        tracer = make_tracer(redact=lambda value: "***" if value == "secret" else value)
        root = tracer.start_run("root")
        llm = tracer.start_run("model", "llm", parent_id=root.id)  # type: ignore[union-attr]
        tracer.add_token(llm.id, "secret")  # type: ignore[union-attr]
        assert [op["value"] for op in read_all(tracer)[-1]] == ["***", "***"]


def full_tracer(**kwargs: Any) -> tuple[Tracer, uuid.UUID, uuid.UUID]:
    """A tracer with max_buffer=2 holding two patches (root state, an LLM entry)."""
    kwargs.setdefault("max_buffer", 2)
    tracer = make_tracer(**kwargs)
    root, llm = uuid.uuid4(), uuid.uuid4()
    tracer.start_run("root", run_id=root)
    tracer.start_run("model", "llm", run_id=llm, parent_id=root)
    assert len(tracer) == 2
    return tracer, root, llm


def replay(events: list[Callable[[Tracer], Any]]) -> Any:
    """The state an unbounded tracer reaches from these events."""
    tracer = make_tracer()
    for event in events:
        event(tracer)
    return rebuild(read_all(tracer))


class TestRaisePolicy:
    """when_full="raise": an event that finds the buffer full is rejected whole."""

    def test_rejected_token_changes_nothing(self) -> None:
        """A token that cannot be queued raises BufferFullError; its run's count stays."""
        tracer, _, llm = full_tracer(when_full="raise")
        run = tracer._tree.get(llm)
        with pytest.raises(BufferFullError) as info:
            tracer.add_token(llm, "x")
        assert (info.value.event, info.value.run_id) == ("token", llm)
        assert run.token_count == 0 and len(tracer) == 2

    def test_rejected_start_leaves_no_run_and_no_key(self) -> None:
        """A start that cannot be queued opens no run and uses up no log key."""
        tracer, root, llm = full_tracer(when_full="raise")
        child = uuid.uuid4()
        with pytest.raises(BufferFullError):
            tracer.start_run("tool", "tool", run_id=child, parent_id=root)
        assert not tracer.is_open(child)
        assert tracer._tree.get(root).children == [llm]
        take(tracer)
        tracer.start_run("tool", "tool", run_id=child, parent_id=root)
        assert read_all(tracer)[-1][0]["path"] == "/logs/tool"

    def test_rejected_end_leaves_the_run_open(self) -> None:
        """An end that cannot be queued raises and the run stays open; it ends later."""
        tracer, _, llm = full_tracer(when_full="raise")
        with pytest.raises(BufferFullError):
            tracer.end_run(llm, outputs={"generations": []}, event="llm end")
        assert tracer.is_open(llm)
        take(tracer)
        assert tracer.end_run(llm, outputs={"generations": []}) is not None
        assert not tracer.is_open(llm)

    def test_later_events_apply_after_the_consumer_drains(self) -> None:
        """Rejected events leave a stream that still applies and matches the accepted ones."""
        tracer, root, llm = full_tracer(when_full="raise")
        delivered = [take(tracer)]
        rejected = 0
        for i in range(6):
            try:
                tracer.add_token(llm, f"t{i}")
            except BufferFullError:
                rejected += 1
                delivered.append(take(tracer))
        tracer.end_run(llm, outputs={"generations": []})
        tracer.close()
        delivered += [patch.ops for patch in tracer]
        accepted = [i for i in range(6) if f"t{i}" in str(delivered)]
        assert rejected > 0 and len(accepted) == 6 - rejected
        expected = replay(
            [
                lambda t: t.start_run("root", run_id=root),
                lambda t: t.start_run("model", "llm", run_id=llm, parent_id=root),
                *[(lambda t, i=i: t.add_token(llm, f"t{i}")) for i in accepted],
                lambda t: t.end_run(llm, outputs={"generations": []}),
            ]
        )
        assert rebuild(delivered) == expected
        assert tracer.buffer_stats.rejected == rejected

    def test_events_without_a_patch_need_no_room(self) -> None:
        """A filtered-out run starts and ends, and events are recorded, on a full buffer."""
        tracer, root, _ = full_tracer(when_full="raise", exclude_types=["tool"])
        tool = uuid.uuid4()
        tracer.start_run("tool", "tool", run_id=tool, parent_id=root)
        tracer.add_event(tool, "retry", {"attempt": 1})
        tracer.end_run(tool, outputs={"output": 1})
        assert not tracer.is_open(tool) and len(tracer) == 2

    def test_misuse_errors_come_before_a_full_buffer(self) -> None:
        """On a full buffer, misuse still raises its own error, not BufferFullError."""
        tracer, root, llm = full_tracer(when_full="raise")
        with pytest.raises(UnknownRunError):
            tracer.end_run(uuid.uuid4(), outputs=None)
        with pytest.raises(DuplicateRunError):
            tracer.start_run("again", run_id=llm, parent_id=root)
        with pytest.raises(RunTypeError):
            tracer.add_token(root, "x")

    def test_send_raises_on_a_full_buffer(self) -> None:
        """send() of a patch that does not fit raises BufferFullError naming send."""
        tracer, _, _ = full_tracer(when_full="raise")
        with pytest.raises(BufferFullError, match="send"):
            tracer.send({"op": "add", "path": "/x", "value": 1})

    def test_chunk_raises_on_a_full_buffer(self) -> None:
        """A tapped chunk that does not fit raises BufferFullError and is not queued."""
        tracer, _, llm = full_tracer(when_full="raise")
        with pytest.raises(BufferFullError, match="chunk"):
            tracer.add_chunk(llm, "c")
        assert len(tracer) == 2


class TestBlockPolicy:
    """when_full="block": an event waits for the consumer; close or a timeout ends the wait."""

    def test_blocked_start_resumes_when_the_consumer_reads(self) -> None:
        """A start waiting for room goes on once the consumer takes a patch."""
        tracer, root, _ = full_tracer()
        child = uuid.uuid4()
        thread, box = run_in_thread(
            lambda: tracer.start_run("tool", "tool", run_id=child, parent_id=root)
        )
        wait_until_producer_blocks(tracer)
        assert not tracer.is_open(child)
        take(tracer)
        assert join_thread(thread, box) is not None
        assert tracer.is_open(child)
        assert tracer.buffer_stats.blocked == 1

    def test_blocked_producer_holds_the_tracer_lock_and_the_consumer_needs_none(self) -> None:
        """While a producer waits for room with the tracer lock held, the reader still reads."""
        tracer, _, llm = full_tracer()
        thread, box = run_in_thread(lambda: tracer.add_token(llm, "x"))
        wait_until_producer_blocks(tracer)
        assert tracer._lock.locked()
        reader, reader_box = run_in_thread(lambda: [patch.ops for patch in tracer])
        join_thread(thread, box)
        tracer.close()
        patches = join_thread(reader, reader_box)
        assert [op["value"] for op in patches[-1]] == ["x", "x"]

    def test_close_ends_a_blocked_event_as_a_no_op(self) -> None:
        """Closing the stream frees a producer waiting for room; its event does nothing."""
        tracer, _, llm = full_tracer()
        thread, box = run_in_thread(lambda: tracer.end_run(llm, outputs={"generations": []}))
        wait_until_producer_blocks(tracer)
        join_thread(*run_in_thread(tracer.close))
        assert join_thread(thread, box) is None
        assert tracer.is_open(llm)
        assert len([patch for patch in tracer]) == 2

    def test_block_timeout_rejects_the_event_whole(self) -> None:
        """An event still without room after block_timeout raises and changes nothing."""
        tracer, root, llm = full_tracer(block_timeout=0.01)
        with pytest.raises(BufferFullError) as info:
            tracer.start_run("tool", "tool", parent_id=root, event="tool start")
        assert (info.value.when_full, info.value.event) == ("block", "tool start")
        assert tracer.open_runs == 2
        with pytest.raises(BufferFullError):
            tracer.add_token(llm, "x")
        assert tracer._tree.get(llm).token_count == 0
        stats = tracer.buffer_stats
        assert (stats.blocked, stats.rejected) == (2, 2)

    def test_many_producer_threads_through_a_small_buffer(self) -> None:
        """Threads streaming through a buffer of 4 lose nothing; the patches apply in order."""
        tracer = make_tracer(max_buffer=4)
        reader, reader_box = run_in_thread(lambda: [patch.ops for patch in tracer])
        root = tracer.start_run("root")
        assert root is not None
        ids = [uuid.uuid4() for _ in range(4)]
        for i, run_id in enumerate(ids):
            tracer.start_run(f"m{i}", "llm", run_id=run_id, parent_id=root.id)

        def produce(run_id: uuid.UUID) -> None:
            for n in range(200):
                tracer.add_token(run_id, str(n))

        producers = [run_in_thread(functools.partial(produce, run_id)) for run_id in ids]
        for thread, box in producers:
            join_thread(thread, box)
        tracer.close()
        state = rebuild(join_thread(reader, reader_box))
        for i in range(4):
            assert state["logs"][f"m{i}"]["streamed_output_str"] == [str(n) for n in range(200)]
        stats = tracer.buffer_stats
        assert stats.high_water <= 4 and stats.rejected == 0
        assert stats.queued == stats.delivered == 1 + 4 + 800


class TestStats:
    """buffer_stats on the tracer and the handler."""

    def test_unbounded_by_default(self) -> None:
        """A tracer and a handler are unbounded by default, as LangChain's handler is."""
        assert Tracer().buffer_stats.max_buffer is None
        assert LogStreamCallbackHandler().buffer_stats.max_buffer is None

    def test_handler_passes_the_buffer_keywords(self) -> None:
        """The handler's max_buffer, when_full and block_timeout reach its stream."""
        handler = LogStreamCallbackHandler(max_buffer=3, when_full=None, block_timeout=1.5)
        stats = handler.buffer_stats
        assert (stats.max_buffer, stats.when_full) == (3, "block")
        assert handler._tracer._channel._block_timeout == 1.5

    def test_handler_callback_raises_on_a_full_buffer(self) -> None:
        """A callback whose patch does not fit raises BufferFullError; LangChain logs it."""
        handler = LogStreamCallbackHandler(max_buffer=2, when_full="raise")
        root, llm = uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, {}, run_id=root, name="root")
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="model")
        with pytest.raises(BufferFullError, match="token"):
            handler.on_llm_new_token("x", run_id=llm)
        with pytest.raises(BufferFullError, match="llm start"):
            handler.on_llm_start({}, ["p"], run_id=uuid.uuid4(), parent_run_id=root)
        stats = handler.buffer_stats
        assert (stats.queued, stats.waiting, stats.rejected, stats.high_water) == (2, 2, 2, 2)

    def test_delivered_counts_what_the_consumer_read(self) -> None:
        """delivered grows as the consumer reads; waiting is what is left."""
        tracer, _, llm = full_tracer(max_buffer=10)
        tracer.add_token(llm, "x")
        take(tracer)
        stats = tracer.buffer_stats
        assert (stats.queued, stats.delivered, stats.waiting) == (3, 1, 2)


class TestPatchesOwnTheirOps:
    """Patches from the fast paths are independent objects."""

    def test_each_token_patch_has_fresh_op_dicts(self) -> None:
        """Changing one token patch's ops does not change another's."""
        tracer = make_tracer()
        root = tracer.start_run("root")
        llm = tracer.start_run("model", "llm", parent_id=root.id)  # type: ignore[union-attr]
        tracer.add_token(llm.id, "a")  # type: ignore[union-attr]
        tracer.add_token(llm.id, "b")  # type: ignore[union-attr]
        tracer.close()
        patches: list[RunLogPatch] = list(tracer)
        patches[2].ops[0]["value"] = "changed"
        assert patches[3].ops[0]["value"] == "b"
        assert patches[3].ops[0] is not patches[2].ops[0]


# -- a start is whole or leaves no trace (issue 12, defects 1-3) ------------------------


class RaisingTruth:
    """A value whose truth value and comparisons raise, as a numpy array's do."""

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        msg = "the truth value of an array is ambiguous"
        raise ValueError(msg)

    def __eq__(self, other: object) -> bool:
        msg = "elementwise comparison is ambiguous"
        raise ValueError(msg)


class RaisingKeys(Mapping[str, Any]):
    """Metadata that cannot be copied (iterating it raises)."""

    def __getitem__(self, key: str) -> Any:
        return 1

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        msg = "keys are gone"
        raise RuntimeError(msg)


class RaisingFilter:
    """A run filter whose question raises, so the emitter fails after the tree moved."""

    def should_include(self, name: str, run_type: str, tags: Any) -> bool:
        msg = "the filter failed"
        raise RuntimeError(msg)


BAD_STARTS: dict[str, dict[str, Any]] = {
    "unhashable run_type": {"run_type": ["chain"]},
    "tags holding a list": {"tags": [["x"]]},
    "tags as a bare string": {"tags": "abc"},
    "name not a string": {"name": 5},
    "unhashable run id": {"run_id": ["not", "hashable"]},
}


def logged_state(max_buffer: Any) -> tuple[Tracer, Run]:
    """A tracer with exclude rules (so tags are looked into) and an open root."""
    tracer = make_tracer(max_buffer=max_buffer, exclude_tags=["hidden"])
    root = tracer.start_run("agent", run_id=uuid.UUID(int=1))
    assert root is not None
    return tracer, root


class TestStartIsWholeOrNothing:
    """A start that raises leaves no run, no key and no patch, bounded or not."""

    @pytest.mark.parametrize("max_buffer", [None, 10])
    @pytest.mark.parametrize("case", sorted(BAD_STARTS))
    def test_bad_argument_is_refused_without_trace(self, case: str, max_buffer: Any) -> None:
        """A wrong kind of argument raises RunArgumentError and the stream still applies."""
        tracer, root = logged_state(max_buffer)
        kwargs: dict[str, Any] = {"name": "child", "parent_id": root.id, **BAD_STARTS[case]}
        with pytest.raises(RunArgumentError) as caught:
            tracer.start_run(kwargs.pop("name"), **kwargs)
        assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)
        assert tracer.open_runs == 1 and tracer.record(root.id).children == ()  # type: ignore[union-attr]
        assert "child" not in tracer._emitter.keys
        child = tracer.start_run("child", "llm", parent_id=root.id)
        assert child is not None
        tracer.add_token(child.id, "hi")
        tracer.end_run(child.id, outputs={"generations": []})
        state = rebuild(read_all(tracer))
        assert list(state["logs"]) == ["child"]
        assert state["logs"]["child"]["streamed_output_str"] == ["hi"]

    @pytest.mark.parametrize("max_buffer", [None, 10])
    def test_bare_string_tags_message_says_the_fix(self, max_buffer: Any) -> None:
        """tags="abc" is refused with a message naming the run and the fix."""
        tracer, root = logged_state(max_buffer)
        with pytest.raises(RunArgumentError, match=r"write tags=\['abc'\]") as caught:
            tracer.start_run("child", parent_id=root.id, tags="abc", event="chain start")  # type: ignore[arg-type]
        assert caught.value.argument == "tags" and caught.value.event == "chain start"
        assert "'child'" in str(caught.value)

    @pytest.mark.parametrize("max_buffer", [None, 10])
    @pytest.mark.parametrize("inner", [{"input": RaisingTruth()}, {"x": RaisingTruth()}])
    def test_input_whose_truth_value_raises_starts_and_streams(
        self, max_buffer: Any, inner: Any
    ) -> None:
        """An input holding an array-like value starts; its chunks and end apply."""
        tracer, root = logged_state(max_buffer)
        child = tracer.start_run("child", parent_id=root.id, inputs={"input": inner})
        assert child is not None
        tracer.add_chunk(child.id, "piece")
        tracer.end_run(child.id, outputs={"output": "done"})
        state = rebuild(read_all(tracer))
        assert state["logs"]["child"]["streamed_output"] == ["piece"]
        assert state["logs"]["child"]["final_output"] == "done"

    @pytest.mark.parametrize("max_buffer", [None, 10])
    def test_emitter_failure_undoes_the_tree(self, max_buffer: Any) -> None:
        """A start whose entry can't be decided leaves the tree and keys as they were."""
        tracer, root = logged_state(max_buffer)
        good_filter = tracer.run_filter
        tracer._emitter.run_filter = RaisingFilter()  # type: ignore[assignment]
        with pytest.raises(RuntimeError, match="the filter failed"):
            tracer.start_run("child", parent_id=root.id)
        assert tracer.open_runs == 1 and tracer.record(root.id).children == ()  # type: ignore[union-attr]
        assert tracer.buffer_stats.queued == 1  # the root's patch only
        tracer._emitter.run_filter = good_filter
        child = tracer.start_run("child", parent_id=root.id)
        assert child is not None and tracer.record(root.id).children == (child.id,)  # type: ignore[union-attr]
        tracer.end_run(child.id, outputs={"output": 1})
        assert list(rebuild(read_all(tracer))["logs"]) == ["child"]

    @pytest.mark.parametrize("max_buffer", [None, 10])
    def test_metadata_that_cannot_be_copied_leaves_no_trace(self, max_buffer: Any) -> None:
        """Metadata whose copy raises fails the start before the parent gains a child."""
        tracer, root = logged_state(max_buffer)
        with pytest.raises(RuntimeError, match="keys are gone"):
            tracer.start_run("child", parent_id=root.id, metadata=RaisingKeys())  # type: ignore[arg-type]
        assert tracer.open_runs == 1 and tracer.record(root.id).children == ()  # type: ignore[union-attr]
        assert "child" not in tracer._emitter.keys

    def test_bounded_and_unbounded_agree_on_bad_tags(self) -> None:
        """Both delivery paths leave the same open runs and patches after a bad start."""
        results = []
        for bound in (None, 10):
            tracer, root = logged_state(bound)
            with pytest.raises(RunArgumentError):
                tracer.start_run("child", parent_id=root.id, tags=[["x"]])  # type: ignore[list-item]
            results.append((tracer.open_runs, read_all(tracer)))
        assert results[0] == results[1]


class TestIdsComparedAsWhatTheyAre:
    """A run id that is not a UUID never aliases the UUID with the same value."""

    def test_int_id_does_not_end_the_uuid_run(self) -> None:
        """on end with the int 4 leaves the run opened as UUID(int=4) open and untouched."""
        tracer = make_tracer()
        root = tracer.start_run("agent", run_id=uuid.UUID(int=3))
        assert root is not None
        child = tracer.start_run("child", parent_id=root.id, run_id=uuid.UUID(int=4))
        assert child is not None
        with pytest.raises(UnknownRunError):
            tracer.end_run(4, outputs={"output": "wrong"})  # type: ignore[arg-type]
        assert tracer.is_open(uuid.UUID(int=4)) and child.outputs is None
        tracer.end_run(child.id, outputs={"output": "right"})
        assert rebuild(read_all(tracer))["logs"]["child"]["final_output"] == "right"

    def test_int_and_uuid_ids_are_two_runs(self) -> None:
        """Runs opened as 7 and as UUID(int=7) are both open and both logged."""
        tracer = make_tracer()
        root = tracer.start_run("agent")
        assert root is not None
        tracer.start_run("a", parent_id=root.id, run_id=uuid.UUID(int=7))
        tracer.start_run("b", parent_id=root.id, run_id=7)  # type: ignore[arg-type]
        assert tracer.open_runs == 3
        tracer.end_run(7, outputs={"output": "b"})  # type: ignore[arg-type]
        tracer.end_run(uuid.UUID(int=7), outputs={"output": "a"})
        logs = rebuild(read_all(tracer))["logs"]
        assert (logs["a"]["final_output"], logs["b"]["final_output"]) == ("a", "b")

    def test_equal_ids_of_other_types_are_not_the_root(self) -> None:
        """A run id 3.0 under a root opened as 3 is a run of its own, with a log entry."""
        tracer = make_tracer()
        tracer.start_run("agent", run_id=3)  # type: ignore[arg-type]
        tracer.start_run("child", parent_id=3, run_id=3.0)  # type: ignore[arg-type]
        tracer.end_run(3.0, outputs={"output": "x"})  # type: ignore[arg-type]
        assert tracer.is_open(3)  # type: ignore[arg-type]
        assert rebuild(read_all(tracer))["logs"]["child"]["final_output"] == "x"


class RaisingStr:
    """A value whose str and repr raise."""

    def __str__(self) -> str:
        msg = "no text"
        raise RuntimeError(msg)

    __repr__ = __str__


class DumpsToData:
    """A value that dumps to data while its ==, truth value, hash and str raise."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def model_dump(self) -> dict[str, Any]:
        return {"value": self.value}

    def __eq__(self, other: object) -> bool:
        raise ValueError("== is ambiguous")

    def __bool__(self) -> bool:
        raise ValueError("truth value is ambiguous")

    __hash__ = None  # type: ignore[assignment]
    __str__ = RaisingStr.__str__


SECRET_KEY = "sk-" + "Zz9Yy8Xx7" * 3


class ReadOnlyMap(Mapping[str, Any]):
    """A Mapping that is not a dict (and, unlike MappingProxyType, can be deep-copied)."""

    def __init__(self, **items: Any) -> None:
        self._items = items

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


HOSTILE: dict[str, Callable[[], Any]] = {
    "truth raises": RaisingTruth,
    "str raises": RaisingStr,
    "dumps to data": lambda: DumpsToData(f"my key {SECRET_KEY}"),
    "UserDict": lambda: UserDict(api_key="hunter2", q=SECRET_KEY),
    "Mapping": lambda: ReadOnlyMap(q=[SECRET_KEY, RaisingTruth()]),
    "ChainMap": lambda: ChainMap({"password": "p"}, {"q": SECRET_KEY}),
    "nested": lambda: {"input": {"input": RaisingTruth()}, "k": [RaisingStr()]},
    "plain": lambda: {"input": "hello"},
}


class TestHostileValues:
    """Values whose ==, truth value, hash or str raise never break the stream."""

    @settings(max_examples=60, deadline=None)
    @given(
        picks=st.lists(st.sampled_from(sorted(HOSTILE)), min_size=5, max_size=5),
        tags_kind=st.sampled_from(["none", "good", "bare string", "nested list", "raising"]),
        max_buffer=st.sampled_from([None, 50]),
        redact=st.booleans(),
    )
    def test_every_event_is_whole_and_the_stream_applies(
        self, picks: list[str], tags_kind: str, max_buffer: Any, redact: bool
    ) -> None:
        """Each event happens whole or raises; what was queued applies; secrets stay out."""
        tags: Any = {
            "none": None,
            "good": ["t"],
            "bare string": "abc",
            "nested list": [["x"]],
            "raising": [RaisingTruth()],
        }[tags_kind]
        tracer = make_tracer(
            max_buffer=max_buffer,
            exclude_tags=["hidden"],
            redact=redact_secrets if redact else None,
        )
        inputs, metadata, chunk, token, outputs = (HOSTILE[name]() for name in picks)
        root = tracer.start_run("agent", inputs=inputs)
        assert root is not None
        started: list[Any] = []
        for name, run_type in (("step", "chain"), ("model", "llm")):
            try:
                run = tracer.start_run(
                    name,
                    run_type,
                    parent_id=root.id,
                    tags=tags,
                    metadata={"m": metadata},
                    inputs={"input": inputs},
                )
            except RunArgumentError:
                assert tags_kind not in ("none", "good")
                continue
            assert run is not None
            started.append(run)
        assert tracer.record(root.id).children == tuple(run.id for run in started)  # type: ignore[union-attr]
        assert tracer.open_runs == 1 + len(started)
        for run in started:
            tracer.add_chunk(run.id, chunk)
            if run.run_type == "llm":
                tracer.add_token(run.id, "t", value=token)
            tracer.end_run(run.id, outputs={"output": outputs})
        tracer.end_run(root.id, outputs={"output": outputs})
        log: Any = RunLogPatch()
        for ops in read_all(tracer):
            log = log + RunLogPatch(*ops)
        state = log.state
        assert sorted(state["logs"]) == sorted(run.name for run in started)
        for run in started:
            assert len(state["logs"][run.name]["streamed_output"]) == 1 + (run.run_type == "llm")
        if redact:
            text = dumps(state)
            assert SECRET_KEY not in text and "hunter2" not in text and '"p"' not in text
