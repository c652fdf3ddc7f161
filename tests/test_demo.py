"""The demo and the README's quickstart run and show what they claim."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from readme_blocks import run_readme_block

from logstream.__main__ import main
from logstream._demo import FakeClock, run_demo

ROOT = Path(__file__).resolve().parent.parent


class TestDemo:
    def test_demo_rebuilds_the_agent_tree(self) -> None:
        """The demo's state has both model turns and the tool, with every token in order."""
        log = run_demo(io.StringIO())
        logs = log.state["logs"]
        assert sorted(logs) == ["get_weather", "model", "model:2"]
        assert "".join(logs["model:2"]["streamed_output_str"]) == "It's 18°C and sunny in Paris."
        assert logs["get_weather"]["final_output"] == "18°C, sunny"
        assert logs["get_weather"]["inputs"] == {"city": "Paris"}
        assert log.state["final_output"] == {"answer": "It's 18°C and sunny in Paris."}
        assert all(entry["end_time"] is not None for entry in logs.values())

    def test_demo_ops_apply_to_the_printed_state(self) -> None:
        """Applying the demo's ops from scratch gives exactly the state it reports."""
        log = run_demo(io.StringIO())
        assert jsonpatch.apply_patch(None, log.ops) == log.state

    def test_demo_is_deterministic(self) -> None:
        """Two demo runs print the same text (fixed ids and a fake clock)."""
        first, second = io.StringIO(), io.StringIO()
        run_demo(first)
        run_demo(second)
        assert first.getvalue() == second.getvalue()
        assert "patches, as they stream:" in first.getvalue()
        assert "rebuilt state:" in first.getvalue()

    def test_cli_without_command_prints_help_and_fails(self, capsys: Any) -> None:
        """`python -m logstream` with no command exits non-zero with usage on stderr."""
        assert main([]) == 2
        assert "usage" in capsys.readouterr().err

    def test_cli_demo_runs_as_a_module(self) -> None:
        """`python -m logstream demo` exits 0 and prints the rebuilt state."""
        done = subprocess.run(
            [sys.executable, "-m", "logstream", "demo"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert '"answer": "It\'s 18°C and sunny in Paris."' in done.stdout


class TestFakeClock:
    def test_fake_clock_moves_a_millisecond_per_read(self) -> None:
        """Each read of the fake clock is exactly 1 ms after the previous one."""
        clock = FakeClock()
        first, second = clock(), clock()
        assert (second - first).total_seconds() == 0.001


class TestReadme:
    def test_quickstart_runs_and_prints_its_claimed_tokens(self) -> None:
        """The README's quickstart code block runs and prints what its comment says."""
        _, out = run_readme_block("Quickstart")
        assert out.strip().splitlines()[-1] == "['Hel', 'lo']"

    def test_native_tracing_snippet_runs(self) -> None:
        """The README's native-tracing code block runs and streams the root's final output."""
        _, out = run_readme_block("Trace your own code")
        assert "'/logs/model/streamed_output_str/-', 'value': ' sunny'" in out
        assert out.strip().splitlines()[-1].endswith("'value': 'sunnyIt is sunny'}]")

    def test_dumps_snippet_prints_what_its_comment_says(self) -> None:
        """The README's ``dumps`` example prints exactly the JSON in its trailing comment."""
        code, out = run_readme_block("JSON text and secrets")
        assert out.strip() == code.strip().splitlines()[-1].removeprefix("# ")

    def test_processor_snippet_prints_what_its_comment_says(self) -> None:
        """The README's run-processor example prints the nested ends its comment shows."""
        code, out = run_readme_block("Configuration and run processors")
        claimed = code.split("# prints:\n", 1)[1].splitlines()
        assert out.splitlines() == [line.removeprefix("# ") for line in claimed]

    def test_entry_fields_snippet_asserts_hold(self) -> None:
        """The README's entry-fields example runs: its asserts on the rebuilt state hold."""
        code, _ = run_readme_block("Entry fields: nesting and errors on the wire (opt-in)")
        assert code.count("assert ") == 3

    def test_record_snippet_prints_what_its_comments_say(self) -> None:
        """The README's sinks example prints the final output and the SSE end frame it claims."""
        _, out = run_readme_block("Record, replay, stream over the wire")
        assert out.splitlines() == [
            "It's sunny. True",
            "event: end",
            'data: {"patches":3,"error":null}',
            "",
        ]

    def test_replay_tree_in_the_readme_is_what_replay_prints(self, tmp_path: Path) -> None:
        """The run tree the README shows is what `replay` prints for the recorded demo."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        section = readme.split("## Record, replay, stream over the wire", 1)[1]
        shown = re.search(r"```text\n(.*?)```", section, re.S)
        assert shown is not None
        path = tmp_path / "run.jsonl"
        for args in (["record", str(path)], ["replay", str(path)]):
            done = subprocess.run(
                [sys.executable, "-m", "logstream", *args],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, done.stderr
        assert done.stdout == shown.group(1)

    def test_no_merge_conflict_markers_in_the_repo(self) -> None:
        """No text file of the repository holds a leftover merge conflict marker."""
        markers = ("<" * 7 + " ", ">" * 7 + " ")
        offenders = [
            f"{path.relative_to(ROOT)}:{number}"
            for pattern in ("*.md", "logstream/*.py", "tests/**/*.py", "examples/*.py")
            for path in ROOT.glob(pattern)
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
            if line.startswith(markers)
        ]
        assert offenders == []

    def test_readme_commands_are_the_ones_ci_runs(self) -> None:
        """The README's test command appears verbatim in .ci/run."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
        section = readme.split("## Two commands", 1)[1].split("\n## ", 1)[0]
        commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
        assert len(commands) == 2
        assert "-m logstream demo" in commands[0]
        assert commands[1] in ci


class TestDemoPatches:
    def test_an_agent_that_fails_ends_the_stream_and_raises(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """If the agent raises midway, the patches so far arrive, then its error; no hang."""
        import logstream._demo as demo

        def broken_tool(city: str) -> str:
            raise RuntimeError(f"no weather for {city}")

        monkeypatch.setattr(demo, "_get_weather", broken_tool)
        seen = []
        with pytest.raises(RuntimeError, match="no weather for Paris"):
            for patch in demo.demo_patches():
                seen.append(patch)
        assert any(op["path"] == "/logs/get_weather" for patch in seen for op in patch.ops)
