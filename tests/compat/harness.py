"""Differential harness: run a real LangChain runnable under a log-stream handler.

The harness drives one *scenario* (a runnable factory, an input, an execution
mode, handler keyword arguments, ...) against a given handler class and collects
every patch the handler emits as a list of op lists.  ``normalize`` turns the
collected ops into a plain, comparable form (run ids, timestamps and LangChain
objects are made deterministic) and ``assert_same_ops`` gives a readable diff.

Two collection strategies exist because the two handler families expose their
stream differently:

* LangChain's handler binds its memory stream to the event loop that is current
  when it is constructed.  For async modes it is constructed inside the running
  loop; for sync modes a fresh loop is created and set first, the runnable runs
  synchronously, then that loop is run to drain whatever was queued.
* Our handler can be consumed with ``async for`` from any loop or with a plain
  blocking ``for``; ``close()`` ends iteration when ``auto_close`` is off.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime as _dt
import enum
import json
import os
import pprint
import re
import threading
import uuid
from collections.abc import AsyncGenerator, Generator, Iterable, Sequence
from typing import Any, Callable, Optional, cast

import pydantic
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tracers.log_stream import (
    LogStreamCallbackHandler as LangChainHandler,
)

# ---------------------------------------------------------------------------
# Handler classes under comparison
# ---------------------------------------------------------------------------

#: Set ``LOGSTREAM_COMPAT_CANDIDATE=langchain`` to compare LangChain's handler
#: with itself (a sanity check of the harness and the normalizer).
CANDIDATE_ENV = "LOGSTREAM_COMPAT_CANDIDATE"

#: Seconds any single wait in the harness may take before the scenario fails.
TIMEOUT = 10.0

MODES = ("astream", "ainvoke", "invoke", "stream")
ASYNC_MODES = ("astream", "ainvoke")
SYNC_MODES = ("invoke", "stream")
#: ``batch`` / ``abatch`` (input: a list) run several root calls concurrently.
BATCH_MODES = ("batch", "abatch")
_ASYNC_DISPATCH = (*ASYNC_MODES, "abatch")


def candidate_handler_class() -> type:
    """Return the handler class compared against LangChain's."""
    if os.environ.get(CANDIDATE_ENV, "").strip().lower() == "langchain":
        return LangChainHandler
    from logstream import LogStreamCallbackHandler

    return LogStreamCallbackHandler


def is_langchain_handler(handler_cls: type) -> bool:
    """Whether ``handler_cls`` must be driven like LangChain's loop-bound handler."""
    return issubclass(handler_cls, LangChainHandler)


# ---------------------------------------------------------------------------
# Scenario description and result
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Scenario:
    """One run of a runnable under a log-stream handler."""

    factory: Callable[..., Runnable[Any, Any]]
    """Builds a fresh runnable (called once per handler run)."""
    input: Any
    mode: str = "astream"
    """One of ``astream``, ``ainvoke``, ``invoke``, ``stream`` (or ``batch``/``abatch``)."""
    handler_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    consumer_waiting: bool = False
    """Start the consumer before the runnable runs (instead of draining after)."""
    config: Optional[dict[str, Any]] = None
    """Extra RunnableConfig entries merged with ``{"callbacks": [handler]}``."""
    take: Optional[int] = None
    """For stream modes: stop consuming the output after this many chunks."""
    repeat: int = 1
    """Run the runnable this many times in a row with the same handler (each run
    is a separate root-level call; later ones become log entries, not roots)."""
    handler_in_factory: bool = False
    """Call ``factory(handler)`` and let it attach the handler itself (e.g. with
    ``with_config(callbacks=[handler])`` on an inner runnable) instead of
    passing it in the call config."""
    ours_collect: str = "auto"
    """How our handler is drained in sync modes: ``auto``/``sync`` (blocking
    ``for``) or ``async`` (``async for`` inside a new loop)."""


