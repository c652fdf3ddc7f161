"""Side-by-side benchmark: logstream's handler against LangChain's, in one process.

Each workload runs on both handlers, and on the floor handler (:class:`Floor`), in rounds
that rotate which goes first, ``--pairs`` times; the table shows the median time of each
and the median of the per-round ratios (LangChain's time / ours), so a ratio of 3.0 means
logstream did the same work in a third of the time, and of our time / the floor's.

Fairness: both handlers get the same calls with the same arguments, passed as
LangChain's callback manager passes them (keywords ``run_id=``, ``parent_run_id=``,
``tags=``, ``chunk=``, ...), built before the clock starts where the manager would have
built them (chat generation chunks, ``LLMResult``); and both streams are drained to the
end the same way, by ``async for`` in one event loop (the only way LangChain's stream can
be read: its ``receive_stream``). Times include draining. Run ids are made before the
clock starts, as the callback manager makes them outside any handler.

Without langchain-core installed the script measures logstream alone. It always
measures the ``logstream`` package of the checkout it lives in, not an installed one.

Run: python benchmarks/bench_handlers.py [--pairs 5] [--quick] [--only tokens,tree,...]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import gc
import os
import platform
import statistics
import sys
import threading
import time
import tracemalloc
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any, Callable, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from logstream import LogStreamCallbackHandler, RunLog, RunLogPatch, dumps
from logstream._model import isoformat_ms  # the fastest formatter we have: the floor uses it too
from logstream.testing import FakeClock

try:
    from langchain_core import __version__ as LANGCHAIN_VERSION
    from langchain_core.messages import AIMessageChunk, HumanMessage
    from langchain_core.outputs import ChatGenerationChunk, LLMResult
    from langchain_core.tracers.log_stream import LogStreamCallbackHandler as LangChainHandler
    from langchain_core.tracers.log_stream import RunLog as LangChainRunLog
    from langchain_core.tracers.log_stream import RunLogPatch as LangChainRunLogPatch
except ImportError:  # measure logstream alone
    LANGCHAIN_VERSION = None
    LangChainHandler = None

Ours = LogStreamCallbackHandler
Timing = tuple[float, float]  # (wall seconds, CPU seconds of the process)
Workload = Callable[[Any, dict[str, Any]], Timing]

# -- driving a handler as LangChain's callback manager does ------------------------------


def _clock() -> Timing:
    return time.perf_counter(), time.process_time()


def _since(start: Timing) -> Timing:
    wall, cpu = _clock()
    return wall - start[0], cpu - start[1]


def _drain(
    handler: Any, loop: asyncio.AbstractEventLoop, collect: Optional[list[Any]] = None
) -> int:
    """Read a closed handler's stream to the end with ``async for`` in ``loop``.

    With ``collect`` (only outside the timing: the floor check), each patch is kept there.
    """

    async def read() -> int:
        count = 0
        async for _ in handler:
            count += 1
        return count

    async def keep(into: list[Any]) -> int:
        async for patch in handler:
            into.append(patch)
        return len(into)

    return loop.run_until_complete(read() if collect is None else keep(collect))


def _prompt_messages() -> list[list[Any]]:
    if LANGCHAIN_VERSION is None:
        return [[{"role": "user", "content": "x"}]]
    return [[HumanMessage(content="x")]]


def _llm_result() -> Any:
    if LANGCHAIN_VERSION is None:
        return {"generations": [], "llm_output": None}
    return LLMResult(generations=[])


def _chat_chunks(count: int) -> list[Any]:
    """Chat generation chunks as a chat model yields them (duck-typed without LangChain)."""
    if LANGCHAIN_VERSION is None:
        return [SimpleNamespace(message={"content": "tok"}) for _ in range(count)]
    return [ChatGenerationChunk(message=AIMessageChunk(content="tok")) for _ in range(count)]


def _produce_tokens(handler: Any, params: dict[str, Any]) -> None:
    """One root chain; LLM (or chat-model) runs under it, each streaming its tokens."""
    per_run, chunks = params["tokens"], params.get("chunks")
    result, messages, (root, *llms) = params["result"], params["messages"], params["ids"]
    tags: list[str] = []  # the manager passes the run's own tags list every time
    handler.on_chain_start(
        {}, {"q": "x"}, run_id=root, parent_run_id=None, tags=tags, metadata={}, name="root"
    )
    for llm in llms:
        if chunks is None:
            handler.on_llm_start(
                {}, ["x"], run_id=llm, parent_run_id=root, tags=tags, metadata={}, name="llm"
            )
            for _ in range(per_run):
                handler.on_llm_new_token(
                    token="tok", run_id=llm, parent_run_id=root, tags=tags, chunk=None
                )
        else:
            handler.on_chat_model_start(
                {}, messages, run_id=llm, parent_run_id=root, tags=tags, metadata={}, name="chat"
            )
            for chunk in chunks:
                handler.on_llm_new_token(
                    token="tok", run_id=llm, parent_run_id=root, tags=tags, chunk=chunk
                )
        handler.on_llm_end(result, run_id=llm, parent_run_id=root, tags=tags)
    handler.on_chain_end({"a": 1}, run_id=root, parent_run_id=None, tags=tags)


def tokens(handler_class: Any, params: dict[str, Any]) -> Timing:
    """Stream tokens from LLM or chat-model runs under one root, then drain the stream."""
    loop = params["loop"]
    handler = handler_class(**params.get("options", {}))
    start = _clock()
    _produce_tokens(handler, params)
    _drain(handler, loop, params.get("collect"))
    return _since(start)


def live_tokens(handler_class: Any, params: dict[str, Any]) -> Timing:
    """Tokens produced in a worker thread while ``async for`` reads them in the loop."""
    loop = params["loop"]
    handler = handler_class(**params.get("options", {}))
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            _produce_tokens(handler, params)
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    start = _clock()
    producer = threading.Thread(target=produce)
    producer.start()
    _drain(handler, loop, params.get("collect"))
    producer.join()
    elapsed = _since(start)
    if errors:
        raise errors[0]
    return elapsed


def tree(handler_class: Any, params: dict[str, Any]) -> Timing:
    """Start and end many short chain runs, each with a tool child, with filters on."""
    loop, (root, *ids) = params["loop"], params["ids"]
    options = params.get("options", {})
    handler = handler_class(include_types=["chain", "tool"], exclude_tags=["skip"], **options)
    skip, keep, none = ["skip"], ["keep"], []  # each run's tags, as the manager passes them
    start = _clock()
    handler.on_chain_start(
        {}, {"q": "x"}, run_id=root, parent_run_id=None, tags=none, metadata={}, name="root"
    )
    for i in range(len(ids) // 2):
        step, tool = ids[2 * i], ids[2 * i + 1]
        tags = skip if i % 10 == 0 else keep
        handler.on_chain_start(
            {}, {"i": i}, run_id=step, parent_run_id=root, tags=tags, metadata={}, name="step"
        )
        handler.on_tool_start(
            {}, "x", run_id=tool, parent_run_id=step, tags=tags, metadata={}, name="tool"
        )
        handler.on_tool_end("y", run_id=tool, parent_run_id=step, tags=tags)
        handler.on_chain_end({"o": i}, run_id=step, parent_run_id=root, tags=tags)
    handler.on_chain_end({"a": 1}, run_id=root, parent_run_id=None, tags=none)
    _drain(handler, loop, params.get("collect"))
    return _since(start)


def _stream_ops(count: int) -> list[list[dict[str, Any]]]:
    """The ops of a token stream as the handlers emit them: state, entry, then tokens."""
    state = {"id": "r", "streamed_output": [], "final_output": None, "logs": {}, "name": "root"}
    entry = {"id": "l", "name": "llm", "streamed_output": [], "streamed_output_str": []}
    ops = [[{"op": "replace", "path": "", "value": state}]]
    ops.append([{"op": "add", "path": "/logs/llm", "value": entry}])
    for _ in range(count):
        ops.append(
            [
                {"op": "add", "path": "/logs/llm/streamed_output_str/-", "value": "tok"},
                {"op": "add", "path": "/logs/llm/streamed_output/-", "value": "tok"},
            ]
        )
    return ops


def accumulate(handler_class: Any, params: dict[str, Any]) -> Timing:
    """Fold a stream's patches one by one into a RunLog (``log = log + patch``)."""
    ours = handler_class is Ours
    patch_class = RunLogPatch if ours else LangChainRunLogPatch
    log_class = RunLog if ours else LangChainRunLog
    patches = [patch_class(*ops) for ops in _stream_ops(params["patches"])]
    start = _clock()
    log = log_class(state=None)
    for patch in patches:
        log = log + patch
    return _since(start)


