"""Tests for logstream._serialize: dumps renders every value as strict JSON and never raises."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import json
import subprocess
import sys
import textwrap
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from typing import Any, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import logstream
from logstream._errors import LogStreamError
from logstream._patches import RunLog, RunLogPatch, add_op, replace_op
from logstream._serialize import (
    CYCLE,
    DEFAULT_MAX_VALUES,
    OVER_BUDGET,
    TOO_DEEP,
    SerializeOptionError,
    dumps,
)


def strict_loads(text: str) -> Any:
    """Parse ``text`` as strict JSON: ``NaN``, ``Infinity`` and ``-Infinity`` tokens fail."""

    def refuse(token: str) -> Any:
        msg = f"non-standard JSON token {token}"
        raise ValueError(msg)

    return json.loads(text, parse_constant=refuse)


def json_dumps(value: Any, indent: Optional[int] = None, sort_keys: bool = False) -> str:
    """Return what ``json.dumps`` writes for a plain value with dumps' separators."""
    separators = (",", ":") if indent is None else (",", ": ")
    return json.dumps(value, indent=indent, sort_keys=sort_keys, separators=separators)


class Color(enum.Enum):
    """An enum with plain values."""

    RED = "red"
    PAIR = (1, float("nan"))


class Level(str, enum.Enum):
    """A str-mixin enum, which json.dumps writes as its string."""

    LOW = "low"


@dataclasses.dataclass
class Point:
    """A dataclass with a field that can hold anything, including the point itself."""

    x: int
    extra: Any = None


class BadRepr:
    """An object whose repr raises."""

    def __repr__(self) -> str:
        msg = "no repr for you"
        raise RuntimeError(msg)


class NonStrRepr:
    """An object whose ``__repr__`` returns a non-string, so ``repr()`` raises TypeError."""

    def __repr__(self) -> Any:
        return 42


class WeirdEq:
    """An object whose ``__eq__`` and ``__lt__`` raise and whose ``__hash__`` is constant."""

    def __eq__(self, other: object) -> bool:
        msg = "no comparing"
        raise RuntimeError(msg)

    def __lt__(self, other: object) -> bool:
        msg = "no ordering"
        raise RuntimeError(msg)

    def __hash__(self) -> int:
        return 7

    def __repr__(self) -> str:
        return "WeirdEq()"


class UniqueWeirdEq(WeirdEq):
    """A WeirdEq hashed by identity, so that sets of them never need ``__eq__``."""

    def __hash__(self) -> int:
        return id(self)


class BadClass:
    """An object whose ``__class__`` raises, which makes ``isinstance`` raise."""

    @property  # type: ignore[misc]
    def __class__(self) -> Any:  # type: ignore[override]
        msg = "no class"
        raise RuntimeError(msg)

    def __repr__(self) -> str:
        return "BadClass()"


class BadGetattr:
    """An object whose every attribute lookup raises something other than AttributeError."""

    def __getattr__(self, name: str) -> Any:
        msg = f"no {name}"
        raise RuntimeError(msg)

    def __repr__(self) -> str:
        return "BadGetattr()"


class ModelV2:
    """A pydantic-v2-like object: ``model_dump()`` gives its data."""

    def __init__(self, **data: Any) -> None:
        self.data = data

    def model_dump(self) -> dict[str, Any]:
        return dict(self.data)


class ModelV1:
    """A pydantic-v1-like object: ``dict()`` gives its data."""

    def __init__(self, **data: Any) -> None:
        self.data = data

    def dict(self) -> dict[str, Any]:
        return dict(self.data)


class BrokenDump:
    """An object whose ``model_dump()`` raises and whose ``dict()`` works."""

    def model_dump(self) -> Any:
        msg = "broken"
        raise ValueError(msg)

    def dict(self) -> dict[str, Any]:
        return {"fallback": True}


class OddDump:
    """An object whose ``model_dump()`` and ``dict()`` return non-data objects."""

    def model_dump(self) -> Any:
        return object()

    def dict(self) -> Any:
        return self

    def __repr__(self) -> str:
        return "OddDump()"


class PlainList(list):  # type: ignore[type-arg]
    """A list subclass, which the fast path leaves to the walker."""


def walked(value: Any) -> Any:
    """Return ``value`` with dicts and lists as subclasses, so dumps walks every container."""
    if isinstance(value, dict):
        return OrderedDict((k, walked(v)) for k, v in value.items())
    if isinstance(value, list):
        return PlainList(walked(v) for v in value)
    return value


