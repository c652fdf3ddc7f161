"""What a user's tests need to assert on logstream's output, with any test runner.

* :class:`FakeClock` and :class:`SequentialIds`: a deterministic clock and id source, for
  ``clock=`` and ``id_factory=`` (or to mint the ids a callback-driven test reports).
* :class:`Recorder`: captures the patches of a handler, a :class:`~logstream._tracer.Tracer`
  or a :func:`~logstream._streaming.stream_log` stream and rebuilds the state they make.
* :func:`normalize` (and :class:`Normalizer`): ids and timestamps to stable placeholders
  (``"<id:1>"``, ``"<time:1>"``), for snapshot tests.
* :func:`assert_run`, :func:`assert_state` and :func:`assert_patches`: assertions whose
  failure says which run, which field, what was expected and what came.
* :func:`run_tree`, :func:`run_parents` and :func:`assert_run_tree`: the run tree by name,
  rebuilt from the ``parent_ids`` entry field alone; :func:`failed_runs` and
  :func:`assert_errors`: which runs failed with what text, from the ``error`` field.

It imports nothing beyond the standard library and logstream's wire shapes (no pytest);
``import logstream`` does not import it. The pytest plugin (:mod:`logstream.pytest_plugin`)
wraps these pieces in fixtures.

Example:
    >>> from logstream import LogStreamCallbackHandler
    >>> ids = SequentialIds()
    >>> handler = LogStreamCallbackHandler(clock=FakeClock())
    >>> recorder = Recorder(handler)
    >>> root, llm = ids.take(2)
    >>> handler.on_chain_start({}, {"q": "hi"}, run_id=root, name="agent")
    >>> handler.on_llm_start({}, ["hi"], run_id=llm, parent_run_id=root, name="model")
    >>> handler.on_llm_new_token("Hello", run_id=llm)
    >>> handler.on_llm_end({"generations": []}, run_id=llm)
    >>> handler.on_chain_end({"a": "Hello"}, run_id=root)
    >>> recorder.keys
    ['model']
    >>> _ = assert_run(recorder, "model", streamed_output_str=["Hello"])
    >>> normalize(recorder.entry("model"))["start_time"]
    '<time:1>'
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from re import Pattern
from typing import Any, Callable, Optional, Union

from typing_extensions import Literal, Protocol, runtime_checkable

from ._errors import LogMismatchError
from ._patches import JsonPatchOp, LogEntry, RunLog, RunLogPatch, RunState
from ._values import escape_key

__all__ = [
    "FakeClock",
    "Normalizer",
    "PatchSource",
    "Recorder",
    "SequentialIds",
    "StateSource",
    "assert_errors",
    "assert_patches",
    "assert_run",
    "assert_run_tree",
    "assert_state",
    "failed_runs",
    "normalize",
    "run_parents",
    "run_tree",
]

_MAX_SHOWN = 5  # differences listed in one failure message
_MAX_REPR = 80  # characters of a value shown in a failure message


# -- deterministic time and ids --------------------------------------------------------


class FakeClock:
    """A clock that starts at a fixed instant and moves ``step`` each time it is read.

    Pass it as ``clock=`` to :class:`~logstream.LogStreamCallbackHandler`,
    :class:`~logstream.Tracer` or :func:`~logstream.stream_log`; it is thread-safe.

    Args:
        start: The first time it returns (timezone-aware, UTC by default).
        step: How far it moves per read.

    Example:
        >>> clock = FakeClock()
        >>> clock().isoformat(), clock().isoformat()
        ('2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00.001000+00:00')
    """

    def __init__(
        self,
        start: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc),
        step: timedelta = timedelta(milliseconds=1),
    ) -> None:
        """Start the clock at ``start``."""
        self.start = start
        """The first time the clock returned (or will return)."""
        self.step = step
        """How far the clock moves per read."""
        self._now = start
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        """Return the current fake time, then advance it by :attr:`step`."""
        with self._lock:
            now = self._now
            self._now += self.step
        return now

    def __repr__(self) -> str:
        """Show the next time it will return."""
        return f"<FakeClock next={self._now.isoformat()}>"


class SequentialIds:
    """Deterministic run ids: ``UUID(int=1)``, ``UUID(int=2)``, ... one per call.

    Pass it as ``id_factory=`` to :class:`~logstream.Tracer` or
    :func:`~logstream.stream_log`, or call it to mint the ids a callback-driven test
    reports. It is thread-safe.

    Args:
        start: The integer value of the first id.

    Example:
        >>> ids = SequentialIds()
        >>> str(ids())
        '00000000-0000-0000-0000-000000000001'
        >>> [str(i)[-2:] for i in ids.take(2)]
        ['02', '03']
    """

    def __init__(self, start: int = 1) -> None:
        """Begin at ``start``."""
        self._next = start
        self._issued = 0
        self._lock = threading.Lock()

    def __call__(self) -> uuid.UUID:
        """Return the next id."""
        with self._lock:
            value = self._next
            self._next += 1
            self._issued += 1
        return uuid.UUID(int=value)

    def take(self, count: int) -> tuple[uuid.UUID, ...]:
        """Return the next ``count`` ids, e.g. ``root, llm = ids.take(2)``."""
        return tuple(self() for _ in range(count))

    @property
    def issued(self) -> int:
        """How many ids it has returned."""
        return self._issued

    def __repr__(self) -> str:
        """Show how many ids it returned."""
        return f"<SequentialIds issued={self._issued}>"


# -- recording ---------------------------------------------------------------------------


@runtime_checkable
class PatchSource(Protocol):
    """What a :class:`Recorder` reads from: anything with a non-blocking ``drain()``.

    :class:`~logstream.LogStreamCallbackHandler` and :class:`~logstream.Tracer` are both.
    """

    def drain(self) -> list[RunLogPatch]:
        """Remove and return the patches waiting now, without blocking."""


class Recorder:
    """Captures patches and rebuilds the state they make, for assertions.

    Given a ``source`` (a handler or a tracer), every read (:attr:`state`, :attr:`ops`,
    :meth:`entry`, ...) first drains what the source has emitted since, so a test drives
    its pipeline and then asserts, with no consumer thread. The recorder is then the
    source's consumer: do not also iterate the source elsewhere. Patches from anywhere
    else (an iterable such as :func:`~logstream.stream_log`'s output, or iterating a
    source until its stream closes) go in through :meth:`extend`.

    Args:
        source: Where to drain patches from; ``None`` records only what is given to
            :meth:`record` and :meth:`extend`.

    Example:
        >>> from logstream import stream_log
        >>> def shout(text: str) -> str:
        ...     return text.upper()
        >>> recorder = Recorder().extend(
        ...     stream_log(shout, "hi", clock=FakeClock(), id_factory=SequentialIds())
        ... )
        >>> recorder.state["final_output"], recorder.state["id"]
        ('HI', '00000000-0000-0000-0000-000000000001')
    """

    def __init__(self, source: Optional[PatchSource] = None) -> None:
        """Record from ``source`` (if given)."""
        self.source = source
        """Where reads drain patches from, or ``None``."""
        self._patches: list[RunLogPatch] = []
        self._ops: list[JsonPatchOp] = []
        self._log = RunLog(state=None)
        self._lock = threading.RLock()

    # -- input ---------------------------------------------------------------------------

    def record(self, patch: Union[RunLogPatch, Sequence[JsonPatchOp]]) -> None:
        """Record one patch (or a list of ops) and apply it to the state.

        A :class:`~logstream.RunLog` (what ``stream_log(..., diff=False)`` yields) is the
        whole log so far: only the ops it has beyond those recorded are added.

        Raises:
            LogMismatchError: A ``RunLog`` whose ops do not start with the recorded ones
                (a ``ValueError``); nothing is recorded.
            PatchApplyError: The ops do not apply to the state (a ``ValueError``, and
                jsonpatch's base exception); nothing is recorded.
        """
        with self._lock:
            if isinstance(patch, RunLog):
                known = len(self._ops)
                if patch.ops[:known] != self._ops:
                    msg = (
                        f"can't record a RunLog of {len(patch.ops)} ops: its ops do not "
                        f"start with the {known} ops recorded, so it is not the same stream; "
                        "use one Recorder per stream"
                    )
                    raise LogMismatchError(msg)
                patch = RunLogPatch(*patch.ops[known:])
            elif not isinstance(patch, RunLogPatch):
                patch = RunLogPatch(*patch)
            self._log = self._log + RunLogPatch(*patch.ops)
            self._patches.append(patch)
            self._ops.extend(patch.ops)

    def extend(self, patches: Iterable[Union[RunLogPatch, Sequence[JsonPatchOp]]]) -> Recorder:
        """Record every patch ``patches`` yields, blocking until it ends; return ``self``.

        ``patches`` may be :func:`~logstream.stream_log`'s output (patches or, with
        ``diff=False``, logs) or a handler or tracer, read until its stream closes.
        """
        for patch in patches:
            self.record(patch)
        return self

    def drain(self) -> list[RunLogPatch]:
        """Record the patches the source has waiting now, and return them.

        Reads do this themselves; call it to see what one step emitted.
        """
        with self._lock:
            if self.source is None:
                return []
            patches = self.source.drain()
            for patch in patches:
                self.record(patch)
            return patches

    def clear(self) -> None:
        """Forget everything recorded (the source is drained first)."""
        with self._lock:
            self.drain()
            self._patches, self._ops, self._log = [], [], RunLog(state=None)

    # -- output --------------------------------------------------------------------------

    @property
    def patches(self) -> list[RunLogPatch]:
        """Every patch recorded, in order (a new list)."""
        with self._lock:
            self.drain()
            return list(self._patches)

    @property
    def ops(self) -> list[JsonPatchOp]:
        """Every op recorded, in order: a new list of the recorded ops (do not change those)."""
        with self._lock:
            self.drain()
            return list(self._ops)

    @property
    def log(self) -> RunLog:
        """The :class:`~logstream.RunLog` of every op recorded."""
        with self._lock:
            self.drain()
            return self._log

    @property
    def state(self) -> RunState:
        """The state the recorded ops build.

        Raises:
            AssertionError: Nothing was recorded yet.
        """
        with self._lock:
            self.drain()
            state = self._log.state
        if state is None:
            __tracebackhide__ = True
            msg = "no state: no patches were recorded"
            raise AssertionError(msg)
        return state

    @property
    def keys(self) -> list[str]:
        """The log keys of the runs in the state (``model``, ``model:2``, ...), in order."""
        with self._lock:
            self.drain()
            state: Any = self._log.state
        if not isinstance(state, Mapping) or not isinstance(state.get("logs"), Mapping):
            return []
        return list(state["logs"])

    def entry(self, key: str) -> LogEntry:
        """Return the log entry of run ``key`` (``"model"``, ``"model:2"``, ...).

        Raises:
            AssertionError: There is no such run; the message lists those there are.
        """
        __tracebackhide__ = True
        return _entry(self.state, key)

    def entries(self, name: Optional[str] = None) -> list[LogEntry]:
        """Return the log entries, in order; only those of runs named ``name`` if given."""
        logs: Any = self.state.get("logs") or {}
        return [entry for entry in logs.values() if name is None or entry.get("name") == name]

    def __len__(self) -> int:
        """Return how many patches were recorded."""
        return len(self.patches)

    def __repr__(self) -> str:
        """Show the source and how much was recorded."""
        return (
            f"<Recorder patches={len(self._patches)} ops={len(self._ops)} source={self.source!r}>"
        )


# -- normalizing -------------------------------------------------------------------------

_UUID = re.compile(
    r"(?<![0-9a-fA-F-])[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12}(?![0-9a-fA-F-])"
)
_TIME = re.compile(
    r"(?<!\d)\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:?\d{2})?(?!\d)"
)


def _time_key(text: str) -> str:
    """Return a key that is the same for every spelling of one instant, if it parses."""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).isoformat()
    except ValueError:
        return text


class Normalizer:
    """Replaces ids and timestamps with placeholders numbered by first appearance.

    One normalizer keeps its numbering across calls, so the ops and the state of one
    log normalized separately agree. :func:`normalize` uses a fresh one per call.

    UUIDs (``uuid.UUID`` objects and their text, in any case) become ``"<id:N>"``;
    ISO-8601 timestamps (``datetime`` objects and their text, with ``T`` or a space, any
    fraction, ``Z`` or an offset) become ``"<time:N>"``, one ``N`` per instant. Text that
    holds one among other characters has just that part replaced. It walks mappings
    (keys too; returned as dicts), lists, tuples (named ones keep their class),
    :class:`~logstream.RunLogPatch` and :class:`~logstream.RunLog`, returning new ones;
    other values are returned as they are. The input is never changed.
    """

    def __init__(self) -> None:
        """Start numbering at 1."""
        self._ids: dict[str, str] = {}
        self._times: dict[str, str] = {}

    def __call__(self, value: Any) -> Any:
        """Return ``value`` with its ids and timestamps replaced."""
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, uuid.UUID):
            return self._id(str(value))
        if isinstance(value, datetime):
            return self._time(value.isoformat())
        if isinstance(value, RunLog):
            ops = [self(op) for op in value.ops]
            return RunLog(*ops, state=self(value.state))
        if isinstance(value, RunLogPatch):
            return RunLogPatch(*(self(op) for op in value.ops))
        if isinstance(value, Mapping):
            return {self(key): self(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self(item) for item in value]
        if isinstance(value, tuple):
            items = [self(item) for item in value]
            return type(value)(*items) if hasattr(value, "_fields") else tuple(items)
        return value

    def _id(self, text: str) -> str:
        key = text.lower()
        placeholder = self._ids.get(key)
        if placeholder is None:
            placeholder = self._ids[key] = f"<id:{len(self._ids) + 1}>"
        return placeholder

    def _time(self, text: str) -> str:
        key = _time_key(text)
        placeholder = self._times.get(key)
        if placeholder is None:
            placeholder = self._times[key] = f"<time:{len(self._times) + 1}>"
        return placeholder

    def _text(self, text: str) -> str:
        # Left to right, so placeholders are numbered in reading order.
        out: list[str] = []
        pos = 0
        while True:
            found_id, found_time = _UUID.search(text, pos), _TIME.search(text, pos)
            if found_id is None and found_time is None:
                break
            if found_id is not None and (
                found_time is None or found_id.start() < found_time.start()
            ):
                out += [text[pos : found_id.start()], self._id(found_id.group())]
                pos = found_id.end()
            elif found_time is not None:
                out += [text[pos : found_time.start()], self._time(found_time.group())]
                pos = found_time.end()
        if not out:
            return text
        out.append(text[pos:])
        return "".join(out)


def normalize(value: Any) -> Any:
    """Return ``value`` with ids as ``"<id:N>"`` and timestamps as ``"<time:N>"``.

    Numbers count from 1 in order of first appearance, so the same id is the same
    placeholder everywhere in ``value`` and different ids are different ones. See
    :class:`Normalizer` for what is replaced and to keep numbering across calls.

    Example:
        >>> rid = "0b9d2c44-5a51-4b0e-9f3e-2f1c8a1d6e70"
        >>> normalize({"id": rid, "parent": uuid.UUID(rid), "at": "2026-01-01T00:00:00.001+00:00"})
        {'id': '<id:1>', 'parent': '<id:1>', 'at': '<time:1>'}
    """
    return Normalizer()(value)


# -- assertions --------------------------------------------------------------------------

StateSource = Union[Recorder, RunLog, Mapping[str, Any]]
"""What the assertions read a state from: a recorder, a log, or the state itself."""

_Kind = Literal["changed", "missing", "unexpected"]


@dataclass(frozen=True)
class _Difference:
    path: tuple[Any, ...]
    kind: _Kind
    expected: Any = None
    got: Any = None

    def what(self) -> str:
        if self.kind == "missing":
            return f"missing, expected {_show(self.expected)}"
        if self.kind == "unexpected":
            return f"unexpected, got {_show(self.got)}"
        return f"expected {_show(self.expected)}, got {_show(self.got)}"


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_REPR else text[: _MAX_REPR - 3] + "..."


def _pointer(parts: Iterable[Any]) -> str:
    return "/".join(escape_key(str(part)) for part in parts)


def _differences(
    expected: Any,
    got: Any,
    path: tuple[Any, ...] = (),
    whole: Optional[Callable[[Any, Any], bool]] = None,
) -> list[_Difference]:
    """Return where ``got`` differs from ``expected``, depth first, in ``expected``'s order.

    Equality is ``expected == got``, so ``unittest.mock.ANY`` matches anything. Where
    ``whole(expected, got)`` is true the two differ as a whole (no looking inside).
    """
    if expected == got:
        return []
    found: list[_Difference] = []
    if whole is not None and whole(expected, got):
        pass
    elif isinstance(expected, Mapping) and isinstance(got, Mapping):
        for key, item in expected.items():
            if key not in got:
                found.append(_Difference((*path, key), "missing", expected=item))
            else:
                found += _differences(item, got[key], (*path, key), whole)
        found += [
            _Difference((*path, key), "unexpected", got=item)
            for key, item in got.items()
            if key not in expected
        ]
    elif isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        for index, (want, have) in enumerate(zip(expected, got)):
            found += _differences(want, have, (*path, index), whole)
        found += [
            _Difference((*path, index), "missing", expected=expected[index])
            for index in range(len(got), len(expected))
        ]
        found += [
            _Difference((*path, index), "unexpected", got=got[index])
            for index in range(len(expected), len(got))
        ]
    # Different types or values, or containers whose parts compare equal one by one.
    return found or [_Difference(path, "changed", expected=expected, got=got)]


def _report(header: str, lines: list[str]) -> str:
    shown = lines[:_MAX_SHOWN]
    if len(lines) > _MAX_SHOWN:
        shown.append(f"... and {len(lines) - _MAX_SHOWN} more")
    return "\n  ".join([header, *shown])


def _state_of(source: Any) -> Any:
    if isinstance(source, Recorder):
        return source.state
    if isinstance(source, RunLog):
        return source.state
    return source


def _run_list(logs: Mapping[str, Any]) -> str:
    if not logs:
        return "the log has no runs"
    return "runs: " + ", ".join(repr(key) for key in logs)


def _entry(state: Any, key: str) -> LogEntry:
    __tracebackhide__ = True
    logs = state.get("logs") if isinstance(state, Mapping) else None
    if not isinstance(logs, Mapping):
        msg = f"no run {key!r}: the state has no logs (state: {_show(state)})"
        raise AssertionError(msg)
    if key not in logs:
        msg = f"no run {key!r} in the log; {_run_list(logs)}"
        raise AssertionError(msg)
    entry: LogEntry = logs[key]
    return entry


def assert_run(source: StateSource, key: str, /, **expected: Any) -> LogEntry:
    """Assert that run ``key`` is in the log and its fields have the ``expected`` values.

    Only the fields given are compared (``unittest.mock.ANY`` matches anything); the
    message names the run and every field that differs::

        run 'model:2': field 'final_output': expected 'Hi', got 'Hello'

    Args:
        source: A :class:`Recorder`, a :class:`~logstream.RunLog` or a state.
        key: The run's log key: ``"model"``, ``"model:2"``, ...
        **expected: Field names (``final_output``, ``streamed_output_str``, ``end_time``,
            ...) and the values they must have.

    Returns:
        The run's log entry, for further checks.

    Raises:
        AssertionError: The run is missing (the message lists the runs there are), has
            no such field, or a field differs.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    entry: Any = _entry(_state_of(source), key)
    lines = []
    for field, want in expected.items():
        if field not in entry:
            fields = ", ".join(sorted(entry))
            lines.append(f"run {key!r}: no field {field!r}; fields: {fields}")
        elif not want == entry[field]:
            lines.append(
                f"run {key!r}: field {field!r}: expected {_show(want)}, got {_show(entry[field])}"
            )
    if lines:
        raise AssertionError("\n".join(lines))
    return entry  # type: ignore[no-any-return]


