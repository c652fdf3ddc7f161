"""The run-tree model: run records and the registry that moves them through their lives.

A run is started, may collect tokens and events, and is ended or failed; its parent is
looked up among the runs that are open. The registry does no I/O and takes no locks: the
edge that calls it (the callback adapter, the native API) serializes access. A finished
run is forgotten, so a registry that lives as long as a server does not grow.

Example:
    >>> tree = RunTree()
    >>> root = tree.start(name="agent", run_type="chain")
    >>> child = tree.start(name="search", run_type="tool", parent_id=root.id)
    >>> child.parent_id == root.id, child.trace_id == root.id
    (True, True)
    >>> tree.end(child.id, outputs={"output": "42"}).status
    'success'
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, NamedTuple, Optional

from ._errors import DuplicateRunError, RunArgumentError, RunTypeError, UnknownRunError
from ._values import MISSING, safe_repr

__all__ = [
    "LLM_TYPES",
    "UNSET",
    "Clock",
    "IdFactory",
    "Run",
    "RunEvent",
    "RunRecord",
    "RunTree",
    "check_start_args",
    "id_string",
    "isoformat_ms",
    "run_key",
    "utc_now",
]

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
"""A zero-argument callable returning the current time as an aware ``datetime``."""

IdFactory = Callable[[], uuid.UUID]
"""A zero-argument callable returning a fresh run id."""


def utc_now() -> datetime:
    """Return the current time in UTC; the default :data:`Clock`."""
    return datetime.now(_UTC)


# -- formatting times and ids, fast ----------------------------------------------------
#
# A run's start and end times and its dotted order are formatted at every start and end;
# datetime.isoformat() and strftime() cost microseconds each, and so does str() of a UUID
# (it formats itself in Python code). For times in UTC the text of the last second seen
# is kept (events come many per second) and only the fraction is added; the text of the
# last id formatted is kept (the emitter asks for the id the tree just formatted).
#
# The caches take no lock and need no GIL. Each is one module global holding an immutable
# tuple, replaced whole: a reader loads the global once (a dict lookup of one reference,
# thread-safe on a free-threaded build too) and reads only that tuple, which no one
# changes. Racing threads may each build an entry and the last store wins; every entry
# is correct, so a lost one only costs a rebuild. No read-modify-write spans two steps.

_UTC = timezone.utc
_ONE_SECOND = timedelta(seconds=1)
_DIGITS3 = tuple(f"{n:03d}" for n in range(1000))
_MS_UTC = tuple(f".{digits}+00:00" for digits in _DIGITS3)
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)

# (start of the second, start of the next, its isoformat() without the offset, its
# strftime("%Y%m%dT%H%M%S")) of the last second formatted, in UTC
_last_second: tuple[datetime, datetime, str, str] = (_EPOCH, _EPOCH, "", "")
# (id object, its text) of the last id formatted
_last_id: tuple[Any, str] = (MISSING, "")


def _new_second(dt: datetime) -> tuple[datetime, datetime, str, str]:
    global _last_second
    start = dt.replace(microsecond=0)
    try:
        end = start + _ONE_SECOND
    except OverflowError:  # the last second of datetime: never cached
        end = start
    last = (
        start,
        end,
        start.replace(tzinfo=None).isoformat(),
        start.strftime("%Y%m%dT%H%M%S"),
    )
    _last_second = last  # one store of a whole new entry
    return last


def isoformat_ms(dt: datetime) -> str:
    """Return ``dt.isoformat(timespec="milliseconds")``, faster for times in UTC."""
    if dt.tzinfo is not _UTC:
        return dt.isoformat(timespec="milliseconds")
    last = _last_second  # one load; only this tuple is read below (see above)
    if not last[0] <= dt < last[1]:
        last = _new_second(dt)
    return last[2] + _MS_UTC[dt.microsecond // 1000]


def _dotted_time(dt: datetime) -> str:
    """Return the time part of a dotted order: ``dt`` in UTC as ``%Y%m%dT%H%M%S%fZ``."""
    if dt.tzinfo is not _UTC:
        if dt.tzinfo is None:
            return dt.strftime("%Y%m%dT%H%M%S%fZ")
        dt = dt.astimezone(_UTC)
    last = _last_second  # one load, as in isoformat_ms
    if not last[0] <= dt < last[1]:
        last = _new_second(dt)
    micro = dt.microsecond
    return f"{last[3]}{_DIGITS3[micro // 1000]}{_DIGITS3[micro % 1000]}Z"


_UUID = uuid.UUID


def run_key(run_id: Any) -> Any:
    """Return the key a run id is filed under: a UUID's ``int``, any other id with its type.

    A UUID hashes and compares in Python code; its ``int`` does so in C, which makes
    every lookup of a run several times cheaper. Any other id (a string, an ``int``) is
    filed as ``(type, id)``, a tuple, which never equals a UUID's ``int``: ids are
    compared as what they are, so ``3`` is not ``UUID(int=3)``, nor ``"3"``, nor ``3.0``.
    """
    return run_id.int if isinstance(run_id, _UUID) else (type(run_id), run_id)


def check_start_args(
    run_id: Any, name: Any, run_type: Any, tags: Any, event: str = "start"
) -> list[str]:
    """Check the arguments a run starts with; return its tags as a new list.

    Args:
        run_id: The run's id (any hashable value; ids are normally UUIDs).
        name: The run's name: a string.
        run_type: The run's type: a string.
        tags: The run's tags: ``None`` or a collection of strings (not one string).
        event: The event's name, for error messages.

    Returns:
        The tags, copied into a list (empty for ``None``).

    Raises:
        RunArgumentError: An argument is of the wrong kind; nothing was started.
    """
    if type(name) is str and type(run_type) is str and isinstance(run_id, _UUID):
        if tags is None:  # the usual starts: nothing to build a message for
            return []
        if type(tags) is list:
            for tag in tags:
                if type(tag) is not str:
                    break
            else:
                return tags.copy()
    who = f"run {run_id}" if run_id is not None else "a new run"
    if not isinstance(name, str):
        msg = (
            f"can't handle {event} for {who}: its name must be a string, got {type(name).__name__}"
        )
        raise RunArgumentError(msg, run_id, event, "name")
    if not isinstance(run_type, str):
        msg = (
            f"can't handle {event} for {who} ({name!r}): its run_type must be a "
            f"string such as 'chain' or 'llm', got {type(run_type).__name__}"
        )
        raise RunArgumentError(msg, run_id, event, "run_type")
    if tags is None:
        tag_list: list[str] = []
    elif isinstance(tags, (str, bytes)):
        msg = (
            f"can't handle {event} for {who} ({name!r}): tags must be a "
            f"collection of strings, got the single string {tags!r}; write tags=[{tags!r}]"
        )
        raise RunArgumentError(msg, run_id, event, "tags")
    else:
        try:
            tag_list = list(tags)
        except Exception as exc:
            msg = (
                f"can't handle {event} for {who} ({name!r}): tags must be a "
                f"collection of strings, got {type(tags).__name__}"
            )
            raise RunArgumentError(msg, run_id, event, "tags") from exc
        for tag in tag_list:
            if not isinstance(tag, str):
                msg = (
                    f"can't handle {event} for {who} ({name!r}): tags must be "
                    f"strings, got a {type(tag).__name__} among them"
                )
                raise RunArgumentError(msg, run_id, event, "tags")
    if not isinstance(run_id, _UUID):
        try:
            hash(run_id)
        except Exception as exc:
            msg = (
                f"can't handle {event} for a run {name!r}: its id must be hashable "
                f"(a UUID), got {type(run_id).__name__}"
            )
            raise RunArgumentError(msg, run_id, event, "run_id") from exc
    return tag_list


def id_string(run_id: Any) -> str:
    """Return ``str(run_id)``; the text of the last id asked for is kept."""
    global _last_id
    last = _last_id  # one load; the tuple holds the id, so its identity is not reused
    if last[0] is run_id:
        return last[1]
    text = str(run_id)
    _last_id = (run_id, text)  # one store of a whole new entry
    return text


class ReadOnlyDict(dict):  # type: ignore[type-arg]
    """A ``dict`` that refuses changes: the mappings of frozen records.

    It is a real ``dict`` (``json.dumps`` and ``isinstance(x, dict)`` take it), it pickles
    and copies, and every method that would change it raises ``TypeError``.
    """

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        msg = "a run record's mapping is read-only; copy it with dict(...) to change it"
        raise TypeError(msg)

    __setitem__ = __delitem__ = __ior__ = _refuse
    clear = pop = popitem = setdefault = update = _refuse

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle and copy as a new read-only dict of the same items."""
        return (type(self), (dict(self),))

    def __copy__(self) -> ReadOnlyDict:
        """Return self: it cannot change."""
        return self


