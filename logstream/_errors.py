"""The exceptions logstream raises: one base class, three groups by who is at fault.

- :class:`ConfigError`: the caller configured something wrong (an unknown option, a
  bare string for a list of tags, a negative timeout, a redactor's pattern that does not
  compile, a ``dumps`` or ``read_jsonl`` limit out of range). Raised when the tracer,
  handler, sink, redactor or option is made, before anything runs. Each is also a
  ``TypeError`` and a ``ValueError``, so code that caught either before keeps working.
- :class:`UsageError`: the caller reported events that do not fit the runs (an end for a
  run that is not open, a second start of an open id, a token for a chain run) or used
  an object in the wrong state (a sink after its end) or gave something that is not a
  patch where a patch goes. Each also subclasses the builtin a LangChain caller catches
  (``KeyError``, ``ValueError``, ``TypeError``, ``RuntimeError``).
- :class:`DataError`: data from outside is malformed (a recorded run log, a patch that
  does not apply). Also a ``ValueError``; :class:`PatchApplyError` is also jsonpatch's
  and jsonpointer's base exception, with theirs as its ``__cause__``.

:class:`BufferFullError` is none of these: a consumer that reads too slowly for a bounded
stream. Every message names the run, the event and the state involved, so a failure in a
log reads like ``"can't handle token for run 1b4e...: the run already ended"``.
"""

from __future__ import annotations

from typing import Any, Optional

import jsonpatch
import jsonpointer

__all__ = [
    "BufferFullError",
    "ConfigError",
    "ContextLostError",
    "DataError",
    "DuplicateRunError",
    "EntryFieldsError",
    "FilterConfigError",
    "ForeignResumeIdError",
    "FutureResumeIdError",
    "LangChainVersionError",
    "LogFileError",
    "LogMismatchError",
    "LogStreamError",
    "MalformedResumeIdError",
    "NotAPatchError",
    "PatchApplyError",
    "ReadOptionError",
    "RedactionConfigError",
    "RedisUnavailableError",
    "ResumeError",
    "RunArgumentError",
    "RunTypeError",
    "SchemaFormatError",
    "ScopeError",
    "SerializeOptionError",
    "SinkClosedError",
    "SinkTargetError",
    "StaleResumeIdError",
    "StreamConflictError",
    "SubscriberLagError",
    "UnknownRunError",
    "UsageError",
]


class LogStreamError(Exception):
    """Base class of every error logstream raises on purpose."""


class ConfigError(LogStreamError, TypeError, ValueError):
    """An option, argument or setting is of the wrong type, unknown, or out of range."""


class UsageError(LogStreamError):
    """Events or calls that do not fit the state they arrive in (the caller's mistake)."""


class DataError(LogStreamError, ValueError):
    """Data from outside (a recorded log, a patch) is malformed or does not apply."""


class UnknownRunError(UsageError, KeyError):
    """An event names a run id that is not open (never started, or already finished).

    Attributes:
        run_id: The id the event named.
        event: The event that named it, e.g. ``"end"`` or ``"token"``.
        state: ``"ended"``, ``"failed"`` or ``"unknown"``.
    """

    def __init__(self, run_id: Any, event: str, state: str = "unknown") -> None:
        """Build the error for ``event`` naming the unknown ``run_id``.

        Args:
            run_id: The id the event named.
            event: The event that named it.
            state: What is known of the id: ``"ended"`` or ``"failed"`` for a run that
                finished recently, ``"unknown"`` for one never started (or long gone).
        """
        self.run_id = run_id
        self.event = event
        self.state = state
        if state == "unknown":
            why = "no run with this id is open (it was never started, or ended long ago)"
        else:
            why = f"the run already {state}"
        super().__init__(f"can't handle {event} for run {run_id}: {why}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.run_id, self.event, self.state))

    def __str__(self) -> str:
        """Return the message (``KeyError`` would otherwise quote it)."""
        return str(self.args[0])


class DuplicateRunError(UsageError, ValueError):
    """A run was started with an id that is already open.

    Attributes:
        run_id: The id that was started twice.
    """

    def __init__(self, run_id: Any, name: str, run_type: str) -> None:
        """Build the error for a second start of ``run_id``.

        Args:
            run_id: The id that was started twice.
            name: The name of the run that holds the id.
            run_type: The run type of the run that holds the id.
        """
        self.run_id = run_id
        self.name = name
        self.run_type = run_type
        msg = (
            f"can't handle start for run {run_id}: "
            f"a {run_type} run {name!r} with this id is already open"
        )
        super().__init__(msg)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.run_id, self.name, self.run_type))


