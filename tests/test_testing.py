"""Tests for logstream.testing and the pytest plugin that wraps it in fixtures."""

from __future__ import annotations

import copy
import importlib.metadata
import re
import threading
import uuid
from collections import namedtuple
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_imports import modules_after

import logstream._demo
import logstream.pytest_plugin
from logstream import LogStreamCallbackHandler, RunLog, RunLogPatch, Tracer, stream_log, trace
from logstream.testing import (
    FakeClock,
    Normalizer,
    PatchSource,
    Recorder,
    SequentialIds,
    assert_patches,
    assert_run,
    assert_state,
    normalize,
)

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
UTC = timezone.utc


def run_agent(handler: LogStreamCallbackHandler, ids: SequentialIds) -> None:
    """Report an agent with a tool and two model calls (the second streams two tokens)."""
    root, tool, llm, llm2 = ids.take(4)
    handler.on_chain_start({}, {"q": "hi"}, run_id=root, name="agent")
    handler.on_tool_start({}, "x", run_id=tool, parent_run_id=root, name="search")
    handler.on_tool_end("found", run_id=tool)
    handler.on_llm_start({}, ["hi"], run_id=llm, parent_run_id=root, name="model")
    handler.on_llm_end({"generations": [[{"text": "One"}]]}, run_id=llm)
    handler.on_llm_start({}, ["hi"], run_id=llm2, parent_run_id=root, name="model")
    handler.on_llm_new_token("Hel", run_id=llm2)
    handler.on_llm_new_token("lo", run_id=llm2)
    handler.on_llm_end({"generations": [[{"text": "Hello"}]]}, run_id=llm2)
    handler.on_chain_end({"a": "Hello"}, run_id=root)


@pytest.fixture
def recorder() -> Recorder:
    """A recorder of the agent above, reported to a handler on a fake clock."""
    handler = LogStreamCallbackHandler(clock=FakeClock())
    recorded = Recorder(handler)
    run_agent(handler, SequentialIds())
    return recorded


def failure(call: Any, *args: Any, **kwargs: Any) -> str:
    """Return the message of the AssertionError ``call`` raises."""
    with pytest.raises(AssertionError) as raised:
        call(*args, **kwargs)
    return str(raised.value)


class TestFakeClock:
    def test_starts_at_a_fixed_instant_and_moves_a_millisecond_per_read(self) -> None:
        """The first read is 2026-01-01 UTC, each later one exactly 1 ms after the last."""
        clock = FakeClock()
        first, second = clock(), clock()
        assert first == datetime(2026, 1, 1, tzinfo=UTC)
        assert second - first == timedelta(milliseconds=1)

    def test_start_and_step_can_be_chosen(self) -> None:
        """A given start and step are the first read and the distance between reads."""
        start = datetime(2030, 5, 6, 7, 8, 9, tzinfo=UTC)
        clock = FakeClock(start, step=timedelta(seconds=2))
        assert [clock(), clock()] == [start, start + timedelta(seconds=2)]

    def test_reads_from_many_threads_are_all_different(self) -> None:
        """Concurrent reads never return the same time twice and skip none."""
        clock = FakeClock()
        seen: list[datetime] = []

        def read() -> None:
            seen.extend(clock() for _ in range(500))

        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        start = datetime(2026, 1, 1, tzinfo=UTC)
        assert sorted(seen) == [start + timedelta(milliseconds=n) for n in range(2000)]

    def test_handler_times_come_from_it(self) -> None:
        """A handler given the clock stamps its entries with the clock's times."""
        handler = LogStreamCallbackHandler(clock=FakeClock())
        recorded = Recorder(handler)
        run_agent(handler, SequentialIds())
        entry = recorded.entry("search")
        assert (entry["start_time"], entry["end_time"]) == (
            "2026-01-01T00:00:00.001+00:00",
            "2026-01-01T00:00:00.002+00:00",
        )

    def test_demo_re_exports_it(self) -> None:
        """``logstream._demo.FakeClock`` is the same class, for code that imported it there."""
        assert logstream._demo.FakeClock is FakeClock


