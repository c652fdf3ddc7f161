"""Tests for logstream._model: the run records and the RunTree transitions."""

from __future__ import annotations

import itertools
import logging
import sys
import threading
import uuid
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstream._errors import (
    DuplicateRunError,
    LogStreamError,
    RunArgumentError,
    RunTypeError,
    UnknownRunError,
)
from logstream._model import (
    EVENT_RULES,
    UNSET,
    Run,
    RunEvent,
    RunTree,
    _dotted_time,
    id_string,
    isoformat_ms,
    run_key,
    utc_now,
)

T0 = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
STEP = timedelta(seconds=1, milliseconds=1)
RULE_KINDS = ("llm", "chat_model", "tool", "retriever", "chain", "prompt")


class FakeClock:
    """A clock that starts at ``T0`` and moves ``STEP`` forward on every call."""

    def __init__(self) -> None:
        self.now = T0
        self.calls = 0

    def __call__(self) -> datetime:
        current = self.now
        self.now += STEP
        self.calls += 1
        return current


def sequential_ids() -> Callable[[], uuid.UUID]:
    """Return an id factory that yields UUID(int=1), UUID(int=2), ..."""
    counter = itertools.count(1)
    return lambda: uuid.UUID(int=next(counter))


def uid(n: int) -> uuid.UUID:
    """Return the n-th id of :func:`sequential_ids`."""
    return uuid.UUID(int=n)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def tree(clock: FakeClock) -> RunTree:
    return RunTree(clock=clock, new_id=sequential_ids())


def state_of(tree: RunTree, runs: list[Run]) -> list[Any]:
    """Return a deep, comparable picture of the given runs and whether each is open."""
    return [(run.id in tree, tree.find(run.id) is run, asdict(run)) for run in runs] + [len(tree)]


