"""What logstream.otel costs per run on top of the OpenTelemetry SDK's own span cost.

Three variants get the same runs, in rounds that rotate which goes first:

- ``bare``: a ``Tracer`` without processors (the tracer's own cost);
- ``otel``: the same ``Tracer`` with an ``OpenTelemetryProcessor``;
- ``by hand``: no tracer; the same spans made directly with the SDK (same names, kinds,
  parents, times and attributes, taken from what ``otel`` exported in a warm-up).

Every variant's spans go through a ``SimpleSpanProcessor`` to an exporter that does
nothing. The processor's overhead per run is ``(otel - bare - by hand) / runs``: what the
processor adds beyond the SDK's own work for the same spans (target: at most 30 us).

The token workload streams tokens into LLM runs with content capture off, with and without
the processor: the difference per token is what the processor costs per token (the
processor defines no ``on_token`` hook, so it should be about zero).

Run: ``.venv/bin/python benchmarks/bench_otel.py [--runs N] [--rounds R] [--quick]``.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from logstream import Tracer
from logstream.otel import OpenTelemetryProcessor


class NullExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def null_provider() -> TracerProvider:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(NullExporter()))
    return provider


CHAT_OUTPUTS = {
    "generations": [
        [
            {
                "text": "It is sunny",
                "message": {
                    "type": "ai",
                    "content": "It is sunny",
                    "id": "chatcmpl-1",
                    "usage_metadata": {"input_tokens": 12, "output_tokens": 4},
                    "response_metadata": {"model_name": "gpt-4o", "finish_reason": "stop"},
                },
            }
        ]
    ],
    "llm_output": None,
}
CHAT_METADATA = {"ls_model_name": "gpt-4o", "ls_provider": "openai", "ls_temperature": 0.0}


def tree_workload(tracer: Tracer, trees: int) -> None:
    """``trees`` agents: a chain root with a chat-model child and a tool child (3 runs each)."""
    for _ in range(trees):
        root = tracer.start_run("agent", tags=["bench"], metadata={"user": "u1"})
        model = tracer.start_run(
            "model",
            "chat_model",
            parent_id=root.id,
            metadata=CHAT_METADATA,
            inputs={"messages": []},
        )
        tracer.end_run(model.id, outputs=CHAT_OUTPUTS, event="chat_model end")
        tool = tracer.start_run("search", "tool", parent_id=root.id, inputs={"input": "Paris"})
        tracer.end_run(tool.id, outputs={"output": "sunny"}, event="tool end")
        tracer.end_run(root.id, outputs={"output": "It is sunny"})


def recorded_spans(trees: int) -> list[ReadableSpan]:
    """The spans the processor exports for the workload, as the by-hand variant's script."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = Tracer(processors=[OpenTelemetryProcessor(tracer_provider=provider)], auto_close=False)
    tree_workload(tracer, trees)
    return list(exporter.get_finished_spans())


END_KEYS = ("gen_ai.usage.", "gen_ai.response.", "gen_ai.request.stream", "gen_ai.tool.call.id")


def by_hand(provider: TracerProvider, script: list[ReadableSpan]) -> Callable[[], None]:
    """Make the script's spans with the SDK directly: same tree, times, kinds, attributes.

    As hand-written instrumentation must, it sets what is known only at the end (usage,
    response, tool call id) just before ending the span, and the rest at its start.
    """
    sdk_tracer = provider.get_tracer("by-hand")
    starts = sorted(script, key=lambda span: span.start_time or 0)
    parent_of = {
        span.context.span_id: (span.parent.span_id if span.parent else None) for span in script
    }
    plan = []
    for span in starts:
        attributes = dict(span.attributes or {})
        at_end = {key: value for key, value in attributes.items() if key.startswith(END_KEYS)}
        at_start = {key: value for key, value in attributes.items() if key not in at_end}
        plan.append(
            (
                span.context.span_id,
                parent_of[span.context.span_id],
                span.name,
                span.kind,
                at_start,
                at_end,
                span.start_time,
                span.end_time,
            )
        )
    ends = {span.context.span_id for span in script}
    assert len(ends) == len(script)

    def run() -> None:
        opened: dict[int, Any] = {}
        contexts: dict[int, Any] = {}
        for span_id, parent_id, name, kind, attributes, _, start, _ in plan:
            context = contexts[parent_id] if parent_id is not None else None
            span = sdk_tracer.start_span(
                name, context=context, kind=kind, attributes=attributes, start_time=start
            )
            opened[span_id] = span
            contexts[span_id] = trace.set_span_in_context(span, context)
        for span_id, _, _, _, _, at_end, _, end in reversed(plan):  # children first
            span = opened[span_id]
            if at_end:
                span.set_attributes(at_end)
            span.end(end_time=end)

    return run