class TestSequentialIds:
    def test_ids_count_up_from_one(self) -> None:
        """Calls return UUID(int=1), UUID(int=2), ... and count how many were issued."""
        ids = SequentialIds()
        assert [ids(), ids()] == [uuid.UUID(int=1), uuid.UUID(int=2)]
        assert ids.issued == 2

    def test_take_returns_the_next_ids(self) -> None:
        """``take(n)`` returns the next ``n`` ids, continuing from ``start``."""
        ids = SequentialIds(start=10)
        assert ids.take(2) == (uuid.UUID(int=10), uuid.UUID(int=11))
        assert ids() == uuid.UUID(int=12)

    def test_ids_from_many_threads_are_unique(self) -> None:
        """Concurrent calls never return the same id twice and skip none."""
        ids = SequentialIds()
        seen: list[uuid.UUID] = []

        def mint() -> None:
            seen.extend(ids() for _ in range(500))

        threads = [threading.Thread(target=mint) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(seen) == [uuid.UUID(int=n) for n in range(1, 2001)]

    def test_tracer_run_ids_come_from_it(self) -> None:
        """A tracer given it as ``id_factory`` names its runs in order."""
        tracer = Tracer(id_factory=SequentialIds())
        with trace("agent", tracer=tracer), trace("step", run_type="tool"):
            pass
        recorded = Recorder().extend(tracer)
        assert recorded.state["id"] == str(uuid.UUID(int=1))
        assert recorded.entry("step")["id"] == str(uuid.UUID(int=2))


class TestRecorder:
    def test_reads_drain_the_handler_as_it_goes(self) -> None:
        """Each read shows what the handler emitted so far, with no consumer thread."""
        handler = LogStreamCallbackHandler(clock=FakeClock())
        recorded = Recorder(handler)
        ids = SequentialIds()
        root, llm = ids.take(2)
        handler.on_chain_start({}, {}, run_id=root, name="agent")
        assert recorded.keys == []
        handler.on_llm_start({}, ["hi"], run_id=llm, parent_run_id=root, name="model")
        handler.on_llm_new_token("Hel", run_id=llm)
        assert recorded.entry("model")["streamed_output_str"] == ["Hel"]
        assert len(recorded) == 3

    def test_records_a_tracer(self) -> None:
        """A tracer is a source as the handler is: its runs are in the state."""
        tracer = Tracer(clock=FakeClock(), id_factory=SequentialIds())
        recorded = Recorder(tracer)
        assert isinstance(tracer, PatchSource)
        with trace("agent", tracer=tracer), trace("lookup", run_type="tool") as run:
            run.outputs = "found"
        assert recorded.keys == ["lookup"]
        assert recorded.entry("lookup")["final_output"] == "found"

    def test_extend_takes_stream_log_patches_or_logs_alike(self) -> None:
        """stream_log's patches and its ``diff=False`` logs record the same ops."""

        def shout(text: str) -> str:
            return text.upper()

        def options() -> dict[str, Any]:
            return {"clock": FakeClock(), "id_factory": SequentialIds()}

        patches = Recorder().extend(stream_log(shout, "hi", **options()))
        logs = Recorder().extend(stream_log(shout, "hi", diff=False, **options()))
        assert patches.ops == logs.ops
        assert patches.state == logs.state
        assert patches.state["final_output"] == "HI"

    def test_extend_reads_a_source_until_its_stream_closes(self) -> None:
        """Extending by a handler collects every patch up to the root's end."""
        handler = LogStreamCallbackHandler(clock=FakeClock())
        worker = threading.Thread(target=run_agent, args=(handler, SequentialIds()))
        worker.start()
        recorded = Recorder().extend(handler)
        worker.join()
        assert recorded.keys == ["search", "model", "model:2"]

    def test_a_log_that_does_not_extend_the_recorded_ops_is_refused(self) -> None:
        """A RunLog whose ops do not start with the recorded ones raises and records nothing."""
        recorded = Recorder()
        recorded.record([{"op": "replace", "path": "", "value": {"a": 1}}])
        other = RunLogPatch({"op": "replace", "path": "", "value": {}}) + RunLogPatch()
        with pytest.raises(ValueError, match="do not start with the 1 ops recorded"):
            recorded.record(other)
        assert recorded.state == {"a": 1}

    def test_state_before_any_patch_fails_clearly(self) -> None:
        """Asking for the state of an empty recording says that nothing was recorded."""
        assert failure(lambda: Recorder().state) == "no state: no patches were recorded"

    def test_entry_of_a_missing_run_lists_the_runs(self, recorder: Recorder) -> None:
        """A missing key fails with the keys there are."""
        assert failure(recorder.entry, "model:3") == (
            "no run 'model:3' in the log; runs: 'search', 'model', 'model:2'"
        )

    def test_entries_filter_by_name(self, recorder: Recorder) -> None:
        """``entries(name)`` gives the entries of that name in order; no name gives all."""
        assert [entry["final_output"] for entry in recorder.entries("model")] == [
            {"generations": [[{"text": "One"}]]},
            {"generations": [[{"text": "Hello"}]]},
        ]
        assert len(recorder.entries()) == 3

    def test_outputs_are_copies(self, recorder: Recorder) -> None:
        """Changing the lists it returns does not change what it recorded."""
        recorder.ops.clear()
        recorder.patches.clear()
        assert len(recorder.ops) == 17
        assert len(recorder.patches) == 9

    def test_log_rebuilds_the_state_from_the_ops(self, recorder: Recorder) -> None:
        """The RunLog holds every op, and replaying them gives the recorded state."""
        replayed = RunLogPatch() + RunLogPatch(*recorder.ops)
        assert recorder.log.ops == recorder.ops
        assert replayed.state == recorder.state == recorder.log.state

    def test_clear_forgets_everything(self, recorder: Recorder) -> None:
        """After ``clear()`` nothing is recorded and the keys are empty."""
        recorder.clear()
        assert (len(recorder), recorder.ops, recorder.keys) == (0, [], [])


# -- normalize -------------------------------------------------------------------------

ID_POOL = [uuid.UUID(int=n * 7919 + 1) for n in range(5)]
TIME_POOL = [datetime(2026, 1, 1, tzinfo=UTC) + timedelta(milliseconds=n * 37) for n in range(5)]


def spell_id(value: uuid.UUID, form: int) -> Any:
    """One of the ways an id shows up: the object, its text, its upper-case text."""
    return [value, str(value), str(value).upper()][form]


def spell_time(value: datetime, form: int) -> Any:
    """One of the ways a time shows up: the object, ISO text with +00:00, Z or a space."""
    text = value.isoformat(timespec="milliseconds")
    return [value, text, text.replace("+00:00", "Z"), text.replace("T", " ")][form]


ids = st.builds(spell_id, st.sampled_from(ID_POOL), st.integers(0, 2))
times = st.builds(spell_time, st.sampled_from(TIME_POOL), st.integers(0, 3))
plain_text = st.text(alphabet="ab xyz:-", max_size=6)
embedded = st.builds(lambda a, i, b: f"{a}{i}{b}", plain_text, ids.map(str), plain_text)
leaves = st.one_of(st.none(), st.booleans(), st.integers(), plain_text, ids, times, embedded)
values = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(alphabet="abcdef", max_size=4), children, max_size=4),
        st.tuples(children, children),
    ),
    max_leaves=20,
)


