"""Tests for RunLog accumulation: jsonpatch's results, value semantics, linear growth."""

from __future__ import annotations

import copy
import pickle
import sys
import threading
from typing import Any, Callable, Optional

import jsonpatch  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from logstream import PatchApplyError, _apply
from logstream._apply import deep_copy
from logstream._patches import RunLog, RunLogPatch, add_op, replace_op

# --- helpers ------------------------------------------------------------------------------


def canon(value: Any) -> Any:
    """Return ``value`` as nested tuples that tell types and dict order apart."""
    if type(value) is dict:
        return ("dict", tuple((key, canon(item)) for key, item in value.items()))
    if type(value) is list:
        return ("list", tuple(canon(item) for item in value))
    return (type(value).__name__, value)


def container_ids(value: Any, out: Optional[set[int]] = None) -> set[int]:
    """Return the ids of every dict and list inside ``value`` (``value`` included)."""
    out = set() if out is None else out
    if type(value) in (dict, list):
        out.add(id(value))
        for item in value.values() if type(value) is dict else value:
            container_ids(item, out)
    return out


def reference(ops: list[Any]) -> Any:
    """Apply all ops at once from nothing, as the plain jsonpatch reference does."""
    return jsonpatch.apply_patch(None, copy.deepcopy(ops))


def reference_step(state: Any, ops: list[Any]) -> Any:
    """Apply one patch to a copy of ``state``, as LangChain's ``RunLog + patch`` does."""
    return jsonpatch.apply_patch(copy.deepcopy(state), copy.deepcopy(ops))


def pointer(parts: tuple[str, ...]) -> str:
    """Return the escaped JSON Pointer of ``parts``."""
    return "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in parts)


