"""logstream.asgi.RunLogApp under a real uvicorn server, with real httpx clients."""

from __future__ import annotations

import asyncio
import copy
import importlib.util
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any, Optional

import httpx
import jsonpatch
import pytest

from logstream import ConfigError, PositionedLog, StaleResumeIdError, stream_log, traced
from logstream._wire import Frame, LogEnd, WireItem
from logstream.asgi import Request, RunLogApp, send_json
from tests.server_helpers import serving
from tests.threading_helpers import TIMEOUT, join_thread, run_in_thread


def events(response: httpx.Response) -> Iterator[dict[str, str]]:
    """Parse a text/event-stream body into events (comments as {"comment": ...})."""
    event: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            event[name] = event[name] + "\n" + value if name in event else value
    if event:
        yield event


class Client:
    """A browser-like SSE client: applies patches, remembers the last id, can reconnect."""

    def __init__(self, base: str, run: str) -> None:
        self.url = f"{base}/runs/{run}/stream"
        self.state: Any = None
        self.last_id: Optional[str] = None
        self.positions: list[int] = []
        self.snapshots = 0
        self.end: Optional[dict[str, Any]] = None
        self.errors: list[dict[str, Any]] = []

    def read(self, stop_after: Optional[int] = None, **params: str) -> None:
        """Read until the end (or ``stop_after`` data frames, then drop the connection)."""
        headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
        count = 0
        with (
            httpx.Client(timeout=TIMEOUT) as http,
            http.stream("GET", self.url, headers=headers, params=params) as response,
        ):
            assert response.status_code == 200
            for event in events(response):
                kind = event.get("event")
                if kind == "data":
                    ops = json.loads(event["data"])["ops"]
                    self.state = jsonpatch.apply_patch(
                        self.state, copy.deepcopy(ops), in_place=True
                    )
                    self.last_id = event["id"]
                    self.positions.append(int(event["id"].rpartition(":")[2]))
                    if len(ops) == 1 and ops[0]["op"] == "replace" and ops[0]["path"] == "":
                        self.snapshots += 1
                    count += 1
                    if stop_after is not None and count >= stop_after:
                        return
                elif kind == "end":
                    self.end = json.loads(event["data"])
                elif kind == "error":
                    self.errors.append(json.loads(event["data"]))


def live_log(tokens: int = 60, delay: float = 0.002) -> PositionedLog:
    """A log pumped live from a traced agent that streams ``tokens`` tokens slowly."""

    @traced(run_type="llm")
    def model(n: int) -> Iterator[str]:
        for i in range(n):
            time.sleep(delay)
            yield f"t{i} "

    @traced(run_type="tool")
    def search(q: str) -> str:
        return q.upper()

    def agent(q: str) -> str:
        return search(q) + "".join(model(tokens))

    log = PositionedLog()
    log.pump(stream_log(agent, "hi"))
    return log


def final_state(log: PositionedLog) -> Any:
    deadline = time.monotonic() + TIMEOUT
    while not log.ended:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return log.snapshot().ops[0]["value"]


def wait_for(predicate: Any) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.01)


