"""Run inputs and outputs: the envelopes runs carry, and the values the wire shows.

A run record keeps its inputs and outputs in the envelope LangChain's tracers use, which
depends on the kind of run and on the schema format (``"original"`` or
``"streaming_events"``): a chain's input ``x`` is kept as ``{"input": x}``, an LLM's
prompts as ``{"prompts": [...]}``, and so on. The ``wrap_*`` functions build those
envelopes; :func:`wire_inputs` and :func:`wire_outputs` turn them into the values a
``LogEntry`` shows, per run type, exactly as LangChain's handler standardizes them.

Values are never revived into objects: a dict shaped like a serialized LangChain object
(``{"lc": 1, "type": "constructor", ...}``) stays a dict. :func:`snapshot` copies the
mutable containers of a value (dicts and lists, recursively) so a host that mutates its
data after reporting it cannot change what was already streamed; other objects are
passed through as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from typing_extensions import Literal

__all__ = [
    "SCHEMA_FORMATS",
    "SchemaFormat",
    "snapshot",
    "wire_inputs",
    "wire_outputs",
    "wrap_chain_inputs",
    "wrap_chain_outputs",
    "wrap_llm_outputs",
    "wrap_run_inputs",
    "wrap_run_outputs",
    "wrap_tool_inputs",
]

logger = logging.getLogger(__name__)

SchemaFormat = Literal["original", "streaming_events"]
"""How inputs and outputs are shaped; LangChain's ``_schema_format`` values."""

SCHEMA_FORMATS: frozenset[str] = frozenset({"original", "streaming_events"})
"""Every valid :data:`SchemaFormat`."""

_RAW_TYPES = frozenset({"retriever", "llm", "chat_model"})
_SCALARS = (str, int, float, bool, type(None))


def snapshot(value: Any) -> Any:
    """Return ``value`` with its dicts and lists copied, recursively; cycles are kept.

    Dict subclasses become plain dicts (as LangChain's tracer copies them); any other
    object is shared, not copied. A value nested too deeply to copy is passed through
    uncopied (logged at debug level) rather than failing the host program.
    """
    if isinstance(value, _SCALARS):
        return value
    try:
        return _copy(value, {})
    except RecursionError:
        logger.debug("value too deeply nested to snapshot; passing it through uncopied")
        return value


def _copy(value: Any, memo: dict[int, Any]) -> Any:
    if isinstance(value, dict):
        done = memo.get(id(value))
        if done is not None:
            return done
        new: dict[Any, Any] = {}
        memo[id(value)] = new
        for k, v in value.items():
            new[k] = v if isinstance(v, _SCALARS) else _copy(v, memo)
        return new
    if isinstance(value, list):
        done = memo.get(id(value))
        if done is not None:
            return done
        out: list[Any] = []
        memo[id(value)] = out
        out.extend(v if isinstance(v, _SCALARS) else _copy(v, memo) for v in value)
        return out
    return value


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


def wire_inputs(run_type: str, inputs: Any) -> Any:
    """Return the ``inputs`` a ``LogEntry`` shows (``streaming_events`` format only).

    LLM, chat-model and retriever runs show their envelope; other runs show the value
    inside it, and ``None`` while the input is not known yet (the placeholder
    ``{"input": ""}`` that streaming runnables report at start).
    """
    value = snapshot(inputs)
    if run_type in _RAW_TYPES or not isinstance(value, dict):
        return value
    inner = value.get("input")
    if is_placeholder_input(inner):
        return None
    return inner


def is_placeholder_input(value: Any) -> bool:
    """Return whether ``value`` is ``{"input": ""}``, the input of a run not known yet.

    Compares without calling the values' own ``==`` or truth value, so an input that
    holds a numpy array or a DataFrame (whose comparison raises) is simply not it.
    """
    if not isinstance(value, dict) or dict.__len__(value) != 1:
        return False
    inner = dict.get(value, "input", None)
    return isinstance(inner, str) and str.__len__(inner) == 0


def wire_outputs(run_type: str, outputs: Any, schema_format: SchemaFormat) -> Any:
    """Return the ``final_output`` a ``LogEntry`` shows.

    In the ``original`` format the envelope is shown as is (a prompt run shows what is
    inside its ``output`` key). In ``streaming_events``, LLM, chat-model and retriever
    runs show their envelope and other runs the value under ``output``. A run that ended
    without outputs (e.g. one that failed) has the empty envelope ``{}``.
    """
    value = {} if outputs is None else snapshot(outputs)
    if schema_format == "original":
        if run_type == "prompt" and isinstance(value, dict) and "output" in value:
            return value["output"]
        return value
    if run_type in _RAW_TYPES:
        return value
    if isinstance(value, dict):
        return value.get("output")
    return None


_MISSING: Any = object()


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
                message = getattr(generation, "message", _MISSING)
                if message is _MISSING:
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
