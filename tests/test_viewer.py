"""The static viewer (``logstream view``): the page, checked in headless Chromium."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from hypothesis import given
from hypothesis import strategies as st
from viewer_support import (  # the browser and watch fixtures are in conftest.py
    HOSTILE,
    PageWatch,
    artifacts_dir,
    hostile_recording,
    many_runs,
    record,
    recording_lines,
    showcase_agent,
)

from logstream import JsonLinesSink, LogFileError, read_jsonl
from logstream._cli import main
from logstream._viewer import page_html, script_json

ROOT = Path(__file__).resolve().parent.parent


def view(recording: Path, out: Path) -> Path:
    """Run ``logstream view`` in-process and return the page's path."""
    assert main(["view", str(recording), "-o", str(out)]) == 0
    return out


def expected_depths(path: Path) -> dict[str, int]:
    """Depth of each log key by parent_ids (nearest logged ancestor), computed here in Python."""
    state = read_jsonl(str(path), require_end=False).state
    logs = state["logs"]
    by_id = {entry["id"]: key for key, entry in logs.items()}
    depth: dict[str, int] = {}
    for key, entry in logs.items():  # parents start (and are added) before their children
        parent = next((by_id[i] for i in reversed(entry.get("parent_ids", [])) if i in by_id), None)
        depth[key] = 1 if parent is None else depth[parent] + 1
    return depth


@pytest.fixture(scope="module")
def showcase(tmp_path_factory: Any) -> Path:
    path = tmp_path_factory.mktemp("v") / "run.jsonl"
    return record(showcase_agent, "weather in Paris?", path, name="agent")


class TestDemo:
    def test_demo_recording_has_a_row_per_run_flat_in_start_order(
        self, watch: PageWatch, tmp_path: Path
    ) -> None:
        """The demo recording (no parent_ids) shows the root and each run, flat, in start order."""
        recording = tmp_path / "demo.jsonl"
        assert main(["record", str(recording)]) == 0
        watch.open(view(recording, tmp_path / "demo.html"))
        logs = read_jsonl(str(recording)).state["logs"]
        rows = watch.rows()
        assert rows.count() == 1 + len(logs)
        labels = rows.locator(".name .label").all_text_contents()
        assert labels == ["agent", *[entry["name"] for entry in logs.values()]]
        depths = [rows.nth(i).get_attribute("data-depth") for i in range(rows.count())]
        assert depths == ["0"] + ["1"] * len(logs)
        types = rows.locator(".type .badge").all_text_contents()
        assert types == ["chain", *[entry["type"] for entry in logs.values()]]
        watch.page.click(".row[data-index='1']")
        watch.page.screenshot(path=str(artifacts_dir() / "viewer-demo-static.png"))
        assert watch.errors == []


