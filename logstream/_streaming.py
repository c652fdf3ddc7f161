"""Stream the run log of a plain callable: ``astream_log`` and ``stream_log``.

:func:`astream_log` and :func:`stream_log` run a function, coroutine function,
generator function or async generator function on one input as the root run of a fresh
:class:`~logstream._tracer.Tracer`, and yield its patches as they are produced, the
root's own ops included as ``Runnable.astream_log`` emits them: each output chunk is
appended to ``/streamed_output`` and ``/final_output`` follows the chunks added up with
``+`` (the latest chunk where ``+`` fails), as JSON Patch diffs. Runs traced natively
inside the target (:mod:`logstream._tracing`) appear under ``/logs``.

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
import logging
import threading
import types
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Callable, Optional, TypeVar, Union
from uuid import UUID

from typing_extensions import Unpack

from ._config import TracerConfig, TracerOptions
from ._emitter import RootOutput
from ._errors import ConfigError
from ._patches import RunLog, RunLogPatch
from ._tracer import Tracer
from ._tracing import RunScope, trace, traced_spec

__all__ = ["astream_log", "stream_log"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


class StreamedCall:
    """One streamed call of a target: its tracer, its root run and how to stop it.

    This one streams the run log: each output chunk becomes the root's ops, as
    ``Runnable.astream_log`` emits them. A subclass may turn chunks into something else
    (:meth:`emit`) and read another stream than the tracer's patches.
    """

    blocks = False
    """Whether reporting may wait for the consumer besides the tracer's own buffer."""

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
        self.scope._reports_root_output = False  # the root ops below report it
        self.output = RootOutput(with_streamed_output_list, tracer.redact)

    def stop(self) -> None:
        """Stop the target after its consumer left: close the stream, stop at the next chunk."""
        self.stopped.set()
        self.tracer.close()

    def emit(self, chunk: Any) -> None:
        """Queue the root ops for one output chunk.

        Only the thread running the target emits root ops, so they are built outside the
        tracer's lock: ``+``, ``redact`` and the diff are user code and may trace.
        """
        tracer = self.tracer
        if not tracer.closed:
            patch = RunLogPatch.from_ops(self.output.ops(chunk))
            tracer.send_patch(patch, event="chunk", run_id=self.scope.id)

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
    there for :func:`~logstream._sinks` end records to name.
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


_ORIGINAL = TracerConfig(schema_format="original")


def resolve_config(
    config: Optional[TracerConfig], options: TracerOptions, default: TracerConfig, entry: str
) -> TracerConfig:
    """Return the configuration of a streamed call: ``config`` or ``default``, plus ``options``.

    Args:
        config: The caller's ready configuration, used as given, or ``None``.
        options: Keyword options applied on top.
        default: The configuration used when ``config`` is ``None``.
        entry: The entry point's names, for the error message.

    Raises:
        ConfigError: An option is bad, or ``auto_close=False`` (the stream ends with the
            root run).
    """
    if config is None:
        config = default.replace(**options)
    elif options:
        config = config.replace(**options)
    if not config.auto_close:
        msg = (
            f"{entry} end the stream when the root run ends: "
            "auto_close=False does not apply to them (leave it out)"
        )
        raise ConfigError(msg)
    return config


def prepare(
    target: Callable[..., Any],
    value: Any,
    *,
    name: Optional[str],
    tags: Optional[list[str]],
    metadata: Optional[dict[str, Any]],
    run_id: Optional[UUID],
    tracer: Tracer,
    run_class: type[StreamedCall] = StreamedCall,
    with_streamed_output_list: bool = True,
) -> StreamedCall:
    """Check ``target`` and make the streamed call of it as the root run on ``tracer``.

    A ``@traced`` target's own run is the root (its name, type, tags and metadata, under
    the ones given here); any other callable is a ``chain`` run named after it.

    Raises:
        ConfigError: ``target`` is not callable.
    """
    if not callable(target):
        msg = f"target must be a callable, not {type(target).__name__}"
        raise ConfigError(msg)
    run_type = "chain"
    target_given = target
    spec = traced_spec(target)
    if spec is not None:  # a @traced callable: its run is the root, not a child of one
        target, run_type = spec.fn, spec.run_type
        bound_to = getattr(target_given, "__self__", None)
        if inspect.ismethod(target_given) and bound_to is not None:
            target = types.MethodType(spec.fn, bound_to)
        tags = sorted({*(spec.tags or ()), *(tags or ())})
        metadata = {**(spec.metadata or {}), **(metadata or {})}
        name = name or spec.name
    else:
        name = name or getattr(target, "__name__", None) or type(target).__name__
    return run_class(
        target,
        value,
        tracer=tracer,
        name=str(name),
        run_type=run_type,
        tags=tags or None,
        metadata=metadata or None,
        run_id=run_id,
        with_streamed_output_list=with_streamed_output_list,
    )


