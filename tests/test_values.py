"""Tests for logstream._values: the shared constants, names, pointer escaping and the walk."""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections import OrderedDict, UserDict, UserList, deque
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Optional

import jsonpointer  # type: ignore[import-untyped, unused-ignore]
import pytest
from hypothesis import given
from hypothesis import strategies as st

from logstream import _apply, _keys, _values
from logstream._values import (
    CUT,
    FROZENSET,
    LIST,
    MAPPING,
    MISSING,
    SET,
    TUPLE,
    Frame,
    Walk,
    class_name,
    container_frame,
    container_kind,
    deep_copy,
    dumped,
    escape_key,
    is_walked_as_mapping,
    mapping_frame,
    not_serializable,
    safe_repr,
    snapshot,
    unescape_key,
    unique_key,
)


class Point(NamedTuple):
    """A namedtuple, walked as a tuple."""

    x: int
    y: int


class BrokenRepr:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        raise ValueError("no repr")


class StrRepr(str):
    """A str subclass, returned by a repr to check that repr text comes back a plain str."""


class OddRepr:
    """An object whose repr returns a str subclass."""

    def __repr__(self) -> str:
        return StrRepr("odd")


class Dumps:
    """An object with both dump methods; either may be told to fail."""

    def __init__(self, v2: Any = MISSING, v1: Any = MISSING) -> None:
        self.v2, self.v1 = v2, v1

    def model_dump(self) -> Any:
        if self.v2 is MISSING:
            raise RuntimeError("v2 fails")
        return self.v2

    def dict(self) -> Any:
        if self.v1 is MISSING:
            raise RuntimeError("v1 fails")
        return self.v1


class DumpingMapping(Mapping[str, int]):
    """A Mapping that also has a dump method, so it is shown as an object."""

    def __getitem__(self, key: str) -> int:
        return {"a": 1}[key]

    def __iter__(self) -> Iterator[str]:
        return iter(["a"])

    def __len__(self) -> int:
        return 1

    def model_dump(self) -> dict[str, int]:
        return {"a": 1}


@dataclasses.dataclass
class DataMapping(Mapping[str, int]):
    """A dataclass that is also a Mapping: shown through its fields."""

    a: int = 1

    def __getitem__(self, key: str) -> int:
        return self.a

    def __iter__(self) -> Iterator[str]:
        return iter(["a"])

    def __len__(self) -> int:
        return 1


class Leaves(Walk[Frame]):
    """A test walk: lists the leaves it meets in order, and ``"<cycle>"`` for a cycle."""

    __slots__ = ("cut_after", "events")

    def __init__(self, cut_after: Optional[int] = None) -> None:
        super().__init__()
        self.events: list[Any] = []
        self.cut_after = cut_after

    def enter(self, value: Any) -> Any:
        frame = self.frame(value, 0)
        if frame is None:
            self.events.append(value)
        return frame

    def frame(self, value: Any, depth: int) -> Optional[Frame]:
        if id(value) in self.open:
            self.events.append("<cycle>")
            return None
        frame = container_frame(value, Frame)
        if frame is not None:
            frame.depth = depth
        return frame

    def visit(self, frame: Frame, item: Any) -> Any:
        if frame.kind == MAPPING:
            key, item = item
            self.events.append(f"key:{key}")
        if self.cut_after is not None and len(self.events) >= self.cut_after:
            return CUT
        child = self.frame(item, frame.depth + 1)
        if child is None and not (type(item) in (list, dict, tuple) and id(item) in self.open):
            self.events.append(item)
        return child

    def leave(self, frame: Frame) -> Any:
        self.events.append(f"end:{frame.kind}")
        return self.events


def reference_leaves(value: Any) -> list[Any]:
    """Return what :class:`Leaves` lists, recursively (for acyclic values)."""
    kind = container_kind(value)
    if kind is None:
        return [value]
    out: list[Any] = []
    if kind == MAPPING:
        for key, item in value.items():
            out.append(f"key:{key}")
            out.extend(reference_leaves(item))
    else:
        for item in value:
            out.extend(reference_leaves(item))
    out.append(f"end:{kind}")
    return out


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.dictionaries(st.text(max_size=3), children, max_size=4)
    ),
    max_leaves=25,
)


class TestConstants:
    def test_scalar_sets_agree(self) -> None:
        """The exact-type set and the isinstance tuple name the same scalar types."""
        assert set(_values.SCALARS) == _values.SCALAR_TYPES

    def test_other_modules_share_the_constants(self) -> None:
        """_apply and keys use _values' marker, scalar set, copy and escaping, not their own."""
        assert _apply.MISSING is MISSING
        assert _apply.SCALAR_TYPES is _values.SCALAR_TYPES
        assert _apply.deep_copy is deep_copy
        assert _keys.escape_key is escape_key