class TestRunTreeStart:
    @pytest.mark.parametrize(
        ("kwargs", "argument"),
        [
            ({"tags": "abc"}, "tags"),
            ({"tags": ["ok", 3]}, "tags"),
            ({"run_type": ("chain",)}, "run_type"),
            ({"name": None}, "name"),
            ({"run_id": {"a": 1}}, "run_id"),
        ],
    )
    def test_wrong_kind_of_argument_leaves_tree_unchanged(
        self, tree: RunTree, kwargs: dict[str, Any], argument: str
    ) -> None:
        """A start with a wrong kind of argument raises RunArgumentError; no run opens."""
        root = tree.start(name="agent", run_type="chain")
        start: dict[str, Any] = {"name": "x", "run_type": "chain", "parent_id": root.id}
        with pytest.raises(RunArgumentError) as caught:
            tree.start(**{**start, **kwargs})
        assert caught.value.argument == argument
        assert len(tree) == 1 and root.children == []

    def test_run_argument_error_copies_with_its_fields(self, tree: RunTree) -> None:
        """RunArgumentError round-trips through copy (its __reduce__) with every field."""
        import copy

        with pytest.raises(RunArgumentError) as caught:
            tree.start(name="x", run_type="chain", tags="abc", event="chain start")  # type: ignore[arg-type]
        clone = copy.deepcopy(caught.value)
        assert (str(clone), clone.run_id, clone.event, clone.argument) == (
            str(caught.value),
            caught.value.run_id,
            "chain start",
            "tags",
        )

    def test_discard_undoes_a_start(self, tree: RunTree) -> None:
        """discard removes the run and its place among its parent's children."""
        root = tree.start(name="agent", run_type="chain")
        kept = tree.start(name="a", run_type="chain", parent_id=root.id)
        dropped = tree.start(name="b", run_type="chain", parent_id=root.id)
        tree.discard(dropped)
        assert dropped.id not in tree and kept.id in tree
        assert root.children == [kept.id]
        with pytest.raises(UnknownRunError) as caught:
            tree.end(dropped.id, outputs=None)
        assert caught.value.state == "unknown"

    def test_root_has_no_parent_and_is_its_own_trace(self, tree: RunTree) -> None:
        """A run started without a parent is a root whose trace id is its own id."""
        root = tree.start(name="agent", run_type="chain")
        assert root.id == uid(1)
        assert root.parent_id is None
        assert root.trace_id == root.id
        assert root.name == "agent" and root.run_type == "chain"

    def test_child_is_linked_to_its_parent(self, tree: RunTree) -> None:
        """A child records its parent and trace, and the parent lists the child in order."""
        root = tree.start(name="agent", run_type="chain")
        a = tree.start(name="a", run_type="tool", parent_id=root.id)
        b = tree.start(name="b", run_type="llm", parent_id=root.id)
        grandchild = tree.start(name="c", run_type="retriever", parent_id=a.id)
        assert (a.parent_id, b.parent_id, grandchild.parent_id) == (root.id, root.id, a.id)
        assert {a.trace_id, b.trace_id, grandchild.trace_id} == {root.id}
        assert root.children == [a.id, b.id]
        assert a.children == [grandchild.id]
        assert b.children == []

    def test_generated_ids_come_from_new_id(self, tree: RunTree) -> None:
        """Runs started without an id get the injected factory's ids, in order."""
        runs = [tree.start(name=f"r{i}", run_type="chain") for i in range(3)]
        assert [r.id for r in runs] == [uid(1), uid(2), uid(3)]

    def test_explicit_id_is_used_and_new_id_not_called(self, clock: FakeClock) -> None:
        """A run started with an id keeps that id and does not consume a generated one."""
        calls: list[int] = []

        def new_id() -> uuid.UUID:
            calls.append(1)
            return uid(99)

        tree = RunTree(clock=clock, new_id=new_id)
        run = tree.start(name="x", run_type="chain", run_id=uid(7))
        assert run.id == uid(7)
        assert calls == []

    def test_start_time_and_start_event_come_from_the_clock(self, tree: RunTree) -> None:
        """The start time is the clock's reading, and the one start event carries it."""
        first = tree.start(name="a", run_type="chain")
        second = tree.start(name="b", run_type="chain")
        assert first.start_time == T0
        assert second.start_time == T0 + STEP
        assert first.events == [RunEvent("start", T0)]
        assert first.events[0].kwargs == {}

    def test_root_dotted_order_is_time_then_id(self, tree: RunTree) -> None:
        """A root's dotted order is its UTC start time in LangSmith's format followed by its id."""
        root = tree.start(name="a", run_type="chain")
        assert root.dotted_order == "20240102T030405678000Z" + str(uid(1))

    def test_dotted_order_is_written_in_utc(self) -> None:
        """A clock in another zone still gives a dotted order in UTC, as its 'Z' suffix says."""
        plus_two = timezone(timedelta(hours=2))
        tree = RunTree(
            clock=lambda: datetime(2024, 1, 2, 5, 4, 5, tzinfo=plus_two), new_id=sequential_ids()
        )
        run = tree.start(name="a", run_type="chain")
        assert run.dotted_order == "20240102T030405000000Z" + str(uid(1))
        assert run.start_time.utcoffset() == timedelta(hours=2)

    def test_child_dotted_order_extends_the_parents(self, tree: RunTree) -> None:
        """A child's dotted order is its parent's, a dot, then its own time and id."""
        root = tree.start(name="a", run_type="chain")
        child = tree.start(name="b", run_type="chain", parent_id=root.id)
        grandchild = tree.start(name="c", run_type="chain", parent_id=child.id)
        assert child.dotted_order == root.dotted_order + ".20240102T030406679000Z" + str(uid(2))
        assert grandchild.dotted_order.startswith(child.dotted_order + ".")
        assert grandchild.dotted_order.count(".") == 2

    def test_unknown_parent_makes_a_root_and_logs(
        self, tree: RunTree, caplog: pytest.LogCaptureFixture
    ) -> None:
        """A parent id that is not open makes the run a root, logged at debug level."""
        with caplog.at_level(logging.DEBUG, logger="logstream._model"):
            run = tree.start(name="orphan", run_type="tool", parent_id=uid(42))
        assert run.parent_id is None
        assert run.trace_id == run.id
        assert "." not in run.dotted_order
        messages = [r.getMessage() for r in caplog.records if r.name == "logstream._model"]
        assert len(messages) == 1
        assert str(uid(42)) in messages[0] and "orphan" in messages[0]

    def test_unknown_parent_is_not_logged_when_disabled(
        self, clock: FakeClock, caplog: pytest.LogCaptureFixture
    ) -> None:
        """With log_missing_parent=False a missing parent is not logged."""
        tree = RunTree(clock=clock, new_id=sequential_ids(), log_missing_parent=False)
        with caplog.at_level(logging.DEBUG, logger="logstream._model"):
            run = tree.start(name="orphan", run_type="tool", parent_id=uid(42))
        assert run.parent_id is None
        assert [r for r in caplog.records if r.name == "logstream._model"] == []

    def test_parent_that_has_ended_is_treated_as_unknown(self, tree: RunTree) -> None:
        """A run naming a parent that already finished becomes a root of a new trace."""
        root = tree.start(name="a", run_type="chain")
        tree.end(root.id, outputs=None)
        late = tree.start(name="late", run_type="chain", parent_id=root.id)
        assert late.parent_id is None and late.trace_id == late.id
        assert root.children == []

    def test_defaults_of_a_new_run(self, tree: RunTree) -> None:
        """A new run is running, with empty tags/metadata and nothing produced yet."""
        run = tree.start(name="a", run_type="chain")
        assert run.tags == [] and run.metadata == {}
        assert run.inputs is None and run.outputs is None and run.error is None
        assert run.end_time is None and run.children == [] and run.token_count == 0
        assert run.status == "running"

    def test_tags_and_metadata_are_copied(self, tree: RunTree) -> None:
        """Mutating the caller's tags list or metadata dict after start does not reach the run."""
        tags = ["t1"]
        metadata: dict[str, Any] = {"k": 1}
        run = tree.start(name="a", run_type="chain", tags=tags, metadata=metadata)
        tags.append("t2")
        metadata["k"] = 2
        assert run.tags == ["t1"]
        assert run.metadata == {"k": 1}

    def test_inputs_are_kept_as_given(self, tree: RunTree) -> None:
        """The model stores inputs as the caller reported them, without looking inside."""
        inputs = {"input": {"lc": 1, "type": "constructor"}}
        run = tree.start(name="a", run_type="chain", inputs=inputs)
        assert run.inputs is inputs

    def test_open_run_is_found(self, tree: RunTree) -> None:
        """A started run is open: counted, contained, found and gettable."""
        run = tree.start(name="a", run_type="chain")
        assert len(tree) == 1
        assert run.id in tree
        assert tree.find(run.id) is run
        assert tree.get(run.id) is run

    def test_duplicate_start_raises_and_leaves_tree_unchanged(self, tree: RunTree) -> None:
        """Starting an id that is open raises DuplicateRunError naming it; the tree is unchanged."""
        root = tree.start(name="agent", run_type="chain")
        held = tree.start(name="search", run_type="tool", parent_id=root.id, run_id=uid(50))
        before = state_of(tree, [root, held])
        with pytest.raises(DuplicateRunError) as info:
            tree.start(name="other", run_type="llm", run_id=uid(50), parent_id=root.id)
        assert info.value.run_id == uid(50)
        message = str(info.value)
        assert str(uid(50)) in message and "start" in message
        assert "'search'" in message and "tool" in message
        assert isinstance(info.value, LogStreamError) and isinstance(info.value, ValueError)
        assert state_of(tree, [root, held]) == before

    def test_duplicate_generated_id_raises_and_leaves_tree_unchanged(
        self, clock: FakeClock
    ) -> None:
        """A generated id that is already open is refused too, not silently overwritten."""
        tree = RunTree(clock=clock, new_id=lambda: uid(1))
        first = tree.start(name="first", run_type="chain")
        before = state_of(tree, [first])
        with pytest.raises(DuplicateRunError) as info:
            tree.start(name="second", run_type="chain")
        assert info.value.run_id == uid(1)
        assert state_of(tree, [first]) == before
        assert tree.get(uid(1)).name == "first"

    def test_id_can_be_reused_after_its_run_ended(self, tree: RunTree) -> None:
        """A finished run is forgotten, so its id may be started again."""
        tree.start(name="a", run_type="chain", run_id=uid(9))
        tree.end(uid(9), outputs=1)
        again = tree.start(name="b", run_type="chain", run_id=uid(9))
        assert tree.get(uid(9)) is again


