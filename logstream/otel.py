"""OpenTelemetry export: a run processor that turns each run into a span.

Optional: needs the ``otel`` extra (``pip install "logstream[otel]"``: ``opentelemetry-api``
and ``opentelemetry-sdk``); ``import logstream`` never imports this module.

:class:`OpenTelemetryProcessor` is a run processor (see :mod:`logstream._processors`).
Each run becomes one span, started at the run's start time and ended at its end time:

- **Parents** follow the run tree: a run's span is a child of its parent run's span, and
  a root run's span is a child of the OpenTelemetry span current when the root started
  (so runs nest inside the host program's own spans).
- **GenAI semantic conventions** (OpenTelemetry GenAI conventions, Development status, as
  of semantic-conventions-genai v0.1.0 / semantic-conventions 1.41): ``chat_model`` runs
  are ``chat {model}`` spans (kind ``CLIENT``), ``llm`` runs ``text_completion {model}``,
  ``embedding`` runs ``embeddings {model}``, ``tool`` runs ``execute_tool {tool}``,
  ``agent`` runs ``invoke_agent {agent}``, ``retriever`` runs ``retrieval`` (the
  conventions' framework retrieval span: operation ``retrieval``, kind ``INTERNAL``).
  Chains and other runs are plain ``INTERNAL`` spans named after the run. Request model,
  provider, request parameters, response model, id, finish reasons and token usage are
  read from the run's metadata (LangChain's ``ls_model_name``, ``ls_provider``, ...),
  inputs and outputs (``llm_output.token_usage``, a generation message's
  ``usage_metadata``).
- **Errors**: a failed run's span has status ``ERROR``, ``error.type`` (the exception's
  qualified class name) and an ``exception`` event. Retries and custom events are span
  events (a custom event's data only when content is captured).
- **Tags and metadata** become ``logstream.tags`` and ``logstream.metadata.<key>``
  attributes (nested mappings flattened with dots; values that are not OpenTelemetry
  attribute types are written as JSON text by :func:`logstream.dumps`).
- **Content** (messages, prompts, tool arguments and results, retrieval queries and
  documents) is recorded only when ``capture_content=True`` or the conventions'
  ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` variable says so, and only as the
  tracer recorded it, i.e. after the tracer's ``redact=``.
- **Runs that never end** are ended by :meth:`OpenTelemetryProcessor.flush` (also called by
  ``on_close`` when the stream closes, by :meth:`~OpenTelemetryProcessor.shutdown`, and at
  interpreter exit) with status ``ERROR``, description ``run did not end: <reason>`` and
  the attribute ``logstream.run.unfinished = True``.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
import threading
import traceback
import weakref
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from ._errors import ConfigError
from ._model import RunEvent, RunRecord
from ._serialize import dumps

__all__ = ["CAPTURE_CONTENT_ENV", "OpenTelemetryProcessor"]

logger = logging.getLogger(__name__)

# The instrumentation scope's version: the package's own (the one source, in __init__),
# read from the loaded package, which works under any name a vendored copy has.
_VERSION: Optional[str] = getattr(sys.modules[__name__.rpartition(".")[0]], "__version__", None)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
"""The GenAI conventions' switch for recording message content (``true`` turns it on)."""

_CONTENT_ON = frozenset({"true", "1", "yes", "on", "span_only", "span_and_event"})

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INT64 = (-(2**63), 2**63 - 1)

# run type -> (gen_ai.operation.name, span kind)
_OPERATIONS: Mapping[str, tuple[str, SpanKind]] = {
    "chat_model": ("chat", SpanKind.CLIENT),
    "llm": ("text_completion", SpanKind.CLIENT),
    "embedding": ("embeddings", SpanKind.CLIENT),
    "tool": ("execute_tool", SpanKind.INTERNAL),
    "agent": ("invoke_agent", SpanKind.INTERNAL),
    "retriever": ("retrieval", SpanKind.INTERNAL),
}
_MODEL_TYPES = frozenset({"chat_model", "llm", "embedding"})

# LangChain's ls_provider values -> the conventions' well-known gen_ai.provider.name
_PROVIDERS: Mapping[str, str] = {
    "openai": "openai",
    "azure": "azure.ai.openai",
    "azure_openai": "azure.ai.openai",
    "anthropic": "anthropic",
    "bedrock": "aws.bedrock",
    "amazon_bedrock": "aws.bedrock",
    "bedrock_converse": "aws.bedrock",
    "google_genai": "gcp.gen_ai",
    "google_vertexai": "gcp.vertex_ai",
    "vertexai": "gcp.vertex_ai",
    "google_gemini": "gcp.gemini",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistralai": "mistral_ai",
    "mistral": "mistral_ai",
    "ibm": "ibm.watsonx.ai",
    "watsonx": "ibm.watsonx.ai",
    "perplexity": "perplexity",
    "xai": "x_ai",
}

