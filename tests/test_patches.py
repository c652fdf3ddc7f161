"""Tests for logstream._patches: op builders, RunLogPatch and RunLog (+, ==, hash, repr)."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch  # type: ignore[import-untyped, unused-ignore]
import jsonpointer  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstream._patches import LogEntry, RunLog, RunLogPatch, RunState, add_op, replace_op


def state_of(log: RunLog) -> Any:
    """Return a log's state untyped, for tests that build states outside the RunState shape."""
    return log.state


ROOT = replace_op("", {"id": "r", "logs": {}, "streamed_output": []})
ADD_A = add_op("/logs/a", {"n": 1})
TOKEN = add_op("/streamed_output/-", "hi")


class TestOpBuilders:
    def test_add_op_shape(self) -> None:
        """add_op builds an RFC 6902 add with the path as given."""
        assert add_op("/a~1b", [1]) == {"op": "add", "path": "/a~1b", "value": [1]}

    def test_replace_op_shape(self) -> None:
        """replace_op builds an RFC 6902 replace; the empty path means the whole document."""
        assert replace_op("", {}) == {"op": "replace", "path": "", "value": {}}

    def test_builders_return_fresh_dicts(self) -> None:
        """Each call builds a new op, so mutating one op does not change another."""
        first = add_op("/a", 1)
        first["value"] = 2
        assert add_op("/a", 1)["value"] == 1


class TestWireShapes:
    def test_run_state_keys_are_langchains(self) -> None:
        """RunState declares exactly LangChain's keys, plus the opt-in ``error``."""
        assert set(RunState.__annotations__) == {
            "id",
            "streamed_output",
            "final_output",
            "name",
            "type",
            "logs",
            "error",
        }

    def test_log_entry_keys_are_langchains(self) -> None:
        """LogEntry declares exactly LangChain's keys, verbatim, plus the opt-in fields."""
        assert set(LogEntry.__annotations__) - {"parent_ids", "error"} == {
            "id",
            "name",
            "type",
            "tags",
            "metadata",
            "start_time",
            "streamed_output_str",
            "streamed_output",
            "inputs",
            "final_output",
            "end_time",
        }


class TestRunLogPatch:
    def test_ops_are_kept_in_order_as_a_list(self) -> None:
        """The ops given are stored as a list, in order."""
        patch = RunLogPatch(ROOT, ADD_A)
        assert patch.ops == [ROOT, ADD_A]
        assert RunLogPatch().ops == []

    def test_patch_plus_patch_is_a_run_log_with_the_state(self) -> None:
        """Adding two patches gives a RunLog of both ops and the state they build from nothing."""
        log = RunLogPatch(ROOT) + RunLogPatch(ADD_A, TOKEN)
        assert type(log) is RunLog
        assert log.ops == [ROOT, ADD_A, TOKEN]
        assert log.state == {"id": "r", "logs": {"a": {"n": 1}}, "streamed_output": ["hi"]}

    def test_patch_plus_patch_leaves_operands_unchanged(self) -> None:
        """Adding patches changes neither patch nor the values inside their ops."""
        value: dict[str, Any] = {"id": "r", "logs": {}, "streamed_output": []}
        first = RunLogPatch(replace_op("", value))
        second = RunLogPatch(ADD_A, TOKEN)
        before = (copy.deepcopy(first.ops), copy.deepcopy(second.ops))
        log = first + second
        assert (first.ops, second.ops) == before
        assert value == {"id": "r", "logs": {}, "streamed_output": []}
        state_of(log)["logs"]["b"] = 2
        assert value["logs"] == {}

    def test_patch_plus_inapplicable_patch_raises(self) -> None:
        """Ops that do not apply to the state (an add under a missing parent) raise."""
        with pytest.raises((jsonpatch.JsonPatchException, jsonpointer.JsonPointerException)):
            RunLogPatch(ROOT) + RunLogPatch(add_op("/missing/x", 1))

    @pytest.mark.parametrize("other", [1, None, [ROOT], {"ops": [ROOT]}, "x"])
    def test_patch_plus_other_raises_type_error(self, other: object) -> None:
        """Adding anything but a RunLogPatch raises TypeError naming both operand types."""
        with pytest.raises(TypeError) as info:
            RunLogPatch(ROOT) + other
        assert "RunLogPatch" in str(info.value)
        assert str(type(other)) in str(info.value)

    def test_patch_plus_run_log_raises_type_error(self) -> None:
        """Only an exact RunLogPatch may be added to a patch; a RunLog may not (as in LangChain)."""
        log = RunLogPatch(ROOT) + RunLogPatch(ADD_A)
        with pytest.raises(TypeError):
            RunLogPatch(TOKEN) + log

    def test_patch_plus_patch_subclass_raises_type_error(self) -> None:
        """A subclass of RunLogPatch is not accepted as the right operand."""

        class Sub(RunLogPatch):
            pass

        with pytest.raises(TypeError):
            RunLogPatch(ROOT) + Sub(ADD_A)

    def test_equal_when_ops_equal(self) -> None:
        """Two patches are equal exactly when their ops are equal."""
        assert RunLogPatch(ROOT, ADD_A) == RunLogPatch(copy.deepcopy(ROOT), copy.deepcopy(ADD_A))
        assert RunLogPatch(ROOT, ADD_A) != RunLogPatch(ADD_A, ROOT)
        assert RunLogPatch(ROOT) != RunLogPatch(ROOT, ADD_A)

    def test_not_equal_to_other_types(self) -> None:
        """A patch is never equal to a plain list of the same ops."""
        assert RunLogPatch(ROOT) != [ROOT]
        assert RunLogPatch() != []

    def test_patch_and_log_with_same_ops_are_not_equal(self) -> None:
        """A RunLogPatch and a RunLog with the same ops differ, whichever side is asked."""
        log = RunLogPatch(ROOT) + RunLogPatch(ADD_A)
        patch = RunLogPatch(ROOT, ADD_A)
        assert patch.ops == log.ops
        assert patch != log
        assert log != patch
        assert not (patch == log)

    def test_unhashable(self) -> None:
        """Patches define equality on mutable ops, so they are unhashable."""
        assert RunLogPatch.__hash__ is None
        with pytest.raises(TypeError):
            hash(RunLogPatch(ROOT))

    def test_repr_shows_the_ops_without_brackets(self) -> None:
        """repr lists the ops pretty-printed inside RunLogPatch(...), with no list brackets."""
        assert repr(RunLogPatch()) == "RunLogPatch()"
        assert (
            repr(RunLogPatch(add_op("/a", 1)))
            == "RunLogPatch({'op': 'add', 'path': '/a', 'value': 1})"
        )

    def test_repr_of_long_ops_wraps_one_op_per_line(self) -> None:
        """Ops too long for one line are wrapped one per line, as pprint lays out a list."""
        patch = RunLogPatch(add_op("/a", 1), add_op("/b", 2))
        assert repr(patch) == (
            "RunLogPatch({'op': 'add', 'path': '/a', 'value': 1},\n"
            " {'op': 'add', 'path': '/b', 'value': 2})"
        )