@dataclasses.dataclass
class Result:
    """What a scenario produced."""

    patches: list[list[dict[str, Any]]]
    output: Any = None
    error: Optional[BaseException] = None
    closed: Optional[bool] = None
    """Whether the stream was closed by the handler itself (None: unknown)."""
    handler: Any = dataclasses.field(default=None, repr=False, compare=False)
    """The handler instance that produced the patches (for extra inspection)."""

    @property
    def error_repr(self) -> Optional[str]:
        """Type and message of the raised exception, if any."""
        if self.error is None:
            return None
        return f"{type(self.error).__name__}: {self.error}"


def _build(scenario: Scenario, handler: Any) -> Runnable[Any, Any]:
    if scenario.handler_in_factory:
        return scenario.factory(handler)
    return scenario.factory()


def _config_for(handler: Any, scenario: Scenario) -> RunnableConfig:
    config: dict[str, Any] = dict(scenario.config or {})
    if scenario.handler_in_factory:
        return cast(RunnableConfig, config)
    callbacks = list(config.pop("callbacks", None) or [])
    config["callbacks"] = [*callbacks, handler]
    return cast(RunnableConfig, config)


def _run_sync(runnable: Runnable[Any, Any], scenario: Scenario, config: RunnableConfig) -> Any:
    if scenario.repeat != 1:
        once = dataclasses.replace(scenario, repeat=1)
        return [_run_sync(runnable, once, config) for _ in range(scenario.repeat)]
    if scenario.mode == "invoke":
        return runnable.invoke(scenario.input, config)
    if scenario.mode == "batch":
        return runnable.batch(scenario.input, config)
    if scenario.mode == "stream":
        chunks = []
        gen = cast(Generator[Any, None, None], runnable.stream(scenario.input, config))
        try:
            for chunk in gen:
                chunks.append(chunk)
                if scenario.take is not None and len(chunks) >= scenario.take:
                    break
        finally:
            gen.close()
        return chunks
    raise ValueError(f"not a sync mode: {scenario.mode}")


async def _run_async(
    runnable: Runnable[Any, Any], scenario: Scenario, config: RunnableConfig
) -> Any:
    if scenario.repeat != 1:
        once = dataclasses.replace(scenario, repeat=1)
        return [await _run_async(runnable, once, config) for _ in range(scenario.repeat)]
    if scenario.mode == "ainvoke":
        return await runnable.ainvoke(scenario.input, config)
    if scenario.mode == "abatch":
        return await runnable.abatch(scenario.input, config)
    if scenario.mode == "astream":
        chunks = []
        agen = cast(AsyncGenerator[Any, None], runnable.astream(scenario.input, config))
        try:
            async for chunk in agen:
                chunks.append(chunk)
                if scenario.take is not None and len(chunks) >= scenario.take:
                    break
        finally:
            await agen.aclose()
        return chunks
    raise ValueError(f"not an async mode: {scenario.mode}")


def run_scenario(handler_cls: type, scenario: Scenario) -> Result:
    """Run ``scenario`` with a fresh ``handler_cls`` and collect every patch's ops."""
    if scenario.mode not in MODES + BATCH_MODES:
        raise ValueError(f"unknown mode {scenario.mode!r}")
    if is_langchain_handler(handler_cls):
        if scenario.mode in _ASYNC_DISPATCH:
            return asyncio.run(_langchain_async(handler_cls, scenario))
        return _langchain_sync(handler_cls, scenario)
    # Ours is always constructed outside any running loop: it must not need one.
    handler = handler_cls(**scenario.handler_kwargs)
    if scenario.mode in _ASYNC_DISPATCH:
        return asyncio.run(_ours_async(handler, scenario))
    return _ours_sync(handler, scenario)


# -- LangChain's handler -------------------------------------------------------


def _lc_queue(handler: Any) -> asyncio.Queue[Any]:
    return handler.receive_stream._queue  # type: ignore[no-any-return]


