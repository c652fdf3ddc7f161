"""End to end: a native agent with sub-agents and thread-pool tools, rebuilt from patches alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from logstream import (
    ContextThreadPoolExecutor,
    JsonLinesSink,
    RunLogPatch,
    astream_log,
    read_jsonl,
    run_in_executor,
    stream_log,
    traced,
)
from logstream._cli import main
from logstream.testing import assert_errors, assert_run_tree, run_parents

BOTH = ["parent_ids", "error"]
DIVISION = "ZeroDivisionError: division by zero"


@traced(run_type="tool")
def calculator(expression: str) -> int:
    """Divide two integers written as ``a/b``."""
    left, right = expression.split("/")
    return int(int(left) / int(right))


@traced(run_type="llm")
def model(prompt: str) -> Iterator[str]:
    """A fake model streaming two tokens."""
    yield "4/2 "
    yield "1/0"


@traced
def researcher(question: str) -> list[Any]:
    """A sub-agent: asks the model, then runs the tools in a thread pool; one fails."""
    calls = "".join(model(question)).split()
    results: list[Any] = []
    with ContextThreadPoolExecutor(2) as pool:
        for future in [pool.submit(calculator, call) for call in calls]:
            try:
                results.append(future.result())
            except ZeroDivisionError as exc:
                results.append(f"error: {exc}")
    return results


@traced
def writer(results: list[Any]) -> str:
    """A second sub-agent that writes the answer."""
    return f"answers: {results}"


def agent(question: str) -> str:
    """The root: the researcher sub-agent, then the writer sub-agent."""
    return writer(researcher(question))


EXPECTED_TREE = {
    "agent": {
        "researcher": {"model": {}, "calculator": {}, "calculator:2": {}},
        "writer": {},
    }
}


def state_of(patches: list[RunLogPatch]) -> dict[str, Any]:
    """Rebuild the state from the patches alone."""
    log = RunLogPatch()
    for patch in patches:
        log = log + patch
    return dict(log.state)  # type: ignore[arg-type]


class TestNativeAgent:
    def test_stream_log_tree_and_error(self) -> None:
        """stream_log's patches alone give the tree with parents and the failed tool's text."""
        patches = list(stream_log(agent, "q", entry_fields=BOTH))
        state = state_of(patches)
        assert state["final_output"] == "answers: [2, 'error: division by zero']"
        parents = run_parents(patches)
        assert parents["researcher"] is None
        assert parents["writer"] is None
        assert parents["model"] == "researcher"
        assert {parents["calculator"], parents["calculator:2"]} == {"researcher"}
        failed = [k for k in ("calculator", "calculator:2") if state["logs"][k]["error"]]
        assert len(failed) == 1  # which of the two pooled calls starts first may vary
        assert_errors(patches, {failed[0]: DIVISION})
        assert_run_tree(patches, EXPECTED_TREE)

    def test_astream_log_with_run_in_executor(self) -> None:
        """An async agent running a tool through run_in_executor nests it under its caller."""

        async def async_agent(question: str) -> Any:
            with ThreadPoolExecutor(1) as pool:
                ok = await run_in_executor(None, pool, calculator, "9/3")
                try:
                    await run_in_executor(None, pool, calculator, "1/0")
                except ZeroDivisionError:
                    pass
            return ok

        async def collect() -> list[RunLogPatch]:
            return [patch async for patch in astream_log(async_agent, "q", entry_fields=BOTH)]

        patches = asyncio.run(collect())
        assert_run_tree(patches, {"async_agent": {"calculator": {}, "calculator:2": {}}})
        assert_errors(patches, {"calculator:2": DIVISION})
        assert state_of(patches)["final_output"] == 3

    def test_root_failure_reaches_the_top_level(self) -> None:
        """A root that raises has its error text at the top level of the state."""

        def failing_agent(question: str) -> int:
            return calculator("1/0")

        patches: list[RunLogPatch] = []
        try:
            for patch in stream_log(failing_agent, "q", entry_fields=BOTH):
                patches.append(patch)
        except ZeroDivisionError:
            pass
        assert_errors(patches, {"calculator": DIVISION}, root=DIVISION)


class TestReplay:
    def test_record_and_replay_print_the_nested_tree(self, tmp_path: Path, capsys: Any) -> None:
        """Recorded with the fields, replay prints the agent's nested tree, the failure marked."""
        path = tmp_path / "agent.jsonl"
        with JsonLinesSink(path) as sink:
            for patch in stream_log(agent, "q", entry_fields=BOTH):
                sink.write(patch)
            sink.end()
        assert read_jsonl(path).complete
        assert main(["replay", str(path)]) == 0
        lines = capsys.readouterr().out.splitlines()[1:-1]
        shape = [((len(x) - len(x.lstrip())) // 2, x.split()[0]) for x in lines]
        assert shape == [
            (0, "agent"),
            (1, "researcher"),
            (2, "model"),
            (2, "calculator"),
            (2, "calculator"),
            (1, "writer"),
        ]
        failed = [line for line in lines if " error " in line]
        assert len(failed) == 1
        assert failed[0].endswith(DIVISION)
