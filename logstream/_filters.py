"""Include/exclude rules that decide which runs get a ``/logs`` entry.

The semantics are LangChain's, exactly: with no include rule every run is included;
include rules (names, types, tags) OR together; each exclude rule then removes. An empty
rule (``include_names=[]``) is a rule that matches nothing, not an absent one. A run's tags
are the tags it carries, inherited ones included. Whether the root run is a log entry is
not a filter question (it never is); the emitter decides that.

Rules are compiled once into frozensets, so a check never scans a list.

Example:
    >>> f = RunFilter.from_rules(include_types=["llm"], exclude_tags=["hidden"])
    >>> f.should_include("model", "llm", ["visible"])
    True
    >>> f.should_include("model", "llm", ["hidden"])
    False
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Optional

from typing_extensions import TypedDict, Unpack

from ._errors import FilterConfigError

__all__ = ["ALWAYS_INCLUDE", "RULE_NAMES", "FilterRules", "RunFilter"]

Rule = Optional[frozenset[str]]


class FilterRules(TypedDict, total=False):
    """The six rules as keyword arguments (each a collection of strings, or ``None``).

    Attributes:
        include_names: Only include runs with these names.
        include_types: Only include runs of these types.
        include_tags: Only include runs with any of these tags.
        exclude_names: Exclude runs with these names.
        exclude_types: Exclude runs of these types.
        exclude_tags: Exclude runs with any of these tags.
    """

    include_names: Optional[Sequence[str]]
    include_types: Optional[Sequence[str]]
    include_tags: Optional[Sequence[str]]
    exclude_names: Optional[Sequence[str]]
    exclude_types: Optional[Sequence[str]]
    exclude_tags: Optional[Sequence[str]]


def _compile(rule_name: str, values: Optional[Iterable[str]]) -> Rule:
    if values is None:
        return None
    if isinstance(values, (str, bytes)):
        msg = (
            f"{rule_name} must be a collection of strings, got the single string {values!r}; "
            f"write {rule_name}=[{values!r}]"
        )
        raise FilterConfigError(msg)
    try:
        return frozenset(values)
    except TypeError as exc:
        msg = f"{rule_name} must be a collection of strings, got {values!r}"
        raise FilterConfigError(msg) from exc


RULE_NAMES: tuple[str, ...] = tuple(FilterRules.__annotations__)
"""The six rule names: the keys of :class:`FilterRules`, the fields of :class:`RunFilter`."""


@dataclass(frozen=True)
class RunFilter:
    """Compiled include/exclude rules; ``None`` means the rule is absent.

    Attributes:
        include_names: Run names to include.
        include_types: Run types to include.
        include_tags: Tags any one of which includes a run.
        exclude_names: Run names to exclude.
        exclude_types: Run types to exclude.
        exclude_tags: Tags any one of which excludes a run.
    """

    include_names: Rule = None
    include_types: Rule = None
    include_tags: Rule = None
    exclude_names: Rule = None
    exclude_types: Rule = None
    exclude_tags: Rule = None

    def __post_init__(self) -> None:
        """Compile rules given directly (as lists, say) into frozensets, checking them."""
        for rule_name in RULE_NAMES:
            value = getattr(self, rule_name)
            if value is not None and not isinstance(value, frozenset):
                object.__setattr__(self, rule_name, _compile(rule_name, value))

    @classmethod
    def from_rules(cls, **rules: Unpack[FilterRules]) -> RunFilter:
        """Compile rules given as sequences (as LangChain's handler takes them).

        Raises:
            FilterConfigError: A rule is unknown, a bare string or holds unhashable items.
        """
        return ALWAYS_INCLUDE.with_rules(**rules)

    def with_rules(self, **rules: Unpack[FilterRules]) -> RunFilter:
        """Return a copy with the given rules replaced (``None`` removes a rule).

        Raises:
            FilterConfigError: A rule is unknown, a bare string or holds unhashable items.
        """
        changes: dict[str, Any] = dict(rules)
        unknown = sorted(set(changes) - set(RULE_NAMES))
        if unknown:
            msg = f"unknown filter rule {unknown[0]!r}: expected one of {', '.join(RULE_NAMES)}"
            raise FilterConfigError(msg)
        for rule_name, values in changes.items():
            changes[rule_name] = _compile(rule_name, values)
        return replace(self, **changes)

    @property
    def includes_everything(self) -> bool:
        """Whether every run passes (no rule at all)."""
        return self == ALWAYS_INCLUDE

    def should_include(self, name: str, run_type: str, tags: Sequence[str]) -> bool:
        """Return whether a run with this name, type and tags gets a log entry.

        Args:
            name: The run's name.
            run_type: The run's type.
            tags: The run's tags, inherited ones included.
        """
        if self.include_names is None and self.include_types is None and self.include_tags is None:
            include = True
        else:
            include = (
                (self.include_names is not None and name in self.include_names)
                or (self.include_types is not None and run_type in self.include_types)
                or (self.include_tags is not None and not self.include_tags.isdisjoint(tags))
            )
        if not include:
            return False
        if self.exclude_names is not None and name in self.exclude_names:
            return False
        if self.exclude_types is not None and run_type in self.exclude_types:
            return False
        return self.exclude_tags is None or self.exclude_tags.isdisjoint(tags)


ALWAYS_INCLUDE = RunFilter()
"""The filter with no rules: every run (but the root) gets a log entry."""