def shape(value: Any) -> Any:
    """The value with every text, id and time replaced by ``str``: what normalizing keeps."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(shape(item) for item in value)
    if isinstance(value, (str, uuid.UUID, datetime)):
        return str
    return value


def first_appearances(items: list[str], kind: str) -> list[str]:
    """The placeholders of ``kind`` in ``items``, each once, in order of first appearance."""
    found: list[str] = []
    for item in items:
        for placeholder in re.findall(rf"<{kind}:\d+>", item):
            if placeholder not in found:
                found.append(placeholder)
    return found


class TestNormalize:
    def test_replaces_ids_and_times_in_a_state(self, recorder: Recorder) -> None:
        """Every id and time of a recorded state becomes a placeholder in reading order."""
        state = normalize(recorder.state)
        assert state["id"] == "<id:1>"
        assert [entry["id"] for entry in state["logs"].values()] == ["<id:2>", "<id:3>", "<id:4>"]
        model = state["logs"]["model:2"]
        assert (model["start_time"], model["end_time"]) == ("<time:5>", "<time:6>")

    def test_one_instant_in_any_spelling_is_one_placeholder(self) -> None:
        """A datetime and its ISO text with ``+00:00``, ``Z`` or a space normalize alike."""
        instant = datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)
        spellings = [spell_time(instant, form) for form in range(4)]
        assert normalize(spellings) == ["<time:1>"] * 4

    def test_ids_inside_text_are_replaced(self) -> None:
        """An id or time inside a longer string is replaced in place."""
        text = f"run {ID_POOL[0]} failed at 2026-01-01T00:00:00Z, parent {ID_POOL[1]}"
        assert normalize(text) == "run <id:1> failed at <time:1>, parent <id:2>"

    def test_patches_and_logs_keep_their_types(self, recorder: Recorder) -> None:
        """A RunLogPatch stays a patch and a RunLog a log, ops and state numbered alike."""
        patch = normalize(recorder.patches[0])
        assert isinstance(patch, RunLogPatch) and patch.ops[0]["value"]["id"] == "<id:1>"
        log = normalize(recorder.log)
        assert isinstance(log, RunLog)
        assert log.state == normalize(recorder.state)
        assert log.ops == normalize(recorder.ops)

    def test_namedtuples_and_keys_are_normalized(self) -> None:
        """Named tuples keep their class, and dict keys are normalized like values."""
        Pair = namedtuple("Pair", "left right")
        got = normalize({ID_POOL[0]: Pair(ID_POOL[0], 3)})
        assert got == {"<id:1>": Pair("<id:1>", 3)}
        assert type(got["<id:1>"]) is Pair

    def test_a_normalizer_keeps_its_numbering_across_calls(self) -> None:
        """One Normalizer gives an id the same placeholder in every value it is given."""
        normalizer = Normalizer()
        assert normalizer([ID_POOL[0], ID_POOL[1]]) == ["<id:1>", "<id:2>"]
        assert normalizer({"parent": ID_POOL[1]}) == {"parent": "<id:2>"}
        assert normalize(ID_POOL[1]) == "<id:1>"  # a fresh numbering per call

    @given(values)
    def test_is_idempotent(self, value: Any) -> None:
        """Normalizing twice gives what normalizing once gives."""
        once = normalize(value)
        assert normalize(once) == once

    @given(values)
    def test_keeps_the_structure_and_changes_no_input(self, value: Any) -> None:
        """The result has the input's shape, other leaves as they were; the input is intact."""
        before = copy.deepcopy(value)
        assert shape(normalize(value)) == shape(value)
        assert value == before

    @given(st.lists(ids, min_size=1, max_size=12))
    def test_same_id_same_placeholder_and_distinct_ids_distinct(self, items: list[Any]) -> None:
        """Two items get one placeholder exactly when they spell the same id."""
        got = normalize(items)
        canon = [str(item).lower() for item in items]
        for i in range(len(items)):
            for j in range(len(items)):
                assert (got[i] == got[j]) == (canon[i] == canon[j])
        distinct = first_appearances(got, "id")
        assert distinct == [f"<id:{n}>" for n in range(1, len(distinct) + 1)]

    @given(st.lists(times, min_size=1, max_size=12))
    def test_same_instant_same_placeholder_and_distinct_instants_distinct(
        self, items: list[Any]
    ) -> None:
        """Two items get one placeholder exactly when they are the same instant."""
        got = normalize(items)
        instants = [
            item
            if isinstance(item, datetime)
            else datetime.fromisoformat(item.replace("Z", "+00:00"))
            for item in items
        ]
        for i in range(len(items)):
            for j in range(len(items)):
                assert (got[i] == got[j]) == (instants[i] == instants[j])
        distinct = first_appearances(got, "time")
        assert distinct == [f"<time:{n}>" for n in range(1, len(distinct) + 1)]


