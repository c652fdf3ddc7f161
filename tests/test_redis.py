"""Tests for logstream.redis against a real redis-server: producers and consumers in other
processes, a consumer killed and resumed, compaction behind a snapshot, a server restart.

The server: ``LOGSTREAM_REDIS_URL`` if set (CI starts one), else a ``redis-server`` this
module starts on a free port and stops. Without ``redis-server`` the tests are skipped, or
fail when ``LOGSTREAM_REQUIRE_REDIS=1`` (as in CI).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import logstream
from logstream import (
    ConfigError,
    DataError,
    FutureResumeIdError,
    MalformedResumeIdError,
    RedisUnavailableError,
    RunLog,
    RunLogPatch,
    SinkClosedError,
    StaleResumeIdError,
    StreamConflictError,
)
from logstream._wire import Frame, LogEnd, LogSource
from tests.source_contract import LogSourceContract, Writer

REQUIRED = os.environ.get("LOGSTREAM_REQUIRE_REDIS") == "1"
ROOT = Path(__file__).resolve().parent.parent

try:
    import redis

    from logstream.redis import RedisLogs, RedisSink, RedisSource
except ImportError:  # pragma: no cover - the test extra installs redis
    if REQUIRED:
        raise
    pytest.skip(
        "the redis package is not installed (pip install -e '.[test]')", allow_module_level=True
    )


# -- the server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """A redis-server process of the test's own, in its own directory."""

    def __init__(self, directory: str, persistent: bool) -> None:
        self.port = free_port()
        self.directory = directory
        self.persistent = persistent
        self.process: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        exe = shutil.which("redis-server")
        assert exe is not None
        persistence = (
            ["--appendonly", "yes", "--appendfsync", "always", "--save", ""]
            if self.persistent
            else ["--appendonly", "no", "--save", ""]
        )
        self.process = subprocess.Popen(
            [
                exe,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                self.directory,
                *persistence,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                if client.ping():
                    break
            except (redis.ConnectionError, redis.BusyLoadingError):
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=10)
        self.process = None


def server_missing() -> None:
    reason = "redis-server is not installed (apt-get install redis-server)"
    if REQUIRED:
        pytest.fail(f"LOGSTREAM_REQUIRE_REDIS=1 but {reason}")
    pytest.skip(f"{reason}; set LOGSTREAM_REDIS_URL to use a running server")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("LOGSTREAM_REDIS_URL")
    if url:
        yield url
        return
    if shutil.which("redis-server") is None:
        server_missing()
    with tempfile.TemporaryDirectory() as directory:
        server = Server(directory, persistent=False)
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
def own_server() -> Iterator[Server]:
    """A persistent server of this test's own (append-only file, fsync always)."""
    if shutil.which("redis-server") is None:
        server_missing()
    with tempfile.TemporaryDirectory() as directory:
        server = Server(directory, persistent=True)
        server.start()
        try:
            yield server
        finally:
            server.stop(signal.SIGKILL)


def new_id() -> str:
    return "t-" + uuid.uuid4().hex


# -- deterministic runs from the native tracer ------------------------------------------------

RUN_SOURCE = textwrap.dedent(
    """
    from logstream import stream_log, traced
    from logstream.testing import FakeClock, SequentialIds

    def make_run(seed, tokens):
        @traced(run_type="llm", name="model")
        def model(prompt):
            for i in range(tokens):
                yield f"t{seed}.{i} "

        @traced(run_type="tool", name="lookup")
        def lookup(key):
            return {"key": key, "seed": seed, "nested": [1, {"a": key}]}

        def agent(question):
            yield lookup(question)
            yield "".join(model(question))
            yield lookup(question + "!")

        return list(stream_log(agent, f"q{seed}", clock=FakeClock(), id_factory=SequentialIds()))
    """
)
_namespace: dict[str, Any] = {}
exec(RUN_SOURCE, _namespace)


def make_run(seed: int, tokens: int) -> list[RunLogPatch]:
    """The patches of a deterministic run (the same in every process)."""
    patches: list[RunLogPatch] = _namespace["make_run"](seed, tokens)
    return patches


def states_of(patches: list[RunLogPatch]) -> list[Any]:
    """The state after each position: ``states[p]`` (``states[0]`` is ``None``)."""
    states: list[Any] = [None]
    log = RunLog(state=None)
    for patch in patches:
        log = log + patch
        states.append(json.loads(logstream.dumps(log.state)))
    return states


class Follower:
    """Apply a source's items like a client: check positions and every state."""

    def __init__(self, expected: Optional[list[Any]] = None) -> None:
        self.expected = expected
        self.log = RunLog(state=None)
        self.position: Optional[int] = None
        self.positions: list[int] = []
        self.snapshots = 0
        self.end: Optional[LogEnd] = None

    def take(self, item: Any) -> None:
        if item is None:
            return
        assert self.end is None, "an item after the end"
        if isinstance(item, LogEnd):
            assert item.position == self.position
            self.end = item
            return
        assert isinstance(item, Frame)
        if item.snapshot:
            assert self.position is None or item.position >= self.position
            self.snapshots += 1
            self.log = RunLog(state=None) + RunLogPatch(*item.ops)
        else:
            assert self.position is None or item.position == self.position + 1
            self.log = self.log + RunLogPatch(*item.ops)
        self.position = item.position
        self.positions.append(item.position)
        if self.expected is not None:
            assert self.log.state == self.expected[item.position], item.position

    @property
    def state(self) -> Any:
        return self.log.state


def follow(source: RedisSource, expected: Optional[list[Any]] = None, **kwargs: Any) -> Follower:
    """Read ``source.frames(**kwargs)`` to its end; a resume starts from ``expected[after]``."""
    follower = Follower(expected)
    after = kwargs.get("after")
    if after is not None and expected is not None:
        follower.log = RunLog(state=None) + RunLogPatch(
            {"op": "replace", "path": "", "value": expected[after]}
        )
        follower.position = after
    for item in source.frames(**kwargs):
        follower.take(item)
    return follower


# -- producer and consumer processes ------------------------------------------------------------

PRODUCER = RUN_SOURCE + textwrap.dedent(
    """
    import sys, time
    from logstream.redis import RedisSink
    url, seeds = sys.argv[1], sys.argv[2].split(",")
    tokens, pause = int(sys.argv[3]), float(sys.argv[4])
    for item in seeds:
        log_id, seed = item.split("=")
        sink = RedisSink(url, log_id, batch_size=50)
        for patch in make_run(int(seed), tokens):
            sink.write(patch)
            if pause:
                time.sleep(pause)
        sink.end()
    print("done", flush=True)
    """
)

CONSUMER = textwrap.dedent(
    """
    import json, sys
    from logstream import RunLog, RunLogPatch, dumps
    from logstream.redis import RedisSource
    url, log_id = sys.argv[1], sys.argv[2]
    log = RunLog(state=None)
    for item in RedisSource(url, log_id).frames(after=0):
        if item is None or not hasattr(item, "ops"):
            continue
        log = log + RunLogPatch(*item.ops)
        print(json.dumps({"position": item.position, "state": json.loads(dumps(log.state))}),
              flush=True)
    print(json.dumps({"end": True}), flush=True)
    """
)


def python(code: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-c", code, *args], text=True, env=env, **kwargs)


# -- the tests ---------------------------------------------------------------------------------


class TestRoundTrip:
    def test_history_rebuilds_every_state(self, redis_url: str) -> None:
        """A consumer reading from position 0 sees positions 1..N, each state the producer's."""
        patches = make_run(1, 30)
        log_id = new_id()
        assert RedisSink(redis_url, log_id).consume(patches) == len(patches)
        source = RedisSource(redis_url, log_id)
        follower = follow(source, states_of(patches), after=0)
        assert follower.positions == list(range(1, len(patches) + 1))
        assert follower.end == LogEnd(log_id, len(patches), None)
        assert source.end_record() == follower.end

    def test_source_is_a_log_source(self, redis_url: str) -> None:
        """RedisSource satisfies the wire's LogSource protocol."""
        assert isinstance(RedisSource(redis_url, new_id()), LogSource)

    def test_snapshot_first_then_end(self, redis_url: str) -> None:
        """A new subscriber of an ended log gets one snapshot of the final state, then the end."""
        patches = make_run(2, 10)
        log_id = new_id()
        RedisSink(redis_url, log_id).consume(patches)
        items = list(RedisSource(redis_url, log_id).frames())
        assert len(items) == 2
        assert items[0].snapshot and items[0].position == len(patches)
        assert items[0].ops[0]["value"] == states_of(patches)[-1]
        assert items[1] == LogEnd(log_id, len(patches), None)

    def test_resume_from_every_position(self, redis_url: str) -> None:
        """Resuming after any position k gives exactly k+1..N, then the end."""
        patches = make_run(3, 8)
        log_id = new_id()
        RedisSink(redis_url, log_id).consume(patches)
        source = RedisSource(redis_url, log_id)
        for k in range(len(patches) + 1):
            items = list(source.frames(after=k))
            assert [i.position for i in items[:-1]] == list(range(k + 1, len(patches) + 1))
            assert isinstance(items[-1], LogEnd)

    def test_error_is_in_the_end(self, redis_url: str) -> None:
        """The end record names the error the traced code raised, and consume re-raises it."""
        log_id = new_id()

        def failing() -> Iterator[RunLogPatch]:
            yield from make_run(4, 2)
            raise ValueError("boom")

        with pytest.raises(ValueError, match="boom"):
            RedisSink(redis_url, log_id).consume(failing())
        end = RedisSource(redis_url, log_id).end_record()
        assert end is not None and end.error == "ValueError: boom"

    def test_async_source_and_sink(self, redis_url: str) -> None:
        """aconsume writes and aframes reads the same frames as the sync calls."""
        patches = make_run(5, 20)
        log_id = new_id()

        async def produce() -> Any:
            async def gen() -> Any:
                for patch in patches:
                    yield patch

            return await RedisSink(redis_url, log_id).aconsume(gen())

        assert asyncio.run(produce()) == len(patches)
        source = RedisSource(redis_url, log_id)

        async def read() -> list[Any]:
            return [item async for item in source.aframes(after=0)]

        async_items = asyncio.run(read())
        assert async_items == list(source.frames(after=0))
        assert asyncio.run(source.asnapshot()) == source.snapshot()
        assert asyncio.run(source.aend_record()) == source.end_record()

    def test_consume_a_live_tracer(self, redis_url: str) -> None:
        """A sink fed from a Tracer that another thread drives writes every patch in order."""
        tracer = logstream.Tracer()
        recorded: list[RunLogPatch] = []

        def drive() -> None:
            root = tracer.start_run("agent", inputs={"question": "hi"})
            llm = tracer.start_run("model", "llm", parent_id=root.id, inputs={"prompts": []})
            for i in range(500):
                tracer.add_token(llm.id, f"t{i}")
            tracer.end_run(llm.id, outputs={"generations": []})
            tracer.end_run(root.id, outputs={"output": "done"})  # closes the tracer

        class Tee:
            def __iter__(self) -> Iterator[RunLogPatch]:
                for patch in tracer:
                    recorded.append(patch)
                    yield patch

        log_id = new_id()
        thread = threading.Thread(target=drive)
        thread.start()
        count = RedisSink(redis_url, log_id, batch_size=64).consume(Tee())
        thread.join()
        assert count == len(recorded) > 500
        follower = follow(RedisSource(redis_url, log_id), states_of(recorded), after=0)
        assert follower.positions == list(range(1, count + 1))

    def test_heartbeat_while_nothing_comes(self, redis_url: str) -> None:
        """With timeout, a live log that gets no patch yields None (a heartbeat)."""
        log_id = new_id()
        sink = RedisSink(redis_url, log_id)
        sink.write(make_run(6, 1)[0])
        sink.flush()
        items = RedisSource(redis_url, log_id).frames(after=0, timeout=0.05)
        assert next(items).position == 1
        assert next(items) is None
        items.close()
        sink.end()


class TestProcesses:
    def test_producer_processes_and_live_consumers(self, redis_url: str) -> None:
        """Three producer processes write two runs each; live consumers see every state."""
        runs = {new_id(): seed for seed in range(10, 16)}
        expected = {log_id: states_of(make_run(seed, 40)) for log_id, seed in runs.items()}
        followers = {log_id: Follower(expected[log_id]) for log_id in runs}
        errors: list[BaseException] = []

        def consume(log_id: str) -> None:
            try:
                for item in RedisSource(redis_url, log_id).frames(after=0):
                    followers[log_id].take(item)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=consume, args=(i,)) for i in runs]
        for thread in threads:
            thread.start()
        ids = list(runs)
        producers = [
            python(
                PRODUCER,
                redis_url,
                ",".join(f"{i}={runs[i]}" for i in ids[n : n + 2]),
                "40",
                "0.001",
                stdout=subprocess.PIPE,
            )
            for n in range(0, 6, 2)
        ]
        for producer in producers:
            out, _ = producer.communicate(timeout=120)
            assert producer.returncode == 0 and "done" in out
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        for log_id, follower in followers.items():
            assert follower.end is not None
            assert follower.positions == list(range(1, len(expected[log_id])))
            assert follower.state == expected[log_id][-1]
            late = follow(RedisSource(redis_url, log_id), expected[log_id])
            assert late.snapshots == 1 and late.state == expected[log_id][-1]

    def test_consumer_killed_and_resumed(self, redis_url: str) -> None:
        """A consumer process killed mid-run resumes from its last position, nothing lost."""
        patches = make_run(20, 200)
        expected = states_of(patches)
        log_id = new_id()
        producer = python(PRODUCER, redis_url, f"{log_id}=20", "200", "0.02")
        consumer = python(CONSUMER, redis_url, log_id, stdout=subprocess.PIPE)
        assert consumer.stdout is not None
        seen: list[dict[str, Any]] = []
        while len(seen) < 60:
            line = consumer.stdout.readline()
            assert line, "the consumer stopped early"
            seen.append(json.loads(line))
        consumer.kill()
        consumer.wait()
        last = seen[-1]
        assert producer.poll() is None, "the producer finished before the kill"
        assert [s["position"] for s in seen] == list(range(1, len(seen) + 1))
        assert last["state"] == expected[last["position"]]
        follower = Follower(expected)
        follower.log = RunLog(state=None) + RunLogPatch(
            {"op": "replace", "path": "", "value": last["state"]}
        )
        follower.position = last["position"]
        for item in RedisSource(redis_url, log_id).frames(after=last["position"]):
            follower.take(item)
        assert producer.wait(timeout=120) == 0
        assert follower.positions == list(range(last["position"] + 1, len(patches) + 1))
        assert follower.state == expected[-1]


