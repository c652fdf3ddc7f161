"""Tests for logstream._emitter: run-tree events in, LangChain-shaped JSON Patch ops out."""

from __future__ import annotations

import itertools
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, ClassVar, Optional

import jsonpatch  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstream._emitter import (
    PatchEmitter,
    SchemaFormat,
    check_schema_format,
    wire_inputs,
    wire_outputs,
)
from logstream._errors import SchemaFormatError
from logstream._filters import ALWAYS_INCLUDE, RunFilter
from logstream._model import Run, RunTree
from logstream._patches import JsonPatchOp, RunLog, RunLogPatch
from logstream._values import snapshot

T0 = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc)
STEP = timedelta(seconds=1, milliseconds=1)
LLM_TYPES = frozenset({"llm", "chat_model"})
RAW_TYPES = frozenset({"llm", "chat_model", "retriever"})


class FakeClock:
    """A clock that starts at ``T0`` and moves ``STEP`` forward on every call."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        current = self.now
        self.now += STEP
        return current


def sequential_ids() -> Callable[[], uuid.UUID]:
    """Return an id factory that yields UUID(int=1), UUID(int=2), ..."""
    counter = itertools.count(1)
    return lambda: uuid.UUID(int=next(counter))


def iso_ms(when: datetime) -> str:
    """Format a UTC datetime the way LangChain's entries show times (ISO-8601, milliseconds)."""
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}+00:00"


def make(
    schema_format: SchemaFormat = "streaming_events", run_filter: RunFilter = ALWAYS_INCLUDE
) -> tuple[RunTree, PatchEmitter]:
    """Return a deterministic tree and a fresh emitter."""
    tree = RunTree(clock=FakeClock(), new_id=sequential_ids())
    return tree, PatchEmitter(run_filter, schema_format)


def apply_all(patches: Sequence[list[JsonPatchOp]]) -> Any:
    """Apply each non-empty patch in turn from an empty document; fail if any does not apply."""
    state: Any = None
    for ops in patches:
        if ops:
            state = jsonpatch.apply_patch(state, ops)
    return state


def start_root(
    tree: RunTree, emitter: PatchEmitter, name: str = "agent"
) -> tuple[Run, list[JsonPatchOp]]:
    """Start the root run and return it with its ops."""
    root = tree.start(name=name, run_type="chain", inputs={"input": "q"})
    return root, emitter.start(root)


