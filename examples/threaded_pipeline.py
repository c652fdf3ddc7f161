"""A framework-free retrieval pipeline traced with logstream, no LangChain needed.

Four questions are answered in parallel worker threads under one root run. Each answer
retrieves documents (a retriever run) and streams tokens from a fake LLM (an llm run).
The handler only logs llm and retriever runs (include_types) and skips runs tagged
"internal" (exclude_tags). The consumer is an asyncio event loop in yet another thread,
created after the handler: it prints patches as they arrive, then the rebuilt state.

Run: python examples/threaded_pipeline.py
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

from logstream import LogStreamCallbackHandler, RunLog

DOCS = {
    "paris": "Paris is the capital of France.",
    "rome": "Rome is the capital of Italy.",
    "oslo": "Oslo is the capital of Norway.",
    "lima": "Lima is the capital of Peru.",
}


def answer(handler: LogStreamCallbackHandler, root: uuid.UUID, city: str) -> str:
    """Answer one question: a chain with a retriever and a streaming LLM inside."""
    step = uuid.uuid4()
    handler.on_chain_start({}, {"city": city}, run_id=step, parent_run_id=root, name="answer")
    normalize = uuid.uuid4()  # an internal step, excluded by its tag
    handler.on_chain_start(
        {}, city, run_id=normalize, parent_run_id=step, name="normalize", tags=["internal"]
    )
    handler.on_chain_end(city.lower(), run_id=normalize)
    retriever = uuid.uuid4()
    handler.on_retriever_start({}, city, run_id=retriever, parent_run_id=step, name="docs")
    found = [{"page_content": DOCS[city.lower()], "metadata": {"city": city}}]
    handler.on_retriever_end(found, run_id=retriever)
    llm = uuid.uuid4()
    handler.on_llm_start({}, [f"Where is {city}?"], run_id=llm, parent_run_id=step, name="llm")
    text = ""
    for token in DOCS[city.lower()].split(" "):
        token = token if not text else " " + token
        text += token
        handler.on_llm_new_token(token, run_id=llm)
    handler.on_llm_end({"generations": [[{"text": text}]], "llm_output": None}, run_id=llm)
    handler.on_chain_end({"answer": text}, run_id=step)
    return text


def produce(handler: LogStreamCallbackHandler) -> None:
    """Run the pipeline: one root, four questions answered in a thread pool."""
    root = uuid.uuid4()
    handler.on_chain_start({}, {"cities": list(DOCS)}, run_id=root, name="pipeline")
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda city: answer(handler, root, city.title()), DOCS))
    handler.on_chain_end({"answers": answers}, run_id=root)


async def consume(handler: LogStreamCallbackHandler) -> RunLog:
    """Print each patch as it arrives and return the log they build."""
    log = RunLog(state=None)
    async for patch in handler:
        for op in patch.ops:
            print(f"{op['op']:<7} {op['path']}")
        log = log + patch
    return log


def main() -> None:
    """Wire a producer thread and a consumer loop in another thread to one handler."""
    handler = LogStreamCallbackHandler(
        include_types=["llm", "retriever"], exclude_tags=["internal"]
    )
    result: dict[str, RunLog] = {}
    consumer = threading.Thread(target=lambda: result.update(log=asyncio.run(consume(handler))))
    consumer.start()
    producer = threading.Thread(target=produce, args=(handler,))
    producer.start()
    producer.join()
    consumer.join(timeout=30)
    state = result["log"].state
    print(
        json.dumps(
            {key: entry["streamed_output_str"] for key, entry in state["logs"].items()}, indent=2
        )
    )
    assert sorted(state["logs"]) == [
        "docs",
        "docs:2",
        "docs:3",
        "docs:4",
        "llm",
        "llm:2",
        "llm:3",
        "llm:4",
    ]


if __name__ == "__main__":
    main()
