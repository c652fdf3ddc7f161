"""The callback goldens are what LangChain's own handler streams for the same events.

Each callback scenario of ``tests/golden_scenarios.py`` is driven into LangChain's
``LogStreamCallbackHandler`` with LangChain's own objects (an ``LLMResult``, a
``ChatGenerationChunk``) where the golden run passed plain values. Its patches are written
through the same :class:`~logstream.JsonLinesSink`, and compared line by line with the
golden file after one normalization on both sides: every timestamp becomes ``<time>``
(LangChain reads the real clock; the goldens a fake one). Run ids are the same on both
sides (the scenarios pass them), so they are compared as they are. One documented
deviation is undone on LangChain's side first: it puts a run name with ``/`` or ``~`` in a
path unescaped (a patch that does not apply; README, "Differences"), so its log keys are
escaped as RFC 6901 says before the comparison.
"""

from __future__ import annotations

import asyncio
import io
import re
from pathlib import Path
from typing import Any

import pytest
from golden_scenarios import CALLBACK_SCENARIOS, CallbackScenario, Kit, scenario_id
from langchain_core.messages import AIMessageChunk
from langchain_core.outputs import ChatGenerationChunk, Generation, LLMResult
from langchain_core.tracers.log_stream import LogStreamCallbackHandler as LangChainHandler

from logstream import JsonLinesSink
from logstream.testing import SequentialIds

_TIME = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)"')


class LangChainKit(Kit):
    """The values LangChain's callback manager passes, as LangChain's own objects."""

    def llm_result(self, text: str) -> Any:
        """Return a real ``LLMResult`` with one generation."""
        return LLMResult(generations=[[Generation(text=text)]])

    def chat_chunk(self, text: str, message_id: str) -> Any:
        """Return a real ``ChatGenerationChunk`` around an ``AIMessageChunk``."""
        return ChatGenerationChunk(message=AIMessageChunk(content=text, id=message_id))


def _langchain_stream(scenario: CallbackScenario) -> str:
    """Drive LangChain's handler through the scenario; return its patches as JSON Lines."""

    async def collect() -> list[Any]:
        handler = LangChainHandler(auto_close=True, **scenario.handler_options())
        scenario.drive(handler, SequentialIds(), LangChainKit())
        return [patch.ops async for patch in handler]

    out = io.StringIO()
    JsonLinesSink(out).consume(_escape_log_keys(asyncio.run(collect())))
    return out.getvalue()


def _escape_log_keys(patches: list[Any]) -> list[list[dict[str, Any]]]:
    """Return LangChain's patches with each ``/logs/<key>`` path's key escaped (RFC 6901)."""
    keys: list[str] = []
    escaped = []
    for ops in patches:
        new_ops = []
        for op in ops:
            path = op["path"]
            value = op.get("value")
            if op["op"] == "add" and isinstance(value, dict) and {"id", "start_time"} <= set(value):
                keys.append(path[len("/logs/") :])  # a new log entry: its path is its key
            if path.startswith("/logs/"):
                rest = path[len("/logs/") :]
                owners = [k for k in keys if rest == k or rest.startswith(k + "/")]
                key = max(owners, key=len, default=None)
                if key is not None:
                    safe = key.replace("~", "~0").replace("/", "~1")
                    path = "/logs/" + safe + rest[len(key) :]
            new_ops.append({**op, "path": path})
        escaped.append(new_ops)
    return escaped


def _without_times(text: str) -> list[str]:
    return _TIME.sub('"<time>"', text).splitlines()


@pytest.mark.parametrize(
    "scenario", [s for s in CALLBACK_SCENARIOS if s.langchain_differs is None], ids=scenario_id
)
def test_golden_file_is_what_langchain_streams(scenario: CallbackScenario) -> None:
    """LangChain's handler streams the golden file's lines, times aside, for the scenario."""
    golden = _without_times(scenario.file.read_text(encoding="ascii"))
    theirs = _without_times(_langchain_stream(scenario))
    assert len(golden) > 2 and '"<time>"' in "".join(golden)  # the normalization bit
    for number, (expected, got) in enumerate(zip(theirs, golden), start=1):
        assert got == expected, f"{scenario.file.name} line {number}: LangChain streams {expected}"
    assert len(golden) == len(theirs)


def test_only_documented_deviations_are_left_out() -> None:
    """A callback golden LangChain is not checked against names a README deviation."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    left_out = [s for s in CALLBACK_SCENARIOS if s.langchain_differs is not None]
    assert left_out  # the key clash scenario
    for scenario in left_out:
        assert scenario.langchain_differs in readme, scenario.name
        assert _langchain_stream(scenario) != scenario.file.read_text(encoding="ascii")
