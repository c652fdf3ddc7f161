"""Tests for snapshots (logstream._values), envelopes (logstream._envelopes) and wire values."""

from __future__ import annotations

import sys
from collections import OrderedDict, defaultdict
from typing import Any

import pytest

from logstream._emitter import SCHEMA_FORMATS, SchemaFormat, wire_inputs, wire_outputs
from logstream._envelopes import wrap_chain_inputs, wrap_chain_outputs, wrap_tool_inputs
from logstream._values import snapshot

RAW_TYPES = ["llm", "chat_model", "retriever"]
UNWRAPPED_TYPES = ["chain", "tool", "prompt", "parser", "custom"]
SERIALIZED = {
    "lc": 1,
    "type": "constructor",
    "id": ["langchain", "schema", "AIMessage"],
    "kwargs": {},
}


class Opaque:
    """A non-container object with state, to check it is shared rather than copied."""

    def __init__(self) -> None:
        self.items: list[int] = [1]


class TestSnapshot:
    @pytest.mark.parametrize("value", ["s", 1, 1.5, True, None])
    def test_scalars_are_returned_as_is(self, value: Any) -> None:
        """Strings, numbers, booleans and None come back as the same object."""
        assert snapshot(value) is value

    def test_dict_is_copied_recursively(self) -> None:
        """Mutating the original dict at any depth after the snapshot leaves the copy as it was."""
        original: dict[str, Any] = {"a": {"b": [1, {"c": 2}]}, "d": 3}
        copied = snapshot(original)
        original["a"]["b"][1]["c"] = 99
        original["a"]["b"].append(4)
        original["a"]["new"] = 1
        original["d"] = 0
        assert copied == {"a": {"b": [1, {"c": 2}]}, "d": 3}
        assert copied is not original

    def test_list_is_copied_recursively(self) -> None:
        """Mutating the original list or its nested dicts after the snapshot leaves the copy."""
        original: list[Any] = [{"a": 1}, [2]]
        copied = snapshot(original)
        original[0]["a"] = 2
        original[1].append(3)
        original.append(4)
        assert copied == [{"a": 1}, [2]]

    def test_self_referencing_dict_keeps_its_cycle(self) -> None:
        """A dict containing itself is copied into a new dict containing the new dict."""
        original: dict[str, Any] = {"n": 1}
        original["self"] = original
        copied = snapshot(original)
        assert copied is not original
        assert copied["self"] is copied
        assert copied["n"] == 1

    def test_mutual_cycle_is_kept(self) -> None:
        """A list and a dict referring to each other are copied into the same shape of cycle."""
        items: list[Any] = []
        holder: dict[str, Any] = {"items": items}
        items.append(holder)
        copied = snapshot(holder)
        assert copied["items"][0] is copied
        assert copied["items"] is not items

    def test_shared_children_stay_shared_in_the_copy(self) -> None:
        """A dict reached twice is copied once, so the copy has the same aliasing."""
        child = {"x": 1}
        copied = snapshot([child, child])
        assert copied[0] is copied[1]
        assert copied[0] is not child

    def test_dict_subclasses_become_plain_dicts(self) -> None:
        """OrderedDict, defaultdict and user subclasses become plain dicts with the same items."""

        class MyDict(dict):  # type: ignore[type-arg]
            pass

        nested = defaultdict(list, {"k": [1]})
        copied = snapshot(OrderedDict(a=MyDict(b=1), c=nested))
        assert type(copied) is dict
        assert type(copied["a"]) is dict
        assert type(copied["c"]) is dict
        assert copied == {"a": {"b": 1}, "c": {"k": [1]}}
        with pytest.raises(KeyError):
            copied["c"]["missing"]

    def test_other_objects_are_shared(self) -> None:
        """Objects that are not dicts or lists (instances, tuples) are passed by reference."""
        obj = Opaque()
        pair = (1, [2])
        copied = snapshot({"obj": obj, "pair": pair})
        assert copied["obj"] is obj
        assert copied["pair"] is pair
        assert snapshot(obj) is obj

    def test_serialized_object_dicts_stay_dicts(self) -> None:
        """A dict shaped like a serialized LangChain object is copied as a dict, not revived."""
        copied = snapshot({"message": SERIALIZED})
        assert copied == {"message": SERIALIZED}
        assert type(copied["message"]) is dict
        assert copied["message"] is not SERIALIZED

    def test_non_string_keys_are_kept(self) -> None:
        """Dict keys are kept as they are, whatever their type."""
        assert snapshot({1: "a", (2, 3): "b"}) == {1: "a", (2, 3): "b"}

    def test_too_deep_value_is_passed_through(self) -> None:
        """A value nested deeper than the recursion limit is returned uncopied, without raising."""
        deep: list[Any] = []
        cursor = deep
        for _ in range(sys.getrecursionlimit() + 100):
            inner: list[Any] = []
            cursor.append(inner)
            cursor = inner
        assert snapshot(deep) is deep


