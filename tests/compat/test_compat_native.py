"""Differential tests: ``logstream.astream_log`` / ``stream_log`` vs ``Runnable.astream_log``.

The same plain callables run on both sides: ours takes them as they are; LangChain's
side wraps them as runnables of the same name, so the root run, the chunks and the
nested runs are the same.

* A sync generator function ``g(x)`` becomes ``RunnableGenerator(transform, atransform,
  name=g.__name__)`` whose (a)transform runs ``g`` over each input
  (``RunnableLambda(g).astream_log()`` refuses sync generators, and
  ``RunnableGenerator(g)`` only has sync methods and takes an iterator of inputs).
* Async generator functions, coroutine functions and plain functions become
  ``RunnableLambda(fn)``.
* Nested runs: LangChain's side invokes ``RunnableLambda`` children and a streaming
  LLM with the child config; ours calls the same steps decorated with
  ``logstream.traced`` (an ``llm`` generator for the LLM).

LangChain's side always runs through ``astream_log`` in ``asyncio.run``; ours through
``astream_log`` (in ``asyncio.run``) or ``stream_log`` (a plain ``for``). Run ids
(uuid7 there, uuid4 here) and timestamps are normalized by the harness.

Where the two legitimately differ, the tests compare what should match and pin the
difference in their docstrings:

* LangChain adds ``ls_*`` / ``lc_versions`` metadata to model runs; native runs carry
  only the metadata they are given (stripped from LangChain's side before comparing).
* A chat model in LangChain's ``"original"`` format has ``AIMessageChunk`` items on
  ``streamed_output`` and a ``ChatGenerationChunk`` in its ``final_output``; a native
  ``chat_model`` run streaming strings shows the strings and a plain ``Generation``
  (both are ``type: "llm"`` entries there).
* LangChain does not prefix ``from`` of ``move`` / ``copy`` ops in the root's
  ``/final_output`` diff (its own ``diff=False`` state cannot apply them); ours does.

* A target that mutates a chunk after yielding it: LangChain diffs ``/final_output``
  against the mutated value, which does not apply to the state its earlier patches
  built; ours diffs against what was reported, so every state applies.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional

import jsonpatch
import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.language_models.llms import LLM
from langchain_core.messages import AIMessage
from langchain_core.outputs import GenerationChunk
from langchain_core.runnables import Runnable, RunnableConfig, RunnableGenerator, RunnableLambda

import logstream

from .harness import Normalizer, describe_difference, normalize

pytestmark = pytest.mark.filterwarnings("ignore:astream_log is deprecated")

APIS = ("astream_log", "stream_log")

# ---------------------------------------------------------------------------
# collecting both sides
# ---------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    """What one ``astream_log`` / ``stream_log`` call yielded, and what it raised."""

    items: list[Any]
    """Op lists (``diff=True``) or ``RunLog`` objects (``diff=False``)."""
    error: Optional[BaseException] = None

    @property
    def error_repr(self) -> Optional[str]:
        if self.error is None:
            return None
        return f"{type(self.error).__name__}: {self.error}"


def _item(item: Any, diff: bool) -> Any:
    return item.ops if diff else item


async def _acollect(stream: AsyncIterator[Any], diff: bool) -> Outcome:
    items: list[Any] = []
    try:
        async for item in stream:
            items.append(_item(item, diff))
    except Exception as e:
        return Outcome(items, e)
    return Outcome(items)


def run_langchain(runnable: Runnable[Any, Any], value: Any, **options: Any) -> Outcome:
    """Run ``runnable.astream_log`` (``tags`` / ``metadata`` go in its config)."""
    config: RunnableConfig = {}
    for key in ("tags", "metadata"):
        if key in options:
            config[key] = options.pop(key)
    diff = options.get("diff", True)
    return asyncio.run(_acollect(runnable.astream_log(value, config, **options), diff))


def run_ours(api: str, target: Callable[..., Any], value: Any, **options: Any) -> Outcome:
    """Run ``logstream.astream_log`` in ``asyncio.run`` or ``logstream.stream_log``."""
    diff = options.get("diff", True)
    if api == "astream_log":
        return asyncio.run(_acollect(logstream.astream_log(target, value, **options), diff))
    items: list[Any] = []
    try:
        for item in logstream.stream_log(target, value, **options):
            items.append(_item(item, diff))
    except Exception as e:
        return Outcome(items, e)
    return Outcome(items)


def _strip_model_metadata(patches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Drop the ``ls_*`` / ``lc_versions`` metadata LangChain adds to model runs."""
    out = copy.deepcopy(patches)
    for ops in out:
        for op in ops:
            value = op.get("value")
            if op["path"].startswith("/logs/") and isinstance(value, dict):
                meta = value.get("metadata")
                if isinstance(meta, dict):
                    value["metadata"] = {
                        k: v for k, v in meta.items() if not k.startswith(("ls_", "lc_"))
                    }
    return out


