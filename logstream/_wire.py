"""The run log on the wire: positioned frames, resume ids, and the source protocol.

This module's one responsibility is the contract every served log keeps, in-process
(:class:`~logstream._fanout.PositionedLog`) or across processes (the Redis source): what a
frame is, how a position is named on the wire, how a resume point is checked, and the
:class:`LogSource` protocol the ASGI app serves from. It does no I/O.

Positions. Every patch of a log gets a position: 1, 2, 3... in the order the log took
them. Position 0 is the empty state before any patch (state ``None``). A *snapshot* at
position ``p`` is the state after patch ``p``, as one op, ``{"op": "replace", "path": "",
"value": state}``, so applying it to anything, then the patches ``p+1, p+2, ...``, builds
exactly the state the whole history builds.

Log ids. Each log has a ``log_id``: text of 1 to 200 characters from ``[A-Za-z0-9._-]``,
unique per run (a fresh ``uuid4().hex`` unless the producer names it). A restarted run
gets a new id, so a resume id from an earlier life is told apart (foreign), never
silently taken for a position of the new one.

The SSE id of a frame is ``<log_id>:<position>`` (:func:`format_event_id`,
:func:`parse_event_id`). The frames a served log sends (the encoders are in
:mod:`logstream._sinks`):

====================  ===========================================================
frame                 meaning
====================  ===========================================================
``event: data``       one patch, or a snapshot (one ``replace`` at ``""``);
``id: L:P``           ``data: {"ops": [...]}``; ``id`` names its position
``data: {...}``
``event: end``        the log ended after ``P`` patches; ``data: {"patches": P,
``id: L:P``           "error": null}`` or ``"error": "ValueError: boom"``
``event: error``      the request cannot be served (a resume id that is foreign,
                      from the future, stale or malformed; the source failed);
                      ``data: {"error": "ForeignResumeIdError", "message": ...,
                      "log_id": ..., "position": ..., "latest": ...}``; no ``id``
``: keep-alive``      a comment, sent when no frame came for a while
====================  ===========================================================

Example:
    >>> format_event_id("run1", 42)
    'run1:42'
    >>> parse_event_id("run1:42")
    ('run1', 42)
    >>> resume_position("run1", "run1:3", latest=5)
    3
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from typing import Any, NamedTuple, Optional, Union

from typing_extensions import Protocol, runtime_checkable

from ._errors import (
    ForeignResumeIdError,
    FutureResumeIdError,
    MalformedResumeIdError,
)
from ._patches import JsonPatchOp

__all__ = [
    "Frame",
    "LogEnd",
    "LogSource",
    "WireItem",
    "check_log_id",
    "check_not_future",
    "error_payload",
    "format_event_id",
    "resume_position",
    "snapshot_ops",
]

_LOG_ID = re.compile(r"[A-Za-z0-9._-]{1,200}").fullmatch
_POSITION = re.compile(r"0|[1-9][0-9]{0,17}").fullmatch


class Frame(NamedTuple):
    """One patch of a log, or a snapshot of its state, with its position.

    Frames are handed to every subscriber as they are: treat ``ops`` (and the values in
    them) as read-only.

    Attributes:
        log_id: The log's id.
        position: The patch's position (1, 2, 3...); for a snapshot, the position of the
            last patch it includes (0: the empty state, ``None``, before any patch).
        ops: The patch's ops; for a snapshot exactly ``[{"op": "replace", "path": "",
            "value": state}]``.
        snapshot: Whether this frame is a snapshot.
    """

    log_id: str
    position: int
    ops: list[JsonPatchOp]
    snapshot: bool


class LogEnd(NamedTuple):
    """The end of a log: the last item a subscriber gets.

    Attributes:
        log_id: The log's id.
        position: The position of the log's last patch (how many patches it has).
        error: ``None`` if the traced code finished, else what it raised, as
            ``"Type: message"``.
    """

    log_id: str
    position: int
    error: Optional[str]


WireItem = Union[Frame, LogEnd, None]
"""What :meth:`LogSource.frames` yields: a frame, the end (last), or ``None`` (a
heartbeat: nothing came for ``timeout`` seconds; a server sends a keep-alive comment)."""


@runtime_checkable
class LogSource(Protocol):
    """A positioned run log that can be read from any position, live: what the app serves.

    Implemented in-process by :class:`~logstream._fanout.PositionedLog` and across
    processes by the Redis source. Every method is safe to call from any thread, any number
    of times at once; each call of :meth:`frames` / :meth:`aframes` is an independent
    subscriber with its own cursor.

    **The subscription contract** (``frames`` and ``aframes`` alike, ``after`` first):

    - ``after=None``, ``snapshot_first=True``: one snapshot of the state now (position
      ``p``), then every patch after ``p``.
    - ``after=None``, ``snapshot_first=False``: the whole history, patches ``1, 2, ...``
      (the same as ``after=0``).
    - ``after=k`` (a resume: ``k`` is the position of the last frame the client applied):
      the patches ``k+1, k+2, ...``. If some of them were compacted away, a snapshot at a
      position ``>= k`` replaces them, then the patches after it (``snapshot_first`` is
      not used). ``after`` equal to the latest position gives only what comes next.
    - Then live frames as the producer appends them, in order, none lost or repeated
      (positions strictly increase by 1 after the first frame), until the log ends: then
      one :class:`LogEnd` and the iterator stops. A log that already ended gives what is
      asked, then its ``LogEnd`` at once.
    - ``timeout`` (seconds, ``None``: wait as long as it takes): when no item comes for
      that long, a ``None`` is yielded (a heartbeat) and waiting goes on. A Redis source
      maps it onto ``XREAD BLOCK``.
    - The iterator may stop early only by raising: a :class:`~logstream.ResumeError`
      before its first frame (raised by the call or by the first ``next``), a
      :class:`~logstream.SubscriberLagError` for a subscriber too far behind under
      ``on_lag="error"`` (in-process), or the source's own :class:`~logstream.LogStreamError`
      when it fails (a lost connection). Closing it (``close()`` / ``aclose()``, a
      ``break``, a cancelled task) frees what it holds at once.

    Resume errors: ``after`` beyond the latest position is
    :class:`~logstream.FutureResumeIdError`; negative, :class:`~logstream.MalformedResumeIdError`;
    patches gone with no snapshot to cover them, :class:`~logstream.StaleResumeIdError`.
    A resume *id* (text) is checked against ``log_id`` by :func:`resume_position` first.
    """

    @property
    def log_id(self) -> str:
        """The log's id (see the module docs): unique per run, stable for its life."""
        ...

    def snapshot(self) -> Frame:
        """Return a snapshot of the state now, at the latest position (a fresh copy)."""
        ...

    async def asnapshot(self) -> Frame:
        """Return :meth:`snapshot` without blocking the event loop."""
        ...

    def end_record(self) -> Optional[LogEnd]:
        """Return the log's end if it ended, else ``None`` (it is live)."""
        ...

    async def aend_record(self) -> Optional[LogEnd]:
        """Return :meth:`end_record` without blocking the event loop."""
        ...

    def frames(
        self,
        after: Optional[int] = None,
        *,
        snapshot_first: bool = True,
        timeout: Optional[float] = None,
    ) -> Iterator[WireItem]:
        """Subscribe, blocking: yield frames as the class docs say, then the end.

        Args:
            after: The position to resume after, or ``None`` for a new subscriber.
            snapshot_first: For ``after=None``: start with a snapshot (``True``) or with
                the whole history (``False``).
            timeout: Yield ``None`` after this many seconds without an item.

        Yields:
            Frames, heartbeats (``None``), and last a :class:`LogEnd`.
        """
        ...

    def aframes(
        self,
        after: Optional[int] = None,
        *,
        snapshot_first: bool = True,
        timeout: Optional[float] = None,
    ) -> AsyncIterator[WireItem]:
        """Subscribe in an event loop: the same items as :meth:`frames`, never blocking it.

        Args:
            after: The position to resume after, or ``None`` for a new subscriber.
            snapshot_first: For ``after=None``: start with a snapshot or the history.
            timeout: Yield ``None`` after this many seconds without an item.

        Returns:
            An async iterator (an async generator) of frames, heartbeats, then the end.
        """
        ...