class TestPlainJson:
    def test_token_patch_is_compact_json(self) -> None:
        """A typical token patch comes out as compact JSON, as json.dumps would write it."""
        ops = [add_op("/logs/x/streamed_output/-", "tok")]
        assert dumps(ops) == '[{"op":"add","path":"/logs/x/streamed_output/-","value":"tok"}]'

    @pytest.mark.parametrize("value", ["s", "", 0, -3, 1.5, -0.0, True, False, None, [], {}])
    def test_top_level_scalars_and_empties(self, value: Any) -> None:
        """Scalars and empty containers at the top level render as json.dumps renders them."""
        assert dumps(value) == json_dumps(value)

    @pytest.mark.parametrize("indent", [None, 0, 2, 4])
    @pytest.mark.parametrize("sort_keys", [False, True])
    def test_indent_and_sort_keys_match_json(self, indent: Optional[int], sort_keys: bool) -> None:
        """indent and sort_keys format plain values as json.dumps does, fast path or walker."""
        value = {"b": [1, {"z": [], "a": {}}], "a": {"y": [None, True, 2.5]}, "c": "x"}
        expected = json_dumps(value, indent=indent, sort_keys=sort_keys)
        assert dumps(value, indent=indent, sort_keys=sort_keys) == expected
        assert dumps(walked(value), indent=indent, sort_keys=sort_keys) == expected

    @pytest.mark.parametrize("indent", [None, 2])
    def test_plain_parts_next_to_odd_values_are_formatted_alike(
        self, indent: Optional[int]
    ) -> None:
        """A plain subtree beside a NaN is indented at its own depth, as json would write it."""
        value = {"a": [{"deep": [1, {"x": "y"}]}, float("nan")], "b": {"c": [1]}}
        expected = {"a": [{"deep": [1, {"x": "y"}]}, "NaN"], "b": {"c": [1]}}
        assert dumps(value, indent=indent) == json_dumps(expected, indent=indent)

    def test_output_is_ascii(self) -> None:
        """Non-ASCII text is escaped, so the output is ASCII whatever the value holds."""
        out = dumps({"k\u00e9": "\u4e2d\U0001f600", "n": [float("inf")]})
        assert out.isascii()
        assert strict_loads(out) == {"k\u00e9": "\u4e2d\U0001f600", "n": ["Infinity"]}

    def test_run_log_patch_renders_its_ops(self) -> None:
        """A RunLogPatch renders as the array of its ops."""
        patch = RunLogPatch(add_op("/a", 1), add_op("/b", [2]))
        assert strict_loads(dumps(patch)) == patch.ops

    def test_run_log_renders_ops_and_state(self) -> None:
        """A RunLog renders as {"ops": [...], "state": {...}}."""
        log = RunLogPatch(replace_op("", {"logs": {}})) + RunLogPatch(add_op("/logs/a", 1))
        assert strict_loads(dumps(log)) == {"ops": log.ops, "state": {"logs": {"a": 1}}}

    def test_nested_patches_render_too(self) -> None:
        """Patches and logs inside other values render by the same rules."""
        patch = RunLogPatch(add_op("/a", float("nan")))
        log = RunLog(add_op("/b", 1), state={"b": 1})  # type: ignore[typeddict-item]
        out = strict_loads(dumps({"p": patch, "l": (log,)}))
        assert out == {
            "p": [{"op": "add", "path": "/a", "value": "NaN"}],
            "l": [{"ops": [{"op": "add", "path": "/b", "value": 1}], "state": {"b": 1}}],
        }


class TestNumbersAndStrings:
    @pytest.mark.parametrize(
        ("value", "text"),
        [(float("nan"), '"NaN"'), (float("inf"), '"Infinity"'), (float("-inf"), '"-Infinity"')],
    )
    def test_non_finite_floats_become_strings(self, value: float, text: str) -> None:
        """NaN and the infinities become strings, at the top level and nested."""
        assert dumps(value) == text
        assert dumps([value]) == f"[{text}]"
        assert dumps({"k": value}) == f'{{"k":{text}}}'

    def test_float_subclasses_and_int_subclasses_are_numbers(self) -> None:
        """Subclasses of float and int render as the numbers they hold."""

        class MyFloat(float):
            def __repr__(self) -> str:
                return "MyFloat!"

        class MyInt(int):
            def __repr__(self) -> str:
                return "MyInt!"

        assert dumps([MyFloat(1.5), MyInt(3), MyFloat("nan")]) == '[1.5,3,"NaN"]'

    def test_huge_int_is_a_marker_not_an_error(self) -> None:
        """An int too long for str() (the 4300-digit limit) becomes a not_serializable marker."""
        out = strict_loads(dumps({"n": 10**5000, "ok": 1}))
        assert out["ok"] == 1
        if getattr(sys, "get_int_max_str_digits", lambda: 0)():
            assert out["n"]["type"] == "not_serializable"
            assert out["n"]["class"] == "builtins.int"
        else:  # pragma: no cover - Pythons without the limit print any int
            assert out["n"] == 10**5000

    def test_lone_surrogates_are_escaped(self) -> None:
        """A string with a lone surrogate is escaped, not an encoding error."""
        out = dumps(["\ud800", {"\udfff": "a\ud83d"}])
        assert out == '["\\ud800",{"\\udfff":"a\\ud83d"}]'
        assert strict_loads(out) == ["\ud800", {"\udfff": "a\ud83d"}]
        out.encode("utf-8")

    def test_str_subclass_is_its_text(self) -> None:
        """A str subclass renders as its text, whatever its methods do."""

        class Loud(str):
            def __str__(self) -> str:
                return "LOUD"

        assert dumps({"k": Loud("quiet")}) == '{"k":"quiet"}'


