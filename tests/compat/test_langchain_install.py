"""logstream inside LangChain's own runtime: send_stream, install()/uninstall(), interop."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import jsonpatch
import langchain_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from langchain_core.runnables import RunnableLambda
from langchain_core.tracers import log_stream as lc_log_stream
from langchain_core.tracers.log_stream import LogStreamCallbackHandler as LangChainHandler
from langchain_core.tracers.log_stream import RunLog as LangChainRunLog
from langchain_core.tracers.log_stream import RunLogPatch as LangChainRunLogPatch
from langchain_core.tracers.log_stream import _astream_log_implementation

import logstream
import logstream._patches
from logstream import LangChainVersionError, LogStreamCallbackHandler, NotAPatchError
from logstream import langchain as lc
from logstream._callbacks import PatchSender
from logstream._patches import RunLog, RunLogPatch

pytestmark = pytest.mark.filterwarnings(
    "ignore:astream_log is deprecated", "ignore:astream_events version='v1' is deprecated"
)

GUARD = 20.0  # seconds: a regression to the hang fails here instead of hanging the suite
NAMES = ("LogStreamCallbackHandler", "RunLog", "RunLogPatch")
OURS = {n: getattr(logstream, n) for n in NAMES}


def _held() -> dict[tuple[str, str], int]:
    """Which object each loaded langchain_core module holds under the three names."""
    return {
        (name, attr): id(module.__dict__[attr])
        for name, module in list(sys.modules.items())
        if name.startswith("langchain_core") and module is not None
        for attr in NAMES
        if attr in getattr(module, "__dict__", {})
    }


@pytest.fixture
def installed() -> Iterator[lc.Installation]:
    """logstream installed into LangChain for one test, then uninstalled."""
    assert not lc.installed()
    with lc.install() as installation:
        yield installation
    assert not lc.installed()


async def _collect(source: AsyncIterator[Any]) -> list[Any]:
    return [item async for item in source]


def _run(source: AsyncIterator[Any]) -> list[Any]:
    """Collect an async iterator in a fresh loop, failing after GUARD seconds."""
    return asyncio.run(asyncio.wait_for(_collect(source), GUARD))


async def _tokens(_: Any) -> AsyncIterator[str]:
    for token in ["a", "b", "c"]:
        yield token


async def _fails_after_one(_: Any) -> AsyncIterator[str]:
    yield "a"
    msg = "boom in the runnable"
    raise ValueError(msg)


def _state(patches: list[Any]) -> Any:
    return jsonpatch.apply_patch(None, [op for p in patches for op in p.ops])


class TestSendStream:
    def test_handler_has_langchains_writer_methods(self) -> None:
        """send_stream has every method LangChain's wrappers and handler call on it."""
        sender = LogStreamCallbackHandler().send_stream
        for method in ("send", "send_nowait", "aclose", "close"):
            assert callable(getattr(sender, method))

    def test_send_queues_langchain_patch_as_ours(self) -> None:
        """A LangChain patch sent reaches the consumer as our RunLogPatch with equal ops."""
        handler = LogStreamCallbackHandler(auto_close=False)
        op = {"op": "add", "path": "/x", "value": 1}

        async def go() -> list[Any]:
            assert await handler.send_stream.send(LangChainRunLogPatch(op))
            await handler.send_stream.aclose()
            return await _collect(handler)

        got = asyncio.run(asyncio.wait_for(go(), GUARD))
        assert [type(p) for p in got] == [RunLogPatch]
        assert got[0].ops == [op]

    def test_send_nowait_and_close(self) -> None:
        """send_nowait queues in order; close ends the stream; a later send returns False."""
        handler = LogStreamCallbackHandler(auto_close=False)
        first, second = RunLogPatch({"op": "add", "path": "/a", "value": 1}), RunLogPatch()
        assert handler.send_stream.send_nowait(first)
        assert handler.send_stream.send_nowait(second)
        assert handler.send_stream.close()
        assert not handler.send_stream.close()
        assert handler.send_stream.send_nowait(RunLogPatch()) is False
        assert list(handler) == [first, second]
        assert list(handler)[0:1] == [] and handler.closed

    def test_send_refuses_what_is_not_a_patch(self) -> None:
        """A value without ops raises NotAPatchError (a TypeError) and queues nothing."""
        handler = LogStreamCallbackHandler(auto_close=False)
        with pytest.raises(NotAPatchError, match="it is not a patch") as info:
            handler.send_stream.send_nowait({"op": "add", "path": "/a", "value": 1})
        assert isinstance(info.value, TypeError)
        assert handler.drain() == []

    def test_async_send_on_full_bounded_handler_does_not_block_the_loop(self) -> None:
        """A blocking send waits in a thread, so a consumer in the same loop makes room."""
        handler = LogStreamCallbackHandler(auto_close=False, max_buffer=1)
        patches = [RunLogPatch({"op": "add", "path": f"/{i}", "value": i}) for i in range(5)]

        async def produce() -> None:
            for patch in patches:
                await handler.send_stream.send(patch)
            await handler.send_stream.aclose()

        async def go() -> list[Any]:
            task = asyncio.create_task(produce())
            got = await _collect(handler)
            await task
            return got

        assert asyncio.run(asyncio.wait_for(go(), GUARD)) == patches


