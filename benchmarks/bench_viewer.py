"""How long `logstream view` pages take to open in headless Chromium (target: under 2 s).

For the demo recording and a 5,000-run recording: the time `logstream view` takes to write
the page, and the time from navigating to the file until the page has drawn the right number
of rows (the page's script replays every patch and lays out every row; it draws those in
view). Browser start-up is
printed apart. Runs Debian's Chromium through Playwright; needs the `test` extra.

    .venv/bin/python benchmarks/bench_viewer.py [--runs 5] [--size 5000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from playwright.sync_api import sync_playwright
from viewer_support import launch, many_runs

from logstream import read_jsonl
from logstream._cli import main


def bench(page: object, recording: Path, runs: int) -> tuple[float, float, int, int]:
    """Return (median write s, median open s, rows expected, rows shown)."""
    state = read_jsonl(str(recording)).state
    expected = 1 + len(state["logs"])
    writes, opens = [], []
    shown = 0
    out = recording.with_suffix(".html")
    for _ in range(runs):
        started = time.perf_counter()
        main(["view", str(recording), "-o", str(out)])
        writes.append(time.perf_counter() - started)
        started = time.perf_counter()
        page.goto(out.resolve().as_uri())  # type: ignore[attr-defined]
        page.wait_for_selector("html[data-ready]")  # type: ignore[attr-defined]
        # the rows laid out (the page draws those in view: it is virtualized)
        shown = page.evaluate("window.__logstream.rows()")  # type: ignore[attr-defined]
        opens.append(time.perf_counter() - started)
    return statistics.median(writes), statistics.median(opens), expected, shown


def run(runs: int, size: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        demo = Path(tmp) / "demo.jsonl"
        main(["record", str(demo)])
        big = many_runs(Path(tmp) / "big.jsonl", size)
        with sync_playwright() as playwright:
            started = time.perf_counter()
            browser = launch(playwright)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            print(f"browser start-up: {time.perf_counter() - started:.2f} s (not counted)")
            status = 0
            for label, recording in (("demo", demo), (f"{size:,} runs", big)):
                write, opened, expected, shown = bench(page, recording, runs)
                ok = "ok" if shown == expected else "WRONG ROW COUNT"
                within = "under" if write + opened < 2 else "OVER"
                print(
                    f"{label:>12}: view {write * 1000:7.0f} ms, open with rows "
                    f"{opened * 1000:7.0f} ms, total {(write + opened) * 1000:7.0f} ms "
                    f"({within} 2 s); rows {shown}/{expected} {ok}  "
                    f"[{recording.stat().st_size / 1e6:.1f} MB recording, median of {runs}]"
                )
                status |= shown != expected
            browser.close()
    return status


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size", type=int, default=5000)
    args = parser.parse_args()
    sys.exit(run(args.runs, args.size))
