"""Regression tests for bugs found in review of the entry fields, events view and exporters."""

from __future__ import annotations

import json
from typing import Any

from logstream import Tracer


class _BrokenRepr:
    """A value whose repr and str raise."""

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    __str__ = __repr__


class TestErrorWithFailingRepr:
    def test_run_failing_with_unprintable_error_still_ends(self) -> None:
        """An error whose repr raises still ends the run, marked failed, with its patch sent."""
        tracer = Tracer(entry_fields=["error"])
        root = tracer.start_run("agent")
        record = tracer.end_run(root.id, error=ValueError(_BrokenRepr()))
        assert record is not None and record.status == "error"
        assert record.error is not None and "repr raised RuntimeError" in record.error
        ops: list[Any] = [op for patch in tracer.drain() for op in patch.ops]
        assert {
            "op": "replace",
            "path": "/error",
            "value": "ValueError: <str() raised RuntimeError>",
        } in ops
        assert tracer.open_runs == 0 and json.dumps(ops)
