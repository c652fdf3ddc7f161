"""Tests for logstream._errors: the groups, and the typed errors the public entry points raise."""

from __future__ import annotations

import copy
import inspect
import io
import pickle
from typing import Any

import jsonpatch  # type: ignore[import-untyped, unused-ignore]
import jsonpointer  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logstream
from logstream import (
    ConfigError,
    DataError,
    JsonLinesSink,
    LogMismatchError,
    LogStreamError,
    NotAPatchError,
    PatchApplyError,
    ReadOptionError,
    RedactionConfigError,
    RunLog,
    RunLogPatch,
    SecretRedactor,
    SerializeOptionError,
    SinkClosedError,
    SinkTargetError,
    SseSink,
    UsageError,
    dumps,
    read_jsonl,
    sse_frames,
)
from logstream.testing import Recorder

ROOT = {"op": "replace", "path": "", "value": {"logs": {}, "streamed_output": []}}

GROUPS = [
    (RedactionConfigError, ConfigError, (ValueError, TypeError)),
    (SerializeOptionError, ConfigError, (ValueError, TypeError)),
    (ReadOptionError, ConfigError, (ValueError, TypeError)),
    (SinkTargetError, ConfigError, (TypeError, ValueError)),
    (SinkClosedError, UsageError, (ValueError,)),
    (LogMismatchError, UsageError, (ValueError,)),
    (NotAPatchError, UsageError, (TypeError,)),
    (
        PatchApplyError,
        DataError,
        (ValueError, TypeError, jsonpatch.JsonPatchException, jsonpointer.JsonPointerException),
    ),
]


class TestGroups:
    @pytest.mark.parametrize(
        "cls, group, builtins", GROUPS, ids=lambda v: getattr(v, "__name__", "")
    )
    def test_each_error_is_in_its_group_and_keeps_its_builtins(
        self, cls: type[Exception], group: type[Exception], builtins: tuple[type, ...]
    ) -> None:
        """Each error is a LogStreamError in its group and still the builtins callers catch."""
        assert issubclass(cls, LogStreamError)
        assert issubclass(cls, group)
        for builtin in builtins:
            assert issubclass(cls, builtin), f"{cls.__name__} is no longer a {builtin.__name__}"

    @pytest.mark.parametrize("cls", [g[0] for g in GROUPS], ids=lambda c: c.__name__)
    def test_each_error_lives_in_errors_and_is_exported(self, cls: type[Exception]) -> None:
        """Each error class is defined in logstream._errors and exported by logstream."""
        assert cls.__module__ == "logstream._errors"
        assert cls.__name__ in logstream.__all__

    def test_no_module_defines_a_logstream_error_outside_errors(self) -> None:
        """Every LogStreamError subclass reachable from the package is defined in errors.py."""
        import importlib
        import pkgutil

        found = []
        for info in pkgutil.iter_modules(logstream.__path__):
            if info.name in ("langchain", "pytest_plugin", "__main__"):
                continue
            module = importlib.import_module(f"logstream.{info.name}")
            for _, value in inspect.getmembers(module, inspect.isclass):
                if issubclass(value, LogStreamError) and value.__module__ != "logstream._errors":
                    found.append(f"{value.__module__}.{value.__name__}")
        assert found == []


