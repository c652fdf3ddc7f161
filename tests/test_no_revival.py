"""Nothing in logstream turns data into objects: serialized LangChain shapes stay dicts.

LangChain's ``load()`` on run inputs and outputs is how ``astream_log`` became exposed to
CVE-2025-68664. These tests feed ``{"lc": 1, "type": "constructor" | "secret", ...}``
shapes through every way into a patch (callbacks, native runs, ``astream_log`` and
``stream_log`` in both modes, ``RunLog`` accumulation) and check that every value in
every op and in every rebuilt state is plain JSON data, with the shapes intact. A scan of
the package source checks that no module has the machinery to revive anything.
"""

from __future__ import annotations

import ast
import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonpatch  # type: ignore[import-untyped,unused-ignore]
import pytest

import logstream
from logstream import (
    LogStreamCallbackHandler,
    RunLogPatch,
    Tracer,
    astream_log,
    stream_log,
    trace,
    traced,
)

CONSTRUCTOR = {
    "lc": 1,
    "type": "constructor",
    "id": ["langchain", "schema", "messages", "AIMessage"],
    "kwargs": {"content": "hi", "additional_kwargs": {}},
}
SECRET = {"lc": 1, "type": "secret", "id": ["OPENAI_API_KEY"]}
NOT_IMPLEMENTED = {"lc": 1, "type": "not_implemented", "id": ["os", "system"], "repr": "x"}
PAYLOAD = {"message": CONSTRUCTOR, "key": SECRET, "items": [CONSTRUCTOR, NOT_IMPLEMENTED]}
PLAIN = (dict, list, str, int, float, bool, type(None))


def walk(value: Any) -> Iterator[Any]:
    """Yield ``value`` and everything nested in its dicts and lists."""
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def assert_inert(ops: list[dict[str, Any]]) -> None:
    """Every op value and the state they build hold only plain data with the shapes intact."""
    values = [v for op in ops for v in walk(op.get("value"))]
    assert all(type(v) in PLAIN for v in values), {type(v) for v in values}
    for shape in (CONSTRUCTOR, SECRET, NOT_IMPLEMENTED):
        assert shape in values
    state = jsonpatch.apply_patch(None, ops)
    assert all(type(v) in PLAIN for v in walk(state))
    for shape in (CONSTRUCTOR, SECRET):
        assert shape in list(walk(state))


def ops_of(source: Any) -> list[dict[str, Any]]:
    """Flatten the patches of a closed stream."""
    return [op for patch in source for op in patch.ops]


class TestEveryPath:
    @pytest.mark.parametrize("fmt", ["original", "streaming_events"])
    def test_callbacks(self, fmt: str) -> None:
        """Inputs, outputs, tokens and tapped chunks through the adapter stay dicts."""
        handler = LogStreamCallbackHandler(_schema_format=fmt)  # type: ignore[arg-type]
        root, llm, step = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, PAYLOAD, run_id=root, name="root")
        handler.on_llm_start({}, ["p"], run_id=llm, parent_run_id=root, name="llm")
        handler.on_llm_new_token("t", chunk={"message": None}, run_id=llm)
        handler.on_llm_end(PAYLOAD, run_id=llm)
        handler.on_chain_start({}, PAYLOAD, run_id=step, parent_run_id=root, name="step")
        list(handler.tap_output_iter(step, iter([PAYLOAD])))
        handler.on_chain_end(PAYLOAD, run_id=step)
        handler.on_chain_end(PAYLOAD, run_id=root)
        assert_inert(ops_of(handler))

    @pytest.mark.parametrize("fmt", ["original", "streaming_events"])
    def test_native_runs(self, fmt: str) -> None:
        """Native runs' inputs, chunks and outputs stay dicts."""
        tracer = Tracer(schema_format=fmt)  # type: ignore[arg-type]
        with trace("root", tracer=tracer, inputs=PAYLOAD) as root:
            with trace("step", inputs=PAYLOAD) as step:
                step.chunk(PAYLOAD)
                step.outputs = PAYLOAD
            with trace("tool", "tool", inputs=PAYLOAD) as tool:
                tool.outputs = PAYLOAD
            root.outputs = PAYLOAD
        assert_inert(ops_of(tracer))

    @pytest.mark.parametrize("diff", [True, False])
    def test_stream_log_and_astream_log(self, diff: bool) -> None:
        """Root chunks, nested runs and accumulated states of both entry points stay dicts."""

        @traced
        def step(value: Any) -> Any:
            return value

        def target(value: Any) -> Iterator[Any]:
            yield step(value)
            yield PAYLOAD

        async def consume() -> list[Any]:
            return [p async for p in astream_log(target, PAYLOAD, diff=diff)]

        for items in (list(stream_log(target, PAYLOAD, diff=diff)), asyncio.run(consume())):
            if diff:
                assert_inert(ops_of(items))
            else:
                final = items[-1]
                assert_inert(final.ops)
                assert all(type(v) in PLAIN for v in walk(final.state))

    def test_runlog_accumulation(self) -> None:
        """Adding patches that carry the shapes builds states of plain dicts."""
        patch = RunLogPatch(
            {"op": "replace", "path": "", "value": {"logs": {}, "x": None}},
            {"op": "replace", "path": "/x", "value": PAYLOAD},
        )
        log = RunLogPatch() + patch
        assert log.state["x"] == PAYLOAD
        assert all(type(v) in PLAIN for v in walk(log.state))


class TestSourceHasNoRevivalMachinery:
    BANNED_CALLS = frozenset({"eval", "exec", "__import__", "import_module", "load", "loads"})
    BANNED_MODULES = frozenset({"pickle", "marshal", "importlib", "shelve", "dill", "yaml"})
    # `logstream record --target module:function` imports the module its user names on the
    # command line; that is the command's job, and no data read from a file reaches it.
    # `logstream view` reads its own page assets (package data) with importlib.resources.
    ALLOWED = frozenset(
        {"_cli.py calls import_module", "_cli.py imports importlib", "_viewer.py imports importlib"}
    )

    def test_no_dynamic_import_or_eval_in_the_package(self) -> None:
        """No module imports pickle/importlib/yaml or calls eval/exec/__import__/load(s)."""
        offenders: list[str] = []
        for path in sorted(Path(logstream.__file__).parent.glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.Import):
                    names = [alias.name.split(".")[0] for alias in node.names]
                elif isinstance(node, ast.ImportFrom):
                    names = [(node.module or "").split(".")[0]]
                elif isinstance(node, ast.Call):
                    func = node.func
                    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                    if name in self.BANNED_CALLS and not _is_json_loads(func):
                        offenders.append(f"{path.name}:{node.lineno} calls {name}")
                    continue
                else:
                    continue
                offenders.extend(
                    f"{path.name}:{node.lineno} imports {n}"
                    for n in names
                    if n in self.BANNED_MODULES
                )
        assert [
            o for o in offenders if o.split(":")[0] + o[o.index(" ") :] not in self.ALLOWED
        ] == []


def _is_json_loads(func: ast.expr) -> bool:
    """``json.loads`` builds plain data only, so it is allowed."""
    return (
        isinstance(func, ast.Attribute)
        and isinstance(func.value, ast.Name)
        and func.value.id == "json"
        and func.attr == "loads"
    )
