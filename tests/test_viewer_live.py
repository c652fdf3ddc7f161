"""The live viewer (``logstream serve``): the page follows a run over SSE, in headless Chromium.

A producer thread writes a recording line by line, slowly; the server follows the file into
a PositionedLog and serves the page and the stream under a real uvicorn.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import httpx
import pytest
from viewer_support import (  # the browser and watch fixtures are in conftest.py
    HOSTILE,
    PageWatch,
    artifacts_dir,
    hostile_recording,
    record,
    showcase_agent,
)

from logstream import PositionedLog, read_jsonl
from logstream._cli import main
from logstream._demo import demo_patches
from logstream._serve import follow_into, viewer_app

try:
    from test_redis import redis_url  # the fixture: a redis-server
except (ImportError, pytest.skip.Exception):  # no redis package (the test extra has it)

    @pytest.fixture
    def redis_url() -> str:
        pytest.skip("the redis package is not installed (pip install -e '.[test]')")


uvicorn = pytest.importorskip("uvicorn")
from tests import server_helpers  # noqa: E402
from tests.server_helpers import free_socket  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 30.0


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("live") / "run.jsonl"
    return record(showcase_agent, "weather in Paris?", path, name="agent")


@contextlib.contextmanager
def serving(app: Any, port: int = 0) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yield its page's URL."""
    with server_helpers.serving(app, port, grace=1) as base:
        yield f"{base}/"


class Producer:
    """Writes a recording's lines into a file, one every ``delay`` seconds, in a thread."""

    def __init__(self, source: Path, target: Path, delay: float) -> None:
        self.lines = source.read_text("utf-8").splitlines(keepends=True)
        self.target = target
        self.delay = delay
        self.written = 0
        self.gate = threading.Event()  # cleared: the producer pauses
        self.gate.set()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with open(self.target, "a", encoding="utf-8") as out:
            for line in self.lines:
                self.gate.wait(TIMEOUT)
                time.sleep(self.delay)
                out.write(line)
                out.flush()
                self.written += 1

    def start(self) -> Producer:
        self.thread.start()
        return self

    def join(self) -> None:
        self.thread.join(TIMEOUT)


