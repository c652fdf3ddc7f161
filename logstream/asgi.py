"""A framework-free ASGI app that serves run logs live, resumable, to any number of clients.

:class:`RunLogApp` is a plain ASGI callable (no web framework; run it with any ASGI server,
e.g. ``uvicorn``). It serves one or many :class:`~logstream._wire.LogSource` objects (an
in-process :class:`~logstream.PositionedLog`, or a Redis source whose producer is another
process):

==============================  ===========================================================
route                           response
==============================  ===========================================================
``GET /runs``                   ``{"runs": [{"id", "log_id", "ended", "error"}, ...]}``
``GET /runs/{id}/state``        ``{"id", "log_id", "position", "state", "ended", "error"}``
``GET /runs/{id}/stream``       ``text/event-stream``: a snapshot (``?history=1``: every
                                patch from the first), then live patches, then ``event:
                                end``; each frame's ``id`` is ``<log_id>:<position>``
unknown run or path             404 ``{"error": "not_found", "message": ...}``
another method                  405 ``{"error": "method_not_allowed", ...}``
==============================  ===========================================================

A client that reconnects sends the last id it saw (``Last-Event-ID``, as browsers'
``EventSource`` does by itself, or ``?last_event_id=``) and gets exactly the patches it
missed, or a snapshot and the tail when they were compacted. An id from another run, from
the future, or that is not an id gets one ``event: error`` frame (its ``data`` names the
error class, the log and the positions) and the response ends: never a silent gap.
While no frame comes, a ``: keep-alive`` comment goes out every ``keep_alive`` seconds.
A client that disconnects (``http.disconnect``) ends its subscription at once.

More routes go in with :meth:`RunLogApp.route` (a viewer page, say).

Example:
    >>> from logstream import PositionedLog
    >>> app = RunLogApp({"demo": PositionedLog("demo")})
    >>> [route.pattern for route in app.routes]
    ['/runs', '/runs/{run_id}/state', '/runs/{run_id}/stream']
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Awaitable, Mapping, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, TypeVar, Union
from urllib.parse import parse_qsl

from ._errors import ConfigError
from ._serialize import dumps
from ._sinks import sse_error, sse_wire
from ._wire import LogSource, error_payload, resume_position

__all__ = ["Handler", "Request", "Route", "RunLogApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_YIELD_EVERY = 16
_T = TypeVar("_T")

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # nginx: do not buffer the stream
]


@dataclass(frozen=True)
class Request:
    """What a route handler gets: the request, read from the ASGI scope.

    Attributes:
        method: ``"GET"``, ...
        path: The path, percent-decoded.
        params: The route's ``{name}`` parts, by name.
        query: The query string's parameters (the last of each name).
        headers: The headers, names lower-cased (the last of each name).
        scope: The ASGI scope.
        receive: The ASGI ``receive`` callable.
    """

    method: str
    path: str
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    scope: Scope = field(repr=False)
    receive: Receive = field(repr=False)


Handler = Callable[[Request, Send], Awaitable[None]]
"""A route handler: ``async def handler(request, send)``; it sends the whole response."""


@dataclass(frozen=True)
class Route:
    """One route: a method, a path pattern with ``{name}`` parts, and its handler.

    Attributes:
        method: The HTTP method.
        pattern: The path, e.g. ``"/runs/{run_id}/state"`` (a part matches up to a ``/``).
        handler: The handler.
    """

    method: str
    pattern: str
    handler: Handler
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Compile the pattern."""
        parts = re.split(r"\{(\w+)\}", self.pattern)
        text = "".join(
            re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
            for index, part in enumerate(parts)
        )
        object.__setattr__(self, "regex", re.compile(text))


