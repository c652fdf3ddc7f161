"""Fan-out and resume costs of logstream's in-process wire (PositionedLog, SSE frames).

Prints, with the machine:

- fan-out: microseconds per delivered patch per subscriber, for 1 and for 100 subscribers
  (sync iterators draining a finished log; and live: a producer thread appending while
  async subscribers in an event loop drain), and the producer's own cost per append;
- resume: the time to bring a client back after it missed 10,000 patches, by replaying
  them (frames -> SSE text -> the client parses and applies each) against from a snapshot
  (one frame), and their ratio.

Each figure is the best of ``--repeat`` runs (the least disturbed by other load). Targets
(issue 15): fan-out <= 2 us per delivered patch per subscriber with 100 subscribers;
resuming from a snapshot >= 10x faster than replaying 10,000 patches. Nothing is asserted.

    python benchmarks/bench_wire.py [--quick] [--repeat N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logstream import PositionedLog, RunLogPatch, stream_log, traced
from logstream._apply import apply_atomic
from logstream._sinks import sse_wire
from logstream._wire import Frame


def machine() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} CPUs ({model or platform.processor() or 'unknown'}), "
        f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}"
    )


def run_patches(tokens: int) -> list[RunLogPatch]:
    """A real run's patches: an agent with tool calls and a model streaming ``tokens``."""

    @traced(run_type="llm")
    def model(n: int) -> Any:
        for i in range(n):
            yield f"tok{i} "

    @traced(run_type="tool")
    def tool(x: int) -> int:
        return x + 1

    def agent(q: str) -> str:
        out = []
        for k in range(max(1, tokens // 500)):
            out.append(str(tool(k)))
            out.append("".join(model(500)))
        return "".join(out)

    return list(stream_log(agent, "go"))


def best(repeat: int, fn: Callable[[], float]) -> float:
    return min(fn() for _ in range(repeat))


def filled_log(patches: list[RunLogPatch]) -> PositionedLog:
    log = PositionedLog()
    for patch in patches:
        log.append(patch)
    log.end()
    return log


def bench_append(patches: list[RunLogPatch]) -> float:
    log = PositionedLog()
    start = time.perf_counter()
    for patch in patches:
        log.append(patch)
    return (time.perf_counter() - start) / len(patches) * 1e6


def bench_drain(log: PositionedLog, subscribers: int) -> float:
    """Round-robin ``subscribers`` sync iterators over a finished log, from position 0."""
    iters = [log.frames(after=0) for _ in range(subscribers)]
    start = time.perf_counter()
    for it in iters:
        for _ in it:
            pass
    elapsed = time.perf_counter() - start
    return elapsed / (log.position * subscribers) * 1e6


def bench_live(patches: list[RunLogPatch], subscribers: int) -> float:
    """A producer thread appends while ``subscribers`` async readers drain, live."""
    log = PositionedLog()
    ready = threading.Event()
    counts: list[int] = []

    async def readers() -> None:
        async def one() -> None:
            n = 0
            async for item in log.aframes(after=0):
                if isinstance(item, Frame):
                    n += 1
            counts.append(n)

        tasks = [asyncio.ensure_future(one()) for _ in range(subscribers)]
        await asyncio.sleep(0)
        ready.set()
        await asyncio.gather(*tasks)

    thread = threading.Thread(target=lambda: asyncio.run(readers()))
    thread.start()
    ready.wait()
    start = time.perf_counter()
    for patch in patches:
        log.append(patch)
    log.end()
    thread.join()
    elapsed = time.perf_counter() - start
    assert counts == [len(patches)] * subscribers, counts
    return elapsed / (len(patches) * subscribers) * 1e6


def client_apply(state: Any, text: str) -> Any:
    """What a client does per frame: parse the SSE data, apply the ops."""
    data = text.split("\ndata: ", 1)[1]
    ops = json.loads(data)["ops"]
    if len(ops) == 1 and ops[0]["op"] == "replace" and ops[0]["path"] == "":
        return ops[0]["value"]  # a snapshot: the parsed value is the client's own already
    return apply_atomic(state, ops)


def bench_resume(log: PositionedLog, missed: int) -> tuple[float, float]:
    """Seconds to bring a client back: replay ``missed`` patches, or one snapshot."""
    after = log.position - missed
    base_state = log.snapshot(at=after).ops[0]["value"]

    def replay() -> float:
        state = json.loads(json.dumps(base_state))
        start = time.perf_counter()
        for item in log.frames(after=after):
            if isinstance(item, Frame):
                state = client_apply(state, sse_wire(item))
        return time.perf_counter() - start

    def snapshot() -> float:
        start = time.perf_counter()
        log._snap = None  # a fresh snapshot each time: the copy is part of the cost
        state = None
        for item in log.frames(after=None):
            if isinstance(item, Frame):
                state = client_apply(state, sse_wire(item))
        assert state is not None
        return time.perf_counter() - start

    return replay(), snapshot()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure (best kept)")
    args = parser.parse_args()
    tokens = 2_000 if args.quick else 20_000
    missed = 1_000 if args.quick else 10_000
    repeat = 1 if args.quick else args.repeat

    patches = run_patches(tokens)
    log = filled_log(patches)
    print(f"machine: {machine()}")
    print(f"workload: one run, {len(patches):,} patches ({tokens:,} tokens, tool calls)")
    print()
    print(f"{'fan-out':58} {'us/patch/subscriber':>20}")
    rows = [
        ("producer: append (no subscribers), per patch", lambda: bench_append(patches)),
        ("drain a finished log, 1 sync subscriber", lambda: bench_drain(log, 1)),
        ("drain a finished log, 100 sync subscribers", lambda: bench_drain(log, 100)),
        ("live: producer thread + 1 async subscriber", lambda: bench_live(patches, 1)),
        ("live: producer thread + 100 async subscribers", lambda: bench_live(patches, 100)),
    ]
    for label, fn in rows:
        us = best(repeat, fn)
        print(f"{label:58} {us:20.3f}")
    print()
    print(f"resume after {missed:,} missed patches (server SSE text + client parse/apply):")
    print(f"{'run length':>12} {'snapshot':>10} {'replay':>10} {'snapshot':>10} {'ratio':>7}")
    for run_tokens in (missed, 2 * missed):
        run_log = filled_log(run_patches(run_tokens))
        replay, snap = (
            min(pair) for pair in zip(*(bench_resume(run_log, missed) for _ in range(repeat)))
        )
        state_kib = len(sse_wire(run_log.snapshot())) / 1024
        print(
            f"{run_log.position:>12,} {state_kib:>7,.0f} KiB {replay * 1e3:>7.2f} ms "
            f"{snap * 1e3:>7.2f} ms {replay / snap:>6.1f}x"
        )
    print("(target: the snapshot >= 10x faster; a token's text is in the state twice, so")
    print(" the snapshot grows with the whole run, the replay only with what was missed)")


if __name__ == "__main__":
    main()
