"""The wire contract: SSE ids, resume checks, error payloads and the SSE text of frames."""

from __future__ import annotations

import json
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from logstream import (
    DataError,
    ForeignResumeIdError,
    FutureResumeIdError,
    MalformedResumeIdError,
    NotAPatchError,
    ResumeError,
    StaleResumeIdError,
    SubscriberLagError,
)
from logstream._sinks import sse_error, sse_wire
from logstream._wire import (
    Frame,
    LogEnd,
    check_log_id,
    error_payload,
    format_event_id,
    parse_event_id,
    resume_position,
)

log_ids = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-",
    min_size=1,
    max_size=40,
)
positions = st.integers(0, 10**12)


def parse_sse(text: str) -> dict[str, str]:
    """Parse one SSE frame (no comments) into its fields."""
    assert text.endswith("\n\n")
    fields = {}
    for line in text[:-2].split("\n"):
        name, _, value = line.partition(": ")
        fields[name] = value
    return fields


class TestEventIds:
    @given(log_ids, positions)
    def test_an_id_round_trips(self, log_id: str, position: int) -> None:
        """parse_event_id(format_event_id(l, p)) == (l, p), and resume_position accepts it."""
        text = format_event_id(log_id, position)
        assert parse_event_id(text) == (log_id, position)
        assert resume_position(log_id, text, latest=position) == position

    @given(st.text(max_size=30))
    def test_anything_else_is_malformed_or_a_valid_id(self, text: str) -> None:
        """Any text either parses to an id that formats back to it, or is malformed."""
        try:
            log_id, position = parse_event_id(text, "mine")
        except MalformedResumeIdError as exc:
            assert exc.log_id == "mine" and "reconnect without one" in str(exc)
        else:
            assert format_event_id(log_id, position) == text

    def test_malformed_examples(self) -> None:
        """No colon, an empty log id, a sign, a leading zero or spaces are malformed."""
        for text in ("12", ":3", "a:-1", "a:01", "a: 1", "a b:1", "a:1x", "a:"):
            with pytest.raises(MalformedResumeIdError):
                parse_event_id(text)

    def test_foreign_and_future_ids(self) -> None:
        """Another log's id is foreign; a position past latest is from the future."""
        with pytest.raises(ForeignResumeIdError) as foreign:
            resume_position("run-a", "run-b:3", latest=5)
        assert (foreign.value.log_id, foreign.value.resume_id) == ("run-a", "run-b:3")
        assert "run-b" in str(foreign.value)
        with pytest.raises(FutureResumeIdError) as future:
            resume_position("run-a", "run-a:6", latest=5)
        assert (future.value.position, future.value.latest) == (6, 5)
        assert resume_position("run-a", "run-a:6") == 6  # latest unknown: not checked

    def test_log_ids_are_checked(self) -> None:
        """check_log_id refuses empty, spaced, colon and non-string ids."""
        assert check_log_id("run_1.a-b") == "run_1.a-b"
        for bad in ("", "a b", "a:b", "x" * 201, 3):
            with pytest.raises(ValueError):
                check_log_id(bad)


class TestErrors:
    def test_resume_errors_are_data_errors_and_pickle(self) -> None:
        """Every resume error is a ResumeError, DataError and ValueError, and pickles."""
        for cls in (
            MalformedResumeIdError,
            ForeignResumeIdError,
            FutureResumeIdError,
            StaleResumeIdError,
        ):
            exc = cls("msg", "log", "log:3", 3, 2)
            assert isinstance(exc, (ResumeError, DataError, ValueError))
            back = pickle.loads(pickle.dumps(exc))
            assert (type(back), str(back), back.position, back.latest) == (cls, "msg", 3, 2)

    def test_lag_error_says_where_the_subscriber_was(self) -> None:
        """SubscriberLagError names the log, the positions and the bound, and pickles."""
        exc = SubscriberLagError("log", 3, 40, 10)
        assert "log log" in str(exc) and "position 3" in str(exc) and "10 frames" in str(exc)
        assert pickle.loads(pickle.dumps(exc)).latest == 40

    def test_error_payload_names_the_class_and_positions(self) -> None:
        """The error frame's JSON names the class, message, log and positions."""
        payload = error_payload(FutureResumeIdError("m", "log", "log:9", 9, 4))
        assert payload == {
            "error": "FutureResumeIdError",
            "message": "m",
            "log_id": "log",
            "position": 9,
            "latest": 4,
        }
        assert error_payload(RuntimeError("down"), "log")["log_id"] == "log"


class TestSseText:
    def test_frames_end_and_errors(self) -> None:
        """A frame is event data with id log:pos; the end and errors have their events."""
        ops = [{"op": "add", "path": "/a~1b", "value": "x\ny"}]
        fields = parse_sse(sse_wire(Frame("r", 7, ops, False)))
        assert fields["event"] == "data" and fields["id"] == "r:7"
        assert json.loads(fields["data"]) == {"ops": ops}
        end = parse_sse(sse_wire(LogEnd("r", 7, "ValueError: boom")))
        assert end["event"] == "end" and end["id"] == "r:7"
        assert json.loads(end["data"]) == {"patches": 7, "error": "ValueError: boom"}
        assert sse_wire(None) == ": keep-alive\n\n"
        err = parse_sse(sse_error(ForeignResumeIdError("m\nn", "r", "q:1", 1, None)))
        assert err["event"] == "error" and "id" not in err
        assert json.loads(err["data"])["message"] == "m\nn"

    def test_something_else_is_refused(self) -> None:
        """sse_wire of a value that is not a frame, end or None raises NotAPatchError."""
        with pytest.raises(NotAPatchError):
            sse_wire({"ops": []})  # type: ignore[arg-type]
