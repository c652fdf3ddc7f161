"""Serve a traced agent's run as AG-UI events over Server-Sent Events, then fetch it once.

A tiny HTTP server (plain ``asyncio``, no web framework) answers ``POST /agent`` by
running an async agent under a :class:`logstream.Tracer` with an
:class:`logstream.agui.AguiEncoder` bound to it, and streams the encoder's events as
``text/event-stream`` frames while the agent runs: a planning step, two tools called in
parallel (one of them fails and the agent goes on), and a streaming model. Then a client
(``urllib``, in a thread) posts once, prints one line per event (the step names, message
text and tool results included) and the server shuts down: the script exits by itself.

Run: python examples/agui_server.py
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator

from logstream import Tracer, trace, traced
from logstream.agui import AguiEncoder, asse_events


@traced(run_type="tool")
async def weather(city: str) -> str:
    """Look the weather up."""
    await asyncio.sleep(0.02)
    return {"Paris": "18°C, sunny"}[city]


@traced(run_type="tool")
async def calendar(day: str) -> str:
    """Look the calendar up; there is none for Monday."""
    await asyncio.sleep(0.01)
    msg = f"no calendar for {day}"
    raise LookupError(msg)


@traced(run_type="llm")
async def model(prompt: str) -> AsyncIterator[str]:
    """A fake streaming LLM: streams its reply a word at a time."""
    for token in ["It", " is", " sunny", " in", " Paris."]:
        await asyncio.sleep(0.005)
        yield token


async def agent(tracer: Tracer, question: str) -> None:
    """Plan, call two tools at once (tolerating a failure), then answer with the model."""
    async with trace("agent", inputs=question, tracer=tracer) as root:
        async with trace("plan", inputs=question) as plan:
            plan.outputs = ["weather", "calendar"]
        found = await asyncio.gather(weather("Paris"), calendar("Monday"), return_exceptions=True)
        notes = [note for note in found if isinstance(note, str)]
        root.outputs = "".join([token async for token in model("; ".join(notes))])


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer one request: stream the agent's AG-UI events as SSE, then close."""
    request = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in request.decode("latin-1").split("\r\n"):
        if line.lower().startswith("content-length:"):
            length = int(line.split(":", 1)[1])
    body = json.loads(await reader.readexactly(length) or b"{}")
    encoder = AguiEncoder(thread_id=body.get("threadId", "thread-1"))
    tracer = encoder.bind(Tracer(processors=[encoder]))
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        b"Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
    )
    work = asyncio.ensure_future(agent(tracer, body.get("question", "")))
    async for frame in asse_events(encoder):  # ends after RUN_FINISHED or RUN_ERROR
        writer.write(frame.encode("utf-8"))
        await writer.drain()
    await work
    writer.close()
    await writer.wait_closed()


def fetch(port: int) -> list[dict[str, object]]:
    """POST once to the server and read the SSE events (the client side)."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/agent",
        data=json.dumps({"threadId": "thread-1", "question": "Weather in Paris?"}).encode(),
        headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
    )
    events = []
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        for raw in response:
            line = raw.decode("utf-8").rstrip("\r\n")
            if line.startswith("data: "):
                events.append(json.loads(line[len("data: ") :]))
    return events


def describe(event: dict[str, object]) -> str:
    """One line for an event: its type and what it carries."""
    kind = str(event["type"])
    ops = event.get("delta")
    if kind == "STATE_DELTA" and isinstance(ops, list):
        return f"{kind} ({len(ops)} ops)"
    for key in ("stepName", "toolCallName", "delta", "content", "result", "message"):
        if key in event and kind != "STATE_SNAPSHOT":
            return f"{kind} {event[key]!r}"
    return kind


async def main() -> None:
    """Serve on a free port, fetch once, print the events, stop."""
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        events = await asyncio.get_running_loop().run_in_executor(None, fetch, port)
    for event in events:
        print(describe(event))


if __name__ == "__main__":
    asyncio.run(main())