class TestPatchEmitterRoot:
    def test_first_run_becomes_the_state(self) -> None:
        """The first run is a replace at '' with exactly the RunState keys, and is the root."""
        tree, emitter = make()
        root, ops = start_root(tree, emitter)
        assert ops == [
            {
                "op": "replace",
                "path": "",
                "value": {
                    "id": str(root.id),
                    "streamed_output": [],
                    "final_output": None,
                    "logs": {},
                    "name": "agent",
                    "type": "chain",
                },
            }
        ]
        assert emitter.root_id == root.id

    def test_root_is_never_a_log_entry(self) -> None:
        """The root gets no entry even if named by a filter; its tokens, chunks, end emit none."""
        tree, emitter = make(run_filter=RunFilter.from_rules(include_names=["agent"]))
        root, _ = start_root(tree, emitter)
        assert not emitter.should_include(root.id, root.name, root.run_type, root.tags)
        assert emitter.path_of(root.id) is None
        assert emitter.token(root.id, "t", "t") == []
        assert emitter.chunk(root.id, {"x": 1}) == []
        assert emitter.end(tree.end(root.id, outputs={"output": 1})) == []

    def test_root_becomes_the_state_even_if_filtered_out(self) -> None:
        """Whether the root becomes the state is not a filter question."""
        tree, emitter = make(run_filter=RunFilter.from_rules(include_names=[]))
        root, ops = start_root(tree, emitter)
        assert [op["op"] for op in ops] == ["replace"]
        assert ops[0]["value"]["id"] == str(root.id)

    def test_a_later_parentless_run_is_an_ordinary_entry(self) -> None:
        """Only the first run is the root; a later run without a parent is a log entry."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        other = tree.start(name="other", run_type="chain")
        assert other.parent_id is None
        ops = emitter.start(other)
        assert [(op["op"], op["path"]) for op in ops] == [("add", "/logs/other")]
        assert emitter.root_id == root.id


class TestPatchEmitterStart:
    def test_included_run_gets_a_full_log_entry(self) -> None:
        """An included run is an add at /logs/<name> with every LogEntry field (inputs too)."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        run = tree.start(
            name="search",
            run_type="tool",
            parent_id=root.id,
            tags=["a", "b"],
            metadata={"k": [1]},
            inputs={"input": {"query": "q"}},
        )
        assert emitter.start(run) == [
            {
                "op": "add",
                "path": "/logs/search",
                "value": {
                    "id": str(run.id),
                    "name": "search",
                    "type": "tool",
                    "tags": ["a", "b"],
                    "metadata": {"k": [1]},
                    "start_time": "2024-01-02T03:04:06.679+00:00",
                    "streamed_output": [],
                    "streamed_output_str": [],
                    "inputs": {"query": "q"},
                    "final_output": None,
                    "end_time": None,
                },
            }
        ]
        assert emitter.path_of(run.id) == "/logs/search"

    def test_original_format_entry_has_no_inputs(self) -> None:
        """In the original schema format an entry has no inputs key."""
        tree, emitter = make("original")
        root, _ = start_root(tree, emitter)
        run = tree.start(name="search", run_type="tool", parent_id=root.id, inputs={"input": "q"})
        (op,) = emitter.start(run)
        assert "inputs" not in op["value"]
        assert set(op["value"]) == {
            "id",
            "name",
            "type",
            "tags",
            "metadata",
            "start_time",
            "streamed_output",
            "streamed_output_str",
            "final_output",
            "end_time",
        }

    @pytest.mark.parametrize(
        ("run_type", "inputs", "shown"),
        [
            ("chain", {"input": {"input": ""}}, None),
            ("chain", {"input": 5}, 5),
            ("llm", {"prompts": ["p"]}, {"prompts": ["p"]}),
            ("retriever", {"query": "q"}, {"query": "q"}),
        ],
    )
    def test_entry_inputs_are_the_wire_inputs(self, run_type: str, inputs: Any, shown: Any) -> None:
        """Entry inputs unwrap chains (placeholder -> None) and show raw types whole."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        run = tree.start(name="r", run_type=run_type, parent_id=root.id, inputs=inputs)
        assert emitter.start(run)[0]["value"]["inputs"] == shown

    def test_entry_does_not_alias_the_runs_data(self) -> None:
        """Mutating the run's tags, metadata or inputs after start does not change the op."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        run = tree.start(
            name="r",
            run_type="chain",
            parent_id=root.id,
            tags=["t"],
            metadata={"m": [1]},
            inputs={"input": {"x": [1]}},
        )
        (op,) = emitter.start(run)
        run.tags.append("u")
        run.metadata["m"].append(2)
        run.inputs["input"]["x"].append(2)
        assert op["value"]["tags"] == ["t"]
        assert op["value"]["metadata"] == {"m": [1]}
        assert op["value"]["inputs"] == {"x": [1]}

    def test_excluded_run_emits_nothing_at_all(self) -> None:
        """An excluded run has no path, and its start, tokens, chunks and end emit no ops."""
        tree, emitter = make(run_filter=RunFilter.from_rules(exclude_types=["llm"]))
        root, _ = start_root(tree, emitter)
        run = tree.start(name="m", run_type="llm", parent_id=root.id)
        assert emitter.start(run) == []
        assert emitter.path_of(run.id) is None
        assert emitter.token(run.id, "a", "a") == []
        assert emitter.chunk(run.id, "a") == []
        assert emitter.end(tree.end(run.id, outputs={"generations": []})) == []

    def test_excluded_run_does_not_use_up_a_key(self) -> None:
        """An excluded run of a name does not count, so the next included run gets the bare name."""
        rules = RunFilter.from_rules(exclude_tags=["hidden"])
        tree, emitter = make(run_filter=rules)
        root, _ = start_root(tree, emitter)
        hidden = tree.start(name="x", run_type="chain", parent_id=root.id, tags=["hidden"])
        shown = tree.start(name="x", run_type="chain", parent_id=root.id)
        assert emitter.start(hidden) == []
        assert emitter.start(shown)[0]["path"] == "/logs/x"

    def test_filter_sees_the_runs_type_and_tags(self) -> None:
        """The emitter asks the filter with the run's name, type and tags."""
        rules = RunFilter.from_rules(include_types=["retriever"], include_tags=["keep"])
        tree, emitter = make(run_filter=rules)
        root, _ = start_root(tree, emitter)
        by_type = tree.start(name="a", run_type="retriever", parent_id=root.id)
        by_tag = tree.start(name="b", run_type="chain", parent_id=root.id, tags=["keep"])
        neither = tree.start(name="c", run_type="chain", parent_id=root.id, tags=["drop"])
        assert [bool(emitter.start(r)) for r in (by_type, by_tag, neither)] == [True, True, False]

    def test_repeated_names_get_numbered_keys(self) -> None:
        """Runs of the same name land under name, name:2, name:3."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        paths = [
            emitter.start(tree.start(name="step", run_type="chain", parent_id=root.id))[0]["path"]
            for _ in range(3)
        ]
        assert paths == ["/logs/step", "/logs/step:2", "/logs/step:3"]

    def test_root_name_does_not_use_up_a_key(self) -> None:
        """A child named like the root still gets the bare name: the root has no key."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter, name="agent")
        child = tree.start(name="agent", run_type="chain", parent_id=root.id)
        assert emitter.start(child)[0]["path"] == "/logs/agent"

    def test_paths_are_escaped(self) -> None:
        """A name with / or ~ is escaped in the path per RFC 6901."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        run = tree.start(name="a/b~c", run_type="chain", parent_id=root.id)
        assert emitter.start(run)[0]["path"] == "/logs/a~1b~0c"
        assert emitter.path_of(run.id) == "/logs/a~1b~0c"
        assert emitter.token(run.id, "t", "t")[0]["path"] == "/logs/a~1b~0c/streamed_output_str/-"


class TestPatchEmitterToken:
    def test_token_is_two_ops(self) -> None:
        """A token appends to streamed_output_str, then the chunk to streamed_output."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        run = tree.start(name="m", run_type="llm", parent_id=root.id)
        emitter.start(run)
        assert emitter.token(run.id, "Hi", "Hi") == [
            {"op": "add", "path": "/logs/m/streamed_output_str/-", "value": "Hi"},
            {"op": "add", "path": "/logs/m/streamed_output/-", "value": "Hi"},
        ]

    def test_chat_token_streams_the_given_chunk(self) -> None:
        """The second op carries the chunk given (a chat model's message), not the token."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        run = tree.start(name="chat", run_type="chat_model", parent_id=root.id)
        emitter.start(run)
        message = object()
        ops = emitter.token(run.id, [{"type": "text", "text": "Hi"}], message)
        assert ops[0]["value"] == [{"type": "text", "text": "Hi"}]
        assert ops[1]["value"] is message

    def test_token_for_unknown_run_emits_nothing(self) -> None:
        """A token for a run the emitter never saw emits no ops."""
        tree, emitter = make()
        start_root(tree, emitter)
        assert emitter.token(uuid.UUID(int=77), "x", "x") == []


class TestPatchEmitterChunk:
    def test_chunk_is_one_op(self) -> None:
        """An output chunk appends to streamed_output only."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        run = tree.start(name="c", run_type="chain", parent_id=root.id)
        emitter.start(run)
        assert emitter.chunk(run.id, 3) == [
            {"op": "add", "path": "/logs/c/streamed_output/-", "value": 3}
        ]

    def test_chunk_is_snapshotted(self) -> None:
        """Mutating a container chunk after it was emitted does not change the op."""
        tree, emitter = make()
        root, _ = start_root(tree, emitter)
        run = tree.start(name="c", run_type="chain", parent_id=root.id)
        emitter.start(run)
        chunk: dict[str, Any] = {"items": [1]}
        (op,) = emitter.chunk(run.id, chunk)
        chunk["items"].append(2)
        assert op["value"] == {"items": [1]}


