"""logstream: a framework-free run-log tracer that streams RFC 6902 JSON Patch ops.

It watches a tree of runs (chains, LLM and chat-model calls, tools, retrievers, custom
steps) and streams the ops that rebuild a :class:`RunState` on the other side, as
LangChain's ``LogStreamCallbackHandler`` does, without LangChain.
"""

from .callbacks import LogStreamCallbackHandler
from .config import TracerConfig, TracerOptions
from .emitter import PatchEmitter
from .errors import (
    BufferFullError,
    ConfigError,
    DataError,
    DuplicateRunError,
    FilterConfigError,
    LangChainVersionError,
    LogFileError,
    LogMismatchError,
    LogStreamError,
    NotAPatchError,
    PatchApplyError,
    ReadOptionError,
    RedactionConfigError,
    RunArgumentError,
    RunTypeError,
    SchemaFormatError,
    ScopeError,
    SerializeOptionError,
    SinkClosedError,
    SinkTargetError,
    UnknownRunError,
    UsageError,
)
from .filters import ALWAYS_INCLUDE, RunFilter
from .keys import KeyAllocator, escape_key
from .model import Run, RunEvent, RunRecord, RunTree
from .patches import JsonPatchOp, LogEntry, RunLog, RunLogPatch, RunState
from .processors import ProcessorStats, RunProcessor
from .reader import EndRecord, Recording, follow_jsonl, read_jsonl
from .redact import SecretRedactor, redact_secrets
from .serialize import dumps
from .sinks import JsonLinesSink, SseSink, asse_frames, sse_frames
from .stream import BufferStats, PatchChannel
from .streaming import astream_log, stream_log
from .tracer import Tracer
from .tracing import (
    ContextThreadPoolExecutor,
    RunScope,
    bind_context,
    current_run,
    trace,
    traced,
)

__version__ = "0.1.0"

__all__ = [
    "ALWAYS_INCLUDE",
    "BufferFullError",
    "BufferStats",
    "ConfigError",
    "ContextThreadPoolExecutor",
    "DataError",
    "DuplicateRunError",
    "EndRecord",
    "FilterConfigError",
    "JsonLinesSink",
    "JsonPatchOp",
    "KeyAllocator",
    "LangChainVersionError",
    "LogEntry",
    "LogFileError",
    "LogMismatchError",
    "LogStreamCallbackHandler",
    "LogStreamError",
    "NotAPatchError",
    "PatchApplyError",
    "PatchChannel",
    "PatchEmitter",
    "ProcessorStats",
    "ReadOptionError",
    "Recording",
    "RedactionConfigError",
    "Run",
    "RunArgumentError",
    "RunEvent",
    "RunFilter",
    "RunLog",
    "RunLogPatch",
    "RunProcessor",
    "RunRecord",
    "RunScope",
    "RunState",
    "RunTree",
    "RunTypeError",
    "SchemaFormatError",
    "ScopeError",
    "SecretRedactor",
    "SerializeOptionError",
    "SinkClosedError",
    "SinkTargetError",
    "SseSink",
    "Tracer",
    "TracerConfig",
    "TracerOptions",
    "UnknownRunError",
    "UsageError",
    "__version__",
    "asse_frames",
    "astream_log",
    "bind_context",
    "current_run",
    "dumps",
    "escape_key",
    "follow_jsonl",
    "read_jsonl",
    "redact_secrets",
    "sse_frames",
    "stream_log",
    "trace",
    "traced",
]
