"""Tests for the opt-in entry fields ``parent_ids`` and ``error``, from config to wire."""

from __future__ import annotations

import uuid
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstream import (
    ConfigError,
    EntryFieldsError,
    LogStreamCallbackHandler,
    RunLogPatch,
    Tracer,
    TracerConfig,
    redact_secrets,
    stream_log,
    trace,
    traced,
)
from logstream._emitter import ENTRY_FIELDS, check_entry_fields
from logstream._text import error_text

BOTH = ["parent_ids", "error"]


def state_of(patches: list[RunLogPatch]) -> dict[str, Any]:
    """Return the state the patches rebuild, applied in order."""
    log = RunLogPatch()
    for patch in patches:
        log = log + patch
    return dict(log.state)  # type: ignore[arg-type]


def fail_nested(tracer: Tracer) -> None:
    """Trace agent > sub > calc where calc raises ZeroDivisionError and it propagates."""
    with pytest.raises(ZeroDivisionError), trace("agent", tracer=tracer):
        with trace("sub", tracer=tracer), trace("calc", run_type="tool", tracer=tracer):
            1 / 0  # noqa: B018


class TestCheckEntryFields:
    """The option's own check."""

    def test_none_and_empty_mean_none(self) -> None:
        """``None`` and an empty collection turn no field on."""
        assert check_entry_fields(None) == ()
        assert check_entry_fields([]) == ()

    def test_order_is_canonical_and_names_unique(self) -> None:
        """Fields come back in ENTRY_FIELDS order, each once, whatever the input order."""
        assert check_entry_fields(["error", "parent_ids", "error"]) == ENTRY_FIELDS
        assert check_entry_fields({"error"}) == ("error",)

    @pytest.mark.parametrize("bad", ["error", b"error"])
    def test_bare_string_is_refused_with_the_fix(self, bad: Any) -> None:
        """A bare string is an EntryFieldsError that says how to write the list."""
        with pytest.raises(EntryFieldsError, match=r"write entry_fields=\["):
            check_entry_fields(bad)

    def test_unknown_name_is_refused(self) -> None:
        """A name other than the two fields is an EntryFieldsError naming it."""
        with pytest.raises(EntryFieldsError, match="'parents'"):
            check_entry_fields(["parents"])

    def test_not_iterable_is_refused(self) -> None:
        """A value that is not a collection is an EntryFieldsError (a ConfigError)."""
        with pytest.raises(ConfigError, match="int"):
            check_entry_fields(3)

    def test_config_checks_the_option(self) -> None:
        """TracerConfig.from_options validates and normalizes ``entry_fields``."""
        assert TracerConfig.from_options(entry_fields=["error"]).entry_fields == ("error",)
        assert TracerConfig().entry_fields == ()
        with pytest.raises(EntryFieldsError):
            TracerConfig.from_options(entry_fields="error")  # type: ignore[typeddict-item]

    def test_handler_checks_the_option(self) -> None:
        """The handler refuses an unknown field when it is made."""
        with pytest.raises(EntryFieldsError):
            LogStreamCallbackHandler(entry_fields=["nope"])


class TestErrorText:
    """How an exception reads in the ``error`` field."""

    def test_type_and_message(self) -> None:
        """An exception with a message reads ``Type: message``."""
        assert error_text(ValueError("bad input")) == "ValueError: bad input"

    def test_no_message_is_the_type(self) -> None:
        """An exception without a message reads as its type name alone."""
        assert error_text(KeyboardInterrupt()) == "KeyboardInterrupt"

    def test_str_that_raises(self) -> None:
        """An exception whose ``str`` raises is named as such, on the wire too."""

        class Broken(Exception):
            def __str__(self) -> str:
                raise RuntimeError

        tracer = Tracer(entry_fields=["error"])
        with pytest.raises(Broken), trace("agent", tracer=tracer):
            with trace("tool", run_type="tool", tracer=tracer):
                raise Broken
        state = state_of(list(tracer))
        assert state["logs"]["tool"]["error"] == "Broken: <str() raised RuntimeError>"


