"""Tests for the command line: ``logstream demo | record | replay`` (logstream._cli)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from threading_helpers import join_thread, run_in_thread

from logstream import JsonLinesSink, RunLogPatch, read_jsonl
from logstream._cli import format_tree, main
from logstream._demo import demo_patches, run_demo

TARGETS = """
import time

def shout(text):
    return text.upper()

def echo(value):
    return value

def chatty(value):
    print("hello from the target")
    return value

def tokens(n):
    for i in range(n):
        yield f"t{i} "

def slow_tokens(n):
    for i in range(n):
        time.sleep(0.01)
        yield f"t{i} "

def fails(value):
    raise ValueError(f"bad value {value}")

NOT_CALLABLE = 3

def exits(value):
    raise SystemExit(7)

def leaks(value):
    raise ValueError("the key sk-proj-abcdefghijklmnopqrstuvwxyz0123 was refused")

class Unprintable(Exception):
    def __str__(self):
        raise RuntimeError("no text for you")

def unprintable(value):
    raise Unprintable()

def stops(value):
    raise StopIteration("nothing left")

def generator_exit(value):
    raise GeneratorExit

def writes_fd1(value):
    import os
    os.write(1, b"raw bytes on fd 1\\n")
    return value
"""


def run_cli(*args: str, cwd: Path, stdin: bytes = b"") -> subprocess.CompletedProcess[str]:
    """Run ``python -m logstream ARGS`` in ``cwd`` and return what it did."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}
    return subprocess.run(
        [sys.executable, "-m", "logstream", *args],
        cwd=cwd,
        input=stdin.decode(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )


def demo_state_text() -> str:
    """Return the text the demo prints after "rebuilt state:"."""
    out = io.StringIO()
    run_demo(out)
    return out.getvalue().split("rebuilt state:\n", 1)[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A directory holding a module of targets, as a user's project would."""
    (tmp_path / "targets.py").write_text(textwrap.dedent(TARGETS))
    return tmp_path


class TestRecordThenReplay:
    def test_replay_json_prints_exactly_the_state_the_demo_printed(self, project: Path) -> None:
        """`record run.jsonl` then `replay run.jsonl --json` prints the demo's final state."""
        recorded = run_cli("record", "run.jsonl", cwd=project)
        assert recorded.returncode == 0, recorded.stderr
        assert recorded.stdout == ""
        count = len((project / "run.jsonl").read_text().splitlines()) - 1
        assert recorded.stderr == f"recorded {count} patches to run.jsonl\n"
        replayed = run_cli("replay", "run.jsonl", "--json", cwd=project)
        assert replayed.returncode == 0, replayed.stderr
        assert replayed.stdout == demo_state_text()

    def test_replay_prints_the_run_tree(self, project: Path) -> None:
        """The tree lists every run with its type, status, duration and tokens."""
        assert run_cli("record", "run.jsonl", cwd=project).returncode == 0
        done = run_cli("replay", "run.jsonl", cwd=project)
        assert done.returncode == 0, done.stderr
        rows = [line.split() for line in done.stdout.splitlines()]
        assert rows[0] == ["run", "type", "status", "duration", "streamed"]
        assert rows[1] == ["agent", "chain", "done", "-", "-"]
        assert rows[2] == ["model", "chat_model", "done", "1", "ms", "7", "tokens"]
        assert rows[3] == ["get_weather", "tool", "done", "1", "ms", "-"]
        assert rows[4] == ["model", "[model:2]", "chat_model", "done", "1", "ms", "9", "tokens"]
        count = len((project / "run.jsonl").read_text().splitlines()) - 1
        assert done.stdout.splitlines()[5] == f"{count} patches, 3 logged runs"

    def test_a_target_is_run_through_stream_log_with_its_input(self, project: Path) -> None:
        """--target module:function --input JSON records target(input) as the root run."""
        done = run_cli(
            "record", "t.jsonl", "--target", "targets:tokens", "--input", "3", cwd=project
        )
        assert done.returncode == 0, done.stderr
        state = read_jsonl(project / "t.jsonl").state
        assert state["name"] == "tokens"
        assert state["streamed_output"] == ["t0 ", "t1 ", "t2 "]
        assert state["final_output"] == "t0 t1 t2 "

    def test_record_to_stdout_pipes_into_replay_from_stdin(self, project: Path) -> None:
        """`record -` writes the recording to stdout and `replay -` reads it from stdin."""
        recorded = run_cli(
            "record", "-", "--target", "targets:shout", "--input", '"hi"', cwd=project
        )
        assert recorded.returncode == 0, recorded.stderr
        replayed = run_cli("replay", "-", "--json", cwd=project, stdin=recorded.stdout.encode())
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["final_output"] == "HI"

    def test_a_target_that_prints_does_not_corrupt_a_recording_on_stdout(
        self, project: Path
    ) -> None:
        """With `record -`, what the target prints goes to stderr, not into the recording."""
        done = run_cli("record", "-", "--target", "targets:chatty", "--input", "1", cwd=project)
        assert done.returncode == 0, done.stderr
        assert done.stderr == "hello from the target\n"
        assert read_jsonl(io.StringIO(done.stdout)).state["final_output"] == 1

    def test_redact_masks_secrets_before_they_reach_the_file(self, project: Path) -> None:
        """--redact keeps a secret in the input out of the recording."""
        value = '{"api_key": "hunter2hunter2", "note": "sk-proj-abcdefghijklmnopqrstuvwxyz0123"}'
        args = ("record", "r.jsonl", "--target", "targets:echo", "--input", value, "--redact")
        assert run_cli(*args, cwd=project).returncode == 0
        text = (project / "r.jsonl").read_text()
        assert "hunter2" not in text and "abcdefghijklmnop" not in text
        assert set(read_jsonl(project / "r.jsonl").state["final_output"]) == {"api_key", "note"}
        assert run_cli(*args[:-1], cwd=project).returncode == 0
        assert "hunter2" in (project / "r.jsonl").read_text()

    def test_a_failing_target_is_recorded_with_its_error_and_exits_1(self, project: Path) -> None:
        """The end record names the target's error; record exits 1; replay shows 'error'."""
        done = run_cli(
            "record", "f.jsonl", "--target", "targets:fails", "--input", "7", cwd=project
        )
        assert done.returncode == 1
        assert done.stderr == (
            "logstream: error: the target raised ValueError: bad value 7 (1 patch in f.jsonl)\n"
        )
        end = read_jsonl(project / "f.jsonl").end
        assert end is not None and end.error == "ValueError: bad value 7"
        replayed = run_cli("replay", "f.jsonl", cwd=project)
        assert replayed.returncode == 0
        assert replayed.stdout.splitlines()[1].split() == ["fails", "chain", "error", "-", "-"]
        assert replayed.stdout.endswith("; the traced code raised ValueError: bad value 7\n")

    def test_the_console_script_is_installed(self, project: Path) -> None:
        """The `logstream` script next to the interpreter runs the same command line."""
        script = Path(sys.executable).with_name("logstream")
        assert script.exists(), "pip install did not create the logstream console script"
        done = subprocess.run(
            [str(script), "record", "s.jsonl", "--target", "targets:shout", "--input", '"a"'],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert read_jsonl(project / "s.jsonl").state["final_output"] == "A"


class TestBadFiles:
    def test_a_truncated_file_is_one_line_naming_its_line_and_exit_1(self, project: Path) -> None:
        """A recording cut mid-line gives one line on stderr with the line number."""
        assert run_cli("record", "run.jsonl", cwd=project).returncode == 0
        data = (project / "run.jsonl").read_bytes()
        line_starts = [i + 1 for i, b in enumerate(data) if b == ord("\n")]
        cut = line_starts[4] + 30  # 30 bytes into line 6
        (project / "cut.jsonl").write_bytes(data[:cut])
        done = run_cli("replay", "cut.jsonl", cwd=project)
        assert done.returncode == 1
        assert done.stdout == ""
        assert done.stderr.count("\n") == 1
        assert done.stderr.startswith("logstream: error: cut.jsonl:6: truncated")

    def test_a_file_cut_between_lines_is_incomplete_unless_partial(self, project: Path) -> None:
        """No end record: exit 1 with a hint; --partial shows the runs so far as running."""
        assert run_cli("record", "run.jsonl", cwd=project).returncode == 0
        lines = (project / "run.jsonl").read_text().splitlines(keepends=True)
        (project / "half.jsonl").write_text("".join(lines[:5]))
        done = run_cli("replay", "half.jsonl", cwd=project)
        assert done.returncode == 1
        assert done.stderr.startswith("logstream: error: half.jsonl:6: the file ends without")
        assert "--follow waits for it, --partial shows it" in done.stderr
        shown = run_cli("replay", "half.jsonl", "--partial", cwd=project)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout.splitlines()[1].split()[:3] == ["agent", "chain", "running"]
        assert shown.stdout.endswith("; incomplete: no end record\n")

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (lambda ls: [*ls[:2], '{"ops": [}\n', *ls[3:]], "bad.jsonl:3: not valid JSON"),
            (lambda ls: ls[:2] + ls[3:], "bad.jsonl:"),
            (lambda ls: [*ls, ls[1]], "data after the end record"),
            (
                lambda ls: [*ls[:1], ls[0].replace('"replace"', '"explode"'), *ls[1:]],
                'unknown "op"',
            ),
        ],
    )
    def test_a_corrupted_file_is_one_line_and_exit_1(
        self, project: Path, change: Any, message: str
    ) -> None:
        """Changed, dropped or extra lines are found and reported in one line."""
        assert run_cli("record", "run.jsonl", cwd=project).returncode == 0
        lines = (project / "run.jsonl").read_text().splitlines(keepends=True)
        (project / "bad.jsonl").write_text("".join(change(lines)))
        done = run_cli("replay", "bad.jsonl", cwd=project)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1
        assert message in done.stderr
        assert done.stderr.startswith("logstream: error: bad.jsonl:")

    def test_a_missing_file_is_one_line_and_exit_1(self, project: Path) -> None:
        """A file that is not there is reported by name."""
        done = run_cli("replay", "nope.jsonl", cwd=project)
        assert (done.returncode, done.stderr) == (
            1,
            "logstream: error: can't read nope.jsonl: No such file or directory\n",
        )

    def test_names_with_control_characters_are_escaped_in_the_tree(self, tmp_path: Path) -> None:
        """A recording can't move the terminal's cursor: control characters are shown escaped."""
        root = {"name": "evil\x1b[2Jname", "type": "chain", "logs": {}, "streamed_output": []}
        path = tmp_path / "evil.jsonl"
        with JsonLinesSink(path) as sink:
            sink.write(RunLogPatch({"op": "replace", "path": "", "value": root}))
        tree = format_tree(read_jsonl(path))
        assert "\x1b" not in tree
        assert "evil\\x1b[2Jname" in tree

    def test_a_state_that_is_not_a_run_state_is_one_line(self, tmp_path: Path) -> None:
        """A recording whose state is not an object is reported, not printed wrongly."""
        path = tmp_path / "odd.jsonl"
        with JsonLinesSink(path) as sink:
            sink.write(RunLogPatch({"op": "replace", "path": "", "value": [1, 2]}))
        assert main(["replay", str(path), "--json"]) == 0
        assert main(["replay", str(path)]) == 1


class TestBadArguments:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["record", "x.jsonl", "--target", "targets"], "must look like module:function"),
            (["record", "x.jsonl", "--target", "nosuchmodule:f"], "can't import 'nosuchmodule'"),
            (["record", "x.jsonl", "--target", "targets:nope"], "has no attribute 'nope'"),
            (["record", "x.jsonl", "--target", "targets:NOT_CALLABLE"], "is a int, not a callable"),
            (
                ["record", "x.jsonl", "--target", "targets:shout", "--input", "{"],
                "--input is not JSON",
            ),
            (
                ["record", "x.jsonl", "--target", "targets:shout", "--input", "NaN"],
                "NaN is not JSON",
            ),
            (["record", "x.jsonl", "--input", "1"], "--input needs --target"),
            (["replay", "x.jsonl", "--timeout", "1"], "--timeout needs --follow"),
            (["replay", "x.jsonl", "--follow", "--timeout", "0"], "must be a positive number"),
        ],
    )
    def test_bad_arguments_are_one_line_and_exit_2(
        self, project: Path, args: list[str], message: str
    ) -> None:
        """Each argument mistake is named in one line, with exit status 2 and no file left."""
        done = run_cli(*args, cwd=project)
        assert done.returncode == 2, done.stderr
        assert done.stderr.startswith("logstream: error: ")
        assert done.stderr.count("\n") == 1
        assert message in done.stderr
        assert not (project / "x.jsonl").exists()

    def test_argparse_mistakes_exit_2_with_usage(self, capsys: Any) -> None:
        """Unknown options and missing arguments print usage and return 2."""
        assert main(["replay"]) == 2
        assert main(["record", "x", "--bogus"]) == 2
        assert main(["frobnicate"]) == 2
        assert "usage: logstream" in capsys.readouterr().err

    def test_an_unwritable_output_is_one_line_and_exit_1(self, project: Path) -> None:
        """An output file that can't be created is named, with the OS's reason."""
        done = run_cli("record", "no/such/dir/x.jsonl", cwd=project)
        assert done.returncode == 1
        assert done.stderr == (
            "logstream: error: can't write no/such/dir/x.jsonl: No such file or directory\n"
        )