def _state_location(path: tuple[Any, ...]) -> str:
    if len(path) >= 2 and path[0] == "logs":
        where, rest = f"run {path[1]!r}", path[2:]
    else:
        where, rest = "root", path
    return f"{where}: field {_pointer(rest)!r}" if rest else where


def assert_state(got: StateSource, expected: Mapping[str, Any]) -> None:
    """Assert that a state equals ``expected``, listing the first differences by run and field.

    ``unittest.mock.ANY`` matches anything at any depth. The message reads::

        the state differs in 2 places:
          run 'model:2': field 'final_output': expected 'Hi', got 'Hello'
          run 'search': missing, expected {'id': ...}

    Args:
        got: A :class:`Recorder`, a :class:`~logstream.RunLog` or a state.
        expected: The whole state expected (e.g. a normalized snapshot).

    Raises:
        AssertionError: The states differ.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    differences = _differences(expected, _state_of(got))
    if not differences:
        return
    lines = []
    for difference in differences:
        location = _state_location(difference.path)
        lines.append(f"{location}: {difference.what()}" if difference.path else difference.what())
    places = "1 place" if len(lines) == 1 else f"{len(lines)} places"
    raise AssertionError(_report(f"the state differs in {places}:", lines))


_Patches = Union[Recorder, Iterable[Union[RunLogPatch, Sequence[JsonPatchOp], JsonPatchOp]]]


def _op_label(op: Any) -> str:
    if isinstance(op, Mapping) and "op" in op and "path" in op:
        return f" ({op['op']} {op['path'] or chr(34) * 2})"
    return ""


def _other_op(expected: Any, got: Any) -> bool:
    """Return whether two ops differ in name or path (then they are shown whole)."""
    return (
        isinstance(expected, Mapping)
        and isinstance(got, Mapping)
        and "op" in expected
        and (expected.get("op"), expected.get("path")) != (got.get("op"), got.get("path"))
    )


def _find(path: tuple[Any, ...], *trees: Any) -> Any:
    """Return the value at ``path`` in the first of ``trees`` that has one, else ``None``."""
    for tree in trees:
        try:
            for part in path:
                tree = tree[part]
        except (IndexError, KeyError, TypeError):
            continue
        return tree
    return None


def _as_patches(value: Any) -> tuple[bool, list[Any]]:
    """Return (whether ``value`` is a sequence of patches, its patches' ops or its ops)."""
    if isinstance(value, Recorder):
        return True, [patch.ops for patch in value.patches]
    items = list(value.ops if isinstance(value, RunLogPatch) else value)
    if items and all(isinstance(item, Mapping) for item in items):
        return False, items
    return True, [item.ops if isinstance(item, RunLogPatch) else list(item) for item in items]


def assert_patches(got: _Patches, expected: _Patches) -> None:
    """Assert that patches equal the ``expected`` ones, listing the first differences by op.

    Each side may be a :class:`Recorder`, a list of :class:`~logstream.RunLogPatch` (or
    of op lists), or a flat list of ops. When either side is a flat list of ops only the
    ops are compared, not how they are grouped into patches. The message reads::

        the ops differ in 1 place:
          ops[3] (add /logs/model/final_output): field 'value': expected 'Hi', got 'Hello'

    Raises:
        AssertionError: The patches (or ops) differ.
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    got_grouped, got_items = _as_patches(got)
    want_grouped, want_items = _as_patches(expected)
    grouped = got_grouped and want_grouped
    if not grouped:
        got_items = [op for ops in got_items for op in ops] if got_grouped else got_items
        want_items = [op for ops in want_items for op in ops] if want_grouped else want_items
    differences = _differences(want_items, got_items, whole=_other_op)
    if not differences:
        return
    depth = 2 if grouped else 1  # (patch, op) or (op,) before the path inside an op
    lines = []
    for difference in differences:
        head, rest = difference.path[:depth], difference.path[depth:]
        if grouped:
            where = "patches" + "".join(
                f"[{index}]" if level == 0 else f".ops[{index}]" for level, index in enumerate(head)
            )
        else:
            where = "ops" + "".join(f"[{index}]" for index in head)
        if len(head) == depth:
            where += _op_label(_find(head, got_items, want_items))
        if rest:
            where += f": field {_pointer(rest)!r}"
        lines.append(f"{where}: {difference.what()}")
    places = "1 place" if len(lines) == 1 else f"{len(lines)} places"
    what = "patches" if grouped else "ops"
    raise AssertionError(_report(f"the {what} differ in {places}:", lines))


# -- nesting and errors (the opt-in entry fields) ----------------------------------------

TreeSource = Union[StateSource, Iterable[Union[RunLogPatch, Sequence[JsonPatchOp], JsonPatchOp]]]
"""A state source, or the patches (or ops) that build the state."""

NameTree = dict[str, "NameTree"]
"""Run names, each mapped to the tree of its children: ``{"agent": {"model": {}}}``."""


def _tree_state(source: Any) -> Mapping[str, Any]:
    """Return the state of a state source, or the state that patches or ops build."""
    __tracebackhide__ = True
    if isinstance(source, (Recorder, RunLog, Mapping)):
        state = _state_of(source)
    else:
        grouped, items = _as_patches(source)
        ops = [op for group in items for op in group] if grouped else items
        state = (RunLogPatch() + RunLogPatch(*ops)).state
    if not isinstance(state, Mapping) or not isinstance(state.get("logs"), Mapping):
        msg = f"not a run state (no logs): {_show(state)}"
        raise AssertionError(msg)
    return state


def run_parents(source: TreeSource) -> dict[str, Optional[str]]:
    """Return each logged run's parent: the log key of its nearest logged ancestor.

    Rebuilt from the ``parent_ids`` entry field alone (record with
    ``entry_fields=["parent_ids"]``); a run whose ancestors are all hidden by the filter,
    or that sits directly under the root, has ``None``.

    Args:
        source: A :class:`Recorder`, a :class:`~logstream.RunLog`, a state, or the patches
            (or ops) that build one.

    Raises:
        AssertionError: The state is not a run state, or an entry has no ``parent_ids``.
    """
    __tracebackhide__ = True
    logs = _tree_state(source)["logs"]
    by_id = {entry.get("id"): key for key, entry in logs.items() if isinstance(entry, Mapping)}
    parents: dict[str, Optional[str]] = {}
    for key, entry in logs.items():
        parent_ids = entry.get("parent_ids") if isinstance(entry, Mapping) else None
        if not isinstance(parent_ids, list):
            msg = (
                f"run {key!r} has no parent_ids: record with entry_fields=['parent_ids'] "
                "to assert on nesting"
            )
            raise AssertionError(msg)
        parents[key] = next(
            (by_id[a] for a in reversed(parent_ids) if a in by_id and by_id[a] != key), None
        )
    return parents


def run_tree(source: TreeSource) -> NameTree:
    """Return the run tree by name, from the root down, rebuilt from ``parent_ids`` alone.

    Each run maps to the tree of its children, in the order they started. Children are
    keyed by run name; a name repeated among siblings keys the later ones by their log
    key (``"model:2"``). Runs hidden by the filter are skipped (their children move up
    to the nearest logged ancestor).

    Example:
        >>> from logstream import Tracer, trace
        >>> tracer = Tracer(entry_fields=["parent_ids"])
        >>> with trace("agent", tracer=tracer), trace("sub", tracer=tracer):
        ...     with trace("model", "llm", tracer=tracer):
        ...         pass
        >>> run_tree(list(tracer))
        {'agent': {'sub': {'model': {}}}}

    Raises:
        AssertionError: The state is not a run state, or an entry has no ``parent_ids``.
    """
    __tracebackhide__ = True
    state = _tree_state(source)
    parents = run_parents(state)
    logs = state["logs"]
    children: dict[Optional[str], list[str]] = {}
    for key, parent in parents.items():
        children.setdefault(parent, []).append(key)

    def build(parent: Optional[str]) -> NameTree:
        tree: NameTree = {}
        for key in children.get(parent, []):
            name = logs[key].get("name", key)
            tree[key if name in tree else name] = build(key)
        return tree

    return {str(state.get("name", "?")): build(None)}


def _tree_lines(tree: Mapping[str, Any], depth: int = 0) -> list[str]:
    lines = []
    for name, children in tree.items():
        lines.append("  " * depth + name)
        lines.extend(_tree_lines(children, depth + 1))
    return lines


def assert_run_tree(source: TreeSource, expected: Mapping[str, Any]) -> None:
    """Assert that the run tree (see :func:`run_tree`) is ``expected``, order of siblings aside.

    The message shows both trees, indented::

        the run tree differs:
          expected:
            agent
              calculator
          got:
            agent
              sub
                calculator

    Args:
        source: A :class:`Recorder`, a :class:`~logstream.RunLog`, a state, or patches.
        expected: Nested dicts of run names, from the root: ``{"agent": {"model": {}}}``.

    Raises:
        AssertionError: The trees differ, or the entries carry no ``parent_ids``.
    """
    __tracebackhide__ = True
    got = run_tree(source)
    if _unordered(got) == _unordered(expected):
        return
    lines = ["expected:", *("  " + x for x in _tree_lines(expected))]
    lines += ["got:", *("  " + x for x in _tree_lines(got))]
    raise AssertionError("\n  ".join(["the run tree differs:", *lines]))


def _unordered(tree: Mapping[str, Any]) -> Any:
    return frozenset((name, _unordered(children)) for name, children in tree.items())


def failed_runs(source: TreeSource) -> dict[Optional[str], str]:
    """Return the error text of every failed run, by log key (``None`` for the root).

    Read from the ``error`` entry field (record with ``entry_fields=["error"]``).

    Raises:
        AssertionError: The state is not a run state, or its entries carry no ``error``.
    """
    __tracebackhide__ = True
    state = _tree_state(source)
    failed: dict[Optional[str], str] = {}
    for key, entry in state["logs"].items():
        if not isinstance(entry, Mapping) or "error" not in entry:
            msg = f"run {key!r} has no error field: record with entry_fields=['error']"
            raise AssertionError(msg)
        if entry["error"] is not None:
            failed[key] = entry["error"]
    if state.get("error") is not None:
        failed[None] = state["error"]
    return failed


def assert_errors(
    source: TreeSource,
    expected: Mapping[str, Union[str, Pattern[str]]],
    *,
    root: Union[str, Pattern[str], None] = None,
) -> None:
    """Assert exactly which runs failed and with what text (``"Type: message"``).

    Args:
        source: A :class:`Recorder`, a :class:`~logstream.RunLog`, a state, or patches.
        expected: Log key -> the error text, or a compiled pattern it must match
            (``re.search``). Runs not named must not have failed.
        root: The root's error text (or pattern), or ``None`` if the root must not have
            failed.

    Example:
        >>> from logstream import Tracer, trace
        >>> tracer = Tracer(entry_fields=["error"])
        >>> with trace("agent", tracer=tracer):
        ...     try:
        ...         with trace("calc", "tool", tracer=tracer):
        ...             1 / 0
        ...     except ZeroDivisionError:
        ...         pass
        >>> assert_errors(list(tracer), {"calc": "ZeroDivisionError: division by zero"})

    Raises:
        AssertionError: A run failed that was not expected to, did not fail, or failed
            with other text; the message lists each.
    """
    __tracebackhide__ = True
    got = failed_runs(source)
    wanted: dict[Optional[str], Union[str, Pattern[str]]] = {k: v for k, v in expected.items()}
    if root is not None:
        wanted[None] = root
    lines = []
    for key in [*wanted, *(k for k in got if k not in wanted)]:
        where = "the root" if key is None else f"run {key!r}"
        want, text = wanted.get(key), got.get(key)
        if want is None:
            lines.append(f"{where}: failed unexpectedly with {_show(text)}")
        elif text is None:
            lines.append(f"{where}: expected to fail with {_show(_pattern_text(want))}, it did not")
        elif not (want.search(text) if isinstance(want, Pattern) else want == text):
            lines.append(f"{where}: expected error {_show(_pattern_text(want))}, got {_show(text)}")
    if lines:
        raise AssertionError(_report("the errors differ:", lines))


def _pattern_text(want: Union[str, Pattern[str]]) -> str:
    return want if isinstance(want, str) else f"/{want.pattern}/"