class RunEvent(NamedTuple):
    """Something that happened to a run besides tokens: start, end, error, retry, custom.

    Attributes:
        name: ``"start"``, ``"end"``, ``"error"``, ``"retry"`` or a custom event's name.
        time: When it happened, from the tree's clock.
        kwargs: Details of the event, e.g. the retry attempt.
    """

    name: str
    time: datetime
    kwargs: Mapping[str, Any] = ReadOnlyDict()


@dataclass(eq=False)
class Run:
    """One run in the tree: a chain, an LLM or chat-model call, a tool, a retriever, ...

    ``inputs`` and ``outputs`` hold what the caller reported, in the envelope the caller
    chose (see :mod:`logstream._envelopes`); the model never looks inside them.

    Attributes:
        id: The run's id.
        name: The run's name.
        run_type: ``"chain"``, ``"llm"``, ``"chat_model"``, ``"tool"``, ``"retriever"``,
            ``"prompt"``, ``"parser"`` or any other string.
        parent_id: The parent's id, or ``None`` for a root.
        trace_id: The id of the root of this run's trace.
        dotted_order: The run's position in its trace, as LangSmith orders runs.
        tags: The run's tags, inherited ones included.
        metadata: The run's metadata.
        inputs: What the run was given.
        outputs: What the run produced, once it has ended.
        error: ``repr`` of the error the run failed with, if it failed.
        start_time: When the run started.
        end_time: When the run ended or failed, or ``None`` while it is open.
        events: Start, end, error, retry and custom events, in order.
        children: Ids of the child runs started under this one, in order.
        token_count: How many tokens the run has streamed.
        ancestors: The ids of the run's open ancestors when it started, root first.
        exception: What the run raised, if it failed.
    """

    id: uuid.UUID
    name: str
    run_type: str
    parent_id: Optional[uuid.UUID]
    trace_id: uuid.UUID
    dotted_order: str
    tags: list[str]
    metadata: dict[str, Any]
    inputs: Any
    start_time: datetime
    outputs: Any = None
    error: Optional[str] = None
    end_time: Optional[datetime] = None
    events: list[RunEvent] = field(default_factory=list)
    children: list[uuid.UUID] = field(default_factory=list)
    token_count: int = 0
    ancestors: tuple[uuid.UUID, ...] = ()
    exception: Optional[BaseException] = None

    @property
    def status(self) -> str:
        """``"running"``, ``"success"`` or ``"error"``."""
        if self.end_time is None:
            return "running"
        return "error" if self.error is not None else "success"

    def record(self) -> RunRecord:
        """Return a frozen snapshot of the run as it is now."""
        metadata, children = self.metadata, self.children
        return _new_record(
            RunRecord,
            (
                self.id,
                self.name,
                self.run_type,
                self.parent_id,
                self.ancestors,
                self.trace_id,
                self.dotted_order,
                tuple(self.tags),
                ReadOnlyDict(metadata) if metadata else _NO_METADATA,
                self.inputs,
                self.outputs,
                self.error,
                self.exception,
                self.start_time,
                self.end_time,
                self.token_count,
                tuple(self.events),
                tuple(children) if children else (),
            ),
        )