class TestWrapChainInputs:
    def test_original_keeps_dicts(self) -> None:
        """In the original format a dict input is kept as the envelope itself."""
        assert wrap_chain_inputs({"question": "q"}, "original") == {"question": "q"}

    def test_original_wraps_other_values(self) -> None:
        """In the original format a non-dict input is wrapped under 'input'."""
        assert wrap_chain_inputs("q", "original") == {"input": "q"}
        assert wrap_chain_inputs([1], "original") == {"input": [1]}

    def test_streaming_events_always_wraps(self) -> None:
        """In streaming_events every input, dicts included, is wrapped under 'input'."""
        assert wrap_chain_inputs({"question": "q"}, "streaming_events") == {
            "input": {"question": "q"}
        }
        assert wrap_chain_inputs(None, "streaming_events") == {"input": None}


class TestWrapChainOutputs:
    def test_original_copies_dicts(self) -> None:
        """In the original format a dict output is the envelope, as a new dict."""
        outputs = {"answer": 1}
        wrapped = wrap_chain_outputs(outputs, "original")
        assert wrapped == {"answer": 1}
        outputs["answer"] = 2
        assert wrapped == {"answer": 1}

    def test_original_wraps_other_values(self) -> None:
        """In the original format a non-dict output is wrapped under 'output'."""
        assert wrap_chain_outputs(3, "original") == {"output": 3}

    def test_streaming_events_always_wraps(self) -> None:
        """In streaming_events every output is wrapped under 'output'."""
        assert wrap_chain_outputs({"a": 1}, "streaming_events") == {"output": {"a": 1}}
        assert wrap_chain_outputs("x", "streaming_events") == {"output": "x"}


class TestWrapToolInputs:
    def test_original_uses_structured_dict_inputs(self) -> None:
        """In the original format a tool's dict inputs are the envelope."""
        assert wrap_tool_inputs("q=1", {"q": 1}, "original") == {"q": 1}

    def test_original_falls_back_to_the_input_string(self) -> None:
        """In the original format a tool without dict inputs shows its input string."""
        assert wrap_tool_inputs("q=1", None, "original") == {"input": "q=1"}
        assert wrap_tool_inputs("q=1", "raw", "original") == {"input": "q=1"}

    def test_streaming_events_wraps_structured_inputs(self) -> None:
        """In streaming_events a tool keeps its structured inputs under 'input'."""
        assert wrap_tool_inputs("q=1", {"q": 1}, "streaming_events") == {"input": {"q": 1}}
        assert wrap_tool_inputs("q=1", None, "streaming_events") == {"input": None}


