"""Tests for the import graph: no LLM framework, a core free of the edge, relative imports only."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import logstream

PACKAGE_DIR = Path(logstream.__file__).resolve().parent
CORE = [
    "_model",
    "_filters",
    "_keys",
    "_patches",
    "_apply",
    "_values",
    "_envelopes",
    "_emitter",
    "_serialize",
    "_redact",
]
FORBIDDEN_ROOTS = ("langchain", "langsmith", "pydantic")


def modules_after(code: str) -> list[str]:
    """Run ``code`` in a fresh interpreter and return the names in its ``sys.modules``."""
    script = textwrap.dedent(code) + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    names: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return names


class TestImportGraph:
    def test_import_logstream_pulls_in_no_framework(self) -> None:
        """``import logstream`` loads nothing from langchain*, langsmith or pydantic."""
        loaded = modules_after("import logstream")
        assert "logstream" in loaded
        offending = [m for m in loaded if m.split(".")[0].startswith(FORBIDDEN_ROOTS)]
        assert offending == []

    def test_core_modules_do_not_import_the_edge(self) -> None:
        """The core modules load without logstream._callbacks, logstream._stream or asyncio.

        The package ``__init__`` re-exports the edge, so the core is imported under a bare
        package object that skips ``__init__``: this checks the core's own imports.
        """
        loaded = modules_after(
            f"""
            import sys, types
            pkg = types.ModuleType("logstream")
            pkg.__path__ = [{str(PACKAGE_DIR)!r}]
            sys.modules["logstream"] = pkg
            import importlib
            for name in {CORE!r}:
                importlib.import_module("logstream." + name)
            """
        )
        assert all(f"logstream.{name}" in loaded for name in CORE)
        assert "logstream._callbacks" not in loaded
        assert "logstream._tracer" not in loaded
        assert "logstream._stream" not in loaded
        assert not [m for m in loaded if m == "asyncio" or m.startswith("asyncio.")]
        assert not [m for m in loaded if m.split(".")[0].startswith(FORBIDDEN_ROOTS)]


def package_modules() -> list[Path]:
    """Return every Python module in the package directory, subpackages included."""
    return sorted(p for p in PACKAGE_DIR.rglob("*.py") if "__pycache__" not in p.parts)


class TestRelativeImports:
    @pytest.mark.parametrize(
        "path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE_DIR))
    )
    def test_package_internal_imports_are_relative(self, path: Path) -> None:
        """A module inside logstream/ imports its siblings relatively, never as ``logstream.x``."""
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        absolute = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                absolute += [a.name for a in node.names if a.name.split(".")[0] == "logstream"]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                if node.module.split(".")[0] == "logstream":
                    absolute.append(node.module)
        assert absolute == [], f"{path.name} imports {absolute} absolutely"

    def test_no_module_imports_a_siblings_private_name(self) -> None:
        """No module imports an underscore name from another (cli once took sinks._printable)."""
        private = []
        for path in package_modules():
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.level > 0:
                    names = [a.name for a in node.names if a.name.startswith("_")]
                    private += [f"{path.name}: {node.module}.{name}" for name in names]
        assert private == []

    def test_writers_and_reader_do_not_import_each_other(self) -> None:
        """_sinks.py (writers) and _reader.py (the untrusted reader) share no import edge."""
        edges = {}
        for name in ("_sinks", "_reader"):
            tree = ast.parse((PACKAGE_DIR / f"{name}.py").read_text(encoding="utf-8"))
            edges[name] = {
                node.module
                for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.level > 0
            }
        assert "_reader" not in edges["_sinks"]
        assert "_sinks" not in edges["_reader"]
        assert "_patches" in edges["_sinks"] and "_patches" in edges["_reader"]  # the scan works

    def test_package_has_modules_to_check(self) -> None:
        """The scan sees the core modules, so an empty glob cannot pass vacuously."""
        names = {p.stem for p in package_modules()}
        assert set(CORE) <= names
