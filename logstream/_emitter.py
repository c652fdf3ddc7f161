"""The patch emitter: turns run-tree events into the JSON Patch ops of a run log.

Each method takes a run from :mod:`logstream._model` (or an id) and returns the ops of one
patch, in LangChain's order and shapes; an empty list means "no patch". The first run the
emitter sees is the root: it becomes the ``RunState`` (a ``replace`` at path ``""``) and
never a log entry. Every other run that the filter includes gets a unique log key and an
``add /logs/<key>``; its tokens, streamed chunks and end follow under that key. Paths are
escaped per RFC 6901.

The emitter holds no lock and no queue: the edge that calls it serializes calls and
delivers the ops.

Example:
    >>> from logstream._model import RunTree
    >>> tree, emitter = RunTree(), PatchEmitter()
    >>> root = tree.start(name="agent", run_type="chain")
    >>> [op["op"] for op in emitter.start(root)]
    ['replace']
    >>> llm = tree.start(name="model", run_type="llm", parent_id=root.id)
    >>> emitter.start(llm)[0]["path"]
    '/logs/model'
    >>> [op["path"] for op in emitter.token(llm.id, "Hi", "Hi")]
    ['/logs/model/streamed_output_str/-', '/logs/model/streamed_output/-']
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Callable, Optional
from uuid import UUID

import jsonpatch
from typing_extensions import Literal

from ._errors import EntryFieldsError, SchemaFormatError
from ._filters import ALWAYS_INCLUDE, RunFilter
from ._keys import KeyAllocator, escape_key
from ._model import Run, id_string, isoformat_ms, run_key
from ._patches import JsonPatchOp, LogEntry, RunState
from ._values import MISSING, SCALAR_TYPES, snapshot

__all__ = [
    "EntryField",
    "PatchEmitter",
    "RootOutput",
    "SchemaFormat",
    "TokenRoute",
    "check_entry_fields",
    "check_schema_format",
]

SchemaFormat = Literal["original", "streaming_events"]
"""How inputs and outputs are shaped; LangChain's ``_schema_format`` values."""

SCHEMA_FORMATS: frozenset[str] = frozenset({"original", "streaming_events"})
"""Every valid :data:`SchemaFormat`."""

# -- the values of an entry --------------------------------------------------------------
#
# A run keeps its inputs and outputs in LangChain's envelope (logstream._envelopes); an
# entry shows what is inside, per run type and schema format. The usual cases (the value
# under "input"/"output" of a chain, tool or prompt run) take a fast path first.

_RAW_TYPES = frozenset({"retriever", "llm", "chat_model"})  # shown in their envelope


def wire_inputs(run_type: str, inputs: Any) -> Any:
    """Return the ``inputs`` a ``LogEntry`` shows (``streaming_events`` format only).

    LLM, chat-model and retriever runs show their envelope; other runs show the value
    inside it, and ``None`` while the input is not known yet (the placeholder
    ``{"input": ""}`` that streaming runnables report at start). The value is a copy.

    Example:
        >>> wire_inputs("chain", {"input": {"q": "hi"}}), wire_inputs("llm", {"prompts": []})
        ({'q': 'hi'}, {'prompts': []})
    """
    if type(inputs) is dict and run_type not in _RAW_TYPES:
        inner = inputs.get("input")
        if type(inner) in SCALAR_TYPES:
            return inner
        if type(inner) is dict:
            return None if is_placeholder_input(inner) else snapshot(inner)
        if not isinstance(inner, dict):
            return snapshot(inner)
    value = snapshot(inputs)
    if run_type in _RAW_TYPES or not isinstance(value, dict):
        return value
    inner = value.get("input")
    if is_placeholder_input(inner):
        return None
    return inner


