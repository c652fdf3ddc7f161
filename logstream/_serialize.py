"""JSON text for any value: :func:`dumps` renders patches, ops and states and never raises.

This module's one responsibility is turning a Python value into strict JSON text (RFC 8259:
no ``NaN`` or ``Infinity`` tokens, ASCII only), whatever the value holds: objects the
``json`` module refuses, cycles, nesting too deep for recursion, broken ``__repr__``. It is
what a JSON Lines sink calls once per patch, so the common case (plain dicts, lists,
strings and numbers) goes to the C encoder of the ``json`` module after a quick check that
the value is plain; everything else goes through an iterative walker that renders the same
text for plain values and the table in :func:`dumps` for the rest.

Example:
    >>> dumps([{"op": "add", "path": "/streamed_output/-", "value": "tok"}])
    '[{"op":"add","path":"/streamed_output/-","value":"tok"}]'
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import json
import math
import uuid
from collections.abc import Iterable, Iterator, Mapping
from itertools import chain, islice
from json.encoder import encode_basestring_ascii
from typing import Any, Callable, Optional

from ._errors import SerializeOptionError
from ._patches import RunLog, RunLogPatch
from ._values import (
    CUT,
    LIST,
    MAPPING,
    MISSING,
    TUPLE,
    Frame,
    Walk,
    container_kind,
    dumped,
    not_serializable,
    safe_repr,
    unique_key,
)

__all__ = ["dumps"]

DEFAULT_MAX_DEPTH = 200
"""How many JSON containers :func:`dumps` nests before it cuts the rest off."""

CYCLE = "<cycle>"
"""The string that stands for a container met again inside itself."""

TOO_DEEP = "<too deep>"
"""The string that stands for a container nested deeper than ``max_depth``."""

DEFAULT_MAX_VALUES = 1_000_000
"""How many values :func:`dumps` takes apart, in all, before it cuts the rest off."""

DEFAULT_MAX_CHARS = 64 * 1024 * 1024
"""How many characters :func:`dumps` writes while taking values apart before it stops."""

OVER_BUDGET = "<over budget>"
"""The string that stands for what is left when ``max_values`` or ``max_chars`` is spent."""

_CYCLE_JSON = encode_basestring_ascii(CYCLE)
_TOO_DEEP_JSON = encode_basestring_ascii(TOO_DEEP)
_OVER_BUDGET_JSON = encode_basestring_ascii(OVER_BUDGET)
_CHARS_CHECK_EVERY = 64  # values between two counts of the characters written
_INF = math.inf
_MAX_CONVERSIONS = 16  # Enum -> value -> model_dump() -> ... steps for one node
_OPTIONS_CACHE_SIZE = 64
_PLAIN_CHECK_LEVELS = 100  # the walker writes subtrees no deeper than this with the C encoder
_SAFE_INT_BITS = 4000  # ints below 2**4000 have < 4300 digits: str() never refuses them


def dumps(
    value: Any,
    *,
    indent: Optional[int] = None,
    sort_keys: bool = False,
    max_depth: int = DEFAULT_MAX_DEPTH,
    max_string: Optional[int] = None,
    max_items: Optional[int] = None,
    max_values: Optional[int] = DEFAULT_MAX_VALUES,
    max_chars: Optional[int] = DEFAULT_MAX_CHARS,
) -> str:
    r"""Return ``value`` as strict, ASCII-only JSON text; never raises because of the value.

    Plain JSON values come out as ``json.dumps`` would write them with the same
    ``indent`` and ``sort_keys``, except that separators are compact (``,`` and ``:``)
    when ``indent`` is ``None``. Everything else is rendered as follows:

    ==================================  ==================================================
    Python value                        JSON
    ==================================  ==================================================
    ``float`` NaN, +inf, -inf           the strings ``"NaN"``, ``"Infinity"``,
                                        ``"-Infinity"``
    ``int`` too long for ``str()``      the ``not_serializable`` object (see below)
    ``str`` with lone surrogates        escaped (``"\ud800"``); output is always ASCII
    ``tuple``, ``list``, ``deque``      array
    ``set``, ``frozenset``              array, sorted by value when the elements are all
                                        strings or all numbers, else by their JSON text
                                        (as written, with these options)
    ``dict``, other ``Mapping``         object; keys as below
    ``uuid.UUID``                       ``str(u)``: ``"12345678-1234-..."``
    ``datetime``, ``date``, ``time``    ``isoformat()``: ``"2024-05-01T12:00:00+00:00"``
    ``timedelta``                       ``total_seconds()`` as a number: ``90.5``
    ``decimal.Decimal``                 ``str(d)``, a string, so no precision is lost
    ``enum.Enum`` member                its ``value``, rendered by these rules
    dataclass instance                  object of its fields, by these rules (no deep copy)
    ``RunLogPatch``                     array of its ops
    ``RunLog``                          ``{"ops": [...], "state": {...}}``
    object with ``model_dump()``        what ``model_dump()`` returns (pydantic v2)
    object with ``dict()``              what ``dict()`` returns (pydantic v1)
    ``bytes``, ``bytearray``,           ``{"type": "bytes", "base64": "aGk="}``
    ``memoryview``
    anything else (classes, functions,  ``{"type": "not_serializable", "class":
    objects, a failed conversion)       "module.QualName", "repr": "..."}``
    a container inside itself           ``"<cycle>"`` (shared, non-cyclic references are
                                        rendered in full each time)
    a container ``max_depth`` deep      ``"<too deep>"``
    what is left once ``max_values``    ``"<over budget>"``, once in each open array or
    or ``max_chars`` is spent           object that still had items (see below)
    ==================================  ==================================================

    ``model_dump()`` and ``dict()`` are called with no arguments, and only their results
    of type ``dict``, ``list``, ``tuple``, ``str``, ``int``, ``float``, ``bool`` or
    ``None`` are used; if a call raises or returns something else the next rule is
    tried. If ``repr()`` raises, the ``repr`` field says so:
    ``"<Foo object (repr raised ValueError)>"``. The ``repr`` of a plain object includes
    its address, which differs between processes.

    Dict keys: ``str`` keys are kept. Other keys are named as JSON would write them
    (``1`` -> ``"1"``, ``True`` -> ``"true"``, ``None`` -> ``"null"``, NaN ->
    ``"NaN"``), ``UUID``, date and time, ``Decimal`` and ``Enum`` keys as their values
    above, anything else by ``repr()``. A converted key never replaces another entry:
    ``str`` keys keep their names and a converted key whose name is taken gets ``" (2)"``,
    ``" (3)"``, ... appended, so ``{"1": "a", 1: "b"}`` gives ``{"1":"a","1 (2)":"b"}``.

    Output is deterministic for a given value and options: dicts keep their order (or
    are sorted with ``sort_keys``), sets are sorted. ``max_depth`` counts JSON containers
    (arrays and objects, including the tagged objects above): the top-level value is at
    depth 0 and a container at depth ``max_depth`` or more is written as ``"<too deep>"``;
    deeper nesting never reaches Python's recursion limit. Only ``Exception`` is caught:
    ``KeyboardInterrupt`` and ``SystemExit`` raised by a value's methods propagate.

    Total work is bounded too, not only depth and items per container: values whose
    ``model_dump()`` builds fresh objects at every call, or a ``Mapping`` or ``list``
    subclass whose ``__iter__`` never ends, could otherwise take unbounded time and
    memory. Each value that is not a ``str``, number, bool or ``None`` counts one against
    ``max_values``, and so does each item of a container that is not an exact ``dict``,
    ``list`` or ``tuple`` (a subclass, a set, a ``Mapping``); strings and numbers in an
    exact ``dict``, ``list`` or ``tuple`` are data already in memory and count only by
    their characters. Once ``max_values`` values have
    been taken apart, or ``max_chars`` characters written, the next item of each open
    array or object is written as ``"<over budget>"`` (under its own key in an object)
    and that container is closed, so the text stays valid JSON and says where it was
    cut. Each set's elements are rendered once, to sort them and to write them.

    Args:
        value: Any value; typically a :class:`~logstream._patches.RunLogPatch`, its
            ops, or a :class:`~logstream._patches.RunLog` state.
        indent: Indent nested values by this many spaces, one per line, as
            ``json.dumps(indent=...)`` does; ``None`` for one line.
        sort_keys: Sort each object's keys (after keys are converted to strings).
        max_depth: The depth at which containers are cut off (see above).
        max_string: Cut strings longer than this many characters to their first
            ``max_string`` characters followed by ``"<N more chars>"``. Applies to
            every string value written, including ``repr`` and base64 fields, not to
            keys. ``None`` (the default) keeps strings whole.
        max_items: Keep only the first ``max_items`` items of an array, followed by the
            string ``"<N more items>"``, and the first ``max_items`` entries of an
            object, followed by the entry ``"<more>": "<N more entries>"``. ``None``
            (the default) keeps everything.
        max_values: How many values may be taken apart in all (see above); ``None``
            for no limit.
        max_chars: How many characters may be written while values are taken apart
            (see above); ``None`` for no limit. Checked every 64 values, so the text
            may overshoot it by what those values write.

    Returns:
        The JSON text. ``json.loads`` reads it back without needing ``NaN`` support.

    Raises:
        SerializeOptionError: An option has a wrong type or a negative value.

    Example:
        >>> import uuid
        >>> dumps({"id": uuid.UUID(int=1), "score": float("nan"), "tags": {"b", "a"}})
        '{"id":"00000000-0000-0000-0000-000000000001","score":"NaN","tags":["a","b"]}'
        >>> loop = [1]
        >>> loop.append(loop)
        >>> dumps(loop)
        '[1,"<cycle>"]'
        >>> print(dumps({"b": [1], "a": None}, indent=2, sort_keys=True))
        {
          "a": null,
          "b": [
            1
          ]
        }
    """
    opts = _options(indent, sort_keys, max_depth, max_string, max_items)
    _check_count("max_values", max_values, allow_none=True)
    _check_count("max_chars", max_chars, allow_none=True)
    try:
        value_type = type(value)
        if value_type is RunLogPatch:
            value = value.ops
        elif value_type is RunLog:
            value = {"ops": value.ops, "state": value.state}
        if opts.is_plain(value, 0):
            return opts.encoder.encode(value)
    except Exception:  # any surprise (a huge int, a deep stack) takes the slow path
        pass
    try:
        budget = _Budget(max_values, max_chars)
        return _Walker(opts, budget).render(value, root_checked=True)
    except Exception:
        # A bug or MemoryError in the walker: still hand back JSON that says what failed.
        return json.dumps(not_serializable(value), separators=(",", ":"))


class _Options:
    """Validated options, and the fast path's encoder and plain-value check for them."""

    __slots__ = (
        "encoder",
        "indent",
        "is_plain",
        "item_separator",
        "key",
        "key_separator",
        "max_depth",
        "max_items",
        "max_string",
        "sort_keys",
    )

    def __init__(
        self,
        indent: Any,
        sort_keys: Any,
        max_depth: Any,
        max_string: Any,
        max_items: Any,
    ) -> None:
        _check_count("indent", indent, allow_none=True)
        _check_count("max_depth", max_depth, allow_none=False)
        _check_count("max_string", max_string, allow_none=True)
        _check_count("max_items", max_items, allow_none=True)
        if not isinstance(sort_keys, bool):
            msg = f"dumps() option sort_keys must be a bool, got {type(sort_keys).__name__}"
            raise SerializeOptionError(msg)
        self.key = (indent, sort_keys, max_depth, max_string, max_items)
        self.indent: Optional[str] = None if indent is None else " " * indent
        self.sort_keys: bool = sort_keys
        self.max_depth: int = max_depth
        self.max_string: Optional[int] = max_string
        self.max_items: Optional[int] = max_items
        self.item_separator = ","
        self.key_separator = ":" if indent is None else ": "
        self.encoder = json.JSONEncoder(
            ensure_ascii=True,
            check_circular=False,  # is_plain has ruled cycles out (they exceed max_depth)
            allow_nan=False,
            sort_keys=sort_keys,
            indent=indent,
            separators=(self.item_separator, self.key_separator),
            default=_fast_default,
        )
        self.is_plain: Callable[[Any, int], bool]
        if max_string is None and max_items is None:
            self.is_plain = _plain_checker(max_depth)
        else:
            self.is_plain = self._is_plain_fresh

    def _is_plain_fresh(self, value: Any, depth: int) -> bool:
        return self.is_plain_marking(value, depth, set(), self.max_depth)

    def is_plain_marking(self, value: Any, depth: int, failed: set[int], budget: int) -> bool:
        """Return whether the fast encoder writes ``value`` as the walker would.

        Containers found not plain are added to ``failed`` (by id) so that the walker, which
        asks again for each child it enters, does not scan the failing path twice. A value
        nested more than ``budget`` levels counts as not plain (the walker takes it apart),
        so that checks from successive levels of a deep value cost linear time in all.
        """
        t = type(value)
        if t is str:
            return self.max_string is None or len(value) <= self.max_string
        if t is int or t is bool or value is None:
            return True
        if t is float:
            return bool(-_INF < value < _INF)
        if t is dict or t is list or t is tuple:
            if (
                depth >= self.max_depth
                or budget <= 0
                or (self.max_items is not None and len(value) > self.max_items)
                or id(value) in failed
            ):
                failed.add(id(value))
                return False
            whole = self.max_string is None
            if t is dict:
                for k, v in value.items():
                    tv = type(v)
                    if type(k) is not str:
                        failed.add(id(value))
                        return False
                    if (tv is str and whole) or tv is int or tv is bool or v is None:
                        continue
                    if not self.is_plain_marking(v, depth + 1, failed, budget - 1):
                        failed.add(id(value))
                        return False
                return True
            for v in value:
                tv = type(v)
                if (tv is str and whole) or tv is int or tv is bool or v is None:
                    continue
                if not self.is_plain_marking(v, depth + 1, failed, budget - 1):
                    failed.add(id(value))
                    return False
            return True
        return self.max_string is None and t in _HOOK_TYPES