def assert_same_patches(expected: Outcome, actual: Outcome, strip_metadata: bool = False) -> None:
    """Assert identical normalized op lists and the same raised error (type and message)."""
    exp = expected.items
    if strip_metadata:
        exp = _strip_model_metadata(exp)
    diff = describe_difference(normalize(exp), normalize(actual.items))
    assert diff is None, diff
    assert expected.error_repr == actual.error_repr


def _model_metadata_stripped_state(state: Any) -> Any:
    state = copy.deepcopy(state)
    for entry in state["logs"].values():
        entry["metadata"] = {
            k: v for k, v in entry["metadata"].items() if not k.startswith(("ls_", "lc_"))
        }
    return state


def assert_same_states(expected: Outcome, actual: Outcome, strip_metadata: bool = False) -> None:
    """Assert identical normalized ``RunLog`` sequences (each state and the op history)."""
    ne, na = Normalizer(), Normalizer()
    exp = [
        (
            ne.patches(_strip_model_metadata([log.ops]) if strip_metadata else [log.ops]),
            ne.value(_model_metadata_stripped_state(log.state) if strip_metadata else log.state),
        )
        for log in expected.items
    ]
    act = [(na.patches([log.ops]), na.value(log.state)) for log in actual.items]
    assert len(exp) == len(act), (len(exp), len(act))
    for i, (e, a) in enumerate(zip(exp, act)):
        assert e[1] == a[1], f"state #{i} differs:\nlangchain: {e[1]!r}\nours:      {a[1]!r}"
        assert e[0] == a[0], f"accumulated ops of state #{i} differ"
    assert type(actual.items[-1]).__name__ == "RunLog"
    assert expected.error_repr == actual.error_repr


# ---------------------------------------------------------------------------
# targets and their LangChain counterparts
# ---------------------------------------------------------------------------


def as_runnable_generator(gen: Callable[[Any], Iterator[Any]]) -> Runnable[Any, Any]:
    """``gen(x)`` as a LangChain transform over the inputs, with ``gen``'s name."""

    def transform(inputs: Iterator[Any]) -> Iterator[Any]:
        for value in inputs:
            yield from gen(value)

    async def atransform(inputs: AsyncIterator[Any]) -> AsyncIterator[Any]:
        async for value in inputs:
            for chunk in gen(value):
                yield chunk

    return RunnableGenerator(transform, atransform, name=gen.__name__)


class Merge(dict):  # type: ignore[type-arg]
    """A dict adding up key by key (as LangChain's ``AddableDict``)."""

    def __add__(self, other: dict[str, Any]) -> Merge:
        out = Merge(self)
        for k, v in other.items():
            out[k] = out[k] + v if k in out else v
        return out


class Renamed(dict):  # type: ignore[type-arg]
    """A dict whose ``+`` renames its keys: the diff is a ``move`` op."""

    def __add__(self, other: dict[str, Any]) -> Renamed:
        return Renamed({f"{k}_": v for k, v in self.items()})


class NoAdd:
    """A chunk whose ``+`` raises something other than ``TypeError``."""

    def __add__(self, other: Any) -> Any:
        raise ValueError("no adding")