# -- the floor: the least pure-Python work that puts the same ops on the wire -----------


_utc_now = functools.partial(datetime.now, timezone.utc)


class Floor:
    """The least pure-Python work that still streams the ops our handler streams.

    For the callbacks the workloads send, with the default schema format
    (``"streaming_events"``): no lock, no copies, no checks, no run records beyond a tuple
    per open run, and a plain list as the buffer. It is what a handler would cost if it did
    nothing but build the wire ops. Times are formatted by our own cached formatter
    (``isoformat_ms``), so a trick of ours is never counted against us. ``main`` asserts,
    outside the timing, that it streams the same ops as ours (compared as
    :func:`logstream.dumps` writes them) for every workload it is timed on. Not thread-safe
    except for the one live reader of ``live_tokens``, which polls.
    """

    def __init__(
        self,
        *,
        include_types: Any = None,
        exclude_tags: Any = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.buffer: list[list[dict[str, Any]]] = []
        self.closed = False
        self.clock = clock
        self.include_types = None if include_types is None else frozenset(include_types)
        self.exclude_tags = frozenset(exclude_tags or ())
        self.root: Any = None
        self.open: dict[Any, tuple[str, Any]] = {}  # run id -> (escaped log key, inputs)
        self.names: dict[str, int] = {}

    def _start(self, run_type: str, run_id: Any, tags: Any, metadata: Any, name: str,
               inputs: Any) -> None:  # fmt: skip
        time = self.clock()
        if self.root is None:
            self.root = run_id
            state = {"id": str(run_id), "streamed_output": [], "final_output": None,
                     "logs": {}, "name": name, "type": run_type}  # fmt: skip
            self.buffer.append([{"op": "replace", "path": "", "value": state}])
            return
        if (self.include_types is not None and run_type not in self.include_types) or (
            self.exclude_tags and not self.exclude_tags.isdisjoint(tags)
        ):
            return
        count = self.names.get(name, 0) + 1
        self.names[name] = count
        key = name if count == 1 else f"{name}:{count}"
        if "~" in key or "/" in key:
            key = key.replace("~", "~0").replace("/", "~1")
        key = "/logs/" + key
        self.open[run_id] = (key, inputs)
        entry = {"id": str(run_id), "name": name, "type": run_type, "tags": tags,
                 "metadata": metadata, "start_time": isoformat_ms(time),
                 "streamed_output": [], "streamed_output_str": [], "final_output": None,
                 "end_time": None, "inputs": inputs}  # fmt: skip
        self.buffer.append([{"op": "add", "path": key, "value": entry}])

    def _end(self, run_id: Any, outputs: Any) -> None:
        time = self.clock()
        if run_id == self.root:
            self.closed = True
            return
        run = self.open.pop(run_id, None)
        if run is not None:
            key, inputs = run
            self.buffer.append([
                {"op": "replace", "path": key + "/inputs", "value": inputs},
                {"op": "add", "path": key + "/final_output", "value": outputs},
                {"op": "add", "path": key + "/end_time",
                 "value": isoformat_ms(time)},
            ])  # fmt: skip

    def on_chain_start(self, serialized: Any, inputs: Any, *, run_id: Any, tags: Any,
                       metadata: Any, name: str, **kwargs: Any) -> None:  # fmt: skip
        self._start("chain", run_id, tags, metadata, name, inputs)

    def on_chain_end(self, outputs: Any, *, run_id: Any, **kwargs: Any) -> None:
        self._end(run_id, outputs)

    def on_llm_start(self, serialized: Any, prompts: Any, *, run_id: Any, tags: Any,
                     metadata: Any, name: str, **kwargs: Any) -> None:  # fmt: skip
        self._start("llm", run_id, tags, metadata, name, {"prompts": prompts})

    def on_chat_model_start(self, serialized: Any, messages: Any, *, run_id: Any, tags: Any,
                            metadata: Any, name: str, **kwargs: Any) -> None:  # fmt: skip
        self._start("chat_model", run_id, tags, metadata, name, {"messages": messages})

    def on_llm_new_token(self, token: str, *, run_id: Any, chunk: Any = None,
                         **kwargs: Any) -> None:  # fmt: skip
        key = self.open[run_id][0]
        self.buffer.append([
            {"op": "add", "path": key + "/streamed_output_str/-", "value": token},
            {"op": "add", "path": key + "/streamed_output/-",
             "value": token if chunk is None else chunk.message},
        ])  # fmt: skip

    def on_llm_end(self, response: Any, *, run_id: Any, **kwargs: Any) -> None:
        self._end(run_id, response)

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: Any, tags: Any,
                      metadata: Any, name: str, **kwargs: Any) -> None:  # fmt: skip
        self._start("tool", run_id, tags, metadata, name, kwargs.get("inputs"))

    def on_tool_end(self, output: Any, *, run_id: Any, **kwargs: Any) -> None:
        self._end(run_id, output)

    async def __aiter__(self) -> Any:
        """Yield each patch's ops; poll (no lock, no wake-up) until the root has ended."""
        buffer, sent = self.buffer, 0
        while True:
            if sent < len(buffer):
                yield buffer[sent]
                sent += 1
            elif self.closed:
                if sent == len(buffer):
                    return
            else:
                await asyncio.sleep(0.0005)


