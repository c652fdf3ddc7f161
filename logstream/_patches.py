"""The wire shapes: JSON Patch ops, ``RunLogPatch``, ``RunLog``, ``RunState`` and ``LogEntry``.

A stream of :class:`RunLogPatch` objects rebuilds a :class:`RunState` when their ops are
applied in order to an empty document (RFC 6902). ``RunLogPatch + RunLogPatch`` gives a
:class:`RunLog`, which carries the ops so far and the state they build; ``RunLog +
RunLogPatch`` extends it. These behave as LangChain's classes of the same names do
(``+``, ``==``, ``repr``), and the keys are LangChain's, verbatim.

Example:
    >>> a = RunLogPatch(add_op("/a", 1))
    >>> log = RunLogPatch(replace_op("", {})) + a
    >>> log.state
    {'a': 1}
"""

from __future__ import annotations

import enum
import operator
import threading
from pprint import pformat
from typing import Any, Callable, Optional, Union

import jsonpatch
import jsonpointer
from typing_extensions import Literal, NotRequired, TypedDict, get_args

from ._apply import apply_atomic, deep_copy, replay
from ._errors import NotAPatchError, PatchApplyError
from ._text import describe, printable

__all__ = ["JsonPatchOp", "LogEntry", "RunLog", "RunLogPatch", "RunState"]

OpName = Literal["add", "remove", "replace", "move", "copy", "test"]
"""The operation names RFC 6902 defines."""

JsonPatchOp = dict[str, Any]
"""One RFC 6902 operation: ``{"op": ..., "path": ..., "value": ...}``."""

_OP_NAMES: frozenset[str] = frozenset(get_args(OpName))
_NEEDS_VALUE = frozenset(("add", "replace", "test"))
_NEEDS_FROM = frozenset(("move", "copy"))


def check_op(op: Any, index: int, fail: Callable[[str], Exception]) -> None:
    """Raise ``fail(reason)`` unless ``op`` has the shape of an RFC 6902 op.

    The shape only: an object with a known ``"op"``, a string ``"path"``, a ``"value"``
    where the op needs one and a string ``"from"`` where it needs one. Whether the paths
    resolve is for applying the op to say.

    Args:
        op: The op to check.
        index: Its 1-based place in its patch, for the reason.
        fail: Makes the exception to raise from the reason.
    """
    if not isinstance(op, dict):
        raise fail(f"op {index} must be an object, not {describe(op)}")
    name = op.get("op")
    if name not in _OP_NAMES:
        raise fail(f'op {index} has an unknown "op": {describe(name)}')
    if not isinstance(op.get("path"), str):
        raise fail(f'op {index} ({name}) needs a string "path", not {describe(op.get("path"))}')
    if name in _NEEDS_VALUE and "value" not in op:
        raise fail(f'op {index} ({name} {describe(op["path"])}) has no "value"')
    if name in _NEEDS_FROM and not isinstance(op.get("from"), str):
        raise fail(f'op {index} ({name} {describe(op["path"])}) needs a string "from"')


def add_op(path: str, value: Any) -> JsonPatchOp:
    """Return an ``add`` op; ``path`` must already be an escaped JSON Pointer."""
    return {"op": "add", "path": path, "value": value}


def replace_op(path: str, value: Any) -> JsonPatchOp:
    """Return a ``replace`` op; ``path`` must already be an escaped JSON Pointer."""
    return {"op": "replace", "path": path, "value": value}


class LogEntry(TypedDict):
    """The state of one included sub-run, under ``/logs/<key>``.

    Attributes:
        id: The run's id, as a string.
        name: The run's name.
        type: The run's type (``chain``, ``llm``, ``chat_model``, ``tool``, ...).
        tags: The run's tags.
        metadata: The run's metadata.
        start_time: ISO-8601 start time, to the millisecond.
        streamed_output_str: Tokens the run streamed.
        streamed_output: Chunks the run streamed (messages for chat models).
        inputs: The run's inputs (only in the ``streaming_events`` schema format).
        final_output: The run's output once it has ended, else ``None``.
        end_time: ISO-8601 end time once it has ended, else ``None``.
        parent_ids: The ids of the run's ancestors, root first (only with the
            ``parent_ids`` entry field).
        error: ``None``, or ``"Type: message"`` once the run failed (only with the
            ``error`` entry field).
    """

    id: str
    name: str
    type: str
    tags: list[str]
    metadata: dict[str, Any]
    start_time: str
    streamed_output_str: list[Any]
    streamed_output: list[Any]
    inputs: NotRequired[Any]
    final_output: Optional[Any]
    end_time: Optional[str]
    parent_ids: NotRequired[list[str]]
    error: NotRequired[Optional[Any]]


