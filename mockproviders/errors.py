"""Each provider's error bodies, status codes and headers, as builders anyone can reuse.

``error_response(provider, status, kind, message)`` gives the exact shape a provider sends:

- OpenAI: ``{"error": {"message", "type", "param", "code"}}`` and an ``x-request-id`` header;
- Anthropic: ``{"type": "error", "error": {"type", "message"}, "request_id"}`` and ``request-id``;
- Mistral: ``{"object": "error", "message", "type", "param", "code"}``, or for 422 the
  validation shape ``{"detail": [{"type", "loc", "msg", "input"}]}``; header ``x-request-id``.

``kind`` is the provider's own error type (OpenAI ``insufficient_quota``, Anthropic
``overloaded_error``…); when omitted it follows from the status. The chaos layer uses these to
inject faults that the SDKs cannot tell from the real thing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from mockproviders.tokens import stable_hash
from mockproviders.types import MockResponse, Provider, StreamEvent

FieldProblem = Literal["missing", "type", "value", "json", "extra"]


class _Unset:
    """Marks ``code`` as not given (None is a real value: a JSON null)."""


_UNSET = _Unset()


class FieldError(Exception):
    """A request body field that fails validation; ``loc`` is its path from the body root."""

    def __init__(
        self, loc: Sequence[str | int], message: str, problem: FieldProblem = "value", value: Any = None
    ):
        super().__init__(message)
        self.loc = tuple(loc)
        self.message = message
        self.problem = problem
        self.value = value


# status -> (type, code, message) per provider, used when the caller gives no kind/message.
_OPENAI: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Permission denied."),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model does not exist or you do not have access to it.",
    ),
    408: ("server_error", None, "Request timed out."),
    409: ("invalid_request_error", None, "Conflict."),
    413: ("invalid_request_error", None, "Request too large."),
    422: ("invalid_request_error", None, "Unprocessable entity."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}
_OPENAI_KIND_CODE = {"insufficient_quota": "insufficient_quota", "tokens": "rate_limit_exceeded"}

_ANTHROPIC: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low."),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "Not found."),
    408: ("timeout_error", "Request timed out."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of requests has exceeded your rate limit."),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Gateway timeout"),
    529: ("overloaded_error", "Overloaded"),
}

_MISTRAL: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request"),
    401: ("authentication_error", None, "Unauthorized"),
    403: ("permission_error", None, "Forbidden"),
    404: ("invalid_request_error", None, "Not found"),
    429: ("rate_limited", "1300", "Requests rate limit exceeded"),
    500: ("internal_server_error", None, "Internal server error"),
    502: ("internal_server_error", None, "Bad gateway"),
    503: ("internal_server_error", None, "Service unavailable"),
    504: ("internal_server_error", None, "Gateway timeout"),
}


def request_id(provider: Provider, seed: int, index: int) -> str:
    """A request id in the provider's style, deterministic for (seed, arrival index)."""
    h = f"{stable_hash('rid', seed, index):016x}"
    if provider == "anthropic":
        return f"req_011C{h}{h[:8]}"
    if provider == "openai":
        return f"req_{h}{h[::-1]}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[:4]}-{h[4:16]}"


def request_id_headers(provider: Provider, rid: str) -> dict[str, str]:
    """The headers that carry a request id for ``provider``."""
    if provider == "anthropic":
        return {"request-id": rid}
    if provider == "mistral":
        return {"x-request-id": rid, "mistral-correlation-id": rid}
    return {"x-request-id": rid}