def _lc_done(handler: Any) -> object:
    return handler.receive_stream._done


#: Quiet period after which LangChain's stream is considered fully delivered.
QUIET_PERIOD = 0.02
SYNC_QUIET = 0.002


def _lc_has_done(handler: Any) -> bool:
    done = _lc_done(handler)
    return any(item is done for item in list(_lc_queue(handler)._queue))  # type: ignore[attr-defined]


async def _settle(
    handler: Any,
    expect_close: bool,
    quiet: float = QUIET_PERIOD,
    sink: Optional[list[list[dict[str, Any]]]] = None,
) -> None:
    """Let LangChain's pending callbacks deliver their patches.

    In async modes LangChain runs a sync handler's callbacks in executor
    threads and they hop back with ``call_soon_threadsafe``; after an early
    ``aclose()`` some of them finish in the background.  With ``expect_close``
    wait for the close marker; otherwise wait for a quiet period (nothing new
    queued, nor consumed into ``sink`` by a waiting consumer).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    quiet_since = loop.time()
    last = -1
    while loop.time() < deadline:
        await asyncio.sleep(0.001)
        if handler.receive_stream._is_closed or (expect_close and _lc_has_done(handler)):
            return
        size = _lc_queue(handler).qsize() + (len(sink) if sink is not None else 0)
        if size != last:
            last, quiet_since = size, loop.time()
        elif loop.time() - quiet_since >= (TIMEOUT if expect_close else quiet):
            return


async def _lc_drain(
    handler: Any, expect_close: bool, quiet: float = QUIET_PERIOD
) -> list[list[dict[str, Any]]]:
    """Collect what is queued on LangChain's stream, stopping at its close marker."""
    await _settle(handler, expect_close, quiet)
    queue = _lc_queue(handler)
    done = _lc_done(handler)
    out: list[list[dict[str, Any]]] = []
    if handler.receive_stream._is_closed:
        return out
    while not queue.empty():
        item = queue.get_nowait()
        if item is done:
            handler.receive_stream._is_closed = True
            break
        out.append(item.ops)
    return out


async def _lc_consume(handler: Any, sink: list[list[dict[str, Any]]]) -> None:
    async for patch in handler:
        sink.append(patch.ops)


async def _lc_finish_consumer(
    handler: Any,
    task: asyncio.Task[None],
    expect_close: bool,
    sink: list[list[dict[str, Any]]],
) -> None:
    """Wait for a waiting consumer; if the stream is never closed, stop it once idle."""
    await _settle(handler, expect_close, sink=sink)
    if not task.done() and _lc_queue(handler).empty() and not expect_close:
        # Nothing left to read and no close marker: the stream stays open
        # (auto_close=False).  Stop the consumer.
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        return
    await asyncio.wait_for(task, TIMEOUT)


def _lc_closed(handler: Any) -> bool:
    return bool(handler.receive_stream._is_closed)


async def _langchain_async(handler_cls: type, scenario: Scenario) -> Result:
    handler = handler_cls(**scenario.handler_kwargs)
    sink: list[list[dict[str, Any]]] = []
    task = asyncio.ensure_future(_lc_consume(handler, sink)) if scenario.consumer_waiting else None
    if task is not None:
        await asyncio.sleep(0)  # the consumer is now blocked waiting for patches
    runnable = _build(scenario, handler)
    output: Any = None
    error: Optional[BaseException] = None
    try:
        output = await _run_async(runnable, scenario, _config_for(handler, scenario))
    except Exception as e:
        error = e
    expect_close = scenario.handler_kwargs.get("auto_close", True)
    if task is not None:
        await _lc_finish_consumer(handler, task, expect_close, sink)
    # anything left (all of it without a consumer; nothing after a close marker)
    sink.extend(await _lc_drain(handler, expect_close))
    return Result(sink, output, error, _lc_closed(handler), handler)