class TestDefaultOff:
    """Without the option nothing changes."""

    def test_no_new_keys_without_the_option(self) -> None:
        """A default tracer's state has no ``parent_ids`` or ``error`` anywhere."""
        tracer = Tracer()
        fail_nested(tracer)
        state = state_of(list(tracer))
        assert "error" not in state
        for entry in state["logs"].values():
            assert "parent_ids" not in entry
            assert "error" not in entry

    def test_ops_equal_to_default_for_other_fields(self) -> None:
        """With the fields on, removing them gives the default state exactly."""
        ids = [uuid.UUID(int=i) for i in range(1, 10)]

        def run(fields: Optional[list[str]]) -> dict[str, Any]:
            made = iter(ids)
            tracer = Tracer(entry_fields=fields, id_factory=lambda: next(made), clock=_clock())
            fail_nested(tracer)
            return state_of(list(tracer))

        plain, extended = run(None), run(BOTH)
        extended.pop("error")
        for entry in extended["logs"].values():
            del entry["parent_ids"], entry["error"]
        assert extended == plain


def _clock() -> Any:
    """Return a clock that ticks one second per call from a fixed instant."""
    from datetime import datetime, timedelta, timezone

    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    ticks = iter(range(10_000))
    return lambda: start + timedelta(seconds=next(ticks))


class TestParentIds:
    """``parent_ids``: ancestors root first, filtered ones included."""

    def test_ancestors_root_first(self) -> None:
        """A run two levels down lists the root, then its parent."""
        tracer = Tracer(entry_fields=["parent_ids"])
        fail_nested(tracer)
        state = state_of(list(tracer))
        logs = state["logs"]
        assert logs["sub"]["parent_ids"] == [state["id"]]
        assert logs["calc"]["parent_ids"] == [state["id"], logs["sub"]["id"]]
        assert "error" not in logs["calc"]

    def test_filtered_ancestor_is_still_listed(self) -> None:
        """An ancestor hidden by the filter is still in ``parent_ids`` (as in astream_events)."""
        tracer = Tracer(entry_fields=["parent_ids"], include_names=["calc"])
        ids: dict[str, str] = {}
        with trace("agent", tracer=tracer) as root:
            ids["agent"] = str(root.id)
            with trace("sub", tracer=tracer) as sub:
                ids["sub"] = str(sub.id)
                with trace("calc", run_type="tool", tracer=tracer):
                    pass
        state = state_of(list(tracer))
        assert list(state["logs"]) == ["calc"]
        assert state["logs"]["calc"]["parent_ids"] == [ids["agent"], ids["sub"]]

    @settings(max_examples=50, deadline=None)
    @given(st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=25))
    def test_any_tree_matches_an_independent_model(self, picks: list[int]) -> None:
        """For any tree, each entry's ``parent_ids`` is its chain of parents, root first."""
        tracer = Tracer(entry_fields=["parent_ids"], auto_close=False)
        root = tracer.start_run("root", "chain")
        assert root is not None
        parent_of: dict[str, Optional[str]] = {str(root.id): None}
        for index, pick in enumerate(picks):
            known = list(parent_of)
            parent = known[pick % len(known)]
            record = tracer.start_run(f"r{index}", "chain", parent_id=uuid.UUID(parent))
            assert record is not None
            parent_of[str(record.id)] = parent
        tracer.close()
        state = state_of(list(tracer))
        for entry in state["logs"].values():
            chain: list[str] = []
            at = parent_of[entry["id"]]
            while at is not None:
                chain.insert(0, at)
                at = parent_of[at]
            assert entry["parent_ids"] == chain