class TestContainers:
    def test_tuple_and_deque_become_arrays(self) -> None:
        """Tuples and deques render as arrays."""
        assert dumps({"t": (1, (2,)), "d": deque([3, 4])}) == '{"t":[1,[2]],"d":[3,4]}'

    def test_sets_are_sorted_arrays(self) -> None:
        """Sets and frozensets of strings or numbers become arrays sorted by value."""
        assert dumps({"c", "a", "b"}) == '["a","b","c"]'
        assert dumps(frozenset({10, 9, 2.5})) == "[2.5,9,10]"
        assert dumps(set()) == "[]"

    def test_mixed_sets_are_sorted_by_json_text(self) -> None:
        """A set of mixed types is sorted by each element's JSON text, never compared."""
        value = {1, "a", (2, "b"), None, WeirdEq(), float("nan")}
        out = strict_loads(dumps(value))
        texts = [json.dumps(x, separators=(",", ":"), sort_keys=True) for x in out]
        assert texts == sorted(texts)
        assert len(out) == 6

    def test_set_order_does_not_depend_on_hash_seed(self) -> None:
        """The same sets render to the same text under different PYTHONHASHSEED values."""
        code = textwrap.dedent(
            """
            from logstream._serialize import dumps
            words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"}
            nested = frozenset(frozenset({w, w + "!"}) for w in words)
            print(dumps({"w": words, "n": nested, "m": {1, "x", b"y", (1, "z")}}))
            """
        )
        outputs = set()
        for seed in ("1", "2", "3"):
            result = subprocess.run(
                [sys.executable, "-c", code],
                capture_output=True,
                text=True,
                check=True,
                timeout=60,
                env={"PYTHONHASHSEED": seed, "PATH": ""},
            )
            outputs.add(result.stdout)
        assert len(outputs) == 1

    def test_mapping_that_is_not_a_dict_becomes_an_object(self) -> None:
        """A Mapping that is not a dict (a mappingproxy) renders as an object."""
        import types

        assert dumps(types.MappingProxyType({"a": 1})) == '{"a":1}'

    def test_dict_subclass_with_broken_items_is_a_marker(self) -> None:
        """A dict subclass whose items() raises becomes a not_serializable marker."""

        class Broken(dict):  # type: ignore[type-arg]
            def items(self) -> Any:
                msg = "no items"
                raise RuntimeError(msg)

        out = strict_loads(dumps({"b": Broken(a=1)}))
        assert out["b"]["type"] == "not_serializable"


class TestDictKeys:
    def test_scalar_keys_are_named_as_json_does(self) -> None:
        """int, float, bool and None keys are named as json.dumps names them."""
        value = {1: "a", 2.5: "b", False: "c", None: "d", float("nan"): "e"}
        assert strict_loads(dumps(value)) == {
            "1": "a",
            "2.5": "b",
            "false": "c",
            "null": "d",
            "NaN": "e",
        }

    def test_other_keys_are_named_by_their_rendering_or_repr(self) -> None:
        """UUID, date, Decimal and Enum keys use their string forms; others use repr()."""
        key = uuid.UUID(int=5)
        value = {
            key: 1,
            datetime.date(2024, 5, 1): 2,
            decimal.Decimal("1.50"): 3,
            Color.RED: 4,
            (1, "x"): 5,
            Level.LOW: 6,
            10**5000: 7,
        }
        out = strict_loads(dumps(value))
        assert out[str(key)] == 1
        assert out["2024-05-01"] == 2
        assert out["1.50"] == 3
        assert out["red"] == 4
        assert out["(1, 'x')"] == 5
        assert out["low"] == 6
        assert 7 in out.values()

    def test_colliding_keys_are_all_kept(self) -> None:
        """A converted key whose name is taken gets a suffix; no entry is lost, str keys win."""
        value: dict[Any, str] = {1: "int", "1": "str", 1.5: "float", "1.5 (2)": "str2"}
        value[True] = "bool-is-1"  # same dict key as 1: replaces its value
        value["true"] = "str-true"
        out = strict_loads(dumps(value))
        assert out == {
            "1": "str",
            "1 (2)": "bool-is-1",
            "1.5": "float",
            "1.5 (2)": "str2",
            "true": "str-true",
        }

    def test_colliding_keys_with_sort_keys(self) -> None:
        """With sort_keys the converted names are sorted with the rest."""
        out = dumps({2: "b", "2": "a", 1: "c"}, sort_keys=True)
        assert out == '{"1":"c","2":"a","2 (2)":"b"}'

    def test_key_with_broken_repr_is_still_named(self) -> None:
        """A key whose repr raises is named by the fallback text."""
        key = BadRepr()
        out = strict_loads(dumps({key: 1}))
        assert out == {"<BadRepr object (repr raised RuntimeError)>": 1}