class TestRunTreeLookup:
    def test_find_returns_none_for_unknown_id(self, tree: RunTree) -> None:
        """find answers None for an id that is not open."""
        assert tree.find(uid(3)) is None
        assert uid(3) not in tree
        assert len(tree) == 0

    def test_get_raises_unknown_run_naming_id_and_event(self, tree: RunTree) -> None:
        """get raises UnknownRunError carrying the id and the asking event."""
        with pytest.raises(UnknownRunError) as info:
            tree.get(uid(3), "custom")
        assert info.value.run_id == uid(3)
        assert info.value.event == "custom"
        assert info.value.state == "unknown"
        assert str(info.value) == (
            f"can't handle custom for run {uid(3)}: no run with this id is open "
            "(it was never started, or ended long ago)"
        )

    @pytest.mark.parametrize(("finish", "state"), [("end", "ended"), ("fail", "failed")])
    def test_event_after_finish_says_the_run_already_finished(
        self, tree: RunTree, finish: str, state: str
    ) -> None:
        """An event for a run that just finished names that state, not "unknown"."""
        run = tree.start(name="a", run_type="llm")
        if finish == "end":
            tree.end(run.id, outputs=None)
        else:
            tree.fail(run.id, ValueError("boom"))
        with pytest.raises(UnknownRunError) as info:
            tree.count_token(run.id)
        assert info.value.state == state
        assert str(info.value).endswith(f": the run already {state}")
        assert "token" in str(info.value)

    def test_unknown_run_error_is_a_key_error(self, tree: RunTree) -> None:
        """UnknownRunError is a KeyError (and a LogStreamError) whose str is not quoted."""
        with pytest.raises(KeyError) as info:
            tree.get(uid(3))
        assert isinstance(info.value, LogStreamError)
        assert str(info.value).startswith("can't handle lookup for run ")

    def test_contains_accepts_any_object(self, tree: RunTree) -> None:
        """Membership of a non-id object is simply False."""
        tree.start(name="a", run_type="chain")
        assert "a" not in tree
        assert None not in tree


