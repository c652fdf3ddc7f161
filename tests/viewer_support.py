"""Shared by the viewer's browser tests and benchmark: Chromium, recordings, artifacts.

The browser is Debian's ``chromium`` driven by Playwright (never ``playwright install``).
Without it the tests skip with the reason, unless ``LOGSTREAM_REQUIRE_BROWSER=1`` (CI),
which makes a missing browser a failure.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logstream import JsonLinesSink, stream_log, trace

CHROMIUM = os.environ.get("LOGSTREAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch(playwright: Any) -> Any:
    """Launch the system Chromium, headless."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def browser_or_skip() -> Iterator[Any]:
    """Yield a launched browser; skip (or fail under LOGSTREAM_REQUIRE_BROWSER=1) without one."""
    required = os.environ.get("LOGSTREAM_REQUIRE_BROWSER") == "1"
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[test]')"
    if problem is None and not os.access(CHROMIUM, os.X_OK):
        problem = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    if problem is not None:
        if required:
            pytest.fail(f"LOGSTREAM_REQUIRE_BROWSER=1 but {problem}")
        pytest.skip(problem)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            yield browser
        finally:
            browser.close()


def artifacts_dir() -> Path:
    """Where screenshots go: $LOGSTREAM_ARTIFACTS, else a temporary directory."""
    where = os.environ.get("LOGSTREAM_ARTIFACTS") or os.path.join(
        tempfile.gettempdir(), "logstream-artifacts"
    )
    path = Path(where)
    path.mkdir(parents=True, exist_ok=True)
    return path


class PageWatch:
    """A page plus what it reported: console errors, page errors, dialogs."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        page.on(
            "console",
            lambda msg: self.errors.append(msg.text) if msg.type == "error" else None,
        )

        def dialog(d: Any) -> None:
            self.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)

    def open(self, path: Path) -> None:
        """Open a page file and wait until its script has drawn the runs."""
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_selector("html[data-ready]", timeout=20_000)

    def rows(self) -> Any:
        """The waterfall's rows."""
        return self.page.locator("#rows > .row")


# ---- recordings ---------------------------------------------------------------------------


def showcase_agent(question: str) -> str:
    """A small agent with nesting, streaming, a retriever, and a tool that fails."""
    with trace("planner", run_type="chain", tags=["step:plan"]):
        with trace("model", run_type="llm", inputs={"prompt": question}) as model:
            for token in ["Look", " up", " the", " forecast", ",", " then", " convert", "."]:
                time.sleep(0.004)
                model.token(token)
        with trace("search", run_type="retriever", inputs={"query": question}):
            time.sleep(0.02)
    with trace("tools", run_type="chain"):
        with trace("get_weather", run_type="tool", inputs={"city": "Paris"}):
            time.sleep(0.015)
        try:
            with trace("convert_units", run_type="tool", inputs={"celsius": "18C"}):
                time.sleep(0.006)
                float("18C")
        except ValueError:
            pass
    messages = [{"role": "user", "content": question}, {"role": "tool", "content": "18C"}]
    metadata = {"ls_model_name": "fake-chat"}
    with trace("model", run_type="chat_model", inputs=messages, metadata=metadata) as model:
        for token in ["It", "'s", " 18", "\u00b0C", " and", " sunny", " in", " Paris", "."]:
            time.sleep(0.004)
            model.token(token)
    return "It's 18\u00b0C and sunny in Paris."


def record(
    target: Any, value: Any, path: Path, *, timestamps: bool = False, **options: Any
) -> Path:
    """Record ``target(value)`` through stream_log into ``path`` (parent_ids and error on)."""
    options.setdefault("entry_fields", ["parent_ids", "error"])
    options.setdefault("schema_format", "streaming_events")  # entries carry inputs
    try:
        with JsonLinesSink(str(path), timestamps=timestamps) as sink:
            for patch in stream_log(target, value, **options):
                sink.write(patch)
    except Exception:
        pass
    return path