# -- measuring ---------------------------------------------------------------------------


def _timed(workload: Workload, handler_class: Any, params: dict[str, Any]) -> Timing:
    gc.collect()
    return workload(handler_class, params)


def check_floor(title: str, workload: Workload, params: dict[str, Any]) -> None:
    """Assert, outside any timing, that the floor streams our ops for ``workload``.

    Both get the same fake clock; their patches are compared as :func:`logstream.dumps`
    writes them, i.e. as they go on the wire.
    """
    streams = []
    for handler_class in (Ours, Floor):
        collected: list[Any] = []
        options = {**params.get("options", {}), "clock": FakeClock()}
        workload(handler_class, {**params, "options": options, "collect": collected})
        streams.append([dumps(getattr(patch, "ops", patch)) for patch in collected])
    ours, floor = streams
    if ours != floor:
        at = next(
            (i for i, (a, b) in enumerate(zip(ours, floor)) if a != b), min(map(len, streams))
        )
        shown = [s[at][:300] if at < len(s) else "<none>" for s in streams]
        msg = f"{title}: the floor's patch {at} differs from ours:\n ours  {shown[0]}"
        msg += f"\n floor {shown[1]}"
        raise AssertionError(msg)


def compare(
    title: str,
    workload: Workload,
    params: dict[str, Any],
    pairs: int,
    with_langchain: bool,
    with_floor: bool = True,
) -> None:
    """Run one workload ``pairs`` times on each handler, rotating the order, and print a row.

    The handlers are ours, LangChain's (if installed) and the floor (if ``with_floor``);
    each round runs them all once, starting with a different one each time.
    """
    classes: dict[str, Any] = {"ours": Ours}
    if with_langchain:
        classes["theirs"] = LangChainHandler
    if with_floor:
        classes["floor"] = Floor
    times: dict[str, list[Timing]] = {name: [] for name in classes}
    order = list(classes)
    for i in range(pairs):
        shift = i % len(order)
        for name in order[shift:] + order[:shift]:
            times[name].append(_timed(workload, classes[name], params))
    ours, theirs, floor = times["ours"], times.get("theirs", []), times.get("floor", [])
    ours_wall = statistics.median(t[0] for t in ours)
    if theirs:
        lc = f"{statistics.median(t[0] for t in theirs):>9.3f}s"
        wall = statistics.median(a[0] / b[0] for a, b in zip(theirs, ours))
        cpu = statistics.median(a[1] / b[1] for a, b in zip(theirs, ours))
        ratios = f"{wall:>6.1f}x {cpu:>6.1f}x"
    else:
        lc, ratios = f"{'-':>10}", f"{'-':>7} {'-':>7}"
    if floor:
        over = statistics.median(a[0] / b[0] for a, b in zip(ours, floor))
        floor_cols = f"{statistics.median(t[0] for t in floor):>9.3f}s {over:>9.2f}x"
    else:
        floor_cols = f"{'-':>10} {'-':>10}"
    print(f"{title:<48} {lc} {ours_wall:>9.3f}s {ratios} {floor_cols}", flush=True)


