"""A user's tests of their own pipeline, with logstream's pytest plugin and helpers.

The pipeline retrieves notes with a tool, has a fake streaming model write an answer from
them, and reports both through LangChain-shaped callbacks; the same steps are traced
natively too. Installing logstream is all it takes: the plugin's fixtures
(``logstream_handler``, ``logstream_recorder``, ``logstream_ids``, ...) load through
pytest's entry points, with a fake clock and sequential ids, so every run is the same.

Run: pytest examples/test_my_pipeline.py (or python examples/test_my_pipeline.py)
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any, Callable
from unittest.mock import ANY

from logstream import LogStreamCallbackHandler, traced
from logstream.testing import (
    Recorder,
    SequentialIds,
    assert_patches,
    assert_run,
    assert_state,
    normalize,
)

NOTES = {"tides": "The moon pulls the oceans."}


# -- the code under test ---------------------------------------------------------------


def answer_question(
    handler: LogStreamCallbackHandler, question: str, new_id: Callable[[], uuid.UUID]
) -> str:
    """Retrieve a note, stream an answer from it, report every step to ``handler``."""
    root, tool, llm = new_id(), new_id(), new_id()
    handler.on_chain_start({"name": "qa"}, {"question": question}, run_id=root, name="qa")
    handler.on_tool_start(
        {}, question, run_id=tool, parent_run_id=root, name="lookup", inputs={"query": question}
    )
    note = NOTES.get(question, "no notes")
    handler.on_tool_end(note, run_id=tool)
    handler.on_llm_start({}, [note], run_id=llm, parent_run_id=root, name="writer")
    tokens = ["Because", " the", " moon", "."]
    for token in tokens:
        handler.on_llm_new_token(token, run_id=llm)
    answer = "".join(tokens)
    handler.on_llm_end({"generations": [[{"text": answer}]]}, run_id=llm)
    handler.on_chain_end({"answer": answer}, run_id=root)
    return answer


@traced(run_type="tool")
def lookup(question: str) -> str:
    return NOTES.get(question, "no notes")


@traced(run_type="llm")
def writer(note: str) -> Iterator[str]:
    yield from ["Because", " the", " moon", "."]


def qa(question: str) -> str:
    return "".join(writer(lookup(question)))


# -- the tests ---------------------------------------------------------------------------


def test_answer_streams_tokens_and_ends_every_run(
    logstream_handler: LogStreamCallbackHandler,
    logstream_recorder: Recorder,
    logstream_ids: SequentialIds,
) -> None:
    """Each step is a run with its output; the writer's tokens stream in order."""
    answer_question(logstream_handler, "tides", logstream_ids)
    assert logstream_recorder.keys == ["lookup", "writer"]
    assert_run(logstream_recorder, "lookup", final_output="The moon pulls the oceans.")
    assert_run(
        logstream_recorder,
        "writer",
        streamed_output_str=["Because", " the", " moon", "."],
        end_time=ANY,
    )
    assert logstream_handler.closed  # the root run ended: the stream is complete


def test_answer_matches_the_snapshot(
    logstream_handler: LogStreamCallbackHandler,
    logstream_recorder: Recorder,
    logstream_ids: SequentialIds,
) -> None:
    """The whole run log, ids and times normalized, is the one expected."""
    answer_question(logstream_handler, "tides", logstream_ids)
    assert_state(normalize(logstream_recorder.state), SNAPSHOT)


def test_each_callback_emits_one_patch(
    logstream_handler: LogStreamCallbackHandler,
    logstream_recorder: Recorder,
    logstream_ids: SequentialIds,
) -> None:
    """A token's patch appends it to both streamed lists of its run, and nothing else."""
    answer_question(logstream_handler, "tides", logstream_ids)
    token_patch = logstream_recorder.patches[4]
    assert_patches(
        [token_patch],
        [
            {"op": "add", "path": "/logs/writer/streamed_output_str/-", "value": "Because"},
            {"op": "add", "path": "/logs/writer/streamed_output/-", "value": "Because"},
        ],
    )


def test_native_tracing_gives_the_same_runs(logstream_stream_log: Any) -> None:
    """The natively traced pipeline has the same runs, and the root's output streams."""
    recorder = logstream_stream_log(qa, "tides")
    assert recorder.state["final_output"] == "Because the moon."
    assert recorder.keys == ["lookup", "writer"]
    assert_run(recorder, "lookup", final_output={"output": "The moon pulls the oceans."})
    assert "".join(recorder.entry("writer")["streamed_output_str"]) == "Because the moon."


SNAPSHOT: dict[str, Any] = {
    "id": "<id:1>",
    "streamed_output": [],
    "final_output": None,
    "name": "qa",
    "type": "chain",
    "logs": {
        "lookup": {
            "id": "<id:2>",
            "name": "lookup",
            "type": "tool",
            "tags": [],
            "metadata": {},
            "start_time": "<time:1>",
            "streamed_output": [],
            "streamed_output_str": [],
            "inputs": {"query": "tides"},
            "final_output": "The moon pulls the oceans.",
            "end_time": "<time:2>",
        },
        "writer": {
            "id": "<id:3>",
            "name": "writer",
            "type": "llm",
            "tags": [],
            "metadata": {},
            "start_time": "<time:3>",
            "streamed_output": ["Because", " the", " moon", "."],
            "streamed_output_str": ["Because", " the", " moon", "."],
            "inputs": {"prompts": ["The moon pulls the oceans."]},
            "final_output": {"generations": [[{"text": "Because the moon."}]]},
            "end_time": "<time:4>",
        },
    },
}

if __name__ == "__main__":  # as a script: run this file's tests as `pytest` would
    sys.exit(
        subprocess.call([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__])
    )