class RunState(TypedDict):
    """The state of a whole run tree, as the ops rebuild it.

    Attributes:
        id: The root run's id, as a string.
        streamed_output: Chunks the root streamed (filled by ``astream_log``-style drivers).
        final_output: The root's output, accumulated as it streams.
        name: The root run's name.
        type: The root run's type.
        logs: One entry per included sub-run, by log key.
        error: ``None``, or ``"Type: message"`` once the root failed (only with the
            ``error`` entry field).
    """

    id: str
    streamed_output: list[Any]
    final_output: Optional[Any]
    name: str
    type: str
    logs: dict[str, LogEntry]
    error: NotRequired[Optional[Any]]


_new_object = object.__new__


class RunLogPatch:
    """A batch of JSON Patch ops that moves the run state forward.

    Args:
        *ops: The ops, in the order they apply.
    """

    __slots__ = ("__weakref__", "ops")  # one patch per token: no per-instance dict

    ops: list[JsonPatchOp]
    """The ops, applied in order from an empty document they rebuild the state."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, *ops: JsonPatchOp) -> None:
        """Wrap ``ops``."""
        self.ops = list(ops)

    @classmethod
    def from_ops(cls, ops: list[JsonPatchOp]) -> RunLogPatch:
        """Wrap a list of ops without copying it; the caller must not change it afterwards."""
        patch = _new_object(cls)
        patch.ops = ops
        return patch

    def __add__(self, other: Any) -> RunLog:
        """Join two patches into a :class:`RunLog` whose state their ops build.

        ``other`` may also be another library's patch (LangChain's ``RunLogPatch``):
        anything with a list of ``ops`` and no ``state``.

        Raises:
            NotAPatchError: ``other`` is a log (ours or another's) or not a patch (a
                ``TypeError``, as LangChain raises).
            PatchApplyError: The ops do not apply; jsonpatch's error is the cause (a
                ``ValueError``, and jsonpatch's and jsonpointer's base exception).
        """
        if type(other) is RunLogPatch:
            other_ops = other.ops
        else:
            other_ops = _patch_ops(self, other)
        ops = [*self.ops, *other_ops]
        return RunLog._at(_History(ops, None, 0, _apply(None, ops)), len(ops))

    def __repr__(self) -> str:
        """Show the ops, pretty-printed."""
        return f"RunLogPatch({pformat(self.ops)[1:-1]})"

    def __eq__(self, other: object) -> bool:
        """Return whether ``other`` is a patch with equal ops (ours or LangChain's)."""
        if isinstance(other, RunLogPatch):
            return self.ops == other.ops
        ops = _foreign_ops(other)
        return ops is not None and self.ops == ops


def _foreign_ops(other: object) -> Optional[list[JsonPatchOp]]:
    """Return the ops of another library's patch or log (a list in ``.ops``), else ``None``."""
    ops = getattr(other, "ops", None)
    return ops if isinstance(ops, list) else None


def _patch_ops(log: RunLogPatch, other: object) -> list[JsonPatchOp]:
    """Return the ops of ``other``, another library's patch, to add to ``log``.

    Raises:
        NotAPatchError: ``other`` is ours but not exactly a :class:`RunLogPatch` (a log),
            has a ``state`` (another library's log), or has no list of ``ops``. A
            ``TypeError`` whose message starts as LangChain's does.
    """
    if not isinstance(other, RunLogPatch) and not hasattr(other, "state"):
        ops = _foreign_ops(other)
        if ops is not None:
            return ops
    if isinstance(other, RunLog) or hasattr(other, "state"):
        why = "it is a log (a state and every op so far), not a patch"
        fix = "add the patches it was built from"
    else:
        why = "it is not a patch (no list of ops in .ops)"
        fix = "add a RunLogPatch(*ops)"
    msg = (
        f"unsupported operand type(s) for +: '{type(log)}' and '{type(other)}': "
        f"can't add a value of type {type(other).__name__} to a run log: {why}; {fix}"
    )
    raise NotAPatchError(other, "RunLog +", msg)


def _apply(doc: Any, ops: list[JsonPatchOp]) -> Any:
    """Apply ``ops`` to ``doc`` as :func:`apply_atomic` does, wrapping jsonpatch's errors.

    Raises:
        PatchApplyError: The ops do not apply; ``doc`` is as it was.
    """
    try:
        return apply_atomic(doc, ops)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError) as exc:
        # TypeError: older jsonpatch (1.33) raises it for some ops that do not apply
        # (an index into a value that is not a list, say)
        raise _apply_error(exc, doc, ops) from exc