_new_record = tuple.__new__
_NO_METADATA = ReadOnlyDict()


class RunRecord(NamedTuple):
    """A frozen snapshot of a run, as handed to callers and run processors.

    Made when a run starts and when it ends (and on request); later changes to the run
    do not show in a record already made. Its values are the ones recorded, after
    redaction; ``metadata`` is a read-only view, and ``inputs`` and ``outputs`` are
    shared with the run log, so treat them as read-only too.

    Attributes:
        id: The run's id.
        name: The run's name.
        run_type: ``"chain"``, ``"llm"``, ``"chat_model"``, ``"tool"``, ... or any string.
        parent_id: The parent's id, or ``None`` for a root.
        ancestors: The ids of the run's ancestors, root first (``()`` for a root).
        trace_id: The id of the root of this run's trace.
        dotted_order: The run's position in its trace, as LangSmith orders runs.
        tags: The run's tags, inherited ones included.
        metadata: The run's metadata (read-only).
        inputs: What the run was given, in its envelope.
        outputs: What the run produced, in its envelope, once it has ended.
        error: ``repr`` of the error the run failed with, if it failed.
        exception: The exception itself, if it failed.
        start_time: When the run started.
        end_time: When the run ended or failed, or ``None`` while it is open.
        token_count: How many tokens the run streamed.
        events: Start, end, error, retry and custom events, in order.
        children: The ids of the child runs started under it so far, in order.
    """

    id: uuid.UUID
    name: str
    run_type: str
    parent_id: Optional[uuid.UUID]
    ancestors: tuple[uuid.UUID, ...]
    trace_id: uuid.UUID
    dotted_order: str
    tags: tuple[str, ...]
    metadata: Mapping[str, Any]
    inputs: Any
    outputs: Any
    error: Optional[str]
    exception: Optional[BaseException]
    start_time: datetime
    end_time: Optional[datetime]
    token_count: int
    events: tuple[RunEvent, ...]
    children: tuple[uuid.UUID, ...]

    @property
    def status(self) -> str:
        """``"running"``, ``"success"`` or ``"error"``."""
        if self.end_time is None:
            return "running"
        return "error" if self.error is not None else "success"