class TestFollow:
    def test_follow_prints_patches_live_then_the_tree(self, project: Path) -> None:
        """replay --follow reads a recording being written and ends at its end record."""
        path = project / "live.jsonl"
        writer = run_in_thread(
            lambda: run_cli(
                "record",
                "live.jsonl",
                "--target",
                "targets:slow_tokens",
                "--input",
                "20",
                cwd=project,
            )
        )
        done = run_cli("replay", "live.jsonl", "--follow", "--timeout", "30", cwd=project)
        recorded = join_thread(*writer)
        assert recorded.returncode == 0, recorded.stderr
        assert done.returncode == 0, done.stderr
        out = done.stdout.splitlines()
        assert out[0] == "patches, as they stream:"
        assert sum(1 for line in out if "/streamed_output/-" in line) == 20
        assert out[-1] == f"{len(read_jsonl(path).patches)} patches, 0 logged runs"

    def test_follow_json_prints_only_the_final_state(self, project: Path) -> None:
        """With --json, following prints nothing but the final state."""
        assert run_cli("record", "run.jsonl", cwd=project).returncode == 0
        done = run_cli("replay", "run.jsonl", "--follow", "--json", cwd=project)
        assert done.returncode == 0, done.stderr
        assert done.stdout == demo_state_text()

    def test_follow_gives_up_after_the_timeout(self, project: Path) -> None:
        """A recording that stops growing without an end record fails after --timeout."""
        lines = [f"{json.dumps({'ops': p.ops})}\n" for p in list(demo_patches())[:3]]
        (project / "stuck.jsonl").write_text("".join(lines))
        started = time.monotonic()
        done = run_cli("replay", "stuck.jsonl", "--follow", "--timeout", "0.2", cwd=project)
        assert done.returncode == 1
        assert time.monotonic() - started < 30
        assert "stuck.jsonl:4: no new line for 0.2s and no end record yet" in done.stderr