_ROLES: Mapping[str, str] = {
    "human": "user",
    "user": "user",
    "ai": "assistant",
    "assistant": "assistant",
    "AIMessageChunk": "assistant",
    "system": "system",
    "tool": "tool",
    "function": "tool",
}

AttributeValue = Any  # str, bool, int, float or a homogeneous sequence of them


def _field(value: Any, key: str) -> Any:
    """``value[key]`` for a mapping, ``value.key`` for an object, else ``None``."""
    if type(value) is dict or isinstance(value, Mapping):
        return value.get(key)
    if value is None or isinstance(value, (str, bytes, int, float, list, tuple)):
        return None
    return getattr(value, key, None)


def _ns(when: datetime) -> int:
    """A datetime as nanoseconds since the epoch (naive datetimes are taken as UTC)."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    delta = when - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _scalar(value: Any) -> Optional[AttributeValue]:
    """An OpenTelemetry attribute value for ``value``; JSON text for anything else."""
    kind = type(value)
    if kind is str or kind is bool or kind is float:
        return value
    if kind is int:
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if value is None:
        return None
    if isinstance(value, (list, tuple)) and value:
        first = type(value[0])
        if first in (str, bool, float, int) and all(type(item) is first for item in value):
            if first is not int or all(_INT64[0] <= item <= _INT64[1] for item in value):
                return tuple(value)
    return dumps(value)


def _flatten(prefix: str, value: Any, out: dict[str, AttributeValue], depth: int = 0) -> None:
    """Add ``value`` under ``prefix`` to ``out``; mappings become dotted keys (4 deep)."""
    if isinstance(value, Mapping) and value and depth < 4:
        for key, item in value.items():
            _flatten(f"{prefix}.{key}", item, out, depth + 1)
        return
    converted = _scalar(value)
    if converted is not None:
        out[prefix] = converted


def _int(value: Any) -> Optional[int]:
    return value if type(value) is int else None


def _text(value: Any) -> Optional[str]:
    return value if type(value) is str and value else None


def _generations(outputs: Any) -> list[Any]:
    """Every generation of an LLM result (``{"generations": [[...], ...]}``)."""
    found: list[Any] = []
    batches = _field(outputs, "generations")
    if isinstance(batches, (list, tuple)):
        for batch in batches:
            if isinstance(batch, (list, tuple)):
                found.extend(batch)
            else:
                found.append(batch)
    return found


def _message_dict(message: Any) -> dict[str, Any]:
    """A chat message (LangChain object, dict or text) in the conventions' shape."""
    if isinstance(message, str):
        return {"role": "user", "parts": [{"type": "text", "content": message}]}
    kind = _field(message, "type") or _field(message, "role")
    role = _ROLES.get(kind, kind) if isinstance(kind, str) else "user"
    parts: list[dict[str, Any]] = []
    content = _field(message, "content")
    if isinstance(content, str):
        if content:
            parts.append({"type": "text", "content": content})
    elif content is not None:
        parts.append({"type": "text", "content": content})
    if role == "tool":
        parts = [
            {
                "type": "tool_call_response",
                "id": _field(message, "tool_call_id"),
                "result": content,
            }
        ]
    for call in _field(message, "tool_calls") or ():
        parts.append(
            {
                "type": "tool_call",
                "id": _field(call, "id"),
                "name": _field(call, "name"),
                "arguments": _field(call, "args"),
            }
        )
    return {"role": role, "parts": parts}


def _input_messages(inputs: Any) -> Optional[list[dict[str, Any]]]:
    messages = _field(inputs, "messages")
    if isinstance(messages, (list, tuple)):
        flat: list[Any] = []
        for item in messages:  # LangChain passes a batch: a list of message lists
            flat.extend(item if isinstance(item, (list, tuple)) else [item])
        return [_message_dict(message) for message in flat]
    prompts = _field(inputs, "prompts")
    if isinstance(prompts, (list, tuple)):
        return [_message_dict(prompt) for prompt in prompts]
    if inputs is None:
        return None
    return [{"role": "user", "parts": [{"type": "text", "content": inputs}]}]


