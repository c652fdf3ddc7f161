"""The tracer: one run log's run tree, emitter and patch channel behind one lock.

:class:`Tracer` is the edge where the pure core meets threads. Each method takes the
lock, moves the run tree (:mod:`logstream.model`), asks the emitter
(:mod:`logstream.emitter`) for the ops and puts them on the channel
(:mod:`logstream.stream`) as one :class:`~logstream.patches.RunLogPatch`, so runs reported
from many threads produce patches in an order that applies. Both front ends sit on it:
the LangChain-shaped callback adapter (:mod:`logstream.callbacks`) and the native tracing
API (:mod:`logstream.tracing`); the same events give the same ops through either.

Inputs and outputs arrive already in their envelope (see :mod:`logstream.payloads`); the
tracer applies the ``redact`` callable, if any, to every value before it is recorded.

Misuse (an end for a run that is not open, a second start of an open id, a token for a
chain run) raises a :class:`~logstream.errors.LogStreamError` subclass and emits nothing.
After :meth:`Tracer.close` every method does nothing and raises nothing: a host program
that keeps reporting after its consumer went away is never broken.

The stream is unbounded by default. With ``max_buffer`` it holds at most that many
patches; an event whose patch finds it full waits for the consumer (``when_full="block"``,
up to ``block_timeout``) or raises :class:`~logstream.errors.BufferFullError`
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

from .emitter import PatchEmitter
from .filters import RULE_NAMES, RunFilter
from .model import UNSET, Clock, IdFactory, Run, RunTree, check_start_args, run_key, utc_now
from .patches import JsonPatchOp, RunLogPatch
from .payloads import SchemaFormat, snapshot
from .stream import BufferStats, PatchChannel, WhenFull

__all__ = ["LLM_TYPES", "Redactor", "Tracer"]

Redactor = Callable[[Any], Any]
"""A callable that returns a masked copy of a value; see :func:`logstream.redact_secrets`."""

LLM_TYPES: frozenset[str] = frozenset({"llm", "chat_model"})
"""The run types that may stream tokens."""

_ANY_TYPE: frozenset[str] = frozenset()

_from_ops = RunLogPatch.from_ops
_NO_RUN: Any = object()  # no token seen yet

# An open run that streams tokens, with the two ops its tokens fill in (``None`` when the
# run is not logged): found once per token instead of tree, type check and path apart.
# Each op is a template with its path, copied per token (cheaper than a dict literal).
_TokenRoute = tuple[Run, Optional[JsonPatchOp], Optional[JsonPatchOp]]


class Tracer:
    """Records runs and streams the run log they make as JSON Patch ops.

    Args:
        include_names: Only include runs with these names.
        include_types: Only include runs of these types.
        include_tags: Only include runs with any of these tags.
        exclude_names: Exclude runs with these names.
        exclude_types: Exclude runs of these types.
        exclude_tags: Exclude runs with any of these tags.
        schema_format: ``"streaming_events"`` (entries carry ``inputs``) or
            ``"original"`` (what ``Runnable.astream_log`` shows).
        auto_close: Close the stream when the root run ends.
        clock: Where start and end times come from.
        id_factory: Where the ids of runs started without one come from.
        redact: Applied to inputs, outputs, metadata and streamed values before they
            are recorded or enter any patch (see :func:`logstream.redact_secrets`).
        max_buffer: The most patches that may wait for the consumer; ``None`` (the
            default) for no limit.
        when_full: With ``max_buffer``, what an event does when the buffer is full:
            ``"block"`` (the default) waits for the consumer to read, ``"raise"`` raises
            :class:`~logstream.errors.BufferFullError`. Either way the event is applied
            whole or not at all.
        block_timeout: With ``"block"``, the most seconds an event waits for room
            before it raises :class:`~logstream.errors.BufferFullError`; ``None`` waits
            as long as it takes (the consumer reading, or :meth:`close`, ends the wait).

    Raises:
        SchemaFormatError: ``schema_format`` is unknown (also a ``ValueError``).
        FilterConfigError: A filter rule is a bare string (also a ``TypeError``).
        ValueError: A buffering argument is out of range (``TypeError`` for a wrong type).
    """

    def __init__(
        self,
        *,
        include_names: Optional[Sequence[str]] = None,
        include_types: Optional[Sequence[str]] = None,
        include_tags: Optional[Sequence[str]] = None,
        exclude_names: Optional[Sequence[str]] = None,
        exclude_types: Optional[Sequence[str]] = None,
        exclude_tags: Optional[Sequence[str]] = None,
        schema_format: SchemaFormat = "streaming_events",
        auto_close: bool = True,
        clock: Optional[Clock] = None,
        id_factory: Optional[IdFactory] = None,
        redact: Optional[Redactor] = None,
        max_buffer: Optional[int] = None,
        when_full: Optional[WhenFull] = None,
        block_timeout: Optional[float] = None,
    ) -> None:
        """Create a tracer with an open stream and no runs."""
        run_filter = RunFilter.from_rules(
            include_names=include_names,
            include_types=include_types,
            include_tags=include_tags,
            exclude_names=exclude_names,
            exclude_types=exclude_types,
            exclude_tags=exclude_tags,
        )
        self.lock = threading.Lock()
        """Held while a run moves; patches are queued in the order the lock is taken.

        The tracer's own puts go through :meth:`PatchChannel.put_serial` under it (one
        lock per event); the consumer never takes it."""
        self.auto_close = auto_close
        """Whether the stream closes when the root run ends."""
        self.redact: Optional[Redactor] = redact
        """What masks values before they are recorded, or ``None``."""
        if id_factory is None:
            self.tree = RunTree(clock=clock or utc_now)
        else:
            self.tree = RunTree(clock=clock or utc_now, new_id=id_factory)
        self.emitter = PatchEmitter(run_filter, schema_format)
        self.channel: PatchChannel[RunLogPatch] = PatchChannel(
            max_buffer, when_full=when_full, block_timeout=block_timeout
        )
        self._bounded = max_buffer is not None
        self._token_routes: dict[Any, _TokenRoute] = {}  # by run_key(id)
        # The route of the last token, by the identity of its id object: a model streams
        # its tokens with the same id object, and a UUID hashes in Python code. Both are
        # read and written only under self.lock (two stores, never seen half-done).
        self._last_token_id: Any = _NO_RUN
        self._last_token_route: Optional[_TokenRoute] = None

    # -- state ---------------------------------------------------------------------------

    @property
    def schema_format(self) -> SchemaFormat:
        """How inputs and outputs are shaped."""
        return self.emitter.schema_format

    @property
    def run_filter(self) -> RunFilter:
        """Which runs get a log entry; a new filter applies to runs started afterwards."""
        return self.emitter.run_filter

    @run_filter.setter
    def run_filter(self, run_filter: RunFilter) -> None:
        with self.lock:
            self.emitter.run_filter = run_filter

    def set_rule(self, rule: str, values: Optional[Sequence[str]]) -> None:
        """Replace one filter rule (``"include_names"``, ...), keeping the others as compiled.

        Raises:
            FilterConfigError: ``values`` is a bare string or holds unhashable items.
            TypeError: ``rule`` is not a rule name.
        """
        if rule not in RULE_NAMES:
            msg = f"unknown filter rule {rule!r}: expected one of {', '.join(RULE_NAMES)}"
            raise TypeError(msg)
        with self.lock:
            changes: dict[str, Any] = {rule: values}  # compiled by RunFilter.__post_init__
            self.emitter.run_filter = dataclasses.replace(self.emitter.run_filter, **changes)

    @property
    def root_id(self) -> Optional[UUID]:
        """The id of the first run started (the ``RunState``), or ``None``."""
        return self.emitter.root_id

    @property
    def closed(self) -> bool:
        """Whether the stream is closed."""
        return self.channel.closed

    @property
    def buffer_stats(self) -> BufferStats:
        """What the stream's buffer went through: patches queued, delivered, waits, ..."""
        return self.channel.stats

    def is_open(self, run_id: UUID) -> bool:
        """Return whether ``run_id`` is a run that started and has not finished."""
        return run_id in self.tree

    def should_include(self, run_id: UUID, name: str, run_type: str, tags: list[str]) -> bool:
        """Return whether a run gets a log entry (never the root)."""
        return self.emitter.should_include(run_id, name, run_type, tags)

    # -- the stream ----------------------------------------------------------------------

    def send(self, *ops: JsonPatchOp) -> bool:
        """Put a patch of ``ops`` on the stream as they are (not redacted).

        Returns:
            ``True`` if it was queued, ``False`` if the stream is closed.

        Raises:
            BufferFullError: The buffer is full (see ``when_full``).
        """
        return self.channel.put(RunLogPatch(*ops), event="send")

    def send_patch(self, patch: RunLogPatch) -> bool:
        """Put a whole patch on the stream as it is (not redacted).

        Returns:
            ``True`` if it was queued, ``False`` if the stream is closed.

        Raises:
            BufferFullError: The buffer is full (see ``when_full``).
        """
        return self.channel.put(patch, event="send")

    def close(self) -> bool:
        """Close the stream; patches already queued are still delivered.

        An event waiting for room in a full buffer gives up and does nothing.

        Returns:
            ``False`` if it was already closed.
        """
        return self.channel.close()

    def drain(self) -> list[RunLogPatch]:
        """Remove and return the patches waiting now, without blocking (e.g. in tests)."""
        return self.channel.drain()

    def __iter__(self) -> Iterator[RunLogPatch]:
        """Yield patches as they are produced, blocking, until the stream is closed."""
        return iter(self.channel)

    def __aiter__(self) -> AsyncIterator[RunLogPatch]:
        """Yield patches as they are produced, in any event loop, until it is closed."""
        return self.channel.__aiter__()

    def _claim(self, emits: bool, event: str, run_id: Any) -> bool:
        # Under self.lock, before the tree moves: on a bounded stream, claim room for the
        # patch the event will emit. False if the stream closed (while waiting).
        return not emits or self.channel.reserve(event, run_id)

    def _commit(self, claimed: bool, ops: list[JsonPatchOp]) -> None:
        # Under self.lock, after the tree moved, on a bounded stream: queue the patch
        # into the room claimed for it (the emitter's list is fresh, so the patch can own
        # it). An unbounded stream's events put their patch themselves.
        if not ops:
            if claimed:
                self.channel.release()
        elif claimed:
            self.channel.put_reserved(_from_ops(ops))
        else:  # not foreseen: the policy applies now
            self.channel.put(_from_ops(ops))

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
    ) -> Optional[Run]:
        """Start a run and emit its entry (or the root state).

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
            The run's record, or ``None`` if the stream is closed.

        A start is whole or leaves no trace: when it raises, no run was opened, no log
        key handed out and no patch queued, on a bounded stream as on an unbounded one.

        Raises:
            DuplicateRunError: ``run_id`` is already open.
            RunArgumentError: ``tags`` is a bare string or holds a non-string, ``name``
                or ``run_type`` is not a string, or ``run_id`` cannot be hashed.
            BufferFullError: The buffer is full (see ``when_full``); nothing changed.
        """
        redact = self.redact
        if redact is not None:  # a redacted value is a copy already
            inputs = redact(inputs)
            if metadata is not None:
                metadata = redact(metadata)
        else:  # copied, so the end patch shows the inputs as reported, not as changed since
            inputs = snapshot(inputs)
        tree, emitter = self.tree, self.emitter
        with self.lock:
            if self.channel._closed:  # a hint (see add_token)
                return None
            claimed = False
            if self._bounded:
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
                if claimed:
                    self.channel.release()
                raise
            if not self._bounded:
                if ops:
                    self.channel.put_serial(_from_ops(ops))
            else:
                self._commit(claimed, ops)
        return run

    def add_token(
        self,
        run_id: UUID,
        token: Any,
        value: Any = UNSET,
        *,
        allowed_types: frozenset[str] = LLM_TYPES,
    ) -> None:
        """Stream a token of a run: onto ``streamed_output_str`` and ``streamed_output``.

        Args:
            run_id: The run's id.
            token: The token: a string, or a list of content blocks.
            value: What goes on ``streamed_output`` (e.g. a chat chunk's message);
                the token if not given.
            allowed_types: Run types that may stream tokens; empty allows any.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run's type is not in ``allowed_types``.
            BufferFullError: The buffer is full (see ``when_full``); nothing changed.
        """
        # The hot path. The run and its two op templates come from the last token's route
        # when the id is the same object (a model streams with one id object), else from
        # one lookup; the ops mirror PatchEmitter.token; one lock (put_serial) on an
        # unbounded stream; the run's count moves only once the patch is in.
        redact = self.redact
        if value is UNSET:
            value = token = token if redact is None else redact(token)
        elif redact is not None:
            token, value = redact(token), redact(value)
        lock = self.lock
        lock.acquire()
        try:
            channel = self.channel
            # A hint, as in every method: one load of a reference, atomic without the GIL
            # too. A close it misses is settled by the put (put_serial's race notes).
            if channel._closed:
                return
            if run_id is self._last_token_id and allowed_types is LLM_TYPES:
                route = self._last_token_route
            else:
                route = self._token_route(run_id, allowed_types)
            run, str_op, out_op = route  # type: ignore[misc]
            if str_op is not None:
                if type(token) is not str:  # content blocks: copied, as every value is
                    token = snapshot(token)
                if type(value) is list or type(value) is dict:  # each op its own copy
                    value = snapshot(value)
                op1, op2 = str_op.copy(), out_op.copy()  # type: ignore[union-attr]
                op1["value"], op2["value"] = token, value
                patch = _from_ops([op1, op2])
                if self._bounded:
                    if not channel.put(patch, event="token", run_id=run_id):
                        return
                elif not channel.put_serial(patch):
                    return
            run.token_count += 1
        finally:
            lock.release()

    def _token_route(self, run_id: UUID, allowed_types: frozenset[str]) -> _TokenRoute:
        # Under self.lock: where a token goes, checked as the tree checks it (raising the
        # same errors); an LLM-type run's route is kept until the run ends.
        if allowed_types is LLM_TYPES:
            known = self._token_routes.get(run_key(run_id))
            if known is not None:
                self._last_token_id, self._last_token_route = run_id, known
                return known
        run = self.tree.check_token(run_id, allowed_types)
        paths = self.emitter.token_paths(run_id)
        if paths is None:
            route: _TokenRoute = (run, None, None)
        else:
            route = (
                run,
                {"op": "add", "path": paths[0], "value": None},
                {"op": "add", "path": paths[1], "value": None},
            )
        if run.run_type in LLM_TYPES:
            self._token_routes[run_key(run_id)] = route
            self._last_token_id, self._last_token_route = run_id, route
        return route

    def add_chunk(self, run_id: UUID, chunk: Any) -> None:
        """Stream an output chunk of a run onto its ``streamed_output``.

        Chunks of the root, of a run that is not logged, and after close are dropped
        without error: a tapped stream is never cut short.

        Raises:
            BufferFullError: The buffer is full (see ``when_full``); nothing changed.
        """
        if self.redact is not None:
            chunk = self.redact(chunk)
        with self.lock:
            if self.channel._closed:  # a hint (see add_token)
                return
            ops = self.emitter.chunk(run_id, chunk)
            if not ops:
                return
            if self._bounded:
                self.channel.put(_from_ops(ops), event="chunk", run_id=run_id)
            else:
                self.channel.put_serial(_from_ops(ops))

    def add_event(
        self, run_id: UUID, name: str, data: dict[str, Any], *, missing_ok: bool = False
    ) -> None:
        """Record an event (a retry, a custom event) on an open run; it adds no ops.

        Raises:
            UnknownRunError: ``run_id`` is not open and ``missing_ok`` is false.
        """
        if self.redact is not None:
            data = self.redact(data)
        with self.lock:
            if self.channel._closed or (missing_ok and run_id not in self.tree):
                return
            self.tree.add_event(run_id, name, data)

    def end_run(
        self,
        run_id: UUID,
        *,
        outputs: Any = UNSET,
        inputs: Any = UNSET,
        error: Optional[BaseException] = None,
        event: str = "end",
        allowed_types: frozenset[str] = _ANY_TYPE,
        outputs_of_open_run: Optional[Callable[[], Any]] = None,
    ) -> Optional[Run]:
        """End a run (or fail it, given ``error``) and emit its final output and end time.

        Args:
            run_id: The run's id.
            outputs: What the run produced, in its envelope; unchanged if not given.
            inputs: The run's final inputs, in their envelope; unchanged if not given.
            error: What the run raised, if it failed.
            event: The event's name, for error messages (``"chain end"``, ...).
            allowed_types: Run types this event may end; empty allows any.
            outputs_of_open_run: Builds ``outputs``, called under the lock only once the
                run is known to be open (for outputs that are costly to build).

        Returns:
            The finished run's record, or ``None`` if the stream is closed.

        Raises:
            UnknownRunError: ``run_id`` is not open.
            RunTypeError: The run's type is not in ``allowed_types``; it stays open.
            BufferFullError: The buffer is full (see ``when_full``); the run stays open.
        """
        redact = self.redact
        if redact is not None:
            if outputs is not UNSET:
                outputs = redact(outputs)
            if inputs is not UNSET:
                inputs = redact(inputs)
        tree = self.tree
        with self.lock:
            if self.channel._closed:  # a hint (see add_token)
                return None
            claimed = False
            if self._bounded:
                tree.check_event(run_id, event, allowed_types)
                emits = self.emitter.path_of(run_id) is not None
                if not self._claim(emits, event, run_id):
                    return None
                claimed = emits
            try:
                if outputs_of_open_run is not None:
                    tree.check_event(run_id, event, allowed_types)
                    outputs = outputs_of_open_run()
                    if redact is not None:
                        outputs = redact(outputs)
                if error is None:
                    run = tree.end(
                        run_id,
                        outputs=outputs,
                        inputs=inputs,
                        event=event,
                        allowed_types=allowed_types,
                    )
                else:
                    run = tree.fail(
                        run_id,
                        error,
                        outputs=outputs,
                        inputs=inputs,
                        event=event,
                        allowed_types=allowed_types,
                    )
                if run.run_type in LLM_TYPES:
                    self._token_routes.pop(run_key(run_id), None)
                    self._last_token_id, self._last_token_route = _NO_RUN, None
                ops = self.emitter.end(run)
            except BaseException:
                if claimed:
                    self.channel.release()
                raise
            if not self._bounded:
                if ops:
                    self.channel.put_serial(_from_ops(ops))
            else:
                self._commit(claimed, ops)
            if self.auto_close and self.emitter.is_root(run_id):
                self.channel.close()
        return run

    def __repr__(self) -> str:
        """Show the root, the open runs and the stream's state."""
        return f"<Tracer root={self.root_id} open_runs={len(self.tree)} stream={self.channel!r}>"