class RunTypeError(UsageError, TypeError):
    """An event is not allowed for the run's type, e.g. a token for a chain run.

    Attributes:
        run_id: The id the event named.
        event: The event.
        run_type: The type the run actually has.
    """

    def __init__(self, run_id: Any, event: str, run_type: str, expected: str) -> None:
        """Build the error for ``event`` on a run of the wrong type.

        Args:
            run_id: The id the event named.
            event: The event.
            run_type: The type the run actually has.
            expected: A description of the types the event needs.
        """
        self.run_id = run_id
        self.event = event
        self.run_type = run_type
        self.expected = expected
        msg = f"can't handle {event} for run {run_id}: it is a {run_type} run, expected {expected}"
        super().__init__(msg)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.run_id, self.event, self.run_type, self.expected))


class RunArgumentError(UsageError, TypeError, ValueError):
    """A run was started with an argument of the wrong kind; nothing was started.

    ``tags`` that are a bare string (``"abc"`` would be three tags) or hold a non-string,
    a ``name`` or ``run_type`` that is not a string, an id that cannot be hashed. It is a
    ``TypeError`` (what it is) and a ``ValueError`` (what LangChain's handler raises for
    such tags: pydantic's ``ValidationError``), so either ``except`` catches it.

    Attributes:
        run_id: The id the start named.
        event: The event, e.g. ``"chain start"``.
        argument: Which argument is wrong: ``"tags"``, ``"name"``, ``"run_type"`` or
            ``"run_id"``.
    """

    def __init__(self, message: str, run_id: Any, event: str, argument: str) -> None:
        """Build the error; ``message`` says which run, which argument and the fix.

        Args:
            message: The whole message.
            run_id: The id the start named.
            event: The event.
            argument: Which argument is wrong.
        """
        self.run_id = run_id
        self.event = event
        self.argument = argument
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.args[0], self.run_id, self.event, self.argument))


class ScopeError(UsageError, RuntimeError, ValueError):
    """A ``trace`` scope used in a way that cannot work.

    Entered a second time (make a new ``trace()`` per run; a ``RuntimeError``, as
    before), or given a ``parent`` recorded on another tracer than ``tracer`` (a
    ``ValueError``, as before).
    """


class ContextLostError(UsageError, RuntimeError):
    """A traced run opened with no tracer in reach while other traced runs are open.

    Raised only in strict mode (:func:`logstream.set_strict_context`, or the environment
    variable ``LOGSTREAM_STRICT_CONTEXT=1``); otherwise such a run is counted
    (:func:`logstream.orphan_runs`) and logged once per site. The usual cause is a thread
    or executor that does not carry the caller's context; the message says the fix.
    """


class SchemaFormatError(ConfigError):
    """An unknown ``_schema_format`` was given (``ValueError``, as LangChain raises)."""


class FilterConfigError(ConfigError):
    """An include/exclude rule is not a collection of strings (e.g. a bare ``str``)."""


class EntryFieldsError(ConfigError):
    """``entry_fields`` is not a collection of known field names.

    A bare string where a collection goes (``entry_fields="error"``), or a name other
    than ``"parent_ids"`` and ``"error"``. A ``TypeError`` and a ``ValueError``.
    """


class RedactionConfigError(ConfigError):
    """A :class:`~logstream.SecretRedactor` was given bad keys, patterns or mask.

    A bare string where a collection goes, a key with no letters or digits, a pattern
    that does not compile, a mask that is not a string. A ``ValueError`` (as before) and
    a ``TypeError``.
    """


class SerializeOptionError(ConfigError):
    """An option of :func:`~logstream.dumps` has a wrong type or value (``max_depth=-1``).

    A ``ValueError`` (as before) and a ``TypeError``.
    """


class ReadOptionError(ConfigError):
    """An option of ``read_jsonl`` or ``follow_jsonl`` has a wrong type or value.

    A ``ValueError`` (as before) and a ``TypeError``.
    """