class TestReviewFindings:
    def test_json_output_escapes_surrogates_and_bidi_marks(self, tmp_path: Path) -> None:
        """--json stays valid JSON and prints no lone surrogate, C1 control or bidi override."""
        value = {"logs": {}, "name": "x\ud800y\u202ez\x9b", "type": "chain"}
        path = tmp_path / "odd.jsonl"
        with JsonLinesSink(path) as sink:
            sink.write(RunLogPatch({"op": "replace", "path": "", "value": value}))
        done = run_cli("replay", str(path), "--json", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["name"] == value["name"]
        assert not any(ch in done.stdout for ch in "\u202e\x9b")

    def test_follow_output_escapes_terminal_controls(self, tmp_path: Path) -> None:
        """Patches printed live can't set the terminal title or fake lines."""
        evil = "/\x1b]0;pwned\x07\nFAKE LINE"
        path = tmp_path / "evil.jsonl"
        with JsonLinesSink(path) as sink:
            sink.write(RunLogPatch({"op": "replace", "path": "", "value": {"logs": {}}}))
            sink.write(RunLogPatch({"op": "add", "path": evil, "value": "\u202e"}))
        done = run_cli("replay", str(path), "--follow", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert "\x1b" not in done.stdout and "\u202e" not in done.stdout
        assert "\nFAKE LINE" not in done.stdout

    def test_prints_at_import_and_on_fd_1_stay_out_of_a_recording_on_stdout(
        self, project: Path
    ) -> None:
        """With `record -`, what the import prints and raw writes to fd 1 go to stderr."""
        (project / "loud.py").write_text("print('IMPORT-TIME PRINT')\nfrom targets import *\n")
        for target in ("loud:echo", "targets:writes_fd1"):
            done = run_cli("record", "-", "--target", target, "--input", "1", cwd=project)
            assert done.returncode == 0, done.stderr
            assert read_jsonl(io.StringIO(done.stdout)).state["final_output"] == 1
            assert done.stderr in ("IMPORT-TIME PRINT\n", "raw bytes on fd 1\n")

    def test_a_closed_pipe_on_stdout_exits_quietly(self, project: Path) -> None:
        """`replay --json | true` (the reader gone) ends with status 1 and no traceback."""
        big = {"logs": {}, "name": "big", "type": "chain", "blob": ["x" * 100] * 50_000}
        with JsonLinesSink(project / "big.jsonl") as sink:
            sink.write(RunLogPatch({"op": "replace", "path": "", "value": big}))
        pipeline = (
            f"{sys.executable} -m logstream replay big.jsonl --json | true; echo ${{PIPESTATUS[0]}}"
        )
        done = subprocess.run(
            ["bash", "-c", pipeline],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.stdout == "1\n"  # 5 MB can't fit in a pipe: the write met the closed end
        assert done.stderr == ""

    def test_a_full_disk_is_a_write_error_not_the_targets(self, project: Path) -> None:
        """Recording to /dev/full says it can't write, in one line, exit 1."""
        done = run_cli("record", "/dev/full", cwd=project)
        assert done.returncode == 1
        assert done.stderr == ("logstream: error: can't write /dev/full: No space left on device\n")

    def test_a_target_that_exits_is_reported_as_its_failure(self, project: Path) -> None:
        """SystemExit from the target is its error: recorded, one line, exit 1."""
        done = run_cli("record", "e.jsonl", "--target", "targets:exits", cwd=project)
        assert done.returncode == 1
        assert done.stderr == (
            "logstream: error: the target raised SystemExit: 7 (1 patch in e.jsonl)\n"
        )
        end = read_jsonl(project / "e.jsonl").end
        assert end is not None and end.error == "SystemExit: 7"

    def test_target_messages_are_one_line(self, project: Path) -> None:
        """A target's multi-line error with escapes is reported on one escaped line."""
        (project / "multi.py").write_text(
            "def f(v):\n    raise ValueError('line one\\nline two \\x1b[31m')\n"
        )
        done = run_cli("record", "m.jsonl", "--target", "multi:f", cwd=project)
        assert done.returncode == 1
        assert done.stderr.count("\n") == 1 and "\x1b" not in done.stderr
        assert "line one\\nline two" in done.stderr

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["record", "x.jsonl", "--target", ".rel:f"], "can't import '.rel'"),
            (["replay", "-", "--follow", "--timeout", "1"], "does not apply to stdin"),
        ],
    )
    def test_more_bad_arguments_exit_2(self, project: Path, args: list[str], message: str) -> None:
        """A relative module name and --timeout on stdin are argument errors."""
        done = run_cli(*args, cwd=project)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr

    def test_no_hint_to_follow_when_already_following(self, project: Path) -> None:
        """A stream without an end record under --follow gets no --follow hint."""
        stdin = (json.dumps({"ops": [{"op": "replace", "path": "", "value": {}}]}) + "\n").encode()
        done = run_cli("replay", "-", "--follow", cwd=project, stdin=stdin)
        assert done.returncode == 1
        assert "ends without an end record" in done.stderr
        assert "--follow waits" not in done.stderr


