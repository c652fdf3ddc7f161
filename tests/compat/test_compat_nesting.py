"""End to end with LangChain: a chain with a failing tool, its tree and error from patches.

The chain runs with our handler in ``config={"callbacks": [handler]}`` (the entry fields
on). Run through ``astream_events(version="v2")`` at the same time, it also gives
LangChain's own ``parent_ids`` for the very same run ids, so ours are compared with
LangChain's directly.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from logstream import JsonLinesSink, LogStreamCallbackHandler, RunLogPatch, read_jsonl
from logstream._cli import format_tree
from logstream.testing import assert_errors, assert_run_tree, run_parents

BOTH = ["parent_ids", "error"]


@tool
def calculator(expression: str) -> str:
    """Divide two integers written as ``a/b``."""
    left, right = expression.split("/")
    return str(int(int(left) / int(right)))


def plan(question: str) -> dict[str, Any]:
    """Turn the question into tool calls."""
    return {"question": question, "calls": ["4/2", "1/0"]}


def act(step: dict[str, Any]) -> list[str]:
    """Run each tool call; a failing one is reported as text."""
    results = []
    for expression in step["calls"]:
        try:
            results.append(calculator.invoke(expression))
        except ZeroDivisionError as exc:
            results.append(f"error: {exc}")
    return results


def chain() -> Any:
    """plan | act, with act calling the calculator tool twice (the second call fails)."""
    return RunnableLambda(plan, name="plan") | RunnableLambda(act, name="act")


def state_of(patches: list[RunLogPatch]) -> dict[str, Any]:
    """Rebuild the state from the patches alone."""
    log = RunLogPatch()
    for patch in patches:
        log = log + patch
    return dict(log.state)  # type: ignore[arg-type]


class TestLangChainChain:
    def test_tree_and_error_from_patches_alone(self) -> None:
        """The handler's patches rebuild the chain's tree with parents and the tool's error."""
        handler = LogStreamCallbackHandler(entry_fields=BOTH)
        result = chain().invoke("what is 4/2 and 1/0?", config={"callbacks": [handler]})
        assert result == ["2", "error: division by zero"]
        patches = list(handler)
        state = state_of(patches)
        assert state["name"] == "RunnableSequence"
        assert_run_tree(
            patches,
            {"RunnableSequence": {"plan": {}, "act": {"calculator": {}, "calculator:2": {}}}},
        )
        assert run_parents(patches) == {
            "plan": None,
            "act": None,
            "calculator": "act",
            "calculator:2": "act",
        }
        assert_errors(patches, {"calculator:2": "ZeroDivisionError: division by zero"})
        assert state["error"] is None

    def test_failure_reaching_the_root(self) -> None:
        """A tool error that escapes fails every run up to the root, each with the text."""
        handler = LogStreamCallbackHandler(entry_fields=BOTH)
        failing = RunnableLambda(lambda x: calculator.invoke(x), name="step")
        with pytest.raises(ZeroDivisionError):
            (RunnableLambda(lambda x: x, name="plan") | failing).invoke(
                "1/0", config={"callbacks": [handler]}
            )
        text = "ZeroDivisionError: division by zero"
        assert_errors(list(handler), {"step": text, "calculator": text}, root=text)

    def test_parent_ids_equal_astream_events_v2(self) -> None:
        """For the same run ids, our parent_ids are LangChain's astream_events v2 parent_ids."""
        handler = LogStreamCallbackHandler(entry_fields=BOTH)

        async def events() -> dict[str, list[str]]:
            seen: dict[str, list[str]] = {}
            async for event in chain().astream_events(
                "q", version="v2", config={"callbacks": [handler]}
            ):
                if event["event"].endswith("_start"):
                    seen[event["run_id"]] = list(event["parent_ids"])
            return seen

        theirs = asyncio.run(events())
        state = state_of(list(handler))
        assert len(state["logs"]) == 4
        for entry in state["logs"].values():
            assert entry["parent_ids"] == theirs[entry["id"]], entry["name"]
        assert theirs[state["id"]] == []

    def test_filtered_parent_ids_still_list_hidden_ancestors(self) -> None:
        """With only tools included, each tool still lists the hidden ``act`` as an ancestor."""
        handler = LogStreamCallbackHandler(entry_fields=BOTH, include_types=["tool"])
        chain().invoke("q", config={"callbacks": [handler]})
        state = state_of(list(handler))
        assert sorted(state["logs"]) == ["calculator", "calculator:2"]
        for entry in state["logs"].values():
            assert entry["parent_ids"][0] == state["id"]
            assert len(entry["parent_ids"]) == 2  # the root, then the hidden 'act'
        assert run_parents(state) == {"calculator": None, "calculator:2": None}

    def test_default_state_has_no_new_keys(self) -> None:
        """Without entry_fields the handler's state for this chain has LangChain's keys only."""
        handler = LogStreamCallbackHandler()
        chain().invoke("q", config={"callbacks": [handler]})
        state = state_of(list(handler))
        assert set(state) == {"id", "streamed_output", "final_output", "logs", "name", "type"}
        for entry in state["logs"].values():
            assert "parent_ids" not in entry
            assert "error" not in entry

    def test_replay_prints_the_nested_tree(self, tmp_path: Path) -> None:
        """A recording of the chain replays as a nested tree with the failed tool marked."""
        handler = LogStreamCallbackHandler(entry_fields=BOTH)
        chain().invoke("q", config={"callbacks": [handler]})
        path = tmp_path / "chain.jsonl"
        with JsonLinesSink(path) as sink:
            for patch in handler:
                sink.write(patch)
            sink.end()
        lines = format_tree(read_jsonl(path)).splitlines()
        names = [line.split()[0] for line in lines[1:-1]]
        depths = [(len(line) - len(line.lstrip())) // 2 for line in lines[1:-1]]
        assert list(zip(names, depths)) == [
            ("RunnableSequence", 0),
            ("plan", 1),
            ("act", 1),
            ("calculator", 2),
            ("calculator", 2),
        ]
        failed = [line for line in lines if " error " in line]
        assert len(failed) == 1
        assert "calculator:2" in failed[0]
        assert failed[0].endswith("ZeroDivisionError: division by zero")