class TestObjects:
    def test_uuid(self) -> None:
        """A UUID renders as its canonical string."""
        value = uuid.UUID("12345678-1234-5678-1234-567812345678")
        assert dumps({"id": value}) == '{"id":"12345678-1234-5678-1234-567812345678"}'

    def test_dates_and_times_are_iso_8601(self) -> None:
        """datetime, date and time render as isoformat() strings."""
        moment = datetime.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=datetime.timezone.utc)
        out = strict_loads(dumps([moment, moment.date(), moment.time(), moment.timetz()]))
        assert out == [
            "2024-05-01T12:00:00.123000+00:00",
            "2024-05-01",
            "12:00:00.123000",
            "12:00:00.123000+00:00",
        ]

    def test_timedelta_is_total_seconds(self) -> None:
        """A timedelta renders as its total seconds, a number."""
        assert dumps(datetime.timedelta(minutes=1, seconds=30, milliseconds=500)) == "90.5"
        assert dumps([datetime.timedelta(days=-1)]) == "[-86400.0]"

    def test_decimal_is_a_string(self) -> None:
        """A Decimal renders as str(d), keeping its digits; NaN and Infinity too."""
        values = [decimal.Decimal("1.10"), decimal.Decimal("NaN"), decimal.Decimal("-Infinity")]
        assert dumps(values) == '["1.10","NaN","-Infinity"]'
        assert dumps(decimal.Decimal("0.1000000000000000000000001")) == (
            '"0.1000000000000000000000001"'
        )

    def test_enum_renders_its_value(self) -> None:
        """An Enum member renders as its value, itself rendered by the rules."""
        assert dumps([Color.RED, Color.PAIR, Level.LOW]) == '["red",[1,"NaN"],"low"]'

    def test_dataclass_renders_its_fields(self) -> None:
        """A dataclass renders as an object of its fields, recursively."""
        point = Point(1, extra=[Point(2), uuid.UUID(int=0)])
        assert strict_loads(dumps(point)) == {
            "x": 1,
            "extra": [{"x": 2, "extra": None}, "00000000-0000-0000-0000-000000000000"],
        }

    def test_dataclass_class_is_not_instantiated(self) -> None:
        """A dataclass class (not an instance) is a not_serializable marker."""
        out = strict_loads(dumps(Point))
        assert out["type"] == "not_serializable"
        assert out["repr"] == repr(Point)

    def test_model_dump_and_dict(self) -> None:
        """model_dump() (pydantic v2) and dict() (v1) results are rendered recursively."""
        value = [ModelV2(a=float("inf"), b=ModelV1(c={1, 2}))]
        assert dumps(value) == '[{"a":"Infinity","b":{"c":[1,2]}}]'

    def test_failing_model_dump_falls_back_to_dict(self) -> None:
        """A model_dump() that raises is skipped for dict()."""
        assert dumps(BrokenDump()) == '{"fallback":true}'

    def test_dump_methods_returning_objects_are_not_used(self) -> None:
        """model_dump() or dict() results that are not data fall back to the marker."""
        out = strict_loads(dumps(OddDump()))
        assert out == {
            "type": "not_serializable",
            "class": f"{__name__}.OddDump",
            "repr": "OddDump()",
        }

    def test_real_pydantic_model(self) -> None:
        """A real pydantic model renders as its model_dump()."""
        pydantic = pytest.importorskip("pydantic")

        class Msg(pydantic.BaseModel):  # type: ignore[misc, name-defined]
            content: str
            when: datetime.date

        out = dumps({"m": Msg(content="hi", when=datetime.date(2024, 1, 2))})
        assert out == '{"m":{"content":"hi","when":"2024-01-02"}}'

    @pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
    def test_bytes_are_tagged_base64(self, kind: Any) -> None:
        """bytes, bytearray and memoryview render as {"type": "bytes", "base64": ...}."""
        assert dumps(kind(b"hi\x00")) == '{"type":"bytes","base64":"aGkA"}'

    def test_released_memoryview_is_a_marker(self) -> None:
        """A released memoryview, which cannot be read, becomes a marker."""
        view = memoryview(b"x")
        view.release()
        assert strict_loads(dumps(view))["type"] == "not_serializable"

    def test_unknown_objects_become_markers(self) -> None:
        """Functions, classes and plain objects render as a not_serializable marker."""
        out = strict_loads(dumps([len, int, object(), lambda: 1]))
        assert [o["type"] for o in out] == ["not_serializable"] * 4
        assert out[0] == {
            "type": "not_serializable",
            "class": "builtins.builtin_function_or_method",
            "repr": "<built-in function len>",
        }
        assert out[1]["repr"] == "<class 'int'>"
        assert "lc" not in out[0]

    def test_hostile_objects_inside_containers_and_sets(self) -> None:
        """Hostile objects nested in lists, sets and dict keys leave the rest of the output."""
        value = {"s": {BadClass(), 1}, "l": [BadGetattr(), BadRepr()], BadClass(): "key"}
        out = strict_loads(dumps(value, sort_keys=True))
        assert out["BadClass()"] == "key"
        assert len(out["s"]) == 2
        assert [item["repr"] for item in out["l"]] == [
            "BadGetattr()",
            "<BadRepr object (repr raised RuntimeError)>",
        ]

    @pytest.mark.parametrize(
        ("make", "repr_text"),
        [
            (BadRepr, "<BadRepr object (repr raised RuntimeError)>"),
            (NonStrRepr, "<NonStrRepr object (repr raised TypeError)>"),
            (WeirdEq, "WeirdEq()"),
            (BadClass, "BadClass()"),
            (BadGetattr, "BadGetattr()"),
        ],
        ids=["repr-raises", "repr-not-str", "eq-raises", "class-raises", "getattr-raises"],
    )
    def test_hostile_objects_do_not_break_it(self, make: Any, repr_text: str) -> None:
        """Objects with raising repr, __eq__, __class__ or __getattr__ still render."""
        out = strict_loads(dumps({"v": make(), "after": 1}))
        assert out["v"]["type"] == "not_serializable"
        assert out["v"]["repr"] == repr_text
        assert out["after"] == 1