class TestUniqueKey:
    def test_free_name_is_kept(self) -> None:
        """A name nobody holds comes back as it is."""
        assert unique_key("a", {"b"}) == "a"

    def test_taken_names_get_the_first_free_number(self) -> None:
        """A taken name gets `` (2)``, or the first higher number that is free."""
        assert unique_key("a", {"a"}) == "a (2)"
        assert unique_key("a", {"a", "a (2)", "a (3)"}) == "a (4)"

    def test_a_dict_can_be_the_taken_names(self) -> None:
        """The dict being filled can be passed as the names in use."""
        assert unique_key("k", {"k": 1, "k (2)": 2}) == "k (3)"

    @given(st.text(max_size=4), st.sets(st.text(alphabet="a (2)3", max_size=6), max_size=8))
    def test_result_is_free_and_starts_with_the_name(self, name: str, taken: set[str]) -> None:
        """Whatever is taken, the name returned is free and begins with the wanted one."""
        got = unique_key(name, taken)
        assert got not in taken
        assert got.startswith(name)
        assert got == name or name in taken


class TestPointerEscaping:
    @pytest.mark.parametrize(
        ("token", "escaped"),
        [("plain", "plain"), ("a/b", "a~1b"), ("a~b", "a~0b"), ("~1", "~01"), ("/~", "~1~0")],
    )
    def test_unescape_undoes_escape(self, token: str, escaped: str) -> None:
        """Escaping gives RFC 6901's text and unescaping gives the token back."""
        assert escape_key(token) == escaped
        assert unescape_key(escaped) == token

    @given(st.text(alphabet=["a", "/", "~", "0", "1", "é"], max_size=8))
    def test_round_trip_and_jsonpointer_agree(self, token: str) -> None:
        """For any token, unescape(escape(t)) == t, and jsonpointer reads the escape as t."""
        escaped = escape_key(token)
        assert unescape_key(escaped) == token
        assert "/" not in escaped
        assert jsonpointer.JsonPointer("/" + escaped).parts == [token]

    def test_tokens_without_a_tilde_come_back_as_they_are(self) -> None:
        """Unescaping a token with no ``~`` returns the same object."""
        token = "no-escape/here"
        assert unescape_key(token) is token


class TestObjects:
    def test_class_name_is_module_and_qualname(self) -> None:
        """The class is named with its module and qualified name."""
        assert class_name(Point(1, 2)) == f"{__name__}.Point"

    def test_safe_repr_says_when_repr_raises(self) -> None:
        """A repr that raises is replaced by text that names the class and the error."""
        assert safe_repr(BrokenRepr()) == "<BrokenRepr object (repr raised ValueError)>"

    def test_safe_repr_returns_a_plain_str(self) -> None:
        """A repr returning a str subclass comes back as a plain str."""
        text = safe_repr(OddRepr())
        assert text == "odd"
        assert type(text) is str

    def test_not_serializable_record(self) -> None:
        """The stand-in record names the type, the class and the repr."""
        assert not_serializable(Point(1, 2)) == {
            "type": "not_serializable",
            "class": f"{__name__}.Point",
            "repr": "Point(x=1, y=2)",
        }

    @pytest.mark.parametrize(
        ("obj", "expected"),
        [
            (Dumps(v2={"a": 1}, v1={"b": 2}), {"a": 1}),
            (Dumps(v1={"b": 2}), {"b": 2}),
            (Dumps(v2=object(), v1=[1]), [1]),
            (Dumps(v2=OrderedDict(a=1), v1="text"), "text"),
        ],
    )
    def test_dumped_takes_the_first_method_giving_plain_data(self, obj: Any, expected: Any) -> None:
        """model_dump() wins; a method that raises or gives non-plain data is skipped."""
        assert dumped(obj) == expected

    @pytest.mark.parametrize("obj", [Dumps(), Dumps(v2=object(), v1=object()), 3, object()])
    def test_dumped_is_missing_without_plain_data(self, obj: Any) -> None:
        """No dump method, or none that gives plain data, gives MISSING."""
        assert dumped(obj) is MISSING


