"""AG-UI events from a real LangChain chain driving the handler: valid, and the run log."""

from __future__ import annotations

import functools
import operator
import sys
from typing import Any

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.runnables import RunnableLambda
from test_agui import check_models, rebuilt_state, types, validate_in_process, wire

from logstream import LogStreamCallbackHandler, RunLog
from logstream.agui import AguiEncoder, AguiEvent
from logstream.testing import normalize

from .test_compat_processors import divide


def chain() -> Any:
    """A chat model that streams, then a step that calls a tool which fails, and recovers."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content="let me divide")]))

    def run_tool(message: Any) -> str:
        try:
            return str(divide.invoke("1/0"))
        except ZeroDivisionError:
            return f"{message.content}: failed"

    return model | RunnableLambda(run_tool, name="use_tool")


def encode_chain() -> tuple[list[AguiEvent], Any]:
    """Run the chain with the handler and a bound encoder; return the events and the log."""
    encoder = AguiEncoder()
    handler = encoder.bind(LogStreamCallbackHandler(processors=[encoder]))
    result = chain().invoke("hi", config={"callbacks": [handler]})
    assert result == "let me divide: failed"
    return list(encoder), result


class TestLangChainChain:
    def test_chain_events_validate_and_map_each_run(self) -> None:
        """The chain's model streams a message, its tool fails, and the run still finishes."""
        events, _ = encode_chain()
        check_models(events)
        kinds = types(events)
        assert kinds[0] == "RUN_STARTED" and kinds[-1] == "RUN_FINISHED"
        text = "".join(e["delta"] for e in events if e["type"] == "TEXT_MESSAGE_CONTENT")
        assert text == "let me divide"
        result = next(e for e in events if e["type"] == "TOOL_CALL_RESULT")
        assert result["metadata"]["logstream"]["status"] == "error"
        assert "STEP_STARTED" in kinds
        if sys.version_info >= (3, 11):
            assert validate_in_process(events) == []

    def test_chain_state_events_rebuild_the_handlers_run_log(self) -> None:
        """Snapshot plus deltas give the run log the handler alone streams for the chain.

        LangChain mints fresh run and message ids and times on each run, so the two logs
        are compared by what does not depend on them.
        """

        def shape(state: Any) -> Any:
            logs = {
                k: (e["name"], e["type"], e["tags"], e["streamed_output_str"], bool(e["end_time"]))
                for k, e in state["logs"].items()
            }
            return state["name"], state["type"], normalize(state["final_output"]), logs

        events, _ = encode_chain()
        handler = LogStreamCallbackHandler()
        chain().invoke("hi", config={"callbacks": [handler]})
        log = functools.reduce(operator.add, list(handler), RunLog(state=None))
        expected = wire(log.state)
        assert shape(rebuilt_state(events)) == shape(expected)
        assert sorted(expected["logs"]) == ["GenericFakeChatModel", "divide", "use_tool"]
