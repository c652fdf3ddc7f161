"""Pytest plugin for .ci/langchain_tests: LangChain's own unit tests against logstream.

Loaded with ``-p langchain_plugin`` inside the extracted langchain-core source
distribution. It keeps only the tests whose source exercises ``astream_log``,
``LogStreamCallbackHandler``, ``RunLog``/``RunLogPatch`` or ``astream_events(version="v1")``,
deselects the node ids listed in the file named by ``LOGSTREAM_LC_DESELECT`` (if set) (tests that
read LangChain's private internals), and, per ``LOGSTREAM_LC_MODE``:

* ``install``: calls ``logstream.langchain.install()`` before any test module is imported;
* ``uninstall``: calls ``install()`` then ``uninstall()`` (LangChain's classes must be back);
* ``plain``: touches nothing.

It fails the session if the classes LangChain's modules hold are not the ones the mode
promises, so a silent no-op install cannot pass.
"""

from __future__ import annotations

import inspect
import os
import re
import types
from pathlib import Path

import pytest

_EXERCISES = re.compile(
    r"astream_log|LogStreamCallbackHandler|\bRunLog\b|\bRunLogPatch\b"
    r"|(?<![\w.])version\s*=\s*[\"']v1[\"']"
)
_MODE = os.environ.get("LOGSTREAM_LC_MODE", "install")


def _deselected_ids() -> set[str]:
    path = os.environ.get("LOGSTREAM_LC_DESELECT")
    if not path:
        return set()
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return {line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()}


def pytest_configure(config: pytest.Config) -> None:
    """Install (or install and uninstall) logstream before test modules import LangChain."""
    from logstream import langchain as lc

    if _MODE in ("install", "uninstall"):
        lc.install()
    if _MODE == "uninstall":
        lc.uninstall()


def _check_swap() -> None:
    import langchain_core.runnables.base as base
    import langchain_core.tracers.event_stream as event_stream
    import langchain_core.tracers.log_stream as log_stream

    import logstream

    for name in ("LogStreamCallbackHandler", "RunLog", "RunLogPatch"):
        ours = getattr(logstream, name)
        for module in (log_stream, base, event_stream):
            held = module.__dict__.get(name)
            if held is None:
                continue
            if (held is ours) != (_MODE == "install"):
                msg = f"mode {_MODE}: {module.__name__}.{name} is {held!r}"
                raise pytest.UsageError(msg)


def _text(function: object) -> str:
    try:
        return inspect.getsource(function)  # type: ignore[arg-type]
    except (OSError, TypeError):
        return ""


def _names(code: types.CodeType) -> set[str]:
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _names(const)
    return names


def _source(item: pytest.Item) -> str:
    """The test's source, plus that of the module's own functions it calls (one level)."""
    function = getattr(item, "function", None)
    if function is None:
        return ""
    parts = [_text(function)]
    module = getattr(item, "module", None)
    code = getattr(function, "__code__", None)
    if module is not None and code is not None:
        for name in sorted(_names(code)):
            helper = module.__dict__.get(name)
            if inspect.isfunction(helper) and helper.__module__ == module.__name__:
                parts.append(_text(helper))
    return "\n".join(parts)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the tests that exercise the swapped classes, minus the listed node ids."""
    _check_swap()
    unwanted = _deselected_ids()
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    seen: set[str] = set()
    for item in items:
        nodeid = item.nodeid
        base_id = nodeid.split("[")[0]
        if nodeid in unwanted or base_id in unwanted:
            seen.add(nodeid if nodeid in unwanted else base_id)
            drop.append(item)
        elif _EXERCISES.search(_source(item)):
            keep.append(item)
        else:
            drop.append(item)
    missing = unwanted - seen
    if missing and os.environ.get("LOGSTREAM_LC_ALLOW_MISSING") != "1":
        msg = f"deselect list names tests that do not exist: {sorted(missing)}"
        raise pytest.UsageError(msg)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    print(f"\nlogstream: mode={_MODE}, {len(keep)} tests selected, {len(seen)} left out by id")