LLM_TYPES: frozenset[str] = frozenset({"llm", "chat_model"})
"""The run types that may stream tokens."""

_TOOL_TYPES = frozenset({"tool"})
_RETRIEVER_TYPES = frozenset({"retriever"})

EVENT_RULES: Mapping[str, frozenset[str]] = ReadOnlyDict(
    {
        "token": LLM_TYPES,
        "llm end": LLM_TYPES,
        "llm error": LLM_TYPES,
        "chat_model end": LLM_TYPES,
        "chat_model error": LLM_TYPES,
        "tool end": _TOOL_TYPES,
        "tool error": _TOOL_TYPES,
        "retriever end": _RETRIEVER_TYPES,
        "retriever error": _RETRIEVER_TYPES,
    }
)
"""Which run types an event may touch, by event name; any other event fits any run.

A token, an LLM end or error needs an ``llm`` or ``chat_model`` run; a tool end or error
a ``tool`` run; a retriever end or error a ``retriever`` run. An event that does not fit
raises :class:`~logstream._errors.RunTypeError` and changes nothing. Both front ends
(LangChain-style callbacks and native runs) name their events the same way, so the
same rule checks both.
"""


_FINISHED_REMEMBERED = 1024  # finished ids kept (up to twice as many) for clearer errors


class _Unset:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Marks an argument of :meth:`RunTree.end` / :meth:`RunTree.fail` that was not given."""


class RunTree:
    """The open runs, by id, and the transitions between their states.

    Args:
        clock: Where start and end times come from; inject a fake for deterministic tests.
        new_id: Where ids come from when :meth:`start` is not given one.
        log_missing_parent: Log at debug level when a run names a parent that is not open.
    """

    def __init__(
        self,
        *,
        clock: Clock = utc_now,
        new_id: IdFactory = uuid.uuid4,
        log_missing_parent: bool = True,
    ) -> None:
        """Create an empty tree."""
        self.clock = clock
        self.new_id = new_id
        self.log_missing_parent = log_missing_parent
        self._runs: dict[Any, Run] = {}  # by run_key(id)
        # ids of recently finished runs -> "ended" / "failed", for clearer errors: the
        # newest, and the generation before (dropped whole, so no id is hashed twice)
        self._finished: dict[Any, str] = {}
        self._finished_before: dict[Any, str] = {}

    def __len__(self) -> int:
        """Return how many runs are open."""
        return len(self._runs)

    def __contains__(self, run_id: object) -> bool:
        """Return whether ``run_id`` is open."""
        return run_key(run_id) in self._runs

    def find(self, run_id: uuid.UUID) -> Optional[Run]:
        """Return the open run with this id, or ``None``."""
        return self._runs.get(run_key(run_id))

    def get(self, run_id: uuid.UUID, event: str = "lookup") -> Run:
        """Return the open run with this id.

        Args:
            run_id: The run's id.
            event: The event asking, for the error message.

        Raises:
            UnknownRunError: No run with this id is open.
        """
        run = self._runs.get(run_key(run_id))
        if run is None:
            raise self._unknown(run_id, event)
        return run

    def start(
        self,
        *,
        name: str,
        run_type: str,
        run_id: Optional[uuid.UUID] = None,
        parent_id: Optional[uuid.UUID] = None,
        tags: Optional[list[str]] = None,
        metadata: Optional[dict[str, Any]] = None,
        inputs: Any = None,
        event: str = "start",
    ) -> Run:
        """Open a run and link it to its parent.

        A parent id that is not open makes the run a root (logged at debug level),
        as LangChain's tracers do.

        Args:
            name: The run's name.
            run_type: The run's type.
            run_id: The run's id; a fresh one from ``new_id`` if ``None``.
            parent_id: The parent's id, if any.
            tags: The run's tags (the list is copied).
            metadata: The run's metadata (the dict is copied).
            inputs: What the run was given.
            event: The event's name, for error messages.

        Returns:
            The new run.

        Raises:
            DuplicateRunError: A run with this id (given or generated) is already open;
                the tree is unchanged.
            RunArgumentError: ``name``, ``run_type``, ``tags`` or ``run_id`` is of the
                wrong kind (see :func:`check_start_args`); the tree is unchanged.
        """
        if run_id is None:
            run_id = self.new_id()
        # Everything that can fail (a bad argument, metadata that will not copy, an id
        # whose text raises) happens before the tree changes: a start is whole or nothing.
        tag_list = check_start_args(run_id, name, run_type, tags, event)
        runs = self._runs
        key = run_id.int if isinstance(run_id, _UUID) else (type(run_id), run_id)  # run_key()
        held = runs.get(key)
        if held is not None:
            raise DuplicateRunError(run_id, held.name, held.run_type)
        metadata_copy = {} if metadata is None else dict(metadata)
        now = self.clock()
        own_order = _dotted_time(now) + id_string(run_id)
        parent = None if parent_id is None else runs.get(run_key(parent_id))
        if parent is None:
            if parent_id is not None and self.log_missing_parent:
                logger.debug(
                    "parent run %s of run %s (%s %r) is not open; treating it as a root",
                    parent_id,
                    run_id,
                    run_type,
                    name,
                )
            ancestors: tuple[uuid.UUID, ...] = ()
            parent_id, trace_id, dotted_order = None, run_id, own_order
        else:
            trace_id, dotted_order = parent.trace_id, f"{parent.dotted_order}.{own_order}"
            ancestors = (*parent.ancestors, parent.id)
        run = Run(  # positionally, in field order: much cheaper than by keyword
            run_id,
            name,
            run_type,
            parent_id,
            trace_id,
            dotted_order,
            tag_list,
            metadata_copy,
            inputs,
            now,
            None,  # outputs
            None,  # error
            None,  # end_time
            [RunEvent("start", now)],
            [],  # children
            0,  # token_count
            ancestors,
        )
        if parent is not None:
            parent.children.append(run_id)
        runs[key] = run
        return run

    def discard(self, run: Run) -> None:
        """Undo :meth:`start` of a run that is still open, as if it never started.

        For an edge whose own work for the start failed after the tree moved (the
        emitter could not build the run's entry): the run leaves the tree and its
        parent's children, and no finished state is remembered for its id.

        Args:
            run: The run :meth:`start` returned.
        """
        key = run_key(run.id)
        if self._runs.get(key) is run:
            del self._runs[key]
        parent = None if run.parent_id is None else self._runs.get(run_key(run.parent_id))
        if parent is not None and parent.children and parent.children[-1] is run.id:
            parent.children.pop()

    def count_token(self, run_id: uuid.UUID) -> Run:
        """Record one streamed token on an open run.

        Returns:
            The run.

        Raises:
            UnknownRunError: No run with this id is open.
            RunTypeError: The run may not stream tokens (see :data:`EVENT_RULES`).
        """
        run = self.check_event(run_id, "token")
        run.token_count += 1
        return run

    def check_event(self, run_id: uuid.UUID, event: str) -> Run:
        """Return the open run an event names, checking the event fits its type.

        This is what :meth:`end`, :meth:`fail` and :meth:`count_token` check before they
        change anything, for a caller that must know an event will apply before it
        commits to it (e.g. by claiming room for its patch).

        Args:
            run_id: The run's id.
            event: The event's name (``"token"``, ``"tool end"``, ...): what
                :data:`EVENT_RULES` checks, and what error messages say.

        Raises:
            UnknownRunError: No run with this id is open.
            RunTypeError: The event does not fit the run's type (:data:`EVENT_RULES`).
        """
        run = self._runs.get(run_key(run_id))
        if run is None:
            raise self._unknown(run_id, event)
        types = EVENT_RULES.get(event)
        if types is not None and run.run_type not in types:
            raise RunTypeError(run_id, event, run.run_type, " or ".join(sorted(types)))
        return run

    def check_start(self, run_id: uuid.UUID) -> None:
        """Check that a run with this id may start (no open run holds it); nothing changes.

        Raises:
            DuplicateRunError: A run with this id is already open.
        """
        held = self._runs.get(run_key(run_id))
        if held is not None:
            raise DuplicateRunError(run_id, held.name, held.run_type)

    def add_event(
        self, run_id: uuid.UUID, name: str, kwargs: Optional[dict[str, Any]] = None
    ) -> Run:
        """Record an event (retry, custom, ...) on an open run.

        Raises:
            UnknownRunError: No run with this id is open.
        """
        run = self.get(run_id, name)
        run.events.append(RunEvent(name, self.clock(), ReadOnlyDict(kwargs or ())))
        return run

    def end(
        self,
        run_id: uuid.UUID,
        *,
        outputs: Any,
        inputs: Any = UNSET,
        event: str = "end",
    ) -> Run:
        """Close a run that succeeded, and forget it.

        Args:
            run_id: The run's id.
            outputs: What the run produced.
            inputs: Final inputs, if they became known only now (replaces the start's).
            event: The event's name, checked by :data:`EVENT_RULES`.

        Returns:
            The finished run, no longer in the tree.

        Raises:
            UnknownRunError: No run with this id is open.
            RunTypeError: The event does not fit the run's type; the run stays open.
        """
        run = self._close(run_id, event, "end")
        run.outputs = outputs
        if inputs is not UNSET:
            run.inputs = inputs
        return run

    def fail(
        self,
        run_id: uuid.UUID,
        error: BaseException,
        *,
        outputs: Any = UNSET,
        inputs: Any = UNSET,
        event: str = "error",
        text: Optional[str] = None,
    ) -> Run:
        """Close a run that raised, and forget it.

        Args:
            run_id: The run's id.
            error: What the run raised.
            outputs: Partial outputs, if any were reported with the error.
            inputs: Final inputs, if they became known only now.
            event: The event's name, checked by :data:`EVENT_RULES`.
            text: What to record as the error (the tracer's redacted ``repr``); by
                default ``repr(error)``.

        Returns:
            The finished run, no longer in the tree.

        Raises:
            UnknownRunError: No run with this id is open.
            RunTypeError: The event does not fit the run's type; the run stays open.
        """
        run = self._close(run_id, event, "error")
        run.error = (
            safe_repr(error) if text is None else text
        )  # never raises: the run is already closed
        run.exception = error
        if outputs is not UNSET:
            run.outputs = outputs
        if inputs is not UNSET:
            run.inputs = inputs
        return run

    def _unknown(self, run_id: uuid.UUID, event: str) -> UnknownRunError:
        key = run_key(run_id)
        state = self._finished.get(key) or self._finished_before.get(key, "unknown")
        return UnknownRunError(run_id, event, state)

    def _close(self, run_id: uuid.UUID, event: str, kind: str) -> Run:
        key = run_id.int if isinstance(run_id, _UUID) else (type(run_id), run_id)  # run_key()
        run = self._runs.pop(key, None)
        if run is None:
            raise self._unknown(run_id, event)
        types = EVENT_RULES.get(event)
        if types is not None and run.run_type not in types:
            self._runs[key] = run  # it stays open
            raise RunTypeError(run_id, event, run.run_type, " or ".join(sorted(types)))
        finished = self._finished
        finished[key] = "ended" if kind == "end" else "failed"
        if len(finished) >= _FINISHED_REMEMBERED:
            self._finished_before, self._finished = finished, {}
        run.end_time = self.clock()
        run.events.append(RunEvent(kind, run.end_time))
        return run
