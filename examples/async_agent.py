"""Parallel tool calls in an asyncio agent, traced with logstream's native API.

The agent researches two cities at once (``asyncio.gather``). In each branch an async
fake streaming model (a ``@traced(run_type="llm")`` async generator) asks for two tool
calls, which run in parallel too; then the model streams a summary. The current run
follows asyncio tasks, so every run nests under the branch that started it, although
the branches interleave. ``logstream.astream_log`` runs the agent as the root run in
this event loop; this prints each patch as it is produced, one line per patch, then
the run tree the patches rebuilt.

Run: python examples/async_agent.py
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

from _show import print_patch, print_tree

import logstream
from logstream import RunLog, traced

CITIES = ["Paris", "Rome"]
CALL = re.compile(r"(\w+)\((\w+)\)")  # a tool call in the model's reply: tool(arg)


def script(prompt: str) -> str:
    """What the fake model replies to a prompt."""
    if prompt.startswith("Research "):
        city = prompt.removeprefix("Research ")
        return f"Calling weather({city}) and population({city}) at once."
    return "Summary: " + prompt.removeprefix("Summarize: ")


@traced(run_type="llm")
async def model(prompt: str) -> AsyncIterator[str]:
    """A fake streaming LLM: streams its scripted reply a word at a time."""
    for token in re.findall(r"\s*\S+", script(prompt)):
        await asyncio.sleep(0.005)  # as if the tokens came over the network
        yield token


@traced(run_type="tool")
async def weather(city: str) -> str:
    """Look the weather up."""
    await asyncio.sleep(0.02)
    return {"Paris": "18°C, sunny", "Rome": "24°C, clear"}[city]


@traced(run_type="tool")
async def population(city: str) -> str:
    """Look the population up."""
    await asyncio.sleep(0.01)
    return {"Paris": "2.1M people", "Rome": "2.8M people"}[city]


TOOLS = {"weather": weather, "population": population}


async def research(city: str) -> str:
    """One branch: the model picks the tools, the tools run in parallel."""
    # The runs inside the branch inherit its tag: print_tree nests them by it.
    async with logstream.trace("research", inputs=city, tags=[f"city:{city}"]) as run:
        reply = "".join([token async for token in model(f"Research {city}")])
        calls = [TOOLS[name](arg) for name, arg in CALL.findall(reply)]
        run.outputs = f"{city}: " + ", ".join(await asyncio.gather(*calls))
    return str(run.outputs)


async def agent(question: str) -> str:
    """Research every city at once, then summarize."""
    notes = await asyncio.gather(*(research(city) for city in CITIES))
    return "".join([token async for token in model("Summarize: " + "; ".join(notes))])


async def main() -> None:
    """Stream the agent's run log, then print the run tree it rebuilds."""
    log = RunLog(state=None)
    async for patch in logstream.astream_log(agent, "How are Paris and Rome today?"):
        print_patch(patch)
        log = log + patch
    print()
    print_tree(log.state)


if __name__ == "__main__":
    asyncio.run(main())