def entry_fields_cost(title: str, workload: Workload, params: dict[str, Any], pairs: int) -> None:
    """Time a workload on our handler with the opt-in entry fields off and on; print the ratio.

    Each round runs both, alternating which goes first; the ratio is the median over
    rounds of (fields on) / (fields off) wall time.
    """
    plain = {**params, "options": {**params.get("options", {})}}
    extended = {**params, "options": {**plain["options"], "entry_fields": ["parent_ids", "error"]}}
    off: list[Timing] = []
    on: list[Timing] = []
    for i in range(pairs):
        runs = [(off, plain), (on, extended)]
        for into, given in runs if i % 2 == 0 else runs[::-1]:
            into.append(_timed(workload, Ours, given))
    ratio = statistics.median(a[0] / b[0] for a, b in zip(on, off))
    off_wall = statistics.median(t[0] for t in off)
    on_wall = statistics.median(t[0] for t in on)
    print(
        f"{title:<48} fields off {off_wall:>7.3f}s, on {on_wall:>7.3f}s: on/off {ratio:>5.2f}x",
        flush=True,
    )


def scaling(patches: list[int], pairs: int, budget: float) -> None:
    """Time RunLog accumulation of growing streams (logstream only); show growth."""
    times: dict[int, float] = {}
    for count in patches:
        params = {"patches": count}
        if times:
            previous = max(times)
            # A quadratic RunLog would take (count / previous)^2 times as long: skip the
            # run when that would exceed the budget, and say so.
            estimate = times[previous] * (count / previous) ** 2
            if estimate > budget:
                print(f"RunLog + patch, {count:,} patches (ours)".ljust(59) + "skipped: ", end="")
                print(f"{count // previous}x the patches of a {times[previous]:.1f}s run")
                continue
        runs = [_timed(accumulate, Ours, params)[0]]
        while len(runs) < pairs and sum(runs) < 2:  # repeat only the quick ones
            runs.append(_timed(accumulate, Ours, params)[0])
        times[count] = statistics.median(runs)
        print(f"{f'RunLog + patch, {count:,} patches (ours)':<59} {times[count]:>9.3f}s")
    counts = sorted(times)
    for small, big in zip(counts, counts[1:]):
        growth = times[big] / times[small]
        print(
            f"  {big:,} / {small:,} patches: {growth:.1f}x the time for {big // small}x the patches"
        )