class SinkTargetError(ConfigError):
    """A sink was given a target that is neither a file name nor an open stream.

    A ``TypeError`` (as before) and a ``ValueError``.
    """


class SinkClosedError(UsageError, ValueError):
    """A patch or end record was written to a sink that has already ended or closed."""


class LogMismatchError(UsageError, ValueError):
    """A :class:`~logstream.RunLog` given to a recorder does not extend what it recorded.

    A ``RunLog`` (what ``stream_log(..., diff=False)`` yields) holds every op so far, so
    its ops must start with those already recorded: one recorder per stream.
    """


class PatchApplyError(
    DataError,
    TypeError,
    jsonpatch.JsonPatchException,
    jsonpointer.JsonPointerException,
):
    """A patch's ops do not apply to the run log's state; the log is unchanged.

    jsonpatch's own error (a ``JsonPatchConflict``, ``JsonPatchTestFailed``,
    ``InvalidJsonPatch``, jsonpointer's ``JsonPointerException``, or the ``TypeError``
    older jsonpatch releases raise for some ops) is the ``__cause__``. This is also a
    ``jsonpatch.JsonPatchException``, a ``jsonpointer.JsonPointerException`` and a
    ``TypeError``, so code that caught any of them keeps working (code that caught one
    of jsonpatch's subclasses should catch this, or look at the cause).

    Attributes:
        index: The 1-based place of the op that failed among the ops being applied, or
            ``None`` if it could not be told.
        op: That op, or ``None``.
    """

    def __init__(self, message: str, index: Optional[int] = None, op: Any = None) -> None:
        """Build the error; ``message`` says what failed, where and the fix.

        Args:
            message: The whole message.
            index: The 1-based place of the op that failed, if known.
            op: The op that failed, if known.
        """
        self.index = index
        self.op = op
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.args[0], self.index, self.op))


class BufferFullError(LogStreamError):
    """A patch could not be queued: the stream's buffer is at its limit.

    Raised under the policy ``when_full="raise"`` at once, and under ``"block"`` when
    ``block_timeout`` passed without the consumer making room. The event it came from was
    rejected whole: nothing of it was recorded, and later events still apply.

    Attributes:
        max_buffer: The buffer's limit, in patches.
        when_full: The policy: ``"raise"`` or ``"block"``.
        event: The event whose patch could not be queued, e.g. ``"token"``.
        run_id: The run the event named, or ``None`` (e.g. for ``send``).
        timeout: How long a ``"block"`` put waited, in seconds, else ``None``.
    """

    def __init__(
        self,
        max_buffer: Any,
        when_full: str,
        event: str,
        run_id: Any = None,
        timeout: Any = None,
    ) -> None:
        """Build the error for ``event`` of ``run_id`` meeting a full buffer.

        Args:
            max_buffer: The buffer's limit, in patches.
            when_full: The policy: ``"raise"`` or ``"block"``.
            event: The event whose patch could not be queued.
            run_id: The run the event named, if any.
            timeout: How long a ``"block"`` put waited, in seconds.
        """
        self.max_buffer = max_buffer
        self.when_full = when_full
        self.event = event
        self.run_id = run_id
        self.timeout = timeout
        what = f"{event} for run {run_id}" if run_id is not None else event
        unit = "patch" if max_buffer == 1 else "patches"
        if timeout is None:
            why = f"the buffer holds its limit of {max_buffer} {unit}"
            policy = f"when_full={when_full!r}"
        else:
            why = f"the buffer stayed at its limit of {max_buffer} {unit} for {timeout}s"
            policy = f"when_full={when_full!r}, block_timeout={timeout}"
        super().__init__(f"can't queue the patch of {what}: {why} ({policy})")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (
            type(self),
            (self.max_buffer, self.when_full, self.event, self.run_id, self.timeout),
        )


