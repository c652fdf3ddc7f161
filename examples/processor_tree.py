"""A run processor that prints the nested run tree, with errors, when the root run ends.

A processor is the supported way to see every run as a frozen record (id, parent,
ancestry, name, type, inputs, outputs, error, times, token count), for an exporter of
your own. This one keeps the records it is handed and, when the root ends, prints them
nested under their parents: one line per run with its type, status, duration, the tokens
it streamed and its error. It is registered on ``stream_log`` with ``processors=[...]``
and works the same on a ``Tracer`` or the LangChain-style callback handler.

The agent asks a sub-agent to plan, runs two tools in a thread pool (one fails), and
answers with a streaming model.

Run: python examples/processor_tree.py
"""

from __future__ import annotations

from collections.abc import Iterator
from uuid import UUID

import logstream
from logstream import ContextThreadPoolExecutor, RunRecord, traced


class TreePrinter:
    """Prints the run tree when the root ends; a processor (``on_start`` / ``on_end``)."""

    def __init__(self) -> None:
        self.ended: dict[UUID, RunRecord] = {}
        self.order: list[UUID] = []  # start order

    def on_start(self, run: RunRecord) -> None:
        self.order.append(run.id)

    def on_end(self, run: RunRecord) -> None:
        self.ended[run.id] = run
        if run.parent_id is None:  # the root: every other run has ended before it
            self.print_tree(run.id)

    def print_tree(self, root: UUID) -> None:
        children: dict[UUID, list[RunRecord]] = {}
        for run_id in self.order:
            run = self.ended.get(run_id)
            if run is not None and run.parent_id is not None:
                children.setdefault(run.parent_id, []).append(run)

        def show(run: RunRecord, depth: int) -> None:
            seconds = (run.end_time - run.start_time).total_seconds() if run.end_time else 0.0
            line = f"{'  ' * depth}{run.name} [{run.run_type}] {run.status}"
            if run.token_count:
                line += f", {run.token_count} tokens"
            if run.error is not None:
                line += f": {run.error}"
            print(f"{line} ({seconds * 1000:.0f} ms)")
            for child in children.get(run.id, []):
                show(child, depth + 1)

        show(self.ended[root], 0)


@traced(run_type="llm")
def model(prompt: str) -> Iterator[str]:
    """A fake streaming model."""
    yield from ["It ", "will ", "rain."]


@traced(run_type="tool")
def weather(city: str) -> str:
    """A tool that works."""
    return f"rain in {city}"


@traced(run_type="tool")
def calendar(day: str) -> str:
    """A tool that fails."""
    raise LookupError(f"no calendar for {day}")


@traced
def planner(question: str) -> list[str]:
    """A sub-agent: decides which tools to call."""
    return ["weather", "calendar"]


def agent(question: str) -> str:
    """Plan, run the tools in a thread pool, then answer."""
    steps = planner(question)
    with ContextThreadPoolExecutor(max_workers=2) as pool:
        futures = [
            pool.submit(weather, "Paris") if step == "weather" else pool.submit(calendar, "Monday")
            for step in steps
        ]
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except LookupError as error:
                results.append(f"(failed: {error})")
    return "".join(model(" ".join(results)))


def main() -> None:
    """Run the agent under stream_log with the processor, draining its patches."""
    printer = TreePrinter()
    patches = list(logstream.stream_log(agent, "Will it rain?", processors=[printer]))
    print(f"{len(patches)} patches streamed")


if __name__ == "__main__":
    main()
