"""Property: for any sequence of Anthropic requests over one conversation, with up to four
breakpoints anywhere, the mock's usage agrees with ``count_tokens`` and with Anthropic's caching
rule stated declaratively here:

- ``read`` is the longest prefix that was written before, among the block boundaries at a
  breakpoint or up to 20 blocks before one;
- written prefixes are those ending at a breakpoint and at least the minimum long;
- ``write`` runs from ``read`` to the longest prefix written by this request;
- ``input_tokens`` is the rest, so read + write + input is ``count_tokens``.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from mockproviders.config import MockConfig, PromptCaching
from mockproviders.core import MockCore
from mockproviders.prompt_cache import LOOKBACK

HEADERS = {"authorization": "Bearer k", "anthropic-version": "2023-06-01"}
WORDS = ("north", "south", "express", "local", "platform", "signal")


@st.composite
def conversation(draw: st.DrawFn) -> tuple[list[str], list[list[str]]]:
    """System blocks, then messages (alternating user/assistant) as lists of block texts."""
    text = st.lists(st.sampled_from(WORDS), min_size=1, max_size=12).map(" ".join)
    system = draw(st.lists(text, min_size=0, max_size=2))
    messages = draw(st.lists(st.lists(text, min_size=1, max_size=3), min_size=1, max_size=7))
    return system, messages


@st.composite
def requests(draw: st.DrawFn) -> tuple[int, list[tuple[int, list[int]]]]:
    """A minimum, and requests as (messages kept, marked block indexes), over one conversation."""
    minimum = draw(st.sampled_from([0, 15, 40]))
    out = []
    for _ in range(draw(st.integers(1, 5))):
        kept = draw(st.integers(1, 7))
        marks = draw(st.lists(st.integers(0, 40), max_size=4, unique=True))
        out.append((kept, marks))
    return minimum, out


def body(system: list[str], messages: list[list[str]], marks: set[int]) -> tuple[dict[str, Any], int]:
    """A Messages body whose blocks (system first) at ``marks`` carry cache_control; and how many
    blocks it has. Messages are cut so the last one is a user's."""
    index = 0

    def block(text: str) -> dict[str, Any]:
        nonlocal index
        b: dict[str, Any] = {"type": "text", "text": text}
        if index in marks:
            b["cache_control"] = {"type": "ephemeral"}
        index += 1
        return b

    sys_blocks = [block(t) for t in system]
    msgs = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": [block(t) for t in texts]}
        for i, texts in enumerate(messages)
    ]
    out: dict[str, Any] = {"model": "claude-sonnet-4-5", "max_tokens": 5, "messages": msgs}
    if sys_blocks:
        out["system"] = sys_blocks
    return out, index


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversation(), requests())
def test_usage_follows_anthropics_caching_rule(
    convo: tuple[list[str], list[list[str]]], plan: tuple[int, list[tuple[int, list[int]]]]
) -> None:
    system, messages = convo
    minimum, sequence = plan
    core = MockCore(MockConfig(prompt_caching=PromptCaching(min_tokens={"default": minimum})))
    written: set[str] = set()  # the oracle's cache: prefixes as canonical JSON of their blocks

    async def post(path: str, data: dict[str, Any]) -> dict[str, Any]:
        r = await core.dispatch("POST", f"/anthropic{path}", HEADERS, json.dumps(data).encode())
        assert r.status == 200, r.body
        return json.loads(r.body or b"null")  # type: ignore[no-any-return]

    async def go() -> None:
        for kept, wanted in sequence:
            msgs = messages[: kept if kept % 2 else kept - 1 or 1]  # end on a user message
            request, n = body(system, msgs, set())
            marks = {m % n for m in wanted}
            request, _ = body(system, msgs, marks)
            total = (
                await post(
                    "/v1/messages/count_tokens", {k: v for k, v in request.items() if k != "max_tokens"}
                )
            )["input_tokens"]
            usage = (await post("/v1/messages", request))["usage"]
            read, write = usage["cache_read_input_tokens"], usage["cache_creation_input_tokens"]
            assert read + write + usage["input_tokens"] == total
            event("a cache read" if read else "no cache read")
            event("a cache write" if write else "no cache write")

            # prefix i = blocks 0..i; its tokens from count_tokens of a body cut there is awkward,
            # so take the block sizes the way Anthropic bills them: the difference of counts.
            blocks = [b for b in request.get("system", [])] + [
                b for m in request["messages"] for b in m["content"]
            ]
            roles = ["system"] * len(request.get("system", [])) + [
                m["role"] for m in request["messages"] for _ in m["content"]
            ]
            firsts = {0} if request.get("system") else set()
            at = len(request.get("system", []))
            for m in request["messages"]:
                firsts.add(at)
                at += len(m["content"])
            sizes = [len(b["text"].split()) + 3 * (i in firsts) for i, b in enumerate(blocks)]
            assert sum(sizes) + 3 == total
            ends = [sum(sizes[: i + 1]) for i in range(len(sizes))]
            keys = [
                json.dumps(
                    [
                        (roles[j], {k: v for k, v in blocks[j].items() if k != "cache_control"})
                        for j in range(i + 1)
                    ]
                )
                for i in range(len(blocks))
            ]
            candidates = {i for m in marks for i in range(max(0, m - LOOKBACK), m + 1)}
            hits = [ends[i] for i in candidates if keys[i] in written]
            assert read == max(hits, default=0)
            fresh = [ends[m] for m in marks if ends[m] >= minimum]
            assert write == max(0, max(fresh, default=0) - read)
            written.update(keys[m] for m in marks if ends[m] >= minimum)

    asyncio.run(go())
