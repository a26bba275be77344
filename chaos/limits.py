"""Real rate limits: requests and tokens per window, per API key and model, as providers count them.

Each limit is a pair of token buckets (requests, tokens) per (provider, API key, model) among the
requests its ``match`` selects. A bucket holds at most ``rpm`` (``tpm``) and refills continuously
at ``rpm / window`` per second, so a burst drains it and capacity comes back steadily. A request
is admitted when every matching limit has one request and its estimated tokens (prompt, as the
mock counts them, plus ``max_tokens``) available; otherwise it gets the provider's 429 with:

- ``retry-after`` (whole seconds, rounded up) and, for OpenAI, ``retry-after-ms``: the time
  until this very request would be admitted, so a client that waits that long is admitted
  (unless others took the capacity first): it never gets a second 429 in a row;
- the provider's rate-limit headers (remaining 0 for the exhausted bucket; resets = time until
  the bucket is full again), which also come on every admitted answer.

A request larger than a whole bucket can never pass: its 429 says ``x-should-retry: false``.

``concurrent`` caps the requests of one (provider, API key, model) in flight at once, as providers
with concurrency quotas do: a request over it gets a 429 at once (``retry-after: 1``), and a slot
is freed when the answer ends (for a stream, when its last event is sent or it is cut).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chaos.faults._bodies import error_response
from chaos.targeting import Match
from mockproviders.tokens import MESSAGE_OVERHEAD, REPLY_PRIMING, count_tokens, text_parts
from mockproviders.types import Clock, MockRequest, MockResponse, Provider
from turnout.durations import Duration

_EPS = 1e-9
_WAIT_EPS = 1e-6  # seconds


class Limit(BaseModel):
    """``limits:`` entry: ``{match: {...}, rpm: 60, tpm: 40000, window: 60s}``."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    match: Match = Field(default_factory=Match)
    rpm: int | None = Field(default=None, ge=1, description="requests per window")
    tpm: int | None = Field(default=None, ge=1, description="tokens per window")
    concurrent: int | None = Field(default=None, ge=1, description="requests in flight at once")
    window: Duration = Field(default=60.0, gt=0)

    @model_validator(mode="after")
    def _something(self) -> Limit:
        if self.rpm is None and self.tpm is None and self.concurrent is None:
            raise ValueError("a limit needs rpm, tpm, concurrent or a mix")
        return self


def estimate_tokens(request: MockRequest) -> int:
    """Tokens a request is charged on arrival: its prompt as the mock counts it, plus ``max_tokens``."""
    body = request.json if isinstance(request.json, dict) else {}
    prompt = REPLY_PRIMING
    messages = body.get("messages")
    if isinstance(messages, list):
        for m in messages:
            if isinstance(m, dict):
                prompt += MESSAGE_OVERHEAD + sum(count_tokens(t) for t in text_parts(m.get("content")))
    elif "input" in body:  # embeddings (strings), or the Responses API (strings and items)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        prompt = sum(count_tokens(t) for t in inputs if isinstance(t, str))
        for item in inputs:
            if isinstance(item, dict):
                content = item.get("content", item.get("output"))
                prompt += MESSAGE_OVERHEAD + sum(count_tokens(t) for t in text_parts(content))
        if isinstance(body.get("instructions"), str):
            prompt += MESSAGE_OVERHEAD + count_tokens(body["instructions"])
    system = body.get("system")
    if system is not None:
        prompt += sum(count_tokens(t) for t in text_parts(system if isinstance(system, list) else [system]))
    out = body.get("max_completion_tokens") or body.get("max_tokens") or body.get("max_output_tokens") or 0
    return prompt + (out if isinstance(out, int) and out > 0 else 0)


@dataclass(slots=True)
class _Bucket:
    capacity: float
    rate: float  # per second
    level: float
    at: float

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now

    def wait_for(self, amount: float) -> float:
        return max(0.0, (amount - self.level) / self.rate)

    def full_in(self) -> float:
        return max(0.0, (self.capacity - self.level) / self.rate)


@dataclass(slots=True)
class _State:
    requests: _Bucket | None
    tokens: _Bucket | None
    inflight: int = 0


