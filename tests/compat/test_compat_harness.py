"""Self-tests of the differential harness (normalizer, diffs, LangChain determinism)."""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable

import pytest
from langchain_core.documents import Document
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.prompt_values import ChatPromptValue
from langchain_core.runnables import Runnable

from .harness import (
    CANDIDATE_ENV,
    LangChainHandler,
    Normalizer,
    Result,
    Scenario,
    assert_same_ops,
    canonical_unordered,
    describe_difference,
    normalize,
    run_scenario,
)
from .test_compat_filters import filter_chain
from .test_compat_models import chat_chain, rag_chain
from .test_compat_runnables import erroring_sequence, generator_sequence, tagged_sequence

U1 = "0f8fad5b-d9cb-469f-a165-70867728950e"
U2 = "7c9e6679-7425-40de-944b-e07fc1f90ae7"


def test_candidate_is_ours_unless_overridden(candidate: type) -> None:
    """The suite compares against logstream's handler unless the env override asks for LangChain."""
    if os.environ.get(CANDIDATE_ENV, "").strip().lower() == "langchain":
        assert candidate is LangChainHandler
    else:
        assert candidate.__module__.split(".")[0] == "logstream"
        assert not issubclass(candidate, LangChainHandler)


def test_uuids_numbered_by_first_appearance_everywhere() -> None:
    """UUIDs in values, message ids, dict keys and uuid.UUID objects share one numbering."""
    ops = [
        [{"op": "replace", "path": "", "value": {"id": U1}}],
        [
            {
                "op": "add",
                "path": "/logs/a",
                "value": {"id": U2, "m": f"lc_run--{U1}", "r": f"run-{U2}"},
            }
        ],
        [{"op": "add", "path": "/x", "value": {U2: uuid.UUID(U1), "upper": U1.upper()}}],
    ]
    assert normalize(ops) == [
        [{"op": "replace", "path": "", "value": {"id": "<id0>"}}],
        [
            {
                "op": "add",
                "path": "/logs/a",
                "value": {"id": "<id1>", "m": "lc_run--<id0>", "r": "run-<id1>"},
            }
        ],
        [{"op": "add", "path": "/x", "value": {"<id1>": {"__uuid__": "<id0>"}, "upper": "<id0>"}}],
    ]


def test_different_ids_same_structure_normalize_equal() -> None:
    """Sequences differing only in their UUIDs normalize equal; swapped id roles do not."""
    a = [[{"op": "add", "path": "/p", "value": [U1, U2, U1]}]]
    b = [[{"op": "add", "path": "/p", "value": [U2, U1, U2]}]]
    c = [[{"op": "add", "path": "/p", "value": [U1, U2, U2]}]]
    assert normalize(a) == normalize(b)
    assert normalize(a) != normalize(c)


def test_timestamps_replaced_only_when_millisecond_iso() -> None:
    """start_time/end_time become <time> only for ms-precision UTC ISO strings."""
    good = "2024-05-01T12:00:00.123+00:00"
    n = Normalizer()
    assert n.op({"op": "add", "path": "/logs/a/end_time", "value": good})["value"] == "<time>"
    assert n.value({"start_time": good, "end_time": None}) == {
        "start_time": "<time>",
        "end_time": None,
    }
    assert n.value({"start_time": "2024-05-01T12:00:00.123456+00:00"})["start_time"] != "<time>"
    assert n.value({"start_time": "2024-05-01T12:00:00.123Z"})["start_time"] != "<time>"
    assert n.value({"other": good}) == {"other": good}


def test_langchain_objects_keep_their_class_recursively() -> None:
    """Messages, prompt values and Documents flatten to dicts tagged with their (nested) class."""
    value = ChatPromptValue(messages=[AIMessage(content="x", id=f"run-{U1}")])
    flat = Normalizer().value(value)
    assert flat["__class__"].endswith("ChatPromptValue")
    (msg,) = flat["messages"]
    assert msg["__class__"].endswith(".AIMessage") and msg["id"] == "run-<id0>"
    assert Normalizer().value(AIMessage(content="x")) != Normalizer().value(
        AIMessageChunk(content="x")
    )
    doc = Normalizer().value(Document(page_content="p", metadata={"k": (1, 2)}))
    assert doc["metadata"] == {"k": {"__tuple__": [1, 2]}}


