"""The LangChain-shaped adapter: ``on_*`` callbacks in, run-log patches out.

:class:`LogStreamCallbackHandler` has the public surface of LangChain's handler of the same
name (constructor, ``on_*`` signatures, ``include_run``, ``send``, ``tap_output_iter`` /
``tap_output_aiter`` and the attributes a callback manager reads), so a real LangChain
``CallbackManager`` can drive it. It is the only module that knows LangChain's calling
conventions; it takes LangChain's objects (messages, generation chunks, ``LLMResult``,
``Document``, retry states, ``Run``) by duck typing and plain Python values just as well,
and never imports LangChain.

Each callback maps onto one method of a :class:`~logstream._tracer.Tracer`, which takes
the lock, moves the run tree, asks the emitter for ops and puts them on the channel, so
patches from many threads arrive in an order that applies.

Misuse by a direct caller (an end or token for a run id that is not open, a second start
of an open id, a token for a chain run) raises a :class:`~logstream._errors.LogStreamError`
subclass and leaves the log unchanged; LangChain's callback manager logs such errors and
goes on (``raise_error`` is ``False``). After the stream is closed, callbacks do nothing
and raise nothing.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any, Optional, TypeVar
from uuid import UUID

from ._config import Redactor, TracerConfig
from ._emitter import SchemaFormat
from ._envelopes import (
    wrap_chain_inputs,
    wrap_chain_outputs,
    wrap_llm_outputs,
    wrap_tool_inputs,
)
from ._errors import NotAPatchError
from ._filters import RULE_NAMES
from ._model import UNSET, Clock
from ._patches import JsonPatchOp, RunLogPatch
from ._processors import RunProcessor
from ._stream import BufferStats, WhenFull
from ._tracer import Tracer

__all__ = ["LogStreamCallbackHandler"]

T = TypeVar("T")


def _run_name(name: Optional[str], serialized: Any) -> str:
    """Name a run as LangChain does: the given name, else the serialized one, else Unnamed."""
    if name is not None:
        return name if isinstance(name, str) else str(name)
    if isinstance(serialized, Mapping):
        if "name" in serialized:  # even a None name wins over the id, as in LangChain
            value = serialized["name"]
            return "Unnamed" if value is None else str(value)
        ids = serialized.get("id")
        if isinstance(ids, Sequence) and not isinstance(ids, str) and ids:
            return str(ids[-1])
    return "Unnamed"


def _retry_details(retry_state: Any) -> dict[str, Any]:
    """Describe a tenacity-like retry state as plain data."""
    details: dict[str, Any] = {
        "slept": getattr(retry_state, "idle_for", None),
        "attempt": getattr(retry_state, "attempt_number", None),
    }
    outcome = getattr(retry_state, "outcome", None)
    if outcome is None:
        details["outcome"] = "N/A"
    elif getattr(outcome, "failed", False):
        details["outcome"] = "failed"
        exception = outcome.exception()
        details["exception"] = str(exception)
        details["exception_type"] = type(exception).__name__
    else:
        details["outcome"] = "success"
        details["result"] = str(outcome.result())
    return details


class PatchSender:
    """The handler's ``send_stream``: the writer end LangChain's ``astream_log`` writes to.

    LangChain's ``Runnable.astream_log`` and ``astream_events(version="v1")`` build the
    handler with ``auto_close=False``, run the runnable in a task that sends the root's
    output patches with ``await handler.send_stream.send(patch)`` and, whether the
    runnable ended or failed, ends the stream with ``await handler.send_stream.aclose()``;
    LangChain's own handler also calls ``send_nowait`` and ``close``. This object has
    those four methods and feeds the handler's one channel, so the consumer reads the
    callbacks' patches and these in the order they were queued, from any event loop.

    Closing never raises and always ends the stream, so a wrapper that fails still lets
    its consumer stop waiting and see the failure. A patch sent after the stream closed
    goes nowhere and raises nothing, as with LangChain's stream; :meth:`send_nowait`
    returns ``False`` then.

    Args:
        tracer: The tracer whose channel the patches go to.
    """

    __slots__ = ("_tracer",)

    def __init__(self, tracer: Tracer) -> None:
        """Write to ``tracer``'s channel."""
        self._tracer = tracer

    def send_nowait(self, patch: Any) -> bool:
        """Queue ``patch`` (ours, LangChain's, or anything with a list of ``ops``).

        A patch of another class is queued as our :class:`~logstream._patches.RunLogPatch`
        of the same ops, so the consumer sees one class.

        Returns:
            ``True`` if it was queued, ``False`` if the stream is closed.

        Raises:
            NotAPatchError: ``patch`` has no ``ops`` (a ``TypeError``); nothing queued.
            BufferFullError: The handler's buffer is bounded and full.
        """
        if type(patch) is not RunLogPatch:
            patch = _as_patch(patch)
        return self._tracer.send_patch(patch)

    async def send(self, patch: Any) -> bool:
        """Queue ``patch`` as :meth:`send_nowait` does, without blocking the event loop.

        On a bounded handler with ``when_full="block"`` the wait for room happens in a
        worker thread, so a consumer in the same loop can make that room.

        Returns:
            ``True`` if it was queued, ``False`` if the stream is closed.

        Raises:
            NotAPatchError: ``patch`` has no ``ops`` (a ``TypeError``); nothing queued.
            BufferFullError: The handler's buffer is bounded and full.
        """
        if self._tracer.config.max_buffer is None:
            return self.send_nowait(patch)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.send_nowait, patch))

    def close(self) -> bool:
        """End the stream; what was queued is still delivered. Never raises.

        Returns:
            ``False`` if it was already closed.
        """
        return self._tracer.close()

    async def aclose(self) -> bool:
        """End the stream, as :meth:`close`. Never raises.

        Returns:
            ``False`` if it was already closed.
        """
        return self._tracer.close()

    def __repr__(self) -> str:
        """Show the channel it writes to."""
        return f"<PatchSender to {self._tracer!r}>"


