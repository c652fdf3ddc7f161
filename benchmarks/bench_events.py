"""Side-by-side benchmark of the events view: LangChain's astream_events v2 against ours.

The same chain (a prompt, a fake chat model streaming ``--tokens`` tokens, a tool, a
lambda) runs in one event loop, in rounds that rotate which goes first, ``--pairs``
times: once through LangChain's ``Runnable.astream_events(value, version="v2")``, once
through ``Runnable.astream`` with our ``LogStreamCallbackHandler`` carrying an
``EventStream`` (so ours also builds the run log's patches from the same callbacks), both
consumed to the end (and once more with ``handler.run_inline = True``, which spares
LangChain's async callback manager its thread-pool hop per callback of a sync handler).
The table shows the median time of each and the median of the
per-round ratios (LangChain's time / ours): 2.0 means ours did the work in half the time.
A native row shows ``logstream.astream_events`` over the same shape of work traced with
``@traced``, for scale (LangChain has no counterpart to it).

Run: python benchmarks/bench_events.py [--pairs 5] [--tokens 500] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from langchain_core import __version__ as LANGCHAIN_VERSION
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tools import tool

from logstream import EventStream, LogStreamCallbackHandler, astream_events, traced


@tool
def count_words(text: str) -> int:
    """Count the words of a text."""
    return len(text.split())


def _chain(tokens: int) -> Runnable[Any, Any]:
    words = " ".join(f"w{i}" for i in range(tokens))
    model = GenericFakeChatModel(messages=iter([AIMessage(content=words)]))
    return (
        ChatPromptTemplate.from_messages([("human", "{q}")])
        | model
        | RunnableLambda(lambda message: {"text": message.content})
        | count_words
    )


async def langchain_run(tokens: int) -> int:
    """LangChain's astream_events v2 over the chain; returns how many events it gave."""
    count = 0
    async for _ in _chain(tokens).astream_events({"q": "hi"}, version="v2"):
        count += 1
    return count


async def ours_run(tokens: int, inline: bool = False) -> int:
    """Our handler with an EventStream over the same chain; returns how many events."""
    events = EventStream()
    handler = LogStreamCallbackHandler(processors=[events])
    handler.run_inline = inline  # False: LangChain's manager hops to a thread per callback
    async for _ in _chain(tokens).astream({"q": "hi"}, config={"callbacks": [handler]}):
        pass
    patches = sum(1 for _ in handler)  # the run log came from the same callbacks
    assert patches > tokens
    return len(events.drain())


async def ours_inline_run(tokens: int) -> int:
    """As :func:`ours_run`, with ``handler.run_inline = True`` (no executor hop)."""
    return await ours_run(tokens, inline=True)


async def native_run(tokens: int) -> int:
    """logstream.astream_events over the same shape of work traced natively."""

    @traced(run_type="chat_model")
    def model(prompt: str) -> Iterator[str]:
        for i in range(tokens):
            yield f"w{i} "

    @traced(run_type="tool")
    def count(text: str) -> int:
        return len(text.split())

    async def chain(question: str) -> AsyncIterator[int]:
        yield count("".join(model(question)))

    return len([e async for e in astream_events(chain, "hi")])


def _time(fn: Callable[[int], Any], tokens: int) -> tuple[float, int]:
    start = time.perf_counter()
    count = asyncio.run(fn(tokens))
    return time.perf_counter() - start, count


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="rounds")
    parser.add_argument("--tokens", type=int, default=500, help="tokens the model streams")
    parser.add_argument("--quick", action="store_true", help="a smoke run (50 tokens)")
    args = parser.parse_args()
    tokens = 50 if args.quick else args.tokens
    theirs: list[float] = []
    ours: list[float] = []
    inline: list[float] = []
    inline_ratios: list[float] = []
    native: list[float] = []
    ratios: list[float] = []
    counts: dict[str, int] = {}
    _time(langchain_run, 5)  # warm both up (imports, first-call caches)
    _time(ours_run, 5)
    for round_ in range(args.pairs):
        order = [("langchain", langchain_run), ("ours", ours_run), ("inline", ours_inline_run)]
        if round_ % 2:
            order.reverse()
        took: dict[str, float] = {}
        for label, fn in order:
            took[label], counts[label] = _time(fn, tokens)
        seconds, counts["native"] = _time(native_run, tokens)
        native.append(seconds)
        theirs.append(took["langchain"])
        ours.append(took["ours"])
        inline.append(took["inline"])
        ratios.append(took["langchain"] / took["ours"])
        inline_ratios.append(took["langchain"] / took["inline"])
    print(f"langchain-core {LANGCHAIN_VERSION}, Python {sys.version.split()[0]}, {tokens} tokens")
    print(f"{'path':<52} {'events':>7} {'median ms':>10}")
    rows = [
        ("LangChain astream_events(version='v2')", "langchain", theirs),
        ("ours: astream + handler + EventStream (log + events)", "ours", ours),
        ("ours, the same with handler.run_inline = True", "inline", inline),
        ("ours: logstream.astream_events, native @traced", "native", native),
    ]
    for title, key, times in rows:
        print(f"{title:<52} {counts[key]:>7} {statistics.median(times) * 1000:>10.1f}")
    ratio, inline_ratio = statistics.median(ratios), statistics.median(inline_ratios)
    print(f"ratio LangChain / ours (median of {args.pairs} rounds): {ratio:.2f}")
    print(f"ratio LangChain / ours with run_inline: {inline_ratio:.2f}")


if __name__ == "__main__":
    main()
