"""Fixtures for the differential (LangChain vs logstream) compatibility suite."""

from __future__ import annotations

import pytest

from .harness import candidate_handler_class


@pytest.fixture(scope="session")
def candidate() -> type:
    """The handler class compared against LangChain's (ours unless overridden by env)."""
    return candidate_handler_class()