class TestCyclesAndDepth:
    def test_list_and_dict_cycles_become_markers(self) -> None:
        """A container inside itself is written as "<cycle>" where it recurs."""
        items: list[Any] = [1]
        items.append(items)
        table: dict[str, Any] = {"a": 1}
        table["self"] = table
        table["items"] = items
        out = strict_loads(dumps(table))
        assert out == {"a": 1, "self": CYCLE, "items": [1, CYCLE]}

    def test_dataclass_cycle(self) -> None:
        """A dataclass that refers to itself through a field is cut at the cycle."""
        point = Point(1)
        point.extra = {"back": point}
        assert strict_loads(dumps(point)) == {"x": 1, "extra": {"back": CYCLE}}

    def test_shared_references_are_not_cycles(self) -> None:
        """The same object twice (not inside itself) is rendered in full both times."""
        shared = {"x": [1, 2]}
        value = [shared, shared, {"again": shared}, (shared,)]
        assert strict_loads(dumps(value)) == [shared, shared, {"again": shared}, [shared]]
        value.append(float("nan"))  # the walker must agree
        assert strict_loads(dumps(value))[:4] == [shared, shared, {"again": shared}, [shared]]

    @pytest.mark.parametrize("kind", ["list", "dict"])
    def test_very_deep_nesting_is_cut_at_max_depth(self, kind: str) -> None:
        """100,000 levels of nesting are cut at max_depth without a RecursionError."""
        value: Any = "bottom"
        for _ in range(100_000):
            value = [value] if kind == "list" else {"k": value}
        out = dumps(value)
        parsed = strict_loads(out)
        depth = 0
        while parsed != TOO_DEEP:
            parsed = parsed[0] if kind == "list" else parsed["k"]
            depth += 1
        assert depth == 200

    def test_very_deep_nesting_renders_in_full_with_a_large_max_depth(self) -> None:
        """With max_depth above the nesting, 100,000 levels render in full, iteratively."""
        value: Any = 1
        for _ in range(100_000):
            value = [value]
        out = dumps(value, max_depth=1_000_000)
        assert out == "[" * 100_000 + "1" + "]" * 100_000

    def test_deep_odd_values_are_cut_too(self) -> None:
        """Nesting through dataclasses and models is cut at max_depth like plain nesting."""
        value: Any = None
        for _ in range(10_000):
            value = Point(0, extra=ModelV2(inner=value))
        out = dumps(value, max_depth=6)
        level_4 = {"x": 0, "extra": {"inner": TOO_DEEP}}
        assert strict_loads(out) == {
            "x": 0,
            "extra": {"inner": {"x": 0, "extra": {"inner": level_4}}},
        }

    @pytest.mark.parametrize("max_depth", [0, 1, 2])
    def test_max_depth_counts_containers(self, max_depth: int) -> None:
        """A container at depth max_depth or more is cut; scalars at any depth are kept."""
        value = [1, [2, [3]]]
        expected = {
            0: '"<too deep>"',
            1: '[1,"<too deep>"]',
            2: '[1,[2,"<too deep>"]]',
        }
        assert dumps(value, max_depth=max_depth) == expected[max_depth]
        assert dumps(walked(value), max_depth=max_depth) == expected[max_depth]

    def test_called_from_a_deep_stack(self) -> None:
        """Called near the recursion limit, dumps still answers (the walker needs no stack)."""
        value: Any = 1
        for _ in range(150):
            value = [value]

        def recurse(n: int) -> str:
            return recurse(n - 1) if n else dumps(value)

        limit = sys.getrecursionlimit()
        for margin in (60, 120, 200):
            try:
                out = recurse(limit - margin)
            except RecursionError:
                continue  # the test's own frames ran out before dumps was reached
            assert out == "[" * 150 + "1" + "]" * 150
            return
        pytest.skip("could not reach dumps near the recursion limit")


