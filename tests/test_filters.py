"""Tests for logstream._filters: LangChain's include/exclude semantics, exactly."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logstream._errors import FilterConfigError, LogStreamError
from logstream._filters import ALWAYS_INCLUDE, RunFilter

RULE_NAMES = [
    "include_names",
    "include_types",
    "include_tags",
    "exclude_names",
    "exclude_types",
    "exclude_tags",
]


def reference_include(
    name: str,
    run_type: str,
    tags: Sequence[str],
    *,
    include_names: Optional[Sequence[str]] = None,
    include_types: Optional[Sequence[str]] = None,
    include_tags: Optional[Sequence[str]] = None,
    exclude_names: Optional[Sequence[str]] = None,
    exclude_types: Optional[Sequence[str]] = None,
    exclude_tags: Optional[Sequence[str]] = None,
) -> bool:
    """Decide inclusion the plain way, from the rules as lists, as the semantics read in prose."""
    includes = [include_names, include_types, include_tags]
    if all(rule is None for rule in includes):
        included = True
    else:
        included = False
        if include_names is not None and any(n == name for n in include_names):
            included = True
        if include_types is not None and any(t == run_type for t in include_types):
            included = True
        if include_tags is not None and any(t in include_tags for t in tags):
            included = True
    if exclude_names is not None and any(n == name for n in exclude_names):
        included = False
    if exclude_types is not None and any(t == run_type for t in exclude_types):
        included = False
    if exclude_tags is not None and any(t in exclude_tags for t in tags):
        included = False
    return included


class TestRunFilterRules:
    def test_no_rule_includes_everything(self) -> None:
        """With no rule at all every run is included, whatever its name, type or tags."""
        f = RunFilter.from_rules()
        assert f.should_include("anything", "chain", [])
        assert f.should_include("", "weird", ["x", "y"])
        assert f.includes_everything

    def test_from_rules_without_rules_equals_always_include(self) -> None:
        """A filter compiled from no rules equals the ALWAYS_INCLUDE preset."""
        assert RunFilter.from_rules() == ALWAYS_INCLUDE
        assert ALWAYS_INCLUDE.includes_everything

    def test_include_names_keeps_only_those_names(self) -> None:
        """An include_names rule includes runs with a listed name and no others."""
        f = RunFilter.from_rules(include_names=["a", "b"])
        assert f.should_include("a", "chain", [])
        assert f.should_include("b", "llm", ["t"])
        assert not f.should_include("c", "chain", [])
        assert not f.should_include("a:2", "chain", [])

    def test_include_rules_are_ored(self) -> None:
        """A run matching any one include rule is included."""
        f = RunFilter.from_rules(include_names=["a"], include_types=["llm"], include_tags=["t"])
        assert f.should_include("a", "chain", [])
        assert f.should_include("b", "llm", [])
        assert f.should_include("b", "chain", ["t"])
        assert not f.should_include("b", "chain", ["u"])

    def test_include_tags_match_any_tag(self) -> None:
        """A run is included by tags if any one of its tags is listed."""
        f = RunFilter.from_rules(include_tags=["keep", "also"])
        assert f.should_include("x", "chain", ["noise", "also"])
        assert not f.should_include("x", "chain", ["noise"])
        assert not f.should_include("x", "chain", [])

    def test_exclude_rules_remove_after_include(self) -> None:
        """An exclude rule removes a run that an include rule matched."""
        f = RunFilter.from_rules(include_types=["llm"], exclude_names=["m"])
        assert f.should_include("n", "llm", [])
        assert not f.should_include("m", "llm", [])

    def test_exclude_alone_removes_from_everything(self) -> None:
        """Exclude rules with no include rule start from everything and remove matches."""
        f = RunFilter.from_rules(exclude_types=["tool"], exclude_tags=["secret"])
        assert f.should_include("a", "chain", ["public"])
        assert not f.should_include("a", "tool", [])
        assert not f.should_include("a", "chain", ["public", "secret"])
        assert not f.includes_everything

    def test_each_exclude_rule_removes_on_its_own(self) -> None:
        """Each exclude rule (name, type, tag) removes a run by itself."""
        f = RunFilter.from_rules(exclude_names=["n"], exclude_types=["t"], exclude_tags=["g"])
        assert not f.should_include("n", "chain", [])
        assert not f.should_include("x", "t", [])
        assert not f.should_include("x", "chain", ["g"])
        assert f.should_include("x", "chain", ["h"])

    def test_empty_include_rule_matches_nothing(self) -> None:
        """include_names=[] is a rule that matches nothing, not an absent rule."""
        f = RunFilter.from_rules(include_names=[])
        assert not f.should_include("a", "chain", ["t"])
        assert not f.includes_everything
        assert f != ALWAYS_INCLUDE

    def test_empty_include_rule_still_ors_with_others(self) -> None:
        """An empty include rule next to a non-empty one leaves the other in charge."""
        f = RunFilter.from_rules(include_names=[], include_types=["llm"])
        assert f.should_include("a", "llm", [])
        assert not f.should_include("a", "chain", [])

    def test_empty_exclude_rule_excludes_nothing(self) -> None:
        """exclude_tags=[] removes nothing."""
        f = RunFilter.from_rules(exclude_tags=[], exclude_names=[])
        assert f.should_include("a", "chain", ["t"])
        assert not f.includes_everything

    def test_rules_accept_any_collection(self) -> None:
        """Tuples, sets and one-shot generators work as rules, and are read once."""
        f = RunFilter.from_rules(
            include_names=("a",),
            include_types={"llm"},  # type: ignore[arg-type]
            include_tags=(t for t in ["g"]),  # type: ignore[arg-type]
        )
        for _ in range(2):
            assert f.should_include("a", "chain", [])
            assert f.should_include("b", "llm", [])
            assert f.should_include("b", "chain", ["g"])
            assert not f.should_include("b", "chain", [])

    def test_mutating_the_callers_list_later_has_no_effect(self) -> None:
        """The rules are compiled at construction; later changes to the caller's list do nothing."""
        names = ["a"]
        f = RunFilter.from_rules(include_names=names)
        names.append("b")
        names.remove("a")
        assert f.should_include("a", "chain", [])
        assert not f.should_include("b", "chain", [])

    def test_tags_may_be_any_sequence(self) -> None:
        """should_include accepts tags as a tuple as well as a list."""
        f = RunFilter.from_rules(include_tags=["t"])
        assert f.should_include("a", "chain", ("u", "t"))

    def test_filter_is_frozen(self) -> None:
        """A compiled filter cannot be changed in place."""
        f = RunFilter.from_rules(include_names=["a"])
        with pytest.raises(dataclasses.FrozenInstanceError):
            f.include_names = frozenset({"b"})  # type: ignore[misc]


