"""Tests for the testing kit's nesting and error assertions and the option-taking fixtures."""

from __future__ import annotations

import re
from typing import Any

import pytest

from logstream import RunLogPatch, Tracer, trace
from logstream.testing import (
    Normalizer,
    Recorder,
    assert_errors,
    assert_run_tree,
    failed_runs,
    run_parents,
    run_tree,
)

pytest_plugins = ["pytester"]

BOTH = ["parent_ids", "error"]


def agent(tracer: Tracer) -> None:
    """agent > [model, sub > [model, calc (fails, caught)]]."""
    with trace("agent", tracer=tracer):
        with trace("model", "llm", tracer=tracer):
            pass
        with trace("sub", tracer=tracer):
            with trace("model", "llm", tracer=tracer):
                pass
            try:
                with trace("calc", "tool", tracer=tracer):
                    1 / 0  # noqa: B018
            except ZeroDivisionError:
                pass


class TestRunTree:
    def test_tree_by_name(self) -> None:
        """run_tree rebuilds the nesting by name from parent_ids alone."""
        tracer = Tracer(entry_fields=BOTH)
        agent(tracer)
        assert run_tree(list(tracer)) == {"agent": {"model": {}, "sub": {"model": {}, "calc": {}}}}

    def test_parents_by_key(self) -> None:
        """run_parents maps each log key to its logged parent's key (None under the root)."""
        recorder = Recorder(Tracer(entry_fields=["parent_ids"]))
        agent(recorder.source)  # type: ignore[arg-type]
        assert run_parents(recorder) == {
            "model": None,
            "sub": None,
            "model:2": "sub",
            "calc": "sub",
        }

    def test_repeated_sibling_names_use_keys(self) -> None:
        """Two siblings with one name are told apart by the later one's log key."""
        tracer = Tracer(entry_fields=["parent_ids"])
        with trace("agent", tracer=tracer):
            for _ in range(2):
                with trace("model", "llm", tracer=tracer):
                    pass
        assert run_tree(list(tracer)) == {"agent": {"model": {}, "model:2": {}}}

    def test_sources_agree(self) -> None:
        """Patches, a flat op list, a RunLog and a state give the same tree."""
        tracer = Tracer(entry_fields=["parent_ids"])
        agent(tracer)
        patches = list(tracer)
        ops = [op for p in patches for op in p.ops]
        log = RunLogPatch() + RunLogPatch(*ops)
        trees = [run_tree(patches), run_tree(ops), run_tree(log), run_tree(log.state)]
        assert all(tree == trees[0] for tree in trees)

    def test_without_the_field_says_how(self) -> None:
        """Without parent_ids the assertion says to turn the entry field on."""
        tracer = Tracer()
        agent(tracer)
        with pytest.raises(AssertionError, match=r"entry_fields=\['parent_ids'\]"):
            run_tree(list(tracer))

    def test_assert_run_tree_passes_in_any_sibling_order(self) -> None:
        """assert_run_tree ignores the order of siblings."""
        tracer = Tracer(entry_fields=["parent_ids"])
        agent(tracer)
        assert_run_tree(list(tracer), {"agent": {"sub": {"calc": {}, "model": {}}, "model": {}}})

    def test_assert_run_tree_failure_shows_both_trees(self) -> None:
        """A wrong tree fails with both trees, indented."""
        tracer = Tracer(entry_fields=["parent_ids"])
        agent(tracer)
        with pytest.raises(AssertionError) as caught:
            assert_run_tree(list(tracer), {"agent": {"model": {}, "calc": {}}})
        text = str(caught.value)
        assert "expected:" in text
        assert "got:" in text
        assert "\n        calc" in text  # under sub, under agent in the "got" tree


class TestErrors:
    def test_failed_runs(self) -> None:
        """failed_runs lists each failed run by key, the root under None."""
        tracer = Tracer(entry_fields=["error"])
        with pytest.raises(ZeroDivisionError):
            with trace("root", tracer=tracer), trace("calc", "tool", tracer=tracer):
                1 / 0  # noqa: B018
        assert failed_runs(list(tracer)) == {
            "calc": "ZeroDivisionError: division by zero",
            None: "ZeroDivisionError: division by zero",
        }

    def test_assert_errors_passes(self) -> None:
        """assert_errors accepts exact text and patterns."""
        tracer = Tracer(entry_fields=BOTH)
        agent(tracer)
        patches = list(tracer)
        assert_errors(patches, {"calc": "ZeroDivisionError: division by zero"})
        assert_errors(patches, {"calc": re.compile(r"^ZeroDivisionError")})

    def test_assert_errors_names_each_difference(self) -> None:
        """An unexpected, a missing and a different error are each named."""
        tracer = Tracer(entry_fields=BOTH)
        agent(tracer)
        with pytest.raises(AssertionError) as caught:
            assert_errors(list(tracer), {"model": "ValueError: x"}, root="KeyError")
        text = str(caught.value)
        assert "run 'model': expected to fail" in text
        assert "the root: expected to fail" in text
        assert "run 'calc': failed unexpectedly" in text

    def test_assert_errors_wrong_text(self) -> None:
        """Other text for a failed run is shown with what was expected."""
        tracer = Tracer(entry_fields=BOTH)
        agent(tracer)
        with pytest.raises(AssertionError, match="expected error 'ValueError: x', got"):
            assert_errors(list(tracer), {"calc": "ValueError: x"})

    def test_without_the_field_says_how(self) -> None:
        """Without the error field the assertion says to turn it on."""
        tracer = Tracer()
        agent(tracer)
        with pytest.raises(AssertionError, match=r"entry_fields=\['error'\]"):
            failed_runs(list(tracer))


