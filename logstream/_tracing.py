"""Native tracing: open runs with ``with``/``async with`` blocks and decorators.

Code that does not speak LangChain's callbacks traces its own steps here, on the same
:class:`~logstream._tracer.Tracer` the callback adapter uses, so the same events give the
same ops. :func:`trace` opens a run around a block; :func:`traced` wraps a function, a
coroutine function, a generator function or an async generator function. The run that
is open in the current context is the parent of the next one: nesting follows plain
calls, asyncio tasks (``gather``, ``create_task`` copy the context) and threads that carry
the context (:func:`bind_context`, :class:`ContextThreadPoolExecutor`). A ``parent=`` or
``tracer=`` argument overrides that.

Code traced while no tracer is active (no open run in the context and no ``tracer=``)
runs untraced: a library can decorate its functions and cost its users nothing until
they trace. But a run that opens with no tracer in reach while traced runs *are* open
elsewhere in the process has most likely lost its context (a plain ``threading.Thread``,
``loop.run_in_executor`` or ``ThreadPoolExecutor.submit``): it is counted
(:func:`orphan_runs`), logged once per site with the fix, and in strict mode
(:func:`set_strict_context`) raises :class:`~logstream._errors.ContextLostError`.
:func:`bind_context`, :class:`ContextThreadPoolExecutor`, :class:`ContextThread` and
:func:`run_in_executor` carry the context.

Example:
    >>> tracer = Tracer()
    >>> @traced(run_type="tool")
    ... def search(query: str) -> str:
    ...     return "42"
    >>> with trace("agent", tracer=tracer, inputs="question") as run:
    ...     run.outputs = search("meaning of life")
    >>> state = RunLogPatch() + RunLogPatch(*[op for patch in tracer for op in patch.ops])
    >>> state.state["name"], state.state["logs"]["search"]["final_output"]
    ('agent', '42')
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Callable, NamedTuple, Optional, TypeVar, Union, cast, overload
from uuid import UUID

from ._envelopes import wrap_run_inputs, wrap_run_outputs
from ._errors import ContextLostError, RunArgumentError, ScopeError
from ._model import LLM_TYPES, UNSET, RunRecord, check_start_args
from ._patches import RunLogPatch  # noqa: F401  (used by the module example)
from ._tracer import Tracer

__all__ = [
    "ContextThread",
    "ContextThreadPoolExecutor",
    "RunScope",
    "bind_context",
    "current_run",
    "orphan_runs",
    "run_in_executor",
    "set_strict_context",
    "trace",
    "traced",
    "traced_spec",
]

logger = logging.getLogger("logstream")

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

_CURRENT: contextvars.ContextVar[Optional[RunScope]] = contextvars.ContextVar(
    "logstream_current_run", default=None
)


def current_run() -> Optional[RunScope]:
    """Return the run open in the current context, or ``None`` if there is none."""
    return _CURRENT.get()


# -- runs that lost their context --------------------------------------------------------


class _Reach:
    """How many traced runs are open in the process, and the runs that opened without one.

    A traced run that opens with no tracer in its context while this count is above zero
    is an orphan: its context was most likely lost on the way into a thread.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open = 0  # traced runs open anywhere in the process (scopes with a tracer)
        self.orphans = 0
        self.sites: set[str] = set()  # sites already logged
        setting = os.environ.get("LOGSTREAM_STRICT_CONTEXT", "").strip().lower()
        self.strict = setting not in ("", "0", "false", "no", "off")


_REACH = _Reach()

_ORPHAN_FIX = (
    "a plain threading.Thread, loop.run_in_executor(...) or ThreadPoolExecutor.submit(...) "
    "does not carry the caller's context: use logstream.ContextThread, "
    "logstream.run_in_executor(loop, executor, fn, *args), "
    "logstream.ContextThreadPoolExecutor or logstream.bind_context(fn), or pass tracer=..."
)


