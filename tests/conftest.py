"""Suite-wide configuration.

The differential tests in ``tests/compat/`` need LangChain (the ``compat`` extra). Where it
is not installed (the per-Python runs in CI, a vendoring user's machine) they are left out
of collection rather than skipped; set ``LOGSTREAM_REQUIRE_COMPAT=1`` to make a missing
LangChain an error instead, as ``.ci/run`` does for the main run.
"""

from __future__ import annotations

import importlib.util
import os

collect_ignore: list[str] = []

if importlib.util.find_spec("langchain_core") is None:
    if os.environ.get("LOGSTREAM_REQUIRE_COMPAT") == "1":
        msg = (
            "LOGSTREAM_REQUIRE_COMPAT=1 but langchain-core is not installed "
            "(pip install -e '.[compat]')"
        )
        raise RuntimeError(msg)
    collect_ignore.append("compat")