class TestPatchEmitterEnd:
    patches: list[list[JsonPatchOp]]

    def _started(
        self, schema_format: SchemaFormat, run_type: str, inputs: Any
    ) -> tuple[RunTree, PatchEmitter, Run]:
        tree, emitter = make(schema_format)
        root, root_ops = start_root(tree, emitter)
        run = tree.start(name="r", run_type=run_type, parent_id=root.id, inputs=inputs)
        self.patches = [root_ops, emitter.start(run)]
        return tree, emitter, run

    def test_end_in_streaming_events_replaces_inputs_then_adds_output_and_time(self) -> None:
        """In streaming_events an end is: replace inputs, add final_output, add end_time."""
        tree, emitter, run = self._started("streaming_events", "chain", {"input": {"input": ""}})
        done = tree.end(run.id, outputs={"output": [1, 2]}, inputs={"input": "late"})
        assert emitter.end(done) == [
            {"op": "replace", "path": "/logs/r/inputs", "value": "late"},
            {"op": "add", "path": "/logs/r/final_output", "value": [1, 2]},
            {"op": "add", "path": "/logs/r/end_time", "value": "2024-01-02T03:04:07.680+00:00"},
        ]

    def test_end_in_original_adds_output_and_time(self) -> None:
        """In the original format an end is final_output (the envelope) and end_time only."""
        tree, emitter, run = self._started("original", "chain", {"input": "q"})
        done = tree.end(run.id, outputs={"output": "a"})
        assert emitter.end(done) == [
            {"op": "add", "path": "/logs/r/final_output", "value": {"output": "a"}},
            {"op": "add", "path": "/logs/r/end_time", "value": iso_ms(done.end_time or T0)},
        ]

    @pytest.mark.parametrize(
        ("schema_format", "run_type", "shown"),
        [
            ("streaming_events", "chain", None),
            ("streaming_events", "llm", {}),
            ("original", "chain", {}),
            ("original", "retriever", {}),
        ],
    )
    def test_failed_run_without_outputs(
        self, schema_format: SchemaFormat, run_type: str, shown: Any
    ) -> None:
        """A run that failed without outputs shows the empty envelope, unwrapped per format."""
        tree, emitter, run = self._started(schema_format, run_type, {"input": "q"})
        ops = emitter.end(tree.fail(run.id, ValueError("x")))
        final = [op for op in ops if op["path"] == "/logs/r/final_output"]
        assert final == [{"op": "add", "path": "/logs/r/final_output", "value": shown}]

    def test_path_outlives_the_end(self) -> None:
        """A run keeps its path after its end, so a late chunk still lands (as in LangChain)."""
        tree, emitter, run = self._started("streaming_events", "chain", {"input": "q"})
        done = tree.end(run.id, outputs={"output": "a"})
        end_ops = emitter.end(done)
        assert len(end_ops) == 3
        assert emitter.path_of(run.id) == "/logs/r"
        late = emitter.chunk(run.id, "late")
        assert late == [{"op": "add", "path": "/logs/r/streamed_output/-", "value": "late"}]
        state = apply_all([*self.patches, end_ops, late])
        assert state["logs"]["r"]["streamed_output"] == ["late"]
        assert state["logs"]["r"]["final_output"] == "a"

    def test_end_of_a_run_without_end_time_shows_none(self) -> None:
        """An end for a run record that has no end time yet shows end_time None."""
        _, emitter, run = self._started("original", "chain", {"input": "q"})
        assert run.end_time is None
        assert emitter.end(run)[-1] == {"op": "add", "path": "/logs/r/end_time", "value": None}

    def test_final_output_is_snapshotted(self) -> None:
        """Mutating the outputs after the end was emitted does not change the op."""
        tree, emitter, run = self._started("streaming_events", "chain", {"input": "q"})
        outputs: dict[str, Any] = {"output": {"items": [1]}}
        ops = emitter.end(tree.end(run.id, outputs=outputs))
        outputs["output"]["items"].append(2)
        assert ops[1]["value"] == {"items": [1]}


