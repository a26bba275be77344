"""Turn what an upstream said into one :mod:`router.errors` class, through one table.

Two entry points, one per way an upstream says it failed:

- :func:`classify_response`: an error status with the provider's body and headers;
- :func:`classify_stream_error`: an in-band error event after the 200 (classified by the event's
  ``error.type``, mapped to the status that type stands for, then through the same table).

A failure of the exchange itself (refused, reset, timeout, a cut body) needs no translation: the
transports (:mod:`router.transport`) raise :mod:`router.errors` classes themselves, and the batch
client's aiohttp failures are translated where they are caught (:mod:`router.batch._aiohttp_errors`).

``x-should-retry: false`` always makes an error non-retryable; ``x-should-retry: true`` is
ignored for the classes that are never retried (400/401/403/404, context length, content policy,
quota), because retrying those cannot help whatever a proxy says.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from router import errors as E
from router.headers import parse_retry_after, parse_should_retry
from turnout import safejson

__all__ = [
    "RULES",
    "Rule",
    "classify_response",
    "classify_stream_error",
    "error_fields",
    "malformed",
]

_CONTEXT = re.compile(
    r"context[ _-]?length|context window|maximum context|prompt is too long|too many (input )?tokens"
    r"|reduce the length|input is too long|exceeds? the (model'?s? )?(max|context)",
    re.IGNORECASE,
)
_POLICY = re.compile(
    r"content[ _-]?(management )?policy|content[ _-]?filter|safety (system|policy)"
    r"|flagged as (unsafe|harmful)",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Rule:
    """Matches when every given field matches; ``None`` means any."""

    cls: type[E.RouterError]
    statuses: frozenset[int] | None = None
    types: frozenset[str] | None = None  # the provider's error type or code
    message: re.Pattern[str] | None = None
    kinds: frozenset[str] | None = None  # provider kinds


def _s(*v: int) -> frozenset[int]:
    return frozenset(v)


def _t(*v: str) -> frozenset[str]:
    return frozenset(v)


_BAD = _s(400, 413, 422)

# First match wins. The specific rules (quota, context, policy) come before the status rules.
RULES: tuple[Rule, ...] = (
    Rule(E.QuotaExceeded, types=_t("insufficient_quota", "billing_hard_limit_reached")),
    Rule(E.ContextLengthExceeded, types=_t("context_length_exceeded", "string_above_max_length")),
    Rule(E.ContextLengthExceeded, statuses=_BAD, message=_CONTEXT),
    Rule(E.ContentPolicy, types=_t("content_policy_violation", "content_filter", "content_policy")),
    Rule(E.ContentPolicy, statuses=_BAD, message=_POLICY),
    Rule(E.RateLimited, statuses=_s(429)),
    Rule(E.RateLimited, types=_t("rate_limit_error", "rate_limit_exceeded")),
    Rule(E.Overloaded, statuses=_s(529)),
    Rule(E.Overloaded, types=_t("overloaded_error")),
    Rule(E.AuthError, statuses=_s(401, 403)),
    Rule(E.NotFound, statuses=_s(404)),
    Rule(E.AttemptTimeout, statuses=_s(408)),
    Rule(E.ServerError, statuses=_s(409)),  # lock timeout / conflict: the SDKs retry it too
    Rule(E.BadRequest, statuses=_BAD),
    Rule(E.BadRequest, statuses=frozenset(range(405, 500))),
    Rule(E.ServerError, statuses=frozenset(range(500, 600))),
)

# In-band stream errors carry a type, not a status: read them as the status the type stands for.
_TYPE_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "request_too_large": 413,
    "authentication_error": 401,
    "invalid_api_key": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "model_not_found": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "overloaded_error": 529,
    "api_error": 500,
    "server_error": 500,
}

_NEVER_RETRY = (E.BadRequest, E.AuthError, E.NotFound, E.QuotaExceeded)


def error_fields(payload: Any) -> tuple[str, str | None, str | None]:
    """(message, type, code) from any provider's error body; tolerant of every shape seen."""
    if not isinstance(payload, dict):
        return "", None, None
    err = payload.get("error", payload)
    if isinstance(err, str):  # {"error": "text"}
        return err, None, None
    if not isinstance(err, dict):
        return "", None, None
    message = err.get("message")
    if message is None and "detail" in err:  # Mistral/FastAPI 422: {"detail": [{"loc", "msg"}]}
        message = json.dumps(err["detail"])[:500]
    etype, code = err.get("type"), err.get("code")
    return (
        str(message) if message is not None else "",
        str(etype) if etype is not None else None,
        str(code) if code is not None else None,
    )


def _match(kind: str, status: int, keys: tuple[str | None, ...], message: str) -> type[E.RouterError]:
    for rule in RULES:
        if rule.kinds is not None and kind not in rule.kinds:
            continue
        if rule.statuses is not None and status not in rule.statuses:
            continue
        if rule.types is not None and not any(k in rule.types for k in keys if k):
            continue
        if rule.message is not None and not rule.message.search(message):
            continue
        return rule.cls
    return E.ServerError if status >= 500 or status < 100 else E.MalformedResponse


def _build(
    cls: type[E.RouterError],
    message: str,
    *,
    provider: str,
    model: str,
    status: int | None,
    etype: str | None,
    retry_after: float | None,
    should_retry: bool | None,
) -> E.RouterError:
    if should_retry is True and issubclass(cls, _NEVER_RETRY):
        should_retry = None
    return cls(
        message,
        provider=provider,
        model=model,
        status=status,
        retry_after=retry_after,
        error_type=etype,
        should_retry=should_retry,
    )


def classify_response(
    kind: str,
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    *,
    provider: str,
    model: str,
    now_epoch: float | None = None,
) -> E.RouterError:
    """The error for an HTTP answer with a non-2xx ``status``."""
    try:
        payload = safejson.loads(body) if body else None
    except ValueError:
        payload = None
    message, etype, code = error_fields(payload)
    if not message:
        text = body[:200].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    cls = _match(kind, status, (etype, code), message)
    return _build(
        cls,
        message,
        provider=provider,
        model=model,
        status=status,
        etype=code or etype,
        retry_after=parse_retry_after(headers, now_epoch),
        should_retry=parse_should_retry(headers),
    )


def classify_stream_error(kind: str, payload: Any, *, provider: str, model: str) -> E.RouterError:
    """The error for an in-band error event (Anthropic ``event: error``, OpenAI ``{"error": ...}``)."""
    message, etype, code = error_fields(payload)
    status = _TYPE_STATUS.get(etype or "", _TYPE_STATUS.get(code or "", 500))
    cls = _match(kind, status, (etype, code), message)
    return _build(
        cls,
        message or f"in-band stream error {etype or code or ''}".strip(),
        provider=provider,
        model=model,
        status=None,
        etype=code or etype,
        retry_after=None,
        should_retry=None,
    )


def malformed(what: str, *, provider: str, model: str, raw: bytes | str | None = None) -> E.MalformedResponse:
    """A MalformedResponse that names what was wrong and shows the start of the offending text."""
    if raw is not None:
        text = raw[:120].decode("utf-8", "replace") if isinstance(raw, bytes) else raw[:120]
        what = f"{what}: {text!r}"
    return E.MalformedResponse(what, provider=provider, model=model)