def _as_patch(patch: Any) -> RunLogPatch:
    """Return our patch with ``patch``'s ops, or raise :class:`NotAPatchError`."""
    ops = getattr(patch, "ops", None)
    if ops is None or isinstance(ops, (str, bytes, Mapping)):
        raise NotAPatchError(patch, "send")
    return RunLogPatch.from_ops(list(ops))


class LogStreamCallbackHandler:
    """A tracer that streams a run log as JSON Patch ops; a drop-in for LangChain's.

    Pass it in ``config={"callbacks": [handler]}`` and read patches with
    ``async for patch in handler`` (from any event loop) or ``for patch in handler``
    (blocking, e.g. from another thread).

    Args:
        auto_close: Close the stream when the root run ends.
        include_names: Only include runs with these names.
        include_types: Only include runs of these types.
        include_tags: Only include runs with any of these tags.
        exclude_names: Exclude runs with these names.
        exclude_types: Exclude runs of these types.
        exclude_tags: Exclude runs with any of these tags.
        _schema_format: ``"streaming_events"`` (the default; entries carry ``inputs``) or
            ``"original"`` (what ``Runnable.astream_log`` uses).
        clock: Where start and end times come from (not in LangChain's handler); inject a
            fake for deterministic tests.
        redact: Applied to inputs, outputs, metadata and streamed values before they are
            recorded or enter any patch (not in LangChain's handler); e.g.
            :func:`logstream.redact_secrets`.
        max_buffer: The most patches that may wait for the consumer (not in LangChain's
            handler); ``None``, the default, for no limit, as LangChain's.
        when_full: With ``max_buffer``, what a callback does when the buffer is full:
            ``"block"`` (also for ``None``) waits for the consumer to read, ``"raise"``
            raises :class:`~logstream._errors.BufferFullError`. Either way the event is
            applied whole or not at all; LangChain's manager logs such an error.
        block_timeout: With ``"block"``, the most seconds a callback waits before it
            raises :class:`~logstream._errors.BufferFullError`; ``None`` waits until the
            consumer reads or the stream is closed.
        processors: Run processors (not in LangChain's handler) that see each run's
            frozen record when it starts and ends; see :mod:`logstream._processors`.
        entry_fields: Opt-in fields of each log entry (not in LangChain's handler; off
            by default): ``"parent_ids"`` (ancestor ids, root first) and ``"error"``
            (``None``, then ``"Type: message"`` when the run fails).

    Raises:
        ValueError: ``_schema_format`` is unknown (a
            :class:`~logstream._errors.SchemaFormatError`).
        TypeError: A filter rule is a bare string (a
            :class:`~logstream._errors.FilterConfigError`), or ``entry_fields`` is a
            bare string or names an unknown field (a
            :class:`~logstream._errors.EntryFieldsError`).

    Example:
        >>> import uuid
        >>> handler = LogStreamCallbackHandler()
        >>> root, llm = uuid.uuid4(), uuid.uuid4()
        >>> handler.on_chain_start({}, {"q": "hi"}, run_id=root, name="agent")
        >>> handler.on_llm_start({}, ["hi"], run_id=llm, parent_run_id=root, name="model")
        >>> handler.on_llm_new_token("Hello", run_id=llm)
        >>> handler.on_llm_end({"generations": []}, run_id=llm)
        >>> handler.on_chain_end({"a": "Hello"}, run_id=root)
        >>> state = RunLogPatch() + RunLogPatch(*[op for p in handler for op in p.ops])
        >>> state.state["logs"]["model"]["streamed_output_str"]
        ['Hello']
    """

    raise_error: bool = False
    """Whether LangChain's callback manager re-raises errors from this handler."""

    run_inline: bool = False
    """Whether LangChain's async callback manager calls this handler inline."""

    ignore_llm: bool = False
    """LangChain's manager reads this: LLM callbacks are not ignored."""
    ignore_retry: bool = False
    """LangChain's manager reads this: retry callbacks are not ignored."""
    ignore_chain: bool = False
    """LangChain's manager reads this: chain callbacks are not ignored."""
    ignore_agent: bool = False
    """LangChain's manager reads this: agent callbacks are not ignored."""
    ignore_retriever: bool = False
    """LangChain's manager reads this: retriever callbacks are not ignored."""
    ignore_chat_model: bool = False
    """LangChain's manager reads this: chat-model callbacks are not ignored."""
    ignore_custom_event: bool = False
    """LangChain's manager reads this: custom events are not ignored."""

    def __init__(
        self,
        *,
        auto_close: bool = True,
        include_names: Optional[Sequence[str]] = None,
        include_types: Optional[Sequence[str]] = None,
        include_tags: Optional[Sequence[str]] = None,
        exclude_names: Optional[Sequence[str]] = None,
        exclude_types: Optional[Sequence[str]] = None,
        exclude_tags: Optional[Sequence[str]] = None,
        _schema_format: SchemaFormat = "streaming_events",
        clock: Optional[Clock] = None,
        redact: Optional[Redactor] = None,
        max_buffer: Optional[int] = None,
        when_full: Optional[WhenFull] = None,
        block_timeout: Optional[float] = None,
        processors: Optional[Sequence[RunProcessor]] = None,
        entry_fields: Optional[Sequence[str]] = None,
    ) -> None:
        """Create a handler with an open stream and an empty run tree."""
        config = TracerConfig.from_options(
            include_names=include_names,
            include_types=include_types,
            include_tags=include_tags,
            exclude_names=exclude_names,
            exclude_types=exclude_types,
            exclude_tags=exclude_tags,
            schema_format=_schema_format,
            auto_close=auto_close,
            clock=clock,
            redact=redact,
            max_buffer=max_buffer,
            when_full=when_full,
            block_timeout=block_timeout,
            processors=processors,
            entry_fields=entry_fields,
        )
        self._schema_format: SchemaFormat = config.schema_format
        self.auto_close = auto_close
        self.include_names = include_names
        self.include_types = include_types
        self.include_tags = include_tags
        self.exclude_names = exclude_names
        self.exclude_types = exclude_types
        self.exclude_tags = exclude_tags
        self._tracer = Tracer(config)
        self.lock = threading.Lock()
        """LangChain's handler has this attribute; ours guards nothing (the tracer locks)."""
        self.send_stream = PatchSender(self._tracer)
        self._add_token = self._tracer.add_token  # bound once: the hottest callback's target

    def __setattr__(self, name: str, value: Any) -> None:
        """Set an attribute; a filter rule (``include_names``, ...) recompiles the filter.

        Assigning a rule takes effect for the runs that start afterwards, as in LangChain.
        Rules are compiled when assigned: changing a list in place afterwards (``.append``)
        has no effect, where LangChain would see it; assign a new list instead.

        Raises:
            FilterConfigError: The new rule is a bare string or holds unhashable items.
        """
        if name in RULE_NAMES and "_tracer" in self.__dict__:  # after __init__ compiled
            self._tracer.set_rule(name, value)  # the other rules stay as compiled
        elif name == "auto_close" and "_tracer" in self.__dict__:
            self._tracer.auto_close = bool(value)
        object.__setattr__(self, name, value)

    # -- what LangChain's manager and tracers read -------------------------------------

    @property
    def log_missing_parent(self) -> bool:
        """Whether a run whose parent is not open is logged (at debug level)."""
        return self._tracer.log_missing_parent

    @log_missing_parent.setter
    def log_missing_parent(self, value: bool) -> None:
        self._tracer.log_missing_parent = value

    @property
    def config(self) -> TracerConfig:
        """The tracer configuration the constructor's arguments mapped onto."""
        return self._tracer.config

    @property
    def root_id(self) -> Optional[UUID]:
        """The id of the first run this handler saw (the ``RunState``), or ``None``."""
        return self._tracer.root_id

    @property
    def closed(self) -> bool:
        """Whether the stream is closed (by ``auto_close`` or :meth:`close`)."""
        return self._tracer.closed

    @property
    def buffer_stats(self) -> BufferStats:
        """What the stream's buffer went through: patches queued, delivered, waits, ..."""
        return self._tracer.buffer_stats

    def __copy__(self) -> LogStreamCallbackHandler:
        """Return self: callback managers copy their handlers, the log must stay one."""
        return self

    def __deepcopy__(self, memo: Any) -> LogStreamCallbackHandler:
        """Return self: callback managers copy their handlers, the log must stay one."""
        return self

    # -- the stream --------------------------------------------------------------------

    def send(self, *ops: JsonPatchOp) -> bool:
        """Put a patch of ``ops`` on the stream.

        Returns:
            ``True`` if it was queued, ``False`` if the stream is closed.
        """
        return self._tracer.send(*ops)

    def close(self) -> bool:
        """Close the stream; patches already sent are still delivered.

        Returns:
            ``False`` if it was already closed.
        """
        return self._tracer.close()

    def drain(self) -> list[RunLogPatch]:
        """Remove and return the patches waiting now, without blocking (not in LangChain).

        A test can assert on what each callback emitted without a consumer thread.
        """
        return self._tracer.drain()

    def __iter__(self) -> Iterator[RunLogPatch]:
        """Yield patches as they are produced, blocking, until the stream is closed."""
        return iter(self._tracer)

    def __aiter__(self) -> AsyncIterator[RunLogPatch]:
        """Yield patches as they are produced, in any event loop, until the stream closes."""
        return self._tracer.__aiter__()

    def include_run(self, run: Any) -> bool:
        """Return whether a run gets a log entry.

        Args:
            run: Anything with ``id``, ``name``, ``run_type`` and ``tags`` attributes,
                such as a LangChain ``Run``.
        """
        return self._tracer.should_include(run.id, run.name, run.run_type, run.tags or [])

    def tap_output_iter(self, run_id: UUID, output: Iterator[T]) -> Iterator[T]:
        """Yield ``output``'s chunks, each also added to the run's ``streamed_output``.

        Chunks of the root or of a run that is not logged pass through unrecorded, and so
        do chunks after the stream is closed: the host's stream is never cut short.
        """
        for chunk in output:
            self._tap(run_id, chunk)
            yield chunk

    async def tap_output_aiter(self, run_id: UUID, output: AsyncIterator[T]) -> AsyncIterator[T]:
        """Async version of :meth:`tap_output_iter`."""
        async for chunk in output:
            self._tap(run_id, chunk)
            yield chunk

    def _tap(self, run_id: UUID, chunk: Any) -> None:
        self._tracer.add_chunk(run_id, chunk)

    # -- core plumbing -----------------------------------------------------------------

    def _end(
        self,
        run_id: UUID,
        event: str,
        outputs: Any,
        inputs: Any = UNSET,
        error: Optional[BaseException] = None,
        response: Any = UNSET,
    ) -> None:
        self._tracer.end_run(
            run_id,
            outputs=outputs,
            inputs=inputs,
            error=error,
            event=event,
            # dump an LLM response only for a run that is open
            outputs_of_open_run=None if response is UNSET else lambda: wrap_llm_outputs(response),
        )

    # -- LLM and chat-model callbacks --------------------------------------------------

    def on_llm_start(
        self,
        serialized: dict[str, Any],
        prompts: list[str],
        *,
        run_id: UUID,
        tags: Optional[list[str]] = None,
        parent_run_id: Optional[UUID] = None,
        metadata: Optional[dict[str, Any]] = None,
        name: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        """Start an LLM run.

        Raises:
            DuplicateRunError: ``run_id`` is already open.
        """
        inputs = {"prompts": list(prompts)}
        self._tracer.start_run(
            name if type(name) is str else _run_name(name, serialized),
            "llm",
            run_id=run_id,
            parent_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            inputs=inputs,
            event="llm start",
        )

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[Any]],
        *,
        run_id: UUID,
        tags: Optional[list[str]] = None,
        parent_run_id: Optional[UUID] = None,
        metadata: Optional[dict[str, Any]] = None,
        name: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        """Start a chat-model run.

        Raises:
            NotImplementedError: In the ``"original"`` schema format, as LangChain's
                handler does; LangChain's manager then calls :meth:`on_llm_start`.
            DuplicateRunError: ``run_id`` is already open.
        """
        if self._schema_format == "original":
            msg = "chat model runs are not traced in the 'original' schema format"
            raise NotImplementedError(msg)
        inputs = {"messages": [list(batch) for batch in messages]}
        self._tracer.start_run(
            name if type(name) is str else _run_name(name, serialized),
            "chat_model",
            run_id=run_id,
            parent_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            inputs=inputs,
            event="chat model start",
        )

    def on_llm_new_token(
        self,
        token: Any,
        *,
        chunk: Any = None,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        **kwargs: Any,
    ) -> None:
        """Stream a token of an LLM or chat-model run.

        ``streamed_output_str`` gets the token; ``streamed_output`` gets the chunk's
        ``message`` where the chunk has one (a chat generation chunk), else the token.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run is not an LLM or chat-model run.
        """
        self._add_token(run_id, token, token if chunk is None else getattr(chunk, "message", token))

    def on_llm_end(self, response: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End an LLM or chat-model run with its response (an ``LLMResult`` or a mapping).

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run is not an LLM or chat-model run.
        """
        self._end(run_id, "llm end", UNSET, response=response)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Fail an LLM or chat-model run (with the partial ``response=`` if given).

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run is not an LLM or chat-model run.
        """
        response = kwargs.get("response")
        self._end(
            run_id,
            "llm error",
            UNSET,
            error=error,
            response=UNSET if response is None else response,
        )

    # -- chain callbacks ---------------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any],
        inputs: Any,
        *,
        run_id: UUID,
        tags: Optional[list[str]] = None,
        parent_run_id: Optional[UUID] = None,
        metadata: Optional[dict[str, Any]] = None,
        run_type: Optional[str] = None,
        name: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        """Start a chain run (or a ``prompt``, ``parser``, ... run given as ``run_type``).

        Raises:
            DuplicateRunError: ``run_id`` is already open.
        """
        self._tracer.start_run(
            name if type(name) is str else _run_name(name, serialized),
            run_type or "chain",
            run_id=run_id,
            parent_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            inputs=(
                {"input": inputs}  # wrap_chain_inputs, inlined for the usual format
                if self._schema_format == "streaming_events"
                else wrap_chain_inputs(inputs, "original")
            ),
            event="chain start",
        )

    def on_chain_end(
        self, outputs: Any, *, run_id: UUID, inputs: Any = None, **kwargs: Any
    ) -> None:
        """End a chain-like run with its outputs (and its final inputs, if given).

        Raises:
            UnknownRunError: ``run_id`` is not open.
        """
        fmt = self._schema_format
        final_inputs = UNSET if inputs is None else wrap_chain_inputs(inputs, fmt)
        wrapped = (
            {"output": outputs}  # wrap_chain_outputs, inlined for the usual format
            if fmt == "streaming_events"
            else wrap_chain_outputs(outputs, fmt)
        )
        self._tracer.end_run(run_id, outputs=wrapped, inputs=final_inputs, event="chain end")

    def on_chain_error(
        self, error: BaseException, *, inputs: Any = None, run_id: UUID, **kwargs: Any
    ) -> None:
        """Fail a chain-like run (with its final inputs, if given).

        Raises:
            UnknownRunError: ``run_id`` is not open.
        """
        final_inputs = UNSET if inputs is None else wrap_chain_inputs(inputs, self._schema_format)
        self._end(run_id, "chain error", UNSET, final_inputs, error=error)

    # -- tool callbacks ----------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any],
        input_str: str,
        *,
        run_id: UUID,
        tags: Optional[list[str]] = None,
        parent_run_id: Optional[UUID] = None,
        metadata: Optional[dict[str, Any]] = None,
        name: Optional[str] = None,
        inputs: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        """Start a tool run.

        Raises:
            DuplicateRunError: ``run_id`` is already open.
        """
        self._tracer.start_run(
            name if type(name) is str else _run_name(name, serialized),
            "tool",
            run_id=run_id,
            parent_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            inputs=wrap_tool_inputs(input_str, inputs, self._schema_format),
            event="tool start",
        )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """End a tool run with its output.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run is not a tool run.
        """
        self._tracer.end_run(run_id, outputs={"output": output}, event="tool end")

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Fail a tool run.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run is not a tool run.
        """
        self._end(run_id, "tool error", UNSET, error=error)

    # -- retriever callbacks -----------------------------------------------------------

    def on_retriever_start(
        self,
        serialized: dict[str, Any],
        query: str,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        name: Optional[str] = None,
        **kwargs: Any,
    ) -> None:
        """Start a retriever run (named ``"Retriever"`` unless a name is given).

        Raises:
            DuplicateRunError: ``run_id`` is already open.
        """
        self._tracer.start_run(
            name or "Retriever",
            "retriever",
            run_id=run_id,
            parent_id=parent_run_id,
            tags=tags,
            metadata=metadata,
            inputs={"query": query},
            event="retriever start",
        )

    def on_retriever_end(self, documents: Sequence[Any], *, run_id: UUID, **kwargs: Any) -> None:
        """End a retriever run with the documents it found.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run is not a retriever run.
        """
        self._end(run_id, "retriever end", {"documents": documents})

    def on_retriever_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        """Fail a retriever run.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run is not a retriever run.
        """
        self._end(run_id, "retriever error", UNSET, error=error)

    # -- events that add no ops --------------------------------------------------------

    def on_retry(self, retry_state: Any, *, run_id: UUID, **kwargs: Any) -> None:
        """Record a retry on an open run (no patch, as in LangChain).

        Raises:
            UnknownRunError: ``run_id`` is not open.
        """
        if self._tracer.closed:
            return
        self._tracer.add_event(run_id, "retry", _retry_details(retry_state))

    def on_custom_event(
        self,
        name: str,
        data: Any,
        *,
        run_id: UUID,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> None:
        """Record a custom event on its run if that run is open (no patch, as in LangChain).

        The event's details are ``{"data": data}``, with the ``tags`` and ``metadata`` it
        was dispatched with when given (the events view shows those).
        """
        details: dict[str, Any] = {"data": data}
        if tags is not None:
            details["tags"] = list(tags)
        if metadata is not None:
            details["metadata"] = metadata
        self._tracer.add_event(run_id, name, details, missing_ok=True)

    def on_text(
        self, text: str, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        """Ignore text (no patch, as in LangChain)."""

    def on_agent_action(
        self, action: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        """Ignore an agent action (no patch, as in LangChain)."""

    def on_agent_finish(
        self, finish: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        """Ignore an agent finish (no patch, as in LangChain)."""

    def on_stream_event(
        self,
        event: Any,
        *,
        run_id: UUID,
        parent_run_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        **kwargs: Any,
    ) -> None:
        """Ignore a v3 protocol stream event (no patch, as in LangChain)."""

    def __repr__(self) -> str:
        """Show the root, the open runs and the stream's state."""
        return (
            f"<LogStreamCallbackHandler root={self.root_id} "
            f"open_runs={self._tracer.open_runs} tracer={self._tracer!r}>"
        )
