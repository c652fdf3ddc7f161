"""Stream the run log of a plain callable: ``astream_log`` and ``stream_log``.

:func:`astream_log` and :func:`stream_log` run a function, coroutine function,
generator function or async generator function on one input as the root run of a fresh
:class:`~logstream.tracer.Tracer`, and yield its patches as they are produced, the
root's own ops included as ``Runnable.astream_log`` emits them: each output chunk is
appended to ``/streamed_output`` and ``/final_output`` follows the chunks added up with
``+`` (the latest chunk where ``+`` fails), as JSON Patch diffs. Runs traced natively
inside the target (:mod:`logstream.tracing`) appear under ``/logs``.

Sync targets run in a worker thread, so a consumer sees each token when it is produced
even when the target never yields to the event loop; async targets run as a task in the
consumer's loop (:func:`astream_log`) or in an event loop of a worker thread
(:func:`stream_log`, which needs no event loop of its own).

A consumer that stops early (``break``, ``aclose()``, cancellation) closes the stream:
an async target running in the consumer's loop is cancelled, generators are closed at
their next chunk, and a plain function or coroutine running in a worker thread runs to its
end there, its output dropped.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import json
import logging
import threading
import types
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, Callable, Optional, Union
from uuid import UUID

import jsonpatch

from .model import Clock, IdFactory
from .patches import JsonPatchOp, RunLog, RunLogPatch
from .payloads import SchemaFormat, snapshot
from .stream import WhenFull
from .tracer import Redactor, Tracer
from .tracing import RunScope, trace, traced_spec

__all__ = ["astream_log", "stream_log"]

logger = logging.getLogger(__name__)


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


class _RootOutput:
    """Turns the root's output chunks into the ops ``Runnable.astream_log`` emits."""

    __slots__ = ("final", "redact", "reported", "with_list")

    def __init__(self, with_list: bool, redact: Optional[Redactor]) -> None:
        self.with_list = with_list
        self.redact = redact
        self.final: Any = None  # the chunks added up, types kept so ``+`` keeps working
        self.reported: Any = None  # a copy of ``final`` as the last diff reported it

    def ops(self, chunk: Any) -> list[JsonPatchOp]:
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


class _Run:
    """One streamed call of a target: its tracer, its root run and how to stop it."""

    def __init__(
        self,
        target: Callable[..., Any],
        value: Any,
        *,
        tracer: Tracer,
        name: str,
        run_type: str,
        tags: Optional[list[str]],
        metadata: Optional[dict[str, Any]],
        run_id: Optional[UUID],
        with_streamed_output_list: bool,
    ) -> None:
        self.target = target
        self.value = value
        self.tracer = tracer
        self.stopped = threading.Event()
        self.scope = trace(
            name, run_type, inputs=value, tags=tags, metadata=metadata, run_id=run_id, tracer=tracer
        )
        self.output = _RootOutput(with_streamed_output_list, tracer.redact)

    def emit(self, chunk: Any) -> None:
        """Queue the root ops for one output chunk.

        Only the thread running the target emits root ops, so they are built outside the
        tracer's lock: ``+``, ``redact`` and the diff are user code and may trace.
        """
        tracer = self.tracer
        if not tracer.closed:
            patch = RunLogPatch.from_ops(self.output.ops(chunk))
            tracer.channel.put(patch, event="chunk", run_id=self.scope.id)

    def finish(self, scope: RunScope, error: Optional[BaseException]) -> None:
        """Record the root's output and end or fail it; the stream closes after."""
        scope.outputs = self.output.final
        try:
            scope.__exit__(None if error is None else type(error), error, None)
        finally:
            self.tracer.close()

    def run_sync(self) -> None:
        """Run a sync target to its end (in a worker thread)."""
        try:
            scope = self.scope.__enter__()
        except BaseException:  # the root could not start: end the stream, not hang it
            self.tracer.close()
            raise
        error: Optional[BaseException] = None
        try:
            result = self.target(self.value)
            if inspect.isgenerator(result):
                try:
                    for chunk in result:
                        self.emit(chunk)
                        if self.stopped.is_set():
                            break
                finally:
                    result.close()
            elif not self.stopped.is_set():
                self.emit(result)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.finish(scope, error)

    async def run_async(self) -> None:
        """Run an async target to its end (in a task)."""
        try:
            scope = await self.scope.__aenter__()
        except BaseException:  # the root could not start: end the stream, not hang it
            self.tracer.close()
            raise
        error: Optional[BaseException] = None
        try:
            result = self.target(self.value)
            if inspect.isasyncgen(result):
                try:
                    async for chunk in result:
                        self.emit(chunk)
                        if self.stopped.is_set():
                            break
                        await asyncio.sleep(0)  # a chance for a consumer in this loop to run
                finally:
                    await result.aclose()
            else:
                if inspect.isawaitable(result):
                    result = await result
                self.emit(result)
        except BaseException as exc:
            error = exc
            raise
        finally:
            self.finish(scope, error)