class TestWireInputs:
    @pytest.mark.parametrize("run_type", RAW_TYPES)
    def test_raw_types_show_their_envelope(self, run_type: str) -> None:
        """LLM, chat-model and retriever runs show the whole envelope."""
        envelope = {"prompts": ["hello"]}
        assert wire_inputs(run_type, envelope) == {"prompts": ["hello"]}

    @pytest.mark.parametrize("run_type", UNWRAPPED_TYPES)
    def test_other_types_show_the_inner_input(self, run_type: str) -> None:
        """Chains, tools, prompts and other runs show the value under 'input'."""
        assert wire_inputs(run_type, {"input": {"q": 1}}) == {"q": 1}
        assert wire_inputs(run_type, {"input": "text"}) == "text"

    @pytest.mark.parametrize("run_type", UNWRAPPED_TYPES)
    def test_placeholder_input_is_none(self, run_type: str) -> None:
        """The placeholder {'input': ''} that streaming runnables report means 'not known yet'."""
        assert wire_inputs(run_type, {"input": {"input": ""}}) is None

    def test_placeholder_only_when_exactly_the_placeholder(self) -> None:
        """A real input that merely contains an 'input' key is shown, not hidden."""
        assert wire_inputs("chain", {"input": {"input": "x"}}) == {"input": "x"}
        assert wire_inputs("chain", {"input": {"input": "", "more": 1}}) == {"input": "", "more": 1}
        assert wire_inputs("chain", {"input": ""}) == ""

    def test_raw_types_keep_a_placeholder_envelope(self) -> None:
        """The placeholder rule is only for unwrapped types; an LLM shows its envelope whole."""
        assert wire_inputs("llm", {"input": {"input": ""}}) == {"input": {"input": ""}}

    def test_non_dict_inputs_are_shown_as_they_are(self) -> None:
        """Inputs that are not an envelope dict (None, a string) are shown unchanged."""
        assert wire_inputs("chain", None) is None
        assert wire_inputs("chain", "plain") == "plain"

    def test_serialized_objects_are_not_revived(self) -> None:
        """A serialized-object dict in the inputs stays a dict."""
        assert wire_inputs("chat_model", {"messages": [[SERIALIZED]]}) == {
            "messages": [[SERIALIZED]]
        }
        assert wire_inputs("chain", {"input": SERIALIZED}) == SERIALIZED

    def test_result_is_a_snapshot(self) -> None:
        """Mutating the inputs after they were put on the wire does not change the wire value."""
        inputs: dict[str, Any] = {"input": {"q": [1]}}
        shown = wire_inputs("chain", inputs)
        inputs["input"]["q"].append(2)
        assert shown == {"q": [1]}


class TestWireOutputs:
    @pytest.mark.parametrize("run_type", ["chain", "tool", "llm", "retriever", "parser"])
    def test_original_shows_the_envelope(self, run_type: str) -> None:
        """In the original format the outputs are shown as they were kept."""
        assert wire_outputs(run_type, {"output": 1, "extra": 2}, "original") == {
            "output": 1,
            "extra": 2,
        }

    def test_original_prompt_shows_its_output_value(self) -> None:
        """In the original format a prompt run shows what is inside its 'output' key."""
        assert wire_outputs("prompt", {"output": SERIALIZED}, "original") == SERIALIZED
        assert wire_outputs("prompt", {"other": 1}, "original") == {"other": 1}

    @pytest.mark.parametrize("schema_format", sorted(SCHEMA_FORMATS))
    @pytest.mark.parametrize("run_type", RAW_TYPES)
    def test_raw_types_show_the_envelope(self, run_type: str, schema_format: SchemaFormat) -> None:
        """LLM, chat-model and retriever outputs are shown whole in both formats."""
        envelope = {"generations": [[{"text": "hi"}]], "llm_output": None}
        assert wire_outputs(run_type, envelope, schema_format) == envelope

    @pytest.mark.parametrize("run_type", UNWRAPPED_TYPES)
    def test_streaming_events_unwraps_output(self, run_type: str) -> None:
        """In streaming_events other runs show the value under 'output'."""
        assert wire_outputs(run_type, {"output": [1, 2]}, "streaming_events") == [1, 2]

    def test_streaming_events_without_output_key_is_none(self) -> None:
        """In streaming_events an envelope with no 'output' key, or not a dict, shows None."""
        assert wire_outputs("chain", {"answer": 1}, "streaming_events") is None
        assert wire_outputs("chain", "bare", "streaming_events") is None

    @pytest.mark.parametrize("schema_format", sorted(SCHEMA_FORMATS))
    @pytest.mark.parametrize("run_type", RAW_TYPES)
    def test_missing_outputs_are_the_empty_envelope_for_raw_types(
        self, run_type: str, schema_format: SchemaFormat
    ) -> None:
        """A raw-type run that ended without outputs shows the empty envelope {}."""
        assert wire_outputs(run_type, None, schema_format) == {}

    def test_missing_outputs_of_other_types(self) -> None:
        """Without outputs a chain shows {} in the original format and None in streaming_events."""
        assert wire_outputs("chain", None, "original") == {}
        assert wire_outputs("prompt", None, "original") == {}
        assert wire_outputs("chain", None, "streaming_events") is None

    def test_result_is_a_snapshot(self) -> None:
        """Mutating the outputs afterwards does not change the wire value, in either format."""
        outputs: dict[str, Any] = {"output": {"items": [1]}}
        original = wire_outputs("chain", outputs, "original")
        streaming = wire_outputs("chain", outputs, "streaming_events")
        outputs["output"]["items"].append(2)
        assert original == {"output": {"items": [1]}}
        assert streaming == {"items": [1]}