class TestSchemaFormat:
    def test_unknown_format_is_refused(self) -> None:
        """An unknown schema format raises SchemaFormatError (a ValueError) naming it."""
        with pytest.raises(SchemaFormatError) as info:
            PatchEmitter(schema_format="original+chat")  # type: ignore[arg-type]
        assert isinstance(info.value, ValueError)
        assert "'original+chat'" in str(info.value)

    @pytest.mark.parametrize("schema_format", ["original", "streaming_events"])
    def test_known_formats_pass(self, schema_format: str) -> None:
        """check_schema_format returns a valid format unchanged."""
        assert check_schema_format(schema_format) == schema_format

    def test_default_format_is_streaming_events(self) -> None:
        """An emitter built with defaults uses streaming_events and includes everything."""
        emitter = PatchEmitter()
        assert emitter.schema_format == "streaming_events"
        assert emitter.run_filter == ALWAYS_INCLUDE


class TestPatchEmitterNastyNames:
    NAMES: ClassVar[list[str]] = ["x", "x", "x:2", "a/b", "a~1", "~", "/", "", "-", "~01"]
    KEYS: ClassVar[list[str]] = ["x", "x:2", "x:2:2", "a/b", "a~1", "~", "/", "", "-", "~01"]

    def test_every_run_lands_under_its_own_key(self) -> None:
        """Awkward names each get their own unescaped key, and the whole stream applies cleanly."""
        tree, emitter = make()
        root, root_ops = start_root(tree, emitter)
        patches = [root_ops]
        runs = [tree.start(name=n, run_type="llm", parent_id=root.id) for n in self.NAMES]
        patches += [emitter.start(r) for r in runs]
        for i, run in enumerate(runs):
            patches.append(emitter.token(run.id, f"t{i}", f"t{i}"))
        for i, run in enumerate(runs):
            patches.append(emitter.chunk(run.id, {"i": i}))
        for run in reversed(runs):
            patches.append(emitter.end(tree.end(run.id, outputs={"generations": [run.name]})))
        patches.append(emitter.end(tree.end(root.id, outputs={"output": None})))
        state = apply_all(patches)
        assert list(state["logs"]) == self.KEYS
        for i, (key, name) in enumerate(zip(self.KEYS, self.NAMES)):
            entry = state["logs"][key]
            assert entry["name"] == name
            assert entry["id"] == str(runs[i].id)
            assert entry["streamed_output_str"] == [f"t{i}"]
            assert entry["streamed_output"] == [f"t{i}", {"i": i}]
            assert entry["final_output"] == {"generations": [name]}
            assert entry["end_time"] is not None

    def test_patches_add_up_to_the_same_state(self) -> None:
        """Summing the emitted ops as RunLogPatches gives the state jsonpatch builds."""
        tree, emitter = make()
        root, root_ops = start_root(tree, emitter)
        patches = [root_ops]
        for name in self.NAMES:
            patches.append(
                emitter.start(tree.start(name=name, run_type="chain", parent_id=root.id))
            )
        log = RunLog(state=None)
        for ops in patches:
            log = log + RunLogPatch(*ops)
        assert log.state == apply_all(patches)
        assert sorted(log.state["logs"]) == sorted(self.KEYS)