def _langchain_sync(handler_cls: type, scenario: Scenario) -> Result:
    if scenario.consumer_waiting:
        return _langchain_sync_waiting(handler_cls, scenario)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        handler = handler_cls(**scenario.handler_kwargs)
        runnable = _build(scenario, handler)
        output: Any = None
        error: Optional[BaseException] = None
        try:
            output = _run_sync(runnable, scenario, _config_for(handler, scenario))
        except Exception as e:
            error = e
        expect_close = scenario.handler_kwargs.get("auto_close", True)
        # sync runs deliver everything before returning: no quiet period needed
        patches = loop.run_until_complete(_lc_drain(handler, expect_close, SYNC_QUIET))
        return Result(patches, output, error, _lc_closed(handler), handler)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def _langchain_sync_waiting(handler_cls: type, scenario: Scenario) -> Result:
    """Sync run while a consumer already waits on a loop in another thread."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:

        async def make() -> Any:
            return handler_cls(**scenario.handler_kwargs)

        handler = asyncio.run_coroutine_threadsafe(make(), loop).result(TIMEOUT)
        sink: list[list[dict[str, Any]]] = []

        async def start() -> asyncio.Task[None]:
            task = asyncio.ensure_future(_lc_consume(handler, sink))
            await asyncio.sleep(0)
            return task

        task = asyncio.run_coroutine_threadsafe(start(), loop).result(TIMEOUT)
        runnable = _build(scenario, handler)
        output: Any = None
        error: Optional[BaseException] = None
        try:
            output = _run_sync(runnable, scenario, _config_for(handler, scenario))
        except Exception as e:
            error = e

        expect_close = scenario.handler_kwargs.get("auto_close", True)

        async def finish() -> list[list[dict[str, Any]]]:
            await _lc_finish_consumer(handler, task, expect_close, sink)
            return await _lc_drain(handler, expect_close)

        sink.extend(asyncio.run_coroutine_threadsafe(finish(), loop).result(TIMEOUT))
        return Result(sink, output, error, _lc_closed(handler), handler)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(TIMEOUT)
        loop.close()


# -- our handler ---------------------------------------------------------------


#: How long our stream may take to end by itself after the root run ended.
CLOSE_WAIT = 3.0


def _ours_closed_flag(handler: Any) -> Optional[bool]:
    flag = getattr(handler, "closed", None)
    if callable(flag):
        flag = flag()
    return None if flag is None else bool(flag)


async def _ours_async(handler: Any, scenario: Scenario) -> Result:
    sink: list[list[dict[str, Any]]] = []

    async def consume() -> None:
        async for patch in handler:
            sink.append(patch.ops)

    task = asyncio.ensure_future(consume()) if scenario.consumer_waiting else None
    if task is not None:
        await asyncio.sleep(0)
    runnable = _build(scenario, handler)
    output: Any = None
    error: Optional[BaseException] = None
    try:
        output = await _run_async(runnable, scenario, _config_for(handler, scenario))
    except Exception as e:
        error = e
    auto_close = scenario.handler_kwargs.get("auto_close", True)
    closed: Optional[bool]
    if not auto_close:
        # give callbacks finishing in the background (early aclose) the same
        # quiet period LangChain's side gets before closing explicitly
        await asyncio.sleep(QUIET_PERIOD)
        closed = _ours_closed_flag(handler)
        handler.close()
    if task is None:
        task = asyncio.ensure_future(consume())
    if auto_close:
        # With auto_close the stream must end by itself when the root run ends
        # (successfully or not: LangChain closes on a root error too).
        done, _ = await asyncio.wait({task}, timeout=CLOSE_WAIT)
        closed = bool(done)
        if not done:
            handler.close()
    await asyncio.wait_for(task, TIMEOUT)
    return Result(sink, output, error, closed, handler)


def _ours_sync(handler: Any, scenario: Scenario) -> Result:
    sink: list[list[dict[str, Any]]] = []
    use_async = scenario.ours_collect == "async"
    failures: list[BaseException] = []

    def consume_blocking() -> None:
        try:
            if use_async:

                async def go() -> None:
                    async for patch in handler:
                        sink.append(patch.ops)

                asyncio.run(go())
            else:
                for patch in handler:
                    sink.append(patch.ops)
        except BaseException as e:
            failures.append(e)

    thread: Optional[threading.Thread] = None
    if scenario.consumer_waiting:
        thread = threading.Thread(target=consume_blocking, daemon=True)
        thread.start()
    runnable = _build(scenario, handler)
    output: Any = None
    error: Optional[BaseException] = None
    try:
        output = _run_sync(runnable, scenario, _config_for(handler, scenario))
    except Exception as e:
        error = e
    auto_close = scenario.handler_kwargs.get("auto_close", True)
    closed: Optional[bool]
    if not auto_close:
        closed = _ours_closed_flag(handler)
        handler.close()
    if thread is None:
        thread = threading.Thread(target=consume_blocking, daemon=True)
        thread.start()
    if auto_close:
        thread.join(CLOSE_WAIT)
        closed = not thread.is_alive()
        if not closed:
            handler.close()
    thread.join(TIMEOUT)
    if thread.is_alive():
        raise AssertionError(
            f"our handler's stream did not end within {TIMEOUT}s even after close() "
            f"(scenario mode={scenario.mode}, kwargs={scenario.handler_kwargs})"
        )
    if failures:
        raise failures[0]
    return Result(sink, output, error, closed, handler)


# -- direct use of a handler ----------------------------------------------------


def run_with_handler(
    handler_cls: type, handler_kwargs: dict[str, Any], action: Callable[[Any], Any]
) -> Result:
    """Construct a handler, call ``action(handler)`` synchronously, collect the patches.

    ``action`` may run runnables with the handler as a callback and call the
    handler's API directly.  Afterwards the stream is drained (our handler is
    closed explicitly first; ``closed`` records whether it was closed before).
    """
    output: Any = None
    error: Optional[BaseException] = None
    if is_langchain_handler(handler_cls):
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            handler = handler_cls(**handler_kwargs)
            try:
                output = action(handler)
            except Exception as e:
                error = e
            patches = loop.run_until_complete(_lc_drain(handler, False, SYNC_QUIET))
            return Result(patches, output, error, _lc_closed(handler), handler)
        finally:
            asyncio.set_event_loop(None)
            loop.close()
    handler = handler_cls(**handler_kwargs)
    try:
        output = action(handler)
    except Exception as e:
        error = e
    closed = _ours_closed_flag(handler)
    handler.close()
    patches = [patch.ops for patch in handler]
    return Result(patches, output, error, closed, handler)


# ---------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------

UUID_RE = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
ISO_MS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+00:00$")
TIME_KEYS = ("start_time", "end_time")
TIME_PLACEHOLDER = "<time>"


class Normalizer:
    """Replace run ids and timestamps by placeholders; flatten LangChain objects.

    UUIDs (as ``uuid.UUID`` objects or as substrings of any string, including
    dict keys and message ids such as ``run-<uuid>`` / ``lc_run--<uuid>``) are
    numbered by order of first appearance.  Values of ``start_time`` /
    ``end_time`` keys and of ops whose path ends in ``/start_time`` or
    ``/end_time`` become ``"<time>"`` when they are millisecond ISO-8601 UTC
    strings (any other shape is left visible so a format difference fails).
    """

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def _uuid(self, text: str) -> str:
        key = text.lower()
        if key not in self.ids:
            self.ids[key] = f"<id{len(self.ids)}>"
        return self.ids[key]

    def string(self, text: str) -> str:
        return UUID_RE.sub(lambda m: self._uuid(m.group(0)), text)

    def time(self, value: Any) -> Any:
        if isinstance(value, str) and ISO_MS_RE.match(value):
            return TIME_PLACEHOLDER
        return self.value(value)

    def value(self, obj: Any) -> Any:
        if obj is None or isinstance(obj, (bool, int, float)):
            return obj
        if isinstance(obj, str):
            return self.string(obj)
        if isinstance(obj, uuid.UUID):
            return {"__uuid__": self._uuid(str(obj))}
        if isinstance(obj, enum.Enum):
            return {"__enum__": f"{type(obj).__name__}.{obj.name}"}
        if isinstance(obj, (_dt.datetime, _dt.date)):
            return {"__datetime__": TIME_PLACEHOLDER}
        if isinstance(obj, dict):
            out: dict[Any, Any] = {}
            for k, v in obj.items():
                nk = self.string(k) if isinstance(k, str) else self.value(k)
                if isinstance(nk, (dict, list)):
                    nk = json.dumps(nk, sort_keys=True)
                out[nk] = self.time(v) if k in TIME_KEYS else self.value(v)
            return out
        if isinstance(obj, list):
            return [self.value(v) for v in obj]
        if isinstance(obj, tuple):
            return {"__tuple__": [self.value(v) for v in obj]}
        if isinstance(obj, (set, frozenset)):
            return {"__set__": sorted(repr(self.value(v)) for v in obj)}
        if isinstance(obj, BaseException):
            return {"__exception__": type(obj).__name__, "args": self.value(list(obj.args))}
        name = f"{type(obj).__module__}.{type(obj).__qualname__}"
        if isinstance(obj, pydantic.BaseModel):
            # Field by field (not model_dump()) so nested objects keep their class.
            return {"__class__": name, **self.value(dict(iter(obj)))}
        dump = getattr(obj, "model_dump", None)
        if callable(dump):
            return {"__class__": name, **self.value(dump())}
        if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
            fields = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
            return {"__class__": name, **self.value(fields)}
        if hasattr(obj, "__dict__"):
            return {"__class__": name, **self.value(dict(vars(obj)))}
        return {"__class__": name, "__repr__": self.string(repr(obj))}

    def op(self, op: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        path = op.get("path")
        for k, v in op.items():
            if k == "value" and isinstance(path, str) and path.endswith(TIME_KEYS):
                out[k] = self.time(v)
            else:
                out[k] = self.value(v)
        return out

    def patches(self, patches: Iterable[Sequence[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
        return [[self.op(op) for op in ops] for ops in patches]


def normalize(patches: Iterable[Sequence[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Normalize a patch sequence with a fresh id numbering."""
    return Normalizer().patches(patches)