def is_placeholder_input(value: Any) -> bool:
    """Return whether ``value`` is ``{"input": ""}``, the input of a run not known yet.

    Compares without calling the values' own ``==`` or truth value, so an input that
    holds a numpy array or a DataFrame (whose comparison raises) is simply not it.
    """
    if not isinstance(value, dict) or dict.__len__(value) != 1:
        return False
    inner = dict.get(value, "input", None)
    return isinstance(inner, str) and str.__len__(inner) == 0


def wire_outputs(run_type: str, outputs: Any, schema_format: SchemaFormat) -> Any:
    """Return the ``final_output`` a ``LogEntry`` shows.

    In the ``original`` format the envelope is shown as is (a prompt run shows what is
    inside its ``output`` key). In ``streaming_events``, LLM, chat-model and retriever
    runs show their envelope and other runs the value under ``output``. A run that ended
    without outputs (e.g. one that failed) has the empty envelope ``{}``. The value is a
    copy.

    Example:
        >>> wire_outputs("tool", {"output": 42}, "streaming_events")
        42
        >>> wire_outputs("tool", {"output": 42}, "original")
        {'output': 42}
    """
    if type(outputs) is dict:
        if schema_format == "streaming_events":
            if run_type not in _RAW_TYPES:
                output = outputs.get("output")
                return output if type(output) in SCALAR_TYPES else snapshot(output)
        elif run_type != "prompt":
            return snapshot(outputs)
    value = {} if outputs is None else snapshot(outputs)
    if schema_format == "original":
        if run_type == "prompt" and isinstance(value, dict) and "output" in value:
            return value["output"]
        return value
    if run_type in _RAW_TYPES:
        return value
    if isinstance(value, dict):
        return value.get("output")
    return None


def check_schema_format(schema_format: str) -> SchemaFormat:
    """Return ``schema_format`` if it is valid.

    Raises:
        SchemaFormatError: It is neither ``"original"`` nor ``"streaming_events"``.
    """
    if schema_format not in SCHEMA_FORMATS:
        msg = (
            f"invalid schema format {schema_format!r}: "
            "expected one of 'original', 'streaming_events'"
        )
        raise SchemaFormatError(msg)
    return schema_format  # type: ignore[return-value]


EntryField = Literal["parent_ids", "error"]
"""An opt-in field of each log entry (not in LangChain's ``LogStreamCallbackHandler``)."""

ENTRY_FIELDS: tuple[EntryField, ...] = ("parent_ids", "error")
"""Every :data:`EntryField`, in the order they appear in an entry."""


def check_entry_fields(entry_fields: Any) -> tuple[EntryField, ...]:
    """Return the opt-in entry fields named, in :data:`ENTRY_FIELDS` order, each once.

    Args:
        entry_fields: A collection of field names, or ``None`` for none.

    Raises:
        EntryFieldsError: ``entry_fields`` is a bare string, not iterable, or names a
            field other than ``"parent_ids"`` and ``"error"``.

    Example:
        >>> check_entry_fields(["error", "parent_ids", "error"])
        ('parent_ids', 'error')
    """
    if entry_fields is None:
        return ()
    if isinstance(entry_fields, (str, bytes)):
        msg = (
            f"entry_fields must be a collection of field names, got the single string "
            f"{entry_fields!r}; write entry_fields=[{entry_fields!r}]"
        )
        raise EntryFieldsError(msg)
    if not isinstance(entry_fields, Iterable):
        msg = (
            "entry_fields must be a collection of field names "
            f"('parent_ids', 'error'), got {type(entry_fields).__name__}"
        )
        raise EntryFieldsError(msg)
    names = list(entry_fields)
    unknown = [name for name in names if name not in ENTRY_FIELDS]
    if unknown:
        msg = (
            f"unknown entry field{'s' if len(unknown) > 1 else ''} "
            f"{', '.join(map(repr, unknown))} in entry_fields: expected some of "
            "'parent_ids', 'error'"
        )
        raise EntryFieldsError(msg)
    return tuple(name for name in ENTRY_FIELDS if name in names)