def _peak(produce: Callable[[], None]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        produce()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def memory(count: int, loop: asyncio.AbstractEventLoop, with_langchain: bool) -> None:
    """Peak traced memory of ``count`` token events, produced then drained."""
    params = {
        "tokens": count,
        "ids": [uuid.uuid4(), uuid.uuid4()],
        "result": _llm_result(),
        "messages": _prompt_messages(),
        "loop": loop,
    }

    def run(handler_class: Any) -> Callable[[], None]:
        def produce() -> None:
            handler = handler_class()
            _produce_tokens(handler, params)
            _drain(handler, loop)

        return produce

    def bounded_live() -> None:
        handler = Ours(max_buffer=1000)
        consumer = threading.Thread(target=lambda: sum(1 for _ in handler))
        consumer.start()
        _produce_tokens(handler, params)
        consumer.join()

    rows = [("logstream", run(Ours)), ("logstream, max_buffer=1000, reader thread", bounded_live)]
    if with_langchain:
        rows.insert(0, ("LangChain", run(LangChainHandler)))
    print(f"\npeak traced memory, {count:,} token events (tracemalloc):")
    for name, produce in rows:
        print(f"  {name:<46} {_peak(produce) / 2**20:>8.1f} MiB", flush=True)


def main() -> None:
    """Run every workload and print the table."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="rounds per workload")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (a smoke run)")
    parser.add_argument(
        "--only",
        default="tokens,live,tree,buffer,fields,runlog,memory",
        help="comma-separated groups to run (default: all)",
    )
    args = parser.parse_args()
    only = set(args.only.split(","))
    scale = 10 if args.quick else 1
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)  # LangChain's stream binds to the current loop
    with_langchain = LangChainHandler is not None
    common = {"result": _llm_result(), "messages": _prompt_messages(), "loop": loop}
    per_run, steps, patches = 1000 // scale, 3000 // scale, 3000 // scale
    llm_ids = [uuid.uuid4() for _ in range(21)]  # the host's run ids: made before the clock
    text = {"tokens": per_run, "ids": llm_ids, **common}
    chat = {"tokens": 0, "chunks": _chat_chunks(per_run), "ids": llm_ids, **common}
    step_ids = {"ids": [uuid.uuid4() for _ in range(1 + 2 * steps)], **common}
    workloads: list[tuple[str, str, Workload, dict[str, Any]]] = [
        ("tokens", f"tokens: 20 LLM runs x {per_run:,} text tokens", tokens, text),
        ("tokens", f"tokens: 20 chat runs x {per_run:,} chunks", tokens, chat),
        ("live", "tokens, as above, producer thread + live reader", live_tokens, text),
        ("tree", f"tree: {steps:,} chains + tool child, filters", tree, step_ids),
        ("runlog", f"RunLog + patch, {patches:,} patches", accumulate, {"patches": patches}),
    ]
    where = f"{os.cpu_count()} CPUs, {platform.machine()}, python {platform.python_version()}"
    lc = f"langchain-core {LANGCHAIN_VERSION}" if with_langchain else "no langchain-core"
    print(f"{where}, {lc}, pairs={args.pairs}{', quick' if args.quick else ''}")
    print("times: median wall; wall/cpu: median over rounds of LangChain's time / ours;")
    print("ours/floor: median over rounds of our wall time / the floor handler's (see Floor)")
    print(
        f"{'workload':<48} {'langchain':>10} {'logstream':>10} {'wall':>7} {'cpu':>7}"
        f" {'floor':>10} {'ours/floor':>10}"
    )
    for group, title, workload, params in workloads:
        if group in only:
            floored = workload is not accumulate
            if floored:
                check_floor(title, workload, params)
            compare(title, workload, params, args.pairs, with_langchain, floored)
    if "buffer" in only:
        bounded = {**text, "options": {"max_buffer": 10**9}}
        compare(
            "tokens: text, as above, max_buffer=10**9 (ours)",
            tokens,
            bounded,
            args.pairs,
            False,
            False,
        )
    if "fields" in only:  # the opt-in entry fields: per-run cost, so the tree workload
        print("\nentry_fields=['parent_ids', 'error'] (ours), median of on/off over rounds:")
        entry_fields_cost(f"tree: {steps:,} chains + tool child", tree, step_ids, args.pairs)
        entry_fields_cost(f"tokens: 20 LLM runs x {per_run:,} tokens", tokens, text, args.pairs)
    if "runlog" in only:
        scaling([10_000 // scale, 100_000 // scale], args.pairs, 5 if args.quick else 120)
    if "memory" in only:
        memory(100_000 // scale, loop, with_langchain)
    loop.close()


if __name__ == "__main__":
    main()