def snapshot_ops(state: Any) -> list[JsonPatchOp]:
    """Return the one op of a snapshot of ``state`` (not copied: pass a copy you own).

    Example:
        >>> snapshot_ops({"logs": {}})
        [{'op': 'replace', 'path': '', 'value': {'logs': {}}}]
    """
    return [{"op": "replace", "path": "", "value": state}]


def check_log_id(log_id: Any) -> str:
    """Return ``log_id`` if it is a valid log id, else raise ``ValueError``.

    Raises:
        ValueError: It is not text of 1 to 200 characters from ``[A-Za-z0-9._-]``
            (a ``ConfigError`` is raised by the callers that take it as an option).
    """
    if not isinstance(log_id, str) or _LOG_ID(log_id) is None:
        msg = f"a log id is 1 to 200 characters from A-Z, a-z, 0-9, '.', '_', '-', got {log_id!r}"
        raise ValueError(msg)
    return log_id


def format_event_id(log_id: str, position: int) -> str:
    """Return the SSE ``id`` of position ``position`` of log ``log_id``."""
    return f"{log_id}:{position}"


def parse_event_id(text: str, log_id: str = "?") -> tuple[str, int]:
    """Split an SSE id ``<log_id>:<position>`` into its log id and position.

    Args:
        text: The id, e.g. a ``Last-Event-ID`` header.
        log_id: The log being resumed, named in the error.

    Returns:
        ``(log_id, position)``.

    Raises:
        MalformedResumeIdError: ``text`` is not of that form.
    """
    name, sep, number = text.partition(":") if isinstance(text, str) else ("", "", "")
    if not sep or _LOG_ID(name) is None or _POSITION(number) is None:
        shown = text[:80] if isinstance(text, str) else type(text).__name__
        msg = (
            f"can't resume log {log_id} from id {shown!r}: a resume id is "
            "'<log_id>:<position>', as the server sent it in 'id:'; reconnect without one"
        )
        raise MalformedResumeIdError(msg, log_id, shown if isinstance(text, str) else None)
    return name, int(number)


