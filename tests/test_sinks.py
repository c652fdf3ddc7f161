"""Tests for the JSON Lines and SSE sinks (logstream._sinks) and the reader (logstream._reader)."""

from __future__ import annotations

import asyncio
import copy
import io
import json
import os
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_serialize import json_values
from threading_helpers import join_thread, run_in_thread

from logstream import (
    EndRecord,
    JsonLinesSink,
    LogFileError,
    LogStreamCallbackHandler,
    ReadOptionError,
    RunLog,
    RunLogPatch,
    SinkClosedError,
    SseSink,
    asse_frames,
    follow_jsonl,
    read_jsonl,
    sse_frames,
)
from logstream._demo import FakeClock, demo_patches, run_agent
from logstream._reader import MISSING_END

ROOT_OP = {"op": "replace", "path": "", "value": {"logs": {}, "streamed_output": []}}


def record_text(patches: Any) -> str:
    """Write ``patches`` through a JSON Lines sink into a string and return it."""
    out = io.StringIO()
    JsonLinesSink(out).consume(patches)
    return out.getvalue()


def demo_file(tmp_path: Path) -> Path:
    """Record the demo agent to a file and return its path."""
    path = tmp_path / "run.jsonl"
    with JsonLinesSink(path) as sink:
        sink.consume(demo_patches())
    return path


def token_patch(value: Any) -> RunLogPatch:
    return RunLogPatch({"op": "add", "path": "/streamed_output/-", "value": value})


class TestJsonLinesRoundTrip:
    def test_demo_recording_rebuilds_the_same_state_and_patches(self, tmp_path: Path) -> None:
        """A recorded demo reads back to the same patches and the state they build live."""
        live = list(demo_patches())
        path = tmp_path / "run.jsonl"
        assert JsonLinesSink(path).consume(live) == len(live)
        recording = read_jsonl(path)
        assert recording.complete
        assert recording.end == EndRecord(patches=len(live), error=None, line=len(live) + 1)
        assert list(recording.patches) == live
        assert recording.state == jsonpatch.apply_patch(None, [op for p in live for op in p.ops])
        assert recording.lines == len(live) + 1

    def test_every_line_is_one_json_object_with_ops_then_the_end_record(self) -> None:
        """Each patch is a line {"ops": [...]}; the last line is the end record."""
        lines = record_text([RunLogPatch(ROOT_OP), token_patch("a")]).splitlines()
        assert [json.loads(line) for line in lines] == [
            {"ops": [ROOT_OP]},
            {"ops": [token_patch("a").ops[0]]},
            {"end": True, "patches": 2, "error": None},
        ]

    @settings(max_examples=60, deadline=None)
    @given(st.lists(json_values, max_size=8))
    def test_json_values_round_trip_exactly(self, values: list[Any]) -> None:
        """Any JSON values streamed as tokens read back equal, in order."""
        text = record_text([RunLogPatch(ROOT_OP), *(token_patch(v) for v in values)])
        assert read_jsonl(io.StringIO(text)).state["streamed_output"] == values

    def test_values_that_are_not_json_are_written_as_dumps_renders_them(self) -> None:
        """UUIDs, datetimes, sets and objects are written as dumps renders them, never failing."""
        run_id = uuid.uuid4()
        when = datetime(2026, 1, 1, tzinfo=timezone.utc)
        text = record_text([RunLogPatch(ROOT_OP), token_patch([run_id, when, {2, 1}, object])])
        out = read_jsonl(io.StringIO(text)).state["streamed_output"][0]
        assert out[:3] == [str(run_id), when.isoformat(), [1, 2]]
        assert out[3]["type"] == "not_serializable"

    def test_lines_are_ascii_even_for_non_ascii_text(self) -> None:
        """Non-ASCII text is escaped, so a line never depends on the file's encoding."""
        text = record_text([RunLogPatch(ROOT_OP), token_patch("°C \u2028 \ud800")])
        assert text.isascii()
        assert read_jsonl(io.StringIO(text)).state["streamed_output"] == ["°C \u2028 \ud800"]

    def test_binary_text_and_path_targets_write_the_same_bytes(self, tmp_path: Path) -> None:
        """A file name, a binary stream and a text stream get identical content."""
        patches = [RunLogPatch(ROOT_OP), token_patch("x")]
        binary, text, path = io.BytesIO(), io.StringIO(), tmp_path / "r.jsonl"
        for target in (binary, text, path):
            JsonLinesSink(target).consume(patches)
        assert binary.getvalue() == text.getvalue().encode() == path.read_bytes()

    def test_a_stream_passed_in_stays_open_and_a_file_opened_is_closed(
        self, tmp_path: Path
    ) -> None:
        """end() closes a file the sink opened and leaves a caller's stream open."""
        stream = io.StringIO()
        JsonLinesSink(stream).end()
        assert not stream.closed
        sink = JsonLinesSink(tmp_path / "r.jsonl")
        sink.end()
        assert sink._owned is None
        assert (tmp_path / "r.jsonl").read_text() == '{"end":true,"patches":0,"error":null}\n'

    def test_lines_are_flushed_as_written(self, tmp_path: Path) -> None:
        """Each patch is on disk as soon as write() returns, before the sink ends."""
        path = tmp_path / "r.jsonl"
        sink = JsonLinesSink(path)
        sink.write(RunLogPatch(ROOT_OP))
        assert path.read_text() == json.dumps({"ops": [ROOT_OP]}, separators=(",", ":")) + "\n"
        sink.close()

    def test_concurrent_writers_never_interleave_lines(self) -> None:
        """Eight threads writing 200 patches each give 1,600 whole lines and a right count."""
        out = io.StringIO()
        sink = JsonLinesSink(out)
        sink.write(RunLogPatch(ROOT_OP))

        def write(n: int) -> None:
            for i in range(200):
                sink.write(token_patch(f"{n}-{i}-" + "x" * 50))

        threads = [run_in_thread(lambda n=n: write(n)) for n in range(8)]
        for thread in threads:
            join_thread(*thread)
        sink.end()
        recording = read_jsonl(io.StringIO(out.getvalue()))
        assert recording.end is not None and recording.end.patches == 1601
        tokens = recording.state["streamed_output"]
        for n in range(8):
            mine = [t for t in tokens if t.startswith(f"{n}-")]
            assert mine == [f"{n}-{i}-" + "x" * 50 for i in range(200)]