# -- assertions ------------------------------------------------------------------------


class TestAssertRun:
    def test_passes_and_returns_the_entry(self, recorder: Recorder) -> None:
        """Matching fields pass, ``ANY`` matches anything, and the entry is returned."""
        entry = assert_run(recorder, "model:2", streamed_output_str=["Hel", "lo"], end_time=ANY)
        assert entry["name"] == "model"

    def test_a_different_field_names_the_run_the_field_and_both_values(
        self, recorder: Recorder
    ) -> None:
        """The message says which run, which field, what was expected and what came."""
        assert failure(assert_run, recorder, "search", final_output="lost") == (
            "run 'search': field 'final_output': expected 'lost', got 'found'"
        )

    def test_every_differing_field_is_listed(self, recorder: Recorder) -> None:
        """Two wrong fields give two lines, in the order they were given."""
        message = failure(assert_run, recorder.state, "model:2", end_time=None, tags=["x"])
        assert message == (
            "run 'model:2': field 'end_time': expected None, got '2026-01-01T00:00:00.006+00:00'\n"
            "run 'model:2': field 'tags': expected ['x'], got []"
        )

    def test_a_missing_run_lists_the_runs_there_are(self, recorder: Recorder) -> None:
        """A key not in the log fails with the keys that are."""
        assert failure(assert_run, recorder.log, "tool") == (
            "no run 'tool' in the log; runs: 'search', 'model', 'model:2'"
        )

    def test_a_log_without_runs_says_so(self) -> None:
        """A state whose logs are empty says there are no runs."""
        state = {"id": "x", "logs": {}}
        assert failure(assert_run, state, "model") == (
            "no run 'model' in the log; the log has no runs"
        )

    def test_an_unknown_field_lists_the_fields(self, recorder: Recorder) -> None:
        """A misspelt field fails with the fields an entry has."""
        assert failure(assert_run, recorder, "search", output="found") == (
            "run 'search': no field 'output'; fields: end_time, final_output, id, inputs, "
            "metadata, name, start_time, streamed_output, streamed_output_str, tags, type"
        )

    def test_long_values_are_cut_short(self, recorder: Recorder) -> None:
        """A value longer than 80 characters is shown cut, ending in ``...``."""
        message = failure(assert_run, recorder, "search", final_output="x" * 200)
        assert f"expected '{'x' * 76}..., got 'found'" in message


