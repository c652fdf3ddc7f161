"""Tests for ``logstream replay`` nesting runs by ``parent_ids`` and marking failed runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstream import JsonLinesSink, RunLogPatch, Tracer, read_jsonl, trace
from logstream._cli import format_tree, main


def record(path: Path, patches: list[RunLogPatch], error: Optional[str] = None) -> Path:
    """Write ``patches`` and an end record to ``path`` as a recording."""
    with JsonLinesSink(path) as sink:
        for patch in patches:
            sink.write(patch)
        sink.end(error)
    return path


def rows(tree: str) -> list[tuple[int, str, list[str]]]:
    """Return ``(depth, name, other cells)`` per run line of a printed tree (no header/summary)."""
    out = []
    for line in tree.splitlines()[1:-1]:
        stripped = line.lstrip(" ")
        depth = (len(line) - len(stripped)) // 2
        name, *cells = stripped.split()
        out.append((depth, name, cells))
    return out


def agent_with_failure(tracer: Tracer) -> None:
    """agent > [model, sub > [model, calc (fails)]], the failure caught in sub."""
    with trace("agent", tracer=tracer):
        with trace("model", run_type="llm", tracer=tracer):
            pass
        with trace("sub", tracer=tracer):
            with trace("model", run_type="llm", tracer=tracer):
                pass
            try:
                with trace("calc", run_type="tool", tracer=tracer):
                    1 / 0  # noqa: B018
            except ZeroDivisionError:
                pass


class TestNesting:
    def test_runs_nest_under_their_parents(self, tmp_path: Path) -> None:
        """With parent_ids, each run is indented one level under its parent, in start order."""
        tracer = Tracer(entry_fields=["parent_ids", "error"])
        agent_with_failure(tracer)
        tree = format_tree(read_jsonl(record(tmp_path / "r.jsonl", list(tracer))))
        shape = [(depth, name) for depth, name, _ in rows(tree)]
        assert shape == [(0, "agent"), (1, "model"), (1, "sub"), (2, "model"), (2, "calc")]

    def test_failed_run_is_marked_with_its_message(self, tmp_path: Path) -> None:
        """A failed run's status is ``error`` and its line ends with the error text."""
        tracer = Tracer(entry_fields=["parent_ids", "error"])
        agent_with_failure(tracer)
        tree = format_tree(read_jsonl(record(tmp_path / "r.jsonl", list(tracer))))
        calc = next(line for line in tree.splitlines() if line.lstrip().startswith("calc"))
        assert " error " in calc
        assert calc.endswith("ZeroDivisionError: division by zero")
        assert tree.splitlines()[0].split()[-1] == "error"
        others = [line for line in tree.splitlines()[1:-1] if "calc" not in line]
        assert all(" done " in line for line in others)

    def test_flat_without_parent_ids(self, tmp_path: Path) -> None:
        """Without the fields every run is one level under the root and no error column shows."""
        tracer = Tracer()
        agent_with_failure(tracer)
        tree = format_tree(read_jsonl(record(tmp_path / "r.jsonl", list(tracer))))
        assert [depth for depth, _, _ in rows(tree)] == [0, 1, 1, 1, 1]
        assert "error" not in tree.splitlines()[0]
        assert " error " not in tree  # no error field: the failed tool reads as done

    def test_hidden_ancestor_uses_nearest_included(self, tmp_path: Path) -> None:
        """When the filter hid a parent, a run nests under its nearest logged ancestor."""
        tracer = Tracer(entry_fields=["parent_ids"], exclude_names=["sub"])
        agent_with_failure(tracer)
        tree = format_tree(read_jsonl(record(tmp_path / "r.jsonl", list(tracer))))
        assert [depth for depth, _, _ in rows(tree)] == [0, 1, 1, 1]

    def test_failed_root_is_marked(self, tmp_path: Path) -> None:
        """A root that failed shows ``error`` and its message from the state's error key."""
        tracer = Tracer(entry_fields=["error"])
        with pytest.raises(KeyError), trace("agent", tracer=tracer):
            raise KeyError("missing")
        tree = format_tree(read_jsonl(record(tmp_path / "r.jsonl", list(tracer))))
        first = tree.splitlines()[1]
        assert first.split()[:3] == ["agent", "chain", "error"]
        assert first.endswith("KeyError: 'missing'")

    def test_malformed_parent_ids_show_every_run_once(self, tmp_path: Path) -> None:
        """Ids that loop, are not strings, or are not a list still show each run exactly once."""

        def entry(name: str, run_id: str, parent_ids: Any) -> dict[str, Any]:
            return {"id": run_id, "name": name, "type": "chain", "parent_ids": parent_ids}

        state = {
            "id": "root",
            "name": "root",
            "type": "chain",
            "logs": {
                "a": entry("a", "A", ["root", "B"]),
                "b": entry("b", "B", ["root", "A"]),
                "c": entry("c", "C", [1, None, {"x": 1}]),
                "d": entry("d", "D", "A"),
                "e": entry("e", "E", ["E"]),
            },
        }
        path = record(
            tmp_path / "r.jsonl", [RunLogPatch({"op": "replace", "path": "", "value": state})]
        )
        names = sorted(name for _, name, _ in rows(format_tree(read_jsonl(path)))[1:])
        assert names == ["a", "b", "c", "d", "e"]

    @settings(max_examples=40, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=50), min_size=1, max_size=20))
    def test_any_tree_prints_parent_before_child(
        self, tmp_path_factory: Any, picks: list[int]
    ) -> None:
        """For any run tree, each run's line follows its parent's, one level deeper."""
        tracer = Tracer(entry_fields=["parent_ids"], auto_close=False)
        root = tracer.start_run("root", "chain")
        assert root is not None
        ids = [root.id]
        parent_name = {"root": ""}
        for index, pick in enumerate(picks):
            parent = ids[pick % len(ids)]
            made = tracer.start_run(f"r{index}", "chain", parent_id=parent)
            assert made is not None
            ids.append(made.id)
            parent_name[f"r{index}"] = "root" if parent == root.id else f"r{ids.index(parent) - 1}"
        tracer.end_run(root.id)
        tracer.close()
        path = record(tmp_path_factory.mktemp("t") / "r.jsonl", list(tracer))
        printed = rows(format_tree(read_jsonl(path)))
        where = {name: (line, depth) for line, (depth, name, _) in enumerate(printed)}
        assert len(where) == len(picks) + 1
        for name, parent in parent_name.items():
            if parent:
                assert where[name][0] > where[parent][0]
                assert where[name][1] == where[parent][1] + 1


