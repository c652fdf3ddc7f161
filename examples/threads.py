"""Worker threads under one root run, traced with logstream's native API.

A pipeline summarizes three topics in a ``logstream.ContextThreadPoolExecutor``: its
tasks run in a copy of the submitter's context, so the runs they trace nest under the
pipeline's run (in a plain ``ThreadPoolExecutor`` they would run untraced;
``logstream.bind_context(fn)`` does the same for a ``threading.Thread`` target). Each
worker fetches notes (a tool run) and streams a summary from a fake LLM (an llm run).
``logstream.stream_log`` runs the pipeline as the root run in a worker thread; this
prints each patch as it is produced, one line per patch, then the run tree the patches
rebuilt. The workers run at once, so their patches interleave differently each time.

Run: python examples/threads.py
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from _show import print_patch, print_tree

import logstream
from logstream import RunLog, traced

NOTES = {
    "tides": "the moon pulls the oceans",
    "seasons": "the earth is tilted",
    "rainbows": "water drops split sunlight",
}


@traced(run_type="tool")
def fetch(topic: str) -> str:
    """Look notes up (a blocking call, as a database or HTTP client would make)."""
    time.sleep(0.02)
    return NOTES[topic]


@traced(run_type="llm")
def write(prompt: str) -> Iterator[str]:
    """A fake streaming LLM: streams the prompt back, a word at a time."""
    for i, word in enumerate(prompt.split()):
        time.sleep(0.01)
        yield word if i == 0 else " " + word


def summarize(topic: str) -> str:
    """One worker's step: a chain run with a tool run and an llm run inside."""
    # The runs inside the step inherit its tag: print_tree nests them by it.
    with logstream.trace("summarize", inputs=topic, tags=[f"topic:{topic}"]) as run:
        notes = fetch(topic)
        run.outputs = "".join(write(f"{topic.capitalize()}: {notes}.")).strip()
    return str(run.outputs)


def pipeline(topics: list[str]) -> list[str]:
    """Summarize every topic in a pool of threads that carry the current run."""
    with logstream.ContextThreadPoolExecutor(max_workers=len(topics)) as pool:
        return list(pool.map(summarize, topics))


def main() -> None:
    """Stream the pipeline's run log, then print the run tree it rebuilds."""
    log = RunLog(state=None)
    for patch in logstream.stream_log(pipeline, list(NOTES)):
        print_patch(patch)
        log = log + patch
    print()
    print_tree(log.state)


if __name__ == "__main__":
    main()