def orphan_runs() -> int:
    """Return how many traced runs opened with no tracer in reach while others were open.

    Such a run records nothing: its thread did not carry the caller's context. Each site
    (a ``@traced`` function, or the file and line of a ``trace()`` call) is also logged
    once, at warning level, on the ``logstream`` logger, with the fix.

    Example:
        >>> before = orphan_runs()
        >>> orphan_runs() - before
        0
    """
    return _REACH.orphans


def set_strict_context(strict: bool = True) -> None:
    """Make a traced run that opens with no tracer in reach (an orphan) raise, or stop it.

    The environment variable ``LOGSTREAM_STRICT_CONTEXT=1`` turns strict mode on at import
    (``0``, ``false``, ``no``, ``off`` or empty leave it off).

    Args:
        strict: Raise :class:`~logstream._errors.ContextLostError` for an orphan run
            (``True``) or count and log it (``False``, the default).
    """
    _REACH.strict = bool(strict)


def _orphan(name: str, site: str) -> None:
    """Count a run that opened with no tracer in reach, if traced runs are open elsewhere.

    Raises:
        ContextLostError: In strict mode.
    """
    reach = _REACH
    if reach.open <= 0:  # nothing traced anywhere: untraced code, as documented
        return
    with reach.lock:
        if reach.open <= 0:
            return
        reach.orphans += 1
        first = site not in reach.sites
        reach.sites.add(site)
    msg = (
        f"traced run {name!r} ({site}) opened with no tracer in reach while "
        f"{reach.open} traced run(s) are open in the process, so it records nothing "
        f"(thread {threading.current_thread().name!r}): {_ORPHAN_FIX}"
    )
    if reach.strict:
        raise ContextLostError(msg)
    if first:
        logger.warning(msg)


def _call_site() -> str:
    """Return ``file:line`` of the code that called ``trace()``."""
    frame = inspect.currentframe()
    try:
        caller = frame.f_back.f_back if frame is not None and frame.f_back else None
        if caller is None:
            return "unknown site"
        return f"{caller.f_code.co_filename}:{caller.f_lineno}"
    finally:
        del frame


def accumulate(total: Any, chunk: Any) -> Any:
    """Return ``total + chunk``, or ``chunk`` if ``total`` is ``None`` or ``+`` fails.

    This is how streamed chunks add up to a run's output, as LangChain does it.

    Example:
        >>> accumulate("Hel", "lo"), accumulate({"a": 1}, {"b": 2}), accumulate(None, 1)
        ('Hello', {'b': 2}, 1)
    """
    if total is None:
        return chunk
    try:
        return total + chunk
    except TypeError:
        return chunk