class TestRunFilterConfigErrors:
    @pytest.mark.parametrize("rule", RULE_NAMES)
    def test_bare_string_rule_raises(self, rule: str) -> None:
        """A bare string for any rule raises FilterConfigError naming the rule and the fix."""
        with pytest.raises(FilterConfigError) as info:
            RunFilter.from_rules(**{rule: "abc"})
        message = str(info.value)
        assert rule in message
        assert "'abc'" in message
        assert f"{rule}=['abc']" in message

    def test_bare_bytes_rule_raises(self) -> None:
        """A bytes value is refused like a string."""
        with pytest.raises(FilterConfigError):
            RunFilter.from_rules(include_tags=b"abc")  # type: ignore[arg-type]

    def test_unhashable_items_raise(self) -> None:
        """A rule holding unhashable items raises FilterConfigError naming the rule."""
        with pytest.raises(FilterConfigError) as info:
            RunFilter.from_rules(exclude_names=[["a"]])  # type: ignore[list-item]
        assert "exclude_names" in str(info.value)

    def test_non_iterable_rule_raises(self) -> None:
        """A non-iterable rule (an int) raises FilterConfigError, not a bare TypeError."""
        with pytest.raises(FilterConfigError):
            RunFilter.from_rules(include_types=3)  # type: ignore[arg-type]

    def test_config_error_is_a_type_error(self) -> None:
        """FilterConfigError is both a LogStreamError and a TypeError."""
        with pytest.raises(TypeError) as info:
            RunFilter.from_rules(include_names="a")
        assert isinstance(info.value, LogStreamError)


NAMES = st.sampled_from(["", "a", "b", "a:2", "x/y", "é"])
TYPES = st.sampled_from(["chain", "llm", "chat_model", "tool", "retriever"])
TAGS = st.sampled_from(["", "t1", "t2", "seq:step:1", "ü"])


def rule_of(values: st.SearchStrategy[str]) -> st.SearchStrategy[Optional[list[str]]]:
    """Return a strategy for an absent rule or a (possibly empty) list of values."""
    return st.none() | st.lists(values, max_size=3)


class TestRunFilterProperty:
    @settings(max_examples=400, deadline=None)
    @given(
        include_names=rule_of(NAMES),
        include_types=rule_of(TYPES),
        include_tags=rule_of(TAGS),
        exclude_names=rule_of(NAMES),
        exclude_types=rule_of(TYPES),
        exclude_tags=rule_of(TAGS),
        runs=st.lists(st.tuples(NAMES, TYPES, st.lists(TAGS, max_size=3)), min_size=1, max_size=6),
    )
    def test_should_include_matches_reference(
        self,
        include_names: Optional[list[str]],
        include_types: Optional[list[str]],
        include_tags: Optional[list[str]],
        exclude_names: Optional[list[str]],
        exclude_types: Optional[list[str]],
        exclude_tags: Optional[list[str]],
        runs: list[tuple[str, str, list[str]]],
    ) -> None:
        """should_include agrees with a plain list-based reference for random rules and runs."""
        rules = {
            "include_names": include_names,
            "include_types": include_types,
            "include_tags": include_tags,
            "exclude_names": exclude_names,
            "exclude_types": exclude_types,
            "exclude_tags": exclude_tags,
        }
        f = RunFilter.from_rules(**rules)
        for name, run_type, tags in runs:
            assert f.should_include(name, run_type, tags) == reference_include(
                name, run_type, tags, **rules
            )
        assert f.includes_everything == all(v is None for v in rules.values())
