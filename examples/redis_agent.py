"""An agent in one process, the HTTP server in another, Redis between them.

Run as it is, it does everything and exits: it uses the Redis at LOGSTREAM_REDIS_URL, or
starts a redis-server of its own; starts the server process (``RunLogApp`` over
``RedisLogs``, on uvicorn) and the agent process (``stream_log`` into a ``RedisSink``);
then reads the run's Server-Sent Events like ``curl -N``, drops the connection halfway,
reconnects with ``Last-Event-ID`` and gets exactly what it missed. By hand, in three
terminals (needs ``pip install 'logstream[redis]' uvicorn``)::

    python examples/redis_agent.py serve redis://localhost:6379/0 8000
    python examples/redis_agent.py agent redis://localhost:6379/0 run-1
    curl -N http://127.0.0.1:8000/runs/run-1/stream
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any, Optional

from logstream import RunLog, RunLogPatch, stream_log, traced


# -- the agent process: its run log goes to Redis --------------------------------------------
@traced(run_type="tool")
def search(query: str) -> list[str]:
    time.sleep(0.05)
    return [f"{query}: sunny, 21 C"]


@traced(run_type="llm")
def model(prompt: str) -> Iterator[str]:
    for token in "It is sunny in Paris today , 21 degrees .".split():
        time.sleep(0.03)  # a model streaming its tokens
        yield token + " "


def agent(question: str) -> Iterator[str]:
    facts = search(question)
    yield "".join(model(f"{question} {facts}"))


def run_agent(url: str, log_id: str) -> None:
    from logstream.redis import RedisSink

    RedisSink(url, log_id).consume(stream_log(agent, "Weather in Paris?"))


# -- the server process: every run in Redis, over HTTP -----------------------------------------
def serve(url: str, port: int) -> None:
    import uvicorn

    from logstream.asgi import RunLogApp
    from logstream.redis import RedisLogs

    uvicorn.run(RunLogApp(RedisLogs(url)), host="127.0.0.1", port=port, log_level="warning")


# -- the client: what curl -N or a browser's EventSource does --------------------------------
def sse(url: str, last_event_id: Optional[str] = None) -> Iterator[dict[str, str]]:
    """Yield the frames of an SSE response as dicts of their fields."""
    headers = {"Accept": "text/event-stream"}
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as response:
        frame: dict[str, str] = {}
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if frame:
                    yield frame
                frame = {}
            elif not line.startswith(":"):  # ": keep-alive" comments
                name, _, value = line.partition(":")
                frame[name] = value[1:] if value.startswith(" ") else value


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(url: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url) as response:
                return json.load(response)
        except (urllib.error.URLError, ConnectionError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    url = os.environ.get("LOGSTREAM_REDIS_URL")
    workdir = tempfile.mkdtemp()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if not url:
            exe = shutil.which("redis-server")
            if exe is None:
                print("needs redis-server (apt-get install redis-server) or LOGSTREAM_REDIS_URL")
                return
            redis_port = free_port()
            processes.append(
                subprocess.Popen(
                    [exe, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                     "--appendonly", "no", "--dir", workdir],
                    stdout=subprocess.DEVNULL,
                )
            )  # fmt: skip
            url = f"redis://127.0.0.1:{redis_port}/0"
        port = free_port()
        me = os.path.abspath(__file__)
        processes.append(subprocess.Popen([sys.executable, me, "serve", url, str(port)]))
        base = f"http://127.0.0.1:{port}"
        wait_for(f"{base}/runs")

        log_id = "weather-" + uuid.uuid4().hex[:8]
        processes.append(subprocess.Popen([sys.executable, me, "agent", url, log_id]))
        wait_for(f"{base}/runs/{log_id}/state")
        stream = f"{base}/runs/{log_id}/stream"
        print(f"curl -N {stream}")

        log = RunLog(state=None)
        last_id = None
        for count, frame in enumerate(sse(stream), 1):  # first connection: a few frames
            log = log + RunLogPatch(*json.loads(frame["data"])["ops"])
            last_id = frame["id"]
            print(f"  {frame['event']} id={last_id}")
            if count == 4:
                break  # the connection drops (a reload, a flaky network)
        print(f"reconnect with Last-Event-ID: {last_id}")
        for frame in sse(stream, last_event_id=last_id):
            if frame["event"] == "end":
                print(f"  end id={frame['id']} {frame['data']}")
                break
            log = log + RunLogPatch(*json.loads(frame["data"])["ops"])
            print(f"  {frame['event']} id={frame['id']}")
        served = wait_for(f"{base}/runs/{log_id}/state")
        assert served["state"] == json.loads(json.dumps(log.state)), "the states differ"
        print("final output:", log.state["final_output"])
        print("the client's state equals the server's:", served["state"] == log.state)
    finally:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
            process.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["agent"]:
        run_agent(sys.argv[2], sys.argv[3])
    else:
        main()
