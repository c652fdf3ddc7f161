"""Tests of the packaging: one version source, the license, and the installed metadata.

The version is written once, as ``__version__`` in ``logstream/__init__.py`` (a vendored
copy keeps it: see ``tests/test_vendoring.py``); the build backend (hatchling) reads it
from there into the distribution's metadata. These tests run against the installed
distribution (``pip install -e .``), so they also check what ``pip`` recorded.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import logstream

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
INIT = ROOT / "logstream" / "__init__.py"


def _literal_version() -> str:
    """Return the string literal assigned to ``__version__`` in the package's ``__init__``."""
    tree = ast.parse(INIT.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "__version__" for target in node.targets
        ):
            assert isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
            return node.value.value
    raise AssertionError(f"{INIT} assigns no __version__")


class TestVersion:
    def test_version_is_a_literal_in_the_package(self) -> None:
        """``__version__`` is a string literal in ``__init__.py``, readable with no metadata."""
        assert _literal_version() == logstream.__version__
        assert re.fullmatch(r"\d+\.\d+\.\d+([a-z]+\d+)?", logstream.__version__)

    def test_pyproject_takes_the_version_from_the_package(self) -> None:
        """pyproject.toml has no version of its own: it is dynamic, read from ``__init__.py``."""
        text = PYPROJECT.read_text(encoding="utf-8")
        assert re.search(r'^dynamic = \["version"\]', text, re.M)
        assert not re.search(r"^version\s*=", text, re.M)
        hatch = re.search(r"^\[tool\.hatch\.version\]\n(?:#.*\n)*path = \"([^\"]+)\"", text, re.M)
        assert hatch is not None and ROOT / hatch.group(1) == INIT

    def test_installed_metadata_matches(self) -> None:
        """The installed distribution's version is the package's ``__version__``."""
        assert importlib.metadata.version("logstream") == logstream.__version__


class TestMetadata:
    def test_license_file_is_mit(self) -> None:
        """LICENSE is the MIT license of the logstream contributors, and ships in the metadata."""
        text = (ROOT / "LICENSE").read_text(encoding="utf-8")
        assert text.startswith("MIT License\n")
        assert "Copyright (c) 2026 logstream contributors" in text
        metadata = importlib.metadata.metadata("logstream")
        assert metadata["License-Expression"] == "MIT"
        assert metadata.get_all("License-File") == ["LICENSE"]

    def test_entry_points_are_kept(self) -> None:
        """The console script and the pytest plugin are registered by the install."""
        points = {
            (point.group, point.name): point.value
            for point in importlib.metadata.distribution("logstream").entry_points
        }
        assert points[("console_scripts", "logstream")] == "logstream._cli:main"
        assert points[("pytest11", "logstream")] == "logstream.pytest_plugin"

    def test_runtime_dependencies(self) -> None:
        """The distribution requires only jsonpatch and typing-extensions outside its extras."""
        requires = importlib.metadata.requires("logstream") or []
        runtime = sorted(
            re.split(r"[<>=;\s\[]", line, maxsplit=1)[0] for line in requires if "extra" not in line
        )
        assert runtime == ["jsonpatch", "typing-extensions"]

    def test_py_typed_ships(self) -> None:
        """The package has its ``py.typed`` marker, so type checkers read its hints."""
        assert (Path(logstream.__file__).parent / "py.typed").is_file()