class TestContainers:
    @pytest.mark.parametrize(
        ("value", "kind"),
        [
            ({}, MAPPING),
            (OrderedDict(), MAPPING),
            ([], LIST),
            (deque([1]), LIST),
            (type("L", (list,), {})(), LIST),
            ((), TUPLE),
            (Point(1, 2), TUPLE),
            (set(), SET),
            (frozenset(), FROZENSET),
            (UserList([1]), None),
            (MappingProxyType({}), None),
            (UserDict(), None),
            ("text", None),
            (b"bytes", None),
            (3, None),
        ],
    )
    def test_container_kind(self, value: Any, kind: Optional[int]) -> None:
        """Built-in containers and their subclasses have a kind; anything else has none."""
        assert container_kind(value) == kind
        frame = container_frame(value, Frame)
        assert (frame is None) == (kind is None)
        if frame is not None:
            assert frame.kind == kind
            assert frame.source is value

    def test_exact_lists_are_iterated_and_others_taken(self) -> None:
        """An exact list is walked as it is; a deque's items go through ``take`` first."""
        taken: list[Any] = []

        def take(items: Any) -> list[Any]:
            taken.append(items)
            return list(items)[:2]

        frame = container_frame([1, 2, 3], Frame, take)
        assert frame is not None and list(frame.items) == [1, 2, 3]
        assert taken == []
        frame = container_frame(deque([1, 2, 3]), Frame, take)
        assert frame is not None and list(frame.items) == [1, 2]
        assert len(taken) == 1

    def test_mapping_frame_walks_pairs(self) -> None:
        """A Mapping's frame visits its (key, value) pairs."""
        frame = mapping_frame(MappingProxyType({"a": 1}), Frame)
        assert frame.kind == MAPPING
        assert list(frame.items) == [("a", 1)]

    @pytest.mark.parametrize(
        ("value", "walked"),
        [
            (MappingProxyType({"a": 1}), True),
            (UserDict(a=1), True),
            ({"a": 1}, True),
            (DumpingMapping(), False),
            (DataMapping(), False),
            ([("a", 1)], False),
        ],
    )
    def test_is_walked_as_mapping(self, value: Any, walked: bool) -> None:
        """Mappings are walked as such unless a dataclass or dump method shows them."""
        assert is_walked_as_mapping(value) is walked


class TestCopies:
    def test_deep_copy_copies_other_objects_with_deepcopy(self) -> None:
        """An object that is not a dict or list is copied as copy.deepcopy copies it."""
        value = {"pair": (1, [2]), "set": {3}}
        copied = deep_copy(value)
        assert copied == copy.deepcopy(value)
        assert copied["pair"][1] is not value["pair"][1]

    def test_snapshot_shares_other_objects(self) -> None:
        """snapshot copies dicts and lists only; a tuple inside is shared."""
        pair = (1, [2])
        copied = snapshot({"pair": pair, "list": [[1]]})
        assert copied["pair"] is pair
        assert copied == {"pair": pair, "list": [[1]]}


class TestWalk:
    @given(JSON)
    def test_walk_visits_what_recursion_visits(self, value: Any) -> None:
        """On acyclic values the walk meets leaves, keys and ends in recursive order."""
        walk = Leaves()
        result = walk.run(value)
        expected = reference_leaves(value)
        if container_kind(value) is None:
            assert result is None and walk.events == expected
        else:
            assert result == expected
        assert walk.open == {}
        assert walk.stack == []

    def test_depth_is_not_limited_by_recursion(self) -> None:
        """A value nested far deeper than the recursion limit is walked to the bottom."""
        deep: list[Any] = ["bottom"]
        for _ in range(sys.getrecursionlimit() * 5):
            deep = [deep]
        events = Leaves().run(deep)
        assert events[0] == "bottom"
        assert events.count(f"end:{LIST}") == sys.getrecursionlimit() * 5 + 1

    def test_cycles_are_open_ids(self) -> None:
        """A container met again inside itself is open; a shared sibling is not a cycle."""
        loop: list[Any] = [1]
        loop.append(loop)
        shared = [2]
        assert Leaves().run(loop) == [1, "<cycle>", f"end:{LIST}"]
        end = f"end:{LIST}"
        assert Leaves().run([shared, shared]) == [2, end, 2, end, end]

    def test_cut_skips_the_rest_of_a_frame(self) -> None:
        """visit returning CUT closes the frame: its other items are skipped, leave still runs."""
        events = Leaves(cut_after=2).run([1, 2, [3, 4], 5])
        assert events == [1, 2, f"end:{LIST}"]

    def test_a_leaf_root_is_the_result(self) -> None:
        """A root that enter does not open is returned without walking."""
        walk = Leaves()
        assert walk.run("leaf") is None
        assert walk.events == ["leaf"]

    def test_held_objects_are_open_while_their_frame_is(self) -> None:
        """Objects a frame holds besides its source count as open until the frame closes."""
        marker: list[Any] = []
        seen: list[bool] = []

        class Holding(Leaves):
            __slots__ = ()

            def frame(self, value: Any, depth: int) -> Optional[Frame]:
                seen.append(id(marker) in self.open)
                frame = super().frame(value, depth)
                if frame is not None and depth == 0:
                    frame.held = [marker]
                return frame

        walk = Holding()
        walk.run([1, [2]])
        assert seen == [False, True, True, True]
        assert walk.open == {}
