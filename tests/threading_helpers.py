"""Helpers shared by the tests that run producers or readers in threads."""

from __future__ import annotations

import threading
from typing import Any, Callable

TIMEOUT = 30.0
"""Seconds any single wait may take before the test fails (generous: CI machines are noisy)."""


def run_in_thread(target: Callable[[], Any]) -> tuple[threading.Thread, dict[str, Any]]:
    """Start ``target`` in a daemon thread; its result or exception lands in the dict."""
    box: dict[str, Any] = {}

    def main() -> None:
        try:
            box["result"] = target()
        except BaseException as exc:  # surfaced by join_thread
            box["error"] = exc

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    return thread, box


def join_thread(thread: threading.Thread, box: dict[str, Any]) -> Any:
    """Join ``thread`` within :data:`TIMEOUT`, re-raise its exception, return its result."""
    thread.join(TIMEOUT)
    assert not thread.is_alive(), "thread did not finish: a reader or producer is stuck"
    if "error" in box:
        raise box["error"]
    return box.get("result")
