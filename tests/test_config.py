"""Tests for logstream._config: one typed configuration, built from keyword options."""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any

import pytest

from logstream import (
    ConfigError,
    FilterConfigError,
    LogStreamCallbackHandler,
    SchemaFormatError,
    Tracer,
    TracerConfig,
    astream_log,
    stream_log,
    traced,
)
from logstream._config import TracerOptions
from logstream._filters import RULE_NAMES, FilterRules, RunFilter
from logstream.testing import FakeClock, SequentialIds


class TestTracerConfig:
    def test_defaults_are_langchain_handler_defaults(self) -> None:
        """The default config streams everything, unbounded, in the streaming_events format."""
        config = TracerConfig()
        assert config.run_filter.includes_everything
        assert config.schema_format == "streaming_events"
        assert config.auto_close is True
        assert config.max_buffer is None and config.when_full == "block"
        assert config.processors == ()

    def test_from_options_compiles_filter_rules(self) -> None:
        """Filter rules given as lists become the config's compiled RunFilter."""
        config = TracerConfig.from_options(include_types=["llm"], exclude_tags=["x"])
        assert config.run_filter == RunFilter.from_rules(include_types=["llm"], exclude_tags=["x"])

    def test_replace_changes_one_rule_and_keeps_the_others(self) -> None:
        """replace() with one rule keeps the rules it was not given."""
        config = TracerConfig.from_options(include_types=["llm"], exclude_names=["a"])
        changed = config.replace(exclude_names=None)
        assert changed.run_filter.include_types == frozenset({"llm"})
        assert changed.run_filter.exclude_names is None
        assert config.run_filter.exclude_names == frozenset({"a"})  # frozen: unchanged

    def test_config_is_frozen(self) -> None:
        """A config cannot be changed in place."""
        with pytest.raises(dataclasses.FrozenInstanceError):
            TracerConfig().auto_close = False  # type: ignore[misc]

    def test_unknown_option_is_a_config_error_naming_it(self) -> None:
        """An unknown keyword names itself and is a TypeError as well."""
        with pytest.raises(ConfigError, match="'include_name'") as info:
            TracerConfig.from_options(include_name=["x"])  # type: ignore[call-arg]
        assert isinstance(info.value, TypeError)

    @pytest.mark.parametrize(
        ("options", "error", "match"),
        [
            ({"schema_format": "new"}, SchemaFormatError, "invalid schema format 'new'"),
            ({"include_tags": "a"}, FilterConfigError, "write include_tags=\\['a'\\]"),
            ({"max_buffer": 0}, ConfigError, "max_buffer must be at least 1"),
            ({"when_full": "drop"}, ConfigError, "invalid when_full 'drop'"),
            ({"block_timeout": -1.0}, ConfigError, "must not be negative"),
            ({"clock": 3}, ConfigError, "clock must be a zero-argument callable"),
            ({"redact": "yes"}, ConfigError, "redact must be a callable"),
            ({"processors": [object()]}, ConfigError, "has no on_start or on_end method"),
            ({"processors": "p"}, ConfigError, "processors must be a sequence"),
        ],
    )
    def test_bad_option_is_a_config_error(self, options: Any, error: type, match: str) -> None:
        """Each bad option raises a ConfigError subclass that says what to fix."""
        with pytest.raises(error, match=match) as info:
            TracerConfig.from_options(**options)
        assert isinstance(info.value, ConfigError)
        assert isinstance(info.value, (TypeError, ValueError))

    def test_none_means_default_for_clock_and_ids(self) -> None:
        """clock=None and id_factory=None keep the defaults, as the keywords always did."""
        config = TracerConfig.from_options(clock=None, id_factory=None, when_full=None)
        assert config == TracerConfig()


class TestOneListOfOptions:
    def test_filter_rule_names_are_the_typed_dict_and_the_filter_fields(self) -> None:
        """The six rule names are FilterRules' keys and RunFilter's fields, in one order."""
        assert tuple(FilterRules.__annotations__) == RULE_NAMES
        assert tuple(f.name for f in dataclasses.fields(RunFilter)) == RULE_NAMES

    def test_every_option_but_the_filter_is_a_config_field(self) -> None:
        """Each non-filter option of TracerOptions is a field of TracerConfig of that name."""
        fields = {f.name for f in dataclasses.fields(TracerConfig)}
        options = set(TracerOptions.__annotations__) - set(RULE_NAMES)
        assert options <= fields
        assert fields - options == {"run_filter"}

    @pytest.mark.parametrize("entry", [stream_log, astream_log])
    def test_stream_functions_take_typed_options(self, entry: Any) -> None:
        """stream_log and astream_log take **options typed by TracerOptions (no bare Any)."""
        parameters = inspect.signature(entry).parameters
        assert parameters["options"].kind is inspect.Parameter.VAR_KEYWORD
        assert "TracerOptions" in str(parameters["options"].annotation)

    def test_tracer_takes_a_config_or_options(self) -> None:
        """Tracer(config=...) and Tracer(**options) make the same configuration."""
        clock, ids = FakeClock(), SequentialIds()
        by_config = Tracer(TracerConfig.from_options(clock=clock, id_factory=ids, auto_close=False))
        by_options = Tracer(clock=clock, id_factory=ids, auto_close=False)
        assert by_config.config == by_options.config

    def test_tracer_options_override_a_given_config(self) -> None:
        """Options given beside a config replace its fields."""
        tracer = Tracer(TracerConfig(auto_close=False), schema_format="original")
        assert tracer.config.auto_close is False and tracer.config.schema_format == "original"

    def test_handler_maps_langchain_names_onto_the_config(self) -> None:
        """The handler's _schema_format and include_* keywords land in its tracer's config."""
        handler = LogStreamCallbackHandler(include_names=["m"], _schema_format="original")
        assert handler.config.schema_format == "original"
        assert handler.config.run_filter.include_names == frozenset({"m"})


class TestReviewRegressions:
    """Cases an adversarial review found; each failed before its fix."""

    def test_none_clock_means_the_default_directly_too(self) -> None:
        """TracerConfig(clock=None) is the default clock, as from_options(clock=None) is."""
        assert TracerConfig(clock=None) == TracerConfig()  # type: ignore[arg-type]

    def test_auto_close_must_be_a_bool(self) -> None:
        """auto_close="no" is refused instead of being taken as true."""
        with pytest.raises(ConfigError, match="auto_close must be True or False"):
            Tracer(auto_close="no")  # type: ignore[arg-type]

    def test_stream_log_refuses_auto_close_false(self) -> None:
        """stream_log ends with the root run: auto_close=False is a ConfigError, not ignored."""
        with pytest.raises(ConfigError, match="auto_close=False does not apply"):
            list(stream_log(lambda x: x, 1, auto_close=False))
        with pytest.raises(ConfigError, match="auto_close=False does not apply"):
            list(stream_log(lambda x: x, 1, config=TracerConfig(auto_close=False)))

    def test_stream_log_uses_a_given_config_as_it_is(self) -> None:
        """A config given to stream_log keeps its own schema format (documented)."""

        @traced(run_type="tool")
        def tool(x: int) -> int:
            return x

        def entry(**kwargs: Any) -> dict[str, Any]:
            patches = list(stream_log(lambda x: tool(x), 1, **kwargs))
            (op,) = [op for p in patches for op in p.ops if op["path"] == "/logs/tool"]  # type: ignore[union-attr]
            return op["value"]  # type: ignore[no-any-return]

        assert "inputs" in entry(config=TracerConfig())  # streaming_events, as configured
        assert "inputs" not in entry()  # astream_log's "original" by default
