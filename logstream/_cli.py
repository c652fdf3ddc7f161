"""The command line: ``logstream demo | record | replay | view | serve``.

This module's one responsibility is turning arguments into calls of the demo, the sinks
and the reader, and their outcomes into text and an exit status: 0 on success, 1 when a
file is bad or the traced code failed, 2 for bad arguments, 130 on Ctrl-C. Every error is
one line on stderr, starting ``logstream: error:``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import io
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, Any, Callable, Optional, TextIO, Union

from ._demo import demo_patches, format_state, run_demo, write_ops
from ._emitter import EntryField, check_entry_fields
from ._errors import ConfigError, EntryFieldsError, LogFileError, LogStreamError
from ._patches import RunLogPatch
from ._reader import DEFAULT_MAX_LINE_BYTES, MISSING_END, EndRecord, Recording, is_fifo, read_jsonl
from ._redact import SecretRedactor
from ._sinks import JsonLinesSink
from ._streaming import stream_log
from ._text import error_text, printable, refuse_constant
from ._wire import LogSource

__all__ = ["main"]

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
    record.add_argument(
        "--timestamps",
        action="store_true",
        help='add "time" (epoch seconds) to each patch line, for the viewer\'s token timing',
    )
    record.add_argument(
        "--entry-fields",
        metavar="FIELDS",
        default="",
        help="opt-in entry fields to record, comma-separated: parent_ids,error (default: "
        "none, so the state is LangChain's); replay nests runs and marks failed ones by them",
    )
    replay = commands.add_parser(
        "replay",
        help="print the run tree (or the final state) of a JSON Lines recording",
        description="Read a recording, check every line, and print its run tree: name, "
        "type, status, duration and streamed tokens per run (nested, with failed runs' "
        "errors, when it was recorded with --entry-fields parent_ids,error).",
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
        help="with --follow: give up after SECONDS with no new line",
    )
    replay.add_argument(
        "--max-line-bytes",
        type=int,
        default=DEFAULT_MAX_LINE_BYTES,
        metavar="BYTES",
        help="refuse a line longer than BYTES (default: %(default)s, 64 MiB)",
    )
    replay.add_argument(
        "--partial",
        action="store_true",
        help="accept a recording without its end record (it is shown as incomplete)",
    )
    view = commands.add_parser(
        "view",
        help="write a self-contained HTML page that shows a recording as a waterfall",
        description="Read a recording (one cut short is shown as unfinished) and write one "
        "HTML file (inline CSS and JS, no network) that draws its runs on a time axis.",
    )
    view.add_argument("file", metavar="FILE.jsonl", help="the recording ('-': stdin)")
    view.add_argument(
        "-o",
        "--output",
        metavar="OUT.html",
        help="the page to write ('-': stdout; default: FILE with .html for .jsonl)",
    )
    view.add_argument(
        "--max-line-bytes",
        type=int,
        default=DEFAULT_MAX_LINE_BYTES,
        metavar="BYTES",
        help="refuse a line longer than BYTES (default: %(default)s, 64 MiB)",
    )
    serve = commands.add_parser(
        "serve",
        help="serve the viewer page for a run as it happens (needs logstream[serve])",
        description="Follow FILE.jsonl while it is written, run --target, or follow a run in "
        "Redis (--redis; the demo agent if none is given), and serve the viewer page at / "
        "that follows the run live over a resumable Server-Sent Events stream "
        "(/runs/run/stream).",
    )
    serve.add_argument("file", nargs="?", metavar="FILE.jsonl", help="a recording to follow")
    serve.add_argument("--target", metavar="MODULE:FUNCTION", help="the callable to run")
    serve.add_argument("--input", metavar="JSON", help="the target's one argument, as JSON")
    serve.add_argument("--redact", action="store_true", help="mask secrets (with --target)")
    serve.add_argument(
        "--redis",
        metavar="URL",
        help="follow a run a RedisSink writes (with --log-id; needs logstream[redis])",
    )
    serve.add_argument("--log-id", metavar="ID", help="with --redis: the run's log id")
    serve.add_argument(
        "--prefix", metavar="PREFIX", help="with --redis: the keys' prefix (default: logstream:)"
    )
    serve.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="with FILE.jsonl or --redis: exit 1 if the run has not appeared after SECONDS "
        "(default: wait for it)",
    )
    serve.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    serve.add_argument(
        "--port", type=int, default=8000, help="default: %(default)s (0: any free port)"
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
            run_demo(_stdout(), delay=0.02)
            return 0
        if args.command == "record":
            return _record(args)
        if args.command == "replay":
            return _replay(args)
        if args.command == "view":
            return _view(args)
        if args.command == "serve":
            return _serve(args)
    except CommandError as exc:
        _say(f"logstream: error: {printable(str(exc), 500)}")
        return exc.status
    except BrokenPipeError:  # e.g. `| head`: the reader has what it wanted
        _silence_stdout()
        return 1
    except OSError as exc:  # writing our own output failed (e.g. a full disk)
        _say(f"logstream: error: can't write the output: {exc.strerror or exc}")
        return 1
    except KeyboardInterrupt:
        _say("logstream: interrupted")
        return 130
    parser.print_help(sys.stderr)
    return 2


def _say(text: str) -> None:
    if sys.stderr is not None:
        print(text, file=sys.stderr)


def _stdout() -> TextIO:
    if sys.stdout is None:
        raise CommandError("stdout is closed")
    return sys.stdout


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's last flush can't fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _record(args: argparse.Namespace) -> int:
    redact = SecretRedactor() if args.redact else None
    if args.target is None and args.input is not None:
        raise CommandError("--input needs --target (the demo takes no input)", 2)
    value = _parse_input(args.input)
    where = "stdout" if args.out == "-" else args.out
    fields = [name.strip() for name in args.entry_fields.split(",") if name.strip()]
    try:
        check_entry_fields(fields)
    except EntryFieldsError:
        given = args.entry_fields
        msg = f"--entry-fields takes parent_ids and/or error, comma-separated, not {given!r}"
        raise CommandError(msg, 2) from None

    def source() -> Iterator[Any]:
        if args.target is None:
            return demo_patches(redact=redact, entry_fields=fields)
        return stream_log(_load_target(args.target), value, redact=redact, entry_fields=fields)

    # A bad target is found before the file is created; with `record -` it is imported
    # once fd 1 goes to stderr, so what the import prints can't get into the recording.
    patches = None if args.out == "-" else source()
    with _output(args.out) as out:
        patches = source() if patches is None else patches
        try:
            sink = JsonLinesSink(out, timestamps=args.timestamps)
            count = _write_all(sink, patches, where, redact)
        finally:
            close = getattr(patches, "close", None)
            if close is not None:
                close()  # stops the target if writing failed
    if args.out != "-":
        _say(f"recorded {_count(count, 'patch')} to {args.out}")
    return 0


def _write_all(
    sink: JsonLinesSink,
    patches: Iterator[Any],
    where: str,
    redact: Optional[SecretRedactor] = None,
) -> int:
    """Write every patch, then the end record; tell a failed target from a failed write.

    The target's error is named as ``"Type: message"`` (see :func:`_failure`) in the end
    record and on stderr, masked by ``redact`` when given.
    """
    while True:
        try:
            patch = next(patches)
        except StopIteration:
            break
        except KeyboardInterrupt as exc:
            _end_quietly(sink, exc)
            raise
        except BaseException as exc:  # the target's error, SystemExit included
            failure = _failure(exc, redact)
            _end_quietly(sink, failure)
            msg = f"the target raised {failure} ({_count(sink.patches, 'patch')} in {where})"
            raise CommandError(msg) from None
        try:
            sink.write(patch)
        except OSError as exc:
            raise CommandError(f"can't write {where}: {exc.strerror or exc}") from None
    try:
        sink.end()
    except OSError as exc:
        raise CommandError(f"can't write {where}: {exc.strerror or exc}") from None
    return sink.patches


def _failure(error: BaseException, redact: Optional[SecretRedactor]) -> str:
    """Return ``"Type: message"`` for the target's error, masked by ``redact``; never raises."""
    text = error_text(error) or type(error).__name__
    if redact is None:
        return text
    try:
        masked = redact(text)
    except Exception:  # a redactor that fails must not let the message through
        return f"{type(error).__name__}: <message withheld: redaction failed>"
    return masked if isinstance(masked, str) else type(error).__name__


