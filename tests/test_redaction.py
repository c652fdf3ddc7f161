"""The ``redact=`` option: no masked value reaches any op, at any depth, by any path.

:func:`logstream.redact_secrets` itself is tested in ``test_redact.py``; here it is wired
into the callback handler, native runs and ``stream_log``, and every emitted op is
rendered with :func:`logstream.dumps` and searched for the planted secret.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstream import (
    LogStreamCallbackHandler,
    Tracer,
    dumps,
    redact_secrets,
    stream_log,
    trace,
    traced,
)

SECRET = "sk-" + "A1b2C3d4E5f6G7h8I9j0K1l2"
"""An OpenAI-style key: masked by value pattern wherever it appears."""
PASSWORD = "hunter2-correct-horse"
"""A value masked only because of the key it sits under."""


@dataclass
class Message:
    """A message object, as a chat model streams, that dumps to data."""

    content: str

    def model_dump(self) -> dict[str, Any]:
        return {"content": self.content, "type": "ai"}


def ops_text(source: Any) -> str:
    """All ops of a closed stream, as JSON text."""
    return dumps([op for patch in source for op in patch.ops])


def nest(value: Any, path: list[int]) -> Any:
    """Bury ``value`` inside dicts and lists, one level per item of ``path``."""
    for step in path:
        value = {"k": value, "password": PASSWORD} if step % 2 else [value, step]
    return value


class TestHandler:
    def test_every_callback_value_is_redacted(self) -> None:
        """Inputs, metadata, tokens, chat chunks, tapped chunks and outputs are masked."""
        handler = LogStreamCallbackHandler(redact=redact_secrets)
        root, llm, chat, step = (uuid.uuid4() for _ in range(4))
        secret_dict = {"api_key": PASSWORD, "note": f"key {SECRET}"}
        handler.on_chain_start({}, secret_dict, run_id=root, name="root")
        handler.on_llm_start(
            {}, [f"use {SECRET}"], run_id=llm, parent_run_id=root, metadata=secret_dict
        )
        handler.on_llm_new_token(SECRET, run_id=llm)
        handler.on_llm_end({"generations": [[{"text": SECRET}]]}, run_id=llm)
        handler.on_chat_model_start({}, [[Message(SECRET)]], run_id=chat, parent_run_id=root)
        chunk = type("Chunk", (), {"message": Message(SECRET)})()
        handler.on_llm_new_token("x", chunk=chunk, run_id=chat)
        handler.on_llm_end({"generations": []}, run_id=chat)
        handler.on_chain_start({}, {"q": 1}, run_id=step, parent_run_id=root, name="step")
        list(handler.tap_output_iter(step, iter([{"token": PASSWORD}])))
        handler.on_chain_end({"out": SECRET}, run_id=step, inputs={"password": PASSWORD})
        handler.on_chain_end(secret_dict, run_id=root)
        text = ops_text(handler)
        assert SECRET not in text and PASSWORD not in text
        assert "[REDACTED]" in text

    def test_objects_without_secrets_are_kept_as_they_are(self) -> None:
        """A message object with nothing to mask reaches the patch unchanged (by identity)."""
        handler = LogStreamCallbackHandler(redact=redact_secrets)
        root, chat = uuid.uuid4(), uuid.uuid4()
        message = Message("hello")
        handler.on_chain_start({}, {}, run_id=root)
        handler.on_chat_model_start({}, [[message]], run_id=chat, parent_run_id=root)
        chunk = type("Chunk", (), {"message": message})()
        handler.on_llm_new_token("hello", chunk=chunk, run_id=chat)
        ops = [op for patch in handler.drain() for op in patch.ops]
        assert ops[-1]["value"] is message

    @settings(max_examples=60, deadline=None)
    @given(
        path=st.lists(st.integers(0, 5), max_size=12),
        where=st.sampled_from(["inputs", "metadata", "token", "chunk", "outputs"]),
        fmt=st.sampled_from(["original", "streaming_events"]),
    )
    def test_a_secret_at_any_depth_never_reaches_an_op(
        self, path: list[int], where: str, fmt: str
    ) -> None:
        """A secret buried at any depth in any reported value is masked in every op."""
        handler = LogStreamCallbackHandler(redact=redact_secrets, _schema_format=fmt)  # type: ignore[arg-type]
        buried = nest(f"text {SECRET} text", path)
        root, llm, step = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, {"q": 1}, run_id=root)
        metadata = {"m": buried} if where == "metadata" else None
        inputs = buried if where == "inputs" else {"q": 1}
        handler.on_chain_start(
            {}, inputs, run_id=step, parent_run_id=root, name="step", metadata=metadata
        )
        if where == "chunk":
            list(handler.tap_output_iter(step, iter([buried])))
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=step, name="llm")
        if where == "token":
            handler.on_llm_new_token("t", chunk=type("C", (), {"message": buried})(), run_id=llm)
        handler.on_llm_end({"generations": []}, run_id=llm)
        handler.on_chain_end(buried if where == "outputs" else 1, run_id=step)
        handler.on_chain_end({}, run_id=root)
        text = ops_text(handler)
        assert SECRET not in text and PASSWORD not in text


class TestNative:
    def test_trace_blocks_and_stream_log_redact(self) -> None:
        """Native runs and stream_log's root ops are masked with ``redact=``."""
        tracer = Tracer(redact=redact_secrets)
        with trace("root", tracer=tracer, inputs={"token": PASSWORD}):
            with trace("model", "llm", inputs=f"key={SECRET}", metadata={"secret": "x"}) as m:
                m.token(SECRET)
                m.outputs = SECRET
        text = ops_text(tracer)
        assert SECRET not in text and PASSWORD not in text
        assert '"metadata":{"secret":"[REDACTED]"}' in text

        @traced(run_type="tool")
        def tool(query: dict[str, Any]) -> str:
            return f"Bearer {SECRET}"

        def agent(q: Any) -> Iterator[Any]:
            yield tool({"authorization": PASSWORD})
            yield {"api_key": PASSWORD}

        text = dumps([op for p in stream_log(agent, SECRET, redact=redact_secrets) for op in p.ops])
        assert SECRET not in text and PASSWORD not in text