class RunScope:
    """A run open in a :func:`trace` block or a :func:`traced` call.

    Use it to stream tokens and chunks and to set the outputs recorded when the block
    exits. A scope made while no tracer is active is inert: its methods do nothing.

    Attributes:
        tracer: The tracer the run is recorded on, or ``None`` if it is not traced.
        outputs: What the run produced; recorded when the block exits normally.
    """

    __slots__ = (
        "_entered",
        "_finished",
        "_parent_id",
        "_record",
        "_reports_root_output",
        "_token",
        "outputs",
        "spec",
        "tracer",
    )

    def __init__(self, tracer: Optional[Tracer], spec: _RunSpec, parent_id: Optional[UUID]) -> None:
        """Prepare a scope; the run starts when the block is entered."""
        self.tracer = tracer
        self.spec = spec
        self._record: Optional[RunRecord] = None  # as it started, then as it finished
        self.outputs: Any = None
        self._entered = False
        self._finished = False
        self._token: Optional[contextvars.Token[Optional[RunScope]]] = None
        self._parent_id = parent_id
        # A root run reports its outputs in /final_output when it ends; stream_log and
        # astream_log turn this off, as they report the root's output with their own ops.
        self._reports_root_output = True

    @property
    def run(self) -> Optional[RunRecord]:
        """A frozen record of the run: as it is now while open, as it ended after.

        ``None`` if the run is not traced or the stream was closed before it started.
        """
        record, tracer = self._record, self.tracer
        if record is None or tracer is None or self._finished:
            return record
        return tracer.record(record.id) or record

    @property
    def id(self) -> Optional[UUID]:
        """The run's id, or ``None`` if it is not traced."""
        return None if self._record is None else self._record.id

    @property
    def name(self) -> str:
        """The run's name."""
        return self.spec.name

    @property
    def run_type(self) -> str:
        """The run's type."""
        return self.spec.run_type

    # -- reporting from inside the run -----------------------------------------------------

    def token(self, token: Any, chunk: Any = None) -> None:
        """Stream a token of this LLM or chat-model run.

        Args:
            token: The token text (or a list of content blocks).
            chunk: A generation chunk; if it has a ``message`` that goes on
                ``streamed_output`` instead of the token, as with LangChain's callbacks.

        Raises:
            RunTypeError: This run is not an ``llm`` or ``chat_model`` run.
        """
        if self._record is not None and self.tracer is not None:
            self.tracer.add_token(self._record.id, token, getattr(chunk, "message", UNSET))

    def chunk(self, value: Any) -> None:
        """Stream an output chunk of this run onto its ``streamed_output``."""
        if self._record is not None and self.tracer is not None:
            self.tracer.add_chunk(self._record.id, value)

    def event(self, name: str, data: Any = None) -> None:
        """Record a custom event on this run (kept in the run record; no patch)."""
        if self._record is not None and self.tracer is not None:
            self.tracer.add_event(self._record.id, name, {"data": data}, missing_ok=True)

    # -- life cycle ------------------------------------------------------------------------

    def _start(self, make_current: bool = True) -> RunScope:
        if self._entered:
            msg = f"run {self.spec.name!r} was already entered; make a new trace() per run"
            raise ScopeError(msg)
        self._entered = True
        tracer, spec = self.tracer, self.spec
        if tracer is not None:
            run_type = spec.run_type
            if run_type == "chat_model" and tracer.schema_format == "original":
                run_type = "llm"  # as LangChain logs chat models in this format
            self._record = tracer.start_run(
                spec.name,
                run_type,
                run_id=spec.run_id,
                parent_id=self._parent_id,
                tags=spec.tags,
                metadata=spec.metadata,
                inputs=wrap_run_inputs(spec.run_type, spec.inputs, tracer.schema_format),
            )
            if self._record is not None:
                with _REACH.lock:
                    _REACH.open += 1
        if make_current:
            self._token = _CURRENT.set(self)
        return self

    def _finish(self, error: Optional[BaseException]) -> None:
        token, self._token = self._token, None
        if token is not None:
            try:
                _CURRENT.reset(token)
            except ValueError:  # exited in another context (e.g. another task)
                pass
        if self._finished:
            return
        self._finished = True
        run, tracer = self._record, self.tracer
        if run is not None and tracer is not None:
            with _REACH.lock:
                _REACH.open -= 1
        if run is None or tracer is None or not tracer.is_open(run.id):
            return
        run_type = self.spec.run_type
        if error is None:
            outputs = wrap_run_outputs(run_type, self.outputs, tracer.schema_format)
            if self._reports_root_output and run.parent_id is None:
                ended = tracer.end_run(
                    run.id, outputs=outputs, event=f"{run_type} end", root_output=self.outputs
                )
            else:
                ended = tracer.end_run(run.id, outputs=outputs, event=f"{run_type} end")
        else:
            ended = tracer.end_run(run.id, error=error, event=f"{run_type} error")
        # None: the stream closed before the run could end; keep its record as it is now
        self._record = ended or tracer.record(run.id) or run

    def __enter__(self) -> RunScope:
        """Start the run and make it the current run."""
        return self._start()

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """End the run with :attr:`outputs`, or fail it with the exception (re-raised)."""
        self._finish(exc)

    async def __aenter__(self) -> RunScope:
        """Start the run and make it the current run."""
        return self._start()

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        """End the run with :attr:`outputs`, or fail it with the exception (re-raised)."""
        self._finish(exc)

    def __repr__(self) -> str:
        """Show the run's name, type and id."""
        return f"<RunScope {self.spec.name!r} type={self.spec.run_type} id={self.id}>"


