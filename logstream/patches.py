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

import copy
from pprint import pformat
from typing import Any, Optional, Union

import jsonpatch
from typing_extensions import Literal, NotRequired, TypedDict

__all__ = [
    "JsonPatchOp",
    "LogEntry",
    "OpName",
    "RunLog",
    "RunLogPatch",
    "RunState",
    "add_op",
    "replace_op",
]

OpName = Literal["add", "remove", "replace", "move", "copy", "test"]
"""The operation names RFC 6902 defines."""

JsonPatchOp = dict[str, Any]
"""One RFC 6902 operation: ``{"op": ..., "path": ..., "value": ...}``."""


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


class RunState(TypedDict):
    """The state of a whole run tree, as the ops rebuild it.

    Attributes:
        id: The root run's id, as a string.
        streamed_output: Chunks the root streamed (filled by ``astream_log``-style drivers).
        final_output: The root's output, accumulated as it streams.
        name: The root run's name.
        type: The root run's type.
        logs: One entry per included sub-run, by log key.
    """

    id: str
    streamed_output: list[Any]
    final_output: Optional[Any]
    name: str
    type: str
    logs: dict[str, LogEntry]


class RunLogPatch:
    """A batch of JSON Patch ops that moves the run state forward.

    Args:
        *ops: The ops, in the order they apply.
    """

    ops: list[JsonPatchOp]
    """The ops, applied in order from an empty document they rebuild the state."""

    __hash__ = None  # type: ignore[assignment]

    def __init__(self, *ops: JsonPatchOp) -> None:
        """Wrap ``ops``."""
        self.ops = list(ops)

    @classmethod
    def from_ops(cls, ops: list[JsonPatchOp]) -> RunLogPatch:
        """Wrap a list of ops without copying it; the caller must not change it afterwards."""
        patch = cls.__new__(cls)
        patch.ops = ops
        return patch

    def __add__(self, other: Any) -> RunLog:
        """Join two patches into a :class:`RunLog` whose state their ops build.

        Raises:
            TypeError: ``other`` is not exactly a :class:`RunLogPatch`.
        """
        if type(other) is RunLogPatch:
            ops = self.ops + other.ops
            state = jsonpatch.apply_patch(None, copy.deepcopy(ops))
            return RunLog(*ops, state=state)
        msg = f"unsupported operand type(s) for +: '{type(self)}' and '{type(other)}'"
        raise TypeError(msg)

    def __repr__(self) -> str:
        """Show the ops, pretty-printed."""
        return f"RunLogPatch({pformat(self.ops)[1:-1]})"

    def __eq__(self, other: object) -> bool:
        """Return whether ``other`` is a patch with equal ops."""
        return isinstance(other, RunLogPatch) and self.ops == other.ops


class RunLog(RunLogPatch):
    """Every op so far and the state they build.

    Args:
        *ops: The ops so far.
        state: The state they build (``None`` before the first op).
    """

    state: RunState
    """The state built by applying :attr:`ops` in order."""

    def __init__(self, *ops: JsonPatchOp, state: Union[RunState, None]) -> None:
        """Wrap ``ops`` and the ``state`` they build."""
        super().__init__(*ops)
        self.state = state  # type: ignore[assignment]

    def __add__(self, other: Any) -> RunLog:
        """Return a new log with ``other``'s ops applied; this one is left as it was.

        Raises:
            TypeError: ``other`` is not exactly a :class:`RunLogPatch`.
        """
        if type(other) is RunLogPatch:
            # Copy the ops' values: jsonpatch < 1.34 inserts them by reference, and the
            # new state must share nothing with the patch or with this log's state.
            state = jsonpatch.apply_patch(self.state, copy.deepcopy(other.ops))
            return RunLog(*self.ops, *other.ops, state=state)
        msg = f"unsupported operand type(s) for +: '{type(self)}' and '{type(other)}'"
        raise TypeError(msg)

    def __repr__(self) -> str:
        """Show the state, pretty-printed."""
        return f"RunLog({pformat(self.state)})"

    def __eq__(self, other: object) -> bool:
        """Return whether ``other`` is a log with an equal state and equal ops."""
        if not isinstance(other, RunLog):
            return False
        return self.state == other.state and self.ops == other.ops