def _output_messages(outputs: Any) -> Optional[list[dict[str, Any]]]:
    generations = _generations(outputs)
    if not generations:
        if outputs is None:
            return None
        output = _field(outputs, "output")
        value = outputs if output is None else output
        return [{"role": "assistant", "parts": [{"type": "text", "content": value}]}]
    found = []
    for generation in generations:
        message = _field(generation, "message")
        if message is not None:
            shaped = _message_dict(message)
            shaped["role"] = "assistant"
        else:
            text = _field(generation, "text")
            shaped = {"role": "assistant", "parts": [{"type": "text", "content": text}]}
        reason = _finish_reason(generation)
        if reason is not None:
            shaped["finish_reason"] = reason
        found.append(shaped)
    return found


def _finish_reason(generation: Any) -> Optional[str]:
    info = _field(generation, "generation_info")
    reason = _text(_field(info, "finish_reason"))
    if reason is None:
        metadata = _field(_field(generation, "message"), "response_metadata")
        reason = _text(_field(metadata, "finish_reason")) or _text(_field(metadata, "stop_reason"))
    return reason


def _usage(outputs: Any, attributes: dict[str, AttributeValue]) -> None:
    """Token usage, response model and id, finish reasons from an LLM result."""
    generations = _generations(outputs)
    input_tokens = output_tokens = cache_read = cache_creation = reasoning = 0
    seen = False
    reasons: list[str] = []
    for generation in generations:
        message = _field(generation, "message")
        usage = _field(message, "usage_metadata")
        if isinstance(usage, Mapping):
            seen = True
            input_tokens += _int(usage.get("input_tokens")) or 0
            output_tokens += _int(usage.get("output_tokens")) or 0
            details = usage.get("input_token_details")
            cache_read += _int(_field(details, "cache_read")) or 0
            cache_creation += _int(_field(details, "cache_creation")) or 0
            reasoning += _int(_field(usage.get("output_token_details"), "reasoning")) or 0
        metadata = _field(message, "response_metadata")
        model = _text(_field(metadata, "model_name")) or _text(_field(metadata, "model"))
        if model is not None:
            attributes["gen_ai.response.model"] = model
        response_id = _text(_field(message, "id"))
        if response_id is not None and not response_id.startswith(("lc_", "run-")):
            attributes["gen_ai.response.id"] = response_id
        reason = _finish_reason(generation)
        if reason is not None:
            reasons.append(reason)
    llm_output = _field(outputs, "llm_output")
    if not seen:
        usage = _field(llm_output, "token_usage") or _field(llm_output, "usage")
        if isinstance(usage, Mapping):
            found_in = _int(usage.get("prompt_tokens"))
            found_out = _int(usage.get("completion_tokens"))
            if found_in is None:
                found_in = _int(usage.get("input_tokens"))
            if found_out is None:
                found_out = _int(usage.get("output_tokens"))
            if found_in is not None or found_out is not None:
                seen = True
                input_tokens, output_tokens = found_in or 0, found_out or 0
    if seen:
        attributes["gen_ai.usage.input_tokens"] = input_tokens
        attributes["gen_ai.usage.output_tokens"] = output_tokens
        if cache_read:
            attributes["gen_ai.usage.cache_read.input_tokens"] = cache_read
        if cache_creation:
            attributes["gen_ai.usage.cache_creation.input_tokens"] = cache_creation
        if reasoning:
            attributes["gen_ai.usage.reasoning.output_tokens"] = reasoning
    model = _text(_field(llm_output, "model_name")) or _text(_field(llm_output, "model"))
    if model is not None:
        attributes["gen_ai.response.model"] = model
    if reasons:
        attributes["gen_ai.response.finish_reasons"] = tuple(reasons)


def _request_model(run: RunRecord) -> Optional[str]:
    model = _text(run.metadata.get("ls_model_name"))
    if model is None:
        params = _field(run.inputs, "invocation_params")
        model = (
            _text(_field(params, "model"))
            or _text(_field(params, "model_name"))
            or _text(_field(run.inputs, "model"))
        )
    return model


def _tool_call_id(run: RunRecord) -> Optional[str]:
    found = _text(run.metadata.get("tool_call_id")) or _text(_field(run.inputs, "tool_call_id"))
    if found is None:
        found = _text(_field(_field(run.outputs, "output"), "tool_call_id"))
    return found


class _Open:
    """A span and what its children need, for a run that has not ended."""

    __slots__ = ("context", "span")

    def __init__(self, span: Span, context: otel_context.Context) -> None:
        self.span = span
        self.context = context


