"""Tests that logstream can be vendored: a copy under another name works on its own.

The package directory is copied to ``hostapp/_vendor/tracer_core/`` in a temporary
directory, and a smoke script drives the copy in a fresh interpreter whose ``PYTHONPATH``
holds only that directory and a guard (besides, the interpreter's own site-packages), and
whose first meta-path finder, installed by the guard's ``sitecustomize``, refuses every
``logstream`` import, so nothing can fall back on the original package. The
static half of the claim (no module imports ``logstream`` absolutely) is
``tests/test_imports.py::TestRelativeImports``; this file checks that it holds at run time.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import logstream

PACKAGE_DIR = Path(logstream.__file__).resolve().parent
README = Path(__file__).resolve().parent.parent / "README.md"
VENDORED = "hostapp._vendor.tracer_core"
TIMEOUT = 30

# Installed by sitecustomize.py before any code of the subprocess runs (even for `-m`).
GUARD = '''\
"""The vendoring test's guard: the original logstream package must not be imported."""

import sys


class RefuseLogstream:
    """A meta-path finder that raises ImportError for logstream and its submodules."""

    def __init__(self):
        self.refused = []

    def find_spec(self, name, path=None, target=None):
        if name == "logstream" or name.startswith("logstream."):
            self.refused.append(name)
            msg = f"the vendoring test refuses to import {name!r}: a vendored copy must not"
            raise ImportError(msg, name=name)
        return None


