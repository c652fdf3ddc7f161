"""The self-contained demo: a small agent loop traced through the callback adapter.

A fake streaming chat model decides to call a weather tool, the tool answers, and the
model streams its reply. The agent runs in a worker thread and drives
:class:`~logstream.callbacks.LogStreamCallbackHandler` through LangChain-shaped callbacks;
the main thread prints each patch as it arrives, then the state the patches rebuild.
Ids and times are deterministic, so two runs print the same thing.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, TextIO

from .callbacks import LogStreamCallbackHandler
from .patches import RunLog, RunLogPatch
from .testing import FakeClock  # re-exported: ``from logstream.demo import FakeClock``

__all__ = ["FakeClock", "run_agent", "run_demo"]

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
        The :class:`~logstream.patches.RunLog` the patches built.
    """
    handler = LogStreamCallbackHandler(clock=FakeClock())
    worker = threading.Thread(
        target=run_agent, args=(handler, "What's the weather in Paris?", delay), name="agent"
    )
    worker.start()
    log = RunLog(state=None)
    out.write("patches, as they stream:\n")
    for patch in handler:  # blocks until the agent's root run ends and closes the stream
        for op in patch.ops:
            path = op["path"] or '""'
            out.write(f"  {op['op']:<7} {path:<42} {_show(op.get('value'))}\n")
        log = log + RunLogPatch(*patch.ops)
    worker.join()
    out.write("\nrebuilt state:\n")
    out.write(json.dumps(log.state, indent=2, ensure_ascii=False, default=repr) + "\n")
    return log