class TestPatchApplyError:
    def test_a_failing_patch_names_the_op_and_keeps_jsonpatchs_error_as_cause(self) -> None:
        """The error names the op, the state is unchanged, and jsonpatch's error is the cause."""
        log = RunLogPatch(ROOT) + RunLogPatch()
        before = copy.deepcopy(log.state)
        bad = {"op": "add", "path": "/nope/x", "value": 1}
        with pytest.raises(PatchApplyError) as info:
            log + RunLogPatch({"op": "add", "path": "/logs/a", "value": 1}, bad)
        error = info.value
        assert isinstance(error.__cause__, jsonpointer.JsonPointerException)
        assert "op 2 of 2 (add /nope/x)" in str(error)
        assert "unchanged" in str(error) and "in the order they were streamed" in str(error)
        assert (error.index, error.op) == (2, bad)
        assert log.state == before

    @pytest.mark.parametrize(
        "op, cause",
        [
            ({"op": "test", "path": "/logs", "value": 1}, jsonpatch.JsonPatchTestFailed),
            ({"op": "remove", "path": "/zz"}, jsonpatch.JsonPatchConflict),
            ({"op": "bogus", "path": "/a"}, jsonpatch.InvalidJsonPatch),
            ({"op": "add", "path": "/~2", "value": 1}, jsonpointer.JsonPointerException),
        ],
        ids=["test", "conflict", "invalid", "pointer"],
    )
    def test_old_except_clauses_still_catch_it(self, op: dict[str, Any], cause: type) -> None:
        """Old `except` clauses (jsonpatch's and jsonpointer's bases, ValueError) catch it."""
        for caught in (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, ValueError):
            with pytest.raises(caught) as info:
                RunLogPatch(ROOT) + RunLogPatch(op)
            assert isinstance(info.value, PatchApplyError)
            assert isinstance(info.value.__cause__, cause)

    def test_an_op_not_told_apart_is_not_named(self) -> None:
        """When jsonpatch refuses the patch's shape before applying, the message names no op."""
        ops = [{"op": "add", "path": "/nope/x", "value": 1}, {"op": "bogus", "path": "/a"}]
        with pytest.raises(PatchApplyError) as info:
            RunLogPatch(ROOT) + RunLogPatch(*ops)
        assert isinstance(info.value.__cause__, jsonpatch.InvalidJsonPatch)
        assert info.value.index is None and info.value.op is None
        assert "the run log: its ops do not apply" in str(info.value)

    def test_pickles_with_its_attributes(self) -> None:
        """A PatchApplyError survives pickling with its message, index and op."""
        error = PatchApplyError("can't add ...", 3, {"op": "remove", "path": "/a"})
        copied = pickle.loads(pickle.dumps(error))
        assert (str(copied), copied.index, copied.op) == (str(error), 3, error.op)

    @settings(max_examples=40, deadline=None)
    @given(
        st.lists(
            st.fixed_dictionaries(
                {
                    "op": st.sampled_from(["add", "replace", "remove", "test", "move", "copy"]),
                    "path": st.sampled_from(
                        ["/logs", "/logs/a", "/x/y", "/streamed_output/5", "/~2"]
                    ),
                    "from": st.sampled_from(["/logs", "/missing"]),
                    "value": st.integers(),
                }
            ),
            min_size=1,
            max_size=4,
        )
    )
    def test_any_failure_is_wrapped_and_the_cause_is_jsonpatchs(self, ops: list[Any]) -> None:
        """Whatever jsonpatch raises for a patch, + raises PatchApplyError with it as cause."""
        try:
            expected = jsonpatch.apply_patch(copy.deepcopy(ROOT["value"]), copy.deepcopy(ops))
        except Exception as error:
            with pytest.raises(PatchApplyError) as info:
                RunLogPatch(ROOT) + RunLogPatch(*ops)
            assert type(info.value.__cause__) is type(error)
            assert str(info.value.__cause__) == str(error)
            if info.value.index is not None:  # counted among the ROOT op and ops
                assert info.value.op is [ROOT, *ops][info.value.index - 1]
        else:
            assert (RunLogPatch(ROOT) + RunLogPatch(*ops)).state == expected


class TestNotAPatch:
    @pytest.mark.parametrize(
        "other, why, fix",
        [
            (RunLog(state=None), "it is a log", "add the patches it was built from"),
            (3, "it is not a patch", "add a RunLogPatch(*ops)"),
        ],
        ids=["log", "int"],
    )
    def test_adding_a_non_patch_says_why_and_is_still_a_type_error(
        self, other: Any, why: str, fix: str
    ) -> None:
        """RunLog + a log or non-patch is NotAPatchError: a TypeError, LangChain's prefix, a fix."""
        for left in (RunLog(state=None), RunLogPatch()):
            with pytest.raises(TypeError, match=r"^unsupported operand type") as info:
                left + other
            assert isinstance(info.value, NotAPatchError)
            assert info.value.event == "RunLog +" and info.value.value is other
            assert why in str(info.value) and str(info.value).endswith(fix)

    def test_pickles_with_its_message(self) -> None:
        """A NotAPatchError with its own message survives pickling unchanged."""
        error = NotAPatchError(3, "sink write", "a sink takes ...")
        copied = pickle.loads(pickle.dumps(error))
        assert (str(copied), copied.value, copied.event) == ("a sink takes ...", 3, "sink write")


