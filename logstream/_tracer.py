"""The tracer: one run log's run tree, emitter and patch channel behind one lock.

:class:`Tracer` is the edge where the pure core meets threads. Each method takes the
lock, moves the run tree (:mod:`logstream._model`), asks the emitter
(:mod:`logstream._emitter`) for the ops and puts them on the channel
(:mod:`logstream._stream`) as one :class:`~logstream._patches.RunLogPatch`, so runs reported
from many threads produce patches in an order that applies. Both front ends sit on it:
the LangChain-shaped callback adapter (:mod:`logstream._callbacks`) and the native tracing
API (:mod:`logstream._tracing`); the same events give the same ops through either.

A tracer is made from one :class:`~logstream._config.TracerConfig` (or the keyword options
it is built from). Inputs and outputs arrive already in their envelope (see
:mod:`logstream._envelopes`); the tracer applies the ``redact`` callable, if any, to every
value before it is recorded. Which event may touch which run type is the model's rule
(:data:`~logstream._model.EVENT_RULES`), the same for both front ends.

Runs are handed out as frozen :class:`~logstream._model.RunRecord` snapshots, never the
live objects, and the configured run processors (:mod:`logstream._processors`) see each
one when it starts and ends, in event order, with the lock released.

Misuse (an end for a run that is not open, a second start of an open id, a token for a
chain run) raises a :class:`~logstream._errors.LogStreamError` subclass and emits nothing.
After :meth:`Tracer.close` every method does nothing and raises nothing: a host program
that keeps reporting after its consumer went away is never broken.

The stream is unbounded by default. With ``max_buffer`` it holds at most that many
patches; an event whose patch finds it full waits for the consumer (``when_full="block"``,
up to ``block_timeout``) or raises :class:`~logstream._errors.BufferFullError`
(``"raise"``). Room is claimed before the run tree moves, so a rejected event leaves no
trace and the patches that follow still apply. The consumer never takes the tracer's
lock, so a producer blocked with the lock held is always freed by a read or a close.

Example:
    >>> tracer = Tracer()
    >>> root = tracer.start_run("agent", inputs={"input": "hi"})
    >>> llm = tracer.start_run("model", "llm", parent_id=root.id, inputs={"prompts": ["hi"]})
    >>> tracer.add_token(llm.id, "Hello")
    >>> _ = tracer.end_run(llm.id, outputs={"generations": []})
    >>> _ = tracer.end_run(root.id, outputs={"output": "Hello"})
    >>> tracer.closed
    True
    >>> state = RunLogPatch() + RunLogPatch(*[op for patch in tracer for op in patch.ops])
    >>> state.state["logs"]["model"]["streamed_output_str"]
    ['Hello']
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Callable, Optional
from uuid import UUID

from typing_extensions import Unpack

from ._config import TracerConfig, TracerOptions
from ._emitter import PatchEmitter, SchemaFormat, TokenRoute
from ._filters import RunFilter
from ._model import LLM_TYPES, UNSET, Run, RunRecord, RunTree, check_start_args, run_key
from ._patches import JsonPatchOp, RunLogPatch
from ._processors import ProcessorDispatch, ProcessorStats
from ._serialize import dumps
from ._stream import BufferStats, PatchChannel
from ._text import error_text
from ._values import MISSING, safe_repr, snapshot

__all__ = ["Tracer"]

_from_ops = RunLogPatch.from_ops

# An open run that streams tokens, with the route its tokens' ops take (``None`` when
# the run is not logged): found once per run instead of tree, type check and path apart.
_TokenTarget = tuple[Run, Optional[TokenRoute]]


class Tracer:
    """Records runs and streams the run log they make as JSON Patch ops.

    Args:
        config: The configuration; the defaults if ``None``.
        **options: Keyword options (:class:`~logstream._config.TracerOptions`: the six
            filter rules, ``schema_format``, ``auto_close``, ``clock``, ``id_factory``,
            ``redact``, ``max_buffer``, ``when_full``, ``block_timeout``,
            ``processors``, ``entry_fields``), applied on top of ``config``.

    Raises:
        ConfigError: An option is unknown, of the wrong type or out of range (also a
            ``TypeError`` and a ``ValueError``; see :class:`~logstream._config.TracerConfig`).
    """

    def __init__(
        self, config: Optional[TracerConfig] = None, **options: Unpack[TracerOptions]
    ) -> None:
        """Create a tracer with an open stream and no runs."""
        if config is None:
            config = TracerConfig.from_options(**options)
        elif options:
            config = config.replace(**options)
        self._config = config
        # Held while a run moves; patches are queued in the order it is taken. The
        # tracer's puts go through PatchChannel.put_serial under it (one lock per event
        # on an unbounded stream); the consumer never takes it.
        self._lock = threading.Lock()
        self._tree = RunTree(clock=config.clock, new_id=config.id_factory)
        self._emitter = PatchEmitter(config.run_filter, config.schema_format, config.entry_fields)
        self._channel: PatchChannel[RunLogPatch] = PatchChannel(
            config.max_buffer, when_full=config.when_full, block_timeout=config.block_timeout
        )
        # A bounded stream claims room for an event's patch before the run tree moves,
        # so a rejected event leaves no trace; an unbounded one never has to.
        self._claims = config.max_buffer is not None
        self._redact = config.redact
        self._processors: Optional[ProcessorDispatch] = (
            ProcessorDispatch(config.processors) if config.processors else None
        )
        self._stats = ProcessorStats() if self._processors is None else self._processors.stats
        self._token_targets: dict[Any, _TokenTarget] = {}  # by run_key(id)
        # The target of the last token, by the identity of its id object: a model
        # streams its tokens with the same id object, and a UUID hashes in Python code.
        # Both are read and written only under the lock.
        self._last_token_id: Any = MISSING
        self._last_token_target: Optional[_TokenTarget] = None

    # -- state ---------------------------------------------------------------------------

    @property
    def config(self) -> TracerConfig:
        """The configuration this tracer was made with (its filter as it is now)."""
        return self._config

    @property
    def auto_close(self) -> bool:
        """Whether the stream closes when the root run ends; settable."""
        return self._config.auto_close

    @auto_close.setter
    def auto_close(self, value: bool) -> None:
        config = dataclasses.replace(self._config, auto_close=value)
        with self._lock:
            self._config = config

    @property
    def schema_format(self) -> SchemaFormat:
        """How inputs and outputs are shaped."""
        return self._config.schema_format

    @property
    def redact(self) -> Optional[Callable[[Any], Any]]:
        """What masks values before they are recorded, or ``None``."""
        return self._redact

    @property
    def run_filter(self) -> RunFilter:
        """Which runs get a log entry; a new filter applies to runs started afterwards."""
        return self._emitter.run_filter

    @run_filter.setter
    def run_filter(self, run_filter: RunFilter) -> None:
        config = dataclasses.replace(self._config, run_filter=run_filter)  # checked
        with self._lock:
            self._config = config
            self._emitter.run_filter = run_filter

    def set_rule(self, rule: str, values: Optional[Sequence[str]]) -> None:
        """Replace one filter rule (``"include_names"``, ...), keeping the others as compiled.

        Raises:
            FilterConfigError: ``rule`` is not a rule name, or ``values`` is a bare
                string or holds unhashable items.
        """
        changes: dict[str, Any] = {rule: values}
        self.run_filter = self._emitter.run_filter.with_rules(**changes)

    @property
    def log_missing_parent(self) -> bool:
        """Whether a run whose parent is not open is logged (at debug level)."""
        return self._tree.log_missing_parent

    @log_missing_parent.setter
    def log_missing_parent(self, value: bool) -> None:
        self._tree.log_missing_parent = value

    @property
    def root_id(self) -> Optional[UUID]:
        """The id of the first run started (the ``RunState``), or ``None``."""
        return self._emitter.root_id

    @property
    def closed(self) -> bool:
        """Whether the stream is closed."""
        return self._channel.closed

    @property
    def buffer_stats(self) -> BufferStats:
        """What the stream's buffer went through: patches queued, delivered, waits, ..."""
        return self._channel.stats

    @property
    def processor_stats(self) -> ProcessorStats:
        """How many processor hook calls failed (logged and isolated), by hook."""
        return self._stats

    @property
    def open_runs(self) -> int:
        """How many runs are open."""
        return len(self._tree)

    def is_open(self, run_id: UUID) -> bool:
        """Return whether ``run_id`` is a run that started and has not finished."""
        return run_id in self._tree

    def record(self, run_id: UUID) -> Optional[RunRecord]:
        """Return a frozen record of an open run as it is now, or ``None`` if not open."""
        with self._lock:
            run = self._tree.find(run_id)
            return None if run is None else run.record()

    def should_include(self, run_id: UUID, name: str, run_type: str, tags: list[str]) -> bool:
        """Return whether a run gets a log entry (never the root)."""
        return self._emitter.should_include(run_id, name, run_type, tags)

    # -- the stream ----------------------------------------------------------------------

    def send(self, *ops: JsonPatchOp) -> bool:
        """Put a patch of ``ops`` on the stream as they are (not redacted).

        Returns:
            ``True`` if it was queued, ``False`` if the stream is closed.

        Raises:
            BufferFullError: The buffer is full (see ``when_full``).
        """
        return self._channel.put(RunLogPatch(*ops), event="send")

    def send_patch(self, patch: RunLogPatch, *, event: str = "send", run_id: Any = None) -> bool:
        """Put a whole patch on the stream as it is (not redacted).

        Args:
            patch: The patch.
            event: The event it comes from, for a :class:`~logstream._errors.BufferFullError`.
            run_id: The run it belongs to, likewise.

        Returns:
            ``True`` if it was queued, ``False`` if the stream is closed.

        Raises:
            BufferFullError: The buffer is full (see ``when_full``).
        """
        return self._channel.put(patch, event=event, run_id=run_id)

    def close(self) -> bool:
        """Close the stream; patches already queued are still delivered.

        An event waiting for room in a full buffer gives up and does nothing. Run
        processors get ``on_close`` once, after every earlier hook.

        Returns:
            ``False`` if it was already closed.
        """
        closed = self._channel.close()  # first: it frees an event waiting for room
        if closed:
            self._after_close()
        return closed

    def _after_close(self) -> None:
        # The channel is closed: no event queues a hook after this. An event that had the
        # lock when the channel closed either queued its patch and hooks before, or
        # queued neither; taking the lock here waits for it, so on_close comes last.
        processors = self._processors
        if processors is not None:
            with self._lock:
                processors.add_close()
            processors.run()

    def drain(self) -> list[RunLogPatch]:
        """Remove and return the patches waiting now, without blocking (e.g. in tests)."""
        return self._channel.drain()

    def get(self, timeout: Optional[float] = None) -> tuple[bool, Optional[RunLogPatch]]:
        """Take the next patch, waiting up to ``timeout`` seconds (``None``: until one comes).

        Returns:
            ``(True, patch)``, or ``(False, None)`` if none came in time or the stream
            is closed and drained.
        """
        return self._channel.get(timeout=timeout)

    def __len__(self) -> int:
        """Return how many patches wait for the consumer now."""
        return len(self._channel)

    def __iter__(self) -> Iterator[RunLogPatch]:
        """Yield patches as they are produced, blocking, until the stream is closed."""
        return iter(self._channel)

    def __aiter__(self) -> AsyncIterator[RunLogPatch]:
        """Yield patches as they are produced, in any event loop, until it is closed."""
        return self._channel.__aiter__()

    # -- delivery ------------------------------------------------------------------------

    def _claim(self, emits: bool, event: str, run_id: Any) -> bool:
        # Under the lock, before the tree moves, on a bounded stream: claim room for the
        # patch the event will emit. False if the stream closed (while waiting).
        return not emits or self._channel.reserve(event, run_id)

    def _release(self, claimed: bool) -> None:
        # Under the lock: give back room claimed for an event that raised.
        if claimed:
            self._channel.release()

    def _commit(self, claimed: bool, ops: list[JsonPatchOp], event: str, run_id: Any) -> bool:
        # Under the lock, after the tree moved: queue the event's patch, into the room
        # claimed for it if any (the emitter's list is fresh, so the patch can own it).
        # False if the stream closed meanwhile: the event's patch and hooks are dropped.
        if not ops:
            self._release(claimed)
            return True
        if claimed:
            return self._channel.put_reserved(_from_ops(ops))
        # unbounded, or a bounded patch not foreseen: the policy applies now
        return self._channel.put_serial(_from_ops(ops), event, run_id)

    # -- runs ----------------------------------------------------------------------------

    def start_run(
        self,
        name: str,
        run_type: str = "chain",
        *,
        run_id: Optional[UUID] = None,
        parent_id: Optional[UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        inputs: Any = None,
        event: str = "start",
    ) -> Optional[RunRecord]:
        """Start a run and emit its entry (or the root state).

        A start is whole or leaves no trace: when it raises, no run was opened, no log
        key handed out and no patch queued, on a bounded stream as on an unbounded one.

        Args:
            name: The run's name.
            run_type: ``"chain"``, ``"llm"``, ``"chat_model"``, ``"tool"``, ... or any string.
            run_id: The run's id; a fresh one if ``None``.
            parent_id: The parent run's id; a parent that is not open makes a root.
            tags: The run's tags.
            metadata: The run's metadata.
            inputs: The run's inputs, in their envelope.
            event: The event's name, for error messages (``"chain start"``, ...).

        Returns:
            The run's frozen record, or ``None`` if the stream is closed.

        Raises:
            DuplicateRunError: ``run_id`` is already open.
            RunArgumentError: ``tags`` is a bare string or holds a non-string, ``name``
                or ``run_type`` is not a string, or ``run_id`` cannot be hashed.
            BufferFullError: The buffer is full (see ``when_full``); nothing changed.
        """
        redact = self._redact
        if redact is not None:  # a redacted value is a copy already
            inputs = redact(inputs)
            if metadata is not None:
                metadata = redact(metadata)
        else:  # copied, so the end patch shows the inputs as reported, not as changed since
            inputs = snapshot(inputs)
            if metadata:
                metadata = snapshot(metadata)
        tree, emitter, processors = self._tree, self._emitter, self._processors
        with self._lock:
            if self._channel.closed:  # a hint: a close it misses is settled by the put
                return None
            claimed = False
            if self._claims:
                if run_id is None:
                    run_id = tree.new_id()
                tags = check_start_args(run_id, name, run_type, tags, event)
                tree.check_start(run_id)
                emits = emitter.root_id is None or emitter.should_include(
                    run_id, name, run_type, tags
                )
                if not self._claim(emits, event, run_id):
                    return None
                claimed = emits
            try:
                run = tree.start(
                    run_id=run_id,
                    parent_id=parent_id,
                    name=name,
                    run_type=run_type,
                    tags=tags,
                    metadata=metadata,
                    inputs=inputs,
                    event=event,
                )
                try:
                    ops = emitter.start(run)
                except BaseException:  # the emitter moved nothing: undo the tree's start
                    tree.discard(run)
                    raise
            except BaseException:
                self._release(claimed)
                raise
            if not self._commit(claimed, ops, event, run.id):
                return None  # closed meanwhile, as if before
            record = run.record()
            if processors is not None:
                processors.add_start(record)
        if processors is not None:
            processors.run()
        return record

    def add_token(self, run_id: UUID, token: Any, value: Any = UNSET) -> None:
        """Stream a token of an LLM or chat-model run onto its streamed outputs.

        The token goes onto ``streamed_output_str`` and ``value`` onto
        ``streamed_output``.

        Args:
            run_id: The run's id.
            token: The token: a string, or a list of content blocks.
            value: What goes on ``streamed_output`` (e.g. a chat chunk's message);
                the token if not given.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run may not stream tokens (not ``llm`` or ``chat_model``).
            BufferFullError: The buffer is full (see ``when_full``); nothing changed.
        """
        # The hot path. The run and its route come from the last token's target when the
        # id is the same object (a model streams with one id object), else from one
        # lookup; one lock (put_serial) on an unbounded stream; the run's count moves
        # only once the patch is in.
        redact = self._redact
        if value is UNSET:
            value = token = token if redact is None else redact(token)
        elif redact is not None:
            token, value = redact(token), redact(value)
        processors = self._processors
        lock = self._lock
        lock.acquire()
        try:
            channel = self._channel
            if channel.closed:  # a hint: a close it misses is settled by the put
                return
            if run_id is self._last_token_id:
                run, route = self._last_token_target  # type: ignore[misc]
            else:
                run, route = self._token_target(run_id)
            if route is not None and not channel.put_serial(
                _from_ops(route.ops(token, value)), "token", run_id
            ):
                return
            run.token_count += 1
            if processors is not None and processors.wants_tokens:
                processors.add_token(run.id, token, value)
        finally:
            lock.release()
        if processors is not None:
            processors.run()

    def _token_target(self, run_id: UUID) -> _TokenTarget:
        # Under the lock: where a token goes, checked as the tree checks it (raising the
        # same errors); kept until the run ends.
        key = run_key(run_id)
        known = self._token_targets.get(key)
        if known is None:
            run = self._tree.check_event(run_id, "token")
            known = (run, self._emitter.token_route(run_id))
            self._token_targets[key] = known
        self._last_token_id, self._last_token_target = run_id, known
        return known

    def add_chunk(self, run_id: UUID, chunk: Any) -> None:
        """Stream an output chunk of a run onto its ``streamed_output``.

        Chunks of the root, of a run that is not logged, and after close are dropped
        without error: a tapped stream is never cut short.

        Raises:
            BufferFullError: The buffer is full (see ``when_full``); nothing changed.
        """
        if self._redact is not None:
            chunk = self._redact(chunk)
        processors = self._processors
        with self._lock:
            if self._channel.closed:  # a hint (see add_token)
                return
            ops = self._emitter.chunk(run_id, chunk)
            if ops:
                if not self._channel.put_serial(_from_ops(ops), "chunk", run_id):
                    return  # closed meanwhile
            elif run_id not in self._tree:
                return  # no run to stream it: nothing happened
            if processors is not None and processors.wants_chunks:
                processors.add_chunk(run_id, chunk)
        if processors is not None:
            processors.run()

    def add_event(
        self, run_id: UUID, name: str, data: dict[str, Any], *, missing_ok: bool = False
    ) -> None:
        """Record an event (a retry, a custom event) on an open run; it adds no ops.

        Raises:
            UnknownRunError: ``run_id`` is not open and ``missing_ok`` is false.
        """
        data = snapshot(data) if self._redact is None else self._redact(data)
        processors = self._processors
        with self._lock:
            if self._channel.closed or (missing_ok and run_id not in self._tree):
                return
            run = self._tree.add_event(run_id, name, data)
            if processors is not None:
                processors.add_event(run.id, run.events[-1])
        if processors is not None:
            processors.run()

    def end_run(
        self,
        run_id: UUID,
        *,
        outputs: Any = UNSET,
        inputs: Any = UNSET,
        error: Optional[BaseException] = None,
        event: str = "end",
        outputs_of_open_run: Optional[Callable[[], Any]] = None,
        root_output: Any = MISSING,
    ) -> Optional[RunRecord]:
        """End a run (or fail it, given ``error``) and emit its final output and end time.

        Args:
            run_id: The run's id.
            outputs: What the run produced, in its envelope; unchanged if not given.
            inputs: The run's final inputs, in their envelope; unchanged if not given.
            error: What the run raised, if it failed.
            event: The event's name (``"chain end"``, ``"tool error"``, ...): which run
                types it may end is the model's rule
                (:data:`~logstream._model.EVENT_RULES`), and error messages name it.
            outputs_of_open_run: Builds ``outputs``, called under the lock only once the
                run is known to be open (for outputs that are costly to build).
            root_output: If the run is the root and did not fail, this value (redacted)
                goes to the state's ``/final_output``, in the end's patch. Native traces
                pass it; the handler and ``stream_log`` (which report the root's output
                with their own ops) do not.

        Returns:
            The finished run's frozen record, or ``None`` if the stream is closed.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The event does not fit the run's type; it stays open.
            BufferFullError: The buffer is full (see ``when_full``); the run stays open.
        """
        redact = self._redact  # a redacted value is a copy already; others are copied
        if outputs is not UNSET:
            outputs = snapshot(outputs) if redact is None else redact(outputs)
        if inputs is not UNSET:
            inputs = snapshot(inputs) if redact is None else redact(inputs)
        tree, emitter, processors = self._tree, self._emitter, self._processors
        shown_error: Any = None  # the error entry field's text, redacted outside the lock
        recorded_error: Optional[str] = None  # the record's error text, redacted too
        if error is not None and redact is not None:
            recorded_error = _redacted_text(redact, safe_repr(error))
        if error is not None and emitter.error:
            shown_error = error_text(error)
            if redact is not None:
                shown_error = redact(shown_error)
        if root_output is not MISSING:
            if error is not None:
                root_output = MISSING
            else:
                root_output = snapshot(root_output) if redact is None else redact(root_output)
        closes = False
        with self._lock:
            if self._channel.closed:  # a hint (see add_token)
                return None
            claimed = False
            if self._claims:
                tree.check_event(run_id, event)
                emits = emitter.emits_end(
                    run_id, shown_error is not None, root_output is not MISSING
                )
                if not self._claim(emits, event, run_id):
                    return None
                claimed = emits
            try:
                if outputs_of_open_run is not None:
                    tree.check_event(run_id, event)
                    outputs = outputs_of_open_run()
                    outputs = snapshot(outputs) if redact is None else redact(outputs)
                if error is None:
                    run = tree.end(run_id, outputs=outputs, inputs=inputs, event=event)
                else:
                    run = tree.fail(
                        run_id,
                        error,
                        outputs=outputs,
                        inputs=inputs,
                        event=event,
                        text=recorded_error,
                    )
                if run.run_type in LLM_TYPES:
                    self._token_targets.pop(run_key(run_id), None)
                    self._last_token_id, self._last_token_target = MISSING, None
                ops = emitter.end(run, shown_error, root_output)
            except BaseException:
                self._release(claimed)
                raise
            if not self._commit(claimed, ops, event, run_id):
                return None  # closed meanwhile, as if before
            record = run.record()
            if processors is not None:
                processors.add_end(record)
            if self._config.auto_close and emitter.is_root(run_id):
                closes = self._channel.close()
        if closes:
            self._after_close()
        elif processors is not None:
            processors.run()
        return record

    def __repr__(self) -> str:
        """Show the root, the open runs and the stream's state."""
        return f"<Tracer root={self.root_id} open_runs={len(self._tree)} stream={self._channel!r}>"


def _redacted_text(redact: Callable[[Any], Any], text: str) -> str:
    """Return ``redact(text)`` as text (JSON text if the redactor made it something else)."""
    redacted = redact(text)
    return redacted if isinstance(redacted, str) else dumps(redacted)
