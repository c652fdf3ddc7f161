"""Every script in examples/ runs, exits 0 and prints what it claims.

Each example runs in a subprocess with this checkout's ``logstream`` first on the path.
Every example must have a check here: a new example without one fails the suite.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from functools import cache
from pathlib import Path
from typing import Callable

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted(
    path.stem for path in (ROOT / "examples").glob("*.py") if not path.name.startswith("_")
)


def _env() -> dict[str, str]:
    path = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "PYTHONIOENCODING": "utf-8"}


@cache
def run_example(name: str) -> str:
    """Run ``examples/<name>.py``; assert it exits 0 and return its output."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / f"{name}.py")],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env=_env(),
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def patch_lines(out: str) -> list[str]:
    """The one-line-per-patch part of a native example's output (before the tree)."""
    return out.split("\n\n", 1)[0].splitlines()


def tree_edges(out: str) -> set[tuple[str, str]]:
    """The (parent, child) pairs of the printed run tree, with key suffixes (``:2``) cut.

    Keys are numbered in the order runs start, which parallel runs do not fix; what a
    run produced and where it sits in the tree are fixed.
    """
    lines = out.split("\n\n", 1)[1].splitlines()
    stack = [lines[0]]  # the root
    edges = set()
    for line in lines[1:]:
        match = re.match(r"^((?:│  |   )*)[├└]─ (.*)$", line)
        assert match, line
        depth = len(match.group(1)) // 3 + 1
        node = re.sub(r"^(\S+?):\d+ ", r"\1 ", match.group(2))
        del stack[depth:]
        edges.add((stack[-1], node))
        stack.append(node)
    return edges


def check_custom_agent(out: str) -> None:
    patches = patch_lines(out)
    assert patches[0] == "replace \"\" <chain 'agent'>"
    token = "add /logs/model/streamed_output_str/- ' need'"
    assert f"{token} | {token.replace('_str', '')}" in patches
    root = "agent (chain) -> 'Twice the population of Paris is about 4.2 million people.'"
    assert tree_edges(out) == {
        (
            root,
            "model (llm, done): "
            "'I need the population of Paris first. Action: search[population of P...",
        ),
        (root, "search (tool, done): '2.1 million'"),
        (root, "model (llm, done): 'Now I double it. Action: calculator[2.1 * 2]'"),
        (root, "calculator (tool, done): '4.2'"),
        (root, "model (llm, done): 'Twice the population of Paris is about 4.2 million people.'"),
    }


def check_async_agent(out: str) -> None:
    assert patch_lines(out)[0] == "replace \"\" <chain 'agent'>"
    edges = tree_edges(out)
    paris = "research (chain, done): 'Paris: 18°C, sunny, 2.1M people'"
    rome = "research (chain, done): 'Rome: 24°C, clear, 2.8M people'"
    # Each branch's model and tools sit under that branch, not the other one.
    assert {child for parent, child in edges if parent == paris} == {
        "model (llm, done): 'Calling weather(Paris) and population(Paris) at once.'",
        "weather (tool, done): '18°C, sunny'",
        "population (tool, done): '2.1M people'",
    }
    assert {child for parent, child in edges if parent == rome} == {
        "model (llm, done): 'Calling weather(Rome) and population(Rome) at once.'",
        "weather (tool, done): '24°C, clear'",
        "population (tool, done): '2.8M people'",
    }
    root_children = {child for parent, child in edges if parent.startswith("agent (chain)")}
    assert paris in root_children and rome in root_children and len(root_children) == 3


def check_threads(out: str) -> None:
    assert patch_lines(out)[0] == "replace \"\" <chain 'pipeline'>"
    edges = tree_edges(out)
    notes = {
        "Tides": "the moon pulls the oceans",
        "Seasons": "the earth is tilted",
        "Rainbows": "water drops split sunlight",
    }
    for topic, note in notes.items():
        step = f"summarize (chain, done): '{topic}: {note}.'"
        assert {child for parent, child in edges if parent == step} == {
            f"fetch (tool, done): '{note}'",
            f"write (llm, done): '{topic}: {note}.'",
        }
    assert len([parent for parent, _ in edges if parent.startswith("pipeline (chain)")]) == 3


def check_threaded_pipeline(out: str) -> None:
    tokens = json.loads(out[out.index("\n{\n") :])
    capitals = {
        "".join(tokens[key]) for key in ("llm", "llm:2", "llm:3", "llm:4")
    }  # the threads finish in any order
    assert capitals == {
        "Paris is the capital of France.",
        "Rome is the capital of Italy.",
        "Oslo is the capital of Norway.",
        "Lima is the capital of Peru.",
    }


def check_langchain_dropin(out: str) -> None:
    assert "answer: Bonjour tout le monde" in out
    assert out.splitlines()[-1] == "tokens: ['Bonjour', ' ', 'tout', ' ', 'le', ' ', 'monde']"


def check_test_my_pipeline(out: str) -> None:
    """As a script it runs its own tests with pytest (the plugin from the entry point)."""
    summary = out.strip().splitlines()[-1]
    assert re.fullmatch(r"\d+ passed in [\d.]+s", summary), summary