class _RunSpec:
    """What a run is started with."""

    __slots__ = ("inputs", "metadata", "name", "run_id", "run_type", "tags")

    def __init__(
        self,
        name: str,
        run_type: str,
        inputs: Any,
        tags: Optional[list[str]],
        metadata: Optional[dict[str, Any]],
        run_id: Optional[UUID],
    ) -> None:
        self.name = name
        self.run_type = run_type
        self.inputs = inputs
        self.tags = tags
        self.metadata = metadata
        self.run_id = run_id


def _check_run_type(run_type: object, event: str) -> str:
    if not isinstance(run_type, str):
        msg = f"run_type must be a string such as 'chain' or 'llm', not {run_type!r}"
        raise RunArgumentError(msg, None, event, "run_type")
    return run_type


def trace(
    name: str,
    run_type: str = "chain",
    *,
    inputs: Any = None,
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    run_id: Optional[UUID] = None,
    parent: Optional[RunScope] = None,
    tracer: Optional[Tracer] = None,
) -> RunScope:
    """Open a run around a ``with`` or ``async with`` block.

    The run's parent is ``parent`` if given, else the run open in the current context
    (if it is on the same tracer). Tags and metadata of the parent are inherited, as
    LangChain's config is (inherited and own tags merged and sorted). In the
    ``"original"`` schema format a ``chat_model`` run is logged as ``"llm"``, as
    LangChain logs chat models there.

    Args:
        name: The run's name.
        run_type: ``"chain"``, ``"llm"``, ``"chat_model"``, ``"tool"``, ``"retriever"``,
            ``"prompt"``, ``"parser"`` or any string.
        inputs: What the run was given (a plain value; it is put in the envelope the
            run type uses, e.g. an LLM's prompt under ``"prompts"``).
        tags: The run's own tags.
        metadata: The run's own metadata.
        run_id: The run's id; a fresh one from the tracer's id factory if ``None``.
        parent: The parent run, overriding the current one.
        tracer: Where to record the run; defaults to the parent's tracer. With neither,
            the run is not traced and the block runs as it is.

    Returns:
        The run's scope; entering it starts the run, leaving it ends the run with
        ``scope.outputs``, or fails it with the exception, which propagates.

    Raises:
        RunArgumentError: ``run_type`` or ``name`` is not a string, ``tags`` is a bare
            string or holds a non-string, or ``run_id`` cannot be hashed (also a
            ``TypeError``).
        ScopeError: ``parent`` belongs to a different tracer than ``tracer`` (also a
            ``ValueError``).
    """
    run_type = _check_run_type(run_type, "trace")
    tags = check_start_args(run_id, name, run_type, tags, "trace") or None
    if parent is None:
        current = _CURRENT.get()
        if current is not None and current.tracer is not None:
            if tracer is None or current.tracer is tracer:
                parent = current
    elif tracer is not None and parent.tracer is not None and parent.tracer is not tracer:
        msg = f"parent run {parent.name!r} is recorded on another tracer than the one given"
        raise ScopeError(msg)
    if tracer is None and parent is not None:
        tracer = parent.tracer
    if tracer is None and _REACH.open > 0:
        _orphan(str(name), _call_site())
    parent_id = None if parent is None else parent.id
    parent_record = None if parent is None else parent._record
    if parent_record is not None:
        inherited_tags = parent_record.tags
        if inherited_tags:  # merged and sorted, as LangChain merges a child's config
            tags = sorted({*inherited_tags, *(tags or ())})
        if parent_record.metadata:
            metadata = {**parent_record.metadata, **(metadata or {})}
    spec = _RunSpec(name, run_type, inputs, tags, metadata, run_id)
    return RunScope(tracer, spec, parent_id)


