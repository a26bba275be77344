"""Start the mock on a free loopback port, ask each provider once with its official SDK (Anthropic
streaming), print the answers and the journal, and exit 0.

    python -m examples.hello_mock
"""

from __future__ import annotations

import asyncio
import sys

import anthropic
import openai
from mistralai.client import Mistral

from mockproviders.server import MockServer

QUESTION = [{"role": "user", "content": "Which track does the train take?"}]


async def main() -> int:
    async with MockServer(seed=0) as server:
        urls = server.base_urls
        print(f"mock providers on {server.url}")
        async with openai.AsyncOpenAI(api_key="sk-demo", base_url=urls["openai"]) as oa:
            answer = await oa.chat.completions.create(model="gpt-4o-mini", messages=QUESTION)  # type: ignore[arg-type]
            print(f"\nopenai    gpt-4o-mini        {answer.choices[0].message.content}")
        async with anthropic.AsyncAnthropic(api_key="sk-ant-demo", base_url=urls["anthropic"]) as an:
            print("anthropic claude-sonnet-4-6  ", end="", flush=True)
            async with an.messages.stream(
                model="claude-sonnet-4-6", max_tokens=200, messages=QUESTION
            ) as stream:  # type: ignore[arg-type]
                async for text in stream.text_stream:
                    print(text, end="", flush=True)  # streamed: one token at a time
            print()
        async with Mistral(api_key="demo", server_url=urls["mistral"]) as mi:
            reply = await mi.chat.complete_async(model="mistral-small-latest", messages=QUESTION)  # type: ignore[arg-type]
            print(f"mistral   mistral-small-latest {reply.choices[0].message.content}")  # type: ignore[union-attr]
        print("\njournal:")
        for e in server.core.journal:
            kind = "stream" if e.stream else "whole"
            print(
                f"  #{e.index} {e.provider:9} {e.endpoint:8} {e.model:22} {e.status} {kind:6} {e.request_id}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