async def send_json(send: Send, status: int, body: Any, headers: Any = ()) -> None:
    """Send a whole JSON response (``dumps`` renders ``body``).

    Args:
        send: The ASGI ``send`` callable.
        status: The HTTP status.
        body: The value to send as JSON.
        headers: More ``(name, value)`` byte pairs.
    """
    data = dumps(body).encode("ascii")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode("ascii")),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class RunLogApp:
    """Serve run logs over HTTP: a list, each one's state as JSON, and a resumable SSE stream.

    Args:
        sources: One source (served under its ``log_id``), or a mapping of run ids to
            sources. The mapping is read at each request, so a ``dict`` you add runs to
            (or your own ``Mapping``) serves runs as they come. A mapping that is not a
            ``dict`` (``RedisLogs``) is read in a worker thread (``asyncio.to_thread``), so
            a lookup that waits on its store holds up only its own request.
        keep_alive: Seconds without a frame before a ``: keep-alive`` comment is sent.
        retry: If given, sent first as the SSE ``retry:`` field (milliseconds a browser
            waits before reconnecting).

    Raises:
        ConfigError: ``keep_alive`` is not a positive number, ``retry`` not an int >= 0,
            or ``sources`` neither a source nor a mapping.
    """

    def __init__(
        self,
        sources: Union[LogSource, Mapping[str, LogSource]],
        *,
        keep_alive: float = 15.0,
        retry: Optional[int] = None,
    ) -> None:
        """Build the app with its three routes."""
        if isinstance(sources, Mapping):
            self.sources: Mapping[str, LogSource] = sources
        elif isinstance(sources, LogSource):
            self.sources = {sources.log_id: sources}
        else:
            msg = (
                f"RunLogApp serves a LogSource or a mapping of run ids to sources, not "
                f"{type(sources).__name__}"
            )
            raise ConfigError(msg)
        if (
            isinstance(keep_alive, bool)
            or not isinstance(keep_alive, (int, float))
            or not keep_alive > 0
        ):
            msg = f"keep_alive must be a number of seconds > 0, got {keep_alive!r}"
            raise ConfigError(msg)
        if retry is not None and (type(retry) is not int or retry < 0):
            msg = f"retry must be None or an int >= 0 (milliseconds), got {retry!r}"
            raise ConfigError(msg)
        self.keep_alive = float(keep_alive)
        self.retry = retry
        self.routes: list[Route] = []
        """The routes, tried in order; :meth:`route` adds more."""
        self.route("GET", "/runs")(self._list)
        self.route("GET", "/runs/{run_id}/state")(self._state)
        self.route("GET", "/runs/{run_id}/stream")(self._stream)

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Add a route; use as a decorator on ``async def handler(request, send)``.

        Args:
            method: The HTTP method, e.g. ``"GET"``.
            pattern: The path, with ``{name}`` parts that come in ``request.params``.

        Returns:
            A decorator that adds the handler and returns it unchanged.
        """

        def add(handler: Handler) -> Handler:
            self.routes.append(Route(method.upper(), pattern, handler))
            return handler

        return add

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection: ``http``; ``lifespan`` acknowledged; websockets refused."""
        kind = scope["type"]
        if kind == "lifespan":
            await _lifespan(receive, send)
            return
        if kind == "websocket":  # not served: refuse the handshake (HTTP 403)
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        if kind != "http":
            msg = f"RunLogApp serves HTTP only, not {kind!r} connections"
            raise RuntimeError(msg)
        path: str = scope["path"]
        allowed = []
        for route in self.routes:
            found = route.regex.fullmatch(path)
            if found is None:
                continue
            if route.method != scope["method"]:
                allowed.append(route.method)
                continue
            request = Request(
                method=scope["method"],
                path=path,
                params=found.groupdict(),
                query=dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"))),
                headers={
                    name.decode("latin-1").lower(): value.decode("latin-1")
                    for name, value in scope.get("headers", ())
                },
                scope=scope,
                receive=receive,
            )
            await route.handler(request, send)
            return
        if allowed:
            body = {
                "error": "method_not_allowed",
                "message": f"{scope['method']} {path} is not served; use {', '.join(allowed)}",
            }
            await send_json(send, 405, body, [(b"allow", ", ".join(allowed).encode())])
            return
        await _not_found(send, f"nothing is served at {path}; GET /runs lists the runs")

    async def _read(self, lookup: Callable[[], _T]) -> _T:
        """Run a lookup in ``sources``: inline for a ``dict``, else in a worker thread.

        A mapping that asks a store (``RedisLogs``) may wait on the network for up to its
        timeout; in a thread, that wait holds up only this request, not the event loop.
        """
        if isinstance(self.sources, dict):
            return lookup()
        return await asyncio.to_thread(lookup)

    # -- the routes ---------------------------------------------------------------------

    async def _source(self, request: Request, send: Send) -> Optional[LogSource]:
        """Return the run's source, or ``None`` once a 404 (or a 503: lookup failed) is sent."""
        run_id = request.params["run_id"]
        try:
            source = await self._read(lambda: self.sources.get(run_id))
        except Exception as exc:  # a mapping that asks a store that is down (RedisLogs)
            await _unavailable(send, run_id, None, exc)
            return None
        if source is None:
            await _not_run(send, request)
        return source

    async def _list(self, request: Request, send: Send) -> None:
        runs = []
        try:
            sources = await self._read(lambda: list(self.sources.items()))
        except Exception as exc:  # a mapping that asks a store that is down (RedisLogs)
            await _unavailable(send, None, None, exc)
            return
        for run_id, source in sources:
            try:
                end = await source.aend_record()
            except Exception as exc:  # a source that cannot be read (its store is down)
                await _unavailable(send, run_id, source, exc)
                return
            runs.append(
                {
                    "id": run_id,
                    "log_id": source.log_id,
                    "ended": end is not None,
                    "error": None if end is None else end.error,
                }
            )
        await send_json(send, 200, {"runs": runs})

    async def _state(self, request: Request, send: Send) -> None:
        source = await self._source(request, send)
        if source is None:
            return
        try:
            snap = await source.asnapshot()
            end = await source.aend_record()
        except Exception as exc:  # a source that cannot be read (its store is down)
            await _unavailable(send, request.params["run_id"], source, exc)
            return
        ended = end is not None and end.position == snap.position
        body = {
            "id": request.params["run_id"],
            "log_id": snap.log_id,
            "position": snap.position,
            "state": snap.ops[0]["value"],
            "ended": ended,
            "error": end.error if ended and end is not None else None,
        }
        await send_json(send, 200, body)

    async def _stream(self, request: Request, send: Send) -> None:
        source = await self._source(request, send)
        if source is None:
            return
        last = request.headers.get("last-event-id") or request.query.get("last_event_id")
        history = request.query.get("history", "") in ("1", "true", "yes")
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        pump = asyncio.ensure_future(self._pump(source, last, history, send))
        watch = asyncio.ensure_future(_wait_disconnect(request.receive))
        try:
            await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (pump, watch):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await pump  # its errors are sent as frames; a cancellation or a gone client ends it
            with contextlib.suppress(asyncio.CancelledError):
                await watch

    async def _pump(
        self, source: LogSource, last: Optional[str], history: bool, send: Send
    ) -> None:
        """Send the frames of ``source`` (or one error frame), then end the body."""

        async def body(text: str) -> None:
            try:
                await send({"type": "http.response.body", "body": text.encode(), "more_body": True})
            except OSError as exc:  # the client went away while we wrote
                raise _ClientGone from exc

        try:
            if self.retry is not None:
                await body(f"retry: {self.retry}\n\n")
            after = None if not last else resume_position(source.log_id, last)
            items = source.aframes(after, snapshot_first=not history, timeout=self.keep_alive)
            try:
                sent = 0
                async for item in items:
                    await body(sse_wire(item))
                    sent += 1
                    if sent % _YIELD_EVERY == 0:
                        # A server's send returns at once while the socket takes the
                        # bytes, and a source with frames ready never waits: let the loop
                        # see a disconnect (and serve other clients) during a long replay.
                        await asyncio.sleep(0)
            finally:
                close = getattr(items, "aclose", None)
                if close is not None:
                    await close()
        except _ClientGone:
            return
        except Exception as exc:  # a resume error, a failed source: said, then ended
            try:
                await body(sse_error(exc, source.log_id))
            except _ClientGone:
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class _ClientGone(Exception):
    """Writing to the client failed: it disconnected (not an error of the source)."""


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _not_found(send: Send, message: str) -> None:
    await send_json(send, 404, {"error": "not_found", "message": message})


async def _not_run(send: Send, request: Request) -> None:
    run_id = request.params["run_id"]
    await _not_found(send, f"no run {run_id!r} is served here; GET /runs lists the runs")


async def _unavailable(
    send: Send, run_id: Optional[str], source: Optional[LogSource], exc: Exception
) -> None:
    body = {**error_payload(exc, None if source is None else source.log_id), "run": run_id}
    await send_json(send, 503, body)