def _inputs_of(signature: Optional[inspect.Signature], args: Any, kwargs: Any) -> Any:
    """Return a call's inputs: its only argument, else its arguments by name.

    A method's ``self`` or ``cls`` is left out.
    """
    if signature is not None:
        try:
            bound = signature.bind(*args, **kwargs)
        except TypeError:
            pass
        else:
            arguments = dict(bound.arguments)
            first = next(iter(signature.parameters), None)
            if first in ("self", "cls") and first in arguments:
                del arguments[first]
            if len(arguments) == 1:
                name, value = next(iter(arguments.items()))
                kind = signature.parameters[name].kind
                if kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
                    return value
            return arguments
    if len(args) == 1 and not kwargs:
        return args[0]
    return {"args": list(args), "kwargs": dict(kwargs)}


class TracedSpec(NamedTuple):
    """What :func:`traced` recorded about a wrapped callable (its ``__logstream__``).

    Attributes:
        fn: The callable as it was before wrapping.
        name: The run name.
        run_type: The run type.
        tags: The run's tags.
        metadata: The run's metadata.
    """

    fn: Callable[..., Any]
    name: str
    run_type: str
    tags: Optional[list[str]]
    metadata: Optional[dict[str, Any]]


@overload
def traced(name: F) -> F: ...


@overload
def traced(
    name: Optional[str] = None,
    run_type: str = "chain",
    *,
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    tracer: Optional[Tracer] = None,
) -> Callable[[F], F]: ...


def traced(
    name: Union[str, Callable[..., Any], None] = None,
    run_type: str = "chain",
    *,
    tags: Optional[list[str]] = None,
    metadata: Optional[dict[str, Any]] = None,
    tracer: Optional[Tracer] = None,
) -> Any:
    """Trace every call of a function, coroutine function or (async) generator function.

    Usable bare (``@traced``) or with arguments (``@traced("search", "tool")``). A call
    is a run named after the function unless ``name`` is given. Its inputs are its only
    argument, or its arguments by name. Its outputs are the return value; for a
    generator, each yielded item is streamed (as a token for ``llm`` and ``chat_model``
    runs, else as a chunk) and the output is the items added up with ``+`` (the latest
    item where ``+`` fails), as LangChain does. Errors fail the run and propagate.

    Args:
        name: The run's name (or the function, when used bare).
        run_type: The run's type.
        tags: The run's tags.
        metadata: The run's metadata.
        tracer: Where to record calls; by default the current run's tracer, and a call
            made while no tracer is active runs untraced.

    Returns:
        A decorator (or the wrapped function, when used bare).

    Example:
        >>> @traced(run_type="llm")
        ... def model(prompt: str) -> Iterator[str]:
        ...     yield from ["Hel", "lo"]
        >>> "".join(model("hi"))  # no tracer active: runs untraced
        'Hello'
    """
    if callable(name):
        return traced()(name)
    run_type = _check_run_type(run_type, "traced")

    def decorate(fn: F) -> F:
        run_name = name if isinstance(name, str) else getattr(fn, "__name__", "Unnamed")
        spec = TracedSpec(fn, run_name, run_type, tags, metadata)
        try:
            signature: Optional[inspect.Signature] = inspect.signature(fn)
        except (TypeError, ValueError):
            signature = None

        site = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', run_name)}"

        def scope_for(args: Any, kwargs: Any) -> Optional[RunScope]:
            if tracer is None:  # nothing to record on: no cost beyond this check
                current = _CURRENT.get()
                if current is None or current.tracer is None:
                    if _REACH.open > 0:
                        _orphan(run_name, site)
                    return None
            inputs = _inputs_of(signature, args, kwargs)
            return trace(
                run_name, run_type, inputs=inputs, tags=tags, metadata=metadata, tracer=tracer
            )

        if inspect.isasyncgenfunction(fn):

            @functools.wraps(fn)
            async def agen_wrapper(*args: Any, **kwargs: Any) -> AsyncIterator[Any]:
                scope = scope_for(args, kwargs)
                if scope is None:
                    async for item in fn(*args, **kwargs):
                        yield item
                    return
                inner = _traced_agen(scope, fn(*args, **kwargs))
                try:
                    async for item in inner:
                        yield item
                finally:
                    await inner.aclose()

            return cast(F, _mark(agen_wrapper, spec))

        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen_wrapper(*args: Any, **kwargs: Any) -> Generator[Any, Any, Any]:
                scope = scope_for(args, kwargs)
                if scope is None:
                    return (yield from fn(*args, **kwargs))
                return (yield from _traced_gen(scope, fn(*args, **kwargs)))

            return cast(F, _mark(gen_wrapper, spec))

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                scope = scope_for(args, kwargs)
                if scope is None:
                    return await fn(*args, **kwargs)
                async with scope:
                    scope.outputs = await fn(*args, **kwargs)
                return scope.outputs

            return cast(F, _mark(async_wrapper, spec))

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            scope = scope_for(args, kwargs)
            if scope is None:
                return fn(*args, **kwargs)
            with scope:
                scope.outputs = fn(*args, **kwargs)
            return scope.outputs

        return cast(F, _mark(wrapper, spec))

    return decorate


