"""The public surface: ``logstream.__all__`` is the API, the README's table lists it exactly."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import logstream

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_DIR = Path(logstream.__file__).resolve().parent
PUBLIC_MODULES = {
    "__init__",
    "__main__",
    "testing",
    "langchain",
    "pytest_plugin",
    "otel",
    "agui",
    "asgi",
    "redis",
}


def readme_api_names() -> set[str]:
    """The names in the first column of the README's "Public API" table."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Public API", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in section.splitlines():
        # A row for a public optional module ("| `logstream.agui`: ...") lists that
        # module's names, not the package's; its own tests check it.
        if line.startswith("| `") and not line.startswith("| `logstream."):
            first = line.split("|")[1]
            names |= set(re.findall(r"`([A-Za-z_]+)`", first))
    return names


def sibling_imports() -> set[str]:
    """Every name some package module imports from a sibling module."""
    names: set[str] = set()
    for path in PACKAGE_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level > 0:
                names |= {alias.name for alias in node.names}
    return names


class TestPublicApi:
    def test_every_exported_name_resolves(self) -> None:
        """Each name in logstream.__all__ is an attribute of the package."""
        missing = [name for name in logstream.__all__ if not hasattr(logstream, name)]
        assert missing == []

    def test_readme_table_lists_exactly_the_exports(self) -> None:
        """The README's Public API table names every export and nothing else."""
        assert readme_api_names() == set(logstream.__all__)

    def test_internal_modules_are_underscored(self) -> None:
        """Every module but the public ones has a leading underscore."""
        modules = {path.stem for path in PACKAGE_DIR.glob("*.py")}
        assert {m for m in modules - PUBLIC_MODULES if not m.startswith("_")} == set()

    def test_internal_all_lists_only_what_is_used(self) -> None:
        """An internal module's __all__ names only exports and what siblings import."""
        used = set(logstream.__all__) | sibling_imports()
        extra = {}
        for path in sorted(PACKAGE_DIR.glob("_*.py")):
            if path.stem in PUBLIC_MODULES:
                continue
            module = importlib.import_module(f"logstream.{path.stem}")
            unused = sorted(set(getattr(module, "__all__", ())) - used)
            if unused:
                extra[path.stem] = unused
        assert extra == {}