def gen_str(x: Any) -> Iterator[str]:
    yield "Hel"
    yield ""
    yield "lo"
    yield " world"


def gen_list(x: Any) -> Iterator[list[Any]]:
    yield [1]
    yield []
    yield [2, {"k": 3}]


def gen_dict(x: Any) -> Iterator[dict[str, Any]]:
    yield {"a": 1}
    yield {"b": [1, 2]}
    yield {"a": 1, "b": None}


def gen_int(x: int) -> Iterator[int]:
    yield 0
    yield x
    yield 2
    yield -5


def gen_mixed(x: Any) -> Iterator[Any]:
    yield "a"
    yield "b"
    yield 1
    yield 2.5
    yield [3]
    yield {"k": 4}
    yield (5,)
    yield "z"


def gen_none(x: Any) -> Iterator[Any]:
    yield None
    yield "a"
    yield None
    yield None
    yield "b"
    yield "c"


def gen_empty(x: Any) -> Iterator[Any]:
    return
    yield


def gen_tuple(x: Any) -> Iterator[tuple[Any, ...]]:
    yield ("a",)
    yield ("b", 1)


def gen_addable_dict(x: Any) -> Iterator[Merge]:
    yield Merge(answer="Hel")
    yield Merge(answer="lo", sources=["a"])
    yield Merge(sources=["b"])


async def agen_words(x: str) -> AsyncIterator[str]:
    for word in x.split():
        yield word + " "


async def agen_lists(x: Any) -> AsyncIterator[list[int]]:
    yield [1]
    yield [2, 3]


async def agen_mixed(x: Any) -> AsyncIterator[Any]:
    yield {"a": 1}
    yield None
    yield "s"
    yield "t"


async def coro_dict(x: int) -> dict[str, Any]:
    return {"input": x, "doubled": [x, x], "nested": {"ok": True}}


def func_dict(x: int) -> dict[str, Any]:
    return {"sum": x + 1, "items": ["a", "b"]}


def func_none(x: Any) -> None:
    return None


def _generator_case(gen: Callable[[Any], Iterator[Any]], value: Any = 1) -> Any:
    return pytest.param(gen, lambda: as_runnable_generator(gen), value, id=gen.__name__)


def _lambda_case(fn: Callable[..., Any], value: Any = 1) -> Any:
    return pytest.param(fn, lambda: RunnableLambda(fn), value, id=fn.__name__)


#: (our target, LangChain runnable factory, input); all match exactly.
ROOT_CASES = [
    _generator_case(gen_str),
    _generator_case(gen_list),
    _generator_case(gen_dict),
    _generator_case(gen_int, 7),
    _generator_case(gen_mixed),
    _generator_case(gen_none),
    _generator_case(gen_empty),
    _generator_case(gen_tuple),
    _generator_case(gen_addable_dict),
    _lambda_case(agen_words, "the quick brown fox"),
    _lambda_case(agen_lists),
    _lambda_case(agen_mixed),
    _lambda_case(coro_dict, 4),
    _lambda_case(func_dict, 4),
    _lambda_case(func_none),
]


# ---------------------------------------------------------------------------
# root-only targets
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("with_list", [True, False])
@pytest.mark.parametrize(("target", "factory", "value"), ROOT_CASES)
def test_root_ops_match(target: Any, factory: Any, value: Any, with_list: bool, api: str) -> None:
    """diff=True: the root's ops (streamed_output appends, final_output diffs) are LangChain's."""
    options = {"with_streamed_output_list": with_list}
    expected = run_langchain(factory(), value, **options)
    actual = run_ours(api, target, value, **options)
    assert expected.error is None
    assert_same_patches(expected, actual)


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("with_list", [True, False])
@pytest.mark.parametrize(("target", "factory", "value"), ROOT_CASES)
def test_root_states_match(
    target: Any, factory: Any, value: Any, with_list: bool, api: str
) -> None:
    """diff=False: every yielded RunLog (state and op history) equals LangChain's."""
    options = {"with_streamed_output_list": with_list, "diff": False}
    expected = run_langchain(factory(), value, **options)
    actual = run_ours(api, target, value, **options)
    assert expected.error is None
    assert_same_states(expected, actual)