def final_state(patches: Iterator[Any]) -> Any:
    """The state the patches build."""
    state: Any = None
    for patch in patches:
        state = patch if state is None else state + patch
    return state.state


class TestSecretsSplitAcrossChunks:
    """stream_log(redact=...) masks the chunks added up, not only each chunk."""

    @pytest.mark.parametrize("with_list", [True, False])
    def test_split_key_is_masked_in_final_output(self, with_list: bool) -> None:
        """A key streamed in two pieces is masked in /final_output at every step."""

        def agent(_: Any) -> Iterator[str]:
            yield "your key is sk-proj-"
            yield SECRET[3:]
            yield " - keep it safe"

        patches = list(
            stream_log(agent, None, redact=redact_secrets, with_streamed_output_list=with_list)
        )
        state = final_state(iter(patches))
        assert state["final_output"] == "your key is [REDACTED] - keep it safe"
        final_ops = [op for p in patches for op in p.ops if op["path"] == "/final_output"]
        assert all(SECRET[3:] not in dumps(op) for op in final_ops)
        # each piece alone is no secret: streamed as it is (the README says so)
        if with_list:
            assert state["streamed_output"][1] == SECRET[3:]

    @pytest.mark.parametrize("chunks", [[{"msg": "key sk-"}, {"msg": SECRET[3:]}]])
    def test_split_key_in_added_dicts_is_masked(self, chunks: list[Any]) -> None:
        """Chunks that add up as dicts of strings are masked as they add up."""

        class Addable(dict):  # type: ignore[type-arg]
            def __add__(self, other: Any) -> Any:
                return Addable({k: self.get(k, "") + other.get(k, "") for k in {*self, *other}})

        def agent(_: Any) -> Iterator[Any]:
            for chunk in chunks:
                yield Addable(chunk)

        state = final_state(stream_log(agent, None, redact=redact_secrets))
        assert state["final_output"] == {"msg": "key [REDACTED]"}

    @settings(max_examples=80, deadline=None)
    @given(cuts=st.lists(st.integers(0, 60), max_size=4), with_list=st.booleans())
    def test_a_secret_cut_anywhere_never_ends_in_final_output(
        self, cuts: list[int], with_list: bool
    ) -> None:
        """However the text is cut into chunks, the final output is the text redacted."""
        text = f"key: {SECRET} and Bearer {PASSWORD}12345678 done"
        bounds = sorted({0, len(text), *(min(c, len(text)) for c in cuts)})
        pieces = [text[a:b] for a, b in zip(bounds, bounds[1:])]

        def agent(_: Any) -> Iterator[str]:
            yield from pieces

        patches = list(
            stream_log(agent, None, redact=redact_secrets, with_streamed_output_list=with_list)
        )
        state = final_state(iter(patches))
        assert state["final_output"] == redact_secrets(text)
        if with_list:  # a piece that holds a whole secret is masked in it
            assert [redact_secrets(p) for p in pieces] == state["streamed_output"]