def normalize_result(result: Result) -> dict[str, Any]:
    """Normalize patches, the runnable's output and error with one id numbering."""
    n = Normalizer()
    return {
        "patches": n.patches(result.patches),
        "output": n.value(result.output),
        "error": result.error_repr,
    }


# ---------------------------------------------------------------------------
# Rebuilding state and comparing
# ---------------------------------------------------------------------------


def rebuild_state(patches: Iterable[Sequence[dict[str, Any]]]) -> Any:
    """Apply every op in order (JSON Patch semantics) and return the final state."""
    import jsonpatch

    state: Any = None
    for ops in patches:
        state = jsonpatch.apply_patch(state, copy.deepcopy(list(ops)))
    return state


def _fmt(value: Any) -> str:
    return pprint.pformat(value, width=100, sort_dicts=False)


def first_difference(expected: Sequence[Any], actual: Sequence[Any]) -> Optional[int]:
    """Index of the first differing element (or the shorter length), None if equal."""
    for i, (a, b) in enumerate(zip(expected, actual)):
        if a != b:
            return i
    if len(expected) != len(actual):
        return min(len(expected), len(actual))
    return None


def describe_difference(
    expected: Sequence[Sequence[dict[str, Any]]],
    actual: Sequence[Sequence[dict[str, Any]]],
    *,
    label_expected: str = "langchain",
    label_actual: str = "ours",
) -> Optional[str]:
    """Human-readable description of the first differing patch, or None."""
    idx = first_difference(expected, actual)
    if idx is None:
        return None
    lines = [
        f"patch sequences differ at patch #{idx} "
        f"({label_expected}: {len(expected)} patches, {label_actual}: {len(actual)} patches)"
    ]
    exp = expected[idx] if idx < len(expected) else "<no patch>"
    act = actual[idx] if idx < len(actual) else "<no patch>"
    if (
        isinstance(exp, Sequence)
        and isinstance(act, Sequence)
        and not isinstance(exp, str)
        and not isinstance(act, str)
    ):
        op_idx = first_difference(exp, act)
        lines.append(f"first differing op within the patch: #{op_idx}")
    lines.append(f"--- {label_expected} patch #{idx}:\n{_fmt(exp)}")
    lines.append(f"+++ {label_actual} patch #{idx}:\n{_fmt(act)}")
    if idx > 0:
        lines.append(f"(patch #{idx - 1}, identical on both sides:\n{_fmt(expected[idx - 1])})")
    return "\n".join(lines)


