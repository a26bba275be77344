"""What the router knows about one provider kind: its codec and its facts, declared in one place.

Each provider module (``openai.py``, ``anthropic.py``, ...) ends with its :class:`Provider`; the
registry in :mod:`router.adapters` lists them. Everything that differs between providers is read
from here, never from a branch on the kind's name elsewhere in the router.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from router.adapters._http import Codec
from router.headers import RateLimitDialect

__all__ = ["BatchProtocol", "Provider"]

BatchProtocol = Literal["openai", "anthropic"]  # the batch APIs router.batch speaks


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider kind: how to talk to it (``codec``) and what it does differently."""

    codec: Codec
    ratelimits: RateLimitDialect  # how its responses report quota (router.headers)
    # Its provider id in genai-prices; None when model names say nothing about a price (a
    # self-hosted OpenAI-compatible server), so only configured prices apply.
    price_id: str | None = None
    marks_cache: bool = False  # caches only prefixes the request marks (cache_control)
    batch: BatchProtocol | None = None  # the batch API it offers, if router.batch can drive it
    continues: bool = False  # continues a trailing assistant message by default
    may_continue: bool = False  # a deployment may be configured to (continuation: true)

    @property
    def kind(self) -> str:
        return self.codec.kind