def locations(doc: Any, parts: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Return (parts, value) of every location in ``doc``, the root first."""
    found = [(parts, doc)]
    if type(doc) is dict:
        for key, item in doc.items():
            found += locations(item, (*parts, key))
    elif type(doc) is list:
        for index, item in enumerate(doc):
            found += locations(item, (*parts, str(index)))
    return found


KEYS = st.text(alphabet="ab~/-0", max_size=3)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-2, 2)
    | st.sampled_from([0.0, 1.0, 2.5])
    | st.text(alphabet="xy~/", max_size=3)
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=6,
)
JUNK_PATHS = ["a", "/nope/x", "/~2", "/x~", "/01", "/-/x", "/0/-", "/-", "/a/b/c", "/0"]
KINDS = ["add"] * 5 + ["replace"] * 3 + ["remove"] * 2 + ["move", "copy", "test"]


def draw_path(data: st.DataObject, doc: Any) -> str:
    """Draw a path: mostly an existing location or a new child of one, sometimes junk."""
    choice = data.draw(st.integers(0, 19))
    if choice == 13:  # not an end of the range, which hypothesis draws more often
        return data.draw(st.sampled_from(JUNK_PATHS))
    found = locations(doc)
    containers = [(parts, value) for parts, value in found if type(value) in (dict, list)]
    if choice >= 10 and containers:
        parts, value = data.draw(st.sampled_from(containers))
        if type(value) is dict:
            return pointer((*parts, data.draw(KEYS)))
        ends = ["-", "0", str(len(value)), str(len(value) + 1)]
        return pointer((*parts, data.draw(st.sampled_from(ends))))
    return pointer(data.draw(st.sampled_from(found))[0])


def draw_op(data: st.DataObject, doc: Any) -> Any:
    """Draw one op for ``doc``, usually well-formed, now and then malformed."""
    if data.draw(st.integers(0, 39)) == 17:
        return data.draw(
            st.sampled_from(
                [
                    "add",
                    {"op": "bogus", "path": "/a"},
                    {"op": "add", "path": "/a"},
                    {"op": "add", "value": 1},
                    {"op": "add", "path": 5, "value": 1},
                    {"path": "/a", "value": 1},
                ]
            )
        )
    kind = data.draw(st.sampled_from(KINDS))
    op: dict[str, Any] = {"op": kind, "path": draw_path(data, doc)}
    if kind in ("move", "copy"):
        op["from"] = draw_path(data, doc)
    elif kind == "test" and data.draw(st.booleans()):
        try:
            op["value"] = copy.deepcopy(jsonpatch.JsonPointer(op["path"]).resolve(doc))
        except Exception:
            op["value"] = data.draw(JSON)
    elif kind != "remove":
        op["value"] = data.draw(JSON)
    return op


def draw_patch(data: st.DataObject, doc: Any) -> list[Any]:
    """Draw one to three ops, each drawn against the document the ops before it leave.

    A fifth of the patches end with an op that fails, so the ops before it are undone.
    """
    ops: list[Any] = []
    for _ in range(data.draw(st.integers(1, 3))):
        ops.append(draw_op(data, doc))
        try:
            doc = reference_step(doc, ops[-1:])
        except Exception:
            pass
    if data.draw(st.integers(0, 4)) == 2:
        ops.append(data.draw(st.sampled_from([add_op("/nope/x", 1), {"op": "remove"}])))
    return ops


ROOT_VALUES = st.one_of(
    st.dictionaries(KEYS, JSON, max_size=3),
    st.fixed_dictionaries({"logs": st.just({}), "streamed_output": st.lists(JSON, max_size=2)}),
    JSON,
)


class Node:
    """One log and what the reference says it holds."""

    def __init__(self, log: RunLog, ops: list[Any], state: Any) -> None:
        self.log, self.ops, self.state = log, ops, state


def add_and_check(node: Node, ops: list[Any]) -> Optional[Node]:
    """Add a patch to ``node``'s log; check result or error against the reference."""
    try:
        expected = reference_step(node.state, ops)
    except Exception as error:
        with pytest.raises(PatchApplyError) as info:
            node.log + RunLogPatch(*ops)
        assert type(info.value.__cause__) is type(error)
        assert str(info.value.__cause__) == str(error)
        return None
    log = node.log + RunLogPatch(*ops)
    assert type(log) is RunLog
    return Node(log, node.ops + ops, expected)


def start(data: st.DataObject) -> Node:
    """Build a first log that applies: from RunLog(state=None) or from two patches."""
    root = [replace_op("", data.draw(ROOT_VALUES))]
    ops = draw_patch(data, reference(root))
    try:
        state = reference(root + ops)
    except Exception:
        ops = []
        state = reference(root)
    if data.draw(st.booleans()):
        log = RunLog(state=None) + RunLogPatch(*root)
        if ops:
            log = log + RunLogPatch(*ops)
    else:
        log = RunLogPatch(*root) + RunLogPatch(*ops)
    return Node(log, root + ops, state)


def run_program(data: st.DataObject, mutate: bool) -> list[Node]:
    """Add, read and (if ``mutate``) change logs at random; check each step as it goes."""
    nodes = [start(data)]
    for _ in range(data.draw(st.integers(1, 12))):
        action = data.draw(st.integers(0, 9))
        node = nodes[-1] if data.draw(st.integers(0, 2)) else data.draw(st.sampled_from(nodes))
        if action <= 5:
            new = add_and_check(node, draw_patch(data, node.state))
            if new is not None:
                nodes.append(new)
        elif action == 6:
            assert canon(node.log.state) == canon(node.state)
        elif action == 7:
            assert node.log.ops == node.ops
        elif mutate and type(node.log.state) is dict:
            key, value = data.draw(KEYS), data.draw(JSON)
            node.log.state[key] = value
            node.state[key] = copy.deepcopy(value)
        elif action == 8:
            node.log.ops  # noqa: B018  (caches the ops list, a different path in +)
    return nodes


def check_all(nodes: list[Node], against_full_ops: bool) -> None:
    """Every log still shows its own state and ops, sharing no container with another."""
    seen: set[int] = set()
    op_ids: set[int] = set()
    for node in nodes:
        for op in node.log.ops:
            if isinstance(op, dict):
                container_ids(op.get("value"), op_ids)
    for node in nodes:
        state = node.log.state
        assert canon(state) == canon(node.state)
        if against_full_ops:
            assert canon(state) == canon(reference(node.ops))
        assert node.log.ops == node.ops
        ids = container_ids(state)
        assert not ids & seen, "two logs share a container"
        assert not ids & op_ids, "a state shares a container with an op"
        seen |= ids


# --- property tests -----------------------------------------------------------------------


class TestAgainstJsonpatch:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def test_random_patches_branches_and_failures_match_reference(
        self, data: st.DataObject
    ) -> None:
        """Random patches, branching and failing patches give jsonpatch's states and errors."""
        check_all(run_program(data, mutate=False), against_full_ops=True)

    @settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def test_changed_states_carry_into_later_logs_only(self, data: st.DataObject) -> None:
        """A change to a log's state shows in that log and logs added to it later, no others."""
        check_all(run_program(data, mutate=True), against_full_ops=False)

    @settings(max_examples=200, deadline=None)
    @given(JSON)
    def test_deep_copy_equals_copy_deepcopy(self, value: Any) -> None:
        """deep_copy gives an equal value that shares no container with the original."""
        copied = deep_copy(value)
        assert canon(copied) == canon(copy.deepcopy(value))
        assert not container_ids(copied) & container_ids(value)


class Key:
    """A hashable object, used as a dict key and as a value."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key) and self.name == other.name

    def __hash__(self) -> int:
        return hash(self.name)


class TestDeepCopy:
    def test_shared_dicts_and_lists_stay_shared(self) -> None:
        """A dict or list that appears twice in a value is one object in the copy."""
        inner: dict[str, Any] = {"x": []}
        value = {"a": inner, "b": [inner, inner["x"]]}
        copied = deep_copy(value)
        assert copied == value
        assert copied["a"] is copied["b"][0]
        assert copied["b"][1] is copied["a"]["x"]
        assert copied["a"] is not inner

    def test_cycles_are_copied_as_cycles(self) -> None:
        """A value that contains itself is copied, as copy.deepcopy copies it."""
        loop: list[Any] = [1]
        loop.append(loop)
        mapping: dict[str, Any] = {}
        mapping["self"] = mapping
        copied_loop, copied_mapping = deep_copy(loop), deep_copy(mapping)
        assert copied_loop[1] is copied_loop and copied_loop is not loop
        assert copied_mapping["self"] is copied_mapping and copied_mapping is not mapping

    def test_keys_and_objects_share_one_memo(self) -> None:
        """Keys that are not strings are deep-copied with the same memo as the values."""
        key = Key("k")
        copied = deep_copy({key: [key], "k": key})
        (new_key,) = [k for k in copied if isinstance(k, Key)]
        assert new_key is not key
        assert copied[new_key][0] is new_key
        assert copied["k"] is new_key


# --- value semantics ----------------------------------------------------------------------

ROOT = replace_op("", {"id": "r", "logs": {}, "streamed_output": []})
ENTRY = add_op("/logs/model", {"streamed_output_str": [], "streamed_output": []})


def token(text: str) -> RunLogPatch:
    """Return a token patch as the emitter makes it."""
    return RunLogPatch(
        add_op("/logs/model/streamed_output_str/-", text),
        add_op("/logs/model/streamed_output/-", text),
    )


def tokens_of(log: RunLog) -> list[Any]:
    """Return the streamed tokens of the model entry."""
    return log.state["logs"]["model"]["streamed_output_str"]  # type: ignore[no-any-return]


def start_log() -> RunLog:
    """Return the log after the root and the model entry."""
    return RunLogPatch(ROOT) + RunLogPatch(ENTRY)


class TestSnapshots:
    def test_old_log_not_read_before_keeps_its_state_and_ops(self) -> None:
        """A log read only after more patches were added still shows its own state and ops."""
        logs = [start_log()]
        for index in range(50):
            logs.append(logs[-1] + token(str(index)))
        assert tokens_of(logs[10]) == [str(i) for i in range(10)]
        assert len(logs[10].ops) == 2 + 2 * 10
        assert tokens_of(logs[-1]) == [str(i) for i in range(50)]
        assert tokens_of(logs[0]) == []

    def test_old_log_read_before_keeps_the_same_state_object(self) -> None:
        """A state read before more patches were added is the same dict and is unchanged."""
        log = start_log() + token("a")
        state = log.state
        newer = log + token("b")
        assert log.state is state
        assert tokens_of(log) == ["a"]
        assert tokens_of(newer) == ["a", "b"]

    def test_branches_from_one_log_are_independent(self) -> None:
        """Adding two patches to one log gives two logs that do not see each other."""
        base = start_log() + token("a")
        left = base + token("l")
        right = base + token("r")
        left2 = left + token("l2")
        right2 = right + token("r2")
        assert tokens_of(left2) == ["a", "l", "l2"]
        assert tokens_of(right2) == ["a", "r", "r2"]
        assert tokens_of(base) == ["a"]
        assert right2.ops[-2:] == token("r2").ops
        assert len(left2.ops) == len(right2.ops) == 2 + 2 * 3

    def test_branch_from_an_old_log(self) -> None:
        """A log several patches behind the newest can still be extended."""
        logs = [start_log()]
        for index in range(5):
            logs.append(logs[-1] + token(str(index)))
        branch = logs[2] + token("x")
        assert tokens_of(branch) == ["0", "1", "x"]
        assert tokens_of(logs[-1] + token("5")) == ["0", "1", "2", "3", "4", "5"]

    def test_empty_patch_gives_an_equal_independent_log(self) -> None:
        """Adding an empty patch gives an equal log whose state is a separate dict."""
        log = start_log() + token("a")
        same = log + RunLogPatch()
        assert same == log
        same.state["logs"]["model"]["streamed_output_str"].append("z")
        assert tokens_of(log) == ["a"]
        assert tokens_of(log + token("b")) == ["a", "b"]

    def test_ops_is_a_list_of_all_ops_that_stays_put(self) -> None:
        """ops is a list equal to all ops so far, the same list each time it is read."""
        log = start_log() + token("a")
        ops = log.ops
        assert type(ops) is list
        assert log.ops is ops
        newer = log + token("b")
        assert log.ops == [ROOT, ENTRY, *token("a").ops]
        assert newer.ops == [ROOT, ENTRY, *token("a").ops, *token("b").ops]

    def test_changing_ops_of_one_log_changes_no_other(self) -> None:
        """Appending to one log's ops list leaves other logs' ops and states alone."""
        log = start_log()
        newer = log + token("a")
        log.ops.append(add_op("/x", 1))
        assert newer.ops == [ROOT, ENTRY, *token("a").ops]
        assert (log + token("b")).ops == [ROOT, ENTRY, add_op("/x", 1), *token("b").ops]

    def test_ops_changed_in_place_are_what_the_next_log_builds_on(self) -> None:
        """Replacing an op in a log's ops list shows in the ops of logs added to it."""
        log = start_log()
        newer = log + token("a")
        log.ops[1] = add_op("/logs/other", {})
        assert (log + token("b")).ops == [ROOT, add_op("/logs/other", {}), *token("b").ops]
        assert newer.ops == [ROOT, ENTRY, *token("a").ops]

    def test_branch_from_a_read_state_is_not_changed_by_changing_that_state(self) -> None:
        """Logs added to a read state rebuild their own states, whatever it becomes later."""
        log = start_log() + token("a")
        log.state  # noqa: B018  (hands the live document to this log)
        first = log + token("b")
        second = first + token("c")
        tokens_of(log).append("changed")
        assert tokens_of(first) == ["a", "b"]
        assert tokens_of(second) == ["a", "b", "c"]

    def test_old_logs_of_a_branch_each_rebuild_from_the_same_start(self) -> None:
        """Rebuilding one old log leaves the start others rebuild from untouched."""
        log = start_log() + token("a")
        log.state  # noqa: B018  (so the next logs start a history of their own)
        logs = [log + token("b")]
        for text in "cde":
            logs.append(logs[-1] + token(text))
        assert tokens_of(logs[0]) == ["a", "b"]
        assert tokens_of(logs[1]) == ["a", "b", "c"]
        assert tokens_of(logs[2]) == ["a", "b", "c", "d"]

    def test_assigned_state_and_ops_are_used(self) -> None:
        """state and ops can be assigned, as attributes; adding builds on what was assigned."""
        log = start_log()
        log.state = {"n": []}  # type: ignore[typeddict-item]
        log.ops = [replace_op("", {"n": []})]
        newer = log + RunLogPatch(add_op("/n/-", 1))
        assert newer.state == {"n": [1]}  # type: ignore[comparison-overlap]
        assert newer.ops == [replace_op("", {"n": []}), add_op("/n/-", 1)]

    def test_constructor_keeps_the_given_state_object(self) -> None:
        """RunLog(*ops, state=s) holds s itself, and adding to it leaves s unchanged."""
        state: Any = {"streamed_output": []}
        log = RunLog(replace_op("", {"streamed_output": []}), state=state)
        assert log.state is state
        newer = log + RunLogPatch(add_op("/streamed_output/-", 1))
        assert state == {"streamed_output": []}
        assert newer.state == {"streamed_output": [1]}  # type: ignore[comparison-overlap]


class TestMutationIsolation:
    def test_changing_the_newest_state_leaves_older_logs_alone(self) -> None:
        """Changing the newest log's state changes no older log, read or not."""
        first = start_log() + token("a")
        read = first.state
        second = first + token("b")
        tokens_of(second).append("MUTATED")
        assert tokens_of(first) == ["a"]
        assert first.state is read
        assert tokens_of(start_log()) == []

    def test_changing_an_old_state_reaches_only_later_additions(self) -> None:
        """A change to a log's state shows in logs added to it afterwards, as in LangChain."""
        log = start_log() + token("a")
        before = log + token("b")
        tokens_of(log).append("changed")
        after = log + token("c")
        assert tokens_of(before) == ["a", "b"]
        assert tokens_of(after) == ["a", "changed", "c"]

    def test_state_shares_nothing_with_the_patch(self) -> None:
        """Values in the state are copies: changing either side leaves the other alone."""
        value = {"items": [1, {"deep": []}]}
        patch = RunLogPatch(add_op("/logs/x", value))
        log = start_log() + patch
        log.state["logs"]["x"]["items"][1]["deep"].append(1)  # type: ignore[index]
        assert value == {"items": [1, {"deep": []}]}
        value["items"].append(2)
        assert log.state["logs"]["x"] == {"items": [1, {"deep": [1]}]}  # type: ignore[comparison-overlap]

    def test_later_ops_do_not_write_into_earlier_op_values(self) -> None:
        """An op that writes into a value an earlier op added leaves the earlier op unchanged."""
        patch = RunLogPatch(add_op("/logs/b", {"items": []}), add_op("/logs/b/items/-", 1))
        log = start_log()
        for _ in range(3):
            log = log + patch
        assert log.state["logs"]["b"] == {"items": [1]}  # type: ignore[comparison-overlap]
        assert patch.ops[0] == add_op("/logs/b", {"items": []})

    def test_values_shared_inside_one_value_stay_shared_as_deepcopy_keeps_them(self) -> None:
        """Like copy.deepcopy, a list appearing twice in one value is one list in the state."""
        shared: list[Any] = []
        log = start_log() + RunLogPatch(add_op("/logs/x", {"a": shared, "b": shared}))
        entry: Any = log.state["logs"]["x"]
        assert entry["a"] is entry["b"]
        assert entry["a"] is not shared
        expected = jsonpatch.apply_patch(None, copy.deepcopy(log.ops))
        assert expected["logs"]["x"]["a"] is expected["logs"]["x"]["b"]

    def test_other_objects_are_deep_copied_as_before(self) -> None:
        """Objects that are not JSON containers are deep-copied into the state, equal."""

        class Chunk:
            def __init__(self, content: list[str]) -> None:
                self.content = content

            def __eq__(self, other: object) -> bool:
                return isinstance(other, Chunk) and self.content == other.content

            __hash__ = None  # type: ignore[assignment]

        chunk = Chunk(["t"])
        log = start_log() + RunLogPatch(add_op("/logs/model/streamed_output/-", chunk))
        stored: Any = log.state["logs"]["model"]["streamed_output"][0]
        assert stored == chunk
        assert stored is not chunk
        assert stored.content is not chunk.content


class TestFailingPatches:
    @pytest.mark.parametrize(
        "ops",
        [
            [add_op("/missing/x", 1)],
            [add_op("/logs/model/streamed_output_str/-", "t"), add_op("/missing/x", 1)],
            [{"op": "remove", "path": "/logs/model"}, add_op("/nope/x", 1)],
            [replace_op("", {"other": 1}), add_op("/nope/x", 1)],
            [add_op("/logs/model/streamed_output_str/-", "t"), {"op": "bogus", "path": ""}],
            [add_op("/logs/a", 1), {"op": "test", "path": "/logs/a", "value": 2}],
            [replace_op("/logs/absent", 1)],
            [add_op("/logs/model/streamed_output/5", 1)],
            [add_op("/logs/model/streamed_output/2", 1)],
            [add_op("/logs/model/streamed_output/x", 1)],
            [add_op("/logs/~2", 1)],
            [{"op": "move", "from": "/logs", "path": "/logs/x"}],
            [{"op": "remove", "path": "/logs/model/streamed_output_str/0"}, add_op("/n/x", 1)],
            [replace_op("/logs/model/streamed_output_str/0", "z"), add_op("/n/x", 1)],
            [add_op("/logs/model/streamed_output_str/0", "z"), add_op("/n/x", 1)],
            [add_op("/logs/model", {"new": 1}), add_op("/logs/q", 1), add_op("/n/x", 1)],
        ],
    )
    def test_failure_raises_jsonpatchs_error_and_keeps_the_log(self, ops: list[Any]) -> None:
        """A failing patch raises PatchApplyError caused by jsonpatch's error; the log extends."""
        log = start_log() + token("a")
        before = copy.deepcopy(log.state)
        with pytest.raises(Exception) as expected:
            jsonpatch.apply_patch(copy.deepcopy(before), copy.deepcopy(ops))
        fresh = start_log() + token("a")  # not read yet: fails on the live document
        for target in (log, fresh):
            with pytest.raises(PatchApplyError) as info:
                target + RunLogPatch(*ops)
            assert type(info.value.__cause__) is type(expected.value)
            assert str(info.value.__cause__) == str(expected.value)
        assert canon(log.state) == canon(before)
        assert canon(fresh.state) == canon(before)
        assert list(fresh.state["logs"]) == ["model"]
        assert tokens_of(fresh + token("b")) == ["a", "b"]

    def test_failure_after_a_remove_restores_member_order(self) -> None:
        """Undoing a removed member puts it back in its place, not at the end."""
        log = RunLogPatch(replace_op("", {"a": 1, "b": 2, "c": 3})) + RunLogPatch()
        with pytest.raises(jsonpatch.JsonPatchException):
            log + RunLogPatch({"op": "remove", "path": "/a"}, replace_op("/zz", 1))
        assert list(log.state) == ["a", "b", "c"]

    def test_first_patches_that_fail_raise_jsonpatchs_error(self) -> None:
        """RunLogPatch + RunLogPatch raises PatchApplyError caused by jsonpatch's error."""
        ops = [ROOT, add_op("/missing/x", 1)]
        with pytest.raises(Exception) as expected:
            jsonpatch.apply_patch(None, copy.deepcopy(ops))
        with pytest.raises(PatchApplyError) as info:
            RunLogPatch(ops[0]) + RunLogPatch(ops[1])
        assert type(info.value.__cause__) is type(expected.value)
        assert str(info.value.__cause__) == str(expected.value)


class TestCopiesAndThreads:
    @pytest.mark.parametrize(
        "clone",
        [copy.copy, copy.deepcopy, lambda log: pickle.loads(pickle.dumps(log))],
        ids=["copy", "deepcopy", "pickle"],
    )
    def test_copies_are_equal_logs(self, clone: Callable[[RunLog], RunLog]) -> None:
        """copy, deepcopy and pickle give equal logs that extend independently."""
        logs = [start_log()]
        for index in range(3):
            logs.append(logs[-1] + token(str(index)))
        for log in (logs[1], logs[-1]):
            twin = clone(log)
            assert twin == log
            assert tokens_of(twin + token("t")) == [*tokens_of(log), "t"]
            assert tokens_of(log + token("u")) == [*tokens_of(log), "u"]

    def test_threads_adding_to_one_log_get_independent_results(self) -> None:
        """Patches added to one log from many threads at once each give the right log."""
        base = start_log() + token("a")
        results: dict[int, RunLog] = {}
        barrier = threading.Barrier(8)

        def worker(index: int) -> None:
            barrier.wait()
            log = base
            for step in range(20):
                log = log + token(f"{index}.{step}")
            results[index] = log

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for index, log in results.items():
            assert tokens_of(log) == ["a", *(f"{index}.{step}" for step in range(20))]
        assert tokens_of(base) == ["a"]


# --- linear growth, measured by counts, not time ------------------------------------------


def count_calls(action: Callable[[], object]) -> int:
    """Return how many Python and C function calls ``action`` makes."""
    calls = 0

    def profiler(frame: object, event: str, arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profiler)
    try:
        action()
    finally:
        sys.setprofile(None)
    return calls


class TestLinearGrowth:
    def test_work_per_patch_does_not_grow_with_the_log(self) -> None:
        """Adding 50 patches takes the same number of calls after 50 tokens as after 5,000."""

        def calls_after(length: int) -> int:
            log = start_log()
            for index in range(length):
                log = log + token(str(index))
            patches = [token("x") for _ in range(50)]

            def add_all() -> None:
                current = log
                for patch in patches:
                    current = current + patch

            return count_calls(add_all)

        assert calls_after(5000) == calls_after(50)

    def test_adding_copies_no_state_and_no_op_list(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Adding token patches calls copy.deepcopy never and keeps one reference per op."""
        copies = 0
        real = copy.deepcopy

        def counting(value: Any, memo: Any = None) -> Any:
            nonlocal copies
            copies += 1
            return real(value, memo)

        log = start_log()
        first_op = log.ops[0]
        log = log + token("a")
        references = sys.getrefcount(first_op)
        monkeypatch.setattr(copy, "deepcopy", counting)
        logs = [log]
        for index in range(2000):
            logs.append(logs[-1] + token(str(index)))
        assert copies == 0
        assert sys.getrefcount(first_op) <= references + 1
        assert len(tokens_of(logs[-1])) == 2001

    def test_path_cache_stays_bounded(self) -> None:
        """Parsed paths are cached up to a limit, however many distinct paths are seen."""
        log = RunLogPatch(replace_op("", {})) + RunLogPatch()
        for index in range(_apply._PATH_CACHE_LIMIT + 10):
            log = log + RunLogPatch(add_op(f"/k{index}", index))
        assert len(_apply._PATHS) <= _apply._PATH_CACHE_LIMIT
        assert len(log.state) == _apply._PATH_CACHE_LIMIT + 10
