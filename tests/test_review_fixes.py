"""Regression tests for bugs found in review of the entry fields, events view and exporters."""

from __future__ import annotations

import json
from typing import Any

from logstream import Tracer, redact_secrets
from logstream.agui import AguiEncoder


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


SECRET = "sk-abcdefghijklmnopqrstuvwxyz0123456789"


class TestErrorRedaction:
    def test_recorded_error_is_redacted_for_processors(self) -> None:
        """With redact_secrets, a secret in an exception message is masked in the run record."""
        tracer = Tracer(redact=redact_secrets, entry_fields=["error"])
        root = tracer.start_run("agent")
        tool = tracer.start_run("calc", "tool", parent_id=root.id)
        record = tracer.end_run(tool.id, error=ValueError(f"bad key {SECRET}"))
        assert record is not None and record.status == "error"
        assert record.error is not None and SECRET not in record.error
        assert record.error.startswith("ValueError(")
        assert record.exception is not None  # the exception itself stays in process

    def test_agui_events_carry_no_secret_from_an_error(self) -> None:
        """No AG-UI event (RUN_ERROR, TOOL_CALL_RESULT, deltas) holds a secret from an error."""
        encoder = AguiEncoder(thread_id="t")
        tracer = encoder.bind(
            Tracer(processors=[encoder], redact=redact_secrets, entry_fields=["error"])
        )
        root = tracer.start_run("agent")
        tool = tracer.start_run("calc", "tool", parent_id=root.id, inputs={"input": "x"})
        tracer.end_run(tool.id, error=ValueError(f"bad key {SECRET}"))
        tracer.end_run(root.id, error=RuntimeError(f"boom {SECRET}"))
        events = list(encoder)
        kinds = [event["type"] for event in events]
        assert "RUN_ERROR" in kinds and "TOOL_CALL_RESULT" in kinds
        assert SECRET not in json.dumps(events)