_LIVE: weakref.WeakSet[OpenTelemetryProcessor] = weakref.WeakSet()


def _flush_live_at_exit() -> None:
    for processor in list(_LIVE):
        processor.flush("the process exited while the run was open")


class OpenTelemetryProcessor:
    """A run processor that exports every run as an OpenTelemetry span.

    Register it like any processor: ``Tracer(processors=[p])``,
    ``LogStreamCallbackHandler(processors=[p])``, ``stream_log(..., processors=[p])``.
    See the module's docstring for what each span carries.

    Args:
        tracer_provider: Where spans go; the global provider
            (``opentelemetry.trace.get_tracer_provider()``) if not given.
        capture_content: Record messages, prompts, tool arguments and results, and
            retrieval queries and documents (as the tracer recorded them, after its
            ``redact=``). ``None`` (the default) reads
            ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` (``true``,
            ``SPAN_ONLY`` or ``SPAN_AND_EVENT`` turn it on) once, here.
        redact: Applied to error messages before they go on a span (status description,
            ``exception.message``). A tracer's ``redact=`` already masks the error text it
            records; this one is for tracers without a redactor, or a stricter one.
        end_on_close: Whether ``on_close`` (the stream closing) ends the spans of runs
            still open. ``on_close`` cannot tell whose runs are whose: make one processor
            per stream, or share one only with ``end_on_close=False`` (and call
            :meth:`flush` yourself).

    Raises:
        ConfigError: ``redact`` is not callable, or ``capture_content`` or
            ``end_on_close`` is not a bool.

    Example:
        >>> from opentelemetry.sdk.trace import TracerProvider
        >>> from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        >>> from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
        ...     InMemorySpanExporter,
        ... )
        >>> from logstream import Tracer
        >>> exporter = InMemorySpanExporter()
        >>> provider = TracerProvider()
        >>> provider.add_span_processor(SimpleSpanProcessor(exporter))
        >>> tracer = Tracer(processors=[OpenTelemetryProcessor(tracer_provider=provider)])
        >>> root = tracer.start_run("agent")
        >>> tool = tracer.start_run("search", "tool", parent_id=root.id)
        >>> _ = tracer.end_run(tool.id, outputs={"output": 42}, event="tool end")
        >>> _ = tracer.end_run(root.id, outputs={"output": "done"})
        >>> [span.name for span in exporter.get_finished_spans()]
        ['execute_tool search', 'agent']
    """

    def __init__(
        self,
        *,
        tracer_provider: Optional[trace.TracerProvider] = None,
        capture_content: Optional[bool] = None,
        redact: Optional[Callable[[Any], Any]] = None,
        end_on_close: bool = True,
    ) -> None:
        """Look up the OpenTelemetry tracer once; read the content switch."""
        if capture_content is None:
            setting = os.environ.get(CAPTURE_CONTENT_ENV, "")
            capture_content = setting.strip().lower() in _CONTENT_ON
        elif type(capture_content) is not bool:
            msg = f"capture_content must be True, False or None, got {capture_content!r}"
            raise ConfigError(msg)
        if redact is not None and not callable(redact):
            msg = f"redact must be a callable (such as logstream.redact_secrets), got {redact!r}"
            raise ConfigError(msg)
        if type(end_on_close) is not bool:
            msg = f"end_on_close must be True or False, got {end_on_close!r}"
            raise ConfigError(msg)
        self.capture_content = capture_content
        self.end_on_close = end_on_close
        self._redact = redact
        self._tracer = trace.get_tracer("logstream", _VERSION, tracer_provider=tracer_provider)
        self._open: dict[Any, _Open] = {}
        self._lock = threading.Lock()
        self._exit_hook_placed = False
        _LIVE.add(self)

    def __repr__(self) -> str:
        """Show the content switch and how many spans are open."""
        return (
            f"<OpenTelemetryProcessor capture_content={self.capture_content} "
            f"open_spans={len(self._open)}>"
        )

    # -- the hooks -------------------------------------------------------------------

    def on_start(self, run: RunRecord) -> None:
        """Start the run's span, as a child of its parent run's span (or the current one)."""
        parent = None
        if run.parent_id is not None:
            with self._lock:
                found = self._open.get(run.parent_id)
            if found is not None:
                parent = found.context
        elif not self._exit_hook_placed:
            self._exit_hook_placed = True
            _keep_exit_hook_last()
        operation = _OPERATIONS.get(run.run_type)
        attributes: dict[str, AttributeValue] = {
            "logstream.run.id": str(run.id),
            "logstream.run.type": run.run_type,
        }
        name = run.name
        kind = SpanKind.INTERNAL
        if operation is not None:
            op_name, kind = operation
            attributes["gen_ai.operation.name"] = op_name
            try:
                name = self._start_attributes(run, op_name, attributes)
            except Exception:  # a value the helpers could not read: the span still starts
                logger.debug("GenAI attributes of run %s failed", run.id, exc_info=True)
        if run.tags:
            attributes["logstream.tags"] = tuple(run.tags)
        if run.metadata:
            _flatten("logstream.metadata", run.metadata, attributes)
        span = self._tracer.start_span(
            name,
            context=parent,  # None: the context current in this thread
            kind=kind,
            attributes=attributes,
            start_time=_ns(run.start_time),
        )
        context = trace.set_span_in_context(span, parent)
        with self._lock:
            self._open[run.id] = _Open(span, context)

    def on_end(self, run: RunRecord) -> None:
        """Set the run's outcome on its span and end it at the run's end time."""
        with self._lock:
            opened = self._open.pop(run.id, None)
        if opened is None:
            return
        span = opened.span
        end_time = _ns(run.end_time) if run.end_time is not None else None
        try:
            attributes: dict[str, AttributeValue] = {}
            if run.run_type in _OPERATIONS:
                try:
                    self._end_attributes(run, attributes)
                except Exception:
                    logger.debug("GenAI attributes of run %s failed", run.id, exc_info=True)
            if run.error is not None:
                self._record_error(span, run, attributes, end_time)
            if attributes:
                span.set_attributes(attributes)
        finally:
            span.end(end_time=end_time)

    def on_event(self, run_id: Any, event: RunEvent) -> None:
        """Add a retry or custom event to the run's span, at the event's time.

        A retry's details (attempt, wait, outcome) are its attributes; a custom event's
        data only when content is captured (it is the host's own data).
        """
        with self._lock:
            opened = self._open.get(run_id)
        if opened is None:
            return
        attributes: dict[str, AttributeValue] = {}
        retry = event.name == "retry" and "data" not in event.kwargs  # a custom event has data
        if retry or self.capture_content:
            _flatten("logstream.event", dict(event.kwargs), attributes)
        opened.span.add_event(event.name, attributes, timestamp=_ns(event.time))

    def on_close(self) -> None:
        """End the spans of runs still open, unless ``end_on_close=False``."""
        if self.end_on_close:
            self.flush("the stream closed while the run was open")

    # -- ending what is left ------------------------------------------------------------

    def flush(self, reason: str = "flushed while the run was open") -> int:
        """End the span of every run still open, now, and return how many there were.

        Each gets status ``ERROR`` with the description ``run did not end: <reason>`` and
        the attribute ``logstream.run.unfinished = True``; children are ended before
        their parents. Spans go to the provider's span processors as usual (call the
        provider's ``force_flush()`` to push them out of a batch processor).

        Args:
            reason: Why the runs are ended, for the status description.
        """
        with self._lock:
            left = list(self._open.items())
            self._open.clear()
        for _, opened in reversed(left):  # started last, ended first
            span = opened.span
            span.set_attribute("logstream.run.unfinished", True)
            span.set_status(Status(StatusCode.ERROR, f"run did not end: {reason}"))
            span.end()
        return len(left)

    def shutdown(self) -> None:
        """End every open span (as :meth:`flush`) and stop ending spans at exit."""
        self.flush("the processor was shut down while the run was open")
        _LIVE.discard(self)

    # -- attributes ------------------------------------------------------------------------

    def _start_attributes(
        self, run: RunRecord, operation: str, attributes: dict[str, AttributeValue]
    ) -> str:
        """Add the GenAI attributes known at the start; return the span's name."""
        metadata = run.metadata
        if run.run_type in _MODEL_TYPES:
            provider = _text(metadata.get("ls_provider"))
            if provider is not None:
                attributes["gen_ai.provider.name"] = _PROVIDERS.get(provider, provider)
            model = _request_model(run)
            temperature = metadata.get("ls_temperature")
            if isinstance(temperature, (int, float)) and type(temperature) is not bool:
                attributes["gen_ai.request.temperature"] = float(temperature)
            max_tokens = _int(metadata.get("ls_max_tokens"))
            if max_tokens is not None:
                attributes["gen_ai.request.max_tokens"] = max_tokens
            stop = metadata.get("ls_stop")
            if isinstance(stop, (list, tuple)) and all(type(s) is str for s in stop) and stop:
                attributes["gen_ai.request.stop_sequences"] = tuple(stop)
            if self.capture_content:
                messages = _input_messages(run.inputs)
                if messages is not None:
                    attributes["gen_ai.input.messages"] = dumps(messages)
            if model is None:
                return operation
            attributes["gen_ai.request.model"] = model
            return f"{operation} {model}"
        if run.run_type == "tool":
            attributes["gen_ai.tool.name"] = run.name
            attributes["gen_ai.tool.type"] = "function"
            if self.capture_content:
                arguments = _field(run.inputs, "input")
                value = run.inputs if arguments is None else arguments
                attributes["gen_ai.tool.call.arguments"] = (
                    value if type(value) is str else dumps(value)
                )
            return f"{operation} {run.name}"
        if run.run_type == "agent":
            attributes["gen_ai.agent.name"] = run.name
            return f"{operation} {run.name}"
        if run.run_type == "retriever" and self.capture_content:
            query = _field(run.inputs, "query")
            value = run.inputs if query is None else query
            attributes["gen_ai.retrieval.query.text"] = (
                value if type(value) is str else dumps(value)
            )
        return operation

    def _end_attributes(self, run: RunRecord, attributes: dict[str, AttributeValue]) -> None:
        """Add the GenAI attributes known at the end (usage, results)."""
        run_type = run.run_type
        if run_type in _MODEL_TYPES:
            if run.token_count:
                attributes["gen_ai.request.stream"] = True
            if run.outputs is not None:
                _usage(run.outputs, attributes)
                if self.capture_content:
                    messages = _output_messages(run.outputs)
                    if messages is not None:
                        attributes["gen_ai.output.messages"] = dumps(messages)
        elif run_type == "tool":
            call_id = _tool_call_id(run)
            if call_id is not None:
                attributes["gen_ai.tool.call.id"] = call_id
            if self.capture_content and run.outputs is not None:
                output = _field(run.outputs, "output")
                content = _field(output, "content")
                value = output if content is None else content
                attributes["gen_ai.tool.call.result"] = (
                    value if type(value) is str else dumps(value)
                )
        elif run_type == "retriever" and self.capture_content and run.outputs is not None:
            documents = _field(run.outputs, "documents")
            if isinstance(documents, (list, tuple)):
                shaped = []
                for document in documents:
                    item: dict[str, Any] = {}
                    doc_id = _field(document, "id")
                    if doc_id is not None:
                        item["id"] = doc_id
                    score = _field(_field(document, "metadata"), "score")
                    if score is not None:
                        item["score"] = score
                    content = _field(document, "page_content")
                    item["content"] = document if content is None else content
                    shaped.append(item)
                attributes["gen_ai.retrieval.documents"] = dumps(shaped)

    def _record_error(
        self,
        span: Span,
        run: RunRecord,
        attributes: dict[str, AttributeValue],
        end_time: Optional[int],
    ) -> None:
        """Status ERROR, ``error.type`` and an ``exception`` event, messages redacted."""
        error = run.exception
        message = str(run.error)
        if self._redact is not None:
            redacted = self._redact(message)
            message = redacted if isinstance(redacted, str) else dumps(redacted)
        if error is not None:
            kind = type(error)
            error_type = (
                kind.__qualname__
                if kind.__module__ == "builtins"
                else f"{kind.__module__}.{kind.__qualname__}"
            )
        else:
            error_type = "_OTHER"
        attributes["error.type"] = error_type
        event: dict[str, AttributeValue] = {
            "exception.type": error_type,
            "exception.message": message,
        }
        if error is not None and error.__traceback__ is not None:
            # the frames only: the last line of a formatted exception repeats its message
            event["exception.stacktrace"] = "".join(traceback.format_tb(error.__traceback__))
        span.add_event("exception", event, timestamp=end_time)
        span.set_status(Status(StatusCode.ERROR, message))


_exit_hook_lock = threading.Lock()


def _keep_exit_hook_last() -> None:
    """Register the exit flush again, so it runs before providers registered earlier.

    ``atexit`` runs the last registered function first; an SDK ``TracerProvider``
    registers its own shutdown when made. Moving ours to the end when a processor sees its
    first root run ends open spans before any provider that exists by then shuts down
    (providers are made at start-up, before runs; once per processor, as
    ``atexit.unregister`` compares every registered function).
    """
    with _exit_hook_lock:
        atexit.unregister(_flush_live_at_exit)
        atexit.register(_flush_live_at_exit)
