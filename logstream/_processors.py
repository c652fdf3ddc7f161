"""Run processors: the supported hook that sees every run, as a frozen record.

A processor is any object with ``on_start(run)`` and ``on_end(run)`` methods, each taking a
:class:`~logstream._model.RunRecord`: an immutable snapshot of the run (id, parent id,
ancestry, name, type, tags, metadata, inputs, outputs, error, times, token count), with
every value already redacted. It may also have the optional hooks ``on_token(run_id,
token, chunk)``, ``on_chunk(run_id, chunk)``, ``on_event(run_id, event)`` and
``on_close()``; a hook a processor does not define costs nothing. Register processors on
a :class:`~logstream.Tracer`, the callback handler or :func:`~logstream.stream_log` /
:func:`~logstream.astream_log` with ``processors=[...]``.

The contract (OpenTelemetry's span processors are the model):

- Hooks are called **with the tracer's lock released**, after the event's patch is
  queued, **in the order the events happened** on that tracer, one at a time (never two
  hooks of one tracer at once). A hook may call the tracer (start a run, say): that
  event's hooks run after the current hook returns.
- A hook **must not block for long**: the thread that reported an event runs the hooks
  waiting at that moment, so a slow hook slows the host program (hand slow work to a
  queue of your own, as OpenTelemetry's batch processor does).
- A hook **should not raise**; if it does, the error is logged (the first time for each
  processor and hook at warning level, with the traceback; later ones at debug level) and
  counted, and tracing, the host program and the patch stream go on unchanged. A
  ``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``, a task's
  cancellation) is counted too, the other waiting hooks still run, and then it is raised
  in the thread that ran them: an interrupt is not swallowed.
- The record's ``metadata`` is read-only; its ``inputs`` and ``outputs`` (and the values
  inside metadata) are the values the tracer recorded, shared with the run: treat them as
  read-only, and copy what you keep (``copy.deepcopy``) if you change it.
- ``on_close`` is called once, when the tracer's stream closes, after every other hook.

Example:
    >>> from logstream import Tracer
    >>> class Names:
    ...     def __init__(self) -> None:
    ...         self.ended: list[str] = []
    ...     def on_start(self, run): pass
    ...     def on_end(self, run):
    ...         self.ended.append(f"{run.name}:{run.status}")
    >>> names = Names()
    >>> tracer = Tracer(processors=[names])
    >>> root = tracer.start_run("agent")
    >>> tool = tracer.start_run("search", "tool", parent_id=root.id)
    >>> _ = tracer.end_run(tool.id, outputs={"output": 42})
    >>> _ = tracer.end_run(root.id, outputs={"output": "done"})
    >>> names.ended
    ['search:success', 'agent:success']
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Iterable
from typing import Any, Callable, Optional
from uuid import UUID

from typing_extensions import Protocol, runtime_checkable

from ._errors import ConfigError
from ._model import RunEvent, RunRecord

__all__ = ["ProcessorStats", "RunProcessor"]

logger = logging.getLogger(__name__)


@runtime_checkable
class RunProcessor(Protocol):
    """What a run processor must have; see the module's contract.

    Optional hooks, looked up once when the processor is registered: ``on_token(run_id,
    token, chunk)``, ``on_chunk(run_id, chunk)``, ``on_event(run_id, event)`` (a retry
    or custom event, as a :class:`~logstream._model.RunEvent`) and ``on_close()``.
    """

    def on_start(self, run: RunRecord) -> None:
        """Called once a run has started (its entry, if any, is queued)."""

    def on_end(self, run: RunRecord) -> None:
        """Called once a run has ended or failed (``run.error`` says which)."""


def check_processors(processors: Iterable[Any]) -> tuple[RunProcessor, ...]:
    """Return ``processors`` as a tuple, checking each has ``on_start`` and ``on_end``.

    Raises:
        ConfigError: ``processors`` is not a collection, or an item lacks a hook.
    """
    if isinstance(processors, (str, bytes)) or not isinstance(processors, Iterable):
        msg = f"processors must be a sequence of run processors, got {processors!r}"
        raise ConfigError(msg)
    checked = tuple(processors)
    for processor in checked:
        missing = [
            hook for hook in ("on_start", "on_end") if not callable(getattr(processor, hook, None))
        ]
        if missing:
            msg = (
                f"run processor {processor!r} has no {' or '.join(missing)} method: a processor "
                "needs on_start(run) and on_end(run) (see logstream._processors)"
            )
            raise ConfigError(msg)
    return checked


class ProcessorStats:
    """How many hook calls a tracer's processors failed, by processor and hook.

    Attributes:
        failures: ``{(processor's class and id, hook name): count}``; a copy, read at
            one moment.
    """

    __slots__ = ("_failures", "_lock")

    def __init__(self) -> None:
        """Start with no failures."""
        self._failures: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def count(self, key: tuple[str, str]) -> int:
        """Count one more failure of ``key``; return how many it has had."""
        with self._lock:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            return count

    @property
    def failures(self) -> dict[tuple[str, str], int]:
        """The failures so far, by ``(processor, hook)``."""
        with self._lock:
            return dict(self._failures)

    @property
    def total(self) -> int:
        """All failed hook calls."""
        with self._lock:
            return sum(self._failures.values())


def _describe(processor: Any) -> str:
    """Name a processor without calling its own ``__repr__`` (which may raise)."""
    return object.__repr__(processor)


_Call = tuple[Callable[..., Any], tuple[Any, ...], Any, str]  # hook, args, processor, name


class ProcessorDispatch:
    """Calls the processors of one tracer in event order, isolated, outside its lock.

    The tracer adds calls with :meth:`add_start` (and the others) while it holds its own
    lock, and calls :meth:`run` after releasing it. Calls wait in a FIFO; whichever thread
    finds no other thread running them runs them all, so they run one at a time, in order.
    A hook that raises an ``Exception`` is logged and counted; one that raises a
    ``BaseException`` (``KeyboardInterrupt``, a cancellation) does not stop the others:
    they all run, then the first such exception is raised to the thread running them.

    Args:
        processors: The processors, already checked.
    """

    __slots__ = (
        "_chunk",
        "_close",
        "_end",
        "_event",
        "_mutex",
        "_pending",
        "_running",
        "_start",
        "_token",
        "stats",
    )

    def __init__(self, processors: tuple[RunProcessor, ...]) -> None:
        """Find each processor's hooks once."""
        self._start = self._hooks(processors, "on_start")
        self._end = self._hooks(processors, "on_end")
        self._token = self._hooks(processors, "on_token")
        self._chunk = self._hooks(processors, "on_chunk")
        self._event = self._hooks(processors, "on_event")
        self._close = self._hooks(processors, "on_close")
        # Calls are added under the tracer's lock with deque.append, which is atomic (the
        # deque locks itself in free-threaded CPython too) and never waits for a hook.
        # Whether a thread is running the calls is decided under _mutex, and the runner
        # looks at the FIFO once more under it before it stops: a call added before a
        # thread found the runner busy is always seen (the mutex orders the two).
        self._pending: deque[_Call] = deque()
        self._mutex = threading.Lock()
        self._running = False
        self.stats = ProcessorStats()

    @staticmethod
    def _hooks(processors: tuple[RunProcessor, ...], name: str) -> tuple[tuple[Any, Any], ...]:
        found = []
        for processor in processors:
            hook = getattr(processor, name, None)
            if callable(hook):
                found.append((processor, hook))
        return tuple(found)

    @property
    def wants_tokens(self) -> bool:
        """Whether any processor has ``on_token``."""
        return bool(self._token)

    @property
    def wants_chunks(self) -> bool:
        """Whether any processor has ``on_chunk``."""
        return bool(self._chunk)

    def _add(self, hooks: tuple[tuple[Any, Any], ...], name: str, *args: Any) -> None:
        pending = self._pending
        for processor, hook in hooks:
            pending.append((hook, args, processor, name))

    def add_start(self, record: RunRecord) -> None:
        """Queue the ``on_start`` calls for a run that started."""
        self._add(self._start, "on_start", record)

    def add_end(self, record: RunRecord) -> None:
        """Queue the ``on_end`` calls for a run that ended."""
        self._add(self._end, "on_end", record)

    def add_token(self, run_id: UUID, token: Any, chunk: Any) -> None:
        """Queue the ``on_token`` calls for a token."""
        self._add(self._token, "on_token", run_id, token, chunk)

    def add_chunk(self, run_id: UUID, chunk: Any) -> None:
        """Queue the ``on_chunk`` calls for an output chunk."""
        self._add(self._chunk, "on_chunk", run_id, chunk)

    def add_event(self, run_id: UUID, event: RunEvent) -> None:
        """Queue the ``on_event`` calls for a retry or custom event."""
        self._add(self._event, "on_event", run_id, event)

    def add_close(self) -> None:
        """Queue the ``on_close`` calls (once; the tracer calls it on close)."""
        self._add(self._close, "on_close")

    def run(self) -> None:
        """Run the waiting calls, unless another thread is running them (it runs ours too).

        Raises:
            BaseException: The first non-``Exception`` a hook raised, after every waiting
                call has run.
        """
        if not self._pending:  # nothing queued (a token no hook wants): nothing to run
            return
        with self._mutex:
            if self._running:
                return
            self._running = True
        pending = self._pending
        interrupt: Optional[BaseException] = None
        while True:
            try:
                call = pending.popleft()
            except IndexError:
                with self._mutex:
                    try:  # once more, while no thread can decide to leave its calls to us
                        call = pending.popleft()
                    except IndexError:
                        self._running = False
                        break
            raised = self._call(*call)
            if raised is not None and interrupt is None:
                interrupt = raised
        if interrupt is not None:
            raise interrupt

    def _call(
        self, hook: Callable[..., Any], args: tuple[Any, ...], processor: Any, name: str
    ) -> Optional[BaseException]:
        try:
            hook(*args)
        except Exception:
            who = _describe(processor)
            if self.stats.count((who, name)) == 1:
                logger.warning(
                    "run processor %s failed in %s; tracing goes on (later failures of this "
                    "hook are logged at debug level)",
                    who,
                    name,
                    exc_info=True,
                )
            else:
                logger.debug("run processor %s failed in %s again", who, name, exc_info=True)
        except BaseException as exc:  # an interrupt or cancellation: the others run first
            self.stats.count((_describe(processor), name))
            return exc
        return None