class TestSinkMisuse:
    def test_writing_a_runlog_state_is_refused(self) -> None:
        """A RunLog holds all ops so far; writing it would duplicate them, so it is a TypeError."""
        sink = JsonLinesSink(io.StringIO())
        with pytest.raises(TypeError, match="not RunLog states"):
            sink.write(RunLog(ROOT_OP, state=None))
        assert sink.patches == 0

    def test_writing_something_that_is_not_a_patch_is_refused(self) -> None:
        """A dict or a string is not a patch."""
        sink = JsonLinesSink(io.StringIO())
        with pytest.raises(TypeError, match="not dict"):
            sink.write(ROOT_OP)  # type: ignore[arg-type]

    def test_a_target_that_is_not_writable_is_refused(self) -> None:
        """A number is neither a file name nor a stream."""
        with pytest.raises(TypeError, match="not int"):
            JsonLinesSink(3)  # type: ignore[arg-type]

    def test_writes_after_end_raise_and_add_nothing(self) -> None:
        """After end(), write() and end() raise SinkClosedError and the text is unchanged."""
        out = io.StringIO()
        sink = JsonLinesSink(out)
        sink.end()
        before = out.getvalue()
        with pytest.raises(SinkClosedError, match="has ended"):
            sink.write(RunLogPatch(ROOT_OP))
        with pytest.raises(SinkClosedError, match="already ended"):
            sink.end()
        assert out.getvalue() == before

    def test_close_without_end_leaves_an_incomplete_recording(self) -> None:
        """close() writes no end record, so the reader reports the recording incomplete."""
        out = io.StringIO()
        sink = JsonLinesSink(out)
        sink.write(RunLogPatch(ROOT_OP))
        sink.close()
        sink.close()  # twice is fine
        with pytest.raises(LogFileError) as caught:
            read_jsonl(io.StringIO(out.getvalue()))
        assert (caught.value.line, caught.value.reason) == (2, MISSING_END)
        partial = read_jsonl(io.StringIO(out.getvalue()), require_end=False)
        assert not partial.complete
        assert partial.state == ROOT_OP["value"]

    def test_consume_records_the_error_of_the_source_and_reraises_it(self) -> None:
        """A failing source gives an end record naming its error; the error propagates."""

        def patches() -> Iterator[RunLogPatch]:
            yield RunLogPatch(ROOT_OP)
            raise ValueError("boom")

        out = io.StringIO()
        with pytest.raises(ValueError, match="boom"):
            JsonLinesSink(out).consume(patches())
        end = read_jsonl(io.StringIO(out.getvalue())).end
        assert end == EndRecord(patches=1, error="ValueError: boom", line=2)

    def test_a_with_block_that_raises_ends_with_the_error(self) -> None:
        """Leaving the with block by an exception writes the end record with that error."""
        out = io.StringIO()
        with pytest.raises(KeyError), JsonLinesSink(out) as sink:
            sink.write(RunLogPatch(ROOT_OP))
            raise KeyError("k")
        assert read_jsonl(io.StringIO(out.getvalue())).end == EndRecord(1, "KeyError: 'k'", 2)

    def test_aconsume_writes_an_async_source(self) -> None:
        """aconsume() drains an async iterable, e.g. a handler read with async for."""
        handler = LogStreamCallbackHandler(clock=FakeClock())
        out = io.StringIO()

        async def main() -> int:
            worker = asyncio.get_running_loop().run_in_executor(
                None, run_agent, handler, "question?"
            )
            count = await JsonLinesSink(out).aconsume(handler)
            await worker
            return count

        count = asyncio.run(main())
        recording = read_jsonl(io.StringIO(out.getvalue()))
        assert count == len(recording.patches) > 10
        assert recording.state["final_output"] == {"answer": "It's 18°C and sunny in Paris."}


