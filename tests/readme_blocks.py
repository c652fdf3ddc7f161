"""Helpers shared by the tests that run the README's code blocks."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_readme_block(heading: str) -> tuple[str, str]:
    """Run the first Python block after ``## heading`` in the README; return it and its stdout."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(rf"## {re.escape(heading)}.*?```python\n(.*?)```", readme, re.S)
    assert block is not None, heading
    done = subprocess.run(
        [sys.executable, "-c", block.group(1)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return block.group(1), done.stdout


def claimed_output(code: str) -> list[str]:
    """Return the lines a block's ``# prints:`` comment claims, without their ``# ``."""
    return [line.removeprefix("# ") for line in code.split("# prints:\n", 1)[1].splitlines()]
