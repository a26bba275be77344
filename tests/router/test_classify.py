"""One table from (provider, status, body, headers) to an error class."""

import json

import aiohttp
import pytest

from router import errors as E
from router.batch._aiohttp_errors import from_aiohttp
from router.classify import classify_response, classify_stream_error

W = {"provider": "p", "model": "m"}


def oa(message: str, type_: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()


def an(type_: str, message: str = "x") -> bytes:
    return json.dumps({"type": "error", "error": {"type": type_, "message": message}}).encode()


CASES = [
    ("openai", 429, oa("Rate limit reached", "requests", "rate_limit_exceeded"), E.RateLimited, True),
    (
        "openai",
        429,
        oa("You exceeded your current quota", "insufficient_quota", "insufficient_quota"),
        E.QuotaExceeded,
        False,
    ),
    (
        "openai",
        400,
        oa("maximum context length is 128000 tokens", "invalid_request_error", "context_length_exceeded"),
        E.ContextLengthExceeded,
        False,
    ),
    (
        "openai",
        400,
        oa(
            "Your request was rejected by our safety system",
            "invalid_request_error",
            "content_policy_violation",
        ),
        E.ContentPolicy,
        False,
    ),
    ("openai", 400, oa("bad param", "invalid_request_error"), E.BadRequest, False),
    ("openai", 401, oa("Incorrect API key", "invalid_request_error", "invalid_api_key"), E.AuthError, False),
    ("openai", 404, oa("model not found", "invalid_request_error", "model_not_found"), E.NotFound, False),
    ("openai", 500, oa("oops", "server_error"), E.ServerError, True),
    ("openai", 503, b"<html>bad gateway</html>", E.ServerError, True),
    ("anthropic", 529, an("overloaded_error", "Overloaded"), E.Overloaded, True),
    (
        "anthropic",
        400,
        an("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
        E.ContextLengthExceeded,
        False,
    ),
    ("anthropic", 403, an("permission_error"), E.AuthError, False),
    ("anthropic", 413, an("request_too_large"), E.BadRequest, False),
    ("anthropic", 429, an("rate_limit_error"), E.RateLimited, True),
    (
        "mistral",
        422,
        json.dumps({"detail": [{"loc": ["body", "x"], "msg": "bad"}]}).encode(),
        E.BadRequest,
        False,
    ),
    (
        "mistral",
        400,
        json.dumps(
            {
                "object": "error",
                "message": "Prompt contains 40000 tokens, too many tokens for model",
                "type": "invalid_request_error",
                "code": "3051",
            }
        ).encode(),
        E.ContextLengthExceeded,
        False,
    ),
    ("mistral", 408, b"", E.AttemptTimeout, True),
]


@pytest.mark.parametrize(("kind", "status", "body", "cls", "retryable"), CASES)
def test_table(kind: str, status: int, body: bytes, cls: type, retryable: bool) -> None:
    err = classify_response(kind, status, body, {}, **W)
    assert type(err) is cls
    assert err.retryable is retryable
    assert err.status == status and err.provider == "p" and err.model == "m"
    assert err.message  # never empty, even for an empty body


def test_retry_after_headers() -> None:
    err = classify_response("openai", 429, b"", {"retry-after": "7"}, **W)
    assert err.retry_after == 7
    err = classify_response("openai", 429, b"", {"Retry-After-Ms": "250", "retry-after": "9"}, **W)
    assert err.retry_after == 0.25


def test_should_retry_false_wins_true_cannot_unlock_a_400() -> None:
    assert classify_response("openai", 503, b"", {"x-should-retry": "false"}, **W).retryable is False
    assert classify_response("openai", 400, b"", {"x-should-retry": "true"}, **W).retryable is False
    assert classify_response("openai", 409, b"", {"x-should-retry": "true"}, **W).retryable is True


def test_garbage_body_keeps_its_text() -> None:
    err = classify_response("openai", 502, b"upstream connect error", {}, **W)
    assert "upstream connect error" in err.message


@pytest.mark.parametrize(
    ("payload", "cls"),
    [
        ({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, E.Overloaded),
        ({"type": "error", "error": {"type": "api_error", "message": "x"}}, E.ServerError),
        ({"type": "error", "error": {"type": "rate_limit_error", "message": "x"}}, E.RateLimited),
        ({"error": {"message": "boom", "type": "server_error"}}, E.ServerError),
        ({"error": {"message": "?", "type": "weird"}}, E.ServerError),
        (
            {"error": {"type": "invalid_request_error", "message": "maximum context length"}},
            E.ContextLengthExceeded,
        ),
    ],
)
def test_stream_errors_by_type(payload: dict, cls: type) -> None:
    err = classify_stream_error("anthropic", payload, **W)
    assert type(err) is cls


def test_the_batch_clients_aiohttp_failures_are_translated_at_its_edge() -> None:
    """The one place aiohttp's vocabulary is read; the adapters' transports raise router errors."""
    w = {**W, "during": "GET /v1/batches/b1"}
    assert type(from_aiohttp(ConnectionRefusedError(), **w)) is E.ConnectFailed
    assert type(from_aiohttp(TimeoutError(), **w)) is E.ReadTimeout
    assert type(from_aiohttp(aiohttp.ServerDisconnectedError(), **w)) is E.ConnectFailed
    assert type(from_aiohttp(aiohttp.ClientPayloadError("cut"), **w)) is E.StreamCut
    timeout = from_aiohttp(TimeoutError(), **w)
    assert isinstance(timeout, E.AttemptTimeout) and timeout.kind is E.ErrorKind.TIMEOUT
    assert "GET /v1/batches/b1" in str(timeout) and timeout.provider == "p"
    assert type(from_aiohttp(ValueError("odd"), **w)) is E.MalformedResponse