class TestSinkErrors:
    def test_a_runlog_written_to_a_sink_is_not_a_patch(self) -> None:
        """Writing a RunLog state to a sink is NotAPatchError (a TypeError); nothing written."""
        out = io.StringIO()
        sink = JsonLinesSink(out)
        with pytest.raises(TypeError) as info:
            sink.write(RunLog(ROOT, state=None))
        assert isinstance(info.value, NotAPatchError)
        assert out.getvalue() == "" and sink.patches == 0

    @pytest.mark.parametrize("write", ["sink", "frames"])
    def test_an_op_of_the_wrong_shape_names_the_op(self, write: str) -> None:
        """An op its reader would refuse is NotAPatchError naming the op, for sinks and frames."""
        bad = [ROOT, {"op": "add", "path": "/a"}]
        with pytest.raises(NotAPatchError, match='op 2 \\(add "/a"\\) has no "value"') as info:
            if write == "sink":
                SseSink(io.StringIO()).write(bad)
            else:
                list(sse_frames([bad]))
        assert isinstance(info.value, TypeError)

    def test_a_target_that_is_not_a_file_or_stream_is_a_sink_target_error(self) -> None:
        """A number as a sink's target is SinkTargetError (a TypeError) that says what to pass."""
        with pytest.raises(TypeError, match="not int; pass a path") as info:
            JsonLinesSink(3)  # type: ignore[arg-type]
        assert isinstance(info.value, SinkTargetError)

    def test_writing_after_end_is_a_usage_error(self) -> None:
        """A write after end() is SinkClosedError: a UsageError and still a ValueError."""
        sink = JsonLinesSink(io.StringIO())
        sink.end()
        with pytest.raises(ValueError, match="the sink has ended") as info:
            sink.write([ROOT])
        assert isinstance(info.value, UsageError)


class TestOptionErrors:
    def test_bad_options_are_config_errors(self) -> None:
        """dumps, SecretRedactor and read_jsonl options raise ConfigErrors that are ValueErrors."""
        with pytest.raises(ValueError) as serialize:
            dumps(1, max_depth=-1)
        with pytest.raises(ValueError) as redact:
            SecretRedactor(keys="token")
        with pytest.raises(ValueError) as read:
            read_jsonl(io.StringIO(""), max_line_bytes=0)
        for info, cls in (
            (serialize, SerializeOptionError),
            (redact, RedactionConfigError),
            (read, ReadOptionError),
        ):
            assert isinstance(info.value, cls) and isinstance(info.value, ConfigError)


class TestRecorderMismatch:
    def test_a_log_from_another_stream_is_a_log_mismatch(self) -> None:
        """Recording a RunLog that does not extend what was recorded says why and what to do."""
        recorder = Recorder()
        recorder.record([ROOT])
        other = RunLogPatch({"op": "replace", "path": "", "value": {}}) + RunLogPatch()
        with pytest.raises(ValueError, match="one Recorder per stream") as info:
            recorder.record(other)
        assert isinstance(info.value, LogMismatchError)
        assert recorder.state == ROOT["value"]

    def test_a_patch_that_does_not_apply_is_a_patch_apply_error(self) -> None:
        """Recording ops that do not apply raises PatchApplyError; nothing is recorded."""
        recorder = Recorder()
        recorder.record([ROOT])
        with pytest.raises(PatchApplyError):
            recorder.record([{"op": "add", "path": "/nope/x", "value": 1}])
        assert recorder.state == ROOT["value"] and len(recorder.patches) == 1