class TestShowcase:
    def test_rows_nest_by_parent_ids(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """Each run sits under its nearest logged ancestor: data-depth matches parent_ids."""
        watch.open(view(showcase, tmp_path / "run.html"))
        depths = expected_depths(showcase)
        rows = watch.rows()
        assert rows.count() == 1 + len(depths)
        shown = {}
        for i in range(1, rows.count()):
            label = rows.nth(i).locator(".name .label").text_content()
            key = rows.nth(i).locator(".name .key")
            name = key.text_content()[1:-1] if key.count() else label
            shown[name] = int(rows.nth(i).get_attribute("data-depth"))
        assert shown == depths
        assert max(depths.values()) == 2  # the fixture nests: planner > model

    def test_children_follow_their_parent(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """Rows are depth-first: a row's depth is at most one more than the row above it."""
        watch.open(view(showcase, tmp_path / "run.html"))
        depths = watch.page.eval_on_selector_all(
            "#rows > .row", "rows => rows.map(r => +r.dataset.depth)"
        )
        assert all(b <= a + 1 for a, b in zip(depths, depths[1:]))

    def test_failed_run_is_marked_with_its_error(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """The tool that raised has the error status, marker and its message; others do not."""
        watch.open(view(showcase, tmp_path / "run.html"))
        failed = watch.page.locator("#rows > .row[data-status='error']")
        assert failed.count() == 1
        assert failed.locator(".name .label").text_content() == "convert_units"
        assert "\u2716" in failed.locator(".status").text_content()
        error = failed.locator(".sub .err").text_content()
        assert "ValueError: could not convert string to float: '18C'" in error
        assert "1 failed" in watch.page.text_content("#summary")

    def test_streamed_tokens_are_shown_in_order_with_their_place(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """A streaming run shows its text, ticks on its bar, and each token in the detail pane."""
        watch.open(view(showcase, tmp_path / "run.html"))
        logs = read_jsonl(str(showcase)).state["logs"]
        tokens = logs["model:2"]["streamed_output_str"]
        row = watch.page.locator("#rows > .row", has_text="[model:2]")
        assert row.locator(".sub .stream").text_content() == "".join(tokens)
        assert row.locator(".tick").count() == len(tokens)
        row.click()
        shown = watch.page.locator("#detail .token")
        assert shown.count() == len(tokens)
        whens = [int(w[1:]) for w in watch.page.locator("#detail .token .when").all_text_contents()]
        assert whens == sorted(whens) and whens[0] >= 1  # patch numbers after the run's start
        texts = watch.page.eval_on_selector_all(
            "#detail .token", "els => els.map(e => e.firstChild.textContent)"
        )
        assert texts == tokens

    def test_detail_pane_shows_inputs_outputs_tags_metadata(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """Clicking a row shows that run's inputs, outputs, tags and metadata as JSON text."""
        watch.open(view(showcase, tmp_path / "run.html"))
        entry = read_jsonl(str(showcase)).state["logs"]["search"]
        watch.page.locator("#rows > .row", has_text="search").click()
        detail = watch.page.locator("#detail")
        assert detail.locator("h2").text_content() == "search"
        sections = detail.locator("h3").all_text_contents()
        assert sections == ["inputs", "outputs", "tags", "metadata"]
        pres = detail.locator("pre").all_text_contents()
        assert json.loads(pres[0]) == entry["inputs"]
        assert json.loads(pres[1]) == entry["final_output"]
        assert json.loads(pres[2]) == entry["tags"]
        assert json.loads(pres[3]) == entry["metadata"]
        assert watch.page.locator(".row.selected").count() == 1

    def test_bars_share_one_time_axis(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """A run that started later has its bar further right; the root spans the axis."""
        watch.open(view(showcase, tmp_path / "run.html"))
        lefts = watch.page.eval_on_selector_all(
            "#rows > .row .bar", "bars => bars.map(b => parseFloat(b.style.left))"
        )
        assert lefts[0] == 0
        logs = read_jsonl(str(showcase)).state["logs"]
        first = watch.page.locator("#rows > .row", has_text="planner").locator(".bar")
        last = watch.page.locator("#rows > .row", has_text="[model:2]").locator(".bar")
        assert float(first.evaluate("b => parseFloat(b.style.left)")) < float(
            last.evaluate("b => parseFloat(b.style.left)")
        )
        assert len(lefts) == 1 + len(logs)

    def test_screenshot_for_the_readme(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """The showcase page renders without script errors; its screenshot is saved."""
        watch.open(view(showcase, tmp_path / "run.html"))
        watch.page.locator("#rows > .row", has_text="[model:2]").click()
        watch.page.screenshot(path=str(artifacts_dir() / "viewer-static.png"))
        assert watch.errors == []


class TestTimestamps:
    def test_sink_writes_the_time_of_each_patch_and_the_reader_returns_it(self) -> None:
        """With timestamps=True each patch line has its write time; read_jsonl returns them."""
        out = io.StringIO()
        before = time.time()
        with JsonLinesSink(out, timestamps=True) as sink:
            sink.write([{"op": "replace", "path": "", "value": {"logs": {}}}])
            sink.write([{"op": "add", "path": "/x", "value": 1}])
        after = time.time()
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [sorted(line) for line in lines] == [
            ["ops", "time"],
            ["ops", "time"],
            ["end", "error", "patches"],
        ]
        times = read_jsonl(io.StringIO(out.getvalue())).times
        assert times == (lines[0]["time"], lines[1]["time"])
        assert before - 1e-6 <= times[0] <= times[1] <= after + 1e-6

    def test_without_timestamps_lines_have_no_time(self) -> None:
        """By default the lines are unchanged and every time reads as None."""
        out = io.StringIO()
        with JsonLinesSink(out) as sink:
            sink.write([{"op": "replace", "path": "", "value": {"logs": {}}}])
        assert '"time"' not in out.getvalue()
        assert read_jsonl(io.StringIO(out.getvalue())).times == (None,)

    @pytest.mark.parametrize("bad", ['"noon"', "-1", "true", "[1]", "1" + "0" * 400])
    def test_a_time_that_is_not_epoch_seconds_is_refused(self, bad: str) -> None:
        """A "time" that is not a non-negative number is a LogFileError naming the line."""
        text = '{"ops":[{"op":"replace","path":"","value":{}}],"time":' + bad + "}\n"
        with pytest.raises(LogFileError, match=r'<stream>:1: "time" must be a number'):
            read_jsonl(io.StringIO(text), require_end=False)

    def test_page_shows_token_times_from_the_recording(
        self, watch: PageWatch, tmp_path: Path
    ) -> None:
        """A recording with times shows each token's milliseconds after its run started."""
        path = tmp_path / "run.jsonl"
        record(showcase_agent, "weather in Paris?", path, timestamps=True, name="agent")
        watch.open(view(path, tmp_path / "run.html"))
        watch.page.locator("#rows > .row", has_text="[model:2]").click()
        assert "ms after the run started" in watch.page.text_content("#detail h3")
        whens = watch.page.locator("#detail .token .when").all_text_contents()
        millis = [float(w.strip("+ ms")) for w in whens]
        assert len(millis) == 9 and millis == sorted(millis)
        assert millis[-1] - millis[0] >= 8 * 3.5  # the agent sleeps 4 ms before each token
        watch.page.screenshot(path=str(artifacts_dir() / "viewer-static-timed.png"))


class TestCutShort:
    def test_recording_without_end_shows_unfinished_runs(
        self, watch: PageWatch, showcase: Path, tmp_path: Path
    ) -> None:
        """A recording cut in the middle shows its open runs as unfinished, and says so."""
        lines = showcase.read_text("utf-8").splitlines(keepends=True)
        records = recording_lines(showcase)
        cut = next(i for i, r in enumerate(records) if "get_weather" in json.dumps(r)) + 1
        short = tmp_path / "short.jsonl"
        short.write_text("".join(lines[:cut]), "utf-8")
        watch.open(view(short, tmp_path / "short.html"))
        state = read_jsonl(str(short), require_end=False).state
        open_runs = {k for k, e in state["logs"].items() if e["end_time"] is None}
        assert open_runs == {"tools", "get_weather"}
        shown = watch.page.locator("#rows > .row[data-status='unfinished'] .name .label")
        assert set(shown.all_text_contents()) == {state["name"], *open_runs}
        assert "incomplete" in watch.page.text_content("#summary")

    @pytest.mark.parametrize("patches", [[], [[{"op": "replace", "path": "", "value": 5}]]])
    def test_an_end_with_an_error_is_said_even_without_a_run(
        self, watch: PageWatch, tmp_path: Path, patches: list[Any]
    ) -> None:
        """An end record's error shows in the summary when no patch, or no run state, came."""
        lines = [json.dumps({"ops": ops}) for ops in patches]
        lines.append(json.dumps({"end": True, "patches": len(patches), "error": "E: <b>"}))
        path = tmp_path / "failed.jsonl"
        path.write_text("\n".join(lines) + "\n", "utf-8")
        watch.open(view(path, tmp_path / "failed.html"))
        summary = watch.page.text_content("#summary") or ""
        assert "the run raised E: <b>" in summary and "complete" not in summary
        assert watch.page.get_attribute("#summary", "class") == "error"
        assert watch.errors == [] and watch.page.locator("#summary b").count() == 0


class TestHostile:
    def test_hostile_recording_renders_inert_and_literal(
        self, watch: PageWatch, tmp_path: Path
    ) -> None:
        """Markup in every field stays text: no script runs, no dialog, no element is injected."""
        page = watch.page
        watch.open(view(hostile_recording(tmp_path / "evil.jsonl"), tmp_path / "evil.html"))
        count = watch.rows().count()
        for i in range(count):  # every detail pane too
            page.click(f".row[data-index='{i}']")
        assert page.evaluate("typeof window.__pwned") == "undefined"
        assert page.evaluate("({}).polluted") is None
        assert watch.dialogs == []
        assert page.evaluate("document.querySelectorAll('img, svg, iframe').length") == 0
        assert page.evaluate("document.scripts.length") == 2  # the data and the page's script
        assert page.evaluate("document.querySelectorAll('[onerror], [onload], a').length") == 0
        labels = watch.rows().locator(".name .label").all_text_contents()
        assert labels[0] == HOSTILE[0]
        assert labels[1 : 1 + len(HOSTILE)] == HOSTILE
        assert watch.rows().count() == 1 + len(HOSTILE) + 3
        summary = page.text_content("#summary")
        assert HOSTILE[1] in summary
        page.click(".row[data-index='2']")
        assert HOSTILE[1] in page.text_content("#detail .error-text")
        assert json.loads(page.locator("#detail pre").nth(1).text_content())["html"] == HOSTILE

    def test_bidi_and_control_characters_are_shown_escaped(
        self, watch: PageWatch, tmp_path: Path
    ) -> None:
        """A name with U+202E or isolates is shown with the marks as visible escapes."""
        watch.open(view(hostile_recording(tmp_path / "evil.jsonl"), tmp_path / "evil.html"))
        labels = watch.rows().locator(".name .label").all_text_contents()
        assert "admin\\u202etxt.exe" in labels
        assert "\\u2066\\u2067x\\u2069" in labels
        text = watch.page.evaluate("document.body.innerText")
        assert "\u202e" not in text and "\u2066" not in text

    def test_a_value_cannot_end_the_data_element(self) -> None:
        """The embedded JSON has no '<', '>' or '&', so '</script>' in a value stays inside."""
        recording = read_jsonl(
            io.StringIO(
                json.dumps({"ops": [{"op": "replace", "path": "", "value": {"x": HOSTILE}}]}) + "\n"
            ),
            require_end=False,
        )
        page = page_html(recording)
        data = page.split('id="logstream-data">', 1)[1].split("</script>", 1)[0]
        assert json.loads(data)["patches"][0][0]["value"]["x"] == HOSTILE


class TestManyRuns:
    def test_five_thousand_runs_render_and_scroll(self, watch: PageWatch, tmp_path: Path) -> None:
        """A 5,000-run recording opens with every row laid out, drawing only those in view."""
        page_file = view(many_runs(tmp_path / "big.jsonl", 5000), tmp_path / "big.html")
        started = time.perf_counter()
        watch.open(page_file)
        opened = time.perf_counter() - started
        assert watch.page.evaluate("window.__logstream.rows()") == 5001
        drawn = watch.rows().count()
        assert 20 < drawn < 200  # virtualized: the rows in view and a margin
        height = watch.page.evaluate("document.getElementById('rows').offsetHeight")
        assert height >= 5001 * 27
        started = time.perf_counter()
        watch.page.evaluate(
            "() => { const w = document.getElementById('waterfall');"
            " w.scrollTop = w.scrollHeight; }"
        )
        last = watch.page.locator(".row[data-index='5000']")
        last.wait_for(state="visible")
        scrolled = time.perf_counter() - started
        indexes = watch.page.eval_on_selector_all(
            "#rows > .row", "rows => rows.map(r => +r.dataset.index)"
        )
        assert indexes == list(range(indexes[0], 5001))
        watch.page.evaluate("window.__logstream.scrollTo(2500)")
        middle = watch.page.locator(".row[data-index='2500']")
        assert middle.is_visible()
        assert middle.get_attribute("data-depth") == "2"  # step 2500 is a tool under a chain
        print(f"5,000 runs: opened in {opened:.2f} s, scrolled to the end in {scrolled:.2f} s")
        assert watch.errors == []


APPLY_CASES: list[tuple[Any, list[dict[str, Any]]]] = [
    ({"a": 1}, [{"op": "add", "path": "/b", "value": [1]}]),
    ({"a/b": {"~c": 1}}, [{"op": "replace", "path": "/a~1b/~0c", "value": 2}]),
    (
        {"l": [1, 2]},
        [{"op": "add", "path": "/l/-", "value": 3}, {"op": "add", "path": "/l/0", "value": 0}],
    ),
    ({"l": [1, 2, 3]}, [{"op": "remove", "path": "/l/1"}]),
    ({"a": {"x": 1}, "b": {}}, [{"op": "move", "from": "/a/x", "path": "/b/y"}]),
    (
        {"a": {"x": [1]}},
        [{"op": "copy", "from": "/a", "path": "/c"}, {"op": "add", "path": "/c/x/-", "value": 2}],
    ),
    ({"a": [1, {"b": None}]}, [{"op": "test", "path": "/a", "value": [1, {"b": None}]}]),
    ({"a": 1}, [{"op": "replace", "path": "", "value": {"z": []}}]),
    ({"": 1}, [{"op": "replace", "path": "/", "value": 2}]),
]


class TestPatchApplier:
    def test_page_applier_agrees_with_jsonpatch(self, watch: PageWatch, tmp_path: Path) -> None:
        """The page's JSON Patch applier builds what python-json-patch builds, case by case."""
        watch.page.set_content(page_html(None, title="t"))
        watch.page.wait_for_selector("html[data-ready]")
        for doc, ops in APPLY_CASES:
            expected = jsonpatch.apply_patch(doc, ops)
            got = watch.page.evaluate(
                "([doc, ops]) => window.__logstream.applyPatch(doc, ops)", [doc, ops]
            )
            assert got == expected, (doc, ops)

    def test_page_applier_refuses_what_jsonpatch_refuses(self, watch: PageWatch) -> None:
        """A failing test op, a missing member or an index past the end raise in the page too."""
        watch.page.set_content(page_html(None, title="t"))
        watch.page.wait_for_selector("html[data-ready]")
        bad = [
            ({"a": 1}, [{"op": "test", "path": "/a", "value": 2}]),
            ({"a": 1}, [{"op": "remove", "path": "/b"}]),
            ({"l": [1]}, [{"op": "add", "path": "/l/5", "value": 2}]),
            ({"a": 1}, [{"op": "replace", "path": "/b", "value": 2}]),
        ]
        for doc, ops in bad:
            with pytest.raises(jsonpatch.JsonPatchException):
                jsonpatch.apply_patch(doc, ops)
            raised = watch.page.evaluate(
                "([doc, ops]) => { try { window.__logstream.applyPatch(doc, ops); return false; }"
                " catch (e) { return true; } }",
                [doc, ops],
            )
            assert raised, (doc, ops)


class TestScriptJson:
    @given(
        st.recursive(
            st.text() | st.integers() | st.none(),
            lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        )
    )
    def test_script_json_round_trips_without_markup_characters(self, value: Any) -> None:
        """Any JSON value comes back equal, and the text has no '<', '>', '&' or line separators."""
        text = script_json(value)
        assert not set(text) & {"<", ">", "&", "\u2028", "\u2029"}
        assert json.loads(text) == value


class TestViewCommand:
    def test_corrupt_file_is_one_line_exit_1(self, tmp_path: Path) -> None:
        """view of a file that is not a recording: one error line, exit 1, nothing written."""
        bad = tmp_path / "bad.jsonl"
        bad.write_text('{"ops": [}\n', "utf-8")
        out = tmp_path / "bad.html"
        result = subprocess.run(
            [sys.executable, "-m", "logstream", "view", str(bad), "-o", str(out)],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1
        assert result.stderr.startswith("logstream: error: ") and "bad.jsonl:1" in result.stderr
        assert not out.exists()

    def test_default_output_name_and_stdout(self, tmp_path: Path, capsys: Any) -> None:
        """Without -o the page goes next to the recording; -o - writes it to stdout."""
        recording = tmp_path / "run.jsonl"
        assert main(["record", str(recording)]) == 0
        assert main(["view", str(recording)]) == 0
        assert (tmp_path / "run.html").read_text("utf-8").startswith("<!DOCTYPE html>")
        capsys.readouterr()
        assert main(["view", str(recording), "-o", "-"]) == 0
        page = capsys.readouterr().out
        assert page.startswith("<!DOCTYPE html>") and "http://" not in page.replace(
            "http-equiv", ""
        )

    def test_page_loads_nothing_from_the_network(self, tmp_path: Path) -> None:
        """The page has no src= or href= attributes and a CSP with default-src 'none'."""
        recording = tmp_path / "run.jsonl"
        assert main(["record", str(recording)]) == 0
        page = page_html(read_jsonl(str(recording)))
        assert " src=" not in page and " href=" not in page
        assert "default-src 'none'" in page