def apply_ops(doc: Any, ops: list[JsonPatchOp]) -> Any:
    """Apply one patch's ``ops`` to ``doc``, a document the caller owns, in place.

    Returns:
        The patched document (``doc``, or a new one when the root was replaced).

    Raises:
        PatchApplyError: The ops do not apply; ``doc`` is as it was.
    """
    return _apply(doc, ops)


def _apply_error(error: Exception, doc: Any, ops: list[JsonPatchOp]) -> PatchApplyError:
    """Return the :class:`PatchApplyError` for ``error``, naming the op that raised it.

    Finds the op by applying the ops one at a time with jsonpatch to a copy of ``doc``
    (only on this failure path); if that fails differently (jsonpatch checks every op's
    shape before applying any), the op is not named.
    """
    index: Optional[int] = None
    try:
        trial = deep_copy(doc)
        for number, given in enumerate(ops, 1):
            # a copy of the value, so the trial document never shares one with an op
            if isinstance(given, dict) and "value" in given:
                given = {**given, "value": deep_copy(given["value"])}
            try:
                trial = jsonpatch.apply_patch(trial, [given], in_place=True)
            except Exception as exc:
                if type(exc) is type(error) and str(exc) == str(error):
                    index = number
                break
    except Exception:  # a copy that fails: say what is known
        index = None
    told = printable(f"{type(error).__name__}: {error}", 200)
    op: Any = None
    where = "its ops do"
    if index is not None:
        op = ops[index - 1]
        path = op.get("path") if isinstance(op, dict) else None
        kind = op.get("op") if isinstance(op, dict) else None
        where = f"op {index} of {len(ops)} ({printable(f'{kind} {path}', 80)}) does"
    msg = (
        f"can't add the patch to the run log: {where} not apply to the state "
        f"so far ({told}); the log is unchanged. Add patches in the order they were "
        "streamed, starting from the first"
    )
    return PatchApplyError(msg, index, op)


class _Mark(enum.Enum):
    """Markers for a document that is not there."""

    UNSET = "unset"
    """A log's state that has not been asked for yet."""

    GONE = "gone"
    """A history's live document that a log has taken as its state."""