def assert_same_ops(
    expected: Result,
    actual: Result,
    *,
    label_expected: str = "langchain",
    label_actual: str = "ours",
) -> None:
    """Assert two results have identical normalized patches, output and error."""
    ne, na = normalize_result(expected), normalize_result(actual)
    diff = describe_difference(
        ne["patches"], na["patches"], label_expected=label_expected, label_actual=label_actual
    )
    if diff is not None:
        raise AssertionError(diff)
    if (
        expected.closed is not None
        and actual.closed is not None
        and expected.closed != actual.closed
    ):
        raise AssertionError(
            f"stream closed by the handler itself: {label_expected}={expected.closed} "
            f"{label_actual}={actual.closed} (ops were identical)"
        )
    if ne["error"] != na["error"]:
        raise AssertionError(
            f"raised errors differ: {label_expected}={ne['error']!r} {label_actual}={na['error']!r}"
        )
    if ne["output"] != na["output"]:
        raise AssertionError(
            f"runnable outputs differ:\n--- {label_expected}:\n{_fmt(ne['output'])}\n"
            f"+++ {label_actual}:\n{_fmt(na['output'])}"
        )


def compare(scenario: Scenario, candidate: Optional[type] = None) -> tuple[Result, Result]:
    """Run ``scenario`` with LangChain's handler and the candidate; assert identical ops."""
    cand = candidate if candidate is not None else candidate_handler_class()
    expected = run_scenario(LangChainHandler, scenario)
    actual = run_scenario(cand, scenario)
    assert_same_ops(expected, actual)
    return expected, actual


