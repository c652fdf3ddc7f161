"""logstream: a framework-free run-log tracer that streams RFC 6902 JSON Patch ops.

It watches a tree of runs (chains, LLM and chat-model calls, tools, retrievers, custom
steps) and streams the ops that rebuild a :class:`RunState` on the other side, as
LangChain's ``LogStreamCallbackHandler`` does, without LangChain.

``__all__`` below is the public API. Modules whose names start with ``_`` are internal;
``logstream.testing``, ``logstream.langchain``, ``logstream.pytest_plugin``,
``logstream.asgi``, ``logstream.agui`` and the optional ``logstream.redis`` and
``logstream.otel`` (extras ``redis`` and ``otel``) are public modules of their own.
"""

from ._callbacks import LogStreamCallbackHandler
from ._config import TracerConfig, TracerOptions
from ._errors import (
    BufferFullError,
    ConfigError,
    ContextLostError,
    DataError,
    DuplicateRunError,
    EntryFieldsError,
    FilterConfigError,
    ForeignResumeIdError,
    FutureResumeIdError,
    LangChainVersionError,
    LogFileError,
    LogMismatchError,
    LogStreamError,
    MalformedResumeIdError,
    NotAPatchError,
    PatchApplyError,
    ReadOptionError,
    RedactionConfigError,
    RedisUnavailableError,
    ResumeError,
    RunArgumentError,
    RunTypeError,
    SchemaFormatError,
    ScopeError,
    SerializeOptionError,
    SinkClosedError,
    SinkTargetError,
    StaleResumeIdError,
    StreamConflictError,
    SubscriberLagError,
    UnknownRunError,
    UsageError,
)
from ._events import EventStream, StreamEvent, astream_events, stream_events
from ._fanout import PositionedLog
from ._filters import ALWAYS_INCLUDE, FilterRules, RunFilter
from ._model import RunEvent, RunRecord
from ._patches import JsonPatchOp, LogEntry, RunLog, RunLogPatch, RunState
from ._processors import ProcessorStats, RunProcessor
from ._reader import EndRecord, Recording, follow_jsonl, read_jsonl
from ._redact import SecretRedactor, redact_secrets
from ._serialize import dumps
from ._sinks import JsonLinesSink, SseSink, asse_frames, sse_frames
from ._stream import BufferStats
from ._streaming import astream_log, stream_log
from ._tracer import Tracer
from ._tracing import (
    ContextThread,
    ContextThreadPoolExecutor,
    RunScope,
    bind_context,
    current_run,
    orphan_runs,
    run_in_executor,
    set_strict_context,
    trace,
    traced,
)
from ._wire import Frame, LogEnd, LogSource

__version__ = "0.1.0"

__all__ = [
    "ALWAYS_INCLUDE",
    "BufferFullError",
    "BufferStats",
    "ConfigError",
    "ContextLostError",
    "ContextThread",
    "ContextThreadPoolExecutor",
    "DataError",
    "DuplicateRunError",
    "EndRecord",
    "EntryFieldsError",
    "EventStream",
    "FilterConfigError",
    "FilterRules",
    "ForeignResumeIdError",
    "Frame",
    "FutureResumeIdError",
    "JsonLinesSink",
    "JsonPatchOp",
    "LangChainVersionError",
    "LogEnd",
    "LogEntry",
    "LogFileError",
    "LogMismatchError",
    "LogSource",
    "LogStreamCallbackHandler",
    "LogStreamError",
    "MalformedResumeIdError",
    "NotAPatchError",
    "PatchApplyError",
    "PositionedLog",
    "ProcessorStats",
    "ReadOptionError",
    "Recording",
    "RedactionConfigError",
    "RedisUnavailableError",
    "ResumeError",
    "RunArgumentError",
    "RunEvent",
    "RunFilter",
    "RunLog",
    "RunLogPatch",
    "RunProcessor",
    "RunRecord",
    "RunScope",
    "RunState",
    "RunTypeError",
    "SchemaFormatError",
    "ScopeError",
    "SecretRedactor",
    "SerializeOptionError",
    "SinkClosedError",
    "SinkTargetError",
    "SseSink",
    "StaleResumeIdError",
    "StreamConflictError",
    "StreamEvent",
    "SubscriberLagError",
    "Tracer",
    "TracerConfig",
    "TracerOptions",
    "UnknownRunError",
    "UsageError",
    "__version__",
    "asse_frames",
    "astream_events",
    "astream_log",
    "bind_context",
    "current_run",
    "dumps",
    "follow_jsonl",
    "orphan_runs",
    "read_jsonl",
    "redact_secrets",
    "run_in_executor",
    "set_strict_context",
    "sse_frames",
    "stream_events",
    "stream_log",
    "trace",
    "traced",
]