class TestNoHang:
    @pytest.mark.parametrize("diff", [True, False])
    def test_langchain_wrapper_with_our_handler_completes(self, diff: bool) -> None:
        """LangChain's astream_log implementation with our handler ends (it hung before)."""
        handler = LogStreamCallbackHandler(auto_close=False, _schema_format="original")
        source = _astream_log_implementation(
            RunnableLambda(_tokens), None, stream=handler, diff=diff
        )
        if diff:
            patches = _run(source)
            assert _state(patches)["final_output"] == "abc"
        else:  # LangChain's own RunLog refuses our patches: install() swaps all three
            with pytest.raises(TypeError, match="unsupported operand"):
                _run(source)

    @pytest.mark.parametrize("diff", [True, False])
    def test_astream_log_installed_completes(self, installed: lc.Installation, diff: bool) -> None:
        """Runnable.astream_log with our classes installed ends, with the full output."""
        items = _run(RunnableLambda(_tokens).astream_log(None, diff=diff))
        if diff:
            assert all(type(p) is RunLogPatch for p in items)
            assert _state(items)["streamed_output"] == ["a", "b", "c"]
        else:
            assert all(type(log) is RunLog for log in items)
            assert items[-1].state["final_output"] == "abc"

    def test_astream_events_v1_installed_gives_langchains_events(self) -> None:
        """astream_events(version="v1") with our classes installed: LangChain's events."""
        chain = RunnableLambda(lambda x: x + 1, name="inc") | RunnableLambda(_tokens, name="t")

        def events() -> list[tuple[str, str, Any]]:
            got = _run(chain.astream_events(1, version="v1"))
            return [(e["event"], e["name"], e["data"]) for e in got]

        theirs = events()
        with lc.install():
            ours = events()
        assert ours == theirs
        assert ("on_chain_stream", "t", {"chunk": "c"}) in ours

    @pytest.mark.parametrize("diff", [True, False])
    def test_runnable_failure_reaches_consumer(
        self, installed: lc.Installation, diff: bool
    ) -> None:
        """A runnable that raises mid-stream: the consumer gets its error, not a hang."""
        with pytest.raises(ValueError, match="boom in the runnable"):
            _run(RunnableLambda(_fails_after_one).astream_log(None, diff=diff))

    def test_wrapper_send_failure_reaches_consumer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """If the wrapper task's send raises, the stream still closes and the error surfaces."""
        handler = LogStreamCallbackHandler(auto_close=False, _schema_format="original")

        async def broken_send(self: PatchSender, patch: Any) -> bool:
            msg = "send failed in the wrapper"
            raise RuntimeError(msg)

        monkeypatch.setattr(PatchSender, "send", broken_send)
        with pytest.raises(RuntimeError, match="send failed in the wrapper"):
            _run(_astream_log_implementation(RunnableLambda(_tokens), None, stream=handler))


