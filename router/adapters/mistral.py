"""Mistral chat completions and embeddings: OpenAI's format with a few differences.

``stream_options`` is rejected (chunks carry ``usage`` anyway), ``seed`` is ``random_seed``,
``tool_choice: required`` is ``any``, and ``finish_reason`` may be ``model_length`` or ``error``
(both in :data:`router.adapters.openai.FINISH`). Paths are under ``/v1`` of the base URL.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.adapters import openai
from router.adapters._http import Codec
from router.adapters.base import Deployment
from router.adapters.provider import Provider
from router.headers import RateLimitDialect, RateLimitSnapshot, parse_duration, snapshot
from router.types import ChatRequest

auth_headers = openai.auth_headers
from_wire = openai.from_wire
parse_event = openai.parse_event
embed_to_wire = openai.embed_to_wire
embed_from_wire = openai.embed_from_wire


def chat_path(deployment: Deployment) -> str:
    return "/v1/chat/completions"


def embeddings_path(deployment: Deployment) -> str:
    return "/v1/embeddings"


def to_wire(request: ChatRequest, deployment: Deployment) -> dict[str, Any]:
    """The JSON body of Mistral's ``POST /v1/chat/completions``."""
    body = openai.to_wire(request, deployment)
    body.pop("stream_options", None)
    body.pop("user", None)
    if "seed" in body:
        body["random_seed"] = body.pop("seed")
    if body.get("tool_choice") == "required":
        body["tool_choice"] = "any"
    if request.prefill is not None:
        body["messages"][-1]["prefix"] = True  # continue this assistant message, not a new one
    if request.extra:
        body.update(request.extra)  # the caller's own parameters win over the renames
    return body


def parse_ratelimits(h: Mapping[str, str], now_epoch: float | None) -> RateLimitSnapshot | None:
    """OpenAI's names, else ``x-ratelimit-{limit,remaining}-req-minute``,
    ``x-ratelimitbysize-{limit,remaining}-minute`` and ``x-ratelimit-reset`` (seconds)."""
    snap = openai.parse_ratelimits(h, now_epoch)
    if snap is not None:
        return snap
    reset = parse_duration(h.get("x-ratelimit-reset"))
    return snapshot(
        h.get("x-ratelimit-remaining-req-minute"),
        h.get("x-ratelimitbysize-remaining-minute") or h.get("x-ratelimit-remaining-tokens-minute"),
        h.get("x-ratelimit-limit-req-minute"),
        h.get("x-ratelimitbysize-limit-minute") or h.get("x-ratelimit-limit-tokens-minute"),
        reset,
        reset,
    )


RATE_LIMITS = RateLimitDialect(
    parse_ratelimits,
    (
        *openai.REMAINING,
        "x-ratelimit-remaining-req-minute",
        "x-ratelimitbysize-remaining-minute",
        "x-ratelimit-remaining-tokens-minute",
    ),
)

# max_tokens; continues an assistant message marked "prefix": true; no batch API driven here.
PROVIDER = Provider(
    codec=Codec(
        kind="mistral",
        chat_path=chat_path,
        auth_headers=auth_headers,
        to_wire=to_wire,
        from_wire=from_wire,
        parse_event=parse_event,
        terminator="[DONE]",
        complete_on_finish=True,
        embeddings_path=embeddings_path,
        embed_to_wire=embed_to_wire,
        embed_from_wire=embed_from_wire,
    ),
    ratelimits=RATE_LIMITS,
    price_id="mistral",
    continues=True,
    may_continue=True,
)