class TestCompaction:
    def test_capped_stream_keeps_a_snapshot_and_a_tail(self, redis_url: str) -> None:
        """A capped stream holds at most max_len patches; a late consumer gets snapshot + tail."""
        patches = make_run(30, 200)
        expected = states_of(patches)
        log_id = new_id()
        sink = RedisSink(redis_url, log_id, max_len=40, batch_size=7)
        client = redis.Redis.from_url(redis_url)
        for patch in patches[:150]:
            sink.write(patch)
            assert client.xlen(sink.stream) <= 40 + 7
        sink.flush()
        assert client.xlen(sink.stream) <= 40
        source = RedisSource(redis_url, log_id)
        first = client.xrange(sink.stream, "-", "+", count=1)[0][0]
        oldest = int(first.decode().split("-")[0])
        assert oldest > 1
        from_zero = Follower(expected)
        items = source.frames(after=0)
        for item in items:
            from_zero.take(item)
            if from_zero.position == 150:
                break
        items.close()
        assert from_zero.snapshots == 1 and from_zero.positions[0] >= 1
        tail = follow_until(source, expected, after=oldest - 1, stop=150)
        assert tail.snapshots == 0 and tail.positions[0] == oldest
        sink.consume(patches[150:])
        late = follow(source, expected)
        assert late.snapshots == 1 and late.state == expected[-1]
        resumed = follow(source, expected, after=3)
        assert resumed.snapshots == 1 and resumed.state == expected[-1]

    def test_slow_consumer_is_resynced_by_a_snapshot(self, redis_url: str) -> None:
        """A consumer overtaken by compaction gets a snapshot mid-stream and the same state."""
        patches = make_run(31, 300)
        expected = states_of(patches)
        log_id = new_id()
        sink = RedisSink(redis_url, log_id, max_len=10, batch_size=5)
        for patch in patches[:5]:
            sink.write(patch)
        sink.flush()
        follower = Follower(expected)
        items = RedisSource(redis_url, log_id, count=2).frames(after=0)
        follower.take(next(items))
        sink.consume(patches[5:])  # the consumer is 295 patches behind a 10-patch stream
        for item in items:
            follower.take(item)
        assert follower.snapshots >= 1
        assert follower.state == expected[-1]
        assert follower.end == LogEnd(log_id, len(patches), None)

    def test_slow_async_consumer_is_resynced_by_a_snapshot(self, redis_url: str) -> None:
        """The same through aframes: overtaken by compaction, resynced, the same final state."""
        patches = make_run(33, 300)
        expected = states_of(patches)
        log_id = new_id()
        sink = RedisSink(redis_url, log_id, max_len=10, batch_size=5)
        for patch in patches[:5]:
            sink.write(patch)
        sink.flush()
        follower = Follower(expected)

        async def read() -> None:
            items = RedisSource(redis_url, log_id, count=2).aframes(after=0)
            follower.take(await items.__anext__())
            await asyncio.to_thread(sink.consume, patches[5:])
            async for item in items:
                follower.take(item)

        asyncio.run(read())
        assert follower.snapshots >= 1
        assert follower.state == expected[-1]
        assert follower.end == LogEnd(log_id, len(patches), None)

    def test_trimmed_without_snapshot_is_stale(self, redis_url: str) -> None:
        """Patches trimmed with no snapshot behind them: a resume there is StaleResumeIdError."""
        patches = make_run(32, 20)
        log_id = new_id()
        sink = RedisSink(redis_url, log_id)
        sink.consume(patches)
        redis.Redis.from_url(redis_url).xtrim(sink.stream, minid="10-0", approximate=False)
        with pytest.raises(StaleResumeIdError) as info:
            list(RedisSource(redis_url, log_id).frames(after=3))
        assert info.value.position == 3 and info.value.latest == len(patches)
        assert sink.stream in str(info.value)
        items = list(RedisSource(redis_url, log_id).frames(after=9))
        assert [i.position for i in items] == [*range(10, len(patches) + 1), len(patches)]

    @settings(
        max_examples=15,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(
        tokens=st.integers(0, 60),
        max_len=st.integers(1, 30),
        batch=st.integers(1, 20),
        cut=st.floats(0, 1),
    )
    def test_snapshot_plus_tail_is_the_history(
        self, redis_url: str, tokens: int, max_len: int, batch: int, cut: float
    ) -> None:
        """For random runs, caps and batches: any resume point rebuilds the producer's state."""
        patches = make_run(tokens, tokens)
        expected = states_of(patches)
        log_id = new_id()
        RedisSink(redis_url, log_id, max_len=max_len, batch_size=batch).consume(patches)
        after = int(cut * len(patches))
        resumed = follow(RedisSource(redis_url, log_id), expected, after=after)
        assert resumed.state == expected[-1]
        if resumed.positions:
            assert resumed.positions[0] >= after
        late = follow(RedisSource(redis_url, log_id), expected, snapshot_first=False)
        assert late.state == expected[-1]


def follow_until(source: RedisSource, expected: list[Any], after: int, stop: int) -> Follower:
    follower = Follower(expected)
    follower.log = RunLog(state=None) + RunLogPatch(
        {"op": "replace", "path": "", "value": expected[after]}
    )
    follower.position = after
    items = source.frames(after=after)
    for item in items:
        follower.take(item)
        if follower.position == stop:
            break
    items.close()
    return follower


class TestRestart:
    def test_server_restart_mid_run(self, own_server: Server) -> None:
        """A restart mid-run: a clear error on both sides, then resume; nothing lost or doubled."""
        patches = make_run(40, 100)
        expected = states_of(patches)
        log_id = new_id()
        sink = RedisSink(own_server.url, log_id, retry_for=0.3, batch_size=10)
        half = len(patches) // 2
        for patch in patches[:half]:
            sink.write(patch)
        assert sink.flush() == half
        source = RedisSource(own_server.url, log_id)
        follower = Follower(expected)
        items = source.frames(after=0, timeout=0.05)
        while follower.position != half:
            follower.take(next(items))

        own_server.stop(signal.SIGKILL)
        for patch in patches[half:]:
            sink.write(patch)
        with pytest.raises(RedisUnavailableError) as sink_error:
            sink.flush()
        assert sink_error.value.position == half
        assert sink_error.value.pending == len(patches) - half
        assert sink.stream in str(sink_error.value)
        with pytest.raises(RedisUnavailableError) as source_error:
            for item in items:
                follower.take(item)
        assert source_error.value.position == half and source_error.value.role == "source"

        own_server.start()
        assert sink.flush() == len(patches)
        sink.end()
        for item in source.frames(after=source_error.value.position):
            follower.take(item)
        assert follower.positions == list(range(1, len(patches) + 1))
        assert follower.state == expected[-1]
        client = redis.Redis.from_url(own_server.url)
        assert client.xlen(sink.stream) == len(patches) + 1  # the patches and the end

    def test_app_reports_the_lost_server_and_the_client_resumes(self, own_server: Server) -> None:
        """Served by RunLogApp: a server killed mid-stream is an error event; the client resumes."""
        from logstream.asgi import RunLogApp
        from tests.test_asgi import Client, serving

        patches = make_run(43, 60)
        expected = states_of(patches)
        log_id = new_id()
        sink = RedisSink(own_server.url, log_id, retry_for=30)
        half = len(patches) // 2
        for patch in patches[:half]:
            sink.write(patch)
        sink.flush()
        with serving(RunLogApp(RedisSource(own_server.url, log_id))) as base:
            client = Client(base, log_id)
            reader = threading.Thread(target=client.read)
            reader.start()
            deadline = time.monotonic() + 30
            while not client.positions or client.positions[-1] != half:
                assert time.monotonic() < deadline, "the client never caught up"
                time.sleep(0.01)
            own_server.stop(signal.SIGKILL)
            reader.join(30)
            assert client.end is None
            assert [e["error"] for e in client.errors] == ["RedisUnavailableError"]
            assert client.errors[0]["log_id"] == log_id
            own_server.start()
            for patch in patches[half:]:
                sink.write(patch)
            sink.end()
            client.read()  # reconnects with Last-Event-ID
        assert client.end == {"patches": len(patches), "error": None}
        assert client.state == expected[-1]
        assert client.positions == list(range(client.positions[0], len(patches) + 1))

    def test_restart_without_persistence_is_a_conflict(self) -> None:
        """A server that came back empty makes the sink raise StreamConflictError, not a gap."""
        if shutil.which("redis-server") is None:
            server_missing()
        patches = make_run(42, 10)
        with tempfile.TemporaryDirectory() as directory:
            server = Server(directory, persistent=False)
            server.start()
            try:
                sink = RedisSink(server.url, new_id(), retry_for=20)
                for patch in patches[:5]:
                    sink.write(patch)
                assert sink.flush() == 5
                server.stop(signal.SIGKILL)
                server.start()
                for patch in patches[5:]:
                    sink.write(patch)
                with pytest.raises(StreamConflictError) as info:
                    sink.flush()
                assert info.value.position == 5 and info.value.found == 0
                assert "lost patches" in str(info.value)
                assert redis.Redis.from_url(server.url).keys("*") == []
            finally:
                server.stop(signal.SIGKILL)

    def test_lost_reply_is_not_written_twice(self, redis_url: str) -> None:
        """A batch appended whose reply was lost is recognized when retried, not doubled."""
        patches = make_run(41, 10)
        log_id = new_id()
        sink = RedisSink(redis_url, log_id, batch_size=100)
        real = sink._script
        calls: list[int] = []

        def lossy(**kwargs: Any) -> Any:
            result = real(**kwargs)
            calls.append(1)
            if len(calls) == 1:
                raise redis.ConnectionError("reply lost")
            return result

        sink._script = lossy  # type: ignore[assignment]
        sink.consume(patches)
        assert len(calls) >= 2
        positions = [i.position for i in RedisSource(redis_url, log_id).frames(after=0)]
        assert positions == [*range(1, len(patches) + 1), len(patches)]


class TestRedisLogs:
    def test_lists_and_finds_logs_as_they_appear(self, redis_url: str) -> None:
        """RedisLogs finds a log once a producer wrote it, and no other key."""
        prefix = "t" + uuid.uuid4().hex[:8] + ":"
        logs = RedisLogs(redis_url, prefix=prefix)
        log_id = new_id()
        assert log_id not in logs and list(logs) == []
        sink = RedisSink(redis_url, log_id, prefix=prefix)
        sink.write(make_run(60, 1)[0])
        sink.flush()
        redis.Redis.from_url(redis_url).set(prefix + "not a log:meta", "x")
        assert list(logs) == [log_id] and len(logs) == 1
        assert logs[log_id].log_id == log_id and logs[log_id] is logs[log_id]
        with pytest.raises(KeyError):
            logs["not a log"]
        sink.end()
        assert logs[log_id].end_record() == LogEnd(log_id, 1, None)

    def test_an_unreachable_server_is_redis_unavailable_and_503(self) -> None:
        """RedisLogs on a server that is down raises RedisUnavailableError; the app says 503."""
        import httpx

        from logstream.asgi import RunLogApp
        from tests.server_helpers import free_socket, serving

        with contextlib.closing(free_socket()) as sock:  # bound, never listening
            logs = RedisLogs(f"redis://127.0.0.1:{sock.getsockname()[1]}/0")
            with pytest.raises(RedisUnavailableError):
                logs["x"]
            with pytest.raises(RedisUnavailableError):
                list(logs)
            with serving(RunLogApp(logs)) as base, httpx.Client(base_url=base) as http:
                for path in ("/runs", "/runs/x/state", "/runs/x/stream"):
                    response = http.get(path)
                    assert response.status_code == 503, path
                    assert response.json()["error"] == "RedisUnavailableError", path


class TestServedAcrossProcesses:
    def test_app_serves_a_run_whose_producer_is_another_process(self, redis_url: str) -> None:
        """RunLogApp over RedisLogs serves a subprocess's run live; reconnecting clients agree."""
        import httpx

        from logstream.asgi import RunLogApp
        from tests.test_asgi import Client, serving

        expected = states_of(make_run(70, 150))
        log_id = new_id()
        logs = RedisLogs(redis_url)
        with serving(RunLogApp(logs)) as base:
            producer = python(PRODUCER, redis_url, f"{log_id}=70", "150", "0.003")
            deadline = time.monotonic() + 30
            while log_id not in logs:
                assert time.monotonic() < deadline, "the producer never wrote"
                time.sleep(0.01)
            clients = [Client(base, log_id) for _ in range(4)]

            def read(client: Client, drops: int) -> None:
                for _ in range(drops):
                    client.read(stop_after=15)  # then the connection drops
                while client.end is None:
                    client.read()

            threads = [
                threading.Thread(target=read, args=(client, n)) for n, client in enumerate(clients)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert producer.wait(timeout=120) == 0
            for client in clients:
                assert client.errors == []
                assert client.end == {"patches": len(expected) - 1, "error": None}
                assert client.state == expected[-1]
                assert client.snapshots == 1  # the first frame; each resume is exact
                first = client.positions[0]
                assert client.positions == list(range(first, len(expected)))
            served = httpx.get(f"{base}/runs/{log_id}/state", timeout=30).json()
            assert served["state"] == expected[-1] and served["position"] == len(expected) - 1


class SinkWriter:
    """The contract's writer over a RedisSink: each append is in Redis when it returns."""

    def __init__(self, sink: RedisSink) -> None:
        self.sink = sink

    def append(self, patch: list[dict[str, Any]]) -> int:
        position = self.sink.write(patch)
        self.sink.flush()
        return position

    def end(self, error: Optional[str] = None) -> None:
        self.sink.end(error)


class TestRedisSourceContract(LogSourceContract):
    """The LogSource contract, against RedisSource reading what a RedisSink appends."""

    @pytest.fixture(autouse=True)
    def _server(self, redis_url: str) -> None:
        self.url = redis_url

    def make_log(self, log_id: str) -> tuple[Writer, LogSource]:
        log_id = f"{log_id}-{uuid.uuid4().hex}"
        return SinkWriter(RedisSink(self.url, log_id)), RedisSource(self.url, log_id)


class TestMisuse:
    def test_second_producer_is_refused(self, redis_url: str) -> None:
        """A second sink on the same log id gets StreamConflictError; the log is intact."""
        patches = make_run(50, 3)
        log_id = new_id()
        first = RedisSink(redis_url, log_id)
        first.write(patches[0])
        first.flush()
        second = RedisSink(redis_url, log_id)
        second.write(patches[0])
        with pytest.raises(StreamConflictError) as info:
            second.flush()
        assert "another producer owns it" in str(info.value)
        with pytest.raises(StreamConflictError):
            second.write(patches[1])
        for patch in patches[1:]:
            first.write(patch)
        first.end()
        follow(RedisSource(redis_url, log_id), states_of(patches), after=0)

    def test_write_after_end(self, redis_url: str) -> None:
        """Writing or ending after end() raises SinkClosedError."""
        sink = RedisSink(redis_url, new_id())
        sink.end()
        with pytest.raises(SinkClosedError):
            sink.write(make_run(51, 1)[0])
        with pytest.raises(SinkClosedError):
            sink.end()

    @pytest.mark.parametrize(
        "kwargs",
        [{"log_id": "a b"}, {"log_id": ""}, {"max_len": 0}, {"batch_size": 0}, {"retry_for": -1}],
    )
    def test_bad_options(self, redis_url: str, kwargs: dict[str, Any]) -> None:
        """A bad log id or option is a ConfigError naming it."""
        options = {"log_id": new_id(), **kwargs}
        with pytest.raises(ConfigError, match=next(iter(kwargs)).replace("_", ".")):
            RedisSink(redis_url, **options)

    def test_future_and_negative_positions(self, redis_url: str) -> None:
        """A resume beyond the latest position, or below 0, is a ResumeError, not a gap."""
        log_id = new_id()
        RedisSink(redis_url, log_id).consume(make_run(52, 2))
        source = RedisSource(redis_url, log_id)
        with pytest.raises(FutureResumeIdError) as info:
            next(source.frames(after=99))
        assert info.value.latest == len(make_run(52, 2))
        with pytest.raises(MalformedResumeIdError):
            next(source.frames(after=-1))
        with pytest.raises(MalformedResumeIdError):
            next(source.frames(after="3"))  # type: ignore[arg-type]
        with pytest.raises(FutureResumeIdError):
            next(RedisSource(redis_url, new_id()).frames(after=1))

    @pytest.mark.parametrize(
        ("key", "fields"),
        [
            (":snapshot", {"pos": "x", "state": "{}"}),
            (":snapshot", {"pos": "1", "state": "{"}),
            (":meta", {"last": "x"}),
        ],
    )
    def test_keys_that_are_not_logstream_data_are_data_errors(
        self, redis_url: str, key: str, fields: dict[str, str]
    ) -> None:
        """A snapshot or meta hash another program wrote junk into is a DataError naming it."""
        log_id = new_id()
        RedisSink(redis_url, log_id).consume(make_run(53, 2))
        redis.Redis.from_url(redis_url).hset("logstream:" + log_id + key, mapping=fields)
        source = RedisSource(redis_url, log_id)
        with pytest.raises(DataError, match=f"logstream:{log_id}"):
            source.snapshot() if key == ":snapshot" else next(source.frames(after=0))

    def test_readme_row_lists_the_module_names(self) -> None:
        """The README's Public API row for logstream.redis lists exactly its own names."""
        import re

        import logstream.redis as module

        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        row = next(line for line in readme.splitlines() if line.startswith("| `logstream.redis`"))
        names = set(re.findall(r"`([A-Za-z_]+)`", row.split("|")[1]))
        assert names == set(module.__all__) - set(logstream.__all__)

    def test_import_logstream_does_not_import_redis(self) -> None:
        """``import logstream`` loads neither redis nor logstream.redis."""
        code = "import sys, logstream; print(sorted(m for m in sys.modules if 'redis' in m))"
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout
        assert out.strip() == "[]"