class TestRunLog:
    def _log(self) -> RunLog:
        return RunLogPatch(ROOT) + RunLogPatch(ADD_A)

    def test_log_plus_patch_extends_ops_and_state(self) -> None:
        """RunLog + RunLogPatch gives a RunLog with all ops and the updated state."""
        log = self._log() + RunLogPatch(TOKEN)
        assert type(log) is RunLog
        assert log.ops == [ROOT, ADD_A, TOKEN]
        assert log.state["streamed_output"] == ["hi"]
        assert state_of(log)["logs"] == {"a": {"n": 1}}

    def test_log_plus_patch_leaves_old_log_unchanged(self) -> None:
        """Adding to a RunLog returns a new one; the old log's ops and state are as they were."""
        old = self._log()
        ops_before, state_before = copy.deepcopy(old.ops), copy.deepcopy(old.state)
        new = old + RunLogPatch(TOKEN, add_op("/logs/a/m", 2))
        assert new is not old
        assert old.ops == ops_before
        assert old.state == state_before
        assert state_of(new)["logs"]["a"] == {"n": 1, "m": 2}
        state_of(new)["logs"]["a"]["n"] = 99
        assert state_of(old)["logs"]["a"]["n"] == 1

    def test_new_state_does_not_alias_the_patch_values(self) -> None:
        """Mutating the new log's state does not reach back into the added patch's ops."""
        patch = RunLogPatch(add_op("/logs/b", {"items": [1]}))
        log = self._log() + patch
        state_of(log)["logs"]["b"]["items"].append(2)
        assert patch.ops == [add_op("/logs/b", {"items": [1]})]

    def test_adding_a_patch_leaves_the_patch_unchanged(self) -> None:
        """A patch whose later op writes into a value its earlier op added is not mutated by +."""
        patch = RunLogPatch(add_op("/logs/b", {"items": []}), add_op("/logs/b/items/-", 1))
        log = self._log() + patch
        assert state_of(log)["logs"]["b"] == {"items": [1]}
        assert patch.ops[0] == add_op("/logs/b", {"items": []})

    def test_stepwise_sum_equals_one_shot_application(self) -> None:
        """Summing patches one at a time builds the same log as applying all ops at once."""
        patches = [RunLogPatch(ROOT), RunLogPatch(ADD_A), RunLogPatch(TOKEN, TOKEN)]
        log = patches[0] + patches[1]
        log = log + patches[2]
        all_ops = [op for p in patches for op in p.ops]
        assert log == RunLog(*all_ops, state=jsonpatch.apply_patch(None, copy.deepcopy(all_ops)))
        assert log.state["streamed_output"] == ["hi", "hi"]

    def test_log_plus_inapplicable_patch_raises_and_keeps_log(self) -> None:
        """A patch that does not apply raises, and the log is unchanged."""
        log = self._log()
        state_before = copy.deepcopy(log.state)
        with pytest.raises((jsonpatch.JsonPatchException, jsonpointer.JsonPointerException)):
            log + RunLogPatch(TOKEN, add_op("/missing/x", 1))
        assert log.state == state_before
        assert log.ops == [ROOT, ADD_A]

    @pytest.mark.parametrize("other", [1, None, {"ops": []}])
    def test_log_plus_other_raises_type_error(self, other: object) -> None:
        """Adding anything but an exact RunLogPatch to a RunLog raises TypeError."""
        with pytest.raises(TypeError) as info:
            self._log() + other
        assert "RunLog" in str(info.value)

    def test_log_plus_log_raises_type_error(self) -> None:
        """Two RunLogs cannot be added (as in LangChain)."""
        with pytest.raises(TypeError):
            self._log() + self._log()

    def test_equal_needs_equal_state_and_ops(self) -> None:
        """Logs are equal when both state and ops are equal."""
        assert self._log() == self._log()
        same_state_other_ops = RunLog(
            replace_op("", {"id": "r", "logs": {"a": {"n": 1}}, "streamed_output": []}),
            state=self._log().state,
        )
        assert self._log().state == same_state_other_ops.state
        assert self._log() != same_state_other_ops
        other_state_same_ops = RunLog(*self._log().ops, state={"different": True})  # type: ignore[arg-type]
        assert self._log() != other_state_same_ops

    def test_log_is_unhashable(self) -> None:
        """A RunLog is unhashable, like a patch."""
        with pytest.raises(TypeError):
            hash(self._log())

    def test_repr_shows_the_state(self) -> None:
        """repr shows the pretty-printed state, not the ops."""
        log = RunLogPatch(replace_op("", {"b": 1})) + RunLogPatch(add_op("/a", [1]))
        assert repr(log) == "RunLog({'a': [1], 'b': 1})"
        assert repr(RunLog(state=None)) == "RunLog(None)"

    def test_state_may_start_empty(self) -> None:
        """A RunLog built with state=None and no ops extends like any other."""
        log = RunLog(state=None) + RunLogPatch(replace_op("", {"x": 1}))
        assert state_of(log) == {"x": 1}
        assert log.ops == [replace_op("", {"x": 1})]