def wait_until(check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@contextlib.contextmanager
def live_run(tmp_path: Path, showcase: Path) -> Iterator[tuple[str, PositionedLog, Producer]]:
    """Serve an empty, growing file; yield the URL, the log and a not yet started producer."""
    growing = tmp_path / "growing.jsonl"
    growing.write_text("", "utf-8")
    log = PositionedLog("run")
    follow_into(log, str(growing), poll_interval=0.02)
    producer = Producer(showcase, growing, delay=0.04)
    with serving(viewer_app(log, title="growing.jsonl", keep_alive=1.0)) as url:
        yield url, log, producer
    producer.gate.set()
    producer.join()


def whole_replaces(recording: Any) -> int:
    """How many patches replace the whole state (the page counts them as snapshots)."""
    return sum(
        1
        for p in recording.patches
        if len(p.ops) == 1 and p.ops[0]["op"] == "replace" and not p.ops[0]["path"]
    )


def state_of(watch: PageWatch) -> Any:
    return watch.page.evaluate("window.__logstream.state()")


def ended(watch: PageWatch) -> bool:
    return bool(watch.page.evaluate("window.__logstream.ended()"))


class TestLive:
    def test_page_grows_as_patches_arrive(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """Rows appear while the run is written, and the final state is the recording's."""
        expected = read_jsonl(str(showcase))
        with live_run(tmp_path, showcase) as (url, _log, producer):
            watch.page.goto(url)
            watch.page.wait_for_selector("#live-status[data-state='live']")
            producer.start()
            counts = []
            while not ended(watch):
                counts.append(watch.page.evaluate("window.__logstream.rows()"))
                if len(counts) == 20:
                    watch.page.screenshot(path=str(artifacts_dir() / "viewer-live-running.png"))
                assert len(counts) < 2000, "the page never saw the end"
                time.sleep(0.05)
            watch.page.wait_for_function("window.__logstream.rows() > 0")
            assert len(set(counts)) >= 4  # grew step by step, not all at once
            assert counts == sorted(counts)
            assert state_of(watch) == expected.state
            rows = watch.page.evaluate("window.__logstream.rows()")
            assert rows == 1 + len(expected.state["logs"])
            watch.page.wait_for_function("document.querySelectorAll('#rows > .row').length > 1")
            assert watch.page.text_content("#live-status") == "the run ended"
            watch.page.locator("#rows > .row", has_text="[model:2]").click()
            watch.page.screenshot(path=str(artifacts_dir() / "viewer-live.png"))
            assert watch.errors == []
            # live pages time tokens by arrival: milliseconds after the run started
            assert "ms after the run started" in watch.page.text_content("#detail")

    def test_catches_up_after_a_forced_disconnect(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """Closing the EventSource mid-run, then reopening, resumes after the last id: no gap."""
        expected = read_jsonl(str(showcase))
        total = len(expected.patches)
        with live_run(tmp_path, showcase) as (url, log, producer):
            watch.page.goto(url)
            watch.page.wait_for_selector("#live-status[data-state='live']")
            producer.start()
            wait_until(lambda: watch.page.evaluate("window.__logstream.patches()") > 6, "patches")
            producer.gate.clear()  # held while the page is cut off, so it can't finish first
            watch.page.evaluate("window.__logstream.disconnect()")
            seen = watch.page.evaluate("window.__logstream.patches()")
            assert seen - 1 < total - 5
            producer.gate.set()
            wait_until(lambda: log.position >= seen + 5, "the producer to go on")
            assert watch.page.evaluate("window.__logstream.patches()") == seen  # truly cut off
            watch.page.evaluate("window.__logstream.reconnect()")
            wait_until(lambda: ended(watch), "the end")
            assert state_of(watch) == expected.state
            # one snapshot (of the empty log, at position 0), then every patch exactly once
            assert watch.page.evaluate("window.__logstream.snapshots()") == 1 + whole_replaces(
                expected
            )
            assert watch.page.evaluate("window.__logstream.patches()") == total + 1
            assert watch.errors == []

    def test_catches_up_after_the_server_restarts(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """The server goes away mid-run and comes back: the page reconnects with its last id."""
        expected = read_jsonl(str(showcase))
        total = len(expected.patches)
        growing = tmp_path / "growing.jsonl"
        growing.write_text("", "utf-8")
        log = PositionedLog("run")
        follow_into(log, str(growing), poll_interval=0.02)
        producer = Producer(showcase, growing, delay=0.04)
        app = viewer_app(log, title="growing.jsonl", keep_alive=1.0, retry=200)
        with serving(app) as url:
            port = int(url.rsplit(":", 1)[1].strip("/"))
            watch.page.goto(url)
            watch.page.wait_for_selector("#live-status[data-state='live']")
            producer.start()
            wait_until(lambda: watch.page.evaluate("window.__logstream.patches()") > 6, "patches")
            producer.gate.clear()  # held while the server goes down
        seen = watch.page.evaluate("window.__logstream.patches()")
        assert seen - 1 < total - 5
        producer.gate.set()
        wait_until(lambda: log.position >= seen + 5, "the producer to go on")
        with serving(app, port):
            wait_until(lambda: ended(watch), "the end")
            assert state_of(watch) == expected.state
            assert watch.page.evaluate("window.__logstream.snapshots()") == 1 + whole_replaces(
                expected
            )
            assert watch.page.evaluate("window.__logstream.patches()") == total + 1
        producer.join()

    def test_reload_catches_up_from_a_snapshot(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """A reload mid-run starts from a snapshot of the state so far, then follows live."""
        expected = read_jsonl(str(showcase))
        with live_run(tmp_path, showcase) as (url, log, producer):
            watch.page.goto(url)
            producer.start()
            wait_until(lambda: log.position > 8, "patches")
            watch.page.reload()
            watch.page.wait_for_selector("html[data-ready]")
            wait_until(lambda: ended(watch), "the end")
            assert state_of(watch) == expected.state
            assert watch.page.evaluate("window.__logstream.snapshots()") == 1
            assert watch.page.evaluate("window.__logstream.patches()") < len(expected.patches)

    def test_the_demo_agent_live(self, watch: PageWatch) -> None:
        """The demo agent pumped into a served log: the page ends with the demo's runs, nested."""
        log = PositionedLog("run")
        with serving(viewer_app(log, title="the demo agent")) as url:
            watch.page.goto(url)
            watch.page.wait_for_selector("#live-status[data-state='live']")
            log.pump(demo_patches(delay=0.02, entry_fields=["parent_ids", "error"]))
            wait_until(lambda: ended(watch), "the end")
            state = log.snapshot().ops[0]["value"]
            assert state_of(watch) == state
            labels = watch.page.locator("#rows > .row .label").all_text_contents()
            assert labels == ["agent", *[entry["name"] for entry in state["logs"].values()]]
            depths = watch.page.eval_on_selector_all(
                "#rows > .row", "rows => rows.map(r => r.dataset.depth)"
            )
            assert depths == ["0"] + ["1"] * len(state["logs"])
            watch.page.locator("#rows > .row", has_text="[model:2]").click()
            watch.page.screenshot(path=str(artifacts_dir() / "viewer-demo-live.png"))
            assert watch.errors == []

    def test_a_refused_resume_id_starts_over_from_a_snapshot(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """A resume id of another run gets an error frame; the page resyncs from a snapshot."""
        expected = read_jsonl(str(showcase))
        with live_run(tmp_path, showcase) as (url, log, producer):
            watch.page.goto(url)
            watch.page.wait_for_selector("#live-status[data-state='live']")
            producer.start()
            wait_until(lambda: log.position > 6, "patches")
            watch.page.evaluate("window.__logstream.reconnect('another-run:3')")
            wait_until(lambda: ended(watch), "the end")
            assert state_of(watch) == expected.state
            assert watch.page.evaluate("window.__logstream.snapshots()") == 2 + whole_replaces(
                expected
            )
            assert watch.errors == []

    def test_hostile_values_stay_inert_live(self, watch: PageWatch, tmp_path: Path) -> None:
        """Markup arriving over the stream is shown as text too: nothing runs, no dialog."""
        evil = hostile_recording(tmp_path / "evil.jsonl")
        log = PositionedLog("run")
        follow_into(log, str(evil))
        with serving(viewer_app(log, title=HOSTILE[1])) as url:
            watch.page.goto(url)
            wait_until(lambda: ended(watch), "the end")
            for i in range(watch.page.evaluate("window.__logstream.rows()")):
                watch.page.click(f".row[data-index='{i}']")
            assert watch.page.evaluate("typeof window.__pwned") == "undefined"
            assert watch.dialogs == []
            assert watch.page.evaluate("document.querySelectorAll('img, svg, iframe').length") == 0
            labels = watch.page.locator("#rows > .row .label").all_text_contents()
            assert labels[1 : 1 + len(HOSTILE)] == HOSTILE
            assert watch.page.text_content("#run-title") == HOSTILE[1]


class TestFollowInto:
    def test_a_bad_line_ends_the_served_run_with_the_error(self, tmp_path: Path) -> None:
        """A followed file that turns bad ends the log with the LogFileError and reports it."""
        path = tmp_path / "bad.jsonl"
        path.write_text('{"ops":[{"op":"replace","path":"","value":{}}]}\n{"ops": [}\n', "utf-8")
        log = PositionedLog("run")
        said: list[str] = []
        follow_into(log, str(path), poll_interval=0.01, on_error=said.append).join(TIMEOUT)
        end = log.end_record()
        assert end is not None and end.position == 1
        assert end.error is not None and end.error.startswith("LogFileError: ")
        assert "bad.jsonl:2: not valid JSON" in end.error
        assert said == [end.error]

    def test_the_end_record_ends_the_served_run_with_its_error(self, tmp_path: Path) -> None:
        """The recording's end record (with the traced code's error) ends the log the same way."""
        path = tmp_path / "run.jsonl"
        path.write_text(
            '{"ops":[{"op":"replace","path":"","value":{}}]}\n'
            '{"end":true,"patches":1,"error":"ValueError: boom"}\n',
            "utf-8",
        )
        log = PositionedLog("run")
        follow_into(log, str(path), poll_interval=0.01).join(TIMEOUT)
        assert log.end_record() == (log.log_id, 1, "ValueError: boom")


class TestServeCommand:
    def test_serve_a_recording_from_the_command_line(
        self, watch: PageWatch, showcase: Path
    ) -> None:
        """logstream serve FILE prints its URL, serves the page of the run, stops on Ctrl-C."""
        process = subprocess.Popen(
            [sys.executable, "-m", "logstream", "serve", str(showcase), "--port", "0"],
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert line.startswith("serving ") and "http://127.0.0.1:" in line
            url = line.split(" at ", 1)[1].split(" ", 1)[0]
            watch.page.goto(url)
            wait_until(lambda: ended(watch), "the end")
            recording = read_jsonl(str(showcase))
            assert state_of(watch) == recording.state
            assert watch.page.locator("#rows > .row[data-status='error']").count() == 1
            # It joined after the end (one snapshot frame) and still counts the run's patches.
            summary = watch.page.locator("#summary").text_content() or ""
            assert f"{len(recording.patches)} patches" in summary, summary
        finally:
            process.send_signal(signal.SIGINT)
            status = process.wait(TIMEOUT)
        assert status == 130

    def test_serve_a_target_nests_its_runs_and_marks_failures(
        self, watch: PageWatch, tmp_path: Path
    ) -> None:
        """serve --target runs it with parent_ids and error on: the page nests and marks them."""
        (tmp_path / "served_target.py").write_text(
            "import time\n"
            "from logstream import trace\n"
            "def run(question):\n"
            "    with trace('plan', run_type='chain'):\n"
            "        with trace('lookup', run_type='tool'):\n"
            "            time.sleep(0.05)\n"
            "    try:\n"
            "        with trace('broken', run_type='tool'):\n"
            "            raise KeyError(question)\n"
            "    except KeyError:\n"
            "        pass\n"
            "    return 'ok'\n",
            "utf-8",
        )
        command = [sys.executable, "-m", "logstream", "serve", "--port", "0"]
        command += ["--target", "served_target:run", "--input", '"why"']
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert "served_target:run" in line
            watch.page.goto(line.split(" at ", 1)[1].split(" ", 1)[0])
            wait_until(lambda: ended(watch), "the end")
            rows = watch.page.locator("#rows > .row")
            depths = {
                rows.nth(i).locator(".label").text_content(): rows.nth(i).get_attribute(
                    "data-depth"
                )
                for i in range(rows.count())
            }
            assert depths == {"run": "0", "plan": "1", "lookup": "2", "broken": "1"}
            failed = watch.page.locator("#rows > .row[data-status='error']")
            assert failed.locator(".err").text_content() == "\u2716 KeyError: 'why'"
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(TIMEOUT)

    def test_a_restarted_target_is_a_new_log_and_refuses_the_old_resume_id(
        self, tmp_path: Path
    ) -> None:
        """Each serve --target start is a new run with its own log id: an old id is foreign."""
        (tmp_path / "quick_target.py").write_text("def run(q):\n    return q\n", "utf-8")
        command = [sys.executable, "-m", "logstream", "serve", "--port", "0"]
        command += ["--target", "quick_target:run", "--input", '"hi"']
        first_ids: list[str] = []
        for attempt in range(2):
            process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
            try:
                assert process.stderr is not None
                url = process.stderr.readline().split(" at ", 1)[1].split(" ", 1)[0].rstrip("/")
                headers = {"Last-Event-ID": first_ids[0]} if attempt else {}
                with httpx.stream(
                    "GET", f"{url}/runs/run/stream", headers=headers, timeout=TIMEOUT
                ) as response:
                    text = "".join(response.iter_text())
                ids = [line[4:] for line in text.splitlines() if line.startswith("id: ")]
                if attempt == 0:
                    assert ids and "event: end" in text
                    first_ids.append(ids[0])
                else:
                    assert "event: error" in text and "event: data" not in text
                    assert "foreign" in text.lower() or "another" in text.lower(), text
            finally:
                process.send_signal(signal.SIGINT)
                process.wait(TIMEOUT)

    def test_file_and_target_together_are_refused(self, showcase: Path, capsys: Any) -> None:
        """serve with both a file and --target is a usage error, exit 2."""
        assert main(["serve", str(showcase), "--target", "os:getcwd"]) == 2
        assert "not FILE.jsonl and --target" in capsys.readouterr().err

    def test_serve_a_run_from_redis(self, watch: PageWatch, showcase: Path, redis_url: str) -> None:
        """serve --redis follows a run another writer appends with RedisSink, to its end."""
        from logstream.redis import RedisSink

        expected = read_jsonl(str(showcase))
        log_id = "viewer-" + uuid.uuid4().hex
        sink = RedisSink(redis_url, log_id)
        sink.write(expected.patches[0])
        sink.flush()
        command = [sys.executable, "-m", "logstream", "serve", "--port", "0"]
        command += ["--redis", redis_url, "--log-id", log_id]
        process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            assert process.stderr is not None
            line = process.stderr.readline()
            assert log_id in line, line
            watch.page.goto(line.split(" at ", 1)[1].split(" ", 1)[0])
            watch.page.wait_for_selector("#live-status[data-state='live']")
            for patch in expected.patches[1:]:
                time.sleep(0.01)
                sink.write(patch)
            sink.end()
            wait_until(lambda: ended(watch), "the end")
            assert state_of(watch) == expected.state
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(TIMEOUT)

    def test_redis_that_cannot_be_reached_is_one_line(self, capsys: Any) -> None:
        """serve --redis with nothing listening is one line naming the URL, exit 1."""
        pytest.importorskip("redis")
        with contextlib.closing(free_socket()) as sock:  # bound, never listening
            url = f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
            assert main(["serve", "--redis", url, "--log-id", "x"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"can't read x from {url}" in err

    def test_without_uvicorn_the_error_says_what_to_install(
        self, showcase: Path, capsys: Any, monkeypatch: Any
    ) -> None:
        """serve without uvicorn installed is one line naming the serve extra, exit 1."""
        monkeypatch.setitem(sys.modules, "uvicorn", None)
        assert main(["serve", str(showcase)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "logstream[serve]" in err


def serve_briefly(argv: list[str]) -> int:
    """Run ``logstream serve`` in a thread; fail (not hang) if it is still serving after a while."""
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(status=main(argv)), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), f"logstream {' '.join(argv)} kept serving"
    return int(box["status"])


def serve_process(argv: list[str], cwd: Path) -> subprocess.Popen[str]:
    """Start ``logstream serve ARGV --port 0`` in a process whose stderr the test reads."""
    command = [sys.executable, "-m", "logstream", "serve", "--port", "0", *argv]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True, cwd=cwd)


def stays_up_then_stops(process: subprocess.Popen[str], seconds: float) -> int:
    """Check ``process`` still serves after ``seconds``, then stop it with Ctrl-C."""
    try:
        time.sleep(seconds)
        assert process.poll() is None, "serve gave up although the run appeared"
    finally:
        process.send_signal(signal.SIGINT)
        status = process.wait(TIMEOUT)
    return status


class TestServeWaits:
    def test_a_directory_is_refused_before_serving(self, tmp_path: Path, capsys: Any) -> None:
        """serve DIR is one line naming the directory and exit 1, and nothing is served."""
        assert serve_briefly(["serve", str(tmp_path), "--port", "0"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"can't read {tmp_path}: " in err, err

    def test_a_missing_file_is_waited_for_then_given_up(self, tmp_path: Path, capsys: Any) -> None:
        """serve of a file not there yet says it waits; --timeout ends it with one line, exit 1."""
        missing = tmp_path / "later.jsonl"
        argv = ["serve", str(missing), "--port", "0", "--timeout", "0.3"]
        assert serve_briefly(argv) == 1
        lines = capsys.readouterr().err.splitlines()
        assert lines[0].startswith("serving ")
        assert lines[1] == f"logstream: waiting for {missing} to appear (no such file yet)"
        assert lines[2] == f"logstream: error: {missing} did not appear within 0.3s"
        assert len(lines) == 3

    def test_a_file_that_appears_in_time_is_served(self, tmp_path: Path, showcase: Path) -> None:
        """serve --timeout of a file that appears within it goes on serving past the timeout."""
        path = tmp_path / "later.jsonl"
        process = serve_process([str(path), "--timeout", "1.5"], tmp_path)
        assert process.stderr is not None
        base = process.stderr.readline().split(" at ", 1)[1].split(" ", 1)[0]
        assert "waiting for" in process.stderr.readline()
        assert "(no such file yet)" in httpx.get(base).text  # the page says it too
        path.write_bytes(showcase.read_bytes())
        wait_until(
            lambda: httpx.get(f"{base}runs/run/state").json()["ended"], "the served run's end"
        )
        assert "(no such file yet)" not in httpx.get(base).text
        assert stays_up_then_stops(process, 2.0) == 130

    def test_a_missing_redis_log_is_waited_for_then_given_up(
        self, redis_url: str, capsys: Any
    ) -> None:
        """serve --redis of a log no sink wrote says it waits; --timeout ends it, exit 1."""
        log_id = "absent-" + uuid.uuid4().hex
        argv = ["serve", "--redis", redis_url, "--log-id", log_id, "--port", "0"]
        assert serve_briefly([*argv, "--timeout", "0.3"]) == 1
        lines = capsys.readouterr().err.splitlines()
        assert lines[0].startswith("serving ")
        assert lines[1] == f"logstream: waiting for log {log_id} on {redis_url} (no such log yet)"
        assert lines[2] == f"logstream: error: no log {log_id} on {redis_url} after 0.3s"
        assert len(lines) == 3

    def test_a_redis_log_that_appears_in_time_is_served(
        self, redis_url: str, showcase: Path, tmp_path: Path
    ) -> None:
        """serve --redis --timeout of a log a sink starts within it serves that run to its end."""
        from logstream.redis import RedisSink

        log_id = "later-" + uuid.uuid4().hex
        argv = ["--redis", redis_url, "--log-id", log_id, "--timeout", "1.5"]
        process = serve_process(argv, ROOT)
        assert process.stderr is not None
        base = process.stderr.readline().split(" at ", 1)[1].split(" ", 1)[0]
        assert "waiting for log" in process.stderr.readline()
        assert "(no such log yet)" in httpx.get(base).text  # the page says it too
        expected = read_jsonl(str(showcase))
        with RedisSink(redis_url, log_id) as sink:
            sink.consume(expected.patches)
        wait_until(
            lambda: httpx.get(f"{base}runs/run/state").json()["ended"], "the served run's end"
        )
        assert httpx.get(f"{base}runs/run/state").json()["state"] == expected.state
        assert "(no such log yet)" not in httpx.get(base).text
        assert stays_up_then_stops(process, 2.0) == 130

    @pytest.mark.parametrize(
        ("argv", "says"),
        [
            (["--timeout", "1"], "--timeout applies to FILE.jsonl or --redis"),
            (["x.jsonl", "--timeout", "0"], "--timeout must be a positive number"),
        ],
    )
    def test_bad_timeouts_are_usage_errors(self, argv: list[str], says: str, capsys: Any) -> None:
        """--timeout without something to wait for, or not > 0, is exit 2 with one line."""
        assert serve_briefly(["serve", "--port", "0", *argv]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, err

    def test_the_page_says_it_waits_until_the_run_appears(self, watch: PageWatch) -> None:
        """A page opened while serve waits for the run shows the wait, then goes live."""
        log = PositionedLog("run")
        note: dict[str, Any] = {"text": "waiting for later.jsonl to appear (no such file yet)"}
        app = viewer_app(log, title="later.jsonl", waiting=lambda: note["text"])
        with serving(app) as url:
            watch.page.goto(url)
            watch.page.wait_for_selector("#live-status[data-state='waiting']")
            assert watch.page.text_content("#live-status") == note["text"]
            note["text"] = None  # the run appeared
            patches = demo_patches(delay=0.0, entry_fields=["parent_ids", "error"])
            log.append(next(patches))
            watch.page.wait_for_selector("#live-status[data-state='live']")
            log.pump(patches)
            wait_until(lambda: ended(watch), "the end")
            assert watch.page.text_content("#live-status") == "the run ended"
            watch.page.goto(url)  # a page opened after it appeared does not say it waits
            wait_until(lambda: ended(watch), "the end, reloaded")
            assert watch.errors == []
