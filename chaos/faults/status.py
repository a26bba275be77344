"""Status errors: the targeted provider's own error body and headers, before any answer.

Every status fault takes the common parameters of :class:`StatusParams`: ``retry_after``
(seconds, written to ``retry-after`` as given: any value, even above 60 s or 120 s, where the
SDKs behave differently), ``retry_after_ms`` (``retry-after-ms``), ``should_retry``
(``x-should-retry: true|false``, which the OpenAI and Anthropic SDKs obey before anything
else), ``message`` and extra ``headers``.
"""

from __future__ import annotations

import re
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from chaos.faults._base import Fault, FaultContext, FaultParams, register
from chaos.faults._bodies import error_response
from mockproviders.types import Handler, MockRequest, MockResponse, Provider
from turnout.durations import MAX_SECONDS, Duration

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class StatusParams(FaultParams):
    """Headers and message every status fault can carry."""

    retry_after: Duration | None = Field(default=None, description="seconds, sent as retry-after")
    retry_after_ms: float | None = Field(
        default=None, ge=0, le=MAX_SECONDS * 1000, description="sent as retry-after-ms"
    )
    should_retry: bool | None = Field(default=None, description="sent as x-should-retry")
    message: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("headers")
    @classmethod
    def _sendable(cls, headers: dict[str, str]) -> dict[str, str]:
        """Only headers that can be written: a token for a name, no line break in a value (one
        would split the answer's head, and every request the rule matched was dropped)."""
        for name, value in headers.items():
            if not _TOKEN.fullmatch(name):
                raise ValueError(f"header name {name[:40]!r} is not an HTTP token")
            if _CONTROL.search(value):
                raise ValueError(f"header {name!r}: the value holds a control character (CR, LF, ...)")
        return headers


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


# What a status fault sends: (status, the provider's error type, its code, message); None = the
# provider's usual value for that status (see mockproviders.errors).
ErrorSpec = tuple[int, str | None, str | None, str | None]


class StatusFault(Fault[StatusParams]):
    """Base of the status faults: subclasses say which error, the base writes it."""

    family = "status"
    Params: ClassVar[type[FaultParams]] = StatusParams

    def error(self, provider: Provider) -> ErrorSpec:
        raise NotImplementedError

    async def apply(self, request: MockRequest, call_next: Handler, ctx: FaultContext) -> MockResponse:
        p: StatusParams = self.params
        status, kind, code, message = self.error(request.provider)
        headers = {k.lower(): v for k, v in p.headers.items()}
        if p.retry_after is not None:
            headers["retry-after"] = _number(p.retry_after)
        if p.retry_after_ms is not None:
            headers["retry-after-ms"] = _number(p.retry_after_ms)
        if p.should_retry is not None:
            headers["x-should-retry"] = "true" if p.should_retry else "false"
        return error_response(
            request.provider, status, kind, p.message or message, code=code, headers=headers
        )


class HttpErrorParams(StatusParams):
    status: int = Field(ge=400, le=599)
    type: str | None = Field(default=None, description="the error type; default: the provider's for status")
    code: str | None = None


@register
class HttpError(StatusFault):
    """Any 4xx/5xx status, with the provider's usual error type for it unless ``type`` is given."""

    name = "http_error"
    Params = HttpErrorParams

    def error(self, provider: Provider) -> ErrorSpec:
        p: HttpErrorParams = self.params  # type: ignore[assignment]
        return p.status, p.type, p.code, None


@register
class RateLimited(StatusFault):
    """429 rate limit (``rate_limit_exceeded`` / ``rate_limit_error``); SDKs retry it. Sends
    ``retry-after`` only when asked (``retry_after`` / ``retry_after_ms``)."""

    name = "rate_limit"

    def error(self, provider: Provider) -> ErrorSpec:
        return 429, None, None, None


@register
class InsufficientQuota(StatusFault):
    """Out of credit: OpenAI's 429 ``insufficient_quota`` (not to be retried, but the SDK does,
    as for any 429); Anthropic's 400 ``billing_error``-style "credit balance is too low"; Mistral's
    429 with type ``insufficient_quota``."""

    name = "insufficient_quota"

    def error(self, provider: Provider) -> ErrorSpec:
        if provider == "anthropic":
            return (
                400,
                "invalid_request_error",
                None,
                "Your credit balance is too low to access the Anthropic API.",
            )
        msg = "You exceeded your current quota, please check your plan and billing details."
        return 429, "insufficient_quota", "insufficient_quota", msg


class ServerErrorParams(StatusParams):
    status: Literal[500, 502, 503, 504] = 500


@register
class ServerError(StatusFault):
    """500, 502, 503 or 504 with the provider's server-error body; SDKs retry these."""

    name = "server_error"
    Params = ServerErrorParams

    def error(self, provider: Provider) -> ErrorSpec:
        p: ServerErrorParams = self.params  # type: ignore[assignment]
        return p.status, None, None, None


@register
class Overloaded(StatusFault):
    """Anthropic's 529 ``overloaded_error``; for OpenAI and Mistral, their 503 "overloaded"."""

    name = "overloaded"

    def error(self, provider: Provider) -> ErrorSpec:
        if provider == "anthropic":
            return 529, "overloaded_error", None, "Overloaded"
        return 503, None, None, "The engine is currently overloaded, please try again later."


@register
class ContextLength(StatusFault):
    """400: the prompt is longer than the model's context window."""

    name = "context_length"

    def error(self, provider: Provider) -> ErrorSpec:
        if provider == "anthropic":
            return 400, "invalid_request_error", None, "prompt is too long: 210000 tokens > 200000 maximum"
        msg = (
            "This model's maximum context length is 128000 tokens. However, your messages resulted "
            "in 210000 tokens. Please reduce the length of the messages."
        )
        return 400, "invalid_request_error", "context_length_exceeded", msg


@register
class ContentPolicy(StatusFault):
    """400: the request was refused by the provider's content policy."""

    name = "content_policy"

    def error(self, provider: Provider) -> ErrorSpec:
        msg = "Your request was rejected as a result of our safety system."
        code = None if provider == "anthropic" else "content_policy_violation"
        return 400, "invalid_request_error", code, msg


@register
class Unauthorized(StatusFault):
    """401: the API key is wrong (``invalid_api_key`` / ``authentication_error``)."""

    name = "unauthorized"

    def error(self, provider: Provider) -> ErrorSpec:
        return 401, None, None, None


@register
class NotFound(StatusFault):
    """404: the model does not exist (``model_not_found`` / ``not_found_error``)."""

    name = "not_found"

    def error(self, provider: Provider) -> ErrorSpec:
        return 404, None, None, None