def _mark(wrapper: Callable[..., Any], spec: TracedSpec) -> Any:
    wrapper.__logstream__ = spec  # type: ignore[attr-defined]
    return wrapper  # typed Any: the caller returns it as the wrapped function's type


def traced_spec(target: Any) -> Optional[TracedSpec]:
    """Return what :func:`traced` recorded about ``target``, or ``None`` if not traced."""
    spec = getattr(target, "__logstream__", None)
    return spec if isinstance(spec, TracedSpec) else None


def _report(scope: RunScope, item: Any) -> None:
    if scope.spec.run_type in LLM_TYPES:
        scope.token(item)
    else:
        scope.chunk(item)


def _traced_gen(scope: RunScope, gen: Generator[Any, Any, Any]) -> Generator[Any, Any, Any]:
    """Run ``gen`` as ``scope``'s run: current only while the generator's body runs.

    The body's own current run (a ``trace`` block open across a ``yield``) is kept from
    one resumption to the next; values sent and exceptions thrown in are passed on.
    """
    scope._start(make_current=False)
    inner: Optional[RunScope] = scope  # the current run as the body last left it
    total: Any = None
    error: Optional[BaseException] = None
    result: Any = None
    sent: Any = None
    thrown: Optional[BaseException] = None
    try:
        while True:
            token = _CURRENT.set(inner)
            try:
                if thrown is not None:
                    exc, thrown = thrown, None
                    item = gen.throw(exc)
                else:
                    item = gen.send(sent)
            except StopIteration as stop:
                result = stop.value
                break
            finally:
                inner = _CURRENT.get()
                _CURRENT.reset(token)
            _report(scope, item)
            total = accumulate(total, item)
            try:
                sent = yield item
            except GeneratorExit:
                raise
            except BaseException as exc:  # thrown in by the consumer: the body handles it
                thrown = exc
    except BaseException as exc:
        error = exc
        if isinstance(exc, GeneratorExit):
            gen.close()
        raise
    finally:
        scope.outputs = total
        scope._finish(error)
    return result


async def _traced_agen(
    scope: RunScope, agen: AsyncGenerator[Any, Any]
) -> AsyncGenerator[Any, None]:
    """Run ``agen`` as ``scope``'s run: current only while the generator's body runs.

    The body's own current run is kept from one resumption to the next, as for
    :func:`_traced_gen`; ``asend`` and ``athrow`` are not passed on.
    """
    scope._start(make_current=False)
    inner: Optional[RunScope] = scope
    total: Any = None
    error: Optional[BaseException] = None
    try:
        while True:
            token = _CURRENT.set(inner)
            try:
                item = await agen.__anext__()
            except StopAsyncIteration:
                break
            finally:
                inner = _CURRENT.get()
                _CURRENT.reset(token)
            _report(scope, item)
            total = accumulate(total, item)
            yield item
    except BaseException as exc:
        error = exc
        if isinstance(exc, GeneratorExit):
            await agen.aclose()
        raise
    finally:
        scope.outputs = total
        scope._finish(error)


