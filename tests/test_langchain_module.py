"""logstream.langchain without LangChain: importing it loads none, install() refuses clearly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

BLOCKER = """
import sys

class _Blocker:
    '''A meta-path finder that makes langchain* unimportable, as if not installed.'''

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("langchain", "langchain_core", "langsmith"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _Blocker())
"""


def _run(code: str) -> dict[str, object]:
    script = BLOCKER + textwrap.dedent(code)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


class TestWithoutLangChain:
    def test_import_loads_no_langchain(self) -> None:
        """``import logstream.langchain`` imports nothing of LangChain, even where installed."""
        out = _run(
            """
            import json, sys
            import logstream.langchain as lc
            bad = [m for m in sys.modules if m.split(".")[0] in ("langchain", "langchain_core")]
            print(json.dumps({"bad": bad, "installed": lc.installed()}))
            """
        )
        assert out == {"bad": [], "installed": False}

    def test_install_without_langchain_raises_clear_error(self) -> None:
        """install() raises LangChainVersionError (an ImportError) that says how to fix it."""
        out = _run(
            """
            import json
            from logstream import LangChainVersionError, LogStreamError
            import logstream.langchain as lc
            try:
                lc.install()
            except ImportError as error:
                print(json.dumps({
                    "type": type(error).__name__,
                    "ours": isinstance(error, LogStreamError),
                    "found": error.found,
                    "message": str(error),
                    "installed": lc.installed(),
                }))
            """
        )
        assert out == {
            "type": "LangChainVersionError",
            "ours": True,
            "found": None,
            "message": (
                "can't install logstream into LangChain: langchain-core is not installed; "
                "pip install 'langchain-core>=1.0,<1.8'"
            ),
            "installed": False,
        }

    def test_uninstall_without_langchain_is_a_no_op(self) -> None:
        """uninstall() with LangChain absent returns False and imports nothing."""
        out = _run(
            """
            import json, sys
            import logstream.langchain as lc
            result = lc.uninstall()
            bad = [m for m in sys.modules if m.startswith("langchain")]
            print(json.dumps({"result": result, "bad": bad}))
            """
        )
        assert out == {"result": False, "bad": []}