# ---------------------------------------------------------------------------------------
# Property: random run trees through RunTree + PatchEmitter rebuild the expected state.

RUN_TYPES = ["chain", "llm", "chat_model", "tool", "retriever", "prompt", "parser"]
NAMES = st.sampled_from(["x", "x:2", "a/b", "a~1", "~", "/", "", "-", "é"]) | st.text(
    alphabet="x:2/~01é-", max_size=3
)
TAGS = st.sampled_from(["t", "u", "seq:step:1"])


def reference_include(
    rules: dict[str, Optional[list[str]]], name: str, run_type: str, tags: list[str]
) -> bool:
    """Decide inclusion the plain way: no include rule -> all; includes OR; excludes remove."""
    inc = [rules["include_names"], rules["include_types"], rules["include_tags"]]
    if all(r is None for r in inc):
        ok = True
    else:
        ok = (
            (rules["include_names"] is not None and name in rules["include_names"])
            or (rules["include_types"] is not None and run_type in rules["include_types"])
            or (rules["include_tags"] is not None and any(t in rules["include_tags"] for t in tags))
        )
    if rules["exclude_names"] is not None and name in rules["exclude_names"]:
        ok = False
    if rules["exclude_types"] is not None and run_type in rules["exclude_types"]:
        ok = False
    if rules["exclude_tags"] is not None and any(t in rules["exclude_tags"] for t in tags):
        ok = False
    return ok


def naive_keys(names: list[str]) -> list[str]:
    """LangChain's keys: ``name`` then ``name:N`` by per-name count."""
    counts: Counter[str] = Counter()
    out = []
    for name in names:
        counts[name] += 1
        out.append(name if counts[name] == 1 else f"{name}:{counts[name]}")
    return out


@dataclass
class Expected:
    """What one included run's entry must look like, built from what the test did."""

    run: Run
    index: int
    tokens: list[Any] = field(default_factory=list)
    streamed: list[Any] = field(default_factory=list)
    final_output: Any = None
    end_time: Optional[str] = None
    inputs: Any = None

    def entry(self, schema_format: str) -> dict[str, Any]:
        run = self.run
        out: dict[str, Any] = {
            "id": str(run.id),
            "name": run.name,
            "type": run.run_type,
            "tags": run.tags,
            "metadata": {"i": self.index},
            "start_time": iso_ms(run.start_time),
            "streamed_output_str": self.tokens,
            "streamed_output": self.streamed,
            "final_output": self.final_output,
            "end_time": self.end_time,
        }
        if schema_format == "streaming_events":
            out["inputs"] = self.inputs
        return out