class TestRecordFlag:
    def test_record_with_entry_fields_then_replay_nests(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """``record --entry-fields parent_ids,error`` writes the fields; replay nests by them."""
        path = tmp_path / "demo.jsonl"
        assert main(["record", str(path), "--entry-fields", "parent_ids,error"]) == 0
        state = read_jsonl(path).state
        assert all("parent_ids" in entry and "error" in entry for entry in state["logs"].values())
        capsys.readouterr()
        assert main(["replay", str(path)]) == 0
        printed = rows(capsys.readouterr().out)
        assert printed[0][0] == 0
        assert all(depth >= 1 for depth, _, _ in printed[1:])

    def test_record_default_has_no_fields(self, tmp_path: Path) -> None:
        """Without the flag the recording is LangChain's state, with no opt-in keys."""
        path = tmp_path / "demo.jsonl"
        assert main(["record", str(path)]) == 0
        state = read_jsonl(path).state
        assert "error" not in state
        assert all("parent_ids" not in entry for entry in state["logs"].values())

    def test_bad_entry_fields_flag_is_exit_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown field name is one line on stderr, exit 2, and no file written."""
        path = tmp_path / "x.jsonl"
        assert main(["record", str(path), "--entry-fields", "parents"]) == 2
        assert "--entry-fields" in capsys.readouterr().err
        assert not path.exists()


def test_uuid_ids_are_strings_on_the_wire() -> None:
    """parent_ids hold the ancestors' ids as strings, so a replayed file matches them to ids."""
    tracer = Tracer(entry_fields=["parent_ids"])
    agent_with_failure(tracer)
    log = RunLogPatch()
    for patch in tracer:
        log = log + patch
    for entry in log.state["logs"].values():
        for ancestor in entry["parent_ids"]:  # type: ignore[typeddict-item]
            assert str(uuid.UUID(ancestor)) == ancestor


class TestReadme:
    def test_nested_tree_in_the_readme_is_what_its_commands_print(self, tmp_path: Path) -> None:
        """The README's nested.py commands print the tree it shows (durations aside)."""
        readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
        section = readme.split("**Nested trees and failed runs.**", 1)[1]
        commands = re.search(r"```bash\n(.*?)```", section, re.S)
        shown = re.search(r"```text\n(.*?)```", section, re.S)
        assert commands is not None and shown is not None
        scripts = str(Path(sys.executable).parent)  # the `logstream` script of this venv
        env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
        done = subprocess.run(
            ["bash", "-c", commands.group(1)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr

        def durations_aside(text: str) -> list[str]:
            """Each line's indent and cells; durations (and the column widths they set) aside."""
            return [
                line[: len(line) - len(line.lstrip())] + " ".join(line.split())
                for line in re.sub(r"\d+ ms", "N ms", text).splitlines()
            ]

        assert durations_aside(done.stdout) == durations_aside(shown.group(1))