class TestInstall:
    def test_install_swaps_every_module_and_uninstall_restores_exactly(self) -> None:
        """install() puts ours wherever LangChain's were; uninstall() restores each by id."""
        import langchain_core.runnables.base as base
        import langchain_core.tracers as tracers
        import langchain_core.tracers.event_stream as event_stream

        tracers.RunLog  # noqa: B018  (the package caches its lazy attribute)
        before = _held()
        installation = lc.install()
        try:
            assert installation.changed
            for module in (lc_log_stream, base, event_stream):
                assert module.LogStreamCallbackHandler is LogStreamCallbackHandler
            assert tracers.RunLog is RunLog and lc_log_stream.RunLogPatch is RunLogPatch
            assert set(installation.modules) >= {
                "langchain_core.runnables.base",
                "langchain_core.tracers",
                "langchain_core.tracers.event_stream",
                "langchain_core.tracers.log_stream",
            }
        finally:
            assert lc.uninstall()
        assert _held() == before
        assert lc_log_stream.RunLog is LangChainRunLog

    def test_install_is_idempotent(self, installed: lc.Installation) -> None:
        """A second install() changes nothing, and leaving its with-block keeps ours in."""
        with lc.install() as again:
            assert not again.changed and again.modules == []
        assert lc.installed() and lc_log_stream.RunLog is RunLog

    def test_uninstall_without_install_does_nothing(self) -> None:
        """uninstall() when not installed returns False and changes no module."""
        before = _held()
        assert lc.uninstall() is False
        assert _held() == before

    def test_context_manager_undoes_its_install(self) -> None:
        """with install(): ours inside; LangChain's again after, even on an error."""
        with pytest.raises(KeyError), lc.install():
            assert lc_log_stream.LogStreamCallbackHandler is LogStreamCallbackHandler
            raise KeyError("inside")
        assert lc_log_stream.LogStreamCallbackHandler is LangChainHandler
        assert not lc.installed()

    def test_later_imports_get_ours_and_uninstall_restores_them(self) -> None:
        """A module caching the name after install() is restored by uninstall() too."""
        import langchain_core.tracers as tracers

        tracers.__dict__.pop("RunLogPatch", None)  # not cached yet
        with lc.install():
            assert tracers.RunLogPatch is RunLogPatch  # fetched from log_stream and cached
        assert tracers.__dict__["RunLogPatch"] is LangChainRunLogPatch

    @pytest.mark.parametrize("version", ["0.3.79", "1.8.0", "2.0.0"])
    def test_unsupported_version_refused(
        self, monkeypatch: pytest.MonkeyPatch, version: str
    ) -> None:
        """A langchain-core outside >=1.0,<1.8 raises LangChainVersionError, changing nothing."""
        before = _held()
        monkeypatch.setattr(langchain_core, "__version__", version)
        with pytest.raises(LangChainVersionError, match=f"langchain-core {version} is installed"):
            lc.install()
        assert _held() == before and not lc.installed()

    def test_installed_version_is_in_range(self) -> None:
        """The installed langchain-core is one install() accepts (the CI oracle's version)."""
        major, minor = (int(p) for p in metadata.version("langchain-core").split(".")[:2])
        assert (1, 0) <= (major, minor) < (1, 8)


def _chain_of(names: list[str]) -> Any:
    steps = [RunnableLambda(lambda x: x, name=name) for name in names]
    chain = steps[0]
    for step in steps[1:]:
        chain = chain | step
    return chain


class TestDefectsFixedUnderLangChainsAstreamLog:
    def test_name_collisions_lose_no_run(self, installed: lc.Installation) -> None:
        """Runs named x, x, x:2 get three entries (LangChain's handler overwrites one)."""
        logs = _run(_chain_of(["x", "x", "x:2"]).astream_log(1, diff=False))
        entries = logs[-1].state["logs"]
        assert sorted(entries) == ["x", "x:2", "x:2:2"]
        assert sorted(e["name"] for e in entries.values()) == ["x", "x", "x:2"]

    def test_slash_names_give_patches_that_apply(self, installed: lc.Installation) -> None:
        """A run named a/b is logged under its own name and every patch applies."""
        patches = _run(_chain_of(["a/b", "c~d"]).astream_log(1))
        state = _state(patches)  # jsonpatch raises if any pointer were wrong
        assert sorted(state["logs"]) == ["a/b", "c~d"]
        assert state["logs"]["a/b"]["final_output"] == {"output": 1}

    def test_runlog_grows_without_copying_per_patch(
        self, installed: lc.Installation, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """astream_log(diff=False) copies the state as often for 400 chunks as for 40."""
        copies = 0
        real = logstream._patches.deep_copy

        def counting(value: Any) -> Any:
            nonlocal copies
            copies += 1
            return real(value)

        monkeypatch.setattr(logstream._patches, "deep_copy", counting)

        def copies_for(n: int) -> int:
            nonlocal copies
            copies = 0

            async def many(_: Any) -> AsyncIterator[int]:
                for i in range(n):
                    yield i

            logs = _run(RunnableLambda(many).astream_log(None, diff=False))
            assert len(logs) > n
            found = copies
            assert logs[-1].state["streamed_output"] == list(range(n))
            return found

        few, many_ = copies_for(40), copies_for(400)
        assert many_ == few < 40  # LangChain's RunLog copies the whole state per patch

    def test_consumer_in_another_threads_loop(self, installed: lc.Installation) -> None:
        """LangChain's handler name, built outside any loop, streams to a loop in another thread."""
        handler = lc_log_stream.LogStreamCallbackHandler()  # ours now; LangChain's binds a loop
        assert isinstance(handler, LogStreamCallbackHandler)
        received: list[Any] = []

        def consume() -> None:
            received.extend(asyncio.run(asyncio.wait_for(_collect(handler), GUARD)))

        consumer = threading.Thread(target=consume)
        consumer.start()
        result = asyncio.run(_chain_of(["p", "q"]).ainvoke(1, {"callbacks": [handler]}))
        consumer.join(GUARD + 5)
        assert not consumer.is_alive() and result == 1
        assert sorted(_state(received)["logs"]) == ["p", "q"]


_OPS = st.lists(
    st.tuples(st.sampled_from(["a", "b", "c/d", "e~f"]), st.integers() | st.text(max_size=3)),
    max_size=8,
)


def _add_ops(pairs: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"op": "add", "path": "/" + k.replace("~", "~0").replace("/", "~1"), "value": v}
        for k, v in pairs
    ]