class TestAssertState:
    def test_equal_states_pass(self, recorder: Recorder) -> None:
        """A state equal to the expected one (ANY anywhere) passes."""
        expected = copy.deepcopy(recorder.state)
        expected["logs"]["model"]["id"] = ANY
        assert_state(recorder, expected)

    def test_differences_are_named_by_run_and_field(self, recorder: Recorder) -> None:
        """Changed fields, nested ones, a missing and an extra run are each one line."""
        expected = normalize(recorder.state)
        expected["logs"]["search"]["final_output"] = "lost"
        expected["logs"]["model"]["final_output"]["generations"][0][0]["text"] = "Two"
        expected["logs"]["lookup"] = expected["logs"].pop("model:2")
        expected["name"] = "bot"
        assert failure(assert_state, normalize(recorder.state), expected) == (
            "the state differs in 5 places:\n"
            "  run 'search': field 'final_output': expected 'lost', got 'found'\n"
            "  run 'model': field 'final_output/generations/0/0/text': "
            "expected 'Two', got 'One'\n"
            "  run 'lookup': missing, expected {'id': '<id:4>', 'name': 'model', 'type': 'llm', "
            "'tags': [], 'metadata': {}, ...\n"
            "  run 'model:2': unexpected, got {'id': '<id:4>', 'name': 'model', 'type': 'llm', "
            "'tags': [], 'metadata': {}, ...\n"
            "  root: field 'name': expected 'bot', got 'agent'"
        )

    def test_only_the_first_five_differences_are_shown(self) -> None:
        """Past five differences the message counts the rest."""
        message = failure(assert_state, {"logs": {}, **{f"k{n}": n for n in range(8)}}, {})
        assert message.splitlines()[0] == "the state differs in 9 places:"
        assert message.splitlines()[-1] == "  ... and 4 more"
        assert len(message.splitlines()) == 7

    def test_a_missing_root_field_is_named(self) -> None:
        """A field missing at the root is named, with the value expected there."""
        assert failure(assert_state, {"id": "x"}, {"id": "x", "logs": {}}) == (
            "the state differs in 1 place:\n  root: field 'logs': missing, expected {}"
        )

    def test_a_state_that_is_not_a_dict_is_shown_whole(self) -> None:
        """Against a state that is ``None`` (no patch yet) both values are shown whole."""
        assert failure(assert_state, RunLog(state=None), {"logs": {}}) == (
            "the state differs in 1 place:\n  expected {'logs': {}}, got None"
        )


