"""Private: apply JSON Patch ops in place, fast, with exactly the results and errors of jsonpatch.

:func:`apply_atomic` applies the ops of one patch to a document the caller owns. It does
``add``, ``replace`` and ``remove`` itself when the path walks through plain ``dict`` and
``list`` containers to a target that exists (or, for ``add``, may be created), and records
how to undo each change. Anything else (another op, a bad or unusual path, a missing
target, a container of another type, an op that is not a plain ``dict``) undoes what the
patch did so far and hands the whole patch to ``jsonpatch`` on a copy of the document, so
every error, and the result of every op this module does not do itself, is jsonpatch's
own. What this module does itself is only what every jsonpatch release since 1.33 does the
same way.

:func:`replay` applies ops that are known to apply (they did once) to a private document,
one op at a time, for rebuilding an old state.

Values are copied into the document as :func:`copy.deepcopy` copies them, one value at a
time (:func:`deep_copy` is a faster equivalent), so a document never shares a mutable
value with an op.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Optional

import jsonpatch

from ._values import MISSING, SCALAR_TYPES, deep_copy, unescape_key

__all__ = ["apply_atomic", "deep_copy", "replay"]

_INDEX = re.compile("0|[1-9][0-9]*").fullmatch
"""An array index as jsonpointer accepts it: no sign, no leading zero."""

_BAD_ESCAPE = re.compile("(~[^01]|~$)").search
"""An escape jsonpointer rejects."""

_PATHS: dict[str, Optional[tuple[tuple[str, ...], str]]] = {}
"""Parsed paths, by path: the unescaped parts before the last, and the last part; ``None``
for a path left to jsonpatch, and ``_ROOT`` itself (not an equal tuple) for ``""``."""

_PATH_CACHE_LIMIT = 4096

_ROOT: tuple[tuple[str, ...], str] = ((), "")

Undo = list[tuple[Any, ...]]
"""Steps that undo changes, as (function, *args), applied last first."""


def _parse(path: str) -> Optional[tuple[tuple[str, ...], str]]:
    """Split a JSON Pointer as jsonpointer does, or return ``None`` if it is not one."""
    if not path:
        return _ROOT
    if path[0] != "/":
        return None
    parts = path.split("/")[1:]
    if "~" in path:
        if _BAD_ESCAPE(path) is not None:
            return None
        parts = [unescape_key(part) for part in parts]
    return tuple(parts[:-1]), parts[-1]


def _parts(path: str) -> Optional[tuple[tuple[str, ...], str]]:
    parsed = _PATHS.get(path, MISSING)
    if parsed is MISSING:
        parsed = _parse(path)
        if len(_PATHS) >= _PATH_CACHE_LIMIT:
            _PATHS.clear()
        _PATHS[path] = parsed
    return parsed  # type: ignore[no-any-return]


def _restore_dict(target: dict[Any, Any], items: list[tuple[Any, Any]]) -> None:
    """Give ``target`` back exactly ``items``, in their order."""
    target.clear()
    target.update(items)


def _run(
    doc: Any, ops: Sequence[Any], start: int, stop: int, undo: Optional[Undo]
) -> tuple[Any, int]:
    """Apply ``ops[start:stop]`` in place while each takes the fast path.

    Returns:
        ``(document, index)``: the document (a new one if the root was replaced) and the
        index of the first op not applied (``stop`` if all were). An op not applied has
        changed nothing.
    """
    index = start
    while index < stop:
        op = ops[index]
        if type(op) is not dict:
            break
        kind = op.get("op")
        path = op.get("path")
        if type(path) is not str:
            break
        parsed = _PATHS.get(path) or _parts(path)
        if parsed is None:
            break
        value = op.get("value", MISSING)
        if kind == "add" or kind == "replace":
            if value is MISSING:
                break
        elif kind != "remove":
            break
        if parsed is _ROOT:
            # jsonpatch's releases differ for other root ops; these they all agree on.
            if kind == "replace" or (kind == "add" and type(doc) is dict):
                doc = deep_copy(value)
                index += 1
                continue
            break
        parents, last = parsed
        node = doc
        for part in parents:
            cls = type(node)
            if cls is dict:
                node = node.get(part, MISSING)
            elif cls is list and _INDEX(part) is not None and int(part) < len(node):
                node = node[int(part)]
            else:
                node = MISSING
            if node is MISSING:
                break
        if node is MISSING:
            break
        cls = type(node)
        if kind == "add":
            if cls is dict:
                new = value if type(value) in SCALAR_TYPES else deep_copy(value)
                if undo is not None:
                    old = node.get(last, MISSING)
                    if old is MISSING:
                        undo.append((node.__delitem__, last))
                    else:
                        undo.append((node.__setitem__, last, old))
                node[last] = new
            elif cls is list:
                if last == "-":
                    new = value if type(value) in SCALAR_TYPES else deep_copy(value)
                    if undo is not None:
                        undo.append((node.pop,))
                    node.append(new)
                elif _INDEX(last) is not None and int(last) <= len(node):
                    new = value if type(value) in SCALAR_TYPES else deep_copy(value)
                    at = int(last)
                    if undo is not None:
                        undo.append((node.__delitem__, at))
                    node.insert(at, new)
                else:
                    break
            else:
                break
        elif kind == "replace":
            # jsonpatch 1.33 refuses "-" even as an object member; leave it to jsonpatch
            if last == "-":
                break
            if cls is dict:
                if last not in node:
                    break
                new = value if type(value) in SCALAR_TYPES else deep_copy(value)
                if undo is not None:
                    undo.append((node.__setitem__, last, node[last]))
                node[last] = new
            elif cls is list and _INDEX(last) is not None and int(last) < len(node):
                new = value if type(value) in SCALAR_TYPES else deep_copy(value)
                at = int(last)
                if undo is not None:
                    undo.append((node.__setitem__, at, node[at]))
                node[at] = new
            else:
                break
        elif cls is dict:  # remove
            if last not in node:
                break
            if undo is not None:
                undo.append((_restore_dict, node, list(node.items())))
            del node[last]
        elif cls is list and _INDEX(last) is not None and int(last) < len(node):
            at = int(last)
            if undo is not None:
                undo.append((node.insert, at, node[at]))
            del node[at]
        else:
            break
        index += 1
    return doc, index


def _rollback(undo: Undo) -> None:
    while undo:
        step = undo.pop()
        step[0](*step[1:])


def _private(op: Any) -> Any:
    """Return ``op`` with its value copied, so that jsonpatch (< 1.34 too) inserts a copy."""
    if isinstance(op, Mapping) and "value" in op:
        value = op["value"]
        if type(value) not in SCALAR_TYPES:
            op = dict(op)
            op["value"] = deep_copy(value)
    return op


def apply_atomic(doc: Any, ops: Sequence[Any]) -> Any:
    """Apply one patch's ops to ``doc`` in place, all or nothing.

    Args:
        doc: A document no one else holds; it may be changed in place.
        ops: The patch's ops.

    Returns:
        The patched document: ``doc`` itself, or a new one when the root was replaced or
        the patch went to jsonpatch.

    Raises:
        jsonpatch.JsonPatchException: As jsonpatch raises it for this patch and document.
        jsonpointer.JsonPointerException: As jsonpatch raises it for this patch and document.
        Exception: Whatever else jsonpatch or copying a value raises. On any error ``doc``
            is as it was.
    """
    undo: Undo = []
    try:
        new, reached = _run(doc, ops, 0, len(ops), undo)
    except BaseException:
        _rollback(undo)
        raise
    if reached == len(ops):
        return new
    _rollback(undo)
    return jsonpatch.apply_patch(deep_copy(doc), [_private(op) for op in ops], in_place=True)


def replay(doc: Any, ops: Sequence[Any], start: int, stop: int) -> Any:
    """Apply ``ops[start:stop]``, which applied before in this order, to a private ``doc``.

    Returns:
        The patched document.
    """
    index = start
    while True:
        doc, index = _run(doc, ops, index, stop, None)
        if index >= stop:
            return doc
        doc = jsonpatch.apply_patch(doc, [_private(ops[index])], in_place=True)
        index += 1