class LogFileError(DataError):
    """A recorded run log (JSON Lines) is malformed, truncated or does not apply.

    The file is untrusted data, so this is the only error reading it raises, and its
    message is one line: ``"run.jsonl:3: not valid JSON: Expecting ',' delimiter (column
    17)"``.

    Attributes:
        source: The file's name, or ``"<stream>"`` for a stream without one.
        line: The 1-based line the problem is on; one past the last line when the file
            ends too early.
        reason: What is wrong, without the location.
    """

    def __init__(self, source: str, line: int, reason: str) -> None:
        """Build the error for ``reason`` at ``line`` of ``source``.

        Args:
            source: The file's name, or ``"<stream>"``.
            line: The 1-based line number.
            reason: What is wrong there.
        """
        self.source = source
        self.line = line
        self.reason = reason
        super().__init__(f"{source}:{line}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.source, self.line, self.reason))


class NotAPatchError(UsageError, TypeError):
    """Something that is not a patch was given where a patch goes.

    It has no list of ``ops``, it is a whole log (``RunLog``: every op so far) rather
    than a patch, or one of its ops has the wrong shape.

    Attributes:
        value: What was given.
        event: Where it was given, e.g. ``"send"``, ``"RunLog +"`` or ``"sink write"``.
    """

    def __init__(self, value: Any, event: str, message: Optional[str] = None) -> None:
        """Build the error for ``value`` given to ``event``.

        Args:
            value: What was given.
            event: Where it was given.
            message: The whole message, when there is more to say than that ``value``
                has no list of ops.
        """
        self.value = value
        self.event = event
        if message is None:
            message = (
                f"can't handle {event} of a {type(value).__name__}: it is not a patch "
                "(no list of ops in .ops); pass a RunLogPatch(*ops)"
            )
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.value, self.event, self.args[0]))


class LangChainVersionError(ConfigError, ImportError):
    """``logstream.langchain.install()`` found no langchain-core, or one it does not support.

    Attributes:
        found: The installed langchain-core version, or ``None`` if it is not installed.
        supported: The supported version range, e.g. ``">=1.0,<1.8"``.
    """

    def __init__(self, found: Any, supported: str) -> None:
        """Build the error for langchain-core ``found`` outside ``supported``.

        Args:
            found: The installed version, or ``None``.
            supported: The supported range.
        """
        self.found = found
        self.supported = supported
        if found is None:
            why = "langchain-core is not installed"
            fix = f"pip install 'langchain-core{supported}'"
        else:
            why = f"langchain-core {found} is installed, outside the supported {supported}"
            fix = f"pip install 'langchain-core{supported}', or leave logstream uninstalled"
        super().__init__(f"can't install logstream into LangChain: {why}; {fix}")

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.found, self.supported))


class ResumeError(DataError):
    """A resume point (an SSE ``Last-Event-ID``, or a position) the log cannot resume from.

    The id came from outside (a browser, a client that reconnects), so this is a
    :class:`DataError` (also a ``ValueError``). The subclasses say why; the ASGI app sends
    each as an ``event: error`` frame and ends the response, never a silent gap.

    Attributes:
        log_id: The id of the log asked to resume.
        resume_id: The resume id as given (text), or ``None`` for a bare position.
        position: The position it names, or ``None`` if it names none.
        latest: The log's latest position when it was checked, or ``None``.
    """

    def __init__(
        self,
        message: str,
        log_id: str,
        resume_id: Optional[str] = None,
        position: Optional[int] = None,
        latest: Optional[int] = None,
    ) -> None:
        """Build the error; ``message`` says which log, which id and what to do.

        Args:
            message: The whole message.
            log_id: The id of the log asked to resume.
            resume_id: The resume id as given, if any.
            position: The position it names, if any.
            latest: The log's latest position, if known.
        """
        self.log_id = log_id
        self.resume_id = resume_id
        self.position = position
        self.latest = latest
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (
            type(self),
            (self.args[0], self.log_id, self.resume_id, self.position, self.latest),
        )


class MalformedResumeIdError(ResumeError):
    """A resume id is not ``<log_id>:<position>`` (or the position is not an int >= 0)."""


class ForeignResumeIdError(ResumeError):
    """A resume id names another log (another run, or the same run's earlier life)."""


class FutureResumeIdError(ResumeError):
    """A resume id names a position the log has not reached."""


class StaleResumeIdError(ResumeError):
    """The patches after a resume position are gone, and no snapshot can stand in for them.

    Raised only by a source that cannot give a snapshot covering the position (an
    in-process log always can; a Redis stream trimmed past its last snapshot cannot).
    """


