"""A real ASGI server for the tests: uvicorn in a thread on a free localhost port."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from tests.threading_helpers import TIMEOUT


def free_socket(port: int = 0) -> socket.socket:
    """Return a TCP socket bound to 127.0.0.1 on ``port`` (0: a free one), not listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    return sock


@contextlib.contextmanager
def serving(app: Any, port: int = 0, grace: float = 2) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yield its base URL ``http://127.0.0.1:PORT``.

    ``port`` 0 takes a free one; ``grace`` is uvicorn's graceful-shutdown timeout (seconds).
    """
    import uvicorn  # a test dependency; imported here so a module can importorskip it first

    sock = free_socket(port)
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", timeout_graceful_shutdown=grace
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + TIMEOUT
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(TIMEOUT)
        sock.close()
