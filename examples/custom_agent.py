"""A hand-written agent loop traced with logstream's native API, no framework.

A fake streaming model (a ``@traced(run_type="llm")`` generator) follows a scripted plan:
look a fact up with the ``search`` tool, compute with the ``calculator`` tool, then
answer. Each token it yields is streamed onto its log entry. ``logstream.stream_log``
runs the agent as the root run in a worker thread; this prints each patch as it is
produced, one line per patch, then the run tree the patches rebuilt.

Run: python examples/custom_agent.py
"""

from __future__ import annotations

import operator
import re
import time
from collections.abc import Iterator

from _show import print_patch, print_tree

import logstream
from logstream import RunLog, traced

# What the fake model says at each turn; "Action: tool[input]" asks for a tool call.
PLAN = [
    "I need the population of Paris first. Action: search[population of Paris]",
    "Now I double it. Action: calculator[2.1 * 2]",
    "Twice the population of Paris is about 4.2 million people.",
]
ACTION = re.compile(r"Action: (\w+)\[(.*)\]")
FACTS = {"population of Paris": "2.1 million"}
OPERATORS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


@traced(run_type="llm")
def model(messages: list[str]) -> Iterator[str]:
    """A fake streaming LLM: replays the plan's next turn, a word at a time."""
    turn = sum(message.startswith("Observation:") for message in messages)
    for token in re.findall(r"\s*\S+", PLAN[turn]):
        time.sleep(0.01)  # as if the tokens came over the network
        yield token  # streamed: one patch per token


@traced(run_type="tool")
def search(query: str) -> str:
    """Look a fact up."""
    return FACTS.get(query, "no results")


@traced(run_type="tool")
def calculator(expression: str) -> str:
    """Compute ``a <op> b``."""
    left, symbol, right = expression.split()
    return f"{OPERATORS[symbol](float(left), float(right)):g}"


TOOLS = {"search": search, "calculator": calculator}


def agent(question: str) -> str:
    """Call the model, run the tool it asks for, repeat until it answers."""
    messages = [question]
    for _ in range(5):
        reply = "".join(model(messages))  # a child run of the agent's run
        messages.append(reply)
        action = ACTION.search(reply)
        if action is None:
            return reply
        tool, tool_input = TOOLS[action.group(1)], action.group(2)
        messages.append(f"Observation: {tool(tool_input)}")  # another child run
    raise RuntimeError("the agent did not answer in 5 turns")


def main() -> None:
    """Stream the agent's run log, then print the run tree it rebuilds."""
    log = RunLog(state=None)
    for patch in logstream.stream_log(agent, "What is twice the population of Paris?"):
        print_patch(patch)
        log = log + patch
    print()
    print_tree(log.state)


if __name__ == "__main__":
    main()