def test_describe_difference_points_at_first_differing_patch() -> None:
    """The failure message names the first differing patch index and shows both sides."""
    a = [[{"op": "replace", "path": "", "value": 1}], [{"op": "add", "path": "/a", "value": 1}]]
    b = [[{"op": "replace", "path": "", "value": 1}], [{"op": "add", "path": "/a", "value": 2}]]
    text = describe_difference(a, b)
    assert text is not None and "patch #1" in text and "'value': 2" in text
    assert describe_difference(a, a) is None
    shorter = describe_difference(a, a[:1])
    assert shorter is not None and "<no patch>" in shorter


def test_assert_same_ops_compares_errors_and_outputs() -> None:
    """Identical ops but different exceptions or outputs still fail the comparison."""
    ops = [[{"op": "replace", "path": "", "value": None}]]
    with pytest.raises(AssertionError, match="errors differ"):
        assert_same_ops(Result(ops, None, ValueError("a")), Result(ops, None, ValueError("b")))
    with pytest.raises(AssertionError, match="outputs differ"):
        assert_same_ops(Result(ops, 1), Result(ops, 2))
    with pytest.raises(AssertionError, match="closed"):
        assert_same_ops(Result(ops, 1, closed=True), Result(ops, 1, closed=False))


def test_canonical_unordered_ignores_key_assignment_but_not_content() -> None:
    """Swapping which concurrent branch got x / x:2 is equal; changing a branch's output is not."""

    def entry(key: str, rid: str, tag: str, out: int) -> list[list[dict[str, Any]]]:
        return [
            [
                {
                    "op": "add",
                    "path": f"/logs/{key}",
                    "value": {
                        "id": rid,
                        "name": "x",
                        "tags": [tag],
                        "final_output": None,
                        "streamed_output": [],
                    },
                }
            ],
            [{"op": "add", "path": f"/logs/{key}/final_output", "value": out}],
        ]

    root = [[{"op": "replace", "path": "", "value": {"id": U1, "logs": {}}}]]
    left, right = (
        entry("x", U2, "map:key:left", 1),
        entry("x:2", str(uuid.uuid4()), "map:key:right", 2),
    )
    swapped_l, swapped_r = (
        entry("x:2", U2, "map:key:left", 1),
        entry("x", str(uuid.uuid4()), "map:key:right", 2),
    )
    a = [*root, left[0], right[0], left[1], right[1]]
    b = [*root, swapped_r[0], swapped_l[0], swapped_l[1], swapped_r[1]]
    assert canonical_unordered(a) == canonical_unordered(b)
    changed = entry("x:2", U2, "map:key:right", 3)
    c = [*root, left[0], changed[0], left[1], changed[1]]
    assert canonical_unordered(a) != canonical_unordered(c)


DETERMINISM_CASES: list[tuple[str, Callable[[], Runnable[Any, Any]], Any, str, dict[str, Any]]] = [
    ("generator-astream", generator_sequence, "a b c", "astream", {}),
    ("generator-stream", generator_sequence, "a b c", "stream", {}),
    ("tagged-invoke", tagged_sequence, 1, "invoke", {}),
    ("chat-astream", chat_chain, {"question": "q"}, "astream", {}),
    (
        "chat-invoke-original",
        chat_chain,
        {"question": "q"},
        "invoke",
        {"_schema_format": "original"},
    ),
    ("rag-ainvoke", rag_chain, "red", "ainvoke", {}),
    ("filters-stream", filter_chain, "red", "stream", {"include_types": ["chat_model", "tool"]}),
    ("error-astream", erroring_sequence, 1, "astream", {}),
]


@pytest.mark.parametrize(
    ("factory", "value", "mode", "kwargs"),
    [case[1:] for case in DETERMINISM_CASES],
    ids=[case[0] for case in DETERMINISM_CASES],
)
def test_two_langchain_runs_normalize_identically(
    factory: Callable[[], Runnable[Any, Any]], value: Any, mode: str, kwargs: dict[str, Any]
) -> None:
    """Two runs of LangChain's own handler differ raw (ids, times) but are equal once normalized."""
    scenario = Scenario(factory, value, mode=mode, handler_kwargs=kwargs)
    first = run_scenario(LangChainHandler, scenario)
    second = run_scenario(LangChainHandler, scenario)
    assert first.patches != second.patches, "raw patches should differ (fresh run ids)"
    assert_same_ops(first, second, label_expected="langchain#1", label_actual="langchain#2")
