"""Run processors under a real LangChain chain: the nested tree with parents, tokens, errors."""

from __future__ import annotations

import uuid
from typing import Any, Optional

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import tool

from logstream import LogStreamCallbackHandler, RunRecord


class Ended:
    """A processor that keeps every run's end record."""

    def __init__(self) -> None:
        self.started: list[uuid.UUID] = []
        self.records: dict[uuid.UUID, RunRecord] = {}

    def on_start(self, run: RunRecord) -> None:
        self.started.append(run.id)

    def on_end(self, run: RunRecord) -> None:
        self.records[run.id] = run

    def tree(self) -> Any:
        """{name: (type, status, error type, tokens, children)} rebuilt from parent ids."""
        children: dict[Optional[uuid.UUID], list[RunRecord]] = {}
        for run_id in self.started:
            run = self.records[run_id]
            children.setdefault(run.parent_id, []).append(run)

        def node(run: RunRecord) -> Any:
            error = None if run.error is None else run.error.split("(")[0]
            kids = {child.name: node(child) for child in children.get(run.id, [])}
            return (run.run_type, run.status, error, run.token_count, kids)

        (root,) = children[None]
        return {root.name: node(root)}


@tool
def divide(expression: str) -> str:
    """Divide a by b, given as 'a/b'."""
    left, right = expression.split("/")
    return str(float(left) / float(right))


def agent_chain() -> Any:
    model = GenericFakeChatModel(messages=iter([AIMessage(content="let me divide")]))

    def run_tool(message: Any) -> str:
        try:
            return str(divide.invoke("1/0"))
        except ZeroDivisionError:
            return f"{message.content}: failed"

    return (model | RunnableLambda(run_tool)).with_config(run_name="agent")


@pytest.mark.parametrize("mode", ["invoke", "stream"])
def test_processor_rebuilds_a_langchain_chain_with_a_failing_tool(mode: str) -> None:
    """Through the handler, a processor sees every run with its parent, tokens and error."""
    ended = Ended()
    handler = LogStreamCallbackHandler(processors=[ended])
    chain = agent_chain()
    config: Any = {"callbacks": [handler]}
    if mode == "invoke":
        result = chain.invoke("question", config=config)
    else:
        result = "".join(chain.stream("question", config=config))
    assert result == "let me divide: failed"
    tree = ended.tree()
    (root,) = tree.values()
    assert root[:3] == ("chain", "success", None)
    kids = root[4]
    model = kids["GenericFakeChatModel"]
    assert model[:3] == ("chat_model", "success", None)
    assert model[3] >= 3  # streamed token by token
    run_tool = kids["run_tool"]
    assert run_tool[:3] == ("chain", "success", None)
    assert run_tool[4] == {"divide": ("tool", "error", "ZeroDivisionError", 0, {})}
    assert handler.closed  # the root ended: the stream closed, after every hook ran
