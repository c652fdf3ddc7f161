"""Per-call cost of logstream.dumps and logstream.redact_secrets on typical values.

Prints the best of several timed runs per case, in microseconds per call (best-of is the
figure least disturbed by other load on the machine). Figures are not asserted anywhere.

    python benchmarks/bench_serialize_redact.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import timeit
import uuid
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from logstream import dumps, redact_secrets

TOKEN_PATCH = [{"op": "add", "path": "/logs/x/streamed_output/-", "value": "tok"}]
TOKEN_STR_PATCH = [
    {"op": "add", "path": "/logs/x/streamed_output_str/-", "value": "tok"},
    {"op": "add", "path": "/logs/x/streamed_output/-", "value": "tok"},
]
START_PATCH = [
    {
        "op": "add",
        "path": "/logs/ChatModel",
        "value": {
            "id": str(uuid.UUID(int=1)),
            "name": "ChatModel",
            "type": "chat_model",
            "tags": ["seq:step:2"],
            "metadata": {"ls_provider": "openai", "ls_model_name": "gpt-4o", "thread": 7},
            "start_time": "2026-11-24T01:00:00.000+00:00",
            "streamed_output": [],
            "streamed_output_str": [],
            "final_output": None,
            "end_time": None,
        },
    }
]


class Chunk:
    """A message-chunk-like object with model_dump(), as a chat model streams."""

    def __init__(self, content: str) -> None:
        self.content = content

    def model_dump(self) -> dict[str, Any]:
        return {
            "content": self.content,
            "additional_kwargs": {},
            "response_metadata": {},
            "type": "AIMessageChunk",
            "name": None,
            "id": "run-1",
            "tool_calls": [],
            "invalid_tool_calls": [],
            "usage_metadata": None,
            "tool_call_chunks": [],
        }


CHUNK_PATCH = [{"op": "add", "path": "/logs/ChatModel/streamed_output/-", "value": Chunk("tok")}]
NAN_PATCH = [{"op": "add", "path": "/logs/x/final_output", "value": {"score": math.nan}}]
METADATA = {"ls_provider": "openai", "ls_model_name": "gpt-4o", "max_tokens": 256, "thread": 7}
PROSE = "The quick brown fox jumps over the lazy dog. " * 20  # 900 characters


def best_us(fn: Callable[[], Any], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer calls (a smoke run)")
    args = parser.parse_args()
    scale, repeat = (0.02, 2) if args.quick else (1.0, 7)

    def n(count: int) -> int:
        return max(1, int(count * scale))

    cases: list[tuple[str, Callable[[], Any], int]] = [
        ("json.dumps(token patch) (baseline)", lambda: json.dumps(TOKEN_PATCH), n(200_000)),
        ("dumps(token patch)", lambda: dumps(TOKEN_PATCH), n(200_000)),
        ("dumps(2-op token patch)", lambda: dumps(TOKEN_STR_PATCH), n(200_000)),
        ("dumps(chat-model start patch)", lambda: dumps(START_PATCH), n(50_000)),
        ("dumps(patch with a message chunk object)", lambda: dumps(CHUNK_PATCH), n(20_000)),
        ("dumps(patch with a NaN)", lambda: dumps(NAN_PATCH), n(20_000)),
        ("redact_secrets('tok')", lambda: redact_secrets("tok"), n(500_000)),
        ("redact_secrets(900-char prose)", lambda: redact_secrets(PROSE), n(20_000)),
        ("redact_secrets(metadata dict, 4 keys)", lambda: redact_secrets(METADATA), n(50_000)),
        ("redact_secrets(token patch ops)", lambda: redact_secrets(TOKEN_PATCH), n(50_000)),
    ]
    print(f"python {platform.python_version()} on {platform.machine()}, best of {repeat}")
    for name, fn, number in cases:
        print(f"{name:45s} {best_us(fn, number, repeat):8.2f} us")


if __name__ == "__main__":
    main()