class TestRunTreeCountToken:
    def test_token_increments_count(self, tree: RunTree) -> None:
        """Each token on an allowed run adds one to its token count."""
        run = tree.start(name="m", run_type="llm")
        assert tree.count_token(run.id) is run
        tree.count_token(run.id)
        assert run.token_count == 2

    def test_event_rules_are_data_for_every_event(self, tree: RunTree) -> None:
        """EVENT_RULES says which types each event fits; events it does not name fit any."""
        runs = {kind: tree.start(name=kind, run_type=kind) for kind in RULE_KINDS}
        for event, types in EVENT_RULES.items():
            for kind, run in runs.items():
                if kind in types:
                    assert tree.check_event(run.id, event) is run
                else:
                    with pytest.raises(RunTypeError):
                        tree.check_event(run.id, event)
        for run in runs.values():
            assert tree.check_event(run.id, "retry") is run
            assert tree.check_event(run.id, "chain end") is run

    def test_token_for_unknown_run_raises(self, tree: RunTree) -> None:
        """A token for an id that is not open raises UnknownRunError for event 'token'."""
        with pytest.raises(UnknownRunError) as info:
            tree.count_token(uid(5))
        assert (info.value.run_id, info.value.event) == (uid(5), "token")
        assert len(tree) == 0

    def test_token_for_wrong_type_raises_and_leaves_count(self, tree: RunTree) -> None:
        """A token on a chain run raises RunTypeError naming the types; the count is unchanged."""
        run = tree.start(name="c", run_type="chain")
        before = state_of(tree, [run])
        with pytest.raises(RunTypeError) as info:
            tree.count_token(run.id)
        err = info.value
        assert (err.run_id, err.event, err.run_type) == (run.id, "token", "chain")
        assert str(err) == (
            f"can't handle token for run {run.id}: it is a chain run, expected chat_model or llm"
        )
        assert isinstance(err, TypeError)
        assert state_of(tree, [run]) == before


class TestRunTreeAddEvent:
    def test_event_is_appended_with_clock_time_and_kwargs(
        self, tree: RunTree, clock: FakeClock
    ) -> None:
        """add_event appends the named event with the clock's time and a copy of kwargs."""
        run = tree.start(name="a", run_type="chain")
        kwargs: dict[str, Any] = {"attempt": 1}
        assert tree.add_event(run.id, "retry", kwargs) is run
        kwargs["attempt"] = 2
        assert run.events[-1] == RunEvent("retry", T0 + STEP, {"attempt": 1})
        assert [e.name for e in run.events] == ["start", "retry"]

    def test_event_without_kwargs_has_empty_kwargs(self, tree: RunTree) -> None:
        """An event given no kwargs records an empty dict."""
        run = tree.start(name="a", run_type="chain")
        tree.add_event(run.id, "custom")
        assert run.events[-1].kwargs == {}

    def test_event_for_unknown_run_raises_naming_the_event(self, tree: RunTree) -> None:
        """An event for an id that is not open raises UnknownRunError naming that event."""
        with pytest.raises(UnknownRunError) as info:
            tree.add_event(uid(8), "retry")
        assert (info.value.run_id, info.value.event) == (uid(8), "retry")