async def drive_async(
    run: StreamedCall, target: Callable[..., Any], items: AsyncIterator[T]
) -> AsyncIterator[T]:
    """Run ``run`` in the background and yield ``items`` (what it produces) as they come.

    Async targets run as a task in this loop (in a worker thread's own loop when the
    tracer's buffer is bounded, so a full buffer never blocks this loop); sync targets in
    a worker thread. A consumer that leaves early stops the target; when ``items`` ends,
    the target's error, if any, is raised.
    """
    loop = asyncio.get_running_loop()
    task: asyncio.Future[None]
    if not _is_async(target):
        task = _start_worker(run.run_sync, loop)
    elif run.tracer.config.max_buffer is None and not run.blocks:
        task = loop.create_task(run.run_async())
    else:  # a bounded buffer may block the target: never in the consumer's own loop
        task = _start_worker(lambda: asyncio.run(run.run_async()), loop)
    finished = False
    try:
        async for item in items:
            yield item
        finished = True
    finally:
        if not finished:  # the consumer stopped early: stop the target
            run.stop()
            task.cancel()
        if finished:
            await task  # the target's error, if any, reaches the consumer
        else:  # the consumer left: its own exit wins over whatever the target does now
            try:
                await task
            except (Exception, asyncio.CancelledError):
                logger.debug("target ended after its consumer left", exc_info=True)


def drive_sync(run: StreamedCall, target: Callable[..., Any], items: Iterable[T]) -> Iterator[T]:
    """Run ``run`` in a worker thread and yield ``items`` (what it produces) as they come.

    A consumer that leaves early stops the target; when ``items`` ends, the target's
    error, if any, is raised.
    """
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
    finished = False
    try:
        yield from items
        finished = True
    finally:
        if not finished:
            run.stop()
    worker.join()
    if outcome:
        raise _raisable(outcome[0])


async def astream_log(
    target: Callable[..., Any],
    input: Any,
    *,
    diff: bool = True,
    with_streamed_output_list: bool = True,
    name: Optional[str] = None,
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    run_id: Optional[UUID] = None,
    config: Optional[TracerConfig] = None,
    **options: Unpack[TracerOptions],
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
        name: The root run's name; the callable's ``__name__`` by default.
        tags: The root run's tags (inherited by the runs traced inside).
        metadata: The root run's metadata (inherited by the runs traced inside).
        run_id: The root run's id.
        config: A ready tracer configuration, used as given: its ``schema_format``
            too (a :class:`~logstream._config.TracerConfig` defaults to
            ``"streaming_events"``, the handler's). Without one, the configuration is
            made from ``options`` with ``schema_format="original"`` (as
            ``Runnable.astream_log``). The stream ends with the root run, so
            ``auto_close=False`` is refused.
        **options: Tracer options (:class:`~logstream._config.TracerOptions`), applied
            on top of ``config``: the six filter rules, ``schema_format``, ``clock``,
            ``id_factory``, ``redact``, ``max_buffer`` (a target that gets ahead of its
            consumer then waits, or raises with ``when_full="raise"``), ``when_full``,
            ``block_timeout``, ``processors``.

    Yields:
        Patches, or states with ``diff=False``. If ``target`` raises, every patch made
        before is yielded, then the error propagates.

    Raises:
        ConfigError: ``target`` is not callable, ``auto_close=False``, or an option is
            unknown, of the wrong type or out of range (also a ``TypeError`` and a
            ``ValueError``).
    """
    config = resolve_config(config, options, _ORIGINAL, "stream_log and astream_log")
    run = prepare(
        target,
        input,
        name=name,
        tags=tags,
        metadata=metadata,
        run_id=run_id,
        tracer=Tracer(config),
        with_streamed_output_list=with_streamed_output_list,
    )
    state: Optional[RunLog] = None if diff else RunLog(state=None)
    async for patch in drive_async(run, target, run.tracer.__aiter__()):
        if state is None:
            yield patch
        else:
            state = state + patch
            yield state


def stream_log(
    target: Callable[..., Any],
    input: Any,
    *,
    diff: bool = True,
    with_streamed_output_list: bool = True,
    name: Optional[str] = None,
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    run_id: Optional[UUID] = None,
    config: Optional[TracerConfig] = None,
    **options: Unpack[TracerOptions],
) -> Iterator[Union[RunLogPatch, RunLog]]:
    """Run ``target(input)`` as a root run and yield its run log, without an event loop.

    Takes the arguments of :func:`astream_log`. The target runs in a worker thread
    (async targets in their own event loop there), so this works from any thread,
    including one whose event loop is running.

    Yields:
        Patches, or states with ``diff=False``. If ``target`` raises, every patch made
        before is yielded, then the error propagates.

    Raises:
        ConfigError: ``target`` is not callable, or an option is unknown, of the wrong
            type or out of range (also a ``TypeError`` and a ``ValueError``).
    """
    config = resolve_config(config, options, _ORIGINAL, "stream_log and astream_log")
    run = prepare(
        target,
        input,
        name=name,
        tags=tags,
        metadata=metadata,
        run_id=run_id,
        tracer=Tracer(config),
        with_streamed_output_list=with_streamed_output_list,
    )
    state: Any = None if diff else RunLog(state=None)
    for patch in drive_sync(run, target, run.tracer):
        if state is None:
            yield patch
        else:
            state = state + patch
            yield state
