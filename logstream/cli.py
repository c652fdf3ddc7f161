"""The command line: ``logstream demo | record | replay`` (also ``python -m logstream``).

This module's one responsibility is turning arguments into calls of the demo, the sinks
and the reader, and their outcomes into text and an exit status: 0 on success, 1 when a
file is bad or the traced code failed, 2 for bad arguments, 130 on Ctrl-C. Every error is
one line on stderr, starting ``logstream: error:``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, Any, Callable, Optional, Union

from .demo import demo_patches, format_state, run_demo, write_ops
from .errors import LogFileError
from .patches import RunLog, RunLogPatch
from .redact import SecretRedactor
from .sinks import MISSING_END, EndRecord, JsonLinesSink, Recording, follow_jsonl, read_jsonl
from .streaming import stream_log

__all__ = ["CommandError", "main"]

_STREAMED_KINDS = (("streamed_output_str", "token"), ("streamed_output", "chunk"))


class CommandError(Exception):
    """A command can't go on; its message is printed as one line, with an exit status.

    Attributes:
        status: The exit status: 1 for a bad file or a failed target, 2 for bad arguments.
    """

    def __init__(self, message: str, status: int = 1) -> None:
        """Build the error.

        Args:
            message: The one-line message.
            status: The exit status.
        """
        super().__init__(message)
        self.status = status


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logstream", description="A framework-free run-log tracer (RFC 6902 patches)."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("demo", help="trace a small fake agent loop and print its patches live")
    record = commands.add_parser(
        "record",
        help="record a run's patches to a JSON Lines file",
        description="Run the demo agent, or TARGET(INPUT) through stream_log, and write "
        "its patches to OUT as JSON Lines ('-' for stdout), ending with an end record.",
    )
    record.add_argument("out", metavar="OUT.jsonl", help="the file to write ('-': stdout)")
    record.add_argument(
        "--target",
        metavar="MODULE:FUNCTION",
        help="the callable to run as the root run (default: the demo agent)",
    )
    record.add_argument(
        "--input",
        metavar="JSON",
        help="the target's one argument, as JSON (default: null)",
    )
    record.add_argument(
        "--redact", action="store_true", help="mask secrets before they are recorded"
    )
    replay = commands.add_parser(
        "replay",
        help="print the run tree (or the final state) of a JSON Lines recording",
        description="Read a recording, check every line, and print its run tree: name, "
        "type, status, duration and streamed tokens per run.",
    )
    replay.add_argument("file", metavar="FILE.jsonl", help="the recording ('-': stdin)")
    replay.add_argument(
        "--json", action="store_true", help="print the final state as JSON instead of the tree"
    )
    replay.add_argument(
        "--follow",
        action="store_true",
        help="read the file while it is written, printing patches live, until its end record",
    )
    replay.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with --follow: give up after SECONDS with no new data",
    )
    replay.add_argument(
        "--partial",
        action="store_true",
        help="accept a recording without its end record (it is shown as incomplete)",
    )
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    """Run the command line.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` if ``None``.

    Returns:
        The exit status.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse has printed usage and the error
        return exc.code if isinstance(exc.code, int) else 2
    try:
        if args.command == "demo":
            run_demo(sys.stdout, delay=0.02)
            return 0
        if args.command == "record":
            return _record(args)
        if args.command == "replay":
            return _replay(args)
    except CommandError as exc:
        print(f"logstream: error: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print("logstream: interrupted", file=sys.stderr)
        return 130
    parser.print_help(sys.stderr)
    return 2


def _record(args: argparse.Namespace) -> int:
    redact = SecretRedactor() if args.redact else None
    if args.target is None:
        if args.input is not None:
            raise CommandError("--input needs --target (the demo takes no input)", 2)
        patches: Iterator[Any] = demo_patches(redact=redact)
    else:
        target = _load_target(args.target)
        value = _parse_input(args.input)
        patches = stream_log(target, value, redact=redact)
    with _open_out(args.out) as out:
        sink = JsonLinesSink(out)
        try:
            count = sink.consume(patches)
        except (KeyboardInterrupt, CommandError):
            raise
        except Exception as exc:
            where = "stdout" if args.out == "-" else args.out
            failure = f"{type(exc).__name__}: {exc}"
            msg = f"the target raised {failure} ({_count(sink.patches, 'patch')} in {where})"
            raise CommandError(msg) from None
    if args.out != "-":
        print(f"recorded {_count(count, 'patch')} to {args.out}", file=sys.stderr)
    return 0


@contextlib.contextmanager
def _open_out(name: str) -> Iterator[IO[bytes]]:
    if name == "-":
        sys.stdout.flush()
        out = sys.stdout.buffer
        with contextlib.redirect_stdout(sys.stderr):  # what the target prints can't corrupt it
            yield out
        return
    try:
        stream = open(name, "wb")
    except OSError as exc:
        raise CommandError(f"can't write {name}: {exc.strerror or exc}") from None
    with stream:
        yield stream


def _load_target(spec: str) -> Callable[..., Any]:
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise CommandError(f"--target must look like module:function, not {spec!r}", 2)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does, for the console script too
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CommandError(f"can't import {module_name!r}: {exc}", 2) from None
    except Exception as exc:
        msg = f"importing {module_name!r} raised {type(exc).__name__}: {exc}"
        raise CommandError(msg) from None
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise CommandError(f"{module_name!r} has no attribute {attribute!r}", 2) from None
    if not callable(target):
        msg = f"--target {spec} is a {type(target).__name__}, not a callable"
        raise CommandError(msg, 2)
    return target  # type: ignore[no-any-return]


def _parse_input(text: Optional[str]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except RecursionError:
        raise CommandError("--input is nested too deeply", 2) from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"--input is not JSON: {exc.msg} (column {exc.colno})", 2) from None
    except ValueError as exc:
        raise CommandError(f"--input is not JSON: {exc}", 2) from None


def _no_constant(name: str) -> Any:
    msg = f"{name} is not JSON"
    raise ValueError(msg)


def _replay(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.follow:
        raise CommandError("--timeout needs --follow", 2)
    if args.timeout is not None and not args.timeout > 0:
        raise CommandError(f"--timeout must be a positive number of seconds, not {args.timeout}", 2)
    try:
        if args.follow:
            recording = _follow(args)
        else:
            source: Union[str, IO[bytes]] = sys.stdin.buffer if args.file == "-" else args.file
            recording = read_jsonl(source, require_end=not args.partial)
        text = format_state(recording.state) if args.json else format_tree(recording)
    except LogFileError as exc:
        hint = " (--follow waits for it, --partial shows it)" if exc.reason == MISSING_END else ""
        raise CommandError(f"{exc}{hint}") from None
    except OSError as exc:
        raise CommandError(f"can't read {args.file}: {exc.strerror or exc}") from None
    sys.stdout.write(text)
    return 0


def _follow(args: argparse.Namespace) -> Recording:
    out = None if args.json else sys.stdout
    if out is not None:
        out.write("patches, as they stream:\n")
    patches: list[RunLogPatch] = []
    log = RunLog(state=None)
    end: Optional[EndRecord] = None
    source: Union[str, IO[bytes]] = sys.stdin.buffer if args.file == "-" else args.file
    for record, state_so_far in follow_jsonl(source, timeout=args.timeout):
        log = state_so_far
        if isinstance(record, EndRecord):
            end = record
        else:
            patches.append(record)
            if out is not None:
                write_ops(out, record.ops)
                out.flush()
    if out is not None:
        out.write("\n")
    lines = end.line if end is not None else 0
    return Recording(str(args.file), tuple(patches), log, end, lines)


def format_tree(recording: Recording) -> str:
    """Return the run tree of ``recording`` as a table, one run a line.

    The root comes first, then every logged run in the order it started (the patches
    carry no parent links, so runs are listed one level under the root). Columns: name,
    type, status (``done``, ``error``, ``running``, ``unfinished``), duration, and how
    many tokens (or chunks) the run streamed. Text from the file is shown with control
    characters escaped.

    Args:
        recording: A recording, e.g. from :func:`~logstream.sinks.read_jsonl`.

    Returns:
        The table, ending with a newline.

    Raises:
        LogFileError: The recording's state is not a run state.
    """
    state = recording.state
    where = recording.lines + (0 if recording.complete else 1)
    if not isinstance(state, dict):
        reason = f"the final state is not a run state (an object), it is {_kind(state)}"
        raise LogFileError(recording.source, where, reason)
    logs = state.get("logs", {})
    if not isinstance(logs, dict):
        reason = f'the final state\'s "logs" is not an object, it is {_kind(logs)}'
        raise LogFileError(recording.source, where, reason)
    end = recording.end
    if end is None:
        root_status = "running"
    else:
        root_status = "error" if end.error is not None else "done"
    rows = [
        (
            _clean(state.get("name", "?")),
            _clean(state.get("type", "?")),
            root_status,
            "-",
            _streamed(state),
        )
    ]
    for key, entry in logs.items():
        if not isinstance(entry, dict):
            reason = f"the log entry {key!r} is not an object, it is {_kind(entry)}"
            raise LogFileError(recording.source, where, reason)
        name = _clean(entry.get("name", key))
        label = name if key == entry.get("name") else f"{name} [{_clean(key)}]"
        if entry.get("end_time") is not None:
            status = "done"
        else:
            status = "running" if end is None else "unfinished"
        rows.append(
            (
                "  " + label,
                _clean(entry.get("type", "?")),
                status,
                _duration(entry.get("start_time"), entry.get("end_time")),
                _streamed(entry),
            )
        )
    header = ("run", "type", "status", "duration", "streamed")
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(4)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join([*cells, row[4]]).rstrip())
    summary = f"{_count(len(recording.patches), 'patch')}, {_count(len(logs), 'logged run')}"
    if end is None:
        summary += "; incomplete: no end record"
    elif end.error is not None:
        summary += f"; the traced code raised {_clean(end.error, 200)}"
    return "\n".join([*lines, summary]) + "\n"


def _streamed(entry: Mapping[str, Any]) -> str:
    for field, unit in _STREAMED_KINDS:
        items = entry.get(field)
        if isinstance(items, list) and items:
            return _count(len(items), unit)
    return "-"


def _count(number: int, noun: str) -> str:
    if number == 1:
        return f"1 {noun}"
    return f"{number} {noun}{'es' if noun.endswith('ch') else 's'}"


def _duration(start: Any, end: Any) -> str:
    if not isinstance(start, str) or not isinstance(end, str):
        return "-"
    try:
        seconds = (_parse_time(end) - _parse_time(start)).total_seconds()
    except (ValueError, TypeError):  # not ISO 8601, or naive against aware
        return "?"
    if abs(seconds) < 1:
        return f"{seconds * 1000:g} ms"
    return f"{seconds:.3g} s" if abs(seconds) < 100 else f"{seconds:.0f} s"


def _parse_time(text: str) -> datetime:
    if text.endswith(("Z", "z")):  # fromisoformat takes "Z" only from Python 3.11
        text = text[:-1] + "+00:00"
    return datetime.fromisoformat(text)


def _clean(value: Any, limit: int = 60) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (dict, list)):
        text = "<" + _kind(value) + ">"
    else:
        text = json.dumps(value)
    text = "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