def resume_position(log_id: str, text: str, latest: Optional[int] = None) -> int:
    """Check the resume id ``text`` against log ``log_id`` and return its position.

    Args:
        log_id: The log being resumed.
        text: The resume id (``Last-Event-ID``).
        latest: The log's latest position, to refuse a future one; ``None``: not checked.

    Returns:
        The position to pass as ``after``.

    Raises:
        MalformedResumeIdError: ``text`` is not ``<log_id>:<position>``.
        ForeignResumeIdError: It names another log.
        FutureResumeIdError: Its position is beyond ``latest``.
    """
    name, position = parse_event_id(text, log_id)
    if name != log_id:
        msg = (
            f"can't resume log {log_id} from id {text!r}: it was sent by log {name}, "
            "another run or an earlier life of this one; reconnect without Last-Event-ID "
            "to start from a snapshot"
        )
        raise ForeignResumeIdError(msg, log_id, text, position, latest)
    if latest is not None:
        check_not_future(log_id, position, latest, text)
    return position


def check_not_future(
    log_id: str, position: int, latest: int, resume_id: Optional[str] = None
) -> None:
    """Raise :class:`~logstream.FutureResumeIdError` if ``position`` is beyond ``latest``.

    Args:
        log_id: The log being resumed.
        position: The position asked for.
        latest: The log's latest position.
        resume_id: The resume id it came from, if any.

    Raises:
        FutureResumeIdError: ``position > latest``.
        MalformedResumeIdError: ``position`` is negative.
    """
    if position < 0:
        msg = f"can't resume log {log_id} after position {position}: positions start at 0"
        raise MalformedResumeIdError(msg, log_id, resume_id, position, latest)
    if position > latest:
        what = f"id {resume_id!r}" if resume_id is not None else f"position {position}"
        msg = (
            f"can't resume log {log_id} from {what}: the log is at position {latest}, "
            f"so position {position} was never sent; reconnect without Last-Event-ID"
        )
        raise FutureResumeIdError(msg, log_id, resume_id, position, latest)


def error_payload(exc: BaseException, log_id: Optional[str] = None) -> dict[str, Any]:
    """Return the JSON of an ``event: error`` frame for ``exc``.

    Args:
        exc: The error (a :class:`~logstream.ResumeError` carries its log, position and
            latest position).
        log_id: The log, when ``exc`` does not name it.

    Returns:
        ``{"error": class name, "message": str, "log_id", "position", "latest"}``.
    """
    return {
        "error": type(exc).__name__,
        "message": str(exc),
        "log_id": getattr(exc, "log_id", log_id),
        "position": getattr(exc, "position", None),
        "latest": getattr(exc, "latest", None),
    }
