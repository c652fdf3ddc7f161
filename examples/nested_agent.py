"""Nesting and errors on the wire: an agent with sub-agents and pooled tools, one failing.

Runs through ``stream_log`` with ``entry_fields=["parent_ids", "error"]`` and prints the
run tree a consumer rebuilds from the patches alone: each run under its nearest logged
ancestor (from ``parent_ids``), failed runs with their ``error`` text. Then it shows the
thread pitfall: a tool called from a plain thread has lost its context, so it is not
recorded but counted by ``logstream.orphan_runs()`` (and logged once).

Run it: ``python examples/nested_agent.py``
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Optional

import logstream
from logstream import ContextThreadPoolExecutor, RunLogPatch, stream_log, traced


@traced(run_type="tool")
def calculator(expression: str) -> int:
    """Divide two integers written as ``a/b``."""
    left, right = expression.split("/")
    return int(int(left) / int(right))


@traced
def researcher(question: str) -> list[Any]:
    """A sub-agent: runs its tool calls in a thread pool that carries the context."""
    results: list[Any] = []
    with ContextThreadPoolExecutor(2) as pool:
        for future in [pool.submit(calculator, call) for call in ("8/4", "1/0")]:
            try:
                results.append(future.result())
            except ZeroDivisionError as exc:
                results.append(f"error: {exc}")
    return results


@traced
def writer(results: list[Any]) -> str:
    """A sub-agent that writes the answer."""
    return f"answers: {results}"


def agent(question: str) -> str:
    """The root run: two sub-agents."""
    return writer(researcher(question))


def print_tree(state: dict[str, Any]) -> None:
    """Print the run tree from the state alone: ``parent_ids`` nest, ``error`` marks failures."""
    logs = state["logs"]
    by_id = {entry["id"]: key for key, entry in logs.items()}
    children: dict[Optional[str], list[str]] = {}
    for key, entry in logs.items():
        parent = next((by_id[a] for a in reversed(entry["parent_ids"]) if a in by_id), None)
        children.setdefault(parent, []).append(key)

    def show(key: Optional[str], depth: int) -> None:
        # pooled calls may start in any order: siblings by name, then successes first
        for child in sorted(
            children.get(key, []), key=lambda k: (logs[k]["name"], logs[k]["error"] or "")
        ):
            entry = logs[child]
            status = f"error: {entry['error']}" if entry["error"] else "ok"
            print(f"{'  ' * depth}{entry['name']} [{entry['type']}] {status}")
            show(child, depth + 1)

    print(f"{state['name']} [{state['type']}] final_output={state['final_output']!r}")
    show(None, 1)


def main() -> None:
    """Trace the agent, print its tree, then show an orphan run from a plain thread."""
    log = RunLogPatch()
    for patch in stream_log(agent, "what is 8/4 and 1/0?", entry_fields=["parent_ids", "error"]):
        log = log + patch
    print_tree(dict(log.state))  # type: ignore[arg-type]

    logging.basicConfig(level=logging.WARNING)  # the orphan's warning, with the fix, on stderr
    before = logstream.orphan_runs()

    def lost(question: str) -> str:
        worker = threading.Thread(target=calculator, args=("9/3",))  # no context carried
        worker.start()
        worker.join()
        return question

    list(stream_log(lost, "q"))
    print(f"orphan runs from a plain thread: {logstream.orphan_runs() - before}")


if __name__ == "__main__":
    main()