class TestLargeValues:
    def test_million_element_list(self) -> None:
        """A 1,000,000-element list renders on the fast path in well under a few seconds."""
        value = list(range(1_000_000))
        start = time.perf_counter()
        out = dumps(value)
        assert time.perf_counter() - start < 10
        assert out.startswith("[0,1,2,") and out.endswith(",999999]")

    def test_million_element_list_with_a_nan(self) -> None:
        """A 1,000,000-element list with one NaN goes through the walker and still works."""
        value: list[Any] = list(range(1_000_000))
        value.append(float("nan"))
        out = dumps(value)
        assert out.endswith(',999999,"NaN"]')

    def test_long_string(self) -> None:
        """A 10 MB string renders whole by default."""
        text = "x" * 10_000_000
        assert dumps({"t": text}) == '{"t":"' + text + '"}'

    def test_max_string_cuts_every_string_value(self) -> None:
        """max_string cuts string values (incl. repr and base64 fields), not keys."""
        value = {"long_key_name": "abcdefgh", "b": b"hello world", "o": object, "s": "abc"}
        out = strict_loads(dumps(value, max_string=3))
        assert out["long_key_name"] == "abc<5 more chars>"
        assert out["b"] == {"type": "byt<2 more chars>", "base64": "aGV<13 more chars>"}
        assert out["o"]["repr"] == "<cl<13 more chars>"  # <class 'object'>
        assert out["s"] == "abc"

    def test_max_items_cuts_arrays_objects_and_sets(self) -> None:
        """max_items keeps the first items of arrays and objects and says how many are left."""
        assert dumps(list(range(5)), max_items=2) == '[0,1,"<3 more items>"]'
        assert dumps((1, 2), max_items=2) == "[1,2]"
        assert dumps({3, 1, 2}, max_items=2) == '[1,2,"<1 more items>"]'
        out = dumps({"a": 1, "b": [1, 2, 3], "c": 3}, max_items=2)
        assert out == '{"a":1,"b":[1,2,"<1 more items>"],"<more>":"<1 more entries>"}'

    def test_more_marker_key_does_not_replace_an_entry(self) -> None:
        """An object that already has a "<more>" key keeps it; the marker gets a suffix."""
        out = strict_loads(dumps({"<more>": 1, "x": 2, "y": 3}, max_items=2))
        assert out == {"<more>": 1, "x": 2, "<more> (2)": "<1 more entries>"}


class TestOptions:
    @pytest.mark.parametrize(
        "options",
        [
            {"max_depth": -1},
            {"max_depth": None},
            {"max_depth": 1.5},
            {"max_depth": True},
            {"indent": -2},
            {"indent": "  "},
            {"max_string": -1},
            {"max_items": [3]},
            {"sort_keys": 1},
        ],
    )
    def test_bad_options_raise(self, options: dict[str, Any]) -> None:
        """A wrong option type or a negative count raises SerializeOptionError."""
        with pytest.raises(SerializeOptionError, match="dumps\\(\\) option"):
            dumps([1], **options)

    def test_option_error_is_a_logstream_error_and_value_error(self) -> None:
        """SerializeOptionError is both a LogStreamError and a ValueError."""
        assert issubclass(SerializeOptionError, LogStreamError)
        assert issubclass(SerializeOptionError, ValueError)

    def test_cached_options_do_not_confuse_true_with_one(self) -> None:
        """An option cached as 1 does not let True through as the same option."""
        assert dumps([[1]], max_depth=1) == '["<too deep>"]'
        with pytest.raises(SerializeOptionError):
            dumps([[1]], max_depth=True)

    def test_exported_from_the_package(self) -> None:
        """dumps is importable from logstream."""
        assert logstream.dumps is dumps


# Hypothesis strategies.

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=40,
)


class Opaque:
    """An object with no JSON form, for the mixtures."""

    def __repr__(self) -> str:
        return "Opaque()"


def huge_int() -> int:
    """Return an int too long for ``str()`` where Python limits int digits (3.9.14+)."""
    return 10**5000