# -- carrying the current run into threads ---------------------------------------------


def bind_context(fn: Callable[..., T]) -> Callable[..., T]:
    """Return ``fn`` bound to a copy of the current context (and so to the current run).

    Pass the result to ``threading.Thread(target=...)`` or an executor, so runs traced in
    the thread nest under the run that is open here.
    """
    context = contextvars.copy_context()

    @functools.wraps(fn)
    def run_in_context(*args: Any, **kwargs: Any) -> T:
        # A copy per call: one context cannot be entered by two threads at once.
        return context.copy().run(fn, *args, **kwargs)

    return run_in_context


class ContextThreadPoolExecutor(ThreadPoolExecutor):
    """A thread pool whose tasks run in a copy of the submitter's context.

    Runs traced in a task nest under the run that was open where it was submitted, which
    a plain ``ThreadPoolExecutor`` does not do (nor LangChain's callbacks in threads).
    """

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Schedule ``fn(*args, **kwargs)`` in a copy of the current context."""
        context = contextvars.copy_context()
        return super().submit(context.run, fn, *args, **kwargs)


class ContextThread(threading.Thread):
    """A ``threading.Thread`` whose target runs in a copy of the context that started it.

    Runs traced in the thread nest under the run that was open where :meth:`start` was
    called, as OpenTelemetry's threading instrumentation does; a plain ``Thread`` starts
    with an empty context, so they would be orphans (see :func:`orphan_runs`).

    Example:
        >>> worker = ContextThread(target=print, args=("in the caller's context",))
        >>> worker.start(); worker.join()
        in the caller's context
    """

    _logstream_context: Optional[contextvars.Context] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Make a subclass's own ``run`` run in the copied context too."""
        super().__init_subclass__(**kwargs)
        own_run = cls.__dict__.get("run")
        if inspect.isfunction(own_run):  # a plain method (not a static or class one)
            cls.run = _run_in_copied_context(own_run)  # type: ignore[method-assign]

    def start(self) -> None:
        """Copy the current context, then start the thread."""
        self._logstream_context = contextvars.copy_context()
        super().start()

    def run(self) -> None:
        """Run the target (or an overriding ``run``'s body) in the copied context."""
        context, self._logstream_context = self._logstream_context, None  # entered once
        if context is None:
            super().run()
        else:
            context.run(super().run)


def _run_in_copied_context(run: Callable[[ContextThread], None]) -> Callable[..., None]:
    """Wrap a ``ContextThread`` subclass's ``run`` to enter the copied context (once)."""

    @functools.wraps(run)
    def run_in_context(self: ContextThread) -> None:
        context, self._logstream_context = self._logstream_context, None
        if context is None:  # not started by start(), or already inside the context
            run(self)
        else:
            context.run(run, self)

    return run_in_context


def run_in_executor(
    loop: Optional[asyncio.AbstractEventLoop],
    executor: Any,
    fn: Callable[..., T],
    *args: Any,
) -> asyncio.Future[T]:
    """``loop.run_in_executor(executor, fn, *args)``, with ``fn`` in a copy of this context.

    ``loop.run_in_executor`` does not copy the caller's context (``asyncio.to_thread``
    does), so runs traced in ``fn`` would be orphans; this one nests them under the run
    open here.

    Args:
        loop: The event loop; the running loop if ``None``.
        executor: A ``concurrent.futures.Executor``, or ``None`` for the loop's default.
        fn: The function to call in the executor.
        *args: Its positional arguments.

    Returns:
        The asyncio future of the call's result.
    """
    if loop is None:
        loop = asyncio.get_running_loop()
    context = contextvars.copy_context()
    return loop.run_in_executor(executor, functools.partial(context.run, fn, *args))