class TestInterop:
    @settings(max_examples=60, deadline=None)
    @given(first=_OPS, second=_OPS)
    def test_our_runlog_adds_langchain_patches_as_langchain_does(
        self, first: list[tuple[str, Any]], second: list[tuple[str, Any]]
    ) -> None:
        """Our RunLog + LangChain patches gives LangChain's state and ops, and compares equal."""
        base = [{"op": "replace", "path": "", "value": {}}]
        a, b = base + _add_ops(first), _add_ops(second)
        ours = RunLog(state=None) + LangChainRunLogPatch(*a) + LangChainRunLogPatch(*b)
        theirs = LangChainRunLog(state=None) + LangChainRunLogPatch(*a) + LangChainRunLogPatch(*b)
        assert ours.state == theirs.state and ours.ops == theirs.ops
        assert ours == theirs
        assert RunLogPatch(*b) == LangChainRunLogPatch(*b)
        assert RunLogPatch(*a) + LangChainRunLogPatch(*b) == RunLogPatch(*a) + RunLogPatch(*b)

    def test_unequal_langchain_values_compare_unequal(self) -> None:
        """Different ops or state make our patch/log unequal to LangChain's."""
        op = {"op": "replace", "path": "", "value": {"a": 1}}
        other = {"op": "replace", "path": "", "value": {"a": 2}}
        assert RunLogPatch(op) != LangChainRunLogPatch(other)
        assert RunLog(op, state={"a": 1}) != LangChainRunLog(op, state={"a": 2})
        assert RunLog(op, state={"a": 1}) != LangChainRunLogPatch(op)

    def test_adding_a_langchain_log_is_refused(self) -> None:
        """A LangChain RunLog (a state, not a patch) is refused as LangChain refuses it."""
        log = LangChainRunLog({"op": "replace", "path": "", "value": {}}, state={})
        with pytest.raises(TypeError, match="unsupported operand"):
            RunLog(state=None) + log
        with pytest.raises(TypeError, match="unsupported operand"):
            RunLogPatch() + log

    def test_equality_is_symmetric_once_installed(self, installed: lc.Installation) -> None:
        """With install(), LangChain's old patch objects compare equal to ours both ways."""
        op = {"op": "add", "path": "/a", "value": 1}
        old = LangChainRunLogPatch(op)  # made from LangChain's class, kept from before
        assert old == RunLogPatch(op) and RunLogPatch(op) == old


ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Use it inside LangChain"


class TestReadme:
    def test_readme_block_runs_and_prints_what_it_claims(self) -> None:
        """The README's install() example runs under LangChain and prints its comment's output."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        block = readme.split(SECTION, 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
        claimed = block.split("asyncio.run(main())  # ", 1)[1].splitlines()[0]
        done = subprocess.run(
            [sys.executable, "-W", "ignore", "-c", block],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == claimed

    def test_readme_names_every_deselected_langchain_test(self) -> None:
        """Each test .ci/langchain_deselect.txt leaves out is named in the README's section."""
        readme = (ROOT / "README.md").read_text(encoding="utf-8")
        section = readme.split(SECTION, 1)[1].split("\n## ", 1)[0]
        lines = (ROOT / ".ci" / "langchain_deselect.txt").read_text(encoding="utf-8")
        ids = [ln.split("#")[0].strip() for ln in lines.splitlines() if ln.split("#")[0].strip()]
        assert ids
        for node_id in ids:
            assert f"`{node_id}`" in section
