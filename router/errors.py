"""The router's one error hierarchy.

Every failure a caller can see is a :class:`RouterError` with structured fields (``provider``,
``model``, ``status``, ``kind``, ``retry_after``, ``retryable``). Vendor failures are translated
at the adapter edge through one table (:func:`router.classify` builds them from status, body and
headers, and from a stream's in-band error type) and chained with ``raise ... from``. A failure
of the exchange itself is born here too: the transports (:mod:`router.transport`) raise these
classes directly (the adapter fills in ``provider`` and ``model``), so no other vocabulary of
network errors reaches the engine.

::

    RouterError
    ├── ProviderError              an upstream answered, with an error
    │   ├── RateLimited            429 rate_limit_exceeded / rate_limit_error      (retryable)
    │   ├── QuotaExceeded          429 insufficient_quota                           (not retryable)
    │   ├── ServerError            500, 502, 503, 504                               (retryable)
    │   ├── Overloaded             Anthropic 529 overloaded_error                   (retryable)
    │   ├── BadRequest             400, 413, 422                                    (not retryable)
    │   │   ├── ContextLengthExceeded   the input does not fit: try a larger model
    │   │   └── ContentPolicy           refused by the provider's policy: not retried on that model
    │   ├── AuthError              401, 403                                         (not retryable)
    │   └── NotFound               404 model or path                                (not retryable)
    ├── TransportError             no usable answer came back                       (retryable)
    │   ├── ConnectFailed          refused, reset, DNS, TLS, or not HTTP, before the answer's head
    │   ├── AttemptTimeout         connect or read timeout of one attempt
    │   │   ├── ConnectTimeout     no connection within the connect limit
    │   │   └── ReadTimeout        request sent, the answer (or its next bytes) not in time
    │   ├── FirstTokenTimeout      no first token within the limit
    │   ├── StreamStalled          no bytes for longer than the idle limit
    │   └── StreamCut              the answer ended before the provider's terminator
    ├── MalformedResponse          a reply that is not the provider's format        (retryable)
    │   └── ReplyTooLarge          a body larger than the provider's ``max_reply_bytes``
    ├── StreamInterrupted          a stream failed after output had begun           (raised to the caller)
    ├── Unavailable                no attempt made: breaker open, local rate limit, budget
    ├── BudgetExceeded             a route's or task's spending limit is reached    (402, not retryable)
    ├── DeadlineExceeded           the request's total budget ran out
    ├── AllAttemptsFailed          every candidate failed; carries each attempt's error
    ├── UnknownRoute               the request named no configured route or model
    └── Unsupported                the route's deployments cannot serve it (embeddings of a chat
                                   route, tools where none takes them): 400 before any call

The batch subpackage keeps its own errors beside it, in ``router/batch/types.py`` (exported by
:mod:`router.batch`, not from here): ``BatchError(RouterError)`` (submit, poll or read failed),
with ``BatchResultError`` (a malformed results file) and ``BatchTimeout`` (no terminal state in
time) under it.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    """A stable name for each failure class, used in metrics, audit records and configs."""

    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    SERVER = "server"
    OVERLOADED = "overloaded"
    BAD_REQUEST = "bad_request"
    CONTEXT_LENGTH = "context_length"
    CONTENT_POLICY = "content_policy"
    AUTH = "auth"
    NOT_FOUND = "not_found"
    CONNECT = "connect"
    TIMEOUT = "timeout"
    FIRST_TOKEN_TIMEOUT = "first_token_timeout"
    STALL = "stall"
    MALFORMED = "malformed"
    STREAM_CUT = "stream_cut"
    UNAVAILABLE = "unavailable"
    DEADLINE = "deadline"
    EXHAUSTED = "exhausted"
    UNKNOWN_ROUTE = "unknown_route"
    BUDGET = "budget"


class RouterError(Exception):
    """Base of every error the router raises."""

    kind: ErrorKind = ErrorKind.SERVER
    retryable: bool = False
    http_status: int = 502  # what the sidecar answers with for this error

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
        error_type: str | None = None,
        should_retry: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.retry_after = retry_after  # seconds, as the provider (or the router) asked
        self.error_type = error_type  # the provider's own type/code string
        if should_retry is not None:  # x-should-retry overrides the class default
            self.retryable = should_retry

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        return f"{self.message} ({where})" if where else self.message


class ProviderError(RouterError):
    """An upstream answered with an error status or an in-band error event."""


class RateLimited(ProviderError):
    """The provider rate-limited the request (429); retry after ``retry_after``."""

    kind, retryable, http_status = ErrorKind.RATE_LIMIT, True, 429


class QuotaExceeded(ProviderError):
    """The account is out of quota (OpenAI insufficient_quota); retrying cannot help."""

    kind, retryable, http_status = ErrorKind.QUOTA, False, 429


class ServerError(ProviderError):
    """The provider failed (5xx)."""

    kind, retryable, http_status = ErrorKind.SERVER, True, 502


class Overloaded(ProviderError):
    """The provider is overloaded (Anthropic 529, or an in-band overloaded_error)."""

    kind, retryable, http_status = ErrorKind.OVERLOADED, True, 503


class BadRequest(ProviderError):
    """The provider rejected the request itself (400, 413, 422)."""

    kind, retryable, http_status = ErrorKind.BAD_REQUEST, False, 400


class ContextLengthExceeded(BadRequest):
    """The input is longer than the model's context window."""

    kind = ErrorKind.CONTEXT_LENGTH


