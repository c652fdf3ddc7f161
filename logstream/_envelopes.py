"""LangChain's envelopes: how each kind of run keeps its inputs and outputs.

A run record keeps its inputs and outputs in the envelope LangChain's tracers use, which
depends on the kind of run and on the schema format (``"original"`` or
``"streaming_events"``): a chain's input ``x`` is kept as ``{"input": x}``, an LLM's
prompts as ``{"prompts": [...]}``, and so on. The front ends build them here: the
LangChain-shaped adapter from callback arguments, the native tracing API from plain
values. What a log entry shows of them is the emitter's business
(:mod:`logstream._emitter`).

Values are never revived into objects: a dict shaped like a serialized LangChain object
(``{"lc": 1, "type": "constructor", ...}``) stays a dict.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ._emitter import SchemaFormat
from ._values import MISSING

__all__ = [
    "wrap_chain_inputs",
    "wrap_chain_outputs",
    "wrap_llm_outputs",
    "wrap_run_inputs",
    "wrap_run_outputs",
    "wrap_tool_inputs",
]


def wrap_chain_inputs(inputs: Any, schema_format: SchemaFormat) -> Any:
    """Return the envelope a chain-like run keeps its inputs in."""
    if schema_format == "original":
        return inputs if isinstance(inputs, dict) else {"input": inputs}
    return {"input": inputs}


def wrap_chain_outputs(outputs: Any, schema_format: SchemaFormat) -> Any:
    """Return the envelope a chain-like run keeps its outputs in."""
    if schema_format == "original":
        return dict(outputs) if isinstance(outputs, dict) else {"output": outputs}
    return {"output": outputs}


def wrap_tool_inputs(input_str: str, inputs: Any, schema_format: SchemaFormat) -> Any:
    """Return the envelope a tool run keeps its inputs in.

    Args:
        input_str: The tool's input as a string.
        inputs: The tool's structured inputs, if the caller has them.
        schema_format: The schema format.
    """
    if schema_format == "original":
        return inputs if isinstance(inputs, dict) else {"input": input_str}
    return {"input": inputs}


def wrap_llm_outputs(response: Any) -> Any:
    """Return the envelope an LLM or chat-model run keeps its outputs in.

    A LangChain ``LLMResult`` (or anything with ``model_dump()`` or ``generations``) is
    dumped to plain data, with each generation's ``message`` kept as the message object
    the model produced; a mapping is copied; anything else is kept under ``"output"``.

    Example:
        >>> wrap_llm_outputs({"generations": []}), wrap_llm_outputs(3)
        ({'generations': []}, {'output': 3})
    """
    if isinstance(response, Mapping):
        return dict(response)
    dump = getattr(response, "model_dump", None)
    generations = getattr(response, "generations", None)
    if callable(dump):
        data = dump()
    elif generations is not None:
        data = {
            "generations": generations,
            "llm_output": getattr(response, "llm_output", None),
        }
    else:
        return {"output": response}
    if isinstance(data, dict) and isinstance(generations, list):
        dumped = data.get("generations")
        for i, batch in enumerate(generations):
            for j, generation in enumerate(batch or ()):
                message = getattr(generation, "message", MISSING)
                if message is MISSING:
                    continue
                try:
                    slot = dumped[i][j]  # type: ignore[index]
                except (IndexError, KeyError, TypeError):
                    continue
                if isinstance(slot, dict) and "message" in slot:
                    slot["message"] = message
    return data


def wrap_run_inputs(run_type: str, inputs: Any, schema_format: SchemaFormat) -> Any:
    """Return the envelope a run of ``run_type`` keeps plain ``inputs`` in.

    This is what the callback adapter builds from the arguments of LangChain's start
    callbacks, for callers that have just a value: an LLM run's prompt or prompts go
    under ``"prompts"``, a chat model's messages (one list, or a batch of lists) under
    ``"messages"``, a retriever's query under ``"query"``; a tool's and a chain's inputs
    are wrapped as :func:`wrap_tool_inputs` and :func:`wrap_chain_inputs` do.

    Example:
        >>> wrap_run_inputs("llm", "Hi", "streaming_events")
        {'prompts': ['Hi']}
        >>> wrap_run_inputs("chain", "Hi", "streaming_events")
        {'input': 'Hi'}
    """
    if run_type == "llm":
        if isinstance(inputs, Mapping) and "prompts" in inputs:
            return dict(inputs)
        return {"prompts": list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]}
    if run_type == "chat_model":
        if isinstance(inputs, Mapping) and "messages" in inputs:
            return dict(inputs)
        if (
            isinstance(inputs, (list, tuple))
            and inputs
            and all(isinstance(batch, (list, tuple)) for batch in inputs)
        ):
            return {"messages": [list(batch) for batch in inputs]}
        if isinstance(inputs, (list, tuple)):
            return {"messages": [list(inputs)]}
        return {"messages": [[inputs]]}
    if run_type == "retriever":
        return {"query": inputs}
    if run_type == "tool":
        input_str = inputs if isinstance(inputs, str) else str(inputs)
        return wrap_tool_inputs(input_str, inputs, schema_format)
    return wrap_chain_inputs(inputs, schema_format)


def wrap_run_outputs(run_type: str, outputs: Any, schema_format: SchemaFormat) -> Any:
    """Return the envelope a run of ``run_type`` keeps plain ``outputs`` in.

    LLM and chat-model outputs as :func:`wrap_llm_outputs` builds them (a string becomes
    an ``LLMResult``-shaped dict with one generation of that text), a retriever's
    documents under ``"documents"``, a tool's output under ``"output"``, a chain's as
    :func:`wrap_chain_outputs` does.

    Example:
        >>> wrap_run_outputs("tool", 42, "streaming_events")
        {'output': 42}
    """
    if run_type in ("llm", "chat_model"):
        if isinstance(outputs, str):  # the text a model produced: one generation of it
            generation = {"text": outputs, "generation_info": None, "type": "Generation"}
            return {
                "generations": [[generation]],
                "llm_output": None,
                "run": None,
                "type": "LLMResult",
            }
        return wrap_llm_outputs(outputs)
    if run_type == "retriever":
        return {"documents": outputs}
    if run_type == "tool":
        return {"output": outputs}
    return wrap_chain_outputs(outputs, schema_format)
