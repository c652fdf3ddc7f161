"""The events view: the runs a tracer sees, as the events of ``astream_events(version="v2")``.

:class:`EventStream` is a run processor (:mod:`logstream._processors`): registered on a
:class:`~logstream.Tracer`, the callback handler or a streamed call, it turns each frozen
run record into dicts in the schema of LangChain's ``Runnable.astream_events(version="v2")``
(``event``, ``name``, ``run_id``, ``parent_ids``, ``tags``, ``metadata``, ``data``) and
queues them on a thread-safe channel that is read with ``for`` or ``async for``. So one
set of calls gives both views: the run log's patches from the tracer, the events from
this processor.

:func:`stream_events` and :func:`astream_events` run a plain callable (function,
coroutine function, generator, async generator, ``@traced`` callable) as the root run,
as :func:`~logstream.stream_log` does, and yield its events.

Event names are ``on_<run type>_start``, ``on_<run type>_stream`` and ``on_<run
type>_end`` (``chain``, ``chat_model``, ``llm``, ``tool``, ``retriever``, ``prompt``,
``parser``, ...), ``on_<run type>_error`` for a run that failed, and
``on_custom_event``. The six include/exclude rules apply as in ``astream_events``: to
every event, the root's too, with a custom event's name standing for both its name and
its type.

Example:
    >>> from logstream import stream_events, traced
    >>> @traced(run_type="tool")
    ... def search(query: str) -> str:
    ...     return "sunny"
    >>> def agent(question: str) -> str:
    ...     return search(question)
    >>> [(e["event"], e["name"]) for e in stream_events(agent, "weather?")]
    ... # doctest: +NORMALIZE_WHITESPACE
    [('on_chain_start', 'agent'), ('on_tool_start', 'search'), ('on_tool_end', 'search'),
     ('on_chain_stream', 'agent'), ('on_chain_end', 'agent')]
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Callable, NamedTuple, Optional
from uuid import UUID

from typing_extensions import TypedDict, Unpack

from ._config import TracerConfig, TracerOptions
from ._errors import BufferFullError, ConfigError
from ._filters import FilterRules, RunFilter
from ._model import LLM_TYPES, RunEvent, RunRecord, id_string
from ._stream import PatchChannel, WhenFull
from ._streaming import StreamedCall, drive_async, drive_sync, prepare, resolve_config
from ._tracer import Tracer
from ._tracing import accumulate

__all__ = ["EventStream", "StreamEvent", "astream_events", "stream_events"]


class StreamEvent(TypedDict):
    """One event, in the schema of LangChain's ``astream_events(version="v2")``.

    Attributes:
        event: ``on_<run type>_start|stream|end|error`` or ``on_custom_event``.
        name: The run's name (a custom event's own name).
        run_id: The run's id, as a string.
        parent_ids: The ids of the run's ancestors, as strings, root first.
        tags: The run's tags, inherited ones included.
        metadata: The run's metadata.
        data: ``input``, ``chunk``, ``output`` or ``error``, as the event has them (a
            custom event's data as it was given).
    """

    event: str
    name: str
    run_id: str
    parent_ids: list[str]
    tags: list[str]
    metadata: dict[str, Any]
    data: Any


class _Info(NamedTuple):
    """What the events of an open run repeat: filled once, at its start."""

    name: str
    run_type: str
    tags: list[str]
    metadata: dict[str, Any]
    parent_ids: list[str]
    run_id: str


_EMPTY_INPUT = {"input": ""}  # what a streamed run starts with before its input is known
_PLAIN = frozenset({str, bytes, list, tuple, dict, set, int, float, bool})


def _is_empty_input(value: Any) -> bool:
    """Whether ``value`` is the placeholder ``{"input": ""}``; never calls user ``==``."""
    return (
        type(value) is dict
        and len(value) == 1
        and type(value.get("input")) is str
        and value["input"] == ""
    )


def _or_empty(value: Any) -> Any:
    """Return ``value``, or ``{}`` for ``None`` and empty or zero plain values.

    As LangChain's ``inputs or {}``, without asking the truth value of other objects
    (numpy arrays and data frames refuse to answer).
    """
    if value is None or (type(value) in _PLAIN and not value):
        return {}
    return value


def _unwrap(envelope: Any, key: str) -> Any:
    """Return the value an envelope keeps under ``key`` (``{key: x}`` -> ``x``), else itself.

    In the ``"streaming_events"`` schema format every chain-like value has its envelope;
    in ``"original"`` a dict is kept bare, and is returned as it is.
    """
    if isinstance(envelope, Mapping) and len(envelope) == 1 and key in envelope:
        return envelope[key]
    return envelope


def _model_output(run_type: str, outputs: Any) -> Any:
    """Return what ``on_chat_model_end`` / ``on_llm_end`` show of a model's response.

    A chat model's is the message of its first generation; an LLM's is its generations
    (text, info and type of each) and its ``llm_output``.
    """
    generations = outputs.get("generations") if isinstance(outputs, Mapping) else None
    if not isinstance(generations, list) or not all(type(b) is list for b in generations):
        return outputs  # not the shape of a model's result: shown as it is
    if run_type == "chat_model":
        for batch in generations:
            for generation in batch:
                if isinstance(generation, Mapping):
                    return generation.get("message", generation.get("text"))
                return generation
        return {}
    return {
        "generations": [
            [
                {
                    "text": gen.get("text"),
                    "generation_info": gen.get("generation_info"),
                    "type": gen.get("type"),
                }
                if isinstance(gen, Mapping)
                else gen
                for gen in batch
            ]
            for batch in generations
        ],
        "llm_output": outputs.get("llm_output"),
    }


def _start_input(run_type: str, inputs: Any) -> Any:
    """Return the ``data.input`` of a run's start event (the placeholder for none yet)."""
    if run_type in LLM_TYPES or run_type == "retriever":
        return inputs
    if run_type == "tool":
        return _or_empty(_unwrap(inputs, "input"))
    return _unwrap(inputs, "input")


def _end_data(record: RunRecord) -> dict[str, Any]:
    """Return the ``data`` of a run's end (or error) event."""
    run_type, inputs, outputs = record.run_type, record.inputs, record.outputs
    if run_type in LLM_TYPES:
        data = {"output": _model_output(run_type, outputs), "input": inputs}
    elif run_type == "retriever":
        data = {"output": _unwrap(outputs, "documents"), "input": inputs}
    elif run_type == "tool":
        data = {"output": _unwrap(outputs, "output"), "input": _unwrap(inputs, "input")}
    else:
        given = _unwrap(inputs, "input")
        data = {
            "output": _unwrap(outputs, "output"),
            "input": {} if _is_empty_input(given) else _or_empty(given),
        }
    if record.error is not None:
        data = {"error": record.exception, "input": data["input"]}
        if run_type == "tool":
            data["tool_call_id"] = None
    return data


class EventStream:
    """A run processor that streams ``astream_events(version="v2")``-shaped events.

    Register it with ``processors=[...]`` on a :class:`~logstream.Tracer`, a
    :class:`~logstream.LogStreamCallbackHandler` or a streamed call, and read the events
    with ``for event in stream`` (blocking, from any thread) or ``async for event in
    stream`` (any event loop); iteration ends once the tracer's stream closes. Its rules
    are its own: the run log's filters do not apply to the events, nor these to the log.

    Args:
        run_filter: Compiled include/exclude rules; or give them as keywords.
        max_buffer: The most events that may wait for the consumer; ``None`` for no limit.
        when_full: With ``max_buffer``: ``"block"`` (a reporting thread waits for room)
            or ``"raise"``. An event that finds no room ends the stream, and iterating it
            raises :class:`~logstream._errors.BufferFullError` after the last event. A
            consumer that stops reading a blocking stream should :meth:`close` it, which
            frees a reporting thread that waits for room.
        block_timeout: With ``"block"``, the most seconds a report waits for room.
        **rules: The six include/exclude rules (``include_names=[...]``, ...).

    Raises:
        ConfigError: Both ``run_filter`` and rules are given, or a buffer option is bad.
        FilterConfigError: A rule is a bare string or unknown.

    Example:
        >>> from logstream import Tracer
        >>> events = EventStream(exclude_types=["llm"])
        >>> tracer = Tracer(processors=[events])
        >>> root = tracer.start_run("agent", inputs={"input": "hi"})
        >>> _ = tracer.end_run(root.id, outputs={"output": "hello"})
        >>> [(e["event"], e["data"]) for e in events]
        [('on_chain_start', {'input': 'hi'}), ('on_chain_end', {'output': 'hello'})]
    """

    def __init__(
        self,
        *,
        run_filter: Optional[RunFilter] = None,
        max_buffer: Optional[int] = None,
        when_full: Optional[WhenFull] = None,
        block_timeout: Optional[float] = None,
        **rules: Unpack[FilterRules],
    ) -> None:
        """Create an open stream with no events."""
        if run_filter is not None and rules:
            msg = (
                "EventStream takes run_filter or the rules as keywords, not both: got "
                f"run_filter and {', '.join(sorted(rules))}"
            )
            raise ConfigError(msg)
        if run_filter is not None and not isinstance(run_filter, RunFilter):
            msg = f"run_filter must be a RunFilter, got {type(run_filter).__name__}"
            raise ConfigError(msg)
        self.run_filter: RunFilter = run_filter or RunFilter.from_rules(**rules)
        """The rules events are kept by."""
        self._channel: PatchChannel[StreamEvent] = PatchChannel(
            max_buffer, when_full=when_full, block_timeout=block_timeout
        )
        self._keeps_all = self.run_filter.includes_everything
        self._runs: dict[UUID, _Info] = {}
        self._started = False
        self._root: Optional[UUID] = None  # the first run seen, when it started with input
        self._error: Optional[BufferFullError] = None

    @property
    def bounded(self) -> bool:
        """Whether the stream has a ``max_buffer`` (reporting may wait for the consumer)."""
        return self._channel.bounded

    @property
    def closed(self) -> bool:
        """Whether the stream is closed (events already queued are still delivered)."""
        return self._channel.closed

    def _send(self, event: StreamEvent, event_type: str) -> None:
        if self._keeps_all or self.run_filter.should_include(
            event["name"], event_type, event["tags"]
        ):
            try:
                self._channel.put(event, event=event["event"], run_id=event["run_id"])
            except BufferFullError as exc:  # no event is lost silently: the stream ends
                self._error = exc
                self._channel.close()

    def _event(self, info: _Info, kind: str, data: Any) -> StreamEvent:
        return {
            "event": f"on_{info.run_type}_{kind}",
            "name": info.name,
            "run_id": info.run_id,
            "parent_ids": info.parent_ids,
            "tags": info.tags,
            "metadata": info.metadata,
            "data": data,
        }

    # -- the processor's hooks -----------------------------------------------------------

    def on_start(self, run: RunRecord) -> None:
        """Queue a run's start event."""
        info = _Info(
            run.name,
            run.run_type,
            list(run.tags),
            dict(run.metadata),
            [id_string(ancestor) for ancestor in run.ancestors],
            id_string(run.id),
        )
        self._runs[run.id] = info
        given = _start_input(run.run_type, run.inputs)
        data = {} if _is_empty_input(given) else {"input": given}
        if not self._started:
            self._started = True
            if data:
                self._root = run.id
        self._send(self._event(info, "start", data), run.run_type)

    def on_token(self, run_id: UUID, token: Any, chunk: Any) -> None:
        """Queue a model's stream event (its chunk: a chat model's message chunk)."""
        info = self._runs.get(run_id)
        if info is not None:
            self._send(self._event(info, "stream", {"chunk": chunk}), info.run_type)

    def on_chunk(self, run_id: UUID, chunk: Any) -> None:
        """Queue a run's stream event for one output chunk."""
        info = self._runs.get(run_id)
        if info is not None:
            self._send(self._event(info, "stream", {"chunk": chunk}), info.run_type)

    def on_event(self, run_id: UUID, event: RunEvent) -> None:
        """Queue a custom event (a retry is no event here, as in LangChain)."""
        details = event.kwargs
        if "data" not in details:  # a retry (custom events always have data)
            return
        info = self._runs.get(run_id)
        tags = details.get("tags")  # as dispatched, when the caller said
        metadata = details.get("metadata")
        custom: StreamEvent = {
            "event": "on_custom_event",
            "name": event.name,
            "run_id": id_string(run_id),
            "parent_ids": [] if info is None else info.parent_ids,
            "tags": list(tags) if tags is not None else [] if info is None else info.tags,
            "metadata": (
                dict(metadata) if metadata is not None else {} if info is None else info.metadata
            ),
            "data": details["data"],
        }
        self._send(custom, event.name)

    def on_end(self, run: RunRecord) -> None:
        """Queue a run's end event, or its error event if it failed."""
        info = self._runs.pop(run.id, None)
        if info is None:  # started before this processor saw it: nothing to end
            return
        data = _end_data(run)
        if run.id == self._root:  # its input is on its start event already
            del data["input"]
        self._send(self._event(info, "end" if run.error is None else "error", data), info.run_type)

    def on_close(self) -> None:
        """End the stream: iteration stops after the events already queued."""
        self._channel.close()

    # -- the consumer --------------------------------------------------------------------

    def close(self) -> bool:
        """Close the stream now; return ``False`` if it was already closed."""
        return self._channel.close()

    def drain(self) -> list[StreamEvent]:
        """Remove and return the events waiting now, without blocking (e.g. in tests)."""
        return self._channel.drain()

    def __iter__(self) -> Iterator[StreamEvent]:
        """Yield events as they come, blocking, until the stream closes.

        Raises:
            BufferFullError: An event found the bounded buffer full (after the last event).
        """
        yield from self._channel
        if self._error is not None:
            raise self._error

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        """Yield events as they come, in any event loop, until the stream closes.

        Raises:
            BufferFullError: An event found the bounded buffer full (after the last event).
        """
        async for event in self._channel:
            yield event
        if self._error is not None:
            raise self._error

    def __repr__(self) -> str:
        """Show the open runs and the channel's state."""
        return f"<EventStream open_runs={len(self._runs)} channel={self._channel!r}>"


class _EventsRun(StreamedCall):
    """A streamed call whose root output chunks become the root's stream events."""

    events: Optional[EventStream] = None
    """Where the events go; closed first when the consumer leaves."""

    def stop(self) -> None:
        """Close the events first (a report waiting for room gives up), then the tracer."""
        if self.events is not None:
            self.events.close()
        super().stop()

    def emit(self, chunk: Any) -> None:
        """Add up the root's output and report the chunk to the processors."""
        output = self.output
        output.final = accumulate(output.final, chunk)
        run_id = self.scope.id
        if run_id is not None:
            self.tracer.add_chunk(run_id, chunk)


_NOTHING = RunFilter(include_names=frozenset())  # the tracer keeps no log entries here
_DEFAULT = TracerConfig()


def _prepare_events(
    target: Callable[..., Any],
    value: Any,
    root: dict[str, Any],
    config: Optional[TracerConfig],
    options: TracerOptions,
) -> tuple[StreamedCall, EventStream]:
    """Make the streamed call and its events; ``root`` has the root run's name, tags, ..."""
    config = resolve_config(config, options, _DEFAULT, "stream_events and astream_events")
    if config.schema_format != "streaming_events":
        msg = (
            "stream_events and astream_events shape their data as astream_events v2 does: "
            f"schema_format={config.schema_format!r} does not apply to them (leave it out)"
        )
        raise ConfigError(msg)
    events = EventStream(
        run_filter=config.run_filter,
        max_buffer=config.max_buffer,
        when_full=config.when_full,
        block_timeout=config.block_timeout,
    )
    # The tracer keeps no log entries (nobody reads its patches) and never waits: the
    # filter and the buffer options are the events' own.
    tracer_config = dataclasses.replace(
        config,
        run_filter=_NOTHING,
        max_buffer=None,
        when_full="block",
        block_timeout=None,
        processors=(*config.processors, events),
    )
    run = prepare(
        target,
        value,
        **root,
        tracer=Tracer(tracer_config),
        run_class=_EventsRun,
        with_streamed_output_list=False,
    )
    run.blocks = events.bounded
    if isinstance(run, _EventsRun):
        run.events = events
    return run, events


def stream_events(
    target: Callable[..., Any],
    input: Any,
    *,
    name: Optional[str] = None,
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    run_id: Optional[UUID] = None,
    config: Optional[TracerConfig] = None,
    **options: Unpack[TracerOptions],
) -> Iterator[StreamEvent]:
    """Run ``target(input)`` as a root run and yield its events, without an event loop.

    Takes the targets and arguments of :func:`~logstream.stream_log` (but ``diff`` and
    ``with_streamed_output_list``): the target runs in a worker thread (async targets in
    their own event loop there), so this works from any thread.

    Args:
        target: A function, coroutine function, generator function or async generator
            function of one argument, or a ``@traced`` one. A generator's items are the
            root's output chunks (``on_chain_stream`` events); a function's return value
            is the one chunk.
        input: What ``target`` is called with; the root's start event carries it.
        name: The root run's name; the callable's ``__name__`` by default.
        tags: The root run's tags (inherited by the runs traced inside).
        metadata: The root run's metadata (inherited by the runs traced inside).
        run_id: The root run's id.
        config: A ready tracer configuration (its ``schema_format`` must be the default).
        **options: Tracer options on top of ``config``: the six filter rules (applied to
            the events as ``astream_events`` applies them), ``max_buffer``,
            ``when_full`` and ``block_timeout`` (for the events), ``clock``,
            ``id_factory``, ``redact``, ``processors``.

    Yields:
        Events (:class:`StreamEvent`). If ``target`` raises, every event made before is
        yielded (the failed runs' ``on_*_error`` events included), then the error
        propagates.

    Raises:
        ConfigError: ``target`` is not callable, ``auto_close=False``,
            ``schema_format="original"``, or an option is bad.
    """
    root = {"name": name, "tags": tags, "metadata": metadata, "run_id": run_id}
    run, events = _prepare_events(target, input, root, config, options)
    yield from drive_sync(run, target, events)


async def astream_events(
    target: Callable[..., Any],
    input: Any,
    *,
    name: Optional[str] = None,
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    run_id: Optional[UUID] = None,
    config: Optional[TracerConfig] = None,
    **options: Unpack[TracerOptions],
) -> AsyncIterator[StreamEvent]:
    """Run ``target(input)`` as a root run and yield its events as they are produced.

    Takes the arguments of :func:`stream_events`. Async targets run as a task in this
    loop (in a worker thread's loop with ``max_buffer``), sync ones in a worker thread, so
    each token shows when it is produced.

    Yields:
        Events (:class:`StreamEvent`). If ``target`` raises, every event made before is
        yielded, then the error propagates.

    Raises:
        ConfigError: As :func:`stream_events`.
    """
    root = {"name": name, "tags": tags, "metadata": metadata, "run_id": run_id}
    run, events = _prepare_events(target, input, root, config, options)
    async for event in drive_async(run, target, events.__aiter__()):
        yield event
