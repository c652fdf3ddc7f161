"""Walking values: the one place that knows how the package looks into, copies and names values.

Private. Every module that takes a value apart uses what is here:

- the constants: which types are plain scalars (:data:`SCALAR_TYPES`, :data:`SCALARS`),
  the "no value" marker (:data:`MISSING`), which methods and results make an object
  "dumpable" (:data:`DUMP_METHODS`, :data:`DUMP_RESULT_TYPES`);
- names: a free name for a colliding dict key (:func:`unique_key`), and RFC 6901
  escaping of a JSON Pointer reference token (:func:`escape_key`, :func:`unescape_key`);
- what an object looks like when it cannot be shown as data (:func:`class_name`,
  :func:`safe_repr`, :func:`not_serializable`, :func:`dumped`);
- the walk: :class:`Walk`, an iterative, cycle-aware, depth-first traversal with an
  explicit stack of :class:`Frame` objects (so depth is limited by memory, not by the
  recursion limit), and :func:`container_kind`, :func:`container_frame`,
  :func:`is_walked_as_mapping` and :func:`mapping_frame`, which say how a dict or other
  ``Mapping``, a list, tuple or deque, or a set or frozenset is taken apart.
  :mod:`~logstream._redact` (a masked copy) and :mod:`~logstream._serialize` (JSON text)
  are walks;
- the copies on hot paths: :func:`snapshot` (what the tracer applies to every value it
  records) and :func:`deep_copy` (``copy.deepcopy``, faster). They copy exact dicts and
  lists only, so they stay small recursive functions rather than walks: a walk's fixed
  cost per call (its object and frames) would be paid on every recorded value and
  every op applied. A value too deep for them is the one case a walk would cover;
  ``snapshot`` passes it through uncopied and ``deep_copy`` raises ``RecursionError``
  as ``copy.deepcopy`` does.

Example:
    >>> unique_key("a", {"a", "a (2)"})
    'a (3)'
    >>> escape_key("a/b~c"), unescape_key("a~1b~0c")
    ('a~1b~0c', 'a/b~c')
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import decimal
import logging
import uuid
from collections import deque
from collections.abc import Container, Iterable, Iterator, Mapping
from typing import Any, Callable, Generic, Optional, TypeVar

logger = logging.getLogger(__name__)

SCALAR_TYPES: frozenset[type] = frozenset({str, int, float, bool, type(None)})
"""The exact types no walker looks into or copies (subclasses are not in it)."""

SCALARS: tuple[type, ...] = (str, int, float, bool, type(None))
"""The same types for ``isinstance`` checks (which subclasses pass)."""

MISSING: Any = object()
"""A marker for "no value", where ``None`` is a value."""

DUMP_METHODS: tuple[str, ...] = ("model_dump", "dict")
"""Methods that give an object's data (pydantic v2, then v1), tried in this order."""

DUMP_RESULT_TYPES: frozenset[type] = frozenset({dict, list, tuple, str, int, float, bool})
DUMP_RESULT_TYPES |= {type(None)}
"""The exact types a dump method's result must have to be used as the object's data."""

LEAF_TYPES: tuple[type, ...] = (uuid.UUID, decimal.Decimal, datetime.date, datetime.time)
LEAF_TYPES += (datetime.timedelta,)
"""Types (subclasses too) that are shown as one string or number, never looked into."""


# --- names --------------------------------------------------------------------------------


def unique_key(name: str, taken: Container[Any]) -> str:
    """Return ``name``, or if it is taken, ``name (2)``, ``name (3)``, ...: the first free one.

    Args:
        name: The wanted name.
        taken: The names in use (a set, or the dict being filled).

    Returns:
        A name not in ``taken``.
    """
    if name not in taken:
        return name
    n = 2
    while f"{name} ({n})" in taken:
        n += 1
    return f"{name} ({n})"


def escape_key(key: str) -> str:
    """Escape one JSON Pointer reference token per RFC 6901 (``~`` -> ``~0``, ``/`` -> ``~1``)."""
    if "~" in key or "/" in key:
        return key.replace("~", "~0").replace("/", "~1")
    return key