def deep_recording(levels: int) -> str:
    """Return a recording whose state is ``levels`` deep, each line adding one level."""
    lines = [{"ops": [{"op": "replace", "path": "", "value": {"logs": {}, "d": {}}}]}]
    path = "/d"
    for _ in range(levels):
        lines.append({"ops": [{"op": "add", "path": path + "/a", "value": {}}]})
        path += "/a"
    lines.append({"end": True, "patches": len(lines), "error": None})
    return "".join(json.dumps(line) + "\n" for line in lines)


class TestHardening:
    def test_redact_masks_the_targets_error_in_the_end_record_and_on_stderr(
        self, project: Path
    ) -> None:
        """With --redact, a secret in the target's exception message is written nowhere."""
        done = run_cli("record", "l.jsonl", "--target", "targets:leaks", "--redact", cwd=project)
        assert done.returncode == 1
        end = read_jsonl(project / "l.jsonl").end
        assert end is not None and end.error is not None
        assert end.error.startswith("ValueError: the key ")
        for text in (end.error, done.stderr, (project / "l.jsonl").read_text()):
            assert "abcdefghijklmnop" not in text
        plain = run_cli("record", "l.jsonl", "--target", "targets:leaks", cwd=project)
        assert "abcdefghijklmnop" in plain.stderr  # without --redact the message is whole

    def test_an_error_whose_str_raises_is_still_recorded(self, project: Path) -> None:
        """An exception whose __str__ raises gives one line, exit 1 and an end record."""
        done = run_cli("record", "u.jsonl", "--target", "targets:unprintable", cwd=project)
        assert done.returncode == 1
        assert done.stderr == (
            "logstream: error: the target raised Unprintable: <str() raised RuntimeError> "
            "(1 patch in u.jsonl)\n"
        )
        end = read_jsonl(project / "u.jsonl").end
        assert end is not None and end.error == "Unprintable: <str() raised RuntimeError>"

    @pytest.mark.parametrize(
        ("target", "error"),
        [("stops", "StopIteration: nothing left"), ("generator_exit", "GeneratorExit")],
    )
    def test_stop_iteration_and_generator_exit_are_named_as_raised(
        self, project: Path, target: str, error: str
    ) -> None:
        """StopIteration is not renamed RuntimeError; an empty message adds no stray text."""
        done = run_cli("record", "s.jsonl", "--target", f"targets:{target}", cwd=project)
        assert done.returncode == 1
        assert done.stderr == (
            f"logstream: error: the target raised {error} (1 patch in s.jsonl)\n"
        )
        end = read_jsonl(project / "s.jsonl").end
        assert end is not None and end.error == error

    def test_replay_json_of_a_very_deep_state_is_one_line(self, project: Path) -> None:
        """A state built deep from shallow lines prints, or gives a one-line error; no traceback.

        Which one depends on the Python: 3.9-3.12's json module refuses 3,000 levels,
        3.13's prints them.
        """
        (project / "deep.jsonl").write_text(deep_recording(3000))
        done = run_cli("replay", "deep.jsonl", "--json", cwd=project)
        if done.returncode == 0:  # a Python whose json module takes this depth prints it
            assert done.stderr == ""
            assert done.stdout.count("{") == done.stdout.count("}") > 3000
        else:
            assert done.returncode == 1
            assert done.stderr == (
                "logstream: error: deep.jsonl: the final state is nested too deeply to print "
                "as JSON; replay without --json prints its run tree\n"
            )
        assert "Traceback" not in done.stderr
        assert run_cli("replay", "deep.jsonl", cwd=project).returncode == 0

    def test_replay_of_an_endless_line_stops_at_the_line_limit(self, project: Path) -> None:
        """/dev/zero (one endless line) ends with a one-line error naming line 1."""
        for extra in ([], ["--follow"]):
            done = run_cli("replay", "/dev/zero", "--max-line-bytes", "100000", *extra, cwd=project)
            assert done.returncode == 1
            assert done.stderr == (
                "logstream: error: /dev/zero:1: the line is longer than max_line_bytes "
                "(100000 bytes); a recording this large needs a higher limit "
                "(--max-line-bytes)\n"
            )

    def test_max_line_bytes_must_be_positive(self, project: Path) -> None:
        """--max-line-bytes 0 is an argument error."""
        done = run_cli("replay", "x.jsonl", "--max-line-bytes", "0", cwd=project)
        assert done.returncode == 2
        assert "--max-line-bytes must be a positive number" in done.stderr

    def test_timeout_is_refused_for_a_fifo(self, project: Path) -> None:
        """replay FIFO --follow --timeout returns at once with exit 2, not waiting for a writer."""
        os.mkfifo(project / "pipe")
        done = run_cli("replay", "pipe", "--follow", "--timeout", "2", cwd=project)
        assert done.returncode == 2
        assert "--timeout does not apply to a FIFO" in done.stderr