class ContentPolicy(BadRequest):
    """The provider refused the content under its policy."""

    kind = ErrorKind.CONTENT_POLICY


class AuthError(ProviderError):
    """The provider rejected the credentials (401, 403)."""

    kind, retryable, http_status = ErrorKind.AUTH, False, 502


class NotFound(ProviderError):
    """The provider does not know the model or path (404)."""

    kind, retryable, http_status = ErrorKind.NOT_FOUND, False, 502


class TransportError(RouterError):
    """No usable answer came back from the upstream."""

    kind, retryable, http_status = ErrorKind.CONNECT, True, 502


class ConnectFailed(TransportError):
    """The connection was refused, reset or failed (or the reply was not HTTP) before the answer's head."""

    kind = ErrorKind.CONNECT


class AttemptTimeout(TransportError):
    """One attempt's connect or read timeout passed."""

    kind, http_status = ErrorKind.TIMEOUT, 504


class ConnectTimeout(AttemptTimeout):
    """No connection was made within the connect limit."""


class ReadTimeout(AttemptTimeout):
    """The request was sent, but the answer's head (or its body's next bytes) did not come in time."""


class FirstTokenTimeout(TransportError):
    """No first token arrived within the time-to-first-token limit."""

    kind, http_status = ErrorKind.FIRST_TOKEN_TIMEOUT, 504


class StreamStalled(TransportError):
    """The stream sent nothing for longer than the idle limit."""

    kind, http_status = ErrorKind.STALL, 504


class StreamCut(TransportError):
    """The answer ended (or the connection closed) before the provider's terminator."""

    kind = ErrorKind.STREAM_CUT


class MalformedResponse(RouterError):
    """The upstream's reply was not in the provider's format."""

    kind, retryable, http_status = ErrorKind.MALFORMED, True, 502


class ReplyTooLarge(MalformedResponse):
    """The answer's body is larger than the provider's ``max_reply_bytes`` (after decompression)."""


class StreamInterrupted(RouterError):
    """A stream failed after output had begun; ``partial`` holds the text already sent."""

    kind, retryable, http_status = ErrorKind.STREAM_CUT, False, 502

    def __init__(self, message: str, *, partial: str = "", cause_kind: ErrorKind | None = None, **kw: object):
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.partial = partial
        self.cause_kind = cause_kind


class Unavailable(RouterError):
    """No attempt was made on a deployment: its breaker is open, or a local limit is reached."""

    kind, retryable, http_status = ErrorKind.UNAVAILABLE, True, 503


class DeadlineExceeded(RouterError):
    """The request's total time budget ran out."""

    kind, retryable, http_status = ErrorKind.DEADLINE, False, 504


class AllAttemptsFailed(RouterError):
    """Every candidate failed; ``errors`` holds each attempt's error, in order."""

    kind, retryable, http_status = ErrorKind.EXHAUSTED, False, 502

    def __init__(self, message: str, *, errors: list[RouterError], **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.errors = errors


class UnknownRoute(RouterError):
    """The request named no configured route or deployment."""

    kind, retryable, http_status = ErrorKind.UNKNOWN_ROUTE, False, 404


class Unsupported(RouterError):
    """No deployment of the route can serve this kind of request: refused before any call, and
    never counted against a deployment (the caller's mistake, not the provider's)."""

    kind, retryable, http_status = ErrorKind.BAD_REQUEST, False, 400


class BudgetExceeded(RouterError):
    """A spending limit (``budget``) is reached and its action is ``refuse``.

    402, not 429: the SDKs retry a 429 at once, and a budget does not refill in seconds;
    ``retry_after`` says when its period ends.
    """

    kind, retryable, http_status = ErrorKind.BUDGET, False, 402

    def __init__(self, message: str, *, budget: str, spent: float, limit: float, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.budget = budget
        self.spent = spent
        self.limit = limit