def unescape_key(token: str) -> str:
    """Undo :func:`escape_key` (``~1`` -> ``/``, then ``~0`` -> ``~``), per RFC 6901.

    The token is not checked: a ``~`` followed by anything but ``0`` or ``1`` is kept.
    """
    if "~" in token:
        return token.replace("~1", "/").replace("~0", "~")
    return token


# --- objects that are not plain data ------------------------------------------------------


def class_name(value: Any) -> str:
    """Return ``module.QualName`` of ``value``'s class, never raising."""
    try:
        cls = type(value)
        return f"{cls.__module__}.{cls.__qualname__}"
    except Exception:
        return "<unknown class>"


def safe_repr(value: Any) -> str:
    """Return ``repr(value)`` as a plain ``str``; if ``repr`` raises, say so instead."""
    try:
        text = repr(value)
        return text if type(text) is str else str.__str__(text)
    except Exception as exc:
        try:
            name = type(value).__qualname__
        except Exception:
            name = "object"
        return f"<{name} object (repr raised {type(exc).__name__})>"


def not_serializable(value: Any) -> dict[str, str]:
    """Return the record that stands for a value with no JSON form: its class and repr."""
    return {"type": "not_serializable", "class": class_name(value), "repr": safe_repr(value)}


def dumped(value: Any) -> Any:
    """Return the data ``value.model_dump()`` or ``value.dict()`` gives, the first that works.

    A method that is missing, not callable, raises, or returns something not of a
    :data:`DUMP_RESULT_TYPES` type is skipped.

    Returns:
        The data, or :data:`MISSING` when neither method gives plain data.
    """
    for name in DUMP_METHODS:
        try:
            dump = getattr(value, name, None)
            if not callable(dump):
                continue
            data = dump()
        except Exception:
            continue
        if type(data) in DUMP_RESULT_TYPES:
            return data
    return MISSING


# --- copies on hot paths ------------------------------------------------------------------


def snapshot(value: Any) -> Any:
    """Return ``value`` with its dicts and lists copied, recursively; cycles are kept.

    Dict subclasses become plain dicts (as LangChain's tracer copies them); any other
    object is shared, not copied. A value nested too deeply to copy is passed through
    uncopied (logged at debug level) rather than failing the host program.

    The usual values (a scalar or object, a flat dict or list) take a fast path.

    Example:
        >>> inner = [1]
        >>> copied = snapshot({"a": inner})
        >>> copied == {"a": [1]}, copied["a"] is inner
        (True, False)
    """
    kind = type(value)
    if kind in SCALAR_TYPES:
        return value
    if kind is dict:
        for item in value.values():
            if type(item) not in SCALAR_TYPES:
                break
        else:
            return value.copy()
    elif kind is list:
        for item in value:
            if type(item) not in SCALAR_TYPES:
                break
        else:
            return value.copy()
    elif not isinstance(value, (dict, list)):
        return value
    try:
        return _snapshot(value, {})
    except RecursionError:
        logger.debug("value too deeply nested to snapshot; passing it through uncopied")
        return value


def _snapshot(value: Any, memo: dict[int, Any]) -> Any:
    if isinstance(value, dict):
        done = memo.get(id(value))
        if done is not None:
            return done
        new: dict[Any, Any] = {}
        memo[id(value)] = new
        for k, v in value.items():
            new[k] = v if isinstance(v, SCALARS) else _snapshot(v, memo)
        return new
    if isinstance(value, list):
        done = memo.get(id(value))
        if done is not None:
            return done
        out: list[Any] = []
        memo[id(value)] = out
        out.extend(v if isinstance(v, SCALARS) else _snapshot(v, memo) for v in value)
        return out
    return value


def deep_copy(value: Any) -> Any:
    """Return what ``copy.deepcopy(value)`` returns, faster for dicts, lists and scalars.

    Dicts and lists (exact types) are copied here with the same memo ``copy.deepcopy`` uses,
    so values shared inside ``value`` (or cycles) stay shared in the copy; every other object
    goes to ``copy.deepcopy`` with that memo.

    Example:
        >>> shared = [1]
        >>> copied = deep_copy({"a": shared, "b": shared})
        >>> copied["a"] is copied["b"], copied["a"] is shared
        (True, False)
    """
    if type(value) in SCALAR_TYPES:
        return value
    return _deep_copy(value, {})