class SubscriberLagError(LogStreamError):
    """A subscriber fell more than its bound behind the log, under ``on_lag="error"``.

    Like :class:`BufferFullError`, the fault is a consumer that reads too slowly; only
    that subscriber ends, the producer and the other subscribers go on. Resume it from its
    last position (or take a snapshot) to continue.

    Attributes:
        log_id: The log's id.
        position: The position of the last frame the subscriber received.
        latest: The log's latest position when it fell behind.
        max_lag: The subscriber's bound, in frames, or ``None`` when it had none and the
            patches after its position were compacted away (``max_history``).
    """

    def __init__(self, log_id: str, position: int, latest: int, max_lag: Optional[int]) -> None:
        """Build the error for the subscriber of ``log_id`` stuck at ``position``.

        Args:
            log_id: The log's id.
            position: The last position the subscriber received.
            latest: The log's latest position.
            max_lag: The subscriber's bound, or ``None``.
        """
        self.log_id = log_id
        self.position = position
        self.latest = latest
        self.max_lag = max_lag
        if max_lag is None:
            why = "the patches after it were compacted"
        else:
            unit = "frame" if max_lag == 1 else "frames"
            why = f"past its bound of {max_lag} {unit}"
        msg = (
            f"can't keep the subscriber of log {log_id} going: it is at position "
            f"{position} while the log is at {latest}, {why} (on_lag='error'); "
            f"resume from position {position} or subscribe again"
        )
        super().__init__(msg)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.log_id, self.position, self.latest, self.max_lag))


class RedisUnavailableError(LogStreamError, ConnectionError):
    """The Redis server behind a run log could not be reached (down, restarting, unreachable).

    Raised by :mod:`logstream.redis`: by a sink when its queued patches could not be
    appended for ``retry_for`` seconds (they stay queued, in order: call ``flush()`` again
    once the server is back and nothing is lost or written twice), and by a source when a
    read failed (resume it from :attr:`position`). Also a ``ConnectionError``.

    Attributes:
        stream: The Redis key of the log's stream.
        position: The last position the sink had appended (acknowledged by the server), or
            the last position the source handed out.
        role: ``"sink"`` or ``"source"``.
        pending: How many patches the sink still holds (0 for a source).
    """

    def __init__(self, stream: str, position: int, role: str, pending: int = 0) -> None:
        """Build the error for ``stream`` at ``position``.

        Args:
            stream: The Redis key of the log's stream.
            position: The last position appended (sink) or handed out (source).
            role: ``"sink"`` or ``"source"``.
            pending: How many patches the sink still holds.
        """
        self.stream = stream
        self.position = position
        self.role = role
        self.pending = pending
        if role == "sink":
            unit = "patch" if pending == 1 else "patches"
            msg = (
                f"can't append to Redis stream {stream}: the server is unreachable; "
                f"position {position} is the last it acknowledged, {pending} {unit} stay "
                "queued in order: call flush() again once the server is back"
            )
        else:
            msg = (
                f"can't read Redis stream {stream}: the server is unreachable after "
                f"position {position}; resume from position {position} once it is back"
            )
        super().__init__(msg)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.stream, self.position, self.role, self.pending))


class StreamConflictError(UsageError, ValueError):
    """A Redis stream does not continue where this sink left it.

    Another producer wrote to it, it already ended, or the server lost appended patches
    (a restart without persistence). Nothing more is appended by the sink; each run
    needs a log id (stream) of its own.

    Attributes:
        stream: The Redis key of the stream.
        position: The last position this sink appended.
        found: The stream's last position on the server.
    """

    def __init__(self, stream: str, position: int, found: int, reason: str) -> None:
        """Build the error for ``stream``.

        Args:
            stream: The Redis key of the stream.
            position: The last position this sink appended.
            found: The stream's last position on the server.
            reason: What was found, e.g. ``"another producer owns it"``.
        """
        self.stream = stream
        self.position = position
        self.found = found
        self.reason = reason
        msg = (
            f"can't append to Redis stream {stream} after position {position}: {reason} "
            f"(the server has it at position {found}); give each run its own log id"
        )
        super().__init__(msg)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by the constructor's arguments (e.g. across a process pool)."""
        return (type(self), (self.stream, self.position, self.found, self.reason))