class TestStreaming:
    def test_many_clients_some_reconnecting_rebuild_the_same_final_state(self) -> None:
        """Twelve clients at once; half drop mid-stream and resume with Last-Event-ID."""
        log = live_log(tokens=150)
        with serving(RunLogApp({"run": log}, keep_alive=0.2)) as base:

            def steady() -> Client:
                client = Client(base, "run")
                client.read(history="1")
                return client

            def flaky(k: int) -> Client:
                client = Client(base, "run")
                client.read(stop_after=3 + k, history="1")
                time.sleep(0.02 * k)
                client.read(stop_after=5)
                client.read()
                return client

            threads = [run_in_thread(steady) for _ in range(6)]
            threads += [run_in_thread(lambda k=k: flaky(k)) for k in range(6)]
            clients = [join_thread(*pair) for pair in threads]
            expected = final_state(log)
            for client in clients:
                assert client.state == expected
                assert client.positions == list(range(1, log.position + 1))
                assert client.end == {"patches": log.position, "error": None}
                assert client.errors == []  # and positions 1.. in order: no snapshot stood in
            wait_for(lambda: log.subscribers == 0)  # dropped connections let go

    def test_a_new_client_starts_from_a_snapshot_and_the_query_id_resumes(self) -> None:
        """Without an id a client gets a snapshot first; ?last_event_id= resumes too."""
        log = live_log(tokens=40)
        with serving(RunLogApp(log)) as base:
            first = Client(base, log.log_id)
            first.read(stop_after=2)
            assert first.snapshots == 1
            resumed = Client(base, log.log_id)
            resumed.state = first.state
            resumed.read(last_event_id=str(first.last_id))
            assert resumed.state == final_state(log)
            assert resumed.positions[0] == first.positions[-1] + 1

    def test_a_resume_from_compacted_history_gets_a_snapshot_then_the_tail(self) -> None:
        """With max_history, a client that was away long resumes from a snapshot."""
        log = PositionedLog(max_history=5)
        log.append([{"op": "replace", "path": "", "value": {"n": []}}])
        with serving(RunLogApp({"r": log})) as base:
            client = Client(base, "r")
            client.read(stop_after=1, history="1")
            for n in range(50):
                log.append([{"op": "add", "path": "/n/-", "value": n}])
            log.end()
            client.read()
            assert client.state == {"n": list(range(50))}
            # patch 1 (a replace at "" itself), then the snapshot at 51 for the 50 gone
            assert client.snapshots == 2 and client.positions == [1, 51]

    def test_foreign_future_and_malformed_ids_get_an_error_event(self) -> None:
        """Each bad resume id gets one event: error naming its class, then the body ends."""
        log = PositionedLog("run-a")
        log.append([{"op": "replace", "path": "", "value": 1}])
        cases = {
            "run-b:1": "ForeignResumeIdError",
            "run-a:9": "FutureResumeIdError",
            "nonsense": "MalformedResumeIdError",
        }
        with serving(RunLogApp(log)) as base:
            for resume_id, error in cases.items():
                client = Client(base, "run-a")
                client.last_id = resume_id
                client.read()
                assert [e["error"] for e in client.errors] == [error]
                assert client.positions == [] and client.end is None
                assert client.errors[0]["log_id"] == "run-a"
            wait_for(lambda: log.subscribers == 0)

    def test_sse_headers_and_keep_alive_comments(self) -> None:
        """The stream has SSE headers, a retry field, and keep-alive comments when idle."""
        log = PositionedLog()
        with (
            serving(RunLogApp(log, keep_alive=0.05, retry=1000)) as base,
            httpx.Client(timeout=TIMEOUT) as http,
            http.stream("GET", f"{base}/runs/{log.log_id}/stream") as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            assert "no-cache" in response.headers["cache-control"]
            assert response.headers["x-accel-buffering"] == "no"
            seen = []
            for event in events(response):
                seen.append(event)
                if event.get("comment") == "keep-alive":
                    break
            assert seen[0] == {"retry": "1000"}
            assert seen[1]["event"] == "data"
        wait_for(lambda: log.subscribers == 0)


class FailingSource:
    """A LogSource whose subscriptions fail: stale before any frame, or mid-stream."""

    log_id = "flaky"

    def __init__(self, log: PositionedLog) -> None:
        self.log = log

    def snapshot(self) -> Frame:
        return self.log.snapshot()

    async def asnapshot(self) -> Frame:
        return self.log.snapshot()

    def end_record(self) -> Optional[LogEnd]:
        return None

    async def aend_record(self) -> Optional[LogEnd]:
        return None

    def frames(self, after: Optional[int] = None, **kwargs: Any) -> Iterator[WireItem]:
        raise NotImplementedError

    async def aframes(self, after: Optional[int] = None, **kwargs: Any) -> AsyncIterator[WireItem]:
        if after is not None:
            msg = f"can't resume log flaky after {after}: trimmed past its snapshot"
            raise StaleResumeIdError(msg, "flaky", None, after, 9)
        async for item in self.log.aframes(**kwargs):
            yield item
            if isinstance(item, Frame) and item.position >= 2:
                break
        msg = "lost the connection to the log's store"
        raise ConnectionError(msg)


class TestSourceFailures:
    def test_a_stale_id_and_a_source_failing_mid_stream_give_error_events(self) -> None:
        """A source's StaleResumeIdError, or an error after some frames, ends with event: error."""
        log = PositionedLog("flaky")
        for n in range(2):
            log.append([{"op": "replace", "path": "", "value": n}])
        with serving(RunLogApp({"f": FailingSource(log)})) as base:
            stale = Client(base, "f")
            stale.last_id = "flaky:1"
            stale.read()
            assert [e["error"] for e in stale.errors] == ["StaleResumeIdError"]
            assert stale.errors[0]["position"] == 1 and stale.positions == []
            broken = Client(base, "f")
            broken.read()
            assert broken.positions == [2] and broken.end is None
            assert [e["error"] for e in broken.errors] == ["ConnectionError"]
            assert "lost the connection" in broken.errors[0]["message"]


class DeadSource(FailingSource):
    """A LogSource whose store is unreachable: every read raises ConnectionError."""

    log_id = "dead"

    async def asnapshot(self) -> Frame:
        msg = "the log's store is unreachable"
        raise ConnectionError(msg)

    async def aend_record(self) -> Optional[LogEnd]:
        msg = "the log's store is unreachable"
        raise ConnectionError(msg)


class TestUnreachableSource:
    def test_state_and_runs_of_an_unreachable_source_are_503_json(self) -> None:
        """/state of a source that fails, and /runs listing it, answer 503 with the error."""
        live = PositionedLog("live")
        app = RunLogApp({"ok": live, "d": DeadSource(live)})
        with serving(app) as base, httpx.Client(base_url=base, timeout=TIMEOUT) as http:
            for path in ("/runs/d/state", "/runs"):
                response = http.get(path)
                assert response.status_code == 503, path
                body = response.json()
                assert body["error"] == "ConnectionError" and body["run"] == "d", path
                assert "unreachable" in body["message"] and body["log_id"] == "dead", path
            assert http.get("/runs/ok/state").json()["log_id"] == "live"


class StalledStore(Mapping[str, Any]):
    """A mapping like RedisLogs whose store does not answer: every lookup but "local" waits."""

    def __init__(self, local: PositionedLog, seconds: float) -> None:
        self.local = local
        self.seconds = seconds
        self.release = threading.Event()

    def __getitem__(self, run_id: str) -> Any:
        if run_id == "local":
            return self.local
        self.release.wait(self.seconds)  # a connect timeout to a server that is down
        msg = "the store did not answer"
        raise ConnectionError(msg)

    def __iter__(self) -> Iterator[str]:
        self.release.wait(self.seconds)
        msg = "the store did not answer"
        raise ConnectionError(msg)

    def __len__(self) -> int:
        return 1


async def get(app: RunLogApp, path: str) -> int:
    """Send one GET to ``app`` over raw ASGI and return the response's status."""
    status: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])

    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"", "headers": []}
    await app(scope, receive, send)
    return status[0]