def check_processor_tree(out: str) -> None:
    """The processor prints the nested tree with the failed tool and its error."""
    lines = [re.sub(r" \(\d+ ms\)$", "", line) for line in out.splitlines()]
    assert lines[0] == "agent [chain] success"
    assert lines[1] == "  planner [chain] success"
    tools = sorted(lines[2:4])  # the two tools run in a pool: either may start first
    assert tools == [
        "  calendar [tool] error: LookupError('no calendar for Monday')",
        "  weather [tool] success",
    ]
    assert lines[4] == "  model [llm] success, 3 tokens"
    assert re.fullmatch(r"\d+ patches streamed", lines[5])


def check_redis_agent(out: str) -> None:
    """The client reads the run across a reconnect: consecutive positions, the same state."""
    lines = out.splitlines()
    assert lines[0].startswith("curl -N http://127.0.0.1:")
    positions = [int(m.group(1)) for m in re.finditer(r"^  data id=[\w.-]+:(\d+)$", out, re.M)]
    assert positions == list(range(positions[0], positions[0] + len(positions)))
    resumed = re.search(r"^reconnect with Last-Event-ID: [\w.-]+:(\d+)$", out, re.M)
    assert resumed is not None and int(resumed.group(1)) in positions[:-1]
    end = re.search(r"^  end id=[\w.-]+:(\d+) ", out, re.M)
    assert end is not None and int(end.group(1)) == positions[-1]
    assert "final output: It is sunny in Paris today , 21 degrees . " in lines
    assert lines[-1] == "the client's state equals the server's: True"


def check_nested_agent(out: str) -> None:
    """The tree rebuilt from parent_ids nests the sub-agents' tools; the orphan is counted."""
    assert out.splitlines() == [
        "agent [chain] final_output=\"answers: [2, 'error: division by zero']\"",
        "  researcher [chain] ok",
        "    calculator [tool] ok",
        "    calculator [tool] error: ZeroDivisionError: division by zero",
        "  writer [chain] ok",
        "orphan runs from a plain thread: 1",
    ]


def check_agui_server(out: str) -> None:
    """The client got the whole AG-UI run: steps, both tool results, the streamed text."""
    lines = out.splitlines()
    assert lines[:2] == ["RUN_STARTED", "STATE_SNAPSHOT"]
    assert lines[-1] == "RUN_FINISHED {'output': 'It is sunny in Paris.'}"
    assert "STEP_STARTED 'plan'" in lines and "STEP_FINISHED 'plan'" in lines
    results = sorted(line for line in lines if line.startswith("TOOL_CALL_RESULT"))
    assert results == [
        "TOOL_CALL_RESULT \"LookupError('no calendar for Monday')\"",
        "TOOL_CALL_RESULT '18°C, sunny'",
    ]
    text = [line.split(" ", 1)[1] for line in lines if line.startswith("TEXT_MESSAGE_CONTENT")]
    assert "".join(ast.literal_eval(token) for token in text) == "It is sunny in Paris."


CHECKS: dict[str, Callable[[str], None]] = {
    "agui_server": check_agui_server,
    "nested_agent": check_nested_agent,
    "async_agent": check_async_agent,
    "custom_agent": check_custom_agent,
    "processor_tree": check_processor_tree,
    "redis_agent": check_redis_agent,
    "langchain_dropin": check_langchain_dropin,
    "threaded_pipeline": check_threaded_pipeline,
    "test_my_pipeline": check_test_my_pipeline,
    "threads": check_threads,
}
NEEDS_LANGCHAIN = {"langchain_dropin"}
NEEDS_REDIS = {"redis_agent"}  # redis-server, or a server at LOGSTREAM_REDIS_URL


def _has_redis() -> bool:
    return bool(os.environ.get("LOGSTREAM_REDIS_URL")) or shutil.which("redis-server") is not None


def test_every_example_has_a_check() -> None:
    assert EXAMPLES == sorted(CHECKS)


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_runs_and_prints_what_it_claims(name: str) -> None:
    if name in NEEDS_LANGCHAIN and importlib.util.find_spec("langchain_core") is None:
        pytest.skip("needs langchain-core (the compat extra)")
    if name in NEEDS_REDIS and not _has_redis():
        if os.environ.get("LOGSTREAM_REQUIRE_REDIS") == "1":
            pytest.fail("LOGSTREAM_REQUIRE_REDIS=1 but redis-server is not installed")
        pytest.skip("needs redis-server (apt-get install redis-server) or LOGSTREAM_REDIS_URL")
    CHECKS[name](run_example(name))


def test_custom_agent_is_deterministic() -> None:
    """No ids or times are printed and the agent is sequential: two runs print the same."""
    assert run_example.__wrapped__("custom_agent") == run_example("custom_agent")


def test_custom_agent_prints_patches_as_they_stream() -> None:
    """Patch lines arrive over the model's streaming time, not all at once at the end."""
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "examples" / "custom_agent.py")],
        stdout=subprocess.PIPE,
        text=True,
        encoding="utf-8",
        env=_env(),
        cwd=ROOT,
    )
    assert proc.stdout is not None
    arrivals = []
    for line in proc.stdout:
        if line == "\n":  # the tree follows
            break
        arrivals.append(time.monotonic())
    proc.stdout.read()
    assert proc.wait(timeout=60) == 0
    # The fake model sleeps 10 ms before each of its 29 tokens.
    assert arrivals[-1] - arrivals[0] > 0.1