class TestError:
    """``error``: ``None`` at start, the text in the same patch as the end."""

    def test_null_at_start_then_text_in_the_end_patch(self) -> None:
        """The entry starts with ``error: None``; its end patch replaces it once."""
        tracer = Tracer(entry_fields=["error"])
        fail_nested(tracer)
        patches = list(tracer)
        start = next(p for p in patches if p.ops[0]["path"] == "/logs/calc")
        assert start.ops[0]["value"]["error"] is None
        end = next(p for p in patches if any(op["path"] == "/logs/calc/end_time" for op in p.ops))
        error_ops = [op for op in end.ops if op["path"] == "/logs/calc/error"]
        assert error_ops == [
            {
                "op": "replace",
                "path": "/logs/calc/error",
                "value": error_text(ZeroDivisionError("division by zero")),
            }
        ]
        all_error_ops = [op for p in patches for op in p.ops if op["path"] == "/logs/calc/error"]
        assert len(all_error_ops) == 1

    def test_success_keeps_null(self) -> None:
        """A run that ends normally keeps ``error: None``, and so does the root."""
        tracer = Tracer(entry_fields=["error"])
        with trace("agent", tracer=tracer), trace("tool", run_type="tool", tracer=tracer):
            pass
        state = state_of(list(tracer))
        assert state["logs"]["tool"]["error"] is None
        assert state["error"] is None

    def test_failed_root_sets_top_level_error(self) -> None:
        """A failed root puts its text in the top-level ``error`` key, once."""
        tracer = Tracer(entry_fields=["error"])
        fail_nested(tracer)
        patches = list(tracer)
        state = state_of(patches)
        assert state["error"] == "ZeroDivisionError: division by zero"
        top = [op for p in patches for op in p.ops if op["path"] == "/error"]
        assert len(top) == 1

    def test_error_is_redacted(self) -> None:
        """The error text goes through the configured redactor."""
        secret = "sk-" + "a" * 40
        tracer = Tracer(entry_fields=["error"], redact=redact_secrets)
        with pytest.raises(RuntimeError), trace("agent", tracer=tracer):
            with trace("tool", run_type="tool", tracer=tracer):
                raise RuntimeError(f"bad key {secret}")
        state = state_of(list(tracer))
        assert secret not in state["logs"]["tool"]["error"]
        assert state["logs"]["tool"]["error"].startswith("RuntimeError: bad key ")
        assert secret not in state["error"]

    def test_bounded_stream_claims_room_for_root_error(self) -> None:
        """On a bounded stream the failed root's error patch is delivered too."""
        tracer = Tracer(entry_fields=["error"], max_buffer=100)
        fail_nested(tracer)
        assert state_of(list(tracer))["error"] == "ZeroDivisionError: division by zero"

    def test_filtered_out_run_has_no_error_op(self) -> None:
        """A run the filter hides gets no error op, its included ancestors do."""
        tracer = Tracer(entry_fields=["error"], exclude_names=["calc"])
        fail_nested(tracer)
        patches = list(tracer)
        paths = [op["path"] for p in patches for op in p.ops]
        assert "/logs/calc/error" not in paths
        assert state_of(patches)["logs"]["sub"]["error"].startswith("ZeroDivisionError")


class TestEntryPoints:
    """Every entry point takes the option."""

    def test_handler(self) -> None:
        """The LangChain-shaped handler fills both fields from its callbacks."""
        handler = LogStreamCallbackHandler(entry_fields=BOTH)
        root, tool = uuid.uuid4(), uuid.uuid4()
        handler.on_chain_start({}, {"q": 1}, run_id=root, name="agent")
        handler.on_tool_start({}, "1/0", run_id=tool, parent_run_id=root, name="calculator")
        handler.on_tool_error(ZeroDivisionError("division by zero"), run_id=tool)
        handler.on_chain_error(ValueError("tool failed"), run_id=root)
        state = state_of(list(handler))
        entry = state["logs"]["calculator"]
        assert entry["parent_ids"] == [str(root)]
        assert entry["error"] == "ZeroDivisionError: division by zero"
        assert state["error"] == "ValueError: tool failed"

    def test_traced_uses_its_tracer(self) -> None:
        """``@traced`` runs carry the fields of the tracer they record to."""
        tracer = Tracer(entry_fields=BOTH)

        @traced(run_type="tool")
        def calculator(expr: str) -> int:
            left, right = expr.split("/")
            return int(int(left) / int(right))

        with pytest.raises(ZeroDivisionError), trace("agent", tracer=tracer):
            calculator("1/0")
        entry = state_of(list(tracer))["logs"]["calculator"]
        assert entry["error"] == "ZeroDivisionError: division by zero"
        assert len(entry["parent_ids"]) == 1

    def test_stream_log(self) -> None:
        """``stream_log`` takes the option; its root error goes to the top level."""

        def agent(question: str) -> str:
            with trace("calc", run_type="tool"):
                raise ZeroDivisionError("division by zero")

        patches: list[RunLogPatch] = []
        with pytest.raises(ZeroDivisionError):
            for patch in stream_log(agent, "q", entry_fields=BOTH):
                patches.append(patch)
        state = state_of(patches)
        assert state["logs"]["calc"]["error"] == "ZeroDivisionError: division by zero"
        assert state["logs"]["calc"]["parent_ids"] == [state["id"]]
        assert state["error"] == "ZeroDivisionError: division by zero"
