"""The tracer's configuration: one typed, frozen object, and the keyword options it is built from.

Every entry point takes the same options under the same names: :class:`~logstream.Tracer`,
:func:`~logstream.stream_log` / :func:`~logstream.astream_log` and the native tracing API
take them as keywords (typed by :class:`TracerOptions`) or as a ready :class:`TracerConfig`;
only the LangChain-shaped adapter keeps LangChain's own keyword names (``_schema_format``)
and maps them onto this object. The six filter rules are the ones
:class:`~logstream._filters.FilterRules` names; the buffering options are checked by the
channel's own rules; nothing here is spelled twice.

Example:
    >>> config = TracerConfig.from_options(include_types=["llm"], schema_format="original")
    >>> config.schema_format, sorted(config.run_filter.include_types or ())
    ('original', ['llm'])
    >>> config.replace(auto_close=False).auto_close
    False
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Callable, Optional

from typing_extensions import Unpack

from ._emitter import EntryField, SchemaFormat, check_entry_fields, check_schema_format
from ._errors import ConfigError
from ._filters import ALWAYS_INCLUDE, RULE_NAMES, FilterRules, RunFilter
from ._model import Clock, IdFactory, utc_now
from ._processors import RunProcessor, check_processors
from ._stream import WhenFull, check_buffer_policy

__all__ = ["Redactor", "TracerConfig", "TracerOptions"]

Redactor = Callable[[Any], Any]
"""A callable that returns a masked copy of a value; see :func:`logstream.redact_secrets`."""


class TracerOptions(FilterRules, total=False):
    """The keyword options every entry point takes (all optional).

    Attributes:
        schema_format: ``"streaming_events"`` (entries carry ``inputs``) or ``"original"``
            (what ``Runnable.astream_log`` shows).
        auto_close: Close the stream when the root run ends.
        clock: Where start and end times come from; inject a fake for deterministic tests.
        id_factory: Where the ids of runs started without one come from.
        redact: Applied to inputs, outputs, metadata and streamed values before they are
            recorded or enter any patch.
        max_buffer: The most patches that may wait for the consumer; ``None`` for no limit.
        when_full: With ``max_buffer``: ``"block"`` (wait for the consumer) or ``"raise"``.
        block_timeout: With ``"block"``, the most seconds an event waits for room.
        processors: Run processors that see every run's frozen record on start and end.
        entry_fields: Opt-in fields of each log entry (off by default, so the state is
            LangChain's): ``"parent_ids"`` (the run's ancestors' ids, root first) and
            ``"error"`` (``None``, then ``"Type: message"`` when the run fails; a failed
            root puts it in a top-level ``error`` key).
    """

    schema_format: SchemaFormat
    auto_close: bool
    clock: Optional[Clock]
    id_factory: Optional[IdFactory]
    redact: Optional[Redactor]
    max_buffer: Optional[int]
    when_full: Optional[WhenFull]
    block_timeout: Optional[float]
    processors: Optional[Sequence[RunProcessor]]
    entry_fields: Optional[Sequence[str]]


@dataclass(frozen=True)
class TracerConfig:
    """How one tracer records runs and streams their log; frozen, so it can be shared.

    Build it with :meth:`from_options` (keyword options, checked) or directly.

    Attributes:
        run_filter: Which runs get a ``/logs`` entry.
        schema_format: How inputs and outputs are shaped.
        auto_close: Whether the stream closes when the root run ends.
        clock: Where start and end times come from.
        id_factory: Where the ids of runs started without one come from.
        redact: What masks values before they are recorded, or ``None``.
        max_buffer: The most patches that may wait for the consumer, or ``None``.
        when_full: What an event does when the buffer is full: ``"block"`` or ``"raise"``.
        block_timeout: With ``"block"``, the most seconds an event waits, or ``None``.
        processors: Run processors, called in this order.
        entry_fields: The opt-in entry fields, in ``("parent_ids", "error")`` order.
    """

    run_filter: RunFilter = ALWAYS_INCLUDE
    schema_format: SchemaFormat = "streaming_events"
    auto_close: bool = True
    clock: Clock = utc_now
    id_factory: IdFactory = uuid.uuid4
    redact: Optional[Redactor] = None
    max_buffer: Optional[int] = None
    when_full: WhenFull = "block"
    block_timeout: Optional[float] = None
    processors: tuple[RunProcessor, ...] = field(default=())
    entry_fields: tuple[EntryField, ...] = ()

    def __post_init__(self) -> None:
        """Check the options that have rules of their own.

        Raises:
            ConfigError: An option is of the wrong type or out of range (also a
                ``TypeError`` or ``ValueError``, as the option's own check says).
        """
        if self.clock is None:  # None means "the default", as the keyword always has
            object.__setattr__(self, "clock", utc_now)
        if self.id_factory is None:
            object.__setattr__(self, "id_factory", uuid.uuid4)
        if not isinstance(self.auto_close, bool):
            msg = f"auto_close must be True or False, got {self.auto_close!r}"
            raise ConfigError(msg)
        check_schema_format(self.schema_format)
        policy = check_buffer_policy(self.max_buffer, self.when_full, self.block_timeout)
        object.__setattr__(self, "when_full", policy)
        object.__setattr__(self, "processors", check_processors(self.processors))
        object.__setattr__(self, "entry_fields", check_entry_fields(self.entry_fields))
        if not isinstance(self.run_filter, RunFilter):
            msg = f"run_filter must be a RunFilter, got {type(self.run_filter).__name__}"
            raise ConfigError(msg)
        for name in ("clock", "id_factory"):
            if not callable(getattr(self, name)):
                msg = f"{name} must be a zero-argument callable, got {getattr(self, name)!r}"
                raise ConfigError(msg)
        if self.redact is not None and not callable(self.redact):
            msg = f"redact must be a callable or None, got {self.redact!r}"
            raise ConfigError(msg)

    @classmethod
    def from_options(cls, **options: Unpack[TracerOptions]) -> TracerConfig:
        """Build a configuration from keyword options; absent ones keep their defaults.

        Raises:
            ConfigError: An option is unknown, or of the wrong type or out of range.
            FilterConfigError: A filter rule is a bare string (also a ``TypeError``).
            SchemaFormatError: ``schema_format`` is unknown (also a ``ValueError``).
            EntryFieldsError: ``entry_fields`` is a bare string or names an unknown field.
        """
        return _DEFAULT.replace(**options)

    def replace(self, **options: Unpack[TracerOptions]) -> TracerConfig:
        """Return a copy with some keyword options changed (filter rules one by one).

        Raises:
            ConfigError: An option is unknown, or of the wrong type or out of range.
            FilterConfigError: A filter rule is a bare string (also a ``TypeError``).
        """
        changes: dict[str, Any] = dict(options)
        unknown = sorted(set(changes) - _OPTION_NAMES)
        if unknown:
            expected = ", ".join(sorted(_OPTION_NAMES))
            msg = (
                f"unknown tracer option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}: expected some of {expected}"
            )
            raise ConfigError(msg)
        rules = {name: changes.pop(name) for name in RULE_NAMES if name in changes}
        if rules:
            changes["run_filter"] = self.run_filter.with_rules(**rules)
        if "when_full" in changes and changes["when_full"] is None:
            changes["when_full"] = "block"
        if "processors" in changes and changes["processors"] is None:
            changes["processors"] = ()
        return _replace(self, changes)


def _replace(config: TracerConfig, changes: dict[str, Any]) -> TracerConfig:
    values = {f.name: getattr(config, f.name) for f in fields(config)}
    values.update(changes)
    return TracerConfig(**values)


_DEFAULT = TracerConfig()
_OPTION_NAMES = frozenset(RULE_NAMES) | (
    frozenset(TracerOptions.__annotations__) - frozenset(FilterRules.__annotations__)
)