class _History:
    """The ops shared by a line of logs, and the document they build.

    ``ops`` only grows. ``base`` is the document after ``ops[:start]``; no one changes it,
    so histories may share it. ``live`` is the document after all of ``ops``, owned by the
    history until the log at its end takes it as its state. ``lock`` guards ``ops`` growing
    and ``live`` changing hands.
    """

    def __init__(self, ops: list[JsonPatchOp], base: Any, start: int, live: Any) -> None:
        self.ops = ops
        self.base = base
        self.start = start
        self.live = live
        self.lock = threading.Lock()

    def rebuild(self, length: int) -> Any:
        """Return a new document: ``base`` with ``ops[start:length]`` applied."""
        return replay(deep_copy(self.base), self.ops, self.start, length)

    def __getstate__(self) -> dict[str, Any]:
        """Leave the lock out of pickles and deep copies."""
        state = self.__dict__.copy()
        del state["lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`__getstate__` with a new lock."""
        self.__dict__.update(state)
        self.lock = threading.Lock()


class RunLog(RunLogPatch):
    """Every op so far and the state they build.

    A log behaves as an immutable value: ``log + patch`` returns a new log and leaves
    ``log`` as it was, so a log kept from earlier still shows its own :attr:`state` and
    :attr:`ops`, and adding two patches to one log gives two independent logs. Adding a
    patch costs time in proportion to the patch, not to the log:

    * Logs built from one another by ``+`` share one history: the list of all their ops and
      the live document those ops build. A log is its length in that list.
    * ``log + patch`` where ``log`` is the newest log of its history applies the patch to
      the live document in place (undoing it all if an op fails, so a failing patch
      raises :class:`~logstream.PatchApplyError` and changes nothing), appends the ops,
      and returns a log one patch longer. Nothing is copied but the ops' values.
    * A log's :attr:`state` is made when first asked for, then kept: the newest log takes
      the live document as it is; an older log rebuilds its own by replaying the shared
      ops up to its length on a copy of the history's starting document.
    * Adding to a log that is not the newest (branching), or whose state was already
      handed out, starts a new history from that log's state (the state as it is now, so
      changes made to it count, as they do in LangChain), copying it once.

    So ``state = state + patch`` in a loop is linear. Asking for the newest log's state
    (``repr`` and ``==`` ask too) and then adding to it copies the state once, as LangChain
    does on every ``+``. Patches with ops other than ``add``, ``replace`` and ``remove``, or
    with paths through other containers than dicts and lists, are applied by jsonpatch to a
    copy of the state. ``+`` may be called from several threads at once.

    A state is a plain ``dict`` that belongs to its log: it shares no mutable value with
    any op or any other log's state, and it may be read and changed freely; a change shows
    in that log's state only and in logs added to it later. The ops, and the values in
    them, must not be changed after they were added (as with :meth:`RunLogPatch.from_ops`):
    old states are rebuilt from them. :attr:`ops` and :attr:`state` may be assigned, as in
    LangChain. A log kept from earlier keeps its history alive: the ops and the newest
    document of the logs added after it.

    Args:
        *ops: The ops so far.
        state: The state they build (``None`` before the first op). The log takes it as
            its own: it is not copied, and not checked against ``ops``.
    """

    _hist: _History
    _n: int
    _state: Any
    _ops: Optional[list[JsonPatchOp]]

    def __init__(self, *ops: JsonPatchOp, state: Union[RunState, None]) -> None:
        """Wrap ``ops`` and the ``state`` they build."""
        self._hist = _History(list(ops), None, 0, _Mark.GONE)
        self._n = len(ops)
        self._state = state
        self._ops = None

    @classmethod
    def _at(cls, hist: _History, length: int) -> RunLog:
        """Return the log of the first ``length`` ops of ``hist``."""
        log = cls.__new__(cls)
        log._hist = hist
        log._n = length
        log._state = _Mark.UNSET
        log._ops = None
        return log

    @property
    def ops(self) -> list[JsonPatchOp]:
        """All ops so far, in order: a list that belongs to this log."""
        ops = self._ops
        if ops is None:
            ops = self._ops = self._hist.ops[: self._n]
        return ops

    @ops.setter
    def ops(self, ops: list[JsonPatchOp]) -> None:
        self._ops = ops

    @property
    def state(self) -> RunState:
        """The state built by applying :attr:`ops` in order; a plain dict this log owns."""
        state = self._state
        if state is _Mark.UNSET:
            hist = self._hist
            with hist.lock:
                if self._state is _Mark.UNSET and self._n == len(hist.ops):
                    if hist.live is not _Mark.GONE:
                        self._state, hist.live = hist.live, _Mark.GONE
            if self._state is _Mark.UNSET:
                rebuilt = hist.rebuild(self._n)
                with hist.lock:
                    if self._state is _Mark.UNSET:
                        self._state = rebuilt
            state = self._state
        return state  # type: ignore[no-any-return]

    @state.setter
    def state(self, state: RunState) -> None:
        self._state = state

    def _replayable(self) -> bool:
        """Return whether this log is still what its history replays to at its length."""
        if self._state is not _Mark.UNSET:
            return False
        ops = self._ops
        return ops is None or (
            type(ops) is list
            and len(ops) == self._n
            and all(map(operator.is_, ops, self._hist.ops))
        )

    def __add__(self, other: Any) -> RunLog:
        """Return a new log with ``other``'s ops applied; this one is left as it was.

        ``other`` may also be another library's patch (LangChain's ``RunLogPatch``):
        anything with a list of ``ops`` and no ``state``.

        Raises:
            NotAPatchError: ``other`` is a log (ours or another's) or not a patch (a
                ``TypeError``, as LangChain raises).
            PatchApplyError: The ops do not apply; this log is unchanged. jsonpatch's
                error is the cause (a ``ValueError``, and jsonpatch's and jsonpointer's
                base exception).
        """
        if type(other) is RunLogPatch:
            ops = other.ops if type(other.ops) is list else list(other.ops)
        else:
            ops = _patch_ops(self, other)
        hist = self._hist
        replayable = self._replayable()
        if replayable:
            with hist.lock:
                if self._n == len(hist.ops) and hist.live is not _Mark.GONE:
                    hist.live = _apply(hist.live, ops)
                    hist.ops.extend(ops)
                    return RunLog._at(hist, len(hist.ops))
        # Branch: a new history that starts from this log.
        if replayable:
            prefix = hist.ops[: self._n]
            base, start = hist.base, hist.start
            doc = hist.rebuild(self._n)
        else:
            prefix = list(self.ops)
            base, start = deep_copy(self.state), len(prefix)
            doc = deep_copy(base)
        doc = _apply(doc, ops)
        prefix.extend(ops)
        return RunLog._at(_History(prefix, base, start, doc), len(prefix))

    def __repr__(self) -> str:
        """Show the state, pretty-printed."""
        return f"RunLog({pformat(self.state)})"

    def __eq__(self, other: object) -> bool:
        """Return whether ``other`` is a log (ours or LangChain's) with equal state and ops."""
        if isinstance(other, RunLog):
            return self.state == other.state and self.ops == other.ops
        ops = _foreign_ops(other)
        if ops is None or isinstance(other, RunLogPatch) or not hasattr(other, "state"):
            return False
        return bool(self.state == other.state and self.ops == ops)