def _deep_copy(value: Any, memo: dict[int, Any]) -> Any:
    cls = type(value)
    if cls is dict:
        done = memo.get(id(value))
        if done is not None:
            return done
        new: dict[Any, Any] = {}
        memo[id(value)] = new
        for key, item in value.items():
            new[key if type(key) is str else copy.deepcopy(key, memo)] = (
                item if type(item) in SCALAR_TYPES else _deep_copy(item, memo)
            )
        return new
    if cls is list:
        done = memo.get(id(value))
        if done is not None:
            return done
        items: list[Any] = []
        memo[id(value)] = items
        append = items.append
        for item in value:
            append(item if type(item) in SCALAR_TYPES else _deep_copy(item, memo))
        return items
    return copy.deepcopy(value, memo)


# --- the walk -----------------------------------------------------------------------------

MAPPING, LIST, SET, TUPLE, FROZENSET = range(5)
"""What a frame's container is: a mapping (its items are ``(key, value)`` pairs), a list or
deque, a set, a tuple, a frozenset. The mutable ones come first: ``kind < TUPLE``."""


class Frame:
    """One container a :class:`Walk` has entered: the items left to visit, and its bookkeeping.

    Walks subclass it to keep what they build per container (a copy, a flag).

    Attributes:
        kind: :data:`MAPPING`, :data:`LIST`, :data:`SET`, :data:`TUPLE`,
            :data:`FROZENSET`, or a kind of the walk's own (from 5 up).
        source: The container (kept alive while the frame is open).
        items: An iterator over what is left to visit; a mapping's as ``(key, value)``.
        depth: How many frames are open around this one.
        held: Other objects that count as open while this frame is (what a walk converted
            to reach ``source``), kept alive with it.

    While the frame is open, meeting ``source`` or one of ``held`` again inside it is a
    cycle.
    """

    __slots__ = ("depth", "held", "items", "kind", "source")

    def __init__(self, kind: int, source: Any, items: Iterator[Any], depth: int = 0) -> None:
        """Open a frame for ``source`` whose remaining items are ``items``."""
        self.kind = kind
        self.source = source
        self.items = items
        self.depth = depth
        self.held: Iterable[Any] = ()


F = TypeVar("F", bound=Frame)


def container_kind(value: Any) -> Optional[int]:
    """Return the frame kind of a built-in container, or ``None`` for anything else.

    Dicts (subclasses too) are :data:`MAPPING`; lists and deques (and list subclasses)
    :data:`LIST`; tuples (namedtuples too) :data:`TUPLE`; sets and frozensets (and
    their subclasses) :data:`SET` and :data:`FROZENSET`. Other ``Mapping`` types are
    not decided here (see :func:`is_walked_as_mapping`): walks place them after their
    own object rules.
    """
    t = type(value)
    if t is list:
        return LIST
    if t is tuple:
        return TUPLE
    if t is dict or isinstance(value, dict):
        return MAPPING
    if isinstance(value, (list, deque)):
        return LIST
    if isinstance(value, tuple):
        return TUPLE
    if isinstance(value, set):
        return SET
    if isinstance(value, frozenset):
        return FROZENSET
    return None


def container_frame(
    value: Any, make: Callable[[int, Any, Iterator[Any]], F], take: Callable[[Any], Any] = list
) -> Optional[F]:
    """Return a frame that walks ``value`` if it is a built-in container, else ``None``.

    The container kinds are :func:`container_kind`'s. An exact ``list`` or ``tuple`` is
    iterated as it is; any other container's items (a mapping's ``(key, value)`` pairs)
    are first taken with ``take`` (a copy, so a walk never iterates a container that
    changes under it; a bounded ``take`` stops an endless one).

    Args:
        value: Any value.
        make: Builds the frame: ``make(kind, value, items)``.
        take: Materializes the items of a container that is not an exact list or tuple.
    """
    t = type(value)
    if t is list:
        return make(LIST, value, iter(value))
    if t is dict:
        return make(MAPPING, value, iter(take(value.items())))
    if t is tuple:
        return make(TUPLE, value, iter(value))
    kind = container_kind(value)
    if kind is None:
        return None
    return make(kind, value, iter(take(value.items() if kind == MAPPING else value)))


