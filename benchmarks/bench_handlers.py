"""Side-by-side benchmark: logstream's handler against LangChain's, in one process.

Each workload runs on both handlers, alternating, ``--pairs`` times; the table shows the
median time of each and the median of the per-pair ratios (LangChain's time / ours), so a
ratio of 3.0 means logstream did the same work in a third of the time. Times include
draining the stream. Needs langchain-core (``pip install -e ".[compat]"``).

Run: python benchmarks/bench_handlers.py [--pairs 5] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import time
import uuid
from typing import Any, Callable

from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from langchain_core.tracers.log_stream import LogStreamCallbackHandler as LangChainHandler
from langchain_core.tracers.log_stream import RunLog as LangChainRunLog
from langchain_core.tracers.log_stream import RunLogPatch as LangChainRunLogPatch

from logstream import LogStreamCallbackHandler, RunLog, RunLogPatch

Workload = Callable[[type, dict[str, Any]], float]


def _drain(handler: Any) -> int:
    """Drain a closed handler's stream; LangChain's needs an event loop to read."""
    if isinstance(handler, LogStreamCallbackHandler):
        return sum(1 for _ in handler)

    async def read() -> int:
        return sum([1 async for _ in handler])

    loop = asyncio.get_event_loop()
    return loop.run_until_complete(read())


def tokens(handler_class: type, params: dict[str, Any]) -> float:
    """Stream text tokens from LLM runs under one root and drain the stream."""
    runs, per_run, chunks = params["runs"], params["tokens"], params.get("chunks")
    handler = handler_class()
    result = LLMResult(generations=[])
    root = uuid.uuid4()
    start = time.perf_counter()
    handler.on_chain_start({}, {"q": "x"}, run_id=root, name="root")
    for _ in range(runs):
        llm = uuid.uuid4()
        handler.on_llm_start({}, ["x"], run_id=llm, parent_run_id=root, name="llm")
        if chunks is None:
            for _ in range(per_run):
                handler.on_llm_new_token("tok", run_id=llm)
        else:
            for chunk in chunks:
                handler.on_llm_new_token("tok", chunk=chunk, run_id=llm)
        handler.on_llm_end(result, run_id=llm)
    handler.on_chain_end({"a": 1}, run_id=root)
    _drain(handler)
    return time.perf_counter() - start


def tree(handler_class: type, params: dict[str, Any]) -> float:
    """Start and end many short chain runs, each with a tool child, with filters on."""
    handler = handler_class(include_types=["chain", "tool"], exclude_tags=["skip"])
    root = uuid.uuid4()
    start = time.perf_counter()
    handler.on_chain_start({}, {"q": "x"}, run_id=root, name="root")
    for i in range(params["runs"]):
        step, tool = uuid.uuid4(), uuid.uuid4()
        tags = ["skip"] if i % 10 == 0 else ["keep"]
        handler.on_chain_start(
            {}, {"i": i}, run_id=step, parent_run_id=root, name="step", tags=tags
        )
        handler.on_tool_start({}, "x", run_id=tool, parent_run_id=step, name="tool", tags=tags)
        handler.on_tool_end("y", run_id=tool)
        handler.on_chain_end({"o": i}, run_id=step)
    handler.on_chain_end({"a": 1}, run_id=root)
    _drain(handler)
    return time.perf_counter() - start


def accumulate(handler_class: type, params: dict[str, Any]) -> float:
    """Add token patches one by one to a RunLog (``state = state + patch``)."""
    ours = handler_class is LogStreamCallbackHandler
    patch_class = RunLogPatch if ours else LangChainRunLogPatch
    log_class = RunLog if ours else LangChainRunLog
    first = patch_class(
        {
            "op": "replace",
            "path": "",
            "value": {"id": "r", "streamed_output": [], "final_output": None, "logs": {}},
        },
        {"op": "add", "path": "/logs/llm", "value": {"streamed_output_str": []}},
    )
    patches = [
        patch_class({"op": "add", "path": "/logs/llm/streamed_output_str/-", "value": "tok"})
        for _ in range(params["patches"])
    ]
    start = time.perf_counter()
    state = log_class(state=None) + first
    for patch in patches:
        state = state + patch
    return time.perf_counter() - start


def _chat_chunks(count: int) -> list[ChatGenerationChunk]:
    return [ChatGenerationChunk(message=AIMessageChunk(content="tok")) for _ in range(count)]


def main() -> None:
    """Run every workload and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="alternating runs per workload")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    asyncio.set_event_loop(asyncio.new_event_loop())  # LangChain's stream binds to it
    workloads: list[tuple[str, Workload, dict[str, Any]]] = [
        ("tokens: 20 LLM runs x 1,000 text tokens", tokens, {"runs": 20, "tokens": 1000 // scale}),
        (
            "tokens: 20 chat runs x 1,000 chunks",
            tokens,
            {"runs": 20, "tokens": 0, "chunks": _chat_chunks(1000 // scale)},
        ),
        ("tree: 3,000 chains + tool child, filters", tree, {"runs": 3000 // scale}),
        ("RunLog + patch, 3,000 patches", accumulate, {"patches": 3000 // scale}),
    ]
    print(f"python {platform.python_version()} on {platform.machine()}, pairs={args.pairs}")
    print(f"{'workload':<44} {'langchain':>10} {'logstream':>10} {'ratio':>7}")
    for title, workload, params in workloads:
        theirs, ours, ratios = [], [], []
        for _ in range(args.pairs):
            t_lc = workload(LangChainHandler, params)
            t_ls = workload(LogStreamCallbackHandler, params)
            theirs.append(t_lc)
            ours.append(t_ls)
            ratios.append(t_lc / t_ls)
        print(
            f"{title:<44} {statistics.median(theirs):>9.3f}s {statistics.median(ours):>9.3f}s "
            f"{statistics.median(ratios):>6.1f}x"
        )


if __name__ == "__main__":
    main()