def parse_sse(text: str) -> list[dict[str, str]]:
    """Parse Server-Sent Events text into events, as the spec's dispatch rules say."""
    events, fields = [], {}
    for line in text.split("\n"):
        if line == "":
            if fields:
                events.append(fields)
            fields = {}
            continue
        name, _, value = line.partition(":")
        fields[name] = fields.get(name, "") + value.removeprefix(" ")
    return events


class TestServerSentEvents:
    def test_frames_carry_each_patch_then_the_end(self) -> None:
        """Each patch is an 'data' event with an id; an 'end' event closes the stream."""
        patches = list(demo_patches())
        events = parse_sse("".join(sse_frames(patches)))
        assert [e["event"] for e in events] == ["data"] * len(patches) + ["end"]
        assert [e["id"] for e in events[:-1]] == [str(n) for n in range(1, len(patches) + 1)]
        assert [RunLogPatch(*json.loads(e["data"])["ops"]) for e in events[:-1]] == patches
        assert json.loads(events[-1]["data"]) == {"patches": len(patches), "error": None}

    def test_sse_sink_writes_the_same_frames(self) -> None:
        """SseSink writes exactly what sse_frames yields."""
        patches = [RunLogPatch(ROOT_OP), token_patch("a\nb")]
        out = io.StringIO()
        SseSink(out).consume(patches)
        assert out.getvalue() == "".join(sse_frames(patches))
        assert json.loads(parse_sse(out.getvalue())[1]["data"])["ops"][0]["value"] == "a\nb"

    def test_a_failing_source_ends_with_its_error_then_raises(self) -> None:
        """The end frame names the source's error before the error propagates."""

        def patches() -> Iterator[RunLogPatch]:
            yield RunLogPatch(ROOT_OP)
            raise RuntimeError("lost")

        frames: list[str] = []
        with pytest.raises(RuntimeError, match="lost"):
            for frame in sse_frames(patches()):
                frames.append(frame)
        end = parse_sse("".join(frames))[-1]
        assert json.loads(end["data"]) == {"patches": 1, "error": "RuntimeError: lost"}

    def test_async_frames_match_the_sync_frames(self) -> None:
        """asse_frames over an async source yields the same frames as sse_frames."""
        patches = [RunLogPatch(ROOT_OP), token_patch(1), token_patch(2)]

        async def source() -> AsyncIterator[RunLogPatch]:
            for patch in patches:
                yield patch

        async def collect() -> list[str]:
            return [frame async for frame in asse_frames(source())]

        assert asyncio.run(collect()) == list(sse_frames(patches))


GOOD = [json.dumps({"ops": [ROOT_OP]}), json.dumps({"ops": [token_patch("t").ops[0]]})]
END = json.dumps({"end": True, "patches": 2, "error": None})
BAD_LINES = [
    # (lines of the file, the line the error names, a part of its reason)
    ([GOOD[0], '{"ops": [', END], 2, "not valid JSON at column 10"),
    ([GOOD[0], '{"ops": [{"op": "add", "path": "/streamed_output/-", "value": NaN}]}'], 2, "NaN"),
    ([GOOD[0], '{"ops": [], "ops": []}'], 2, 'duplicate key "ops"'),
    (['"just a string"'], 1, 'got "just a string"'),
    (['{"op": "add"}'], 1, 'got an object with keys "op"'),
    (['{"ops": [], "end": true}'], 1, "expected a patch"),
    (['{"ops": {"op": "add"}}'], 1, '"ops" must be a list'),
    (['{"ops": [1]}'], 1, "op 1 must be an object"),
    (['{"ops": [{"op": "jump", "path": ""}]}'], 1, 'unknown "op": "jump"'),
    (['{"ops": [{"op": "add", "path": 3, "value": 1}]}'], 1, 'needs a string "path"'),
    (['{"ops": [{"op": "replace", "path": ""}]}'], 1, 'has no "value"'),
    (['{"ops": [{"op": "move", "path": "/a"}]}'], 1, 'needs a string "from"'),
    (
        [GOOD[0], '{"ops": [{"op": "add", "path": "/logs/a/streamed_output/-", "value": 1}]}'],
        2,
        "does not apply",
    ),
    (['{"ops": [{"op": "add", "path": "no-slash", "value": 1}]}'], 1, "does not apply"),
    ([*GOOD, END, GOOD[1]], 4, "data after the end record on line 3"),
    (
        [*GOOD, '{"end": true, "patches": 3, "error": null}'],
        3,
        "counts 3 patches but the file has 2",
    ),
    ([*GOOD, '{"end": 1, "patches": 2}'], 3, '"end": true'),
    ([*GOOD, '{"end": true, "patches": true}'], 3, '"patches" must be a count'),
    ([*GOOD, '{"end": true, "patches": -1}'], 3, '"patches" must be a count'),
    ([*GOOD, '{"end": true, "patches": 2, "error": {}}'], 3, '"error" must be a string'),
    ([*GOOD], 3, MISSING_END),
    (["[" * 100_000 + "]" * 100_000], 1, "nesting too deep"),
    (['{"ops": [{"op": "replace", "path": "", "value": ' + "9" * 5000 + "}]}"], 1, "not valid"),
]


