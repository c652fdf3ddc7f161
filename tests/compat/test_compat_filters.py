"""Differential tests for the include/exclude filters and ``include_run``."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableLambda
from langchain_core.tracers.run_collector import RunCollectorCallbackHandler
from langchain_core.tracers.schemas import Run

from .harness import LangChainHandler, Normalizer, Scenario, compare
from .test_compat_models import KeywordRetriever, shout

FILTER_ARGS = (
    "include_names",
    "include_types",
    "include_tags",
    "exclude_names",
    "exclude_types",
    "exclude_tags",
)


def filter_chain() -> Runnable[Any, Any]:
    """A chain with many distinct names, run types and tags (and a nested sequence)."""
    prompt = ChatPromptTemplate.from_messages([("human", "{context}")])
    model = GenericFakeChatModel(messages=iter([AIMessage(content="red things here")]))
    post = (
        RunnableLambda(lambda s: {"text": s}, name="to_args").with_config(tags=["keep", "search"])
        | shout
    ).with_config(run_name="post")
    return (
        KeywordRetriever().with_config(tags=["search"])
        | RunnableLambda(
            lambda docs: {"context": " / ".join(d.page_content for d in docs)}, name="fmt"
        )
        | prompt
        | model.with_config(tags=["model"])
        | StrOutputParser()
        | post
    )


FILTERS: list[dict[str, Any]] = [
    {},
    {"include_names": ["fmt"]},
    {"include_names": []},
    {"include_names": ["no-such-run"]},
    {"include_names": ["post", "StrOutputParser"]},
    {"include_types": ["chat_model"]},
    {"include_types": ["llm"]},
    {"include_types": ["prompt", "parser"]},
    {"include_types": ["tool", "retriever"]},
    {"include_types": []},
    {"include_tags": ["search"]},
    {"include_tags": ["seq:step:3"]},
    {"include_tags": []},
    {"exclude_names": ["fmt", "shout"]},
    {"exclude_names": []},
    {"exclude_types": ["chain"]},
    {"exclude_tags": ["model", "keep"]},
    {"include_names": ["fmt"], "include_types": ["prompt"]},
    {"include_types": ["chain"], "exclude_tags": ["keep"]},
    {"include_tags": ["search"], "exclude_names": ["to_args"]},
    {"include_names": [], "exclude_names": ["fmt"]},
    {"exclude_names": ["fmt"], "exclude_types": ["parser"], "exclude_tags": ["search"]},
    {
        "include_names": ["fmt", "post"],
        "include_types": ["chat_model", "llm", "tool"],
        "include_tags": ["search"],
        "exclude_names": ["KeywordRetriever"],
        "exclude_types": ["prompt"],
        "exclude_tags": ["keep"],
    },
]


def _filter_id(kwargs: dict[str, Any]) -> str:
    if not kwargs:
        return "no-filter"
    return ",".join(f"{k}={'+'.join(v) or '[]'}" for k, v in kwargs.items())


@pytest.mark.parametrize("fmt", ["streaming_events", "original"])
@pytest.mark.parametrize("mode", ["astream", "stream", "invoke"])
@pytest.mark.parametrize("filters", FILTERS, ids=_filter_id)
def test_filters_ops_match(candidate: type, filters: dict[str, Any], mode: str, fmt: str) -> None:
    """Each filter alone and in combination selects the same runs with identical ops."""
    compare(
        Scenario(filter_chain, "red", mode=mode, handler_kwargs={**filters, "_schema_format": fmt}),
        candidate,
    )


@pytest.mark.parametrize("filters", FILTERS[:6], ids=_filter_id)
def test_filters_with_waiting_consumer_and_no_auto_close(
    candidate: type, filters: dict[str, Any]
) -> None:
    """Filters combined with a consumer already waiting and auto_close off give identical ops."""
    compare(
        Scenario(
            filter_chain,
            "red",
            mode="astream",
            consumer_waiting=True,
            handler_kwargs={**filters, "auto_close": False},
        ),
        candidate,
    )


# ---------------------------------------------------------------------------
# include_run on real Run objects
# ---------------------------------------------------------------------------


def _flatten(run: Run) -> list[Run]:
    out = [run]
    for child in run.child_runs or []:
        out.extend(_flatten(child))
    return out


def collect_runs(
    handler: Optional[Any] = None,
    *,
    fmt: str = "streaming_events",
    root_id: Optional[uuid.UUID] = None,
) -> list[Run]:
    """Invoke ``filter_chain`` with a run collector (and ``handler``); return every Run."""
    collector = RunCollectorCallbackHandler(_schema_format=fmt)
    callbacks: list[Any] = [collector] + ([handler] if handler is not None else [])
    config: dict[str, Any] = {"callbacks": callbacks}
    if root_id is not None:
        config["run_id"] = root_id
    filter_chain().invoke("red", config)
    (root,) = collector.traced_runs
    return _flatten(root)


@pytest.fixture(scope="module")
def real_runs() -> list[Run]:
    """Every Run (root and descendants) of one invocation of ``filter_chain``."""
    runs = collect_runs()
    assert len(runs) >= 9
    return runs


def _new_handler(cls: type, kwargs: dict[str, Any]) -> Any:
    if issubclass(cls, LangChainHandler):
        # LangChain's handler needs an event loop at construction.
        async def make() -> Any:
            return cls(**kwargs)

        return asyncio.run(make())
    return cls(**kwargs)


def _verdicts(handler: Any, runs: list[Run]) -> list[tuple[str, str, bool]]:
    return [(r.name, r.run_type, bool(handler.include_run(r))) for r in runs]


@pytest.mark.parametrize("filters", FILTERS, ids=_filter_id)
def test_include_run_on_real_runs(
    candidate: type, real_runs: list[Run], filters: dict[str, Any]
) -> None:
    """include_run agrees with LangChain's on every real Run of a traced chain."""
    ours = _verdicts(_new_handler(candidate, filters), real_runs)
    theirs = _verdicts(_new_handler(LangChainHandler, filters), real_runs)
    assert ours == theirs