sys.meta_path.insert(0, RefuseLogstream())
'''

# Runs in the subprocess; prints one JSON object. Each section records its own traceback.
SMOKE = """\
import importlib
import json
import sys
import threading
import traceback
import uuid
from pathlib import Path

PKG = "hostapp._vendor.tracer_core"
results = {}


def section(name):
    def run(fn):
        try:
            results[name] = fn()
        except BaseException:
            results[name] = {"traceback": traceback.format_exc()}
    return run


@section("guard")
def _():
    guard = sys.meta_path[0]
    try:
        import logstream  # noqa: F401
    except ImportError as exc:
        return {"finder": type(guard).__name__, "refused": str(exc)}
    return {"finder": type(guard).__name__, "refused": None}


@section("package")
def _():
    tc = importlib.import_module(PKG)
    return {"file": tc.__file__, "version": tc.__version__, "all": sorted(tc.__all__)}


@section("callbacks")
def _():
    tc = importlib.import_module(PKG)
    handler = tc.LogStreamCallbackHandler()
    root, chat, tool = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

    # Sent before the stream is read (it buffers), so an error here cannot hang the read.
    handler.on_chain_start({}, {"question": "weather?"}, run_id=root, name="agent")
    handler.on_chat_model_start({}, [["weather?"]], run_id=chat, parent_run_id=root, name="model")
    for token in ["It is", " sunny"]:
        handler.on_llm_new_token(token, run_id=chat)
    handler.on_llm_end({"generations": [[{"text": "It is sunny"}]]}, run_id=chat)
    handler.on_tool_start({}, "Paris", run_id=tool, parent_run_id=root, name="weather")
    handler.on_tool_end("sunny", run_id=tool)
    handler.on_chain_end({"answer": "It is sunny"}, run_id=root)
    log = tc.RunLog(state=None)
    kinds = set()
    for patch in handler:
        kinds.add(type(patch).__module__ + "." + type(patch).__name__)
        log = log + patch
    logs = log.state["logs"]
    return {
        "patch_types": sorted(kinds),
        "keys": sorted(logs),
        "tokens": logs["model"]["streamed_output_str"],
        "model_end": logs["model"]["end_time"] is not None,
        "tool_output": logs["weather"]["final_output"],
        "root_is_the_chain": log.state["id"] == str(root),
    }


@section("native")
def _():
    tc = importlib.import_module(PKG)

    @tc.traced(run_type="llm")
    def model(prompt):
        yield from ["It is", " sunny"]

    @tc.traced(run_type="tool")
    def weather(city):
        return "sunny"

    def worker(city):
        with tc.trace("worker", inputs=city, tags=["pool"]) as scope:
            scope.outputs = weather(city) + "/" + "".join(model(city))
            name = tc.current_run().name
        return name, threading.current_thread().name

    def agent(question):
        with tc.ContextThreadPoolExecutor(max_workers=1) as pool:
            name, thread = pool.submit(worker, "Paris").result()
        return {"answer": name, "other_thread": thread != threading.current_thread().name}

    log = tc.RunLog(state=None)
    for patch in tc.stream_log(agent, "weather?"):
        log = log + patch
    logs = log.state["logs"]
    return {
        "keys": sorted(logs),
        "tokens": logs["model"]["streamed_output_str"],
        "tags": logs["model"]["tags"],
        "worker_output": logs["worker"]["final_output"],
        "final_output": log.state["final_output"],
        "dumps": tc.dumps([uuid.UUID(int=1), float("nan"), b"hi"]),
        "dumps_state_keys": sorted(json.loads(tc.dumps(log.state))),
    }


@section("errors")
def _():
    tc = importlib.import_module(PKG)
    errors = importlib.import_module(PKG + "._errors")
    caught = {}
    handler = tc.LogStreamCallbackHandler()
    try:
        handler.on_llm_end({}, run_id=uuid.uuid4())
    except tc.UnknownRunError as exc:
        caught["unknown"] = [type(exc).__module__, isinstance(exc, errors.LogStreamError)]
    run_id = uuid.uuid4()
    handler.on_chain_start({}, {}, run_id=run_id, name="x")
    try:
        handler.on_chain_start({}, {}, run_id=run_id, name="x")
    except tc.DuplicateRunError as exc:
        caught["duplicate"] = [type(exc).__module__, isinstance(exc, errors.LogStreamError)]
    return caught


@section("submodules")
def _():
    tc = importlib.import_module(PKG)
    top = Path(tc.__file__).parent
    names = []
    for path in sorted(top.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        parts = [p for p in path.relative_to(top).with_suffix("").parts if p != "__init__"]
        importlib.import_module(".".join([PKG, *parts]))
        names.append(".".join(parts))
    elsewhere = sorted(
        name
        for name, module in sys.modules.items()
        if (name == PKG or name.startswith(PKG + "."))
        and not str(getattr(module, "__file__", "")).startswith(str(top))
    )
    return {"imported": names, "loaded_elsewhere": elsewhere}


@section("original")
def _():
    return {
        "in_sys_modules": sorted(
            m for m in sys.modules if m == "logstream" or m.startswith("logstream.")
        ),
        "refused": sys.meta_path[0].refused,
    }


print(json.dumps(results))
"""


class Vendored(NamedTuple):
    """A temporary host application with logstream vendored into it."""

    root: Path
    copy: Path
    env: dict[str, str]


def vendor(root: Path) -> Vendored:
    """Copy the package to ``root/hostapp/_vendor/tracer_core`` and build the guarded env."""
    vendor_dir = root / "hostapp" / "_vendor"
    vendor_dir.mkdir(parents=True)
    (root / "hostapp" / "__init__.py").write_text('"""A host application."""\n')
    (vendor_dir / "__init__.py").write_text('"""Vendored third-party packages."""\n')
    copy = vendor_dir / "tracer_core"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    return Vendored(root, copy, guarded_env(root))


def guarded_env(root: Path) -> dict[str, str]:
    """Return an environment whose interpreters see ``root`` and refuse ``logstream``."""
    guard_dir = root / "guard"
    guard_dir.mkdir()
    (guard_dir / "sitecustomize.py").write_text(GUARD)
    # Like -I, but with the host's path: no PYTHON* variables (and -s: no user site).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONPATH"] = os.pathsep.join([str(root), str(guard_dir)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def run_python(vendored: Vendored, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``sys.executable -s *args`` in the host application's directory, guarded."""
    try:
        return subprocess.run(
            [sys.executable, "-s", *args],
            cwd=vendored.root,
            env=vendored.env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:  # its stderr may be bytes, even with text=True
        stderr = exc.stderr.decode() if isinstance(exc.stderr, bytes) else exc.stderr
        pytest.fail(f"{args[:2]} ran for over {TIMEOUT} s; stderr:\n{stderr}")


def files_of(directory: Path) -> list[str]:
    """Return the files under ``directory`` (relative, sorted), ``__pycache__`` left out."""
    return sorted(
        str(p.relative_to(directory))
        for p in directory.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )


@pytest.fixture(scope="module")
def vendored(tmp_path_factory: pytest.TempPathFactory) -> Vendored:
    """A host application with logstream vendored as ``hostapp._vendor.tracer_core``."""
    return vendor(tmp_path_factory.mktemp("vendoring"))


@pytest.fixture(scope="module")
def smoke(vendored: Vendored) -> dict[str, Any]:
    """The results of the smoke script run against the vendored copy."""
    done = run_python(vendored, "-c", SMOKE)
    report = f"smoke script exited {done.returncode}; stderr:\n{done.stderr}"
    assert done.returncode == 0, report
    results: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    results["stderr"] = done.stderr
    return results


def section(smoke: dict[str, Any], name: str) -> Any:
    """Return one section of the smoke results, failing with its traceback if it raised."""
    result = smoke[name]
    if isinstance(result, dict) and "traceback" in result:
        pytest.fail(f"smoke section {name!r} raised in the vendored copy:\n{result['traceback']}")
    return result


class TestVendoredCopy:
    def test_copy_holds_every_file_of_the_package(self, vendored: Vendored) -> None:
        """The copy has every file of the package, ``py.typed`` included."""
        assert files_of(vendored.copy) == files_of(PACKAGE_DIR)
        assert "py.typed" in files_of(vendored.copy)

    def test_guard_refuses_the_original_package(self, smoke: dict[str, Any]) -> None:
        """The subprocess cannot import ``logstream``, and nothing but the self-check tried."""
        guard = section(smoke, "guard")
        assert guard["finder"] == "RefuseLogstream"
        assert guard["refused"] is not None
        original = section(smoke, "original")
        assert original == {"in_sys_modules": [], "refused": ["logstream"]}
        assert smoke["stderr"] == ""

    def test_package_is_the_copy(self, smoke: dict[str, Any], vendored: Vendored) -> None:
        """The package imported under the new name is the copy, with the same public names."""
        package = section(smoke, "package")
        assert Path(package["file"]).parent == vendored.copy
        assert package["version"] == logstream.__version__
        assert package["all"] == sorted(logstream.__all__)

    def test_callbacks_rebuild_the_state(self, smoke: dict[str, Any]) -> None:
        """The copy's handler, driven by chain/chat/tool callbacks, streams an applicable log."""
        assert section(smoke, "callbacks") == {
            "patch_types": [f"{VENDORED}._patches.RunLogPatch"],
            "keys": ["model", "weather"],
            "tokens": ["It is", " sunny"],
            "model_end": True,
            "tool_output": "sunny",
            "root_is_the_chain": True,
        }

    def test_native_api_nests_a_run_made_in_a_pool_thread(self, smoke: dict[str, Any]) -> None:
        """``stream_log`` of the copy logs runs traced in its ``ContextThreadPoolExecutor``."""
        native = section(smoke, "native")
        assert native["keys"] == ["model", "weather", "worker"]
        assert native["tokens"] == ["It is", " sunny"]
        assert native["tags"] == ["pool"]
        assert native["worker_output"] == {"output": "sunny/It is sunny"}
        assert native["final_output"] == {"answer": "worker", "other_thread": True}
        assert native["dumps"] == (
            '["00000000-0000-0000-0000-000000000001","NaN",{"type":"bytes","base64":"aGk="}]'
        )
        assert native["dumps_state_keys"] == [
            "final_output",
            "id",
            "logs",
            "name",
            "streamed_output",
            "type",
        ]

    def test_errors_are_the_copy_own_classes(self, smoke: dict[str, Any]) -> None:
        """Misuse raises the copy's error classes, which ``except copy.XError`` catches."""
        assert section(smoke, "errors") == {
            "unknown": [f"{VENDORED}._errors", True],
            "duplicate": [f"{VENDORED}._errors", True],
        }

    def test_every_module_of_the_copy_imports(self, smoke: dict[str, Any]) -> None:
        """Every module file of the copy imports under the new name, loaded from the copy."""
        expected = sorted(
            ".".join(p for p in Path(name).with_suffix("").parts if p != "__init__")
            for name in files_of(PACKAGE_DIR)
            if name.endswith(".py")
        )
        submodules = section(smoke, "submodules")
        assert submodules["imported"] == expected
        assert {"", "__main__", "_callbacks", "_tracer", "_model"} <= set(expected)
        assert submodules["loaded_elsewhere"] == []

    def test_cli_of_the_copy_runs_the_demo(self, vendored: Vendored) -> None:
        """``python -m hostapp._vendor.tracer_core demo`` exits 0 and prints the rebuilt state."""
        done = run_python(vendored, "-m", VENDORED, "demo")
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert "rebuilt state:" in done.stdout


class TestReadmeSection:
    def test_readme_commands_vendor_a_working_copy(self, tmp_path: Path) -> None:
        """The README's vendoring commands make a complete copy whose ``demo`` command runs."""
        text = README.read_text(encoding="utf-8").split("## Vendoring\n", 1)[1]
        block = re.search(r"```bash\n(.*?)```", text.split("\n## ", 1)[0], re.S)
        assert block is not None, "no bash block in the README's Vendoring section"
        script = block.group(1).replace("path/to/checkout/logstream", shlex.quote(str(PACKAGE_DIR)))
        env = guarded_env(tmp_path)
        shim = tmp_path / "bin"
        shim.mkdir()
        (shim / "python").write_text(f'#!/bin/sh\nexec {shlex.quote(sys.executable)} -s "$@"\n')
        (shim / "python").chmod(0o755)
        env["PATH"] = os.pathsep.join([str(shim), env.get("PATH", "")])
        done = subprocess.run(
            ["bash", "-ec", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
        assert done.returncode == 0, f"{script}\nstderr:\n{done.stderr}"
        assert "rebuilt state:" in done.stdout
        assert files_of(tmp_path / "yourpkg" / "_vendor" / "logstream") == files_of(PACKAGE_DIR)
        assert not list((tmp_path / "yourpkg").rglob("__pycache__"))