# -- order-insensitive comparison (for genuinely concurrent runs) --------------


def _log_key(path: str) -> Optional[str]:
    if path.startswith("/logs/"):
        return path[len("/logs/") :].split("/", 1)[0]
    return None


def _canon_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def _is_stream_patch(ops: Sequence[dict[str, Any]]) -> bool:
    return len(ops) == 1 and ops[0]["op"] == "add" and ops[0]["path"].endswith("/streamed_output/-")


def _sort_stream_runs(patches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = []
    run: list[list[dict[str, Any]]] = []
    for ops in [*patches, None]:
        if ops is not None and _is_stream_patch(ops):
            run.append(ops)
            continue
        out.extend(sorted(run, key=_canon_json))
        run = []
        if ops is not None:
            out.append(ops)
    return out


def _canon_entry(entry: Any) -> Any:
    if isinstance(entry, dict) and isinstance(entry.get("streamed_output"), list):
        return {**entry, "streamed_output": sorted(entry["streamed_output"], key=_canon_json)}
    return entry


def canonical_unordered(patches: Sequence[Sequence[dict[str, Any]]]) -> dict[str, Any]:
    """An order-insensitive but strict canonical form of a patch sequence.

    For runs whose children execute concurrently (parallel branches), where
    LangChain itself interleaves patches nondeterministically:

    * every patch must touch at most one log key (checked);
    * patches that touch no log key (the root ``replace``) are kept in order;
    * for each log key the subsequence of its patches is kept in order, except
      that a run of consecutive single ``streamed_output/-`` patches is
      compared as a multiset (a parallel parent streams its branches' chunks
      in completion order);
    * the collection of per-key subsequences is compared as a sorted multiset
      with the key itself replaced by ``<key>`` and ids numbered per
      subsequence (so which concurrent branch won the ``name`` / ``name:2``
      key does not matter, but everything each branch emitted does);
    * the set of keys, the number of patches and the rebuilt final state (with
      ``logs`` turned into a sorted list of normalized entries) are included.

    Dicts are compared regardless of key order (as JSON objects are).
    """
    root: list[list[dict[str, Any]]] = []
    per_key: dict[str, list[list[dict[str, Any]]]] = {}
    for ops in patches:
        keys = {_log_key(op["path"]) for op in ops}
        if len(keys) != 1:
            raise AssertionError(f"patch touches several log keys: {ops!r}")
        (key,) = keys
        if key is None:
            root.append(list(ops))
        else:
            per_key.setdefault(key, []).append(list(ops))

    def rekey(key: str, ops: list[list[dict[str, Any]]]) -> str:
        prefix = f"/logs/{key}"
        renamed = [
            [{**op, "path": "/logs/<key>" + op["path"][len(prefix) :]} for op in p] for p in ops
        ]
        return _canon_json(_sort_stream_runs(normalize(renamed)))

    state = rebuild_state(patches)
    n = Normalizer()
    root_norm = n.patches(root)
    state_norm: Any = None
    if isinstance(state, dict):
        logs = state.get("logs", {})
        rest = {k: v for k, v in state.items() if k != "logs"}
        state_norm = {
            **n.value(rest),
            "logs": sorted(_canon_json(_canon_entry(Normalizer().value(v))) for v in logs.values()),
        }
    return {
        "patch_count": len(patches),
        "root_patches": root_norm,
        "keys": sorted(per_key),
        "per_key": sorted(rekey(k, v) for k, v in per_key.items()),
        "state": state_norm,
    }


def assert_same_ops_unordered(expected: Result, actual: Result) -> None:
    """Assert two results agree under ``canonical_unordered`` (plus output/error)."""
    ce, ca = canonical_unordered(expected.patches), canonical_unordered(actual.patches)
    for field in ce:
        if ce[field] != ca[field]:
            raise AssertionError(
                f"unordered comparison differs in {field!r}:\n--- langchain:\n{_fmt(ce[field])}"
                f"\n+++ ours:\n{_fmt(ca[field])}"
            )
    if (
        expected.closed is not None
        and actual.closed is not None
        and expected.closed != actual.closed
    ):
        raise AssertionError(f"closed by itself differs: {expected.closed} vs {actual.closed}")
    if expected.error_repr != actual.error_repr:
        raise AssertionError(f"errors differ: {expected.error_repr!r} vs {actual.error_repr!r}")

    def output_form(output: Any) -> Any:
        norm = Normalizer().value(output)
        # streamed chunks of concurrent branches arrive in any order
        return sorted(map(_canon_json, norm)) if isinstance(norm, list) else norm

    if output_form(expected.output) != output_form(actual.output):
        raise AssertionError(f"outputs differ: {expected.output!r} vs {actual.output!r}")


__all__ = [
    "ASYNC_MODES",
    "BATCH_MODES",
    "MODES",
    "SYNC_MODES",
    "LangChainHandler",
    "Normalizer",
    "Result",
    "Scenario",
    "assert_same_ops",
    "assert_same_ops_unordered",
    "candidate_handler_class",
    "canonical_unordered",
    "compare",
    "describe_difference",
    "normalize",
    "normalize_result",
    "rebuild_state",
    "run_scenario",
    "run_with_handler",
]