class _ForeignPatch:
    """Another library's patch: a list of ops in ``.ops`` (as LangChain's RunLogPatch)."""

    def __init__(self, *ops: Any) -> None:
        self.ops = list(ops)


class _ForeignLog(_ForeignPatch):
    """Another library's log: ops and the ``state`` they build (as LangChain's RunLog)."""

    def __init__(self, *ops: Any, state: Any) -> None:
        super().__init__(*ops)
        self.state = state


_KEYS = st.sampled_from(["a", "b", "c/d", "e~f"])
_ADDS = st.lists(st.tuples(_KEYS, st.integers() | st.text(max_size=3)), max_size=8).map(
    lambda pairs: [add_op("/" + k.replace("~", "~0").replace("/", "~1"), v) for k, v in pairs]
)


class TestForeignPatches:
    @settings(max_examples=60, deadline=None)
    @given(first=_ADDS, second=_ADDS)
    def test_foreign_patches_add_as_ours(self, first: list[Any], second: list[Any]) -> None:
        """RunLog + another library's patch equals RunLog + our patch of the same ops."""
        start = [replace_op("", {})]
        ours = RunLog(state=None) + RunLogPatch(*start, *first) + RunLogPatch(*second)
        mixed = RunLog(state=None) + _ForeignPatch(*start, *first) + _ForeignPatch(*second)
        assert mixed == ours and mixed.state == ours.state and mixed.ops == ours.ops
        joined = RunLogPatch(*start, *first) + _ForeignPatch(*second)
        assert joined == RunLogPatch(*start, *first) + RunLogPatch(*second)

    def test_equal_to_foreign_patch_and_log_with_same_ops_and_state(self) -> None:
        """Our patch and log compare equal to foreign ones with equal ops (and state)."""
        op = replace_op("", {"a": 1})
        assert RunLogPatch(op) == _ForeignPatch(op)
        assert RunLogPatch(op) != _ForeignPatch(replace_op("", {"a": 2}))
        log = RunLogPatch(op) + RunLogPatch()
        assert log == _ForeignLog(op, state={"a": 1})
        assert log != _ForeignLog(op, state={"a": 2})
        assert log != _ForeignPatch(op)  # a log equals logs only, as LangChain's

    @pytest.mark.parametrize(
        "other", [_ForeignLog(state={}), object(), 3, RunLog(state=None)], ids=repr
    )
    def test_logs_and_non_patches_are_refused(self, other: Any) -> None:
        """Adding a log (ours or foreign) or a non-patch raises TypeError; nothing changes."""
        log = RunLogPatch(replace_op("", {})) + RunLogPatch()
        for left in (log, RunLogPatch()):
            with pytest.raises(TypeError, match="unsupported operand"):
                left + other
        assert log.state == {} and len(log.ops) == 1