class TestNormalizerAcrossCalls:
    def test_one_numbering_across_patches_and_state(self) -> None:
        """One Normalizer gives a run the same placeholder in its ops, its state and parent_ids."""
        tracer = Tracer(entry_fields=["parent_ids"])
        agent(tracer)
        patches = list(tracer)
        normalizer = Normalizer()
        ops = normalizer([op for p in patches for op in p.ops])
        state = normalizer(run_parents_state(patches))
        root_id = state["id"]
        assert ops[0]["value"]["id"] == root_id
        assert state["logs"]["calc"]["parent_ids"][0] == root_id
        assert state["logs"]["calc"]["parent_ids"][1] == state["logs"]["sub"]["id"]

    def test_two_runs_normalize_alike(self) -> None:
        """The same program traced twice (fresh random ids) normalizes to the same state."""
        first, second = Tracer(entry_fields=BOTH), Tracer(entry_fields=BOTH)
        agent(first)
        agent(second)
        a = Normalizer()(run_parents_state(list(first)))
        b = Normalizer()(run_parents_state(list(second)))
        for state in (a, b):
            for entry in state["logs"].values():
                entry.pop("start_time"), entry.pop("end_time")
        assert a == b


def run_parents_state(patches: list[RunLogPatch]) -> Any:
    """Return the state the patches build."""
    return (RunLogPatch() + RunLogPatch(*[op for p in patches for op in p.ops])).state


class TestFixtureOptions:
    def test_marker_options_reach_every_fixture(self, pytester: pytest.Pytester) -> None:
        """@pytest.mark.logstream(...) configures the handler, tracer and stream_log fixtures."""
        pytester.makepyfile(
            """
            import pytest
            from logstream import trace
            from logstream.testing import assert_errors, assert_run_tree

            OPTIONS = dict(entry_fields=["parent_ids", "error"], schema_format="original")

            @pytest.mark.logstream(**OPTIONS)
            def test_tracer(logstream_tracer, logstream_recorder):
                with trace("agent", tracer=logstream_tracer):
                    with trace("tool", "tool"):
                        pass
                assert logstream_tracer.schema_format == "original"
                assert_run_tree(logstream_recorder, {"agent": {"tool": {}}})

            @pytest.mark.logstream(**OPTIONS, include_names=["calc"])
            def test_handler(logstream_handler, logstream_recorder, logstream_ids):
                root, calc, other = logstream_ids.take(3)
                h = logstream_handler
                h.on_chain_start({}, {}, run_id=root, name="agent")
                h.on_tool_start({}, "x", run_id=other, parent_run_id=root, name="other")
                h.on_tool_start({}, "1/0", run_id=calc, parent_run_id=root, name="calc")
                h.on_tool_error(ZeroDivisionError("division by zero"), run_id=calc)
                assert logstream_recorder.keys == ["calc"]
                assert_errors(logstream_recorder, {"calc": "ZeroDivisionError: division by zero"})

            @pytest.mark.logstream(entry_fields=["error"])
            def test_stream_log(logstream_stream_log):
                def target(x):
                    try:
                        with trace("calc", "tool"):
                            raise KeyError(x)
                    except KeyError:
                        return "handled"
                recorder = logstream_stream_log(target, "k")
                assert_errors(recorder, {"calc": "KeyError: 'k'"})
                assert recorder.state["final_output"] == "handled"

            def test_default_has_no_options(logstream_options, logstream_tracer):
                assert logstream_options == {}
                assert logstream_tracer.config.entry_fields == ()
            """
        )
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=4)

    def test_options_fixture_can_be_parametrized(self, pytester: pytest.Pytester) -> None:
        """Parametrizing ``logstream_options`` runs a test once per configuration."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.parametrize(
                "logstream_options",
                [{"schema_format": "original"}, {"schema_format": "streaming_events"}],
            )
            def test_formats(logstream_options, logstream_tracer):
                assert logstream_tracer.schema_format == logstream_options["schema_format"]
            """
        )
        pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=2)

    def test_positional_marker_args_are_a_usage_error(self, pytester: pytest.Pytester) -> None:
        """A marker with positional arguments errors, saying to use keywords."""
        pytester.makepyfile(
            """
            import pytest

            @pytest.mark.logstream(["error"])
            def test_bad(logstream_tracer):
                pass
            """
        )
        result = pytester.runpytest("-p", "no:cacheprovider")
        result.assert_outcomes(errors=1)
        result.stdout.fnmatch_lines(["*keyword options only*"])
