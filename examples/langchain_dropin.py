"""logstream's handler as a drop-in for LangChain's, driven by a real LangChain chain.

Needs langchain-core (pip install -e ".[compat]"). A prompt, a fake streaming chat model
and a string parser run with logstream's handler in config={"callbacks": [...]}; patches
print as they stream, then the model's streamed tokens from the rebuilt state.

Run: python examples/langchain_dropin.py
"""

from __future__ import annotations

import asyncio

from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from logstream import LogStreamCallbackHandler, RunLog


async def main() -> None:
    """Stream a chain's run log through logstream's handler."""
    model = GenericFakeChatModel(messages=iter([AIMessage(content="Bonjour tout le monde")]))
    chain = (
        ChatPromptTemplate.from_messages([("human", "Say hello in {lang}")])
        | model
        | StrOutputParser()
    )
    handler = LogStreamCallbackHandler(_schema_format="original")
    task = asyncio.create_task(chain.ainvoke({"lang": "French"}, config={"callbacks": [handler]}))
    log = RunLog(state=None)
    async for patch in handler:
        print(patch)
        log = log + patch
    print("answer:", await task)
    print("tokens:", log.state["logs"]["GenericFakeChatModel"]["streamed_output_str"])


if __name__ == "__main__":
    asyncio.run(main())