def mapping_frame(
    value: Any, make: Callable[[int, Any, Iterator[Any]], F], take: Callable[[Any], Any] = list
) -> F:
    """Return a frame that walks the ``(key, value)`` pairs of a ``Mapping``."""
    return make(MAPPING, value, iter(take(value.items())))


def is_walked_as_mapping(value: Any) -> bool:
    """Return whether a non-dict ``Mapping`` is walked as one.

    It is, unless it is a dataclass or has a dump method (:data:`DUMP_METHODS`): those
    are shown through their fields or their dump, as any such object is. Raises what
    looking up those attributes raises.
    """
    if not isinstance(value, Mapping) or dataclasses.is_dataclass(value):
        return False
    return not any(callable(getattr(value, name, None)) for name in DUMP_METHODS)


CUT: Any = object()
"""What :meth:`Walk.visit` returns to cut a frame short (its remaining items are skipped)."""


class Walk(Generic[F]):
    """An iterative, cycle-aware, depth-first walk over a value's containers.

    The walk keeps an explicit stack of :class:`Frame` objects, so a value nested
    deeper than the recursion limit is walked like any other. Subclasses say what
    happens at each step:

    - :meth:`enter` is called for the root; it returns the root's frame if the root is a
      container to walk, else the walk's result;
    - :meth:`visit` is called for each item of the frame on top of the stack; it
      handles a leaf item and returns ``None``, or returns the item's frame (the walk
      descends into it), or :data:`CUT` to skip the frame's remaining items;
    - :meth:`leave` is called when a frame is done (or cut) and has been popped; what it
      returns for the root's frame is the walk's result.

    Cycles: while a frame is open, the ids of its source and of what it holds are keys
    of :attr:`open` (mapped to the frame), so a walk that meets a value whose id is
    open has met a cycle. Walks that render a value more than once in one pass (a set's
    elements, to sort them) can share one :attr:`open` between walk objects, and a walk
    may keep its own entries in it (under ids of containers it has finished): the walk
    removes only the entries of the frames it closes.
    """

    __slots__ = ("open", "stack")

    def __init__(self, open_frames: Optional[dict[int, Any]] = None) -> None:
        """Start a walk; ``open_frames`` shares another walk's open containers."""
        self.open: dict[int, Any] = {} if open_frames is None else open_frames
        self.stack: list[F] = []

    def run(self, root: Any) -> Any:
        """Walk ``root`` and return what :meth:`enter` or the root frame's :meth:`leave` gave."""
        result = self.enter(root)
        if not isinstance(result, Frame):
            return result
        stack = self.stack
        open_frames = self.open
        visit = self.visit
        child: Any = result
        frame: Any = None
        while True:
            if child is not None and child is not CUT:
                open_frames[id(child.source)] = child
                if child.held:
                    for held in child.held:
                        open_frames[id(held)] = child
                stack.append(child)
            elif not stack:
                return result
            else:
                stack.pop()
                open_frames.pop(id(frame.source), None)
                if frame.held:
                    for held in frame.held:
                        open_frames.pop(id(held), None)
                result = self.leave(frame)
                if not stack:
                    return result
            frame = stack[-1]
            child = None
            for item in frame.items:
                child = visit(frame, item)
                if child is not None:
                    break

    def enter(self, value: Any) -> Any:  # pragma: no cover - every walk overrides it
        """Return the root's frame, or the result for a root that is not walked into."""
        raise NotImplementedError

    def visit(self, frame: F, item: Any) -> Any:  # pragma: no cover - overridden
        """Handle one item of ``frame``: ``None``, the item's frame to descend, or ``CUT``."""
        raise NotImplementedError

    def leave(self, frame: F) -> Any:  # pragma: no cover - overridden
        """Finish ``frame``, just popped; return its result."""
        raise NotImplementedError