class TestReaderErrors:
    @pytest.mark.parametrize(("lines", "line", "reason"), BAD_LINES)
    def test_a_malformed_file_names_its_line_and_what_is_wrong(
        self, lines: list[str], line: int, reason: str
    ) -> None:
        """Every kind of bad line is a one-line LogFileError naming the line and the fault."""
        text = "".join(f"{item}\n" for item in lines)
        with pytest.raises(LogFileError) as caught:
            read_jsonl(io.BytesIO(text.encode()))
        assert caught.value.line == line
        assert reason in caught.value.reason
        assert str(caught.value) == f"<stream>:{line}: {caught.value.reason}"
        assert "\n" not in str(caught.value)

    def test_a_line_cut_short_at_the_end_is_reported_as_truncated(self) -> None:
        """A last line with no newline that is not JSON is a truncation, named by line."""
        text = f"{GOOD[0]}\n{GOOD[1][:20]}"
        with pytest.raises(LogFileError, match=r"^<stream>:2: truncated"):
            read_jsonl(io.StringIO(text))

    def test_a_complete_last_line_without_newline_is_accepted(self) -> None:
        """A file written by another tool may lack the final newline; that is not an error."""
        assert read_jsonl(io.StringIO(f"{GOOD[0]}\n{GOOD[1]}\n{END}")).complete

    def test_invalid_utf8_is_named_with_its_byte_and_column(self) -> None:
        """Bytes that are not UTF-8 give the byte, the column and the line."""
        with pytest.raises(LogFileError, match=r"^<stream>:2: not UTF-8: byte 0xff at column 3$"):
            read_jsonl(io.BytesIO(GOOD[0].encode() + b'\n{"\xff\n'))

    def test_a_text_stream_that_can_not_decode_is_a_log_file_error(self, tmp_path: Path) -> None:
        """A file opened in text mode with bytes it can't decode fails as a LogFileError."""
        path = tmp_path / "latin.jsonl"
        path.write_bytes(GOOD[0].encode() + b'\n{"\xff"}\n')
        with open(path, encoding="utf-8") as stream, pytest.raises(LogFileError) as caught:
            read_jsonl(stream)
        assert caught.value.line == 1  # the stream decodes ahead of the reader
        assert "can't decode" in caught.value.reason

    def test_blank_lines_are_skipped_and_counted(self) -> None:
        """Blank lines carry nothing but keep the line numbers true."""
        recording = read_jsonl(io.StringIO(f"\n{GOOD[0]}\n\n{GOOD[1]}\n   \n{END}\n"))
        assert recording.end is not None and recording.end.line == 6

    def test_a_bare_json_patch_array_is_read_as_a_patch(self) -> None:
        """Lines holding a plain RFC 6902 patch (an array of ops) replay too."""
        text = f"{json.dumps([ROOT_OP])}\n{END.replace('2', '1')}\n"
        assert read_jsonl(io.StringIO(text)).state == ROOT_OP["value"]

    def test_the_file_name_is_in_the_message(self, tmp_path: Path) -> None:
        """Errors name the file they come from."""
        path = tmp_path / "bad.jsonl"
        path.write_text("{\n")
        with pytest.raises(LogFileError) as caught:
            read_jsonl(path)
        assert str(caught.value).startswith(f"{path}:1: not valid JSON")
        assert caught.value.source == str(path)

    def test_a_missing_file_is_an_os_error(self, tmp_path: Path) -> None:
        """A file that is not there is the OS's error, not a LogFileError."""
        with pytest.raises(FileNotFoundError):
            read_jsonl(tmp_path / "nope.jsonl")

    def test_serialized_objects_are_never_revived(self) -> None:
        """LangChain's serialized-constructor shape stays a plain dict, whatever it names."""
        value = {"lc": 1, "type": "constructor", "id": ["os", "system"], "kwargs": {"a": 1}}
        text = record_text([RunLogPatch(ROOT_OP), token_patch(value)])
        assert read_jsonl(io.StringIO(text)).state["streamed_output"] == [value]

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=300))
    def test_arbitrary_bytes_give_a_log_file_error_or_plain_data(self, data: bytes) -> None:
        """Whatever the bytes, the reader raises LogFileError or returns only JSON types."""
        try:
            recording = read_jsonl(io.BytesIO(data), require_end=False)
        except LogFileError as exc:
            assert "\n" not in str(exc)
            return
        assert_plain(recording.state)

    @settings(max_examples=150, deadline=None)
    @given(st.data())
    def test_a_damaged_recording_fails_cleanly_or_reads_plain_data(
        self, data: st.DataObject
    ) -> None:
        """Flipped, cut or dropped bytes in a recording never escape as another error."""
        raw = bytearray(record_text(list(demo_patches())).encode())
        for _ in range(data.draw(st.integers(1, 4))):
            at = data.draw(st.integers(0, len(raw) - 1))
            action = data.draw(st.sampled_from(["flip", "cut", "drop"]))
            if action == "flip":
                raw[at] = data.draw(st.integers(0, 255))
            elif action == "cut":
                del raw[at:]
            else:
                del raw[at]
            if not raw:
                break
        try:
            recording = read_jsonl(io.BytesIO(bytes(raw)))
        except LogFileError as exc:
            lines = raw.count(b"\n") + (0 if raw.endswith(b"\n") else 1)
            assert 1 <= exc.line <= lines + 1  # one past the last line: no end record
            return
        assert_plain(recording.state)