def test_root_cases_cover_fallback_and_empty_patches() -> None:
    """The cases exercise the TypeError fallback, empty patches and list diffs on both sides."""
    mixed = run_langchain(as_runnable_generator(gen_mixed), 1, with_streamed_output_list=False)
    assert [op["value"] for ops in mixed.items[1:] for op in ops] == [
        "a",
        "ab",
        1,
        3.5,
        [3],
        {"k": 4},
        (5,),
        "z",
    ]
    nones = run_ours("astream_log", gen_none, 1, with_streamed_output_list=False)
    assert nones.items[1:] == [
        [],
        [{"op": "replace", "path": "/final_output", "value": "a"}],
        [],
        [],
        [{"op": "replace", "path": "/final_output", "value": "b"}],
        [{"op": "replace", "path": "/final_output", "value": "bc"}],
    ]
    lists = run_langchain(as_runnable_generator(gen_list), 1, with_streamed_output_list=False)
    assert lists.items[-1] == [
        {"op": "add", "path": "/final_output/1", "value": 2},
        {"op": "add", "path": "/final_output/2", "value": {"k": 3}},
    ]


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------


def gen_fails(x: Any) -> Iterator[str]:
    yield "a"
    yield "b"
    raise ValueError("boom midway")


async def agen_fails(x: Any) -> AsyncIterator[list[int]]:
    yield [1]
    yield [2]
    raise RuntimeError("async boom")


async def coro_fails(x: Any) -> Any:
    raise LookupError("coroutine failed")


def func_fails(x: Any) -> Any:
    raise ZeroDivisionError("function failed")


def gen_bad_add(x: Any) -> Iterator[Any]:
    yield NoAdd()
    yield NoAdd()
    yield "never"