class TestRunTreeEnd:
    def test_end_records_outputs_time_and_forgets(self, tree: RunTree) -> None:
        """end sets outputs and end time, appends an end event and removes the run."""
        run = tree.start(name="a", run_type="chain", inputs={"input": 1})
        done = tree.end(run.id, outputs={"output": 2})
        assert done is run
        assert run.outputs == {"output": 2}
        assert run.end_time == T0 + STEP
        assert run.events[-1] == RunEvent("end", T0 + STEP)
        assert run.status == "success"
        assert run.inputs == {"input": 1}
        assert run.id not in tree and len(tree) == 0

    def test_end_replaces_inputs_when_given(self, tree: RunTree) -> None:
        """Inputs given at end replace the start's, including an explicit None."""
        a = tree.start(name="a", run_type="chain", inputs={"input": ""})
        b = tree.start(name="b", run_type="chain", inputs={"input": ""})
        tree.end(a.id, outputs=1, inputs={"input": "late"})
        tree.end(b.id, outputs=1, inputs=None)
        assert a.inputs == {"input": "late"}
        assert b.inputs is None

    def test_end_keeps_children_open(self, tree: RunTree) -> None:
        """Ending a parent before its child leaves the child open and endable."""
        root = tree.start(name="a", run_type="chain")
        child = tree.start(name="b", run_type="chain", parent_id=root.id)
        tree.end(root.id, outputs=None)
        assert child.id in tree and len(tree) == 1
        assert tree.end(child.id, outputs=3).outputs == 3

    def test_end_of_unknown_run_raises(self, tree: RunTree) -> None:
        """Ending an id that is not open raises UnknownRunError for the given event name."""
        with pytest.raises(UnknownRunError) as info:
            tree.end(uid(4), outputs=None, event="chain_end")
        assert (info.value.run_id, info.value.event) == (uid(4), "chain_end")
        assert "chain_end" in str(info.value) and str(uid(4)) in str(info.value)

    def test_second_end_raises_and_keeps_first_result(self, tree: RunTree) -> None:
        """Ending a run twice raises UnknownRunError; the first end's record is untouched."""
        run = tree.start(name="a", run_type="chain")
        tree.end(run.id, outputs=1)
        before = asdict(run)
        with pytest.raises(UnknownRunError) as info:
            tree.end(run.id, outputs=2)
        assert info.value.event == "end"
        assert asdict(run) == before

    def test_end_of_wrong_type_raises_and_keeps_run_open(self, tree: RunTree) -> None:
        """An end the type does not allow raises RunTypeError; the run stays open as it was."""
        root = tree.start(name="root", run_type="chain")
        run = tree.start(name="a", run_type="chain", parent_id=root.id)
        before = state_of(tree, [root, run])
        with pytest.raises(RunTypeError) as info:
            tree.end(run.id, outputs=1, event="llm end")
        assert (info.value.event, info.value.run_type) == ("llm end", "chain")
        assert state_of(tree, [root, run]) == before
        assert run.status == "running"