class TestStalledStore:
    @pytest.mark.parametrize("stalled", ["/runs/remote/state", "/runs"])
    def test_a_stalled_lookup_does_not_hold_up_other_runs(self, stalled: str) -> None:
        """While a mapping's lookup waits on its store, a request for another run answers."""
        log = PositionedLog("local")
        store = StalledStore(log, seconds=3.0)
        app = RunLogApp(store)
        finished: list[str] = []

        async def request(path: str) -> int:
            status = await get(app, path)
            finished.append(path)
            if path == "/runs/local/state":
                store.release.set()  # the store answers only once the other run was served
            return status

        async def both() -> list[int]:
            slow = asyncio.ensure_future(request(stalled))
            await asyncio.sleep(0.05)  # the stalled lookup has started
            return list(await asyncio.gather(slow, request("/runs/local/state")))

        slow_status, local_status = asyncio.run(both())
        assert finished == ["/runs/local/state", stalled]
        assert local_status == 200 and slow_status == 503


class TestJsonRoutes:
    def test_runs_state_and_not_found(self) -> None:
        """/runs lists the runs, /state has the state and position, unknown ids are 404."""
        done = PositionedLog("done")
        done.append([{"op": "replace", "path": "", "value": {"x": 1}}])
        done.end(ValueError("boom"))
        live = PositionedLog("live")
        with (
            serving(RunLogApp({"a": done, "b": live})) as base,
            httpx.Client(base_url=base, timeout=TIMEOUT) as http,
        ):
            runs = http.get("/runs").json()["runs"]
            assert runs == [
                {"id": "a", "log_id": "done", "ended": True, "error": "ValueError: boom"},
                {"id": "b", "log_id": "live", "ended": False, "error": None},
            ]
            state = http.get("/runs/a/state").json()
            assert state == {
                "id": "a",
                "log_id": "done",
                "position": 1,
                "state": {"x": 1},
                "ended": True,
                "error": "ValueError: boom",
            }
            for path in ("/runs/zz/state", "/runs/zz/stream", "/nowhere"):
                response = http.get(path)
                assert response.status_code == 404 and response.json()["error"] == "not_found"
            response = http.post("/runs")
            assert response.status_code == 405 and response.headers["allow"] == "GET"

    def test_a_websocket_handshake_is_refused(self) -> None:
        """A websocket upgrade is refused (403), and the server keeps serving."""
        # Without a websocket library uvicorn serves the upgrade as plain HTTP: a 404 here.
        ws = importlib.util.find_spec("websockets") or importlib.util.find_spec("wsproto")
        log = PositionedLog("w")
        with serving(RunLogApp(log)) as base, httpx.Client(base_url=base, timeout=TIMEOUT) as http:
            headers = {
                "Connection": "Upgrade",
                "Upgrade": "websocket",
                "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            }
            assert http.get("/ws", headers=headers).status_code == (403 if ws else 404)
            assert http.get("/runs").json()["runs"][0]["log_id"] == "w"

    def test_extra_routes_can_be_added(self) -> None:
        """app.route adds a handler with path parameters, tried after the built-in ones."""
        app = RunLogApp({})

        @app.route("GET", "/hello/{name}")
        async def hello(request: Request, send: Any) -> None:
            await send_json(send, 200, {"hi": request.params["name"]})

        with serving(app) as base:
            assert httpx.get(f"{base}/hello/bob", timeout=TIMEOUT).json() == {"hi": "bob"}

    def test_bad_options_are_config_errors(self) -> None:
        """A bad keep_alive, retry or sources argument is refused when the app is made."""
        for kwargs in ({"keep_alive": 0}, {"keep_alive": "1"}, {"retry": -1}):
            with pytest.raises(ConfigError):
                RunLogApp({}, **kwargs)
        with pytest.raises(ConfigError):
            RunLogApp([PositionedLog()])  # type: ignore[arg-type]