def assert_plain(value: Any) -> None:
    """Assert ``value`` holds nothing but JSON types (no revived objects)."""
    stack = [value]
    while stack:
        item = stack.pop()
        assert type(item) in (dict, list, str, int, float, bool, type(None)), type(item)
        if isinstance(item, dict):
            assert all(type(k) is str for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


class TestFollow:
    def test_a_file_written_slowly_is_read_live_to_its_end_record(self, tmp_path: Path) -> None:
        """Lines that land in pieces are yielded whole and in order; following stops at the end."""
        path = tmp_path / "live.jsonl"
        text = record_text(list(demo_patches()))
        seen: list[Any] = []

        def write() -> None:
            with open(path, "wb") as out:
                data = text.encode()
                for start in range(0, len(data), 97):
                    out.write(data[start : start + 97])
                    out.flush()
                    time.sleep(0.001)

        writer = run_in_thread(write)
        seen.extend(follow_jsonl(path, poll_interval=0.005, timeout=10))
        join_thread(*writer)
        assert isinstance(seen[-1], EndRecord)
        assert seen[:-1] == list(read_jsonl(io.StringIO(text)).patches)

    def test_following_waits_for_the_file_to_appear(self, tmp_path: Path) -> None:
        """A file that does not exist yet is waited for."""
        path = tmp_path / "later.jsonl"
        text = record_text([RunLogPatch(ROOT_OP)])

        def write() -> None:
            time.sleep(0.05)
            path.write_text(text)

        writer = run_in_thread(write)
        records = list(follow_jsonl(path, poll_interval=0.005, timeout=10))
        join_thread(*writer)
        assert records == [RunLogPatch(ROOT_OP), EndRecord(1, None, 2)]

    def test_a_timeout_with_no_new_data_names_the_next_line(self, tmp_path: Path) -> None:
        """With no end record and no new data, following gives up after the timeout."""
        path = tmp_path / "stuck.jsonl"
        path.write_text(GOOD[0] + "\n")
        with pytest.raises(LogFileError, match=r":2: no new line for 0.05s and no end record"):
            list(follow_jsonl(path, poll_interval=0.005, timeout=0.05))

    def test_a_file_that_shrinks_while_followed_is_an_error(self, tmp_path: Path) -> None:
        """A file truncated under the follower (rewritten) is reported, not misread."""
        path = tmp_path / "shrink.jsonl"
        path.write_text(GOOD[0] + "\n" + GOOD[1] + "\n")
        records = follow_jsonl(path, poll_interval=0.005, timeout=5)
        next(records)
        next(records)
        with open(path, "r+b") as stream:
            stream.truncate(0)
        with pytest.raises(LogFileError, match="shrank"):
            next(records)

    def test_data_after_the_end_record_is_an_error_when_following(self, tmp_path: Path) -> None:
        """Following checks what follows the end record, as reading does."""
        path = tmp_path / "extra.jsonl"
        path.write_text("\n".join([*GOOD, END, GOOD[1]]) + "\n")
        with pytest.raises(LogFileError, match=r":4: data after the end record"):
            list(follow_jsonl(path, poll_interval=0.005, timeout=5))

    def test_a_stream_is_followed_line_by_line(self) -> None:
        """A binary stream (a pipe) is read to its end record, and must have one."""
        text = "\n".join([*GOOD, END]) + "\n"
        records = list(follow_jsonl(io.BytesIO(text.encode())))
        assert records[-1] == EndRecord(2, None, 3)
        with pytest.raises(LogFileError, match=MISSING_END):
            list(follow_jsonl(io.BytesIO(GOOD[0].encode() + b"\n")))


def lines_text(*records: Any) -> str:
    """Return JSON Lines text with one line per record."""
    return "".join(json.dumps(record) + "\n" for record in records)


class TestReaderLimits:
    def test_a_copy_bomb_is_stopped_by_the_copy_budget(self) -> None:
        """Lines that each copy the whole state (2**N growth) fail at a line, not the memory."""
        bomb = [{"ops": [{"op": "replace", "path": "", "value": {"x": {"a": [1, 2, 3]}}}]}]
        bomb += [{"ops": [{"op": "copy", "from": "/x", "path": f"/x/c{n}"}]} for n in range(60)]
        with pytest.raises(LogFileError) as caught:
            read_jsonl(io.StringIO(lines_text(*bomb)), require_end=False)
        assert "would copy more than the 1000000 values" in caught.value.reason
        assert 15 < caught.value.line < 30
        with pytest.raises(LogFileError, match="more than the 10 values") as small:
            read_jsonl(io.StringIO(lines_text(*bomb)), require_end=False, max_copied_values=10)
        assert small.value.line == 3  # 5 values, then 10: the budget runs out on line 3

    def test_move_copy_and_test_ops_apply_as_jsonpatch_applies_them(self) -> None:
        """Recordings with every RFC 6902 op rebuild what jsonpatch builds from the same ops."""
        ops = [
            {"op": "replace", "path": "", "value": {"logs": {}, "a": [1, {"b": 2}]}},
            {"op": "copy", "from": "/a", "path": "/logs/copy"},
            {"op": "move", "from": "/a/1", "path": "/moved"},
            {"op": "test", "path": "/moved", "value": {"b": 2}},
            {"op": "add", "path": "/logs/copy/-", "value": "~0/~1"},
            {"op": "remove", "path": "/a/0"},
            {"op": "add", "path": "/a~1b", "value": {"x": [1]}},
        ]
        text = lines_text(*({"ops": [op]} for op in ops), {"end": True, "patches": len(ops)})
        recording = read_jsonl(io.StringIO(text))
        # jsonpatch < 1.34 puts op values into its result uncopied: give it its own ops.
        assert recording.state == jsonpatch.apply_patch(None, copy.deepcopy(ops))
        assert recording.log.ops == ops

    def test_patches_read_stay_as_the_file_has_them(self) -> None:
        """Later ops change the state, never the values of the patches already read."""
        text = record_text(list(demo_patches()))
        recording = read_jsonl(io.StringIO(text))
        first = json.loads(text.splitlines()[0])["ops"]
        assert recording.patches[0].ops == first
        assert recording.patches[0].ops[0]["value"]["logs"] == {}

    def test_a_number_too_large_for_a_float_is_refused(self) -> None:
        """1e999 would read as infinity, which JSON can't hold: it is an error on its line."""
        text = '{"ops": [{"op": "replace", "path": "", "value": 1e999}]}\n'
        with pytest.raises(
            LogFileError, match=r'^<stream>:1: not valid JSON: "1e999" is too large for a float$'
        ):
            read_jsonl(io.StringIO(text))

    def test_reasons_are_one_short_line_with_controls_escaped(self) -> None:
        """Paths with newlines and escapes, and jsonpatch's quotes of a huge state, stay short."""
        evil = {"ops": [{"op": "remove", "path": "/a\nINJECTED\x1b[31m"}]}
        big = {"ops": [{"op": "replace", "path": "", "value": {"k": "x" * 100_000}}]}
        for text in (
            lines_text(big, evil),
            lines_text(big, {"ops": [{"op": "add", "path": "/no\nB\x1b/x", "value": 1}]}),
            lines_text({"ops": [{"op": "add", "path": "/\x1b[2J"}]}),
        ):
            with pytest.raises(LogFileError) as caught:
                read_jsonl(io.StringIO(text), require_end=False)
            message = str(caught.value)
            assert "\n" not in message and "\x1b" not in message
            assert len(caught.value.reason) <= 300

    def test_a_sink_refuses_ops_its_reader_would_refuse(self) -> None:
        """Writing something that is not an op is a TypeError, and nothing is written."""
        out = io.StringIO()
        sink = JsonLinesSink(out)
        for bad in ([1, 2, 3], [{"op": "add", "path": "/x"}], [{"op": "jump", "path": ""}]):
            with pytest.raises(TypeError, match="op 1"):
                sink.write(bad)  # type: ignore[arg-type]
        assert out.getvalue() == ""


class TestFollowEdges:
    def test_an_end_record_without_a_newline_ends_following(self, tmp_path: Path) -> None:
        """A writer that leaves the final newline off is still followed to the end."""
        path = tmp_path / "nonl.jsonl"
        path.write_text(record_text([RunLogPatch(ROOT_OP)]).rstrip("\n"))
        records = list(follow_jsonl(path, poll_interval=0.005, timeout=5))
        assert records[-1] == EndRecord(1, None, 2)

    def test_a_file_replaced_while_followed_is_an_error(self, tmp_path: Path) -> None:
        """A file renamed over the one being followed is reported, not silently mixed in."""
        path = tmp_path / "r.jsonl"
        path.write_text(GOOD[0] + "\n")
        records = follow_jsonl(path, poll_interval=0.005, timeout=5)
        next(records)
        other = tmp_path / "other.jsonl"
        other.write_text("\n".join([*GOOD, END]) + "\n")
        os.replace(other, path)
        with pytest.raises(LogFileError, match="replaced while being followed"):
            next(records)

    def test_a_fifo_whose_writer_stops_early_is_missing_its_end(self, tmp_path: Path) -> None:
        """A pipe is read to its end: no end record there is the missing-end error."""
        path = tmp_path / "pipe"
        os.mkfifo(path)

        def write() -> None:
            with open(path, "w") as out:
                out.write(GOOD[0] + "\n")

        writer = run_in_thread(write)
        with pytest.raises(LogFileError) as caught:
            list(follow_jsonl(path, timeout=5))
        join_thread(*writer)
        assert (caught.value.line, caught.value.reason) == (2, MISSING_END)

    def test_a_text_stream_that_can_not_decode_is_a_log_file_error(self, tmp_path: Path) -> None:
        """Following a text stream with bytes it can't decode fails as a LogFileError."""
        path = tmp_path / "latin.jsonl"
        path.write_bytes(GOOD[0].encode() + b'\n{"\xff"}\n')
        with open(path, encoding="utf-8") as stream, pytest.raises(LogFileError):
            list(follow_jsonl(stream))  # type: ignore[arg-type]

    def test_read_jsonl_follow_reports_each_record_and_returns_the_state(
        self, tmp_path: Path
    ) -> None:
        """read_jsonl(follow=True, on_record=...) calls back per record, then gives the state."""
        path = tmp_path / "r.jsonl"
        patches = list(demo_patches())
        path.write_text(record_text(patches))
        seen: list[Any] = []
        recording = read_jsonl(path, follow=True, on_record=seen.append, timeout=5)
        assert seen[:-1] == patches and isinstance(seen[-1], EndRecord)
        assert recording.state == read_jsonl(path).state


class TestSseCancellation:
    def test_a_cancelled_async_source_is_not_answered_with_an_end_frame(self) -> None:
        """Cancelling the consumer propagates at once; no end frame is yielded in its place."""

        async def source() -> AsyncIterator[RunLogPatch]:
            yield RunLogPatch(ROOT_OP)
            await asyncio.sleep(30)
            yield RunLogPatch(ROOT_OP)

        frames: list[str] = []

        async def consume() -> None:
            async for frame in asse_frames(source()):
                frames.append(frame)

        async def main() -> None:
            task = asyncio.ensure_future(consume())
            while not frames:
                await asyncio.sleep(0.001)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task

        asyncio.run(main())
        assert [parse_sse(frame)[0]["event"] for frame in frames] == ["data"]


class TestLineLimit:
    @pytest.mark.parametrize("binary", [True, False])
    def test_a_line_over_the_limit_is_refused_naming_it(self, binary: bool) -> None:
        """A line longer than max_line_bytes is a LogFileError on its line; one at it reads."""
        at_limit = json.dumps({"ops": [{"op": "replace", "path": "", "value": "x" * 50}]})
        over = json.dumps({"ops": [{"op": "replace", "path": "", "value": "x" * 51}]})
        limit = len(at_limit)
        for lines, outcome in (([at_limit], None), ([at_limit, over], 2), ([over], 1)):
            text = "".join(line + "\n" for line in lines)
            stream: Any = io.BytesIO(text.encode()) if binary else io.StringIO(text)
            if outcome is None:
                recording = read_jsonl(stream, require_end=False, max_line_bytes=limit)
                assert recording.state == "x" * 50
                continue
            with pytest.raises(LogFileError) as caught:
                read_jsonl(stream, require_end=False, max_line_bytes=limit)
            assert caught.value.line == outcome
            assert f"longer than max_line_bytes ({limit} bytes)" in caught.value.reason

    def test_an_endless_stream_reads_at_most_the_limit(self) -> None:
        """An endless line (a stream that never ends) stops after about max_line_bytes."""

        class Endless(io.RawIOBase):
            served = 0

            def readable(self) -> bool:
                return True

            def readinto(self, buffer: Any) -> int:
                buffer[:] = b"x" * len(buffer)
                self.served += len(buffer)
                return len(buffer)

        raw = Endless()
        with pytest.raises(LogFileError, match="longer than max_line_bytes"):
            read_jsonl(io.BufferedReader(raw), max_line_bytes=100_000)
        assert raw.served < 1_000_000

    def test_a_file_growing_without_a_newline_stops_when_followed(self, tmp_path: Path) -> None:
        """Following a file whose last line grows past the limit fails on that line."""
        path = tmp_path / "growing.jsonl"
        path.write_text(GOOD[0] + "\n")
        stop = threading.Event()

        def grow() -> None:
            with open(path, "ab") as out:
                while not stop.is_set():
                    out.write(b"x" * 4096)
                    out.flush()
                    time.sleep(0.001)

        writer = run_in_thread(grow)
        follower = run_in_thread(
            lambda: list(follow_jsonl(path, poll_interval=0.005, max_line_bytes=200_000))
        )
        try:
            with pytest.raises(LogFileError) as caught:
                join_thread(*follower)  # fails, instead of hanging, if following never stops
        finally:
            stop.set()
            join_thread(*writer)
        assert caught.value.line == 2
        assert "longer than max_line_bytes (200000 bytes)" in caught.value.reason

    def test_the_timeout_fires_while_a_line_trickles_in(self, tmp_path: Path) -> None:
        """Bytes that never complete a line do not keep following alive past the timeout."""
        path = tmp_path / "trickle.jsonl"
        path.write_text(GOOD[0] + "\n")
        stop = threading.Event()

        def trickle() -> None:
            with open(path, "ab") as out:
                while not stop.is_set():
                    out.write(b" ")
                    out.flush()
                    time.sleep(0.01)

        writer = run_in_thread(trickle)
        follower = run_in_thread(lambda: list(follow_jsonl(path, poll_interval=0.005, timeout=0.3)))
        try:
            with pytest.raises(LogFileError, match=r":2: no new line for 0.3s"):
                join_thread(*follower)  # fails, instead of hanging, if the timeout never fires
        finally:
            stop.set()
            join_thread(*writer)

    def test_max_line_bytes_must_be_a_positive_int(self) -> None:
        """A zero or non-int limit is a ReadOptionError (a ValueError) before anything is read."""
        for bad in (0, -1, 1.5, None):
            with pytest.raises(ReadOptionError, match="max_line_bytes must be a positive int"):
                read_jsonl(io.StringIO(""), max_line_bytes=bad)  # type: ignore[arg-type]


def _raising_str(error_type: type[BaseException]) -> BaseException:
    """Return an exception whose ``__str__`` raises ``error_type``."""

    class Unprintable(Exception):
        def __str__(self) -> str:
            raise error_type("no text")

    return Unprintable()


class TestHardeningProperties:
    @settings(max_examples=40, deadline=None)
    @given(st.integers(1, 3000), st.integers(1, 3))
    def test_deep_states_built_from_shallow_lines_read_back(self, levels: int, step: int) -> None:
        """A state nested thousands deep, each line adding a few levels, reads and applies."""
        lines = [{"ops": [{"op": "replace", "path": "", "value": {"logs": {}, "d": {}}}]}]
        path = "/d"
        for _ in range(0, levels, step):
            value: Any = {}
            for _ in range(step - 1):
                value = {"a": value}
            lines.append({"ops": [{"op": "add", "path": path + "/a", "value": value}]})
            path += "/a" * step
        lines.append({"end": True, "patches": len(lines), "error": None})
        recording = read_jsonl(io.StringIO(lines_text(*lines)))
        node, depth = recording.state["d"], 0
        while node:
            node, depth = node["a"], depth + 1
        assert depth == len(lines[1:-1]) * step

    @settings(max_examples=60, deadline=None)
    @given(st.integers(1, 300), st.integers(0, 600), st.booleans(), st.booleans())
    def test_lines_are_refused_exactly_when_longer_than_the_limit(
        self, limit: int, size: int, binary: bool, newline: bool
    ) -> None:
        """A line of any length is read whole if it fits max_line_bytes, else refused."""
        value = "x" * max(size - 2, 0)
        line = json.dumps(value)
        text = line + ("\n" if newline else "")
        stream: Any = io.BytesIO(text.encode()) if binary else io.StringIO(text)
        if len(line) <= limit:
            with pytest.raises(LogFileError, match="expected a patch"):
                read_jsonl(stream, max_line_bytes=limit)
        else:
            with pytest.raises(LogFileError, match="longer than max_line_bytes") as caught:
                read_jsonl(stream, max_line_bytes=limit)
            assert caught.value.line == 1

    @settings(max_examples=50, deadline=None)
    @given(
        st.sampled_from([ValueError, RuntimeError, TypeError, RecursionError, MemoryError]),
        st.integers(0, 3),
    )
    def test_an_error_whose_str_raises_still_ends_the_recording(
        self, raised: type[BaseException], patches: int
    ) -> None:
        """consume() of a stream failing with an unprintable error writes its end record."""

        def failing() -> Iterator[RunLogPatch]:
            for _ in range(patches):
                yield RunLogPatch(ROOT_OP)
            raise _raising_str(raised)

        out = io.StringIO()
        with pytest.raises(Exception) as caught:
            JsonLinesSink(out).consume(failing())
        assert type(caught.value).__name__ == "Unprintable"
        end = read_jsonl(io.StringIO(out.getvalue())).end
        assert end == EndRecord(
            patches, f"Unprintable: <str() raised {raised.__name__}>", patches + 1
        )
