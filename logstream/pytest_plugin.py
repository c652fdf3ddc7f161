"""The pytest plugin: fixtures that give a test a ready handler, tracer and recorder.

Installing logstream registers it (the ``pytest11`` entry point ``logstream``), so a test
just names the fixtures it wants; ``-p no:logstream`` turns it off. Every fixture is
fresh per test, with a :class:`~logstream.testing.FakeClock` and
:class:`~logstream.testing.SequentialIds`, so ids and times repeat from run to run.

* ``logstream_clock``: the :class:`~logstream.testing.FakeClock` the others use.
* ``logstream_ids``: the :class:`~logstream.testing.SequentialIds` the others use; call
  it to mint the run ids a callback-driven test reports.
* ``logstream_handler``: a :class:`~logstream.LogStreamCallbackHandler` on the clock.
* ``logstream_tracer``: a :class:`~logstream.Tracer` on the clock and the ids, for
  ``trace(..., tracer=...)`` and ``start_run``/``end_run``.
* ``logstream_recorder``: a :class:`~logstream.testing.Recorder` that drains
  ``logstream_tracer`` if the test uses it (and not the handler), else
  ``logstream_handler``.
* ``logstream_stream_log``: :func:`~logstream.stream_log` on the clock and the ids, run
  to the end: ``logstream_stream_log(target, input, **options)`` returns a
  :class:`~logstream.testing.Recorder` of its patches.
* ``logstream_options``: the tracer options (:class:`~logstream.TracerOptions`: filters,
  ``schema_format``, ``entry_fields``, ``redact``, ...) the handler, tracer and
  ``stream_log`` fixtures are made with. Set them per test with the marker
  ``@pytest.mark.logstream(entry_fields=["parent_ids", "error"], include_types=["tool"])``,
  or override or parametrize the ``logstream_options`` fixture itself; ``{}`` by default.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest

from ._callbacks import LogStreamCallbackHandler
from ._streaming import stream_log
from ._tracer import Tracer
from .testing import FakeClock, Recorder, SequentialIds

__all__ = [
    "logstream_clock",
    "logstream_handler",
    "logstream_ids",
    "logstream_options",
    "logstream_recorder",
    "logstream_stream_log",
    "logstream_tracer",
]

StreamLogRunner = Callable[..., Recorder]
"""``(target, input, **options) -> Recorder``: runs :func:`~logstream.stream_log` to its end."""


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``logstream`` marker."""
    config.addinivalue_line(
        "markers",
        "logstream(**options): tracer options (filters, schema_format, entry_fields, ...) "
        "for the logstream_handler, logstream_tracer and logstream_stream_log fixtures",
    )


@pytest.fixture
def logstream_options(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The tracer options of the test's ``@pytest.mark.logstream(...)`` marker, else ``{}``."""
    marker = request.node.get_closest_marker("logstream")
    if marker is None:
        return {}
    if marker.args:
        msg = "@pytest.mark.logstream takes keyword options only, e.g. entry_fields=['error']"
        raise pytest.UsageError(msg)
    return dict(marker.kwargs)


@pytest.fixture
def logstream_clock() -> FakeClock:
    """A fake clock: 2026-01-01T00:00:00Z, then 1 ms later at each read."""
    return FakeClock()


@pytest.fixture
def logstream_ids() -> SequentialIds:
    """Deterministic run ids: ``UUID(int=1)``, ``UUID(int=2)``, ... one per call."""
    return SequentialIds()


@pytest.fixture
def logstream_handler(
    logstream_clock: FakeClock, logstream_options: dict[str, Any]
) -> LogStreamCallbackHandler:
    """A callback handler on ``logstream_clock`` with ``logstream_options``.

    ``schema_format`` is passed as the handler's ``_schema_format``; ``id_factory`` is
    left out (a callback handler takes its run ids from its caller).
    """
    options = dict(logstream_options)
    if "schema_format" in options:
        options["_schema_format"] = options.pop("schema_format")
    options.pop("id_factory", None)
    options.setdefault("clock", logstream_clock)
    return LogStreamCallbackHandler(**options)


@pytest.fixture
def logstream_tracer(
    logstream_clock: FakeClock, logstream_ids: SequentialIds, logstream_options: dict[str, Any]
) -> Tracer:
    """A tracer on ``logstream_clock`` and ``logstream_ids`` with ``logstream_options``."""
    options = dict(logstream_options)
    options.setdefault("clock", logstream_clock)
    options.setdefault("id_factory", logstream_ids)
    return Tracer(**options)


@pytest.fixture
def logstream_recorder(request: pytest.FixtureRequest) -> Recorder:
    """A recorder draining ``logstream_tracer`` if the test uses only it, else the handler.

    Raises:
        pytest.UsageError: The test uses both the handler and the tracer fixtures: which
            one to record is then the test's choice (``Recorder(logstream_tracer)``).
    """
    used = set(request.fixturenames)
    if {"logstream_handler", "logstream_tracer"} <= used:
        msg = (
            "logstream_recorder: the test uses both logstream_handler and logstream_tracer; "
            "record the one you mean with Recorder(logstream_handler) or "
            "Recorder(logstream_tracer)"
        )
        raise pytest.UsageError(msg)
    name = "logstream_tracer" if "logstream_tracer" in used else "logstream_handler"
    source: Any = request.getfixturevalue(name)
    return Recorder(source)


@pytest.fixture
def logstream_stream_log(
    logstream_clock: FakeClock, logstream_ids: SequentialIds, logstream_options: dict[str, Any]
) -> StreamLogRunner:
    """``stream_log`` on the fake clock and ids, run to its end, as a :class:`Recorder`.

    Call it as ``logstream_stream_log(target, input, **options)`` with the options of
    :func:`~logstream.stream_log` (``clock`` and ``id_factory`` are set unless given);
    ``logstream_options`` fill in the options not given.
    """

    def run(target: Callable[..., Any], input: Any, **options: Any) -> Recorder:
        options = {**logstream_options, **options}
        options.setdefault("clock", logstream_clock)
        options.setdefault("id_factory", logstream_ids)
        return Recorder().extend(stream_log(target, input, **options))

    return run