class TokenRoute:
    """Where one logged run's tokens go; builds the two ops of each token.

    Args:
        path: The run's entry path, ``/logs/<escaped key>``.
    """

    __slots__ = ("_out_op", "_str_op")

    def __init__(self, path: str) -> None:
        """Make the two op templates of the run's tokens."""
        self._str_op: JsonPatchOp = {
            "op": "add",
            "path": path + "/streamed_output_str/-",
            "value": None,
        }
        self._out_op: JsonPatchOp = {
            "op": "add",
            "path": path + "/streamed_output/-",
            "value": None,
        }

    def ops(self, token: Any, chunk: Any) -> list[JsonPatchOp]:
        """Return the ops of one token: onto ``streamed_output_str``, then ``streamed_output``.

        Args:
            token: The token (a string, or a list of content blocks, which is copied).
            chunk: What goes on ``streamed_output`` (a dict or list is copied).
        """
        if type(token) is not str:
            token = snapshot(token)
        if type(chunk) is list or type(chunk) is dict:
            chunk = snapshot(chunk)
        op1, op2 = self._str_op.copy(), self._out_op.copy()  # cheaper than two literals
        op1["value"], op2["value"] = token, chunk
        return [op1, op2]


class PatchEmitter:
    """Builds the ops of one run log.

    Args:
        run_filter: Which runs get a log entry.
        schema_format: How inputs and outputs are shaped; ``"streaming_events"`` also
            puts ``inputs`` in each entry.
        entry_fields: Opt-in fields of each entry: ``"parent_ids"`` (the run's
            ancestors' ids, root first) and ``"error"`` (``None``, then the error text
            when the run fails; a failed root puts it in a top-level ``error`` key).

    Raises:
        SchemaFormatError: ``schema_format`` is not a known format.
        EntryFieldsError: ``entry_fields`` names an unknown field.
    """

    def __init__(
        self,
        run_filter: RunFilter = ALWAYS_INCLUDE,
        schema_format: SchemaFormat = "streaming_events",
        entry_fields: Iterable[str] = (),
    ) -> None:
        """Create an emitter that has seen no run."""
        self.run_filter = run_filter
        self.schema_format: SchemaFormat = check_schema_format(schema_format)
        fields = check_entry_fields(entry_fields)
        self.parent_ids = "parent_ids" in fields
        self.error = "error" in fields
        self.root_id: Optional[UUID] = None
        self.keys = KeyAllocator()
        # run id -> "/logs/<escaped key>" of every included run. Kept after a run ends,
        # as LangChain keeps it, so chunks tapped late still land; it grows no faster
        # than the set of keys handed out, which must be kept for uniqueness anyway.
        self._paths: dict[Any, str] = {}  # by run_key(id)

    def path_of(self, run_id: UUID) -> Optional[str]:
        """Return ``/logs/<key>`` (escaped) of an included run, else ``None``."""
        return self._paths.get(run_key(run_id))

    def token_route(self, run_id: UUID) -> Optional[TokenRoute]:
        """Return where a logged run's tokens go, else ``None`` (the run is not logged).

        A caller streaming many tokens of one run finds the route once and asks it for
        each token's ops (:meth:`TokenRoute.ops`); :meth:`token` does both at once.
        """
        path = self._paths.get(run_key(run_id))
        return None if path is None else TokenRoute(path)

    def is_root(self, run_id: UUID) -> bool:
        """Return whether ``run_id`` is the root's id (the first run started)."""
        root = self.root_id
        if run_id is root:
            return root is not None
        if type(run_id) is UUID and type(root) is UUID:  # UUID.__eq__ is Python code
            return run_id.int == root.int
        return root is not None and run_key(run_id) == run_key(root)  # 3 is not 3.0

    def should_include(self, run_id: UUID, name: str, run_type: str, tags: list[str]) -> bool:
        """Return whether a run gets a log entry: never the root, else as the filter says."""
        return not self.is_root(run_id) and self.run_filter.should_include(name, run_type, tags)

    def emits_end(self, run_id: UUID, failed: bool, root_output: bool = False) -> bool:
        """Return whether :meth:`end` returns ops for this run.

        Args:
            run_id: The run's id.
            failed: Whether the run failed (and the ``error`` text is given).
            root_output: Whether a root output is given (a run that did not fail).
        """
        if self._paths.get(run_key(run_id)) is not None:
            return True
        if not self.is_root(run_id):
            return False
        return (failed and self.error) or (root_output and not failed)

    def start(self, run: Run) -> list[JsonPatchOp]:
        """Return the ops for a run that started: the root state, or its log entry.

        The entry is built before anything is recorded (the root's id, a log key), so a
        value that raises while it is copied leaves the emitter as it was.
        """
        if self.root_id is None:
            state: RunState = {
                "id": id_string(run.id),
                "streamed_output": [],
                "final_output": None,
                "logs": {},
                "name": run.name,
                "type": run.run_type,
            }
            if self.error:
                state["error"] = None
            self.root_id = run.id
            return [{"op": "replace", "path": "", "value": state}]
        run_id, name, run_type, tags = run.id, run.name, run.run_type, run.tags
        if self.is_root(run_id) or not self.run_filter.should_include(name, run_type, tags):
            # An id reused after its run ended must not reach the earlier run's entry.
            self._paths.pop(run_key(run_id), None)
            return []
        metadata = run.metadata
        entry: LogEntry = {
            "id": id_string(run_id),
            "name": name,
            "type": run_type,
            "tags": list(tags),
            "metadata": snapshot(metadata) if metadata else {},
            "start_time": isoformat_ms(run.start_time),
            "streamed_output": [],
            "streamed_output_str": [],
            "final_output": None,
            "end_time": None,
        }
        if self.schema_format == "streaming_events":
            entry["inputs"] = wire_inputs(run_type, run.inputs)
        if self.parent_ids:
            entry["parent_ids"] = [id_string(ancestor) for ancestor in run.ancestors]
        if self.error:
            entry["error"] = None
        path = "/logs/" + escape_key(self.keys.allocate(name))
        self._paths[run_id.int if type(run_id) is UUID else run_key(run_id)] = path
        return [{"op": "add", "path": path, "value": entry}]

    def token(self, run_id: UUID, token: Any, chunk: Any) -> list[JsonPatchOp]:
        """Return the ops for a token an LLM or chat-model run streamed.

        Args:
            run_id: The run's id.
            token: The token (a string, or a list of content blocks).
            chunk: What goes on ``streamed_output``: the chunk's message for a chat
                model, else the token.
        """
        route = self.token_route(run_id)
        return [] if route is None else route.ops(token, chunk)

    def chunk(self, run_id: UUID, chunk: Any) -> list[JsonPatchOp]:
        """Return the op for an output chunk a run streamed (not tokens; not the root's)."""
        path = self._paths.get(run_key(run_id))
        if path is None:
            return []
        return [{"op": "add", "path": path + "/streamed_output/-", "value": snapshot(chunk)}]

    def end(
        self, run: Run, error: Optional[Any] = None, root_output: Any = MISSING
    ) -> list[JsonPatchOp]:
        """Return the ops for a run that ended or failed.

        Args:
            run: The finished run.
            error: With the ``error`` entry field, the text to show for a failed run
                (``"Type: message"`` of what it raised, redacted by the caller); ``None``
                for a run that did not fail.
            root_output: For the root run of a native trace, the output to put in the
                state's ``/final_output`` (already copied or redacted); left out, the
                root's output is not reported (the handler, and ``stream_log``, which
                reports it with its own ops).
        """
        run_id = run.id
        path = self._paths.get(run_id.int if type(run_id) is UUID else run_key(run_id))
        if path is None:
            if not self.is_root(run_id):
                return []
            ops: list[JsonPatchOp] = []
            if root_output is not MISSING and error is None and run.error is None:
                ops.append({"op": "replace", "path": "/final_output", "value": root_output})
            if error is not None and self.error:
                ops.append({"op": "replace", "path": "/error", "value": error})
            return ops
        schema_format = self.schema_format
        end_time = None if run.end_time is None else isoformat_ms(run.end_time)
        final_output = wire_outputs(run.run_type, run.outputs, schema_format)
        if schema_format == "streaming_events":
            ops = [
                {
                    "op": "replace",
                    "path": path + "/inputs",
                    "value": wire_inputs(run.run_type, run.inputs),
                },
                {"op": "add", "path": path + "/final_output", "value": final_output},
                {"op": "add", "path": path + "/end_time", "value": end_time},
            ]
        else:
            ops = [
                {"op": "add", "path": path + "/final_output", "value": final_output},
                {"op": "add", "path": path + "/end_time", "value": end_time},
            ]
        if error is not None and self.error:
            ops.append({"op": "replace", "path": path + "/error", "value": error})
        return ops