odd_factories: list[Any] = [
    lambda: float("nan"),
    lambda: float("inf"),
    lambda: float("-inf"),
    huge_int,
    lambda: "\ud800",
    lambda: uuid.UUID(int=7),
    lambda: datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc),
    lambda: datetime.time(1, 2),
    lambda: datetime.timedelta(seconds=1.25),
    lambda: decimal.Decimal("NaN"),
    lambda: decimal.Decimal("2.50"),
    lambda: Color.PAIR,
    lambda: Level.LOW,
    lambda: b"\x00\xff",
    lambda: bytearray(b"ab"),
    BadRepr,
    NonStrRepr,
    WeirdEq,
    BadGetattr,
    OddDump,
    BrokenDump,
    lambda: Opaque(),
    lambda: len,
    lambda: int,
    lambda: Point,
    lambda: RunLogPatch(add_op("/a", 1)),
]
# Factories, not instances: hypothesis reprs its strategies' elements, and some of these
# objects refuse to be repr'd. BadClass is left out: hypothesis itself cannot handle it
# (TestObjects covers it).
odd_leaves = st.sampled_from(odd_factories).map(lambda make: make())
hashable_odd = st.sampled_from(
    [None, 1, 2.5, float("nan"), True, "k", (1, "t"), uuid.UUID(int=1), Color.RED]
) | st.builds(UniqueWeirdEq)
odd_values = st.recursive(
    st.none() | st.integers() | st.floats() | st.text() | odd_leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.lists(children, max_size=4).map(deque)
        | st.dictionaries(st.text(max_size=4) | hashable_odd, children, max_size=4)
        | st.frozensets(hashable_odd, max_size=4)
        | st.sets(hashable_odd, max_size=4)
        | st.builds(Point, st.integers(), children)
        | st.builds(lambda c: ModelV2(v=c), children)
        | st.builds(lambda c: RunLogPatch(add_op("/x", c)), children)
    ),
    max_leaves=30,
)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(json_values, st.sampled_from([None, 0, 2]), st.booleans())
    def test_json_values_round_trip(self, value: Any, indent: Optional[int], sort: bool) -> None:
        """For any JSON value (no NaN), json.loads(dumps(v)) == v, and the text is json's."""
        out = dumps(value, indent=indent, sort_keys=sort)
        assert strict_loads(out) == value
        assert out == json_dumps(value, indent=indent, sort_keys=sort)

    @settings(max_examples=200, deadline=None)
    @given(json_values, st.sampled_from([None, 2]), st.booleans())
    def test_walker_writes_what_the_fast_path_writes(
        self, value: Any, indent: Optional[int], sort: bool
    ) -> None:
        """The walker (forced by dict/list subclasses) writes the same text as json.dumps."""
        out = dumps(walked(value), indent=indent, sort_keys=sort)
        assert out == json_dumps(value, indent=indent, sort_keys=sort)

    @settings(max_examples=200, deadline=None)
    @given(json_values, st.integers(0, 6), st.integers(0, 4), st.integers(0, 4))
    def test_limits_agree_between_fast_path_and_walker(
        self, value: Any, depth: int, items: int, chars: int
    ) -> None:
        """With max_depth, max_items and max_string, both paths write the same text."""
        options: dict[str, Any] = {"max_depth": depth, "max_items": items, "max_string": chars}
        assert dumps(value, **options) == dumps(walked(value), **options)
        strict_loads(dumps(value, **options))

    @settings(max_examples=400, deadline=None)
    @given(odd_values, st.sampled_from([None, 2]), st.booleans(), st.booleans())
    def test_odd_mixtures_never_raise_and_give_strict_json(
        self, value: Any, indent: Optional[int], sort: bool, cyclic: bool
    ) -> None:
        """Any nesting of odd types, with or without a cycle, renders to strict ASCII JSON."""
        if cyclic:
            value = [value]
            value.append(value)
        out = dumps(value, indent=indent, sort_keys=sort)
        assert out.isascii()
        strict_loads(out)
        assert dumps(value, indent=indent, sort_keys=sort) == out  # deterministic


class CountedLeaf:
    """A hashable object rendered through ``model_dump``, counting how often it is."""

    calls = 0

    def __init__(self, n: int) -> None:
        self.n = n

    def model_dump(self) -> dict[str, int]:
        CountedLeaf.calls += 1
        return {"n": self.n}


class LazyTree:
    """A model whose ``model_dump`` builds two fresh children at every call."""

    calls = 0

    def model_dump(self) -> dict[str, Any]:
        LazyTree.calls += 1
        return {"a": LazyTree(), "b": LazyTree()}


class EndlessList(list):  # type: ignore[type-arg]
    """A list subclass whose ``__iter__`` never ends."""

    def __iter__(self) -> Any:
        while True:
            yield 1


class EndlessMapping(Mapping[str, str]):
    """A mapping whose ``__iter__`` never ends."""

    def __getitem__(self, key: str) -> str:
        return key

    def __len__(self) -> int:
        return 1

    def __iter__(self) -> Iterator[str]:
        n = 0
        while True:
            yield str(n)
            n += 1