class TestAssertPatches:
    def test_equal_patches_pass_grouped_or_flat(self, recorder: Recorder) -> None:
        """Patches equal the same patches, their op lists, or their flat ops."""
        assert_patches(recorder, recorder.patches)
        assert_patches(recorder.patches, [patch.ops for patch in recorder.patches])
        assert_patches(recorder, recorder.ops)

    def test_a_different_value_names_the_op_and_field(self, recorder: Recorder) -> None:
        """A changed value is shown with its op's index, name and path."""
        expected = copy.deepcopy(recorder.ops)
        expected[10]["value"] = "Bye"
        assert failure(assert_patches, recorder, expected) == (
            "the ops differ in 1 place:\n"
            "  ops[10] (add /logs/model:2/streamed_output_str/-): "
            "field 'value': expected 'Bye', got 'Hel'"
        )

    def test_an_op_with_another_path_is_shown_whole(self) -> None:
        """Ops that differ in name or path are shown as wholes, not field by field."""
        got = [{"op": "add", "path": "/a", "value": 1}]
        expected = [{"op": "replace", "path": "/b", "value": 1}]
        assert failure(assert_patches, got, expected) == (
            "the ops differ in 1 place:\n"
            "  ops[0] (add /a): expected {'op': 'replace', 'path': '/b', 'value': 1}, "
            "got {'op': 'add', 'path': '/a', 'value': 1}"
        )

    def test_missing_and_extra_ops_and_patches_are_listed(self) -> None:
        """A missing op, an unexpected op and a missing patch each get a line."""
        one = {"op": "add", "path": "/a", "value": 1}
        two = {"op": "add", "path": "/b", "value": 2}
        assert failure(assert_patches, [RunLogPatch(one)], [[one, two], [one]]) == (
            "the patches differ in 2 places:\n"
            "  patches[0].ops[1] (add /b): missing, expected "
            "{'op': 'add', 'path': '/b', 'value': 2}\n"
            "  patches[1]: missing, expected [{'op': 'add', 'path': '/a', 'value': 1}]"
        )
        assert failure(assert_patches, [one, two], [one]) == (
            "the ops differ in 1 place:\n"
            "  ops[1] (add /b): unexpected, got {'op': 'add', 'path': '/b', 'value': 2}"
        )

    def test_patch_boundaries_count_only_when_both_sides_have_them(self) -> None:
        """Grouping differs but the ops are equal: passes when one side is flat ops."""
        one = {"op": "add", "path": "/a", "value": 1}
        assert_patches([RunLogPatch(one, one)], [one, one])
        assert "patches[0]" in failure(assert_patches, [RunLogPatch(one, one)], [[one], [one]])


# -- imports, entry point and the plugin -----------------------------------------------


class TestImports:
    def test_logstream_does_not_import_testing_or_pytest(self) -> None:
        """``import logstream`` loads neither logstream.testing, the plugin nor pytest."""
        loaded = modules_after("import logstream")
        assert "logstream.testing" not in loaded
        assert "logstream.pytest_plugin" not in loaded
        assert "pytest" not in loaded

    def test_testing_does_not_import_pytest(self) -> None:
        """``import logstream.testing`` works without pytest."""
        loaded = modules_after("import logstream.testing")
        assert not [name for name in loaded if name.split(".")[0] in ("pytest", "_pytest")]


def pytest11_entry_points() -> dict[str, str]:
    """The ``pytest11`` entry points of the installed distributions, by name."""
    found = importlib.metadata.entry_points()
    if hasattr(found, "select"):
        group = found.select(group="pytest11")
    else:  # Python 3.9: a dict of groups
        group = found.get("pytest11", [])  # type: ignore[attr-defined]
    return {entry.name: entry.value for entry in group}


