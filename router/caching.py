"""Prompt caching: cache markers on long shared prefixes, and stickiness to the cache's holder.

Per route (``cache:`` on a route in YAML, or :class:`CacheSteps` in Python)::

    routes:
      chat: {chain: [claude, gpt], cache: {sticky: true, markers: auto, min_prefix_tokens: 1024}}

- ``markers: auto``: for providers that cache only what is marked (Anthropic: a provider's
  :attr:`~router.adapters.Provider.marks_cache`), the system prompt
  and the conversation before the newest message get a ``cache_control`` marker when they are at
  least ``min_prefix_tokens`` long. Providers that cache on their own (OpenAI) are left alone.
- ``sticky: true``: a conversation (metadata ``conversation``, the field is configurable) is kept
  on the deployment that answered it last, where its prefix is cached, while that deployment's
  breaker is closed. When a fallback moves it elsewhere the audit trail says what was lost:
  ``cache: conversation c-17 moved claude (anthropic) → gpt (openai), cache lost (2048 cached tokens)``.

Cached tokens are accounted in :class:`~router.types.Usage` (``cached_input_tokens``,
``cache_write_tokens``) by the adapters and priced at the cached rates by :mod:`router.cost`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from router.adapters import PROVIDERS
from router.patterns.config import CacheConfig
from router.patterns.planner import Finish as FinishFn
from router.patterns.planner import PlanContext
from router.patterns.planner import Prepare as PrepareFn
from router.types import AuditRecord, ChatRequest, TextPart

if TYPE_CHECKING:
    from router.patterns.service import RouterService

__all__ = ["CacheConfig", "CacheSteps", "Holder", "mark_prefixes"]


def _tokens(text: str) -> int:
    return (len(text) + 3) // 4


def _system_text(system: str | list[TextPart] | None) -> str:
    if system is None:
        return ""
    return system if isinstance(system, str) else "".join(p.text for p in system)


def _marked(content: str | list[TextPart]) -> list[TextPart]:
    parts = [TextPart(content)] if isinstance(content, str) else [TextPart(p.text, p.cache) for p in content]
    if parts:
        parts[-1].cache = True
    return parts


def mark_prefixes(request: ChatRequest, min_tokens: int) -> tuple[ChatRequest, int, int]:
    """``(request with markers, markers placed, tokens in the longest marked prefix)``."""
    system_tokens = _tokens(_system_text(request.system))
    marks, prefix = 0, 0
    system = request.system
    if request.system is not None and system_tokens >= min_tokens:
        system, marks, prefix = _marked(request.system), 1, system_tokens
    messages = request.messages
    history = messages[:-1]
    if history:
        last = history[-1]
        history_tokens = system_tokens + sum(_tokens(m.text) for m in history)
        if history_tokens >= min_tokens and last.role in ("user", "assistant") and not last.tool_calls:
            messages = [*history[:-1], replace(last, content=_marked(last.content)), messages[-1]]
            marks, prefix = marks + 1, history_tokens
    if not marks:
        return request, 0, 0
    return replace(request, system=system, messages=messages), marks, prefix


@dataclass(slots=True)
class Holder:
    """The deployment that answered a conversation last, and the tokens its cache holds."""

    deployment: str
    provider: str
    cached_tokens: int


class CacheSteps:
    """A plan step: cache markers and stickiness for the routes that ask for them."""

    def __init__(self, routes: Mapping[str, CacheConfig], *, max_conversations: int = 10_000) -> None:
        self.routes = dict(routes)
        self.holders: OrderedDict[str, Holder] = OrderedDict()  # least recently used first
        self.max_conversations = max_conversations

    def names(self) -> list[str]:
        return []

    async def __call__(self, ctx: PlanContext) -> None:
        policy = self.routes.get(ctx.route)
        if policy is None:
            return
        if policy.sticky:
            conversation = ctx.request.metadata.get(policy.conversation_key)
            if conversation:
                self._stick(ctx, conversation)
        if policy.markers == "auto":
            ctx.prepares.append(self._markers(ctx.router, policy.min_prefix_tokens))

    def _stick(self, ctx: PlanContext, conversation: str) -> None:
        held = self.holders.get(conversation)
        chain = ctx.current_chain()
        if held is not None and held.deployment in chain:
            self.holders.move_to_end(conversation)
            state = ctx.router.deployment(held.deployment).breaker.state
            if state == "closed":
                if chain[0] != held.deployment:
                    ctx.chain = (held.deployment, *(n for n in chain if n != held.deployment))
                ctx.notes.append(
                    f"cache: conversation {conversation} stays on {held.deployment} "
                    f"({held.cached_tokens} cached tokens)"
                )
            else:
                ctx.notes.append(
                    f"cache: conversation {conversation}'s cache holder {held.deployment} is {state}; "
                    "not sticking"
                )
        ctx.finishes.append(self._remember(ctx.router, conversation, held))

    def _remember(self, router: RouterService, conversation: str, held: Holder | None) -> FinishFn:
        def finish(audit: AuditRecord) -> None:
            winner = audit.winner
            if winner is None:
                return
            attempt = next((a for a in reversed(audit.attempts) if a.model == winner), None)
            usage = attempt.usage if attempt is not None else None
            tokens = usage.cached_input_tokens + usage.cache_write_tokens if usage is not None else 0
            provider = router.deployment(winner).deployment.provider
            if held is not None and held.deployment != winner:
                audit.decisions.append(
                    f"cache: conversation {conversation} moved {held.deployment} ({held.provider}) → "
                    f"{winner} ({provider}), cache lost ({held.cached_tokens} cached tokens)"
                )
            self.holders[conversation] = Holder(winner, provider, tokens)
            self.holders.move_to_end(conversation)
            while len(self.holders) > self.max_conversations:
                self.holders.popitem(last=False)

        return finish

    @staticmethod
    def _markers(router: RouterService, min_tokens: int) -> PrepareFn:
        def prepare(deployment: str, request: ChatRequest, decisions: list[str]) -> ChatRequest:
            if not PROVIDERS[router.deployment(deployment).deployment.kind].marks_cache:
                return request
            marked, marks, prefix = mark_prefixes(request, min_tokens)
            if marks:
                note = f"cache: {marks} marker(s) for {deployment}, prefix ≈{prefix} tokens"
                if note not in decisions:
                    decisions.append(note)
            return marked

        return prepare
