"""Patches per second through Redis Streams: one producer's pipelined appends (RedisSink),
alone and with one and ten live consumer processes (RedisSource, blocking XREAD).

The patches are a run recorded with the native Tracer (a chain and a streaming LLM run:
token patches, made before the clock starts). "append" is the producer's rate from its
first write until the server has acknowledged the end record; "delivered" is until the
last consumer process has read the end (every consumer reads every patch and applies it,
as a client does). Uses
LOGSTREAM_REDIS_URL if set, else starts a redis-server of its own on a free port.

    .venv/bin/python benchmarks/bench_redis.py            # 50,000 patches
    .venv/bin/python benchmarks/bench_redis.py --quick    # a smoke run
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis
from redis.utils import HIREDIS_AVAILABLE

import logstream
from logstream import RunLogPatch, Tracer
from logstream.redis import RedisSink

ROOT = Path(__file__).resolve().parent.parent

CONSUMER = """
import sys, time
from logstream import RunLog, RunLogPatch
from logstream.redis import RedisSource
url, log_id = sys.argv[1], sys.argv[2]
log = RunLog(state=None)
count = 0
print("ready", flush=True)
for item in RedisSource(url, log_id).frames(after=0):
    if item is None:
        continue
    if not hasattr(item, "ops"):
        break
    log = log + RunLogPatch(*item.ops)
    count += 1
print(time.time(), count, flush=True)
"""


def make_patches(tokens: int) -> list[RunLogPatch]:
    """A root chain with one streaming LLM run: small token patches, as an agent streams."""
    tracer = Tracer()
    root = tracer.start_run("agent", inputs={"question": "go"})
    llm = tracer.start_run("model", "llm", parent_id=root.id, inputs={"prompts": ["go"]})
    for i in range(tokens):
        tracer.add_token(llm.id, f"token {i} ")
    tracer.end_run(llm.id, outputs={"generations": []})
    tracer.end_run(root.id, outputs={"output": "done"})
    return tracer.drain()


def start_server(directory: str) -> tuple[str, subprocess.Popen[bytes]]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    exe = shutil.which("redis-server")
    if exe is None:
        sys.exit("redis-server is not installed and LOGSTREAM_REDIS_URL is not set")
    process = subprocess.Popen(
        [
            exe,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            directory,
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    return url, process


def run_once(url: str, patches: list[RunLogPatch], consumers: int) -> tuple[float, float]:
    log_id = "bench-" + uuid.uuid4().hex
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    readers = [
        subprocess.Popen(
            [sys.executable, "-c", CONSUMER, url, log_id],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(consumers)
    ]
    for reader in readers:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    time.sleep(0.3)  # the readers are in their first XREAD
    sink = RedisSink(url, log_id)
    start_wall = time.time()
    start = time.perf_counter()
    for patch in patches:
        sink.write(patch)
    sink.end()
    append = time.perf_counter() - start
    last = start_wall
    for reader in readers:
        out, _ = reader.communicate(timeout=600)
        stamp, count = out.split()
        assert int(count) == len(patches), (count, len(patches))
        last = max(last, float(stamp))
    delivered = (last - start_wall) if readers else append
    redis.Redis.from_url(url).delete(sink.stream, sink.stream + ":meta")
    return len(patches) / append, len(patches) / delivered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patches", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 patches, one round")
    args = parser.parse_args()
    if args.quick:
        args.patches, args.rounds = 2_000, 1
    patches = make_patches(max(1, args.patches - 4))
    with tempfile.TemporaryDirectory() as directory:
        url = os.environ.get("LOGSTREAM_REDIS_URL")
        process = None
        if not url:
            url, process = start_server(directory)
        try:
            info = redis.Redis.from_url(url).info("server")
            print(
                f"logstream {logstream.__version__}, redis-py {redis.__version__}, redis-server "
                f"{info['redis_version']}, Python {platform.python_version()}, "
                f"{os.cpu_count()} CPUs, hiredis {'on' if HIREDIS_AVAILABLE else 'off'}, "
                f"{len(patches):,} patches, median of {args.rounds}"
            )
            print(f"{'consumers':>9}  {'append (patches/s)':>18}  {'delivered (patches/s)':>21}")
            for consumers in (0, 1, 10):
                runs = [run_once(url, patches, consumers) for _ in range(args.rounds)]
                append = statistics.median(r[0] for r in runs)
                delivered = statistics.median(r[1] for r in runs)
                shown = f"{delivered:>21,.0f}" if consumers else f"{'-':>21}"
                print(f"{consumers:>9}  {append:>18,.0f}  {shown}")
        finally:
            if process is not None:
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