def inputs_for(run_type: str, i: int, placeholder: bool) -> tuple[Any, Any]:
    """Return (envelope kept on the run, value its streaming_events entry shows)."""
    if run_type in RAW_TYPES:
        envelope = {"prompts": [f"p{i}"]}
        return envelope, envelope
    if placeholder:
        return {"input": {"input": ""}}, None
    return {"input": f"in{i}"}, f"in{i}"


def outputs_for(run_type: str, i: int, schema_format: str, failed: bool) -> tuple[Any, Any]:
    """Return (outputs given to the tree, final_output the entry shows)."""
    if failed:
        # no outputs: the empty envelope, unwrapped in streaming_events for non-raw types
        shown: Any = {} if schema_format == "original" or run_type in RAW_TYPES else None
        return None, shown
    envelope: dict[str, Any]
    if run_type in RAW_TYPES:
        envelope = {"generations": [[{"text": f"g{i}"}]]}
        return envelope, envelope
    envelope = {"output": f"o{i}"}
    if schema_format == "streaming_events" or run_type == "prompt":
        return envelope, f"o{i}"
    return envelope, envelope


class Driver:
    """Drives a RunTree and a PatchEmitter with drawn events, recording ops and expectations."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        # Half the examples have no rule at all, so that most runs are included.
        filtered = data.draw(st.booleans(), label="filtered")
        values = {"names": NAMES, "types": st.sampled_from(RUN_TYPES), "tags": TAGS}
        self.rules: dict[str, Optional[list[str]]] = {
            f"{kind}_{what}": data.draw(
                st.lists(strategy, max_size=2)
                if filtered and data.draw(st.booleans())
                else st.none(),
                label=f"{kind}_{what}",
            )
            for kind in ("include", "exclude")
            for what, strategy in values.items()
        }
        self.schema_format: SchemaFormat = data.draw(
            st.sampled_from(["original", "streaming_events"]), label="schema_format"
        )
        self.tree, self.emitter = make(self.schema_format, RunFilter.from_rules(**self.rules))
        self.root = self.tree.start(
            name=data.draw(NAMES, label="root name"),
            run_type=data.draw(st.sampled_from(RUN_TYPES), label="root type"),
        )
        self.patches: list[list[JsonPatchOp]] = [self.emitter.start(self.root)]
        self.open_runs: list[Run] = [self.root]
        self.ended: list[Run] = []
        self.expected: dict[str, Expected] = {}
        self.included: list[tuple[str, str]] = []  # (run id, name) of included runs, in order
        self.count = itertools.count(1)

    def emit(self, ops: list[JsonPatchOp]) -> list[JsonPatchOp]:
        """Record one emitted patch (empty ones too) and return it."""
        self.patches.append(ops)
        return ops

    def start(self) -> None:
        """Start a child of a random open run, and expect an entry if the reference includes it."""
        parent = self.data.draw(st.sampled_from(self.open_runs), label="parent")
        i = next(self.count)
        run_type = self.data.draw(st.sampled_from(RUN_TYPES), label="type")
        placeholder = self.data.draw(st.booleans(), label="placeholder input")
        envelope, shown = inputs_for(run_type, i, placeholder)
        child = self.tree.start(
            name=self.data.draw(NAMES, label="name"),
            run_type=run_type,
            parent_id=parent.id,
            tags=parent.tags + self.data.draw(st.lists(TAGS, max_size=2), label="tags"),
            metadata={"i": i},
            inputs=envelope,
        )
        ops = self.emit(self.emitter.start(child))
        included = reference_include(self.rules, child.name, child.run_type, child.tags)
        assert bool(ops) == included
        if included:
            self.expected[str(child.id)] = Expected(child, i, inputs=shown)
            self.included.append((str(child.id), child.name))
        self.open_runs.append(child)

    def token(self) -> None:
        """Stream a token from a random open LLM or chat-model run."""
        streaming = [r for r in self.open_runs if r.run_type in LLM_TYPES]
        if not streaming:
            return
        run = self.data.draw(st.sampled_from(streaming), label="token run")
        self.tree.count_token(run.id)
        token = self.data.draw(st.text(max_size=3), label="token")
        chunk = {"message": token} if run.run_type == "chat_model" else token
        ops = self.emit(self.emitter.token(run.id, token, chunk))
        exp = self.expected.get(str(run.id))
        assert len(ops) == (2 if exp else 0)
        if exp:
            exp.tokens.append(token)
            exp.streamed.append(chunk)

    def chunk(self, late: bool = False) -> None:
        """Stream a chunk from an open run, or (late) from one that already ended."""
        runs = self.ended if late else self.open_runs
        if not runs:
            return
        run = self.data.draw(st.sampled_from(runs), label="chunk run")
        value: Any = self.data.draw(
            st.integers() | st.lists(st.integers(), max_size=2), label="chunk"
        )
        ops = self.emit(self.emitter.chunk(run.id, value))
        exp = self.expected.get(str(run.id))
        assert len(ops) == (1 if exp else 0)
        if exp:
            exp.streamed.append(list(value) if isinstance(value, list) else value)
        if isinstance(value, list):
            value.append("mutated after emit")  # must not reach the emitted op

    def end(self, run: Run, failed: bool) -> None:
        """End or fail ``run``, sometimes with late inputs, and expect its final fields."""
        exp = self.expected.get(str(run.id))
        index = exp.index if exp else 0
        outputs, shown = outputs_for(run.run_type, index, self.schema_format, failed)
        late = run.run_type not in RAW_TYPES and self.data.draw(st.booleans(), label="late inputs")
        kwargs: dict[str, Any] = {"inputs": {"input": f"late{index}"}} if late else {}
        if failed:
            done = self.tree.fail(run.id, RuntimeError("boom"), **kwargs)
        else:
            done = self.tree.end(run.id, outputs=outputs, **kwargs)
        ops = self.emit(self.emitter.end(done))
        self.open_runs.remove(run)
        self.ended.append(run)
        if exp:
            assert len(ops) == (3 if self.schema_format == "streaming_events" else 2)
            exp.final_output = shown
            exp.end_time = iso_ms(done.end_time or T0)
            if late:
                exp.inputs = f"late{index}"
        else:
            assert ops == []

    def end_some(self) -> None:
        """End or fail a random open run other than the root."""
        children = [r for r in self.open_runs if r is not self.root]
        if children:
            run = self.data.draw(st.sampled_from(children), label="end run")
            self.end(run, failed=self.data.draw(st.booleans(), label="failed"))

    def run(self) -> None:
        """Draw and perform steps; sometimes finish by ending every run, the root last."""
        steps = {
            "start": self.start,
            "token": self.token,
            "chunk": self.chunk,
            "late chunk": lambda: self.chunk(late=True),
            "end": self.end_some,
        }
        for _ in range(self.data.draw(st.integers(3, 30), label="steps")):
            step = self.data.draw(
                st.sampled_from(["start", "start", "token", "chunk", "end", "late chunk"])
            )
            steps[step]()
        if self.data.draw(st.booleans(), label="finish"):
            while len(self.open_runs) > 1:
                self.end_some()
            self.end(self.root, failed=False)


class TestPatchEmitterProperty:
    @settings(max_examples=120, deadline=None)
    @given(data=st.data())
    def test_random_trees_rebuild_the_expected_state(self, data: st.DataObject) -> None:
        """Random runs, filters, tokens and ends: every prefix applies and the logs match."""
        driver = Driver(data)
        driver.run()

        for ops in driver.patches:
            for op in ops:
                assert op["op"] in ("add", "replace")
                assert op["path"] == "" or op["path"].startswith("/logs/")
        # Every prefix of the stream applies cleanly, and summing RunLogPatches agrees.
        state: Any = None
        log = RunLog(state=None)
        for ops in (p for p in driver.patches if p):
            state = jsonpatch.apply_patch(state, ops)
            log = log + RunLogPatch(*ops)
        assert log.state == state

        root = driver.root
        assert {k: state[k] for k in ("id", "name", "type", "streamed_output", "final_output")} == {
            "id": str(root.id),
            "name": root.name,
            "type": root.run_type,
            "streamed_output": [],
            "final_output": None,
        }
        by_id = {entry["id"]: (key, entry) for key, entry in state["logs"].items()}
        assert len(by_id) == len(state["logs"])
        assert set(by_id) == set(driver.expected)
        for run_id, exp in driver.expected.items():
            key, entry = by_id[run_id]
            assert key == exp.run.name or key.startswith(exp.run.name + ":")
            assert entry == exp.entry(driver.schema_format)
        naive = naive_keys([name for _, name in driver.included])
        if len(set(naive)) == len(naive):
            assert [by_id[run_id][0] for run_id, _ in driver.included] == naive


class DictSubclass(dict):  # type: ignore[type-arg]
    """A dict subclass: snapshot turns it into a plain dict."""


class ListSubclass(list):  # type: ignore[type-arg]
    """A list subclass: snapshot turns it into a plain list."""


class Opaque:
    """An object snapshot passes through untouched."""


class StrSubclass(str):
    """A str subclass: a scalar to snapshot."""


SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=4)
    | st.builds(StrSubclass, st.text(max_size=3))
)
VALUES = st.recursive(
    SCALARS | st.builds(Opaque),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=3), inner, max_size=4)
        | st.builds(DictSubclass, st.dictionaries(st.text(max_size=3), inner, max_size=3))
        | st.builds(ListSubclass, st.lists(inner, max_size=3))
        | st.just({"input": ""})
    ),
    max_leaves=12,
)
ENVELOPES = (
    VALUES
    | st.builds(lambda v: {"input": v}, VALUES)
    | st.builds(lambda v: {"output": v}, VALUES)
    | st.builds(lambda v: DictSubclass(input=v, output=v), VALUES)
    | st.builds(lambda v: {"input": DictSubclass(input="")}, st.none())
)
ANY_RUN_TYPE = st.sampled_from(RUN_TYPES)


def same(a: Any, b: Any) -> bool:
    """Equal values with equal container types all the way down, sharing no dict or list."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def model_copy(value: Any) -> Any:
    """The reference copy: dicts (subclasses become dicts) and lists, recursively."""
    if isinstance(value, dict):
        return {k: model_copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [model_copy(v) for v in value]
    return value


def model_inputs(run_type: str, inputs: Any) -> Any:
    """The reference for wire_inputs: the envelope for raw types, else what is inside."""
    value = model_copy(inputs)
    if run_type in ("llm", "chat_model", "retriever") or not isinstance(value, dict):
        return value
    inner = value.get("input")
    return None if isinstance(inner, dict) and inner == {"input": ""} else inner


def model_outputs(run_type: str, outputs: Any, schema_format: str) -> Any:
    """The reference for wire_outputs, per schema format and run type."""
    value = {} if outputs is None else model_copy(outputs)
    if schema_format == "original":
        if run_type == "prompt" and isinstance(value, dict) and "output" in value:
            return value["output"]
        return value
    if run_type in ("llm", "chat_model", "retriever"):
        return value
    return value.get("output") if isinstance(value, dict) else None


class TestWireValues:
    """The wire values (fast paths included) are what a plain reference model gives."""

    @settings(max_examples=300, deadline=None)
    @given(value=VALUES)
    def test_snapshot_is_the_reference_copy(self, value: Any) -> None:
        """snapshot(v) equals the reference copy in value and types, and is a fresh copy."""
        copied = snapshot(value)
        assert same(copied, model_copy(value))
        if isinstance(value, (dict, list)):
            assert copied is not value

    @settings(max_examples=300, deadline=None)
    @given(run_type=ANY_RUN_TYPE, inputs=ENVELOPES)
    def test_wire_inputs_is_the_reference(self, run_type: str, inputs: Any) -> None:
        """wire_inputs gives what the reference gives, for any run type and envelope."""
        assert same(wire_inputs(run_type, inputs), model_inputs(run_type, inputs))

    @settings(max_examples=300, deadline=None)
    @given(
        run_type=ANY_RUN_TYPE,
        outputs=ENVELOPES,
        schema_format=st.sampled_from(["original", "streaming_events"]),
    )
    def test_wire_outputs_is_the_reference(
        self, run_type: str, outputs: Any, schema_format: SchemaFormat
    ) -> None:
        """wire_outputs gives what the reference gives, for any run type, envelope and format."""
        shown = wire_outputs(run_type, outputs, schema_format)
        assert same(shown, model_outputs(run_type, outputs, schema_format))

    def test_copies_share_nothing_with_the_source(self) -> None:
        """A value taken from an envelope is copied: later changes do not reach it."""
        inner = {"a": 1}
        shown = wire_inputs("chain", {"input": inner})
        inner["a"] = 2
        assert shown == {"a": 1}