def _check_count(name: str, value: Any, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if type(value) is not int or value < 0:
        expected = "a non-negative int or None" if allow_none else "a non-negative int"
        msg = f"dumps() option {name} must be {expected}, got {value!r}"
        raise SerializeOptionError(msg)


_OPTIONS: dict[tuple[Any, ...], _Options] = {}


def _options(
    indent: Any, sort_keys: Any, max_depth: Any, max_string: Any, max_items: Any
) -> _Options:
    """Return the validated options, from a small cache (they are rebuilt per call else)."""
    if (
        indent is None
        and sort_keys is False
        and max_depth == DEFAULT_MAX_DEPTH
        and type(max_depth) is int
        and max_string is None
        and max_items is None
    ):
        return _DEFAULT_OPTIONS
    key = (indent, sort_keys, max_depth, max_string, max_items)
    try:
        opts = _OPTIONS.get(key)
    except TypeError:  # an unhashable option: let _Options say what is wrong with it
        opts = None
    if opts is None or any(type(a) is not type(b) for a, b in zip(key, opts.key)):
        opts = _Options(indent, sort_keys, max_depth, max_string, max_items)
        if len(_OPTIONS) < _OPTIONS_CACHE_SIZE:
            _OPTIONS[key] = opts
    return opts


# The fast path: exact plain types only, so its text is the walker's text. Leaves of the
# types below are passed to the C encoder and turned into strings or numbers by the hook.
_HOOK_TYPES = frozenset(
    {uuid.UUID, datetime.datetime, datetime.date, datetime.time, datetime.timedelta}
    | {decimal.Decimal}
)


def _fast_default(value: Any) -> Any:
    """Render a leaf of one of the hook types for the C encoder (as the walker does)."""
    if type(value) is datetime.timedelta:
        return value.total_seconds()
    if type(value) is uuid.UUID or type(value) is decimal.Decimal:
        return str(value)
    if type(value) in _HOOK_TYPES:
        return value.isoformat()
    msg = f"unexpected {type(value).__name__} on the fast path"  # pragma: no cover
    raise TypeError(msg)  # pragma: no cover


def _plain_checker(max_depth: int) -> Callable[[Any, int], bool]:
    """Return the plain-value check for the common case: no string or item limits."""
    hook_types = _HOOK_TYPES

    def is_plain(value: Any, depth: int) -> bool:
        t = type(value)
        if t is str or t is int or t is bool or value is None:
            return True
        if t is float:
            return bool(-_INF < value < _INF)
        if t is dict:
            if depth >= max_depth:
                return False
            for k, v in value.items():
                if type(k) is not str:
                    return False
                tv = type(v)
                if tv is str or tv is int or tv is bool or v is None:
                    continue
                if not is_plain(v, depth + 1):
                    return False
            return True
        if t is list or t is tuple:
            if depth >= max_depth:
                return False
            for v in value:
                tv = type(v)
                if tv is str or tv is int or tv is bool or v is None:
                    continue
                if not is_plain(v, depth + 1):
                    return False
            return True
        return t in hook_types

    return is_plain


# The walker.

_TEXT, _ARRAY, _OBJECT, _AGAIN = range(4)


class _Raw:
    """Ready JSON text to write as an item (the markers the limits add)."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class _Frame(Frame):
    """An open array or object: its remaining items and what closing it needs."""

    __slots__ = ("first", "is_object", "metered", "separator")

    def __init__(
        self,
        source: Any,
        items: Iterator[Any],
        depth: int,
        is_object: bool,
        held: list[Any],
        metered: bool,
        indent: Optional[str],
    ) -> None:
        self.kind = MAPPING if is_object else LIST
        self.source = source
        self.items = items
        self.depth = depth
        self.held = held  # what was converted to reach source: open too, kept alive
        self.is_object = is_object
        self.first = True
        self.metered = metered  # every item counts (not an exact dict, list or tuple)
        self.separator = "," if indent is None else ",\n" + indent * (depth + 1)


class _Budget:
    """What is left of the work one :func:`dumps` call may do, shared by its walkers."""

    __slots__ = ("chars_left", "spent", "values_left")

    def __init__(self, max_values: Optional[int], max_chars: Optional[int]) -> None:
        self.values_left = math.inf if max_values is None else max_values
        self.chars_left = math.inf if max_chars is None else max_chars
        self.spent = False

    def take(self, items: Iterable[Any]) -> list[Any]:
        """Return the items of ``items``, but never more than could still be visited."""
        if self.values_left == math.inf:
            return list(items)
        return list(islice(items, int(self.values_left) + 1))


class _Walker(Walk[_Frame]):
    """Renders one value iteratively, so depth is limited by memory, not by the stack."""

    __slots__ = (
        "budget",
        "counted",
        "depth",
        "indent",
        "key_separator",
        "not_plain",
        "opts",
        "parts",
        "strings_whole",
        "write",
    )

    def __init__(
        self, opts: _Options, budget: _Budget, open_frames: Optional[dict[int, Any]] = None
    ) -> None:
        self.open: dict[int, Any] = {} if open_frames is None else open_frames
        self.stack: list[_Frame] = []
        self.opts = opts
        self.budget = budget
        self.parts: list[str] = []
        self.write = self.parts.append
        self.counted = 0  # how many of parts have been charged to the budget
        self.not_plain: set[int] = set()
        self.depth = 0  # the root's depth
        self.indent = opts.indent
        self.key_separator = opts.key_separator
        self.strings_whole = opts.max_string is None

    def charge(self) -> bool:
        """Count one value against the budget; return whether the budget is spent."""
        budget = self.budget
        if budget.spent:
            return True
        budget.values_left -= 1
        if budget.values_left % _CHARS_CHECK_EVERY == 0 or budget.values_left < 0:
            parts = self.parts
            budget.chars_left -= sum(map(len, parts[self.counted :]))
            self.counted = len(parts)
        if budget.values_left < 0 or budget.chars_left < 0:
            budget.spent = True
        return budget.spent

    def render(self, value: Any, *, root_checked: bool = False, depth: int = 0) -> str:
        """Return the JSON text of ``value``.

        Args:
            value: The value.
            root_checked: The fast path has already found ``value`` not plain.
            depth: How deep ``value`` is (for a set's element, rendered on its own).
        """
        if root_checked:
            self.not_plain.add(id(value))
        if self.charge():
            return _OVER_BUDGET_JSON
        self.depth = depth
        self.run(value)
        return "".join(self.parts)

    def enter(self, value: Any) -> Optional[_Frame]:
        """Write the root if it is a leaf, else return its frame."""
        return self.open_value(value, self.depth)

    def visit(self, frame: _Frame, item: Any) -> Any:
        """Write one item (a member's name too), or return its frame, or cut the frame."""
        write = self.write
        if not frame.first:
            write(frame.separator)
        else:
            frame.first = False
            if self.indent is not None:
                write(frame.separator[1:])
        if frame.is_object:
            name, item = item
            write(encode_basestring_ascii(name))
            write(self.key_separator)
        if self.budget.spent or (frame.metered and self.charge()):
            write(_OVER_BUDGET_JSON)  # and close this container
            return CUT
        t = type(item)
        if t is str and self.strings_whole:
            write(encode_basestring_ascii(item))
        elif t is float:
            write(_float_text(item))
        elif t is bool or item is None or (t is int and item.bit_length() < _SAFE_INT_BITS):
            write(_scalar_text(item))
        else:
            if not frame.metered and self.charge():  # metered: charged above
                write(_OVER_BUDGET_JSON)
                return CUT
            return self.open_value(item, frame.depth + 1)
        return None

    def leave(self, frame: _Frame) -> None:
        """Close an array or object."""
        close = "}" if frame.is_object else "]"
        indent = self.indent
        if frame.first or indent is None:
            self.write(close)
        else:
            self.write("\n" + indent * frame.depth + close)

    def open_value(self, value: Any, depth: int) -> Optional[_Frame]:
        """Write ``value`` if it is a leaf; else write its opening bracket and return its frame."""
        held: list[Any] = []
        open_frames = self.open
        for _ in range(_MAX_CONVERSIONS):
            if id(value) in open_frames:
                self.parts.append(_CYCLE_JSON)
                return None
            t = type(value)
            if (t is dict or t is list or t is tuple) and self.write_plain(value, depth):
                return None
            kind, payload = self.classify(value, depth)
            if kind == _TEXT:
                self.parts.append(payload)
                return None
            if kind == _AGAIN:
                held.append(value)
                value = payload
                continue
            if depth >= self.opts.max_depth:
                self.parts.append(_TOO_DEEP_JSON)
                return None
            is_object = kind == _OBJECT
            self.parts.append("{" if is_object else "[")
            metered = t is not dict and t is not list and t is not tuple
            return _Frame(value, payload, depth, is_object, held, metered, self.opts.indent)
        self.parts.append(_TOO_DEEP_JSON)  # an endless chain of conversions
        return None

    def write_plain(self, value: Any, depth: int) -> bool:
        """Write a plain container with the fast encoder and return True, else return False."""
        opts = self.opts
        try:
            if not opts.is_plain_marking(value, depth, self.not_plain, _PLAIN_CHECK_LEVELS):
                return False
            text = opts.encoder.encode(value)
        except Exception:  # a huge int, a deep stack: the walker will take it apart
            return False
        if opts.indent and depth:
            text = text.replace("\n", "\n" + opts.indent * depth)  # JSON text has no raw \n
        self.parts.append(text)
        return True

    def classify(self, value: Any, depth: int) -> tuple[int, Any]:
        """Return how to render ``value``: text, array items, object pairs, or a stand-in."""
        try:
            return self._classify(value, depth)
        except Exception:
            return _AGAIN, not_serializable(value)

    def _classify(self, value: Any, depth: int) -> tuple[int, Any]:
        t = type(value)
        if t is str:
            return _TEXT, self.string(value)
        if t is int or t is bool or value is None:
            return _TEXT, _scalar_text(value)
        if t is float:
            return _TEXT, _float_text(value)
        if t is list or t is tuple:
            return _ARRAY, self.array(value, len(value))
        if t is dict:
            return _OBJECT, self.pairs(list(value.items()))
        if t is _Raw:
            return _TEXT, value.text
        if isinstance(value, enum.Enum):
            return _AGAIN, value.value
        if isinstance(value, str):
            return _TEXT, self.string(str.__str__(value))
        if isinstance(value, int):  # subclasses, e.g. IntFlag members reach Enum above
            return _TEXT, _scalar_text(value)
        if isinstance(value, float):
            return _TEXT, _float_text(value)
        if isinstance(value, RunLog):
            return _AGAIN, {"ops": value.ops, "state": value.state}
        if isinstance(value, RunLogPatch):
            return _AGAIN, value.ops
        take = self.budget.take
        kind = container_kind(value)
        if kind == MAPPING:
            return _OBJECT, self.pairs(take(value.items()))
        if kind == LIST or kind == TUPLE:
            items = take(value)
            return _ARRAY, self.array(items, len(items))
        if kind is not None:  # a set or frozenset
            items = self.sorted_set(value, depth)
            return _ARRAY, self.array(items, len(items))
        if isinstance(value, (bytes, bytearray, memoryview)):
            encoded = base64.b64encode(bytes(value)).decode("ascii")
            return _AGAIN, {"type": "bytes", "base64": encoded}
        leaf = _leaf_value(value)
        if leaf is not None:
            return _TEXT, self.string(leaf) if isinstance(leaf, str) else _float_text(leaf)
        if isinstance(value, type):
            return _AGAIN, not_serializable(value)
        if dataclasses.is_dataclass(value):
            fields = [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
            return _OBJECT, self.pairs(fields)
        data = dumped(value)
        if data is not MISSING:
            return _AGAIN, data
        if isinstance(value, Mapping):
            return _OBJECT, self.pairs(take(value.items()))
        return _AGAIN, not_serializable(value)

    def string(self, text: str) -> str:
        """Return the JSON text of ``text``, cut to ``max_string``."""
        limit = self.opts.max_string
        if limit is not None and len(text) > limit:
            text = f"{text[:limit]}<{len(text) - limit} more chars>"
        return encode_basestring_ascii(text)

    def array(self, items: Any, count: int) -> Iterator[Any]:
        """Return the items to write for an array of ``count`` items, cut to ``max_items``."""
        limit = self.opts.max_items
        if limit is None or count <= limit:
            return iter(items)
        more = _Raw(encode_basestring_ascii(f"<{count - limit} more items>"))
        return chain(islice(items, limit), (more,))

    def pairs(self, items: list[tuple[Any, Any]]) -> Iterator[tuple[str, Any]]:
        """Return an object's ``(name, value)`` pairs: keys named, cut, maybe sorted."""
        limit = self.opts.max_items
        dropped = 0
        if limit is not None and len(items) > limit:
            dropped = len(items) - limit
            items = items[:limit]
        taken = {k for k, _ in items if type(k) is str}
        if len(taken) == len(items) and not dropped:
            named: list[tuple[str, Any]] = items
        else:
            named = []
            for k, v in items:
                if type(k) is not str:
                    k = unique_key(_key_name(k), taken)
                    taken.add(k)
                named.append((k, v))
            if dropped:
                more = _Raw(encode_basestring_ascii(f"<{dropped} more entries>"))
                named.append((unique_key("<more>", taken), more))
        if self.opts.sort_keys:
            named = sorted(named, key=_first)
        return iter(named)

    def sorted_set(self, value: Any, depth: int) -> list[Any]:
        """Return a set's elements in a deterministic order.

        Mixed elements are rendered once each, as they will be written (at ``depth + 1``,
        with the cycle marks of the containers around), and sorted by that text, which is
        then written as it is: rendering to sort and again to write would double the work
        at every level of nested sets.
        """
        items = self.budget.take(value)
        types = {type(x) for x in items}
        if types <= {str} or (types <= {int, float} and all(x == x for x in items)):
            try:
                return sorted(items)
            except Exception:  # str, int and NaN-free float always sort; be safe anyway
                pass
        key = id(value)
        opened = key not in self.open
        if opened:
            self.open[key] = None
        try:
            texts = [
                _Walker(self.opts, self.budget, self.open).render(x, depth=depth + 1) for x in items
            ]
        finally:
            if opened:
                del self.open[key]
        return [_Raw(text) for text in sorted(texts)]


def _first(pair: tuple[str, Any]) -> str:
    return pair[0]


def _scalar_text(value: Any) -> str:
    """Return the JSON text of ``None``, a bool or an int (a huge int raises ValueError)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    return int.__repr__(value)


def _float_text(value: float) -> str:
    if math.isnan(value):
        return '"NaN"'
    if math.isinf(value):
        return '"Infinity"' if value > 0 else '"-Infinity"'
    return float.__repr__(value)


def _leaf_value(value: Any) -> Any:
    """Return the string or float a UUID, date/time, timedelta or Decimal renders as."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return str(value)
    return None


def _key_name(key: Any) -> str:
    """Return the object name a non-``str`` dict key gets."""
    try:
        for _ in range(_MAX_CONVERSIONS):
            if isinstance(key, enum.Enum):
                key = key.value
                continue
            if key is None or isinstance(key, (bool, int)):
                return _scalar_text(key)
            if isinstance(key, float):
                return _float_text(key).strip('"')
            if isinstance(key, str):
                return str.__str__(key)
            leaf = _leaf_value(key)
            if leaf is not None:
                return leaf if isinstance(leaf, str) else float.__repr__(leaf)
            break
    except Exception:  # e.g. a huge int: named by repr below
        pass
    return safe_repr(key)


_DEFAULT_OPTIONS = _Options(None, False, DEFAULT_MAX_DEPTH, None, None)