class RateLimits:
    """The buckets for a list of :class:`Limit`; ``check`` admits or answers a truthful 429."""

    def __init__(self, limits: Iterable[Limit], clock: Clock) -> None:
        self.limits = list(limits)
        self._clock = clock
        self._state: dict[tuple[int, str, str | None, str | None], _State] = {}
        self.counts_inflight = any(lim.concurrent for lim in self.limits)

    def reset(self) -> None:
        self._state.clear()

    def release(self, request: MockRequest) -> None:
        """An admitted request's answer ended: free its slot under each ``concurrent`` limit."""
        if not self.counts_inflight:
            return
        for i, limit in enumerate(self.limits):
            if limit.concurrent and limit.match.matches(request):
                st = self._state.get((i, request.provider, request.api_key, request.model))
                if st is not None and st.inflight > 0:
                    st.inflight -= 1

    def _states(self, request: MockRequest, now: float) -> list[tuple[Limit, _State]]:
        out = []
        for i, limit in enumerate(self.limits):
            if not limit.match.matches(request):
                continue
            key = (i, request.provider, request.api_key, request.model)
            st = self._state.get(key)
            if st is None:
                r = _Bucket(limit.rpm, limit.rpm / limit.window, limit.rpm, now) if limit.rpm else None
                t = _Bucket(limit.tpm, limit.tpm / limit.window, limit.tpm, now) if limit.tpm else None
                st = self._state[key] = _State(r, t)
            for b in (st.requests, st.tokens):
                if b is not None:
                    b.refill(now)
            out.append((limit, st))
        return out

    def check(self, request: MockRequest) -> tuple[MockResponse | None, dict[str, str], str | None]:
        """(a 429 to send or None, rate-limit headers for the answer, the limit that refused)."""
        now = self._clock.now()
        states = self._states(request, now)
        if not states:
            return None, {}, None
        need = estimate_tokens(request)
        for limit, st in states:
            if limit.concurrent is not None and st.inflight >= limit.concurrent:
                return self._too_many(request, limit, st)
        worst: tuple[float, Limit, _State, str] | None = None
        impossible = False
        for limit, st in states:
            for which, bucket, amount in (("requests", st.requests, 1.0), ("tokens", st.tokens, float(need))):
                # Judged in time: a shortfall that refills within a microsecond is float rounding
                # of epoch times (about 2e-7 s apart at today's epoch), not a reason to refuse:
                # the client that waited exactly the retry-after it was told would be refused twice.
                if bucket is None or bucket.wait_for(amount) < _WAIT_EPS:
                    continue
                impossible |= amount > bucket.capacity
                wait = bucket.wait_for(amount)
                if worst is None or wait > worst[0]:
                    worst = (wait, limit, st, which)
        if worst is None:
            for _, st in states:
                if st.requests is not None:
                    st.requests.level -= 1
                if st.tokens is not None:
                    st.tokens.level -= need
                st.inflight += 1
            return None, _headers(request.provider, states[0][1]), None
        wait, limit, st, which = worst
        headers = _headers(request.provider, st, exhausted=which)
        if impossible:
            headers["x-should-retry"] = "false"
        else:
            headers["retry-after"] = str(max(1, math.ceil(wait)))
            if request.provider == "openai":
                headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        label = limit.name or f"limits.{self.limits.index(limit)}"
        message = _message(request, which, limit, need, wait)
        kind = "tokens" if which == "tokens" and request.provider == "openai" else None
        return error_response(request.provider, 429, kind, message, headers=headers), headers, label

    def _too_many(
        self, request: MockRequest, limit: Limit, st: _State
    ) -> tuple[MockResponse, dict[str, str], str]:
        headers = _headers(request.provider, st)
        headers["retry-after"] = "1"
        if request.provider == "openai":
            headers["retry-after-ms"] = "1000"
        message = (
            f"Too many concurrent requests for {request.model or 'this model'}: "
            f"limit {limit.concurrent} in flight. Please try again in 1s."
        )
        label = limit.name or f"limits.{self.limits.index(limit)}"
        return error_response(request.provider, 429, None, message, headers=headers), headers, label


def _message(request: MockRequest, which: str, limit: Limit, need: int, wait: float) -> str:
    cap = limit.rpm if which == "requests" else limit.tpm
    unit = "RPM" if which == "requests" else "TPM"
    asked = 1 if which == "requests" else need
    return (
        f"Rate limit reached for {request.model or 'this model'} on {which} ({unit}): "
        f"Limit {cap} per {limit.window:g}s, Requested {asked}. Please try again in {wait:.3f}s."
    )


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``6ms``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{math.ceil(seconds * 1000)}ms"
    if seconds < 60:
        return f"{math.ceil(seconds * 1000) / 1000:g}s"
    minutes, secs = divmod(math.ceil(seconds), 60)
    return f"{minutes}m{secs}s"


def _rfc3339(seconds_from_now: float) -> str:
    return datetime.fromtimestamp(math.ceil(time.time() + seconds_from_now), UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def _headers(provider: Provider, st: _State, exhausted: str | None = None) -> dict[str, str]:
    """The provider's rate-limit headers for one limit's state."""
    out: dict[str, str] = {}
    for which, bucket in (("requests", st.requests), ("tokens", st.tokens)):
        if bucket is None:
            continue
        remaining = 0 if exhausted == which else max(0, math.floor(bucket.level + _EPS))
        vals: dict[str, Any] = {
            "limit": int(bucket.capacity),
            "remaining": remaining,
            "reset": bucket.full_in(),
        }
        if provider == "anthropic":
            for k in ("limit", "remaining"):
                out[f"anthropic-ratelimit-{which}-{k}"] = str(vals[k])
            out[f"anthropic-ratelimit-{which}-reset"] = _rfc3339(vals["reset"])
        elif provider == "mistral":
            short = "req-minute" if which == "requests" else "tokens-minute"
            out[f"x-ratelimit-limit-{short}"] = str(vals["limit"])
            out[f"x-ratelimit-remaining-{short}"] = str(vals["remaining"])
        else:
            out[f"x-ratelimit-limit-{which}"] = str(vals["limit"])
            out[f"x-ratelimit-remaining-{which}"] = str(vals["remaining"])
            out[f"x-ratelimit-reset-{which}"] = _duration(vals["reset"])
    return out
