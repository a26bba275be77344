"""Groq (GroqCloud): OpenAI's chat format at ``https://api.groq.com/openai/v1``, with Groq's facts.

What differs from OpenAI, from Groq's documentation (console.groq.com/docs/rate-limits, /batch):

- Rate limits apply per organization and are counted per minute and per day. Every response
  carries ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}``, OpenAI's names, but the
  *requests* counters are the day's (RPD) and the *tokens* counters the minute's (TPM); resets are
  durations with fractional seconds (``2m59.56s``, ``7.66s``); ``retry-after`` (seconds) comes on
  429s only. The names read as OpenAI's parser reads them, so the dialect shares its parser; a
  "0 remaining" then holds the deployment until that reset (capped by ``retry_after_cap``).
- Prices: genai-prices knows Groq's models under its own provider id, ``groq``.
- The output limit is ``max_completion_tokens`` (groq-python deprecates ``max_tokens`` for it).
- A trailing assistant message is answered afresh, never continued (no ``continue_final_message``).
- Batches: OpenAI's files + batches protocol under the same base URL.
"""

from __future__ import annotations

from router.adapters import openai
from router.adapters.provider import Provider
from router.headers import RateLimitDialect

RATE_LIMITS = RateLimitDialect(openai.parse_ratelimits, openai.REMAINING)

PROVIDER = Provider(
    codec=openai.codec("groq", max_tokens_field="max_completion_tokens"),
    ratelimits=RATE_LIMITS,
    price_id="groq",
    batch="openai",
)