def nested_sets(levels: int) -> frozenset[Any]:
    """Return frozensets nested ``levels`` deep, each with a counted leaf and a string."""
    value: frozenset[Any] = frozenset({CountedLeaf(0), "s"})
    for n in range(1, levels + 1):
        value = frozenset({value, CountedLeaf(n), "s"})
    return value


class TestWorkBudget:
    def test_nested_mixed_sets_render_each_element_once(self) -> None:
        """Sorting a set's elements does not render them a second time at each level."""
        value = nested_sets(14)
        CountedLeaf.calls = 0
        out = dumps(value)
        assert CountedLeaf.calls == 15
        CountedLeaf.calls = 0
        assert dumps(value) == out  # deterministic
        parsed = strict_loads(out)
        for _ in range(14):
            texts = [json.dumps(x, separators=(",", ":")) for x in parsed]
            assert texts == sorted(texts)
            parsed = next(x for x in parsed if isinstance(x, list))

    def test_nested_sets_keep_their_indentation(self) -> None:
        """A set's pre-rendered elements are indented for the depth they are written at."""
        out = dumps({"k": [frozenset({(1, 2), "a"})]}, indent=2)
        assert out == json.dumps({"k": [["a", [1, 2]]]}, indent=2)

    def test_a_lazy_tree_stops_at_max_values(self) -> None:
        """Fresh objects from model_dump at every level are cut off after max_values."""
        LazyTree.calls = 0
        out = dumps(LazyTree(), max_values=1000)
        assert 900 < LazyTree.calls <= 1001
        assert OVER_BUDGET in out
        strict_loads(out)

    @pytest.mark.parametrize("make", [EndlessList, EndlessMapping])
    def test_an_endless_iter_ends_with_the_marker(self, make: Any) -> None:
        """A container whose __iter__ never ends is cut at max_values, with the marker last."""
        out = dumps({"x": make()}, max_values=500)
        inner = strict_loads(out)["x"]
        items = list(inner.values()) if isinstance(inner, dict) else inner
        assert items[-1] == OVER_BUDGET
        assert 400 < len(items) <= 501

    def test_max_chars_bounds_the_text(self) -> None:
        """Objects rendered to long text stop once about max_chars characters are written."""
        value = [Opaque() for _ in range(100_000)]
        out = dumps(value, max_chars=50_000)
        assert 50_000 < len(out) < 50_000 + 64 * 100
        assert strict_loads(out)[-1] == OVER_BUDGET
        assert strict_loads(out)[-2] != OVER_BUDGET  # one marker per container

    def test_the_defaults_bound_a_lazy_tree(self) -> None:
        """With the default budget a lazy tree of depth 200 ends (it has 2**200 nodes)."""
        LazyTree.calls = 0
        out = dumps(LazyTree(), max_values=DEFAULT_MAX_VALUES // 100)
        assert LazyTree.calls <= DEFAULT_MAX_VALUES // 100 + 1
        assert OVER_BUDGET in out

    def test_none_turns_the_budget_off(self) -> None:
        """max_values=None and max_chars=None write everything, as before."""
        value = [Opaque() for _ in range(50)]
        assert dumps(value, max_values=None, max_chars=None) == dumps(value)
        assert OVER_BUDGET not in dumps(value, max_values=None, max_chars=None)

    def test_plain_data_in_memory_does_not_count(self) -> None:
        """Strings and numbers in exact lists are not values taken apart: nothing is cut."""
        value: list[Any] = [*range(5000), float("nan")]
        assert dumps(value, max_values=10).endswith(',4999,"NaN"]')

    @pytest.mark.parametrize("option", ["max_values", "max_chars"])
    @pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
    def test_bad_budget_options_are_refused(self, option: str, bad: Any) -> None:
        """A budget that is not a non-negative int or None is a SerializeOptionError."""
        with pytest.raises(SerializeOptionError, match=option):
            dumps([1], **{option: bad})

    @settings(max_examples=300, deadline=None)
    @given(odd_values, st.integers(0, 40), st.sampled_from([None, 0, 200, 2000]))
    def test_a_budget_cuts_or_changes_nothing(
        self, value: Any, values: int, chars: Optional[int]
    ) -> None:
        """Under any budget the text is strict JSON, and equal to the unbounded text if uncut."""
        out = dumps(value, max_values=values, max_chars=chars)
        strict_loads(out)
        if OVER_BUDGET not in out:
            assert out == dumps(value, max_values=None, max_chars=None)

    @settings(max_examples=100, deadline=None)
    @given(odd_values, st.sampled_from([EndlessList, EndlessMapping]), st.integers(0, 300))
    def test_endless_containers_anywhere_are_cut(self, value: Any, make: Any, values: int) -> None:
        """An endless container beside any value ends the text with the marker, bounded."""
        out = dumps([value, make()], max_values=values)
        assert OVER_BUDGET in out
        strict_loads(out)
