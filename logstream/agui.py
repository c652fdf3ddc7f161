r"""AG-UI events from a traced run: the run log as an agent-to-UI event stream.

`AG-UI <https://docs.ag-ui.com>`_ is the event protocol agent front ends speak. An
:class:`AguiEncoder` is a run processor: registered on a :class:`~logstream.Tracer` and
bound to it, it turns the tracer's runs into AG-UI events, as plain ``dict`` objects with
the protocol's camelCase keys (no dependency on the ``ag-ui-protocol`` package), which you
read with ``for``/``async for`` or send as Server-Sent Events with :func:`sse_events`.

===========================================  =============================================
what happens in the trace                    AG-UI events
===========================================  =============================================
the root run starts / ends / fails           ``RUN_STARTED`` / ``RUN_FINISHED`` (its
                                             outputs as ``result``) / ``RUN_ERROR``
a chain, retriever or any other run starts   ``STEP_STARTED`` / ``STEP_FINISHED``, named
and ends                                     by its run-log key (``"retrieve:2"``)
an ``llm`` or ``chat_model`` run streams     ``TEXT_MESSAGE_START``, one
tokens                                       ``TEXT_MESSAGE_CONTENT`` per non-empty token,
                                             ``TEXT_MESSAGE_END`` (``messageId`` is the
                                             run's id)
a ``tool`` run starts / ends                 ``TOOL_CALL_START``, ``TOOL_CALL_ARGS`` (its
                                             inputs as JSON), ``TOOL_CALL_END``; then
                                             ``TOOL_CALL_RESULT`` when it ends
every patch of the run log                   ``STATE_SNAPSHOT`` (the first, whole state),
                                             then one ``STATE_DELTA`` per patch (its RFC
                                             6902 ops, unchanged)
===========================================  =============================================

The state events carry the run log itself, so applying the snapshot and then every delta
gives the tracer's :class:`~logstream.RunState`. A run the tracer's filter leaves out of
the log gets no step, message or tool events (the state events are the filtered log, as
ever). Values are the ones the tracer recorded, after its ``redact``.

Failures: a failed root ends the stream with ``RUN_ERROR`` (``message`` is the error as
recorded); a failed tool gets a ``TOOL_CALL_RESULT`` whose content is the error and whose
``metadata`` says ``{"logstream": {"status": "error", ...}}``, a failed step or model run
still finishes (with the same metadata), and the run goes on. When the root ends, whatever
is still open inside it is closed first (messages ended, steps finished), so the stream
stays valid. If the tracer's stream closes before the root ends (a run that never ends),
the open parts are closed and the stream ends with ``RUN_ERROR`` with
``code="logstream.unfinished"``.

The encoder takes the tracer's patch stream: it drains the tracer in its hooks, so do not
also iterate the tracer. Left unbound (as with :func:`~logstream.stream_log`, which reads
its tracer's stream itself: pass ``processors=[encoder]`` and read both), it makes every
event but the state ones, for every run (it cannot see the filter). Events after the
terminal event are dropped. Timestamps are the run's start or end time for the events of
a start or an end, else the time the event was made, in milliseconds since the epoch.

Example:
    >>> from logstream import Tracer
    >>> from logstream.agui import AguiEncoder
    >>> encoder = AguiEncoder(thread_id="thread-1")
    >>> tracer = encoder.bind(Tracer(processors=[encoder]))
    >>> root = tracer.start_run("agent")
    >>> model = tracer.start_run("model", "llm", parent_id=root.id)
    >>> tracer.add_token(model.id, "Hi")
    >>> _ = tracer.end_run(model.id, outputs={"output": "Hi"})
    >>> _ = tracer.end_run(root.id, outputs={"output": "Hi"})
    >>> for event in encoder:
    ...     if event["type"] != "STATE_DELTA":
    ...         print(f"{event['type']} {event.get('delta', '')}".strip())
    RUN_STARTED
    STATE_SNAPSHOT
    TEXT_MESSAGE_START
    TEXT_MESSAGE_CONTENT Hi
    TEXT_MESSAGE_END
    RUN_FINISHED
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any, Optional, TypeVar
from uuid import UUID

from ._callbacks import LogStreamCallbackHandler
from ._errors import ConfigError
from ._model import LLM_TYPES, UNSET, RunRecord, id_string
from ._patches import JsonPatchOp
from ._serialize import dumps
from ._stream import PatchChannel
from ._tracer import Tracer

__all__ = [
    "PROTOCOL_VERSION",
    "UNFINISHED_CODE",
    "AguiEncoder",
    "AguiEvent",
    "asse_events",
    "sse_events",
]

_Source = TypeVar("_Source", Tracer, LogStreamCallbackHandler)

AguiEvent = dict[str, Any]
"""One AG-UI event: a JSON object with a ``"type"`` and the protocol's camelCase keys."""