# -- the root's own output, as Runnable.astream_log reports it ----------------------------


def _compare_dumps(value: Any) -> str:
    """Render a value for jsonpatch's equality checks; never fails.

    A value whose ``repr`` raises is rendered by its identity, so it compares unequal
    to anything else and the diff replaces it.
    """
    try:
        return json.dumps(value, sort_keys=True, default=repr)
    except Exception:
        try:
            return repr(value)
        except Exception:
            return object.__repr__(value)


class RootOutput:
    """Turns a root run's output chunks into the ops ``Runnable.astream_log`` emits.

    Each chunk is appended to ``/streamed_output`` (with ``with_list``) and
    ``/final_output`` follows the chunks added up with ``+`` (the latest chunk where
    ``+`` fails), as a JSON Patch diff against what was reported before. With a
    redactor, each chunk is redacted on its own for ``/streamed_output`` and the chunks
    added up are redacted as a whole for ``/final_output``.

    Args:
        with_list: Append each chunk to the root's ``streamed_output``.
        redact: What masks values before they enter an op, or ``None``.

    Example:
        >>> output = RootOutput(with_list=True, redact=None)
        >>> [op["path"] for op in output.ops("Hel")]
        ['/streamed_output/-', '/final_output']
        >>> output.ops("lo")[1]["value"], output.final
        ('Hello', 'Hello')
    """

    __slots__ = ("final", "redact", "reported", "with_list")

    def __init__(self, with_list: bool, redact: Optional[Callable[[Any], Any]]) -> None:
        """Start with no output."""
        self.with_list = with_list
        self.redact = redact
        self.final: Any = None  # the chunks added up, types kept so ``+`` keeps working
        self.reported: Any = None  # a copy of ``final`` as the last diff reported it

    def ops(self, chunk: Any) -> list[JsonPatchOp]:
        """Return the ops of one more output chunk."""
        # With a redactor, each chunk is redacted on its own for /streamed_output, and
        # the chunks added up are redacted as a whole for /final_output: a secret split
        # across chunks looks like one only once its pieces are joined.
        redact = self.redact
        prev = self.reported
        if self.final is None:
            final = chunk
        else:
            try:
                final = self.final + chunk
            except TypeError:
                prev, final = None, chunk
        self.final = final
        # Diff against what was reported, not the live value: a target that changes a
        # chunk after yielding it must not make the next diff disagree with the stream.
        # (A redacted value is a copy already.)
        shown = snapshot(final) if redact is None else redact(final)
        self.reported = shown
        ops: list[JsonPatchOp] = []
        if self.with_list:
            piece = snapshot(chunk) if redact is None else redact(chunk)
            ops.append({"op": "add", "path": "/streamed_output/-", "value": piece})
        for op in jsonpatch.JsonPatch.from_diff(prev, shown, dumps=_compare_dumps):
            op = dict(op)
            op["path"] = "/final_output" + op["path"]
            if "from" in op:
                op["from"] = "/final_output" + op["from"]
            if "value" in op:
                op["value"] = snapshot(op["value"])
            ops.append(op)
        return ops
