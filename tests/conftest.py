"""Suite-wide configuration.

The differential tests in ``tests/compat/`` need LangChain (the ``compat`` extra). Where it
is not installed (the per-Python runs in CI, a vendoring user's machine) they are left out
of collection rather than skipped; set ``LOGSTREAM_REQUIRE_COMPAT=1`` to make a missing
LangChain an error instead, as ``.ci/run`` does for the main run.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any

import pytest

collect_ignore: list[str] = []

if importlib.util.find_spec("langchain_core") is None:
    if os.environ.get("LOGSTREAM_REQUIRE_COMPAT") == "1":
        msg = (
            "LOGSTREAM_REQUIRE_COMPAT=1 but langchain-core is not installed "
            "(pip install -e '.[compat]')"
        )
        raise RuntimeError(msg)
    collect_ignore.append("compat")


@pytest.fixture(scope="module")
def browser() -> Any:
    """A headless Chromium for the viewer tests (skipped, or failed in CI, without one)."""
    from viewer_support import browser_or_skip

    yield from browser_or_skip()


@pytest.fixture
def watch(browser: Any) -> Any:
    """A fresh page in ``browser``, watched for errors and dialogs, closed after the test."""
    from viewer_support import PageWatch

    page = browser.new_page(viewport={"width": 1280, "height": 640})
    try:
        yield PageWatch(page)
    finally:
        page.close()