ERROR_CASES = [
    _generator_case(gen_fails),
    _lambda_case(agen_fails),
    _lambda_case(coro_fails),
    _lambda_case(func_fails),
    _generator_case(gen_bad_add),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("with_list", [True, False])
@pytest.mark.parametrize(("target", "factory", "value"), ERROR_CASES)
def test_error_midway_same_patches_then_same_error(
    target: Any, factory: Any, value: Any, with_list: bool, api: str
) -> None:
    """A raising target: the same patches, then the same exception (type and message)."""
    options = {"with_streamed_output_list": with_list}
    expected = run_langchain(factory(), value, **options)
    actual = run_ours(api, target, value, **options)
    assert expected.error is not None
    assert type(actual.error) is type(expected.error)
    assert_same_patches(expected, actual)


@pytest.mark.parametrize("api", APIS)
def test_error_midway_states_match(api: str) -> None:
    """diff=False with a raising generator: the same states, then the same exception."""
    expected = run_langchain(as_runnable_generator(gen_fails), 1, diff=False)
    actual = run_ours(api, gen_fails, 1, diff=False)
    assert len(actual.items) == 3
    assert_same_states(expected, actual)


# ---------------------------------------------------------------------------
# nested runs: a RunnableLambda child and a streaming LLM, with filters
# ---------------------------------------------------------------------------

TOKENS = ["Hel", "lo", " ", "there"]


class TokenLLM(LLM):
    """A streaming LLM reporting each token through ``on_llm_new_token``."""

    @property
    def _llm_type(self) -> str:
        return "token"

    def _call(self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any) -> str:
        return "".join(TOKENS)

    def _stream(
        self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[GenerationChunk]:
        for token in TOKENS:
            chunk = GenerationChunk(text=token)
            if run_manager is not None:
                run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk

    async def _astream(
        self, prompt: str, stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> AsyncIterator[GenerationChunk]:
        for token in TOKENS:
            chunk = GenerationChunk(text=token)
            if run_manager is not None:
                await run_manager.on_llm_new_token(token, chunk=chunk)
            yield chunk


def _lc_add_one(x: int) -> int:
    return x + 1


async def _lc_adouble(x: int) -> int:
    return x * 2


async def _lc_amark(x: int) -> int:
    return x + 100


def lc_pipeline() -> Runnable[Any, Any]:
    """LangChain's ``pipeline``: a lambda child, then an LLM streamed through."""
    child = RunnableLambda(_lc_add_one, name="add_one")
    llm = TokenLLM()

    async def pipeline(inputs: AsyncIterator[int], config: RunnableConfig) -> AsyncIterator[Any]:
        async for x in inputs:
            y = await child.ainvoke(x, config)
            yield y
            async for token in llm.astream(f"prompt {y}", config):
                yield token

    return RunnableGenerator(pipeline, name="pipeline")


@logstream.traced
def add_one(x: int) -> int:
    return x + 1


@logstream.traced("TokenLLM", run_type="llm")
def token_llm(prompt: str) -> Iterator[str]:
    yield from TOKENS


def pipeline(x: int) -> Iterator[Any]:
    y = add_one(x)
    yield y
    yield from token_llm(f"prompt {y}")


def lc_apipeline() -> Runnable[Any, Any]:
    """LangChain's ``apipeline``: two async lambda children, one tagged, in an async generator."""
    double = RunnableLambda(_lc_adouble, name="adouble")
    mark = RunnableLambda(_lc_amark, name="amark").with_config(tags=["zmark"], metadata={"m": 1})

    async def apipeline(x: int, config: RunnableConfig) -> AsyncIterator[int]:
        yield await double.ainvoke(x, config)
        yield await mark.ainvoke(x, config)

    return RunnableLambda(apipeline)


@logstream.traced
async def adouble(x: int) -> int:
    return x * 2


@logstream.traced(tags=["zmark"], metadata={"m": 1})
async def amark(x: int) -> int:
    return x + 100


async def apipeline(x: int) -> AsyncIterator[int]:
    yield await adouble(x)
    yield await amark(x)


PIPELINE_OPTIONS = [
    pytest.param({}, id="all"),
    pytest.param({"with_streamed_output_list": False}, id="no_list"),
    pytest.param({"include_types": ["llm"]}, id="include_llm"),
    pytest.param({"include_names": ["add_one"]}, id="include_name"),
    pytest.param({"exclude_types": ["chain"]}, id="exclude_chain"),
    pytest.param({"exclude_names": ["TokenLLM"]}, id="exclude_name"),
    pytest.param({"include_types": ["chain"], "exclude_names": ["add_one"]}, id="nothing_left"),
    pytest.param({"tags": ["root"], "metadata": {"r": 1}}, id="root_tags"),
    pytest.param({"tags": ["root"], "include_tags": ["root"]}, id="include_root_tag"),
    pytest.param({"tags": ["root"], "exclude_tags": ["root"]}, id="exclude_root_tag"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("options", PIPELINE_OPTIONS)
def test_nested_child_and_llm_ops_match(options: dict[str, Any], api: str) -> None:
    """Traced child + llm generator vs RunnableLambda + streaming LLM (LLM ls_* metadata aside)."""
    expected = run_langchain(lc_pipeline(), 1, **options)
    actual = run_ours(api, pipeline, 1, **options)
    assert_same_patches(expected, actual, strip_metadata=True)


@pytest.mark.parametrize("api", APIS)
def test_nested_child_and_llm_states_match(api: str) -> None:
    """diff=False over nested runs: same states (LLM final_output shape included)."""
    expected = run_langchain(lc_pipeline(), 1, diff=False)
    actual = run_ours(api, pipeline, 1, diff=False)
    final = expected.items[-1].state["logs"]["TokenLLM"]
    assert final["final_output"]["generations"][0][0]["text"] == "".join(TOKENS)
    assert final["metadata"]["ls_model_type"] == "llm"
    assert_same_states(expected, actual, strip_metadata=True)


APIPELINE_OPTIONS = [
    pytest.param({}, id="all"),
    pytest.param({"with_streamed_output_list": False}, id="no_list"),
    pytest.param({"tags": ["root"], "metadata": {"r": 2}}, id="root_tags"),
    pytest.param({"include_tags": ["zmark"]}, id="include_tag"),
    pytest.param({"exclude_tags": ["zmark"]}, id="exclude_tag"),
    pytest.param({"tags": ["root"], "include_tags": ["root"]}, id="include_root_tag"),
    pytest.param({"include_names": ["amark"], "include_tags": ["nope"]}, id="name_or_tag"),
]


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("options", APIPELINE_OPTIONS)
def test_async_nested_children_ops_match(options: dict[str, Any], api: str) -> None:
    """Async generator root with traced coroutine children vs async RunnableLambda children."""
    expected = run_langchain(lc_apipeline(), 3, **options)
    actual = run_ours(api, apipeline, 3, **options)
    assert_same_patches(expected, actual)


def _lc_child_fails(x: Any) -> Any:
    raise KeyError("child failed")


@logstream.traced
def child_fails(x: Any) -> Any:
    raise KeyError("child failed")


def root_with_failing_child(x: Any) -> Iterator[Any]:
    yield "start"
    yield child_fails(x)


@pytest.mark.parametrize("api", APIS)
def test_nested_child_failing_ops_match(api: str) -> None:
    """A failing child propagates out of the root: same entry ops, same error, on both sides."""
    failing = RunnableLambda(_lc_child_fails, name="child_fails")

    async def lc_root(inputs: AsyncIterator[int], config: RunnableConfig) -> AsyncIterator[Any]:
        async for x in inputs:
            yield "start"
            yield await failing.ainvoke(x, config)

    expected = run_langchain(RunnableGenerator(lc_root, name="root_with_failing_child"), 1)
    actual = run_ours(api, root_with_failing_child, 1)
    assert isinstance(actual.error, KeyError)
    assert_same_patches(expected, actual)


# ---------------------------------------------------------------------------
# documented differences
# ---------------------------------------------------------------------------


def _tags_of(patches: list[list[dict[str, Any]]], key: str) -> list[str]:
    for ops in patches:
        for op in ops:
            if op["path"] == f"/logs/{key}":
                return list(op["value"]["tags"])
    raise AssertionError(f"no entry {key!r}")


def test_child_tags_merge_sorted_like_langchain() -> None:
    """Inherited and own tags of a child are merged and sorted, as LangChain's config does."""
    lc_mark = RunnableLambda(_lc_amark, name="amark").with_config(tags=["amark_tag"])

    async def lc_root(x: int, config: RunnableConfig) -> AsyncIterator[int]:
        yield await lc_mark.ainvoke(x, config)

    @logstream.traced("amark", tags=["amark_tag"])
    async def mark(x: int) -> int:
        return x + 100

    async def tagged_root(x: int) -> AsyncIterator[int]:
        yield await mark(x)

    lc_runnable = RunnableLambda(lc_root, name="tagged_root")
    expected = run_langchain(lc_runnable, 1, tags=["root"])
    actual = run_ours("astream_log", tagged_root, 1, tags=["root"])
    assert _tags_of(expected.items, "amark") == ["amark_tag", "root"]
    assert _tags_of(actual.items, "amark") == ["amark_tag", "root"]
    assert normalize(expected.items) == normalize(actual.items)


def _chat_projection(patches: list[list[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """Chat entry ops reduced to what both sides share (documented in the test)."""
    out: list[list[dict[str, Any]]] = []
    for ops in copy.deepcopy(patches):
        for op in ops:
            path, value = op["path"], op.get("value")
            if path == "/logs/GenericFakeChatModel":
                value.pop("metadata")
            elif path == "/logs/GenericFakeChatModel/streamed_output/-":
                op["value"] = getattr(value, "content", value)
            elif path == "/logs/GenericFakeChatModel/final_output":
                op["value"] = value["generations"][0][0]["text"]
        out.append(ops)
    return out


@pytest.mark.parametrize("api", APIS)
def test_chat_model_child_differences_documented(api: str) -> None:
    """Chat model child: type, root ops and streamed_output_str match; items/final differ."""
    chat = GenericFakeChatModel(messages=iter([AIMessage(content="Hello there friend")]))

    async def lc_root(inputs: AsyncIterator[str], config: RunnableConfig) -> AsyncIterator[str]:
        async for x in inputs:
            async for message in chat.astream(x, config):
                yield message.content  # type: ignore[misc]

    @logstream.traced("GenericFakeChatModel", run_type="chat_model")
    def fake_chat(prompt: str) -> Iterator[str]:
        yield from ["Hello", " ", "there", " ", "friend"]

    def chat_root(x: str) -> Iterator[str]:
        yield from fake_chat(x)

    expected = run_langchain(RunnableGenerator(lc_root, name="chat_root"), "hi")
    actual = run_ours(api, chat_root, "hi")
    assert_same_patches(
        Outcome(_chat_projection(expected.items)), Outcome(_chat_projection(actual.items))
    )
    lc_entry, our_entry = expected.items[1][0]["value"], actual.items[1][0]["value"]
    assert (lc_entry["type"], our_entry["type"]) == ("llm", "llm")
    lc_final = expected.items[-1][0]["value"]["generations"][0][0]
    our_final = actual.items[-1][0]["value"]["generations"][0][0]
    assert (lc_final["type"], our_final["type"]) == ("ChatGenerationChunk", "Generation")
    assert type(expected.items[2][1]["value"]).__name__ == "AIMessageChunk"
    assert actual.items[2][1]["value"] == "Hello"


def gen_renamed(x: Any) -> Iterator[Renamed]:
    yield Renamed(a=1)
    yield Renamed(b=2)


@pytest.mark.parametrize("api", APIS)
def test_move_op_from_is_prefixed_unlike_langchain(api: str) -> None:
    """A move op in the final_output diff: LangChain leaves `from` unprefixed (its bug)."""
    expected = run_langchain(as_runnable_generator(gen_renamed), 1)
    actual = run_ours(api, gen_renamed, 1)
    lc_move, our_move = expected.items[-1][-1], actual.items[-1][-1]
    assert lc_move == {"op": "move", "from": "/a", "path": "/final_output/a_"}
    assert our_move == {"op": "move", "from": "/final_output/a", "path": "/final_output/a_"}
    fixed = copy.deepcopy(expected.items)
    fixed[-1][-1]["from"] = "/final_output/a"
    assert normalize(fixed) == normalize(actual.items)
    lc_states = run_langchain(as_runnable_generator(gen_renamed), 1, diff=False)
    assert isinstance(lc_states.error, jsonpatch.JsonPatchException)
    ours_states = run_ours(api, gen_renamed, 1, diff=False)
    assert ours_states.error is None
    assert ours_states.items[-1].state["final_output"] == {"a_": 1}


def gen_mutates_chunk(x: Any) -> Iterator[list[int]]:
    chunk = [1]
    yield chunk
    chunk.append(99)
    yield [2]


@pytest.mark.parametrize("api", APIS)
def test_mutated_chunk_diffs_against_what_was_reported(api: str) -> None:
    """Mutating a yielded chunk: LangChain's diff no longer applies; ours still does."""
    expected = run_langchain(as_runnable_generator(gen_mutates_chunk), 1)
    actual = run_ours(api, gen_mutates_chunk, 1)
    # LangChain diffs against the mutated [1, 99]: one op, which skips index 1
    assert expected.items[-1][-1] == {"op": "add", "path": "/final_output/2", "value": 2}
    # ours diffs against the [1] it reported, so the stream stays consistent
    assert actual.items[-1][1:] == [
        {"op": "add", "path": "/final_output/1", "value": 99},
        {"op": "add", "path": "/final_output/2", "value": 2},
    ]
    states = run_ours(api, gen_mutates_chunk, 1, diff=False)
    assert states.error is None
    assert states.items[-1].state["final_output"] == [1, 99, 2]
