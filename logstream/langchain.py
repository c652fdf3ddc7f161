"""Put logstream's handler, ``RunLog`` and ``RunLogPatch`` inside LangChain's own runtime.

:func:`install` swaps LangChain's ``LogStreamCallbackHandler``, ``RunLog`` and
``RunLogPatch`` for ours in every loaded ``langchain_core`` module that holds them by name
(``langchain_core.tracers.log_stream``, ``langchain_core.runnables.base``,
``langchain_core.tracers.event_stream``, ``langchain_core.tracers``, ...), so an existing
app's ``Runnable.astream_log`` and ``astream_events(version="v1")`` run on logstream;
modules LangChain loads later import ours from ``log_stream``. :func:`uninstall` puts
LangChain's classes back wherever ours are found. Both are idempotent and thread-safe, and
:func:`install` returns a context manager that undoes what it did.

This module imports LangChain only when :func:`install` or :func:`uninstall` is called:
``import logstream.langchain`` loads nothing of LangChain. It is the only module of the
package that ever imports LangChain.

Example:
    >>> from logstream import langchain as lc
    >>> lc.installed()
    False
"""

from __future__ import annotations

import re
import sys
import threading
from types import ModuleType, TracebackType
from typing import Any, Optional

from ._callbacks import LogStreamCallbackHandler
from ._errors import LangChainVersionError
from ._patches import RunLog, RunLogPatch

__all__ = ["SUPPORTED_VERSIONS", "Installation", "install", "installed", "uninstall"]

SUPPORTED_VERSIONS = ">=1.0,<1.8"
"""The langchain-core versions :func:`install` accepts (their wrappers were read and tested)."""

_LOWEST = (1, 0)
_BEYOND = (1, 8)
_NAMES = ("LogStreamCallbackHandler", "RunLog", "RunLogPatch")
_OURS: dict[str, Any] = {
    "LogStreamCallbackHandler": LogStreamCallbackHandler,
    "RunLog": RunLog,
    "RunLogPatch": RunLogPatch,
}

_lock = threading.Lock()
_originals: Optional[dict[str, Any]] = None  # LangChain's classes while installed


class Installation:
    """What :func:`install` returns; as a context manager it undoes its own install.

    Attributes:
        changed: Whether this call swapped the classes in (``False`` when logstream was
            already installed, in which case leaving the ``with`` block leaves it so).
        modules: The names of the modules this call changed, sorted.
    """

    def __init__(self, changed: bool, modules: list[str]) -> None:
        """Record what one :func:`install` call did."""
        self.changed = changed
        self.modules = modules

    def __enter__(self) -> Installation:
        """Return this installation."""
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """Uninstall if this call installed."""
        if self.changed:
            uninstall()

    def __repr__(self) -> str:
        """Show whether this call installed and where."""
        return f"<Installation changed={self.changed} modules={self.modules}>"


def _version_tuple(version: str) -> tuple[int, int]:
    """Return the major and minor numbers of a version string such as ``1.7.7rc1``."""
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return (0, 0)
    return (int(match.group(1)), int(match.group(2)))


def _check_version() -> ModuleType:
    """Import LangChain's ``log_stream`` module if langchain-core's version is supported.

    Raises:
        LangChainVersionError: langchain-core is missing, cannot be imported, or its
            version is outside :data:`SUPPORTED_VERSIONS`.
    """
    try:
        import langchain_core
    except ImportError as error:
        raise LangChainVersionError(None, SUPPORTED_VERSIONS) from error
    version = str(getattr(langchain_core, "__version__", "0"))
    if not _LOWEST <= _version_tuple(version) < _BEYOND:
        raise LangChainVersionError(version, SUPPORTED_VERSIONS)
    import langchain_core.tracers.log_stream as source

    return source


def _langchain_modules() -> list[tuple[str, ModuleType]]:
    """Return the loaded ``langchain_core`` modules, by name."""
    return [
        (name, module)
        for name, module in list(sys.modules.items())
        if (name == "langchain_core" or name.startswith("langchain_core."))
        and isinstance(module, ModuleType)
    ]


def _swap(replace: dict[int, Any]) -> list[str]:
    """Set every module attribute that is a key's object (by id) to its value; say where."""
    changed = []
    for name, module in _langchain_modules():
        namespace = module.__dict__
        hit = False
        for attr in _NAMES:
            value = namespace.get(attr)
            if value is not None and id(value) in replace:
                namespace[attr] = replace[id(value)]
                hit = True
        if hit:
            changed.append(name)
    return sorted(changed)


def install() -> Installation:
    """Make LangChain's ``astream_log`` and ``astream_events`` v1 run on logstream's classes.

    Swaps ``LogStreamCallbackHandler``, ``RunLog`` and ``RunLogPatch`` in every loaded
    ``langchain_core`` module that holds LangChain's by name. Calling it again while
    installed changes nothing. Code that took LangChain's classes by name before the call
    (``from langchain_core.tracers.log_stream import RunLog`` in the app) keeps them.

    Returns:
        An :class:`Installation`; ``with install(): ...`` uninstalls at the end if this
        call installed.

    Raises:
        LangChainVersionError: langchain-core is not installed or outside
            :data:`SUPPORTED_VERSIONS` (an ``ImportError``); nothing was changed.
    """
    global _originals
    with _lock:
        if _originals is not None:
            return Installation(False, [])
        source = _check_version()
        originals = {name: getattr(source, name) for name in _NAMES}
        modules = _swap({id(originals[name]): _OURS[name] for name in _NAMES})
        _originals = originals
        return Installation(True, modules)


def uninstall() -> bool:
    """Put LangChain's classes back wherever :func:`install` (or a later import) put ours.

    Returns:
        ``True`` if logstream was installed, ``False`` if there was nothing to undo.
    """
    global _originals
    with _lock:
        if _originals is None:
            return False
        _swap({id(_OURS[name]): _originals[name] for name in _NAMES})
        _originals = None
        return True


def installed() -> bool:
    """Return whether :func:`install` is in effect."""
    return _originals is not None
