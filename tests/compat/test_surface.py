"""The public surface of logstream's handler matches LangChain's, signature by signature."""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from langchain_core.tracers.log_stream import LogStreamCallbackHandler as LangChainHandler

from logstream import LogStreamCallbackHandler

# ours only, keyword-only with defaults
_EXTRA_INIT_KEYWORDS = frozenset(
    {"clock", "redact", "max_buffer", "when_full", "block_timeout", "processors", "entry_fields"}
)


def _public_methods() -> list[str]:
    wanted = {"include_run", "send", "tap_output_iter", "tap_output_aiter", "__init__"}
    return sorted(n for n in dir(LangChainHandler) if n.startswith("on_") or n in wanted)


def _shape(fn: Any, skip: frozenset[str] = frozenset()) -> list[tuple[str, Any, Any]]:
    params = inspect.signature(fn).parameters.values()
    return [(p.name, p.kind, p.default) for p in params if p.name not in skip]


class TestSurface:
    @pytest.mark.parametrize("name", _public_methods())
    def test_method_signature_matches(self, name: str) -> None:
        """Each callback and public method takes the same parameters, kinds and defaults."""
        skip = _EXTRA_INIT_KEYWORDS if name == "__init__" else frozenset()
        ours = getattr(LogStreamCallbackHandler, name)
        assert _shape(ours, skip) == _shape(getattr(LangChainHandler, name))

    def test_extra_init_keywords_are_optional_keyword_only(self) -> None:
        """Our extra constructor keywords can never break a LangChain-style call."""
        params = inspect.signature(LogStreamCallbackHandler.__init__).parameters
        for name in _EXTRA_INIT_KEYWORDS:
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY
            assert params[name].default is None

    @pytest.mark.parametrize(
        "attribute",
        [
            "ignore_agent",
            "ignore_chain",
            "ignore_chat_model",
            "ignore_custom_event",
            "ignore_llm",
            "ignore_retriever",
            "ignore_retry",
            "raise_error",
            "run_inline",
            "log_missing_parent",
            "auto_close",
            "include_names",
            "exclude_tags",
        ],
    )
    def test_manager_attributes_have_langchains_values(self, attribute: str) -> None:
        """The attributes LangChain's callback manager and tracers read have LangChain's values."""
        kwargs: dict[str, Any] = {"include_names": ["a"], "exclude_tags": ["b"]}
        ours = LogStreamCallbackHandler(**kwargs)
        theirs = LangChainHandler(**kwargs)
        assert getattr(ours, attribute) == getattr(theirs, attribute)

    def test_is_a_langchain_streaming_handler(self) -> None:
        """LangChain's runtime check for output tapping recognizes our handler."""
        from langchain_core.tracers._streaming import _StreamingCallbackHandler

        assert isinstance(LogStreamCallbackHandler(), _StreamingCallbackHandler)


class TestRunNames:
    @pytest.mark.parametrize(
        "serialized",
        [
            {"name": None, "id": ["x", "FakeLLM"]},
            {"id": ["x", "FakeLLM"]},
            {"name": "given"},
            {},
            None,
        ],
    )
    def test_name_from_serialized_matches_langchain(self, serialized: Any) -> None:
        """A run without a name is named from `serialized` exactly as LangChain names it."""
        import asyncio
        import uuid

        from langchain_core.tracers.log_stream import LogStreamCallbackHandler as Theirs

        def drive(handler: Any) -> None:
            root, llm = uuid.uuid4(), uuid.uuid4()
            handler.on_chain_start({}, "x", run_id=root, name="root")
            handler.on_llm_start(serialized, ["p"], run_id=llm, parent_run_id=root)

        async def theirs() -> list[str]:
            handler = Theirs()
            drive(handler)
            handler.send_stream.close()
            return [patch.ops[0]["path"] async for patch in handler]

        ours = LogStreamCallbackHandler()
        drive(ours)
        ours.close()
        assert [patch.ops[0]["path"] for patch in ours] == asyncio.run(theirs())