class TestRunTreeFail:
    def test_fail_records_error_and_forgets(self, tree: RunTree) -> None:
        """fail stores repr(error), an end time and an error event, and removes the run."""
        run = tree.start(name="a", run_type="tool")
        done = tree.fail(run.id, ValueError("boom"))
        assert done is run
        assert run.error == "ValueError('boom')"
        assert run.status == "error"
        assert run.end_time == T0 + STEP
        assert run.events[-1] == RunEvent("error", T0 + STEP)
        assert run.outputs is None
        assert run.id not in tree

    def test_fail_keeps_partial_outputs_and_inputs_when_given(self, tree: RunTree) -> None:
        """Outputs and inputs reported with the error are recorded."""
        run = tree.start(name="a", run_type="llm", inputs={"prompts": ["x"]})
        tree.fail(run.id, RuntimeError(), outputs={"generations": []}, inputs={"prompts": ["y"]})
        assert run.outputs == {"generations": []}
        assert run.inputs == {"prompts": ["y"]}

    def test_fail_of_unknown_run_raises(self, tree: RunTree) -> None:
        """Failing an id that is not open raises UnknownRunError for event 'error'."""
        with pytest.raises(UnknownRunError) as info:
            tree.fail(uid(6), ValueError())
        assert (info.value.run_id, info.value.event) == (uid(6), "error")

    def test_fail_of_wrong_type_raises_and_keeps_run_open(self, tree: RunTree) -> None:
        """A failure not allowed for the run's type raises RunTypeError; the run is unchanged."""
        run = tree.start(name="a", run_type="tool")
        before = state_of(tree, [run])
        with pytest.raises(RunTypeError):
            tree.fail(run.id, ValueError(), event="llm error")
        assert state_of(tree, [run]) == before


class TestRunStatus:
    def test_status_follows_end_time_and_error(self) -> None:
        """status is running without an end time, else error if an error is set, else success."""
        run = Run(
            id=uid(1),
            name="a",
            run_type="chain",
            parent_id=None,
            trace_id=uid(1),
            dotted_order="",
            tags=[],
            metadata={},
            inputs=None,
            start_time=T0,
        )
        assert run.status == "running"
        run.error = "ValueError()"
        assert run.status == "running"
        run.end_time = T0
        assert run.status == "error"
        run.error = None
        assert run.status == "success"

    def test_runs_compare_by_identity(self, tree: RunTree) -> None:
        """Two runs with equal fields are still different runs (eq=False)."""
        a = tree.start(name="a", run_type="chain", run_id=uid(10))
        tree.end(a.id, outputs=None)
        b = Run(**{k: getattr(a, k) for k in a.__dataclass_fields__})
        assert a != b


class TestDefaults:
    def test_utc_now_is_aware_utc(self) -> None:
        """The default clock returns an aware datetime in UTC."""
        now = utc_now()
        assert now.tzinfo is not None
        assert now.utcoffset() == timedelta(0)

    def test_default_tree_uses_uuid4_ids(self) -> None:
        """A tree with default factories hands out distinct random (version 4) ids."""
        tree = RunTree()
        a = tree.start(name="a", run_type="chain")
        b = tree.start(name="b", run_type="chain")
        assert a.id != b.id
        assert a.id.version == 4
        assert a.start_time.tzinfo is not None

    def test_unset_has_a_readable_repr(self) -> None:
        """The UNSET marker reprs as UNSET and is distinct from None."""
        assert repr(UNSET) == "UNSET"
        assert UNSET is not None


# Times around the edges the fast formatting has to get right: second and millisecond
# boundaries, years below 1000, the last second of datetime, other offsets, naive times.
TIMES = st.datetimes(
    min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59, 999999)
)
ZONES = st.sampled_from(
    [timezone.utc, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)), None]
)