def _start_thread(work: Callable[[], None]) -> threading.Thread:
    """Run ``work`` in a new daemon thread, in a copy of this context.

    The worker is a daemon so that a target left running by a consumer that stopped early
    never holds up the process's exit. Threads the target starts must not inherit that:
    ``threading.Thread`` copies the daemon flag of the thread that creates it, so while
    ``work`` runs the worker reports the flag of the thread that called us, and threads
    made by the target are daemons exactly when they would be had the caller run the
    target itself. The flag is read by the interpreter only when a thread starts, so the
    worker itself stays a daemon. (CPython keeps the flag in ``Thread._daemonic``; where
    an interpreter does not, the target's threads inherit ``daemon=True`` as before.)
    """
    callers_flag = threading.current_thread().daemon

    def body() -> None:
        me = threading.current_thread()
        own_flag = getattr(me, "_daemonic", None)
        if own_flag is not None:
            me._daemonic = callers_flag  # type: ignore[attr-defined]
        try:
            work()
        finally:
            if own_flag is not None:
                me._daemonic = own_flag  # type: ignore[attr-defined]

    context = contextvars.copy_context()
    thread = threading.Thread(
        target=context.run, args=(body,), name="logstream-target", daemon=True
    )
    thread.start()
    return thread


def _start_worker(
    work: Callable[[], None], loop: asyncio.AbstractEventLoop
) -> asyncio.Future[None]:
    """Run ``work`` in a worker thread (see :func:`_start_thread`); return its future.

    A thread of its own, not the loop's default executor: a target that outlives an
    early-leaving consumer must not hold up the loop's shutdown or starve other work.
    """
    future: asyncio.Future[None] = loop.create_future()

    def settle(error: Optional[BaseException]) -> None:
        if future.done():
            return
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(_raisable(error))

    def body() -> None:
        error: Optional[BaseException] = None
        try:
            work()
        except BaseException as exc:
            error = exc
        try:
            loop.call_soon_threadsafe(settle, error)
        except RuntimeError:  # the consumer's loop is closed: nobody waits any more
            pass

    _start_thread(body)
    return future


def _raisable(error: BaseException) -> BaseException:
    """Return ``error``, or for a ``StopIteration`` one that a generator or future can raise.

    A ``StopIteration`` raised out of a generator (or set on a future) would be taken for
    its end (or refused); Python turns it into ``RuntimeError("generator raised
    StopIteration")`` with the original as its cause, and so do we, so that the cause is
    there for :func:`~logstream.sinks` end records to name.
    """
    if isinstance(error, StopIteration):
        wrapped = RuntimeError("generator raised StopIteration")
        wrapped.__cause__ = error
        return wrapped
    return error