PROTOCOL_VERSION = "1.0"
"""The AG-UI protocol version the events follow (sent as ``RUN_STARTED.protocolVersion``)."""

UNFINISHED_CODE = "logstream.unfinished"
"""The ``RUN_ERROR`` code for a root run whose stream closed before it ended."""

_TOOL_TYPES = frozenset({"tool"})
_MESSAGE, _TOOL, _STEP = "message", "tool", "step"

# An open part of the run: (kind, its AG-UI id or step name, whether it got content).
_Open = list[Any]


def _millis(moment: Optional[datetime]) -> int:
    """Return ``moment`` (or now) as milliseconds since the Unix epoch."""
    if moment is not None:
        try:
            return int(moment.timestamp() * 1000)
        except (OverflowError, ValueError, OSError):  # a clock far outside the epoch's range
            pass
    return time.time_ns() // 1_000_000


def _unescape(token: str) -> str:
    """Return a JSON Pointer reference token as the key it stands for (RFC 6901)."""
    return token.replace("~1", "/").replace("~0", "~")


def _token_text(token: Any) -> str:
    """Return the text of a token: a string, or the text parts of a content-block list."""
    if isinstance(token, str):
        return token
    if isinstance(token, list):
        return "".join(
            str(block["text"])
            for block in token
            if isinstance(block, Mapping) and isinstance(block.get("text"), str)
        )
    return ""


def _output_text(outputs: Any) -> str:
    """Return the text a model run produced, from its recorded outputs, or ``""``."""
    if isinstance(outputs, str):
        return outputs
    if not isinstance(outputs, Mapping):
        return ""
    generations = outputs.get("generations")
    if isinstance(generations, list) and generations:
        first = generations[0]
        if isinstance(first, list) and first:
            first = first[0]
        if isinstance(first, Mapping) and isinstance(first.get("text"), str):
            return str(first["text"])
        return ""
    output = outputs.get("output")
    return output if isinstance(output, str) else ""


def _result_content(outputs: Any) -> str:
    """Return a tool's outputs as the text of its ``TOOL_CALL_RESULT``."""
    if isinstance(outputs, Mapping) and set(outputs) == {"output"}:
        outputs = outputs["output"]
    if outputs is None:
        return ""
    return outputs if isinstance(outputs, str) else dumps(outputs)


def _error_metadata(record: RunRecord) -> dict[str, Any]:
    return {"logstream": {"status": "error", "error": record.error, "runId": str(record.id)}}