class TestFastFormatting:
    """The fast time and id formatting gives exactly what the slow standard calls give."""

    @settings(max_examples=400, deadline=None)
    @given(when=TIMES, zone=ZONES)
    def test_isoformat_ms_is_isoformat(self, when: datetime, zone: Any) -> None:
        """isoformat_ms(dt) == dt.isoformat(timespec="milliseconds"), for any time and zone."""
        dt = when.replace(tzinfo=zone)
        assert isoformat_ms(dt) == dt.isoformat(timespec="milliseconds")

    @settings(max_examples=400, deadline=None)
    @given(when=TIMES, zone=ZONES)
    def test_dotted_time_is_the_strftime_of_utc(self, when: datetime, zone: Any) -> None:
        """The dotted order's time part is strftime("%Y%m%dT%H%M%S%fZ") of the time in UTC."""
        dt = when.replace(tzinfo=zone)
        try:
            utc = dt.astimezone(timezone.utc) if zone is not None else dt
        except OverflowError:  # moved past datetime's range: the standard way fails too
            return
        assert _dotted_time(dt) == utc.strftime("%Y%m%dT%H%M%S%fZ")

    def test_times_in_the_same_second_share_the_cache_correctly(self) -> None:
        """Consecutive times inside one second and across its edges format right."""
        base = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        for micro in (0, 1, 999, 1000, 499_999, 999_999, 1_000_000, 1_000_001, 2_500_000):
            dt = base + timedelta(microseconds=micro)
            assert isoformat_ms(dt) == dt.isoformat(timespec="milliseconds")
            assert _dotted_time(dt) == dt.strftime("%Y%m%dT%H%M%S%fZ")
        earlier = base - timedelta(microseconds=1)
        assert isoformat_ms(earlier) == earlier.isoformat(timespec="milliseconds")

    def test_the_last_second_of_datetime_formats(self) -> None:
        """The very last representable UTC second formats without overflowing."""
        last = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc)
        assert isoformat_ms(last) == last.isoformat(timespec="milliseconds")
        assert _dotted_time(last) == last.strftime("%Y%m%dT%H%M%S%fZ")

    def test_id_string_is_str_for_new_and_repeated_ids(self) -> None:
        """id_string(x) == str(x), for the same object twice and for different objects."""
        a, b = uuid.uuid4(), uuid.uuid4()
        assert [id_string(a), id_string(a), id_string(b), id_string(a)] == [
            str(a),
            str(a),
            str(b),
            str(a),
        ]
        assert id_string(None) == "None"
        assert id_string("x") == "x"

    def test_caches_shared_by_racing_threads_format_every_value_right(self) -> None:
        """Threads formatting different seconds and ids at once each get their own text."""
        base = datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
        ids = [uuid.uuid4() for _ in range(8)]
        wrong: list[str] = []

        def work(offset: int) -> None:
            for i in range(2000):
                dt = base + timedelta(seconds=offset + i % 3, microseconds=i * 997)
                run_id = ids[(offset + i) % len(ids)]
                if isoformat_ms(dt) != dt.isoformat(timespec="milliseconds"):
                    wrong.append(f"isoformat_ms({dt!r})")
                if _dotted_time(dt) != dt.strftime("%Y%m%dT%H%M%S%fZ"):
                    wrong.append(f"_dotted_time({dt!r})")
                if id_string(run_id) != str(run_id):
                    wrong.append(f"id_string({run_id})")

        switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)  # switch threads often: between a cache's load and use
        try:
            threads = [threading.Thread(target=work, args=(n * 5,)) for n in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(30)
                assert not thread.is_alive()
        finally:
            sys.setswitchinterval(switch_interval)
        assert wrong == []

    def test_run_key_matches_equal_ids(self) -> None:
        """Equal ids (UUID, UUID subclass) share a key; other ids keep their type in theirs."""

        class SubUUID(uuid.UUID):
            pass

        a = uuid.uuid4()
        assert run_key(a) == run_key(uuid.UUID(str(a))) == run_key(SubUUID(str(a))) == a.int
        assert run_key("abc") == run_key("ab" + "c") != "abc"
        assert run_key(a.int) != run_key(a)
        assert len({run_key(3), run_key(3.0), run_key("3"), run_key(uuid.UUID(int=3))}) == 4


class TestFinishedMemory:
    """What the tree remembers of finished runs, for error messages."""

    def test_recently_finished_runs_are_named_as_such(self, tree: RunTree) -> None:
        """A run among the last ended ones is reported as ended, an older one as unknown."""
        first = tree.start(name="first", run_type="chain")
        tree.end(first.id, outputs=None)
        with pytest.raises(UnknownRunError, match="already ended"):
            tree.end(first.id, outputs=None)
        for _ in range(3000):
            run = tree.start(name="r", run_type="chain")
            tree.end(run.id, outputs=None)
        with pytest.raises(UnknownRunError, match="never started"):
            tree.end(first.id, outputs=None)
        with pytest.raises(UnknownRunError, match="already ended"):
            tree.end(run.id, outputs=None)

    def test_a_thousand_recent_runs_are_always_remembered(self, tree: RunTree) -> None:
        """At least the last 1,024 finished runs are remembered, whatever came before."""
        runs = []
        for i in range(2500):
            run = tree.start(name="r", run_type="chain")
            if i % 2:
                tree.fail(run.id, ValueError())
            else:
                tree.end(run.id, outputs=None)
            runs.append(run)
        for i, run in enumerate(runs[-1024:], start=2500 - 1024):
            state = "already failed" if i % 2 else "already ended"
            with pytest.raises(UnknownRunError, match=state):
                tree.get(run.id, "token")