def _is_async(target: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(target) or inspect.isasyncgenfunction(target):
        return True
    if inspect.isroutine(target) or isinstance(target, type):
        return False
    call = type(target).__call__  # an instance whose __call__ is async
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


def _prepare(
    target: Callable[..., Any],
    value: Any,
    options: dict[str, Any],
) -> _Run:
    if not callable(target):
        msg = f"target must be a callable, not {type(target).__name__}"
        raise TypeError(msg)
    run_type = "chain"
    tags = options.pop("tags", None)
    metadata = options.pop("metadata", None)
    target_given = target
    spec = traced_spec(target)
    if spec is not None:  # a @traced callable: its run is the root, not a child of one
        target, run_type = spec.fn, spec.run_type
        bound_to = getattr(target_given, "__self__", None)
        if inspect.ismethod(target_given) and bound_to is not None:
            target = types.MethodType(spec.fn, bound_to)
        tags = sorted({*(spec.tags or ()), *(tags or ())})
        metadata = {**(spec.metadata or {}), **(metadata or {})}
        name = options.pop("name", None) or spec.name
    else:
        name = (
            options.pop("name", None) or getattr(target, "__name__", None) or type(target).__name__
        )
    tracer = Tracer(
        include_names=options.pop("include_names", None),
        include_types=options.pop("include_types", None),
        include_tags=options.pop("include_tags", None),
        exclude_names=options.pop("exclude_names", None),
        exclude_types=options.pop("exclude_types", None),
        exclude_tags=options.pop("exclude_tags", None),
        schema_format=options.pop("schema_format", "original"),
        auto_close=True,
        clock=options.pop("clock", None),
        id_factory=options.pop("id_factory", None),
        redact=options.pop("redact", None),
        max_buffer=options.pop("max_buffer", None),
        when_full=options.pop("when_full", None),
        block_timeout=options.pop("block_timeout", None),
    )
    return _Run(
        target,
        value,
        tracer=tracer,
        name=str(name),
        run_type=run_type,
        tags=tags or None,
        metadata=metadata or None,
        run_id=options.pop("run_id", None),
        with_streamed_output_list=options.pop("with_streamed_output_list", True),
    )


async def astream_log(
    target: Callable[..., Any],
    input: Any,
    *,
    diff: bool = True,
    with_streamed_output_list: bool = True,
    include_names: Optional[Sequence[str]] = None,
    include_types: Optional[Sequence[str]] = None,
    include_tags: Optional[Sequence[str]] = None,
    exclude_names: Optional[Sequence[str]] = None,
    exclude_types: Optional[Sequence[str]] = None,
    exclude_tags: Optional[Sequence[str]] = None,
    name: Optional[str] = None,
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    run_id: Optional[UUID] = None,
    schema_format: SchemaFormat = "original",
    clock: Optional[Clock] = None,
    id_factory: Optional[IdFactory] = None,
    redact: Optional[Redactor] = None,
    max_buffer: Optional[int] = None,
    when_full: Optional[WhenFull] = None,
    block_timeout: Optional[float] = None,
) -> AsyncIterator[Union[RunLogPatch, RunLog]]:
    """Run ``target(input)`` as a root run and yield its run log as it is produced.

    Args:
        target: A function, coroutine function, generator function or async generator
            function of one argument. A generator's items are the output chunks; a
            function's return value is the one chunk.
        input: What ``target`` is called with.
        diff: Yield each :class:`RunLogPatch` (``True``) or the :class:`RunLog` state
            after each patch (``False``).
        with_streamed_output_list: Append each chunk to the root's ``streamed_output``.
        include_names: Only log runs with these names.
        include_types: Only log runs of these types.
        include_tags: Only log runs with any of these tags.
        exclude_names: Do not log runs with these names.
        exclude_types: Do not log runs of these types.
        exclude_tags: Do not log runs with any of these tags.
        name: The root run's name; the callable's ``__name__`` by default.
        tags: The root run's tags (inherited by the runs traced inside).
        metadata: The root run's metadata (inherited by the runs traced inside).
        run_id: The root run's id.
        schema_format: ``"original"`` (as ``Runnable.astream_log``) or
            ``"streaming_events"`` (entries carry ``inputs``).
        clock: Where start and end times come from.
        id_factory: Where run ids come from.
        redact: Applied to every value before it enters a patch.
        max_buffer: The most patches that may wait for the consumer (``None``: no limit);
            a target that gets ahead of its consumer then waits (or raises, with
            ``when_full="raise"``) instead of queueing without bound.
        when_full: ``"block"`` (the default) or ``"raise"``; see :class:`Tracer`.
        block_timeout: With ``"block"``, the most seconds an event waits for room.

    Yields:
        Patches, or states with ``diff=False``. If ``target`` raises, every patch made
        before is yielded, then the error propagates.

    Raises:
        TypeError: ``target`` is not callable, or a filter rule is a bare string.
        ValueError: ``schema_format`` is unknown.
    """
    run = _prepare(
        target,
        input,
        {
            "include_names": include_names,
            "include_types": include_types,
            "include_tags": include_tags,
            "exclude_names": exclude_names,
            "exclude_types": exclude_types,
            "exclude_tags": exclude_tags,
            "name": name,
            "tags": tags,
            "metadata": metadata,
            "run_id": run_id,
            "schema_format": schema_format,
            "clock": clock,
            "id_factory": id_factory,
            "redact": redact,
            "max_buffer": max_buffer,
            "when_full": when_full,
            "block_timeout": block_timeout,
            "with_streamed_output_list": with_streamed_output_list,
        },
    )
    loop = asyncio.get_running_loop()
    task: asyncio.Future[None]
    if not _is_async(target):
        task = _start_worker(run.run_sync, loop)
    elif max_buffer is None:
        task = loop.create_task(run.run_async())
    else:  # a bounded buffer may block the target: never in the consumer's own loop
        task = _start_worker(lambda: asyncio.run(run.run_async()), loop)
    state: Optional[RunLog] = None if diff else RunLog(state=None)
    finished = False
    try:
        async for patch in run.tracer.channel:
            if state is None:
                yield patch
            else:
                state = state + patch
                yield state
        finished = True
    finally:
        if not finished:  # the consumer stopped early: stop the target
            run.stopped.set()
            run.tracer.close()
            task.cancel()
        if finished:
            await task  # the target's error, if any, reaches the consumer
        else:  # the consumer left: its own exit wins over whatever the target does now
            try:
                await task
            except (Exception, asyncio.CancelledError):
                logger.debug("target ended after its consumer left", exc_info=True)


def stream_log(
    target: Callable[..., Any],
    input: Any,
    **options: Any,
) -> Iterator[Union[RunLogPatch, RunLog]]:
    """Run ``target(input)`` as a root run and yield its run log, without an event loop.

    Takes the options of :func:`astream_log`. The target runs in a worker thread (async
    targets in their own event loop there), so this works from any thread, including
    one whose event loop is running.

    Yields:
        Patches, or states with ``diff=False``. If ``target`` raises, every patch made
        before is yielded, then the error propagates.

    Raises:
        TypeError: ``target`` is not callable, an option is unknown, or a filter rule is a
            bare string.
        ValueError: ``schema_format`` is unknown.
    """
    diff = options.pop("diff", True)
    run = _prepare(target, input, options)
    if options:
        msg = f"stream_log() got unexpected options: {', '.join(sorted(options))}"
        raise TypeError(msg)
    outcome: list[BaseException] = []

    def work() -> None:
        try:
            if _is_async(target):
                asyncio.run(run.run_async())
            else:
                run.run_sync()
        except BaseException as exc:
            outcome.append(exc)

    worker = _start_thread(work)
    state: Any = None if diff else RunLog(state=None)
    finished = False
    try:
        for patch in run.tracer.channel:
            if state is None:
                yield patch
            else:
                state = state + patch
                yield state
        finished = True
    finally:
        if not finished:
            run.stopped.set()
            run.tracer.close()
    worker.join()
    if outcome:
        raise _raisable(outcome[0])