def test_include_run_excludes_the_root_after_a_run(candidate: type) -> None:
    """After tracing a run, include_run is False for its root Run and filter-driven for the rest."""
    results = {}
    for cls in (LangChainHandler, candidate):

        async def go(cls: type = cls) -> list[tuple[str, str, bool]]:
            handler = cls(auto_close=False, exclude_types=["prompt"])
            root_id = uuid.uuid4()
            runs = await asyncio.get_running_loop().run_in_executor(
                None, lambda: collect_runs(handler, root_id=root_id)
            )
            assert runs[0].id == root_id
            return _verdicts(handler, runs)

        results[cls] = asyncio.run(go())
    assert results[LangChainHandler][0][2] is False
    assert results[candidate] == results[LangChainHandler]


_names = st.sampled_from(
    [
        "fmt",
        "post",
        "to_args",
        "shout",
        "StrOutputParser",
        "KeywordRetriever",
        "ChatPromptTemplate",
        "GenericFakeChatModel",
        "RunnableSequence",
        "zzz",
    ]
)
_types = st.sampled_from(
    ["chain", "prompt", "parser", "tool", "retriever", "chat_model", "llm", "zzz"]
)
_tags = st.sampled_from(
    ["search", "keep", "model", "seq:step:1", "seq:step:3", "seq:step:6", "zzz"]
)
_filter_value = {
    "include_names": _names,
    "exclude_names": _names,
    "include_types": _types,
    "exclude_types": _types,
    "include_tags": _tags,
    "exclude_tags": _tags,
}
filter_kwargs = st.fixed_dictionaries(
    {},
    optional={
        k: st.one_of(st.lists(v, max_size=3), st.lists(v, max_size=2).map(tuple))
        for k, v in _filter_value.items()
    },
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(filters=filter_kwargs)
def test_include_run_matches_for_random_filters(
    candidate: type, real_runs: list[Run], filters: dict[str, Any]
) -> None:
    """For random filter combinations (lists or tuples), include_run agrees on all real Runs."""
    ours = _verdicts(_new_handler(candidate, filters), real_runs)
    theirs = _verdicts(_new_handler(LangChainHandler, filters), real_runs)
    assert ours == theirs, Normalizer().value(filters)


_run_names = st.one_of(_names, st.text(max_size=8))
_run_tags = st.one_of(st.none(), st.lists(st.one_of(_tags, st.text(max_size=5)), max_size=4))


def _synthetic_run(name: str, run_type: str, tags: Optional[list[str]]) -> Run:
    run = Run(id=uuid.uuid4(), name=name, run_type=run_type, inputs={})
    run.tags = tags  # may be None, which the constructor would normalize away
    return run


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    filters=filter_kwargs,
    runs=st.lists(st.tuples(_run_names, _types, _run_tags), min_size=1, max_size=5),
)
def test_include_run_matches_on_synthetic_runs(
    candidate: type, filters: dict[str, Any], runs: list[tuple[str, str, Optional[list[str]]]]
) -> None:
    """include_run agrees on Run objects with arbitrary names, types and tags (even None)."""
    run_objects = [_synthetic_run(*spec) for spec in runs]
    ours = _verdicts(_new_handler(candidate, filters), run_objects)
    theirs = _verdicts(_new_handler(LangChainHandler, filters), run_objects)
    assert ours == theirs