class NoOp:
    """A processor that does nothing: what the tracer's hook dispatch costs by itself."""

    def on_start(self, run: Any) -> None:
        pass

    def on_end(self, run: Any) -> None:
        pass


CLOCK = time.perf_counter


def timed(fn: Callable[[], None]) -> float:
    gc.collect()
    start = CLOCK()
    fn()
    return CLOCK() - start


def main(argv: Sequence[str] = ()) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000, help="runs per round (3 per tree)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=20_000, help="tokens per round")
    parser.add_argument("--quick", action="store_true", help="small sizes, one round")
    parser.add_argument(
        "--cpu", action="store_true", help="time by process CPU time, not wall time"
    )
    args = parser.parse_args(list(argv))
    global CLOCK
    CLOCK = time.process_time if args.cpu else time.perf_counter
    print(f"clock: {'process CPU time' if args.cpu else 'wall time'}")
    if args.quick:
        args.runs, args.rounds, args.tokens = 300, 1, 2_000
    trees = max(1, args.runs // 3)
    runs = trees * 3
    script = recorded_spans(trees)
    assert len(script) == runs

    def bare() -> None:
        tree_workload(Tracer(auto_close=False), trees)

    def otel() -> None:
        processor = OpenTelemetryProcessor(tracer_provider=null_provider())
        tree_workload(Tracer(processors=[processor], auto_close=False), trees)

    def noop() -> None:
        tree_workload(Tracer(processors=[NoOp()], auto_close=False), trees)

    hand = by_hand(null_provider(), script)
    variants: dict[str, Callable[[], None]] = {
        "bare": bare,
        "no-op": noop,
        "otel": otel,
        "by hand": hand,
    }
    for fn in variants.values():  # warm up
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    overheads: list[float] = []
    own: list[float] = []
    names = list(variants)
    for round_ in range(args.rounds):
        order = names[round_ % len(names) :] + names[: round_ % len(names)]
        got = {name: timed(variants[name]) for name in order}
        for name, seconds in got.items():
            times[name].append(seconds)
        overheads.append((got["otel"] - got["bare"] - got["by hand"]) / runs)
        own.append((got["otel"] - got["no-op"] - got["by hand"]) / runs)

    print(
        f"runs per round: {runs} ({trees} trees: chain + chat_model + tool), rounds: {args.rounds}"
    )
    for name in names:
        median = statistics.median(times[name])
        print(f"  {name:8s} {median * 1e3:8.1f} ms  {median / runs * 1e6:6.1f} us/run")
    overhead = statistics.median(overheads) * 1e6
    print(f"  processor overhead beyond the SDK's own span cost: {overhead:.1f} us/run (median)")
    print(f"  target <= 30 us/run: {'met' if overhead <= 30 else 'NOT met'}")
    dispatch = statistics.median(own) * 1e6
    print(f"  of which the processor's own code (beyond a no-op processor): {dispatch:.1f} us/run")

    tokens_per_run = 1000
    llm_runs = max(1, args.tokens // tokens_per_run)
    token_list = [f"t{i}" for i in range(tokens_per_run)]

    def stream(tracer: Tracer) -> None:
        root = tracer.start_run("agent")
        for _ in range(llm_runs):
            run = tracer.start_run("model", "llm", parent_id=root.id)
            for token in token_list:
                tracer.add_token(run.id, token)
            tracer.end_run(run.id, outputs={"generations": [[{"text": "x"}]]}, event="llm end")
        tracer.end_run(root.id)

    def without() -> None:
        tracer = Tracer()
        stream(tracer)

    def with_processor() -> None:
        processor = OpenTelemetryProcessor(tracer_provider=null_provider(), capture_content=False)
        stream(Tracer(processors=[processor]))

    token_variants = {"without": without, "with otel": with_processor}
    for fn in token_variants.values():
        fn()
    token_times: dict[str, list[float]] = {name: [] for name in token_variants}
    diffs = []
    for round_ in range(args.rounds):
        order = list(token_variants)[:: 1 if round_ % 2 == 0 else -1]
        got = {name: timed(token_variants[name]) for name in order}
        for name, seconds in got.items():
            token_times[name].append(seconds)
        diffs.append((got["with otel"] - got["without"]) / (llm_runs * tokens_per_run))
    print(f"tokens per round: {llm_runs * tokens_per_run} (content capture off)")
    for name, values in token_times.items():
        median = statistics.median(values)
        per_token = median / (llm_runs * tokens_per_run) * 1e6
        print(f"  {name:9s} {median * 1e3:8.1f} ms  {per_token:6.2f} us/token")
    diff = statistics.median(diffs) * 1e6
    print(f"  processor cost per token: {diff:+.2f} us (median of the per-round differences)")


if __name__ == "__main__":
    main(sys.argv[1:])
