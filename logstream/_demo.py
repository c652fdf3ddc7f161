"""The self-contained demo: a small agent loop traced through the callback adapter.

A fake streaming chat model decides to call a weather tool, the tool answers, and the
model streams its reply. The agent runs in a worker thread and drives
:class:`~logstream._callbacks.LogStreamCallbackHandler` through LangChain-shaped callbacks;
the main thread prints each patch as it arrives, then the state the patches rebuild.
Ids and times are deterministic, so two runs print the same thing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any, Optional, TextIO

from ._callbacks import LogStreamCallbackHandler
from ._config import Redactor
from ._patches import JsonPatchOp, RunLog, RunLogPatch
from .testing import FakeClock  # re-exported: ``from logstream._demo import FakeClock``

__all__ = ["FakeClock", "demo_patches", "format_state", "run_demo", "write_ops"]

_NAMESPACE = uuid.UUID("6f1c1b0e-8c2a-4d3e-9a53-0d6c1f2b7a10")


def _ids() -> Iterator[uuid.UUID]:
    n = 0
    while True:
        n += 1
        yield uuid.uuid5(_NAMESPACE, str(n))


def _fake_model_tokens(turn: int) -> list[str]:
    if turn == 0:
        return ["I'll", " check", " the", " weather", " in", " Paris", "."]
    return ["It", "'s", " 18", "°C", " and", " sunny", " in", " Paris", "."]


def _get_weather(city: str) -> str:
    return {"Paris": "18°C, sunny"}.get(city, "unknown")


def run_agent(handler: LogStreamCallbackHandler, question: str, delay: float = 0.0) -> str:
    """Run the demo agent loop, reporting every step to ``handler``.

    Args:
        handler: The handler that receives the callbacks.
        question: The user's question.
        delay: Seconds the fake model waits before each token, to make streaming visible.

    Returns:
        The agent's answer.
    """
    ids = _ids()
    root = next(ids)
    handler.on_chain_start({"name": "agent"}, {"question": question}, run_id=root, name="agent")
    history: list[dict[str, Any]] = [{"role": "user", "content": question}]
    answer = ""
    for turn in range(2):
        model_run = next(ids)
        handler.on_chat_model_start(
            {"name": "fake-chat-model"},
            [list(history)],
            run_id=model_run,
            parent_run_id=root,
            name="model",
            tags=[f"turn:{turn}"],
            metadata={"ls_model_name": "fake-chat-model"},
        )
        text = ""
        for token in _fake_model_tokens(turn):
            if delay:
                time.sleep(delay)
            text += token
            handler.on_llm_new_token(token, run_id=model_run)
        handler.on_llm_end(
            {"generations": [[{"text": text, "type": "ChatGeneration"}]], "llm_output": None},
            run_id=model_run,
        )
        history.append({"role": "assistant", "content": text})
        if turn == 0:
            tool_run = next(ids)
            args = {"city": "Paris"}
            handler.on_tool_start(
                {"name": "get_weather"},
                json.dumps(args),
                run_id=tool_run,
                parent_run_id=root,
                inputs=args,
                name="get_weather",
            )
            observation = _get_weather(args["city"])
            handler.on_tool_end(observation, run_id=tool_run)
            history.append({"role": "tool", "content": observation})
        else:
            answer = text
    # The root's own output is not a log entry; like astream_log, report it with send().
    handler.send({"op": "replace", "path": "/final_output", "value": {"answer": answer}})
    handler.on_chain_end({"answer": answer}, run_id=root)
    return answer


def _show(value: Any, width: int = 70) -> str:
    text = json.dumps(value, ensure_ascii=False, default=repr, sort_keys=True)
    return text if len(text) <= width else text[: width - 3] + "..."


def run_demo(out: TextIO, delay: float = 0.0) -> RunLog:
    """Run the agent in a worker thread, print patches live to ``out``, then the state.

    Args:
        out: Where to print.
        delay: Seconds the fake model waits before each token.

    Returns:
        The :class:`~logstream._patches.RunLog` the patches built.
    """
    log = RunLog(state=None)
    out.write("patches, as they stream:\n")
    for patch in demo_patches(delay):
        write_ops(out, patch.ops)
        log = log + RunLogPatch(*patch.ops)
    out.write("\nrebuilt state:\n")
    out.write(format_state(log.state))
    return log


def demo_patches(
    delay: float = 0.0,
    redact: Optional[Redactor] = None,
    entry_fields: Optional[Sequence[str]] = None,
) -> Iterator[RunLogPatch]:
    """Run the agent in a worker thread and yield its patches as they stream.

    Args:
        delay: Seconds the fake model waits before each token.
        redact: Applied to every reported value, as the handler's ``redact=`` option.
        entry_fields: The opt-in entry fields, as the handler's ``entry_fields=`` option.

    Yields:
        The patches, until the agent's root run ends and closes the stream.

    Raises:
        Exception: What the agent raised, after the patches it made.
    """
    handler = LogStreamCallbackHandler(clock=FakeClock(), redact=redact, entry_fields=entry_fields)
    failed: list[BaseException] = []

    def agent() -> None:
        try:
            run_agent(handler, "What's the weather in Paris?", delay)
        except BaseException as exc:
            failed.append(exc)
        finally:
            handler.close()  # the root's end closed it already, unless the agent failed

    worker = threading.Thread(target=agent, name="agent", daemon=True)
    worker.start()
    try:
        yield from handler  # until the stream closes
    finally:
        handler.close()
        worker.join()
    if failed:
        raise failed[0]


def write_ops(out: TextIO, ops: list[JsonPatchOp]) -> None:
    """Print ``ops`` one a line: the op, the path and the value, shortened to fit.

    Args:
        out: Where to print.
        ops: The ops.
    """
    for op in ops:
        path = op["path"] or '""'
        out.write(f"  {op['op']:<7} {path:<42} {_show(op.get('value'))}\n")


def format_state(state: Any) -> str:
    """Return ``state`` as the demo prints it: indented JSON, non-ASCII kept, a newline.

    Args:
        state: The state.

    Returns:
        The text.
    """
    return json.dumps(state, indent=2, ensure_ascii=False, default=repr) + "\n"