class AguiEncoder:
    """A run processor that turns one traced run into AG-UI events.

    Register it on a tracer and bind it (``encoder.bind(Tracer(processors=[encoder]))``,
    or a :class:`~logstream.LogStreamCallbackHandler` made with
    ``processors=[encoder]``), then read the events with ``for event in encoder`` (blocks
    until the run ends) or ``async for``. The first run the tracer starts is the AG-UI
    run; the stream ends after its ``RUN_FINISHED`` or ``RUN_ERROR``. Hooks follow the
    processor contract: they never raise because of a run's values and never block.

    Args:
        thread_id: The AG-UI ``threadId``; the root run's id if ``None``.

    Raises:
        ConfigError: ``thread_id`` is not a string or ``None``.
    """

    def __init__(self, *, thread_id: Optional[str] = None) -> None:
        """Create an encoder with no run yet and an open event stream."""
        if thread_id is not None and not isinstance(thread_id, str):
            msg = f"thread_id must be a string or None, got {type(thread_id).__name__}"
            raise ConfigError(msg)
        self._thread_id = thread_id
        self._source: Optional[Tracer] = None
        self._events: PatchChannel[AguiEvent] = PatchChannel()
        self._root: Optional[UUID] = None
        self._run_id = ""
        self._ended = False
        self._keys: dict[str, str] = {}  # run id string -> its run-log key (included runs)
        self._open: dict[UUID, _Open] = {}  # open parts of the run, in start order
        self._names: dict[str, int] = {}  # runs per name, for step names when unbound

    # -- wiring --------------------------------------------------------------------------

    def bind(self, source: _Source) -> _Source:
        """Take the patch stream of ``source``, which must have this encoder as a processor.

        Args:
            source: A :class:`~logstream.Tracer` or callback handler made with
                ``processors=[..., encoder, ...]``, before its first run.

        Returns:
            ``source``, for ``tracer = encoder.bind(Tracer(processors=[encoder]))``.

        Raises:
            ConfigError: ``source`` is not a tracer or handler, does not have this encoder
                among its processors, has started its first run, or the encoder is
                already bound.
        """
        tracer = source._tracer if isinstance(source, LogStreamCallbackHandler) else source
        if not isinstance(tracer, Tracer):
            msg = f"AguiEncoder.bind takes a Tracer or LogStreamCallbackHandler, got {source!r}"
            raise ConfigError(msg)
        if self._source is not None:
            msg = f"this AguiEncoder is already bound to {self._source!r}; use one per tracer"
            raise ConfigError(msg)
        if tracer.root_id is not None:
            msg = (
                f"bind the AguiEncoder before its first run: {tracer!r} has started one, so "
                "its state events would miss the snapshot"
            )
            raise ConfigError(msg)
        if not any(processor is self for processor in tracer.config.processors):
            msg = (
                f"{tracer!r} does not have this AguiEncoder among its processors; make it "
                "with processors=[encoder] and bind that"
            )
            raise ConfigError(msg)
        self._source = tracer
        return source

    # -- reading -------------------------------------------------------------------------

    @property
    def ended(self) -> bool:
        """Whether the terminal event (``RUN_FINISHED`` or ``RUN_ERROR``) was made."""
        return self._ended

    def drain(self) -> list[AguiEvent]:
        """Remove and return the events made so far, without blocking."""
        return self._events.drain()

    def __iter__(self) -> Iterator[AguiEvent]:
        """Yield events as they are made, blocking, until the run's terminal event."""
        return iter(self._events)

    def __aiter__(self) -> AsyncIterator[AguiEvent]:
        """Yield events as they are made, in any event loop, until the terminal event."""
        return self._events.__aiter__()

    # -- the processor hooks -------------------------------------------------------------

    def on_start(self, run: RunRecord) -> None:
        """Open the AG-UI run for the root, or a step, message or tool call for a child."""
        if self._ended:
            self._discard()
            return
        if self._root is None:
            self._root = run.id
            self._run_id = id_string(run.id)
            if self._thread_id is None:
                self._thread_id = self._run_id
            self._emit(
                {
                    "type": "RUN_STARTED",
                    "timestamp": _millis(run.start_time),
                    "threadId": self._thread_id,
                    "runId": self._run_id,
                    "protocolVersion": PROTOCOL_VERSION,
                }
            )
            self._pump()
            return
        self._pump()
        if run.trace_id != self._root:
            return  # a later root of the same tracer: not part of this AG-UI run
        key: Optional[str]
        if self._source is None:  # unbound: no run log to follow, so every run counts
            key = self._own_key(run.name)
        else:
            key = self._keys.get(id_string(run.id))
            if key is None:
                return  # filtered out of the run log
        at = _millis(run.start_time)
        ident = id_string(run.id)
        if run.run_type in LLM_TYPES:
            self._open[run.id] = [_MESSAGE, ident, False]
            self._emit(
                {
                    "type": "TEXT_MESSAGE_START",
                    "timestamp": at,
                    "messageId": ident,
                    "role": "assistant",
                }
            )
        elif run.run_type in _TOOL_TYPES:
            self._open[run.id] = [_TOOL, ident, False]
            self._emit(
                {
                    "type": "TOOL_CALL_START",
                    "timestamp": at,
                    "toolCallId": ident,
                    "toolCallName": run.name,
                }
            )
            self._emit(
                {
                    "type": "TOOL_CALL_ARGS",
                    "timestamp": at,
                    "toolCallId": ident,
                    "delta": dumps(run.inputs),
                }
            )
            self._emit({"type": "TOOL_CALL_END", "timestamp": at, "toolCallId": ident})
        else:
            self._open[run.id] = [_STEP, key, False]
            self._emit({"type": "STEP_STARTED", "timestamp": at, "stepName": key})

    def on_token(self, run_id: UUID, token: Any, chunk: Any) -> None:
        """Add a non-empty token to its run's text message."""
        if self._ended:
            self._discard()
            return
        self._pump()
        part = self._open.get(run_id)
        if part is None or part[0] != _MESSAGE:
            return
        text = _token_text(token)
        if text:
            part[2] = True
            self._emit(
                {
                    "type": "TEXT_MESSAGE_CONTENT",
                    "timestamp": _millis(None),
                    "messageId": part[1],
                    "delta": text,
                }
            )

    def on_chunk(self, run_id: UUID, chunk: Any) -> None:
        """Pass on the state delta of an output chunk."""
        if self._ended:
            self._discard()
        else:
            self._pump()

    def on_end(self, run: RunRecord) -> None:
        """Close what the run opened; for the root, end the AG-UI run."""
        if self._ended:
            self._discard()
            return
        self._pump()
        at = _millis(run.end_time)
        outputs = None if run.outputs is UNSET else run.outputs  # a run ended without outputs
        if run.id == self._root:
            self._close_open(at)
            if run.error is not None:
                self._finish(
                    {
                        "type": "RUN_ERROR",
                        "timestamp": at,
                        "message": run.error,
                        "metadata": _error_metadata(run),
                    }
                )
            else:
                finished: AguiEvent = {
                    "type": "RUN_FINISHED",
                    "timestamp": at,
                    "threadId": self._thread_id,
                    "runId": self._run_id,
                }
                if outputs is not None:  # the protocol leaves an absent result out
                    finished["result"] = outputs
                self._finish(finished)
            return
        part = self._open.pop(run.id, None)
        if part is None:
            return
        kind, ident, has_text = part
        extra: dict[str, Any] = {} if run.error is None else {"metadata": _error_metadata(run)}
        if kind == _MESSAGE:
            text = "" if has_text else _output_text(outputs)
            if text:
                self._emit(
                    {
                        "type": "TEXT_MESSAGE_CONTENT",
                        "timestamp": at,
                        "messageId": ident,
                        "delta": text,
                    }
                )
            self._emit({"type": "TEXT_MESSAGE_END", "timestamp": at, "messageId": ident, **extra})
        elif kind == _TOOL:
            content = run.error if run.error is not None else _result_content(outputs)
            self._emit(
                {
                    "type": "TOOL_CALL_RESULT",
                    "timestamp": at,
                    "messageId": ident + ":result",
                    "toolCallId": ident,
                    "content": content,
                    "role": "tool",
                    **extra,
                }
            )
        else:
            self._emit({"type": "STEP_FINISHED", "timestamp": at, "stepName": ident, **extra})

    def on_close(self) -> None:
        """End the event stream; a root still open ends with ``RUN_ERROR`` (unfinished)."""
        if self._ended:
            self._discard()
            return
        self._pump()
        if self._root is None:
            self._ended = True
            self._events.close()
            return
        at = _millis(None)
        self._close_open(at)
        self._finish(
            {
                "type": "RUN_ERROR",
                "timestamp": at,
                "message": (
                    f"the tracer's stream closed before root run {self._run_id} ended "
                    "(a run that never ended)"
                ),
                "code": UNFINISHED_CODE,
            }
        )

    # -- inside --------------------------------------------------------------------------

    def _emit(self, event: AguiEvent) -> None:
        self._events.put(event)

    def _finish(self, event: AguiEvent) -> None:
        self._emit(event)
        self._ended = True
        self._events.close()

    def _close_open(self, at: int) -> None:
        """Close every part still open, latest first, so the run ends valid."""
        for _, (kind, ident, _has_text) in reversed(list(self._open.items())):
            if kind == _MESSAGE:
                self._emit({"type": "TEXT_MESSAGE_END", "timestamp": at, "messageId": ident})
            elif kind == _STEP:
                self._emit({"type": "STEP_FINISHED", "timestamp": at, "stepName": ident})
            # a tool call's arguments were complete at its start: it stays without result
        self._open.clear()

    def _own_key(self, name: str) -> str:
        """Name a run as the run log would, ``name``, then ``name:2``, ... (when unbound)."""
        count = self._names.get(name, 0) + 1
        self._names[name] = count
        return name if count == 1 else f"{name}:{count}"

    def _discard(self) -> None:
        """Drop what the tracer queued after the terminal event, so it never fills up."""
        if self._source is not None:
            self._source.drain()

    def _pump(self) -> None:
        """Turn the patches the tracer queued so far into state events."""
        source = self._source
        if source is None:
            return
        patches = source.drain()
        if patches:
            at = _millis(None)
            for patch in patches:
                self._state_event(patch.ops, at)

    def _state_event(self, ops: list[JsonPatchOp], at: int) -> None:
        """Send one patch's ops as a state event; note the log key of each new entry."""
        if not ops:
            return
        keys = self._keys
        for op in ops:
            path = op.get("path")
            # A new entry is "add /logs/<key>" (no further "/"): a token's op is not one.
            if type(path) is str and path.startswith("/logs/") and path.find("/", 6) < 0:
                value = op.get("value")
                if op.get("op") == "add" and isinstance(value, Mapping):
                    ident = value.get("id")
                    if isinstance(ident, str):
                        keys[ident] = _unescape(path[6:])
        first = ops[0]
        if len(ops) == 1 and first.get("path") == "" and first.get("op") == "replace":
            self._emit({"type": "STATE_SNAPSHOT", "timestamp": at, "snapshot": first["value"]})
        else:
            self._emit({"type": "STATE_DELTA", "timestamp": at, "delta": list(ops)})


def _frame(event: AguiEvent) -> str:
    return f"data: {dumps(event)}\n\n"


def sse_events(events: Iterable[AguiEvent]) -> Iterator[str]:
    r"""Yield one Server-Sent Events frame (``data: <json>\n\n``) per AG-UI event.

    The framing AG-UI's HTTP transport uses (``text/event-stream``); the JSON is
    :func:`~logstream.dumps`'s, so any value in an event is written.

    Args:
        events: The events, e.g. an :class:`AguiEncoder`.

    Yields:
        The frames, in order.

    Example:
        >>> list(sse_events([{"type": "RUN_STARTED", "threadId": "t", "runId": "r"}]))
        ['data: {"type":"RUN_STARTED","threadId":"t","runId":"r"}\n\n']
    """
    for event in events:
        yield _frame(event)


async def asse_events(events: AsyncIterable[AguiEvent]) -> AsyncIterator[str]:
    r"""Yield one Server-Sent Events frame per event of the async iterable ``events``.

    Args:
        events: The events, e.g. ``aiter(encoder)``.

    Yields:
        The frames (``data: <json>\n\n``), in order.
    """
    async for event in events:
        yield _frame(event)