def recording_lines(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON Lines file."""
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def many_runs(path: Path, runs: int) -> Path:
    """Write a recording with ``runs`` logged runs (chains with tools under them, streamed
    tokens on every tenth), each started and ended by its own patch, straight as JSON Lines."""
    out = io.StringIO()
    sink = JsonLinesSink(out)
    root = "00000000-0000-0000-0000-000000000000"
    sink.write(
        [
            {
                "op": "replace",
                "path": "",
                "value": {
                    "id": root,
                    "streamed_output": [],
                    "final_output": None,
                    "logs": {},
                    "name": "batch",
                    "type": "chain",
                },
            }
        ]
    )
    parent = root
    for n in range(runs):
        key = f"step:{n + 1}" if n else "step"
        run_id = f"00000000-0000-0000-0000-{n + 1:012d}"
        chain = n % 5 == 0
        ids = [root] if chain else [root, parent]
        start = f"2026-01-01T00:{n // 6000:02d}:{(n // 100) % 60:02d}.{(n % 100) * 10:03d}+00:00"
        end = f"2026-01-01T00:{n // 6000:02d}:{(n // 100) % 60:02d}.{(n % 100) * 10 + 8:03d}+00:00"
        sink.write(
            [
                {
                    "op": "add",
                    "path": f"/logs/{key}",
                    "value": {
                        "id": run_id,
                        "name": "step",
                        "type": "chain" if chain else "tool",
                        "tags": [],
                        "metadata": {"n": n},
                        "start_time": start,
                        "streamed_output": [],
                        "streamed_output_str": [],
                        "final_output": None,
                        "end_time": None,
                        "parent_ids": ids,
                        "error": None,
                    },
                }
            ]
        )
        if n % 10 == 3:
            for token in ("a", "b", "c"):
                sink.write(
                    [{"op": "add", "path": f"/logs/{key}/streamed_output_str/-", "value": token}]
                )
        sink.write(
            [
                {"op": "add", "path": f"/logs/{key}/final_output", "value": {"n": n}},
                {"op": "add", "path": f"/logs/{key}/end_time", "value": end},
            ]
        )
        if chain:
            parent = run_id
    sink.end()
    path.write_text(out.getvalue(), "utf-8")
    return path


HOSTILE = [
    "<script>window.__pwned = 1</script>",
    "</script><script>window.__pwned = 2</script>",
    '"><img src=x onerror="window.__pwned = 3">',
    "javascript:window.__pwned = 4",
    "<!--",
    "<svg onload=window.__pwned=5>",
    "]]><iframe src=javascript:window.__pwned=6>",
]


def hostile_recording(path: Path) -> Path:
    """A recording whose every name, key, tag, value and error is an attack or a bidi trick."""
    ops: list[Any] = [
        {
            "op": "replace",
            "path": "",
            "value": {
                "id": "r",
                "name": HOSTILE[0],
                "type": HOSTILE[2],
                "logs": {},
                "streamed_output": [],
                "final_output": None,
            },
        }
    ]
    lines = [{"ops": ops}]
    names = [*HOSTILE, "admin\u202etxt.exe", "\u2066\u2067x\u2069", "__proto__"]
    for n, name in enumerate(names):
        key = name.replace("~", "~0").replace("/", "~1")
        entry = {
            "id": f"id{n}",
            "name": name,
            "type": HOSTILE[n % len(HOSTILE)],
            "tags": HOSTILE,
            "metadata": {"href": HOSTILE[3], "__proto__": {"polluted": True}, name: name},
            "inputs": {"html": HOSTILE, "url": "javascript:alert(1)"},
            "start_time": f"2026-01-01T00:00:0{n % 10}+00:00",
            "streamed_output_str": [],
            "streamed_output": [],
            "final_output": None,
            "end_time": None,
            "parent_ids": ["r", HOSTILE[1]],
            "error": None,
        }
        lines.append({"ops": [{"op": "add", "path": f"/logs/{key}", "value": entry}]})
        lines.append(
            {"ops": [{"op": "add", "path": f"/logs/{key}/streamed_output_str/-", "value": name}]}
        )
        lines.append(
            {
                "ops": [
                    {"op": "add", "path": f"/logs/{key}/end_time", "value": "2026-01-01T00:00:11Z"},
                    {"op": "replace", "path": f"/logs/{key}/error", "value": name},
                ]
            }
        )
    text = "".join(json.dumps(line) + "\n" for line in lines)
    text += json.dumps({"end": True, "patches": len(lines), "error": HOSTILE[1]}) + "\n"
    path.write_text(text, "utf-8")
    return path