def error_payload(
    provider: Provider,
    status: int,
    kind: str | None = None,
    message: str | None = None,
    *,
    param: str | None = None,
    code: str | _Unset | None = _UNSET,
    request_id: str | None = None,
) -> dict[str, Any]:
    """The JSON error body ``provider`` sends for ``status`` (see the module docstring)."""
    if provider == "anthropic":
        a_kind, a_msg = _ANTHROPIC.get(
            status, ("api_error" if status >= 500 else "invalid_request_error", "Error")
        )
        body: dict[str, Any] = {
            "type": "error",
            "error": {"type": kind or a_kind, "message": message or a_msg},
        }
        body["request_id"] = request_id
        return body
    if provider == "mistral":
        if status == 422 and kind in (None, "validation"):
            return {"detail": [{"type": "value_error", "loc": ["body"], "msg": message or "Invalid body"}]}
        m_kind, m_code, m_msg = _MISTRAL.get(
            status, ("internal_server_error" if status >= 500 else "invalid_request_error", None, "Error")
        )
        return {
            "object": "error",
            "message": message or m_msg,
            "type": kind or m_kind,
            "param": param,
            "code": m_code if isinstance(code, _Unset) else code,
        }
    o_kind, o_code, o_msg = _OPENAI.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None, "Error")
    )
    if kind is not None:
        o_code = _OPENAI_KIND_CODE.get(kind, o_code)
    if kind == "insufficient_quota" and message is None:
        o_msg = "You exceeded your current quota, please check your plan and billing details."
    if not isinstance(code, _Unset):
        o_code = code
    return {"error": {"message": message or o_msg, "type": kind or o_kind, "param": param, "code": o_code}}


def error_response(
    provider: Provider,
    status: int,
    kind: str | None = None,
    message: str | None = None,
    *,
    param: str | None = None,
    code: str | _Unset | None = _UNSET,
    request_id: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> MockResponse:
    """A complete error response: the provider's body, its request-id header and ``headers``.

    Without ``request_id`` a fixed placeholder id is used; the core replaces it with the
    request's own id when the response passes back through it.
    """
    rid = request_id or "req_mock"
    payload = error_payload(provider, status, kind, message, param=param, code=code, request_id=rid)
    hdrs = {**request_id_headers(provider, rid), **(headers or {})}
    if provider == "openai" and status == 429 and "retry-after" not in hdrs:
        hdrs["retry-after"] = "1"
    return MockResponse.json_body(status, payload, hdrs)


def stream_error_event(
    provider: Provider, kind: str | None = None, message: str | None = None
) -> StreamEvent:
    """An in-band error event sent after a 200 (OpenAI ``data: {"error"}``, Anthropic ``event: error``)."""
    if provider == "anthropic":
        payload = error_payload("anthropic", 529, kind or "overloaded_error", message)
        payload.pop("request_id", None)
        return StreamEvent.json_event("error", payload, event="error")
    body = error_payload(
        provider, 500, kind, message or "The server had an error while processing your request."
    )
    return StreamEvent.json_event("error", body if "error" in body else {"error": body})


def field_error_response(
    provider: Provider, err: FieldError, rid: str, headers: Mapping[str, str]
) -> MockResponse:
    """Turn a :class:`FieldError` into ``provider``'s validation error (400, or Mistral's 422)."""
    if provider == "mistral":
        item: dict[str, Any] = {
            "type": {
                "missing": "missing",
                "type": "type_error",
                "json": "json_invalid",
                "extra": "extra_forbidden",
            }.get(err.problem, "value_error"),
            "loc": ["body", *err.loc],
            "msg": err.message,
        }
        if err.value is not None:
            item["input"] = err.value
        return MockResponse.json_body(
            422, {"detail": [item]}, {**request_id_headers("mistral", rid), **headers}
        )
    if provider == "anthropic":
        where = ".".join(str(p) for p in err.loc)
        text = f"{where}: {err.message}" if where else err.message
        return error_response(
            "anthropic", 400, "invalid_request_error", text, request_id=rid, headers=headers
        )
    param = "".join(f"[{p}]" if isinstance(p, int) else (f".{p}" if i else p) for i, p in enumerate(err.loc))
    code: str | None = {"missing": "missing_required_parameter", "type": "invalid_type", "json": None}.get(
        err.problem, "invalid_value"
    )
    if err.problem == "missing":
        text = f"Missing required parameter: '{param}'."
    elif err.problem == "json":
        text = (
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using "
            "your HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not "
            "valid JSON.)"
        )
    elif err.problem == "type":
        text = f"Invalid type for '{param}': {err.message}"
    else:
        text = f"Invalid value for '{param}': {err.message}"
    return error_response(
        "openai",
        400,
        "invalid_request_error",
        text,
        param=param or None,
        code=code,
        request_id=rid,
        headers=headers,
    )