class TestPlugin:
    def test_entry_point_is_in_the_installed_metadata(self) -> None:
        """The installed distribution registers ``logstream.pytest_plugin`` as ``logstream``."""
        assert pytest11_entry_points().get("logstream") == "logstream.pytest_plugin"
        assert '[project.entry-points.pytest11]\nlogstream = "logstream.pytest_plugin"' in (
            (ROOT / "pyproject.toml").read_text(encoding="utf-8")
        )

    def test_this_session_loaded_it(self, pytestconfig: pytest.Config) -> None:
        """The plugin is registered in this very test session, under the name ``logstream``."""
        assert pytestconfig.pluginmanager.get_plugin("logstream") is logstream.pytest_plugin

    def test_fixtures_give_a_handler_and_its_recorder(self, pytester: pytest.Pytester) -> None:
        """In a fresh test file the handler and recorder fixtures work with no setup."""
        pytester.makepyfile(
            """
            from logstream.testing import assert_run

            def test_agent(logstream_handler, logstream_recorder, logstream_ids):
                root, llm = logstream_ids.take(2)
                logstream_handler.on_chain_start({}, {}, run_id=root, name="agent")
                logstream_handler.on_llm_start({}, ["q"], run_id=llm, parent_run_id=root)
                logstream_handler.on_llm_new_token("hi", run_id=llm)
                assert_run(logstream_recorder, "Unnamed", streamed_output_str=["hi"])
                entry = logstream_recorder.entry("Unnamed")
                assert entry["start_time"] == "2026-01-01T00:00:00.001+00:00"
                assert entry["id"] == "00000000-0000-0000-0000-000000000002"
            """
        )
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    def test_recorder_follows_the_tracer_when_the_test_uses_it(
        self, pytester: pytest.Pytester
    ) -> None:
        """A test that uses ``logstream_tracer`` gets a recorder of the tracer."""
        pytester.makepyfile(
            """
            from logstream import trace

            def test_native(logstream_tracer, logstream_recorder):
                with trace("agent", tracer=logstream_tracer):
                    with trace("step", run_type="tool"):
                        pass
                assert logstream_recorder.source is logstream_tracer
                assert logstream_recorder.keys == ["step"]
                assert logstream_recorder.state["id"].endswith("0001")
            """
        )
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    def test_recorder_with_both_sources_is_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """Asking for the recorder with both the handler and the tracer errors, saying why."""
        pytester.makepyfile(
            """
            def test_both(logstream_handler, logstream_tracer, logstream_recorder):
                pass
            """
        )
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*uses both logstream_handler and logstream_tracer*"])

    def test_stream_log_fixture_records_a_whole_run(self, pytester: pytest.Pytester) -> None:
        """``logstream_stream_log`` runs a callable to the end on the fake clock and ids."""
        pytester.makepyfile(
            """
            def test_stream(logstream_stream_log):
                recorder = logstream_stream_log(str.upper, "hi", name="shout")
                assert recorder.state["final_output"] == "HI"
                assert recorder.state["id"] == "00000000-0000-0000-0000-000000000001"
            """
        )
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    def test_failures_show_the_helper_message_at_the_callers_line(
        self, pytester: pytest.Pytester
    ) -> None:
        """A failing helper reports its message, and the traceback stops in the test."""
        pytester.makepyfile(
            """
            from logstream.testing import assert_run

            def test_fails(logstream_stream_log):
                recorder = logstream_stream_log(str.upper, "hi")
                assert_run(recorder, "model")
            """
        )
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["E*no run 'model' in the log; the log has no runs"])
        result.stdout.no_fnmatch_line("*def assert_run*")

    def test_it_can_be_turned_off(self, pytester: pytest.Pytester) -> None:
        """``-p no:logstream`` removes the fixtures."""
        pytester.makepyfile("def test_off(logstream_handler):\n    pass\n")
        result = pytester.runpytest("-p", "no:logstream", "-p", "no:cacheprovider")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*fixture 'logstream_handler' not found*"])

    def test_it_loads_in_a_fresh_process(self, pytester: pytest.Pytester) -> None:
        """A new pytest process (no conftest, no -p) finds the fixtures by entry point."""
        pytester.makepyfile("def test_on(logstream_clock):\n    assert logstream_clock()\n")
        pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


class TestReadme:
    def test_testing_section_block_passes_as_a_test_file(self, pytester: pytest.Pytester) -> None:
        """The README's "Testing your pipeline" block, saved as a test file, passes."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        block = re.search(r"## Testing your pipeline.*?```python\n(.*?)```", readme, re.S)
        assert block is not None
        pytester.makepyfile(test_readme=block.group(1))
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)

    def test_nesting_block_passes_as_a_test_file(self, pytester: pytest.Pytester) -> None:
        """The README's "Nesting, errors and options" block, saved as a test file, passes."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        section = readme.split("**Nesting, errors and options.**", 1)[1]
        block = re.search(r"```python\n(.*?)```", section, re.S)
        assert block is not None
        pytester.makepyfile(test_readme_nesting=block.group(1))
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)