def _end_quietly(sink: JsonLinesSink, error: Union[BaseException, str]) -> None:
    with contextlib.suppress(OSError):
        sink.end(error)


@contextlib.contextmanager
def _output(name: str) -> Iterator[IO[bytes]]:
    """Open the recording's output; for ``-``, stdout, with fd 1 sent to stderr meanwhile."""
    if name != "-":
        try:
            stream = open(name, "wb")
        except OSError as exc:
            raise CommandError(f"can't write {name}: {exc.strerror or exc}") from None
        try:
            yield stream
        finally:
            with contextlib.suppress(OSError):
                stream.close()
        return
    out = _stdout()
    out.flush()
    try:
        fd = out.fileno()
    except (OSError, ValueError, AttributeError):  # not a real file: redirect Python's only
        with contextlib.redirect_stdout(sys.stderr):
            yield out.buffer
        return
    recording = os.fdopen(os.dup(fd), "wb")
    saved = os.dup(fd)
    os.dup2(sys.stderr.fileno(), fd)  # prints of the target, even from C, go to stderr
    try:
        with recording:
            yield recording
    finally:
        out.flush()
        os.dup2(saved, fd)
        os.close(saved)


def _load_target(spec: str) -> Callable[..., Any]:
    module_name, colon, attribute = spec.partition(":")
    if not colon or not module_name or not attribute:
        raise CommandError(f"--target must look like module:function, not {spec!r}", 2)
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` does, for the console script too
    try:
        module = importlib.import_module(module_name)
    except (ImportError, TypeError) as exc:  # TypeError: a relative name (".mod")
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
        return json.loads(text, parse_constant=refuse_constant)
    except RecursionError:
        raise CommandError("--input is nested too deeply", 2) from None
    except json.JSONDecodeError as exc:
        raise CommandError(f"--input is not JSON: {exc.msg} (column {exc.colno})", 2) from None
    except ValueError as exc:
        raise CommandError(f"--input is not JSON: {exc}", 2) from None


def _replay(args: argparse.Namespace) -> int:
    if args.timeout is not None and not args.follow:
        raise CommandError("--timeout needs --follow", 2)
    if args.timeout is not None and args.file == "-":
        raise CommandError("--timeout does not apply to stdin (it waits for the writer)", 2)
    if args.max_line_bytes < 1:
        msg = f"--max-line-bytes must be a positive number of bytes, not {args.max_line_bytes}"
        raise CommandError(msg, 2)
    if args.timeout is not None and is_fifo(args.file):
        msg = "--timeout does not apply to a FIFO (opening and reading it wait for its writer)"
        raise CommandError(msg, 2)
    if args.timeout is not None and not args.timeout > 0:
        raise CommandError(f"--timeout must be a positive number of seconds, not {args.timeout}", 2)
    live = args.follow and not args.json
    out = _stdout()
    if args.file == "-":
        if sys.stdin is None:
            raise CommandError("stdin is closed")
        source: Union[str, IO[bytes]] = sys.stdin.buffer
    else:
        source = args.file
    try:
        if live:
            out.write("patches, as they stream:\n")
        recording = read_jsonl(
            source,
            require_end=not args.partial,
            follow=args.follow,
            timeout=args.timeout,
            max_line_bytes=args.max_line_bytes,
            on_record=(lambda record: _show_live(out, record)) if live else None,
        )
        if args.json:
            text = _safe_json(_state_text(recording))
        else:
            text = ("\n" if live else "") + format_tree(recording)
    except LogFileError as exc:
        missing = exc.reason == MISSING_END and not args.follow
        hint = " (--follow waits for it, --partial shows it)" if missing else ""
        raise CommandError(f"{exc}{hint}") from None
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise CommandError(f"can't read {args.file}: {exc.strerror or exc}") from None
    out.write(text)
    out.flush()
    return 0


def _view(args: argparse.Namespace) -> int:
    from ._viewer import page_html  # only the view command reads the page's assets

    if args.max_line_bytes < 1:
        msg = f"--max-line-bytes must be a positive number of bytes, not {args.max_line_bytes}"
        raise CommandError(msg, 2)
    out_name = args.output
    if out_name is None:
        if args.file == "-":
            raise CommandError("-o OUT.html is needed when the recording comes from stdin", 2)
        stem = args.file[:-6] if args.file.endswith(".jsonl") else args.file
        out_name = stem + ".html"
    source: Union[str, IO[bytes]]
    if args.file == "-":
        if sys.stdin is None:
            raise CommandError("stdin is closed")
        source = sys.stdin.buffer
    else:
        source = args.file
    try:
        recording = read_jsonl(source, require_end=False, max_line_bytes=args.max_line_bytes)
    except LogFileError as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"can't read {args.file}: {exc.strerror or exc}") from None
    page = page_html(recording, title=os.path.basename(args.file) if args.file != "-" else "stdin")
    if out_name == "-":
        _stdout().write(page)
        _stdout().flush()
        return 0
    try:
        with open(out_name, "w", encoding="utf-8") as stream:
            stream.write(page)
    except OSError as exc:
        raise CommandError(f"can't write {out_name}: {exc.strerror or exc}") from None
    runs = len(recording.state.get("logs", {})) if isinstance(recording.state, dict) else 0
    note = "" if recording.complete else " (incomplete: no end record)"
    _say(f"wrote {out_name}: {_count(runs, 'logged run')}{note}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    given = [name for name in ("file", "target", "redis") if getattr(args, name) is not None]
    if len(given) > 1:
        names = " and ".join("FILE.jsonl" if n == "file" else f"--{n}" for n in given)
        raise CommandError(f"serve takes one of FILE.jsonl, --target or --redis, not {names}", 2)
    if (args.redis is None) != (args.log_id is None):
        raise CommandError("--redis and --log-id go together", 2)
    if args.prefix is not None and args.redis is None:
        raise CommandError("--prefix needs --redis", 2)
    if args.target is None and args.input is not None:
        raise CommandError("--input needs --target", 2)
    if args.file is not None and args.redact:
        raise CommandError("--redact applies to --target (a recording is served as written)", 2)
    if not 0 <= args.port <= 65535:
        raise CommandError(f"--port must be 0 to 65535, not {args.port}", 2)
    if args.timeout is not None and args.file is None and args.redis is None:
        msg = "--timeout applies to FILE.jsonl or --redis (how long to wait for the run to appear)"
        raise CommandError(msg, 2)
    if args.timeout is not None and not args.timeout > 0:
        raise CommandError(f"--timeout must be a positive number of seconds, not {args.timeout}", 2)
    try:
        import uvicorn
    except ImportError:
        msg = "logstream serve needs uvicorn: pip install 'logstream[serve]'"
        raise CommandError(msg) from None
    if args.file is not None:
        _check_readable(args.file)
    from ._fanout import PositionedLog
    from ._serve import follow_into, viewer_app

    # A recording keeps one log id, so a page resumes across restarts of `serve FILE`; a
    # --target or demo run is a new run each start, with a fresh id, so a resume id from
    # before a restart is refused as foreign instead of splicing two runs.
    log = PositionedLog("run" if args.file is not None else None)
    source: LogSource = log
    appeared: Optional[Callable[[], bool]] = None  # whether the run is there to follow
    waiting = gave_up = ""
    if args.redis is not None:
        what = f"{args.log_id} from {args.redis}"
        source = _redis_source(args)
        appeared = _redis_log_exists(args)
        waiting = f"waiting for log {args.log_id} on {args.redis} (no such log yet)"
        gave_up = f"no log {args.log_id} on {args.redis} after {args.timeout or 0:g}s"
    elif args.file is not None:
        what = args.file
        appeared = functools.partial(os.path.exists, args.file)  # as follow_jsonl opens it
        waiting = f"waiting for {args.file} to appear (no such file yet)"
        gave_up = f"{args.file} did not appear within {args.timeout or 0:g}s"
        follow_into(log, args.file, on_error=lambda message: _say(f"logstream: error: {message}"))
    else:
        redact = SecretRedactor() if args.redact else None
        value = _parse_input(args.input)
        fields: list[EntryField] = ["parent_ids", "error"]  # the page nests and marks by them
        if args.target is None:
            what = "the demo agent"
            patches = demo_patches(delay=0.3, redact=redact, entry_fields=fields)
        else:
            what = args.target
            target = _load_target(args.target)
            patches = stream_log(target, value, redact=redact, entry_fields=fields)
        log.pump(patches)
    title = os.path.basename(args.file) if args.file is not None else what
    note: list[Optional[str]] = [None]  # what the page says while the run is not there yet
    app = viewer_app(source, title=title, waiting=lambda: note[0])
    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="logstream-serve", daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.02)
    if not server.started:
        raise CommandError(f"can't serve on {args.host}:{args.port} (see the message above)")
    port = server.servers[0].sockets[0].getsockname()[1] if server.servers else args.port
    _say(f"serving {what} at http://{args.host}:{port}/ (Ctrl-C to stop)")
    since: Optional[float] = None  # when the wait for the run began, while it lasts
    if appeared is not None and not appeared():
        since = time.monotonic()
        note[0] = waiting
        _say(f"logstream: {waiting}")
    try:
        while thread.is_alive():
            thread.join(0.5 if since is None else 0.05)
            if since is None or appeared is None or appeared():
                since = note[0] = None
            elif args.timeout is not None and time.monotonic() - since > args.timeout:
                raise CommandError(gave_up)
    finally:
        server.should_exit = True
        thread.join(5)
    return 0


def _redis_log_exists(args: argparse.Namespace) -> Callable[[], bool]:
    from .redis import DEFAULT_PREFIX, RedisLogs

    logs = RedisLogs(args.redis, prefix=DEFAULT_PREFIX if args.prefix is None else args.prefix)

    def exists() -> bool:
        try:
            return args.log_id in logs
        except LogStreamError as exc:
            raise CommandError(f"can't read {args.log_id} from {args.redis}: {exc}") from None

    return exists


def _check_readable(path: str) -> None:
    """Refuse, before serving, a file that is there but can't be read (a directory)."""
    if is_fifo(path) or not os.path.exists(path):
        return  # a FIFO opens once its writer does; a missing file is waited for
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise CommandError(f"can't read {path}: {exc.strerror or exc}") from None


def _redis_source(args: argparse.Namespace) -> LogSource:
    try:
        from .redis import DEFAULT_PREFIX, RedisSource
    except ImportError:
        msg = "logstream serve --redis needs redis: pip install 'logstream[redis]'"
        raise CommandError(msg) from None
    prefix = DEFAULT_PREFIX if args.prefix is None else args.prefix
    try:
        source = RedisSource(args.redis, args.log_id, prefix=prefix)
    except ConfigError as exc:
        raise CommandError(str(exc), 2) from None
    try:
        source.end_record()  # reaches the server once, so a wrong URL is said at once
    except LogStreamError as exc:
        raise CommandError(f"can't read {args.log_id} from {args.redis}: {exc}") from None
    return source


def _state_text(recording: Recording) -> str:
    """Return the final state as indented JSON, or say in one line that it is too deep."""
    try:
        return format_state(recording.state)
    except RecursionError:
        msg = (
            f"{recording.source}: the final state is nested too deeply to print as JSON; "
            "replay without --json prints its run tree"
        )
        raise CommandError(msg) from None


def _show_live(out: TextIO, record: Union[RunLogPatch, EndRecord]) -> None:
    if isinstance(record, RunLogPatch):
        buffer = io.StringIO()
        shown = [{**op, "path": printable(op["path"], 200)} for op in record.ops]
        write_ops(buffer, shown)
        out.write(_safe_text(buffer.getvalue()))
        out.flush()


_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""What a terminal must not get raw: controls (not tab or newline), line and bidi marks,
lone surrogates."""


def _safe_json(text: str) -> str:
    r"""Escape, as JSON ``\uXXXX``, the characters :data:`_UNSAFE` names (in strings only)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _safe_text(text: str) -> str:
    return _UNSAFE.sub(lambda m: ascii(m.group())[1:-1], text)


def format_tree(recording: Recording) -> str:
    """Return the run tree of ``recording`` as a table, one run a line.

    The root comes first. Runs whose entries carry ``parent_ids`` (the opt-in entry
    field) are nested under their nearest logged ancestor, two spaces a level, each
    after the runs started before it under the same parent; runs without it are listed
    one level under the root, in the order they started. Columns: name, type, status
    (``done``, ``error``, ``running``, ``unfinished``), duration, how many tokens (or
    chunks) the run streamed and, for a failed run whose entry (or the state, for the
    root) carries the ``error`` field, its error text. Text from the file is shown with
    control characters escaped.

    Args:
        recording: A recording, e.g. from :func:`~logstream._reader.read_jsonl`.

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
    root_error = state.get("error")
    if end is None:
        root_status = "running"
    else:
        root_status = "error" if end.error is not None or root_error is not None else "done"
    rows = [
        (
            _clean(state.get("name", "?")),
            _clean(state.get("type", "?")),
            root_status,
            "-",
            _streamed(state),
            _error_cell(root_error),
        )
    ]
    for key, entry in logs.items():
        if not isinstance(entry, dict):
            reason = f"the log entry {key!r} is not an object, it is {_kind(entry)}"
            raise LogFileError(recording.source, where, reason)
    for depth, key in _nested(logs):
        entry = logs[key]
        name = _clean(entry.get("name", key))
        label = name if key == entry.get("name") else f"{name} [{_clean(key)}]"
        error = entry.get("error")
        if entry.get("end_time") is not None:
            status = "done" if error is None else "error"
        else:
            status = "running" if end is None else "unfinished"
        rows.append(
            (
                "  " * depth + label,
                _clean(entry.get("type", "?")),
                status,
                _duration(entry.get("start_time"), entry.get("end_time")),
                _streamed(entry),
                _error_cell(error),
            )
        )
    header = ("run", "type", "status", "duration", "streamed", "error")
    shown = 6 if any(row[5] for row in rows) else 5
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(shown - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths)]
        lines.append("  ".join([*cells, row[shown - 1]]).rstrip())
    summary = f"{_count(len(recording.patches), 'patch')}, {_count(len(logs), 'logged run')}"
    if end is None:
        summary += "; incomplete: no end record"
    elif end.error is not None:
        summary += f"; the traced code raised {_clean(end.error, 200)}"
    return "\n".join([*lines, summary]) + "\n"


def _error_cell(error: Any) -> str:
    """Return the error column's text for an ``error`` field (empty when there is none)."""
    return "" if error is None else _clean(error, 200)


def _nested(logs: Mapping[str, Any]) -> list[tuple[int, str]]:
    """Return ``(depth, key)`` for every entry, parents before children (depth 1: the root's).

    Each entry goes under the nearest ancestor in its ``parent_ids`` (a list of strings)
    that has an entry of its own; without one, or without ``parent_ids``, under the root.
    Ids are matched as the file spells them. Iterative, so depth is not limited by the
    stack; an entry the walk cannot reach (ids that loop) is listed under the root.
    """
    by_id: dict[str, str] = {}
    for key, entry in logs.items():
        run_id = entry.get("id")
        if isinstance(run_id, str) and run_id not in by_id:
            by_id[run_id] = key
    children: dict[Optional[str], list[str]] = {}
    for key, entry in logs.items():
        parent: Optional[str] = None
        parent_ids = entry.get("parent_ids")
        if isinstance(parent_ids, list):
            for ancestor in reversed(parent_ids):
                found = by_id.get(ancestor) if isinstance(ancestor, str) else None
                if found is not None and found != key:
                    parent = found
                    break
        children.setdefault(parent, []).append(key)
    order: list[tuple[int, str]] = []
    seen: set[str] = set()
    stack = [(1, key) for key in reversed(children.get(None, []))]
    while stack:
        depth, key = stack.pop()
        if key in seen:
            continue
        seen.add(key)
        order.append((depth, key))
        stack.extend((depth + 1, child) for child in reversed(children.get(key, [])))
    order.extend((1, key) for key in logs if key not in seen)
    return order


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
    return printable(text, limit)


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
