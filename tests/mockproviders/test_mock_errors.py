"""Every error shape the mock sends raises the SDK's right exception, through every front end."""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest
from mistralai.client import errors as mistral_errors
from mock_sdk_client import SDK

from mockproviders.config import MockConfig, RateLimit
from mockproviders.errors import error_response
from mockproviders.types import AbortConnection, Handler, MockRequest, MockResponse

HI = [{"role": "user", "content": "Hello there"}]
SONNET = "claude-sonnet-4-6"


class Answer:
    """An interceptor that answers every request with one fixed response."""

    def __init__(self, response: MockResponse) -> None:
        self.response = response

    async def __call__(self, request: MockRequest, call_next: Handler) -> MockResponse:
        return self.response


class Abort:
    def __init__(self, mode: str, *, mid_stream: bool = False) -> None:
        self.mode = mode
        self.mid_stream = mid_stream

    async def __call__(self, request: MockRequest, call_next: Handler) -> MockResponse:
        if not self.mid_stream:
            raise AbortConnection(self.mode)  # type: ignore[arg-type]
        response = await call_next(request)
        inner = response.stream
        assert inner is not None

        async def cut():  # type: ignore[no-untyped-def]
            async for event in inner:
                yield event
                if event.kind == "content":
                    raise AbortConnection(self.mode)  # type: ignore[arg-type]

        response.stream = cut()
        return response


async def test_unknown_model_is_404_everywhere(sdk: SDK) -> None:
    with pytest.raises(openai.NotFoundError) as oe:
        await sdk.openai.chat.completions.create(model="gpt-nope", messages=HI)
    assert oe.value.code == "model_not_found"
    with pytest.raises(anthropic.NotFoundError) as ae:
        await sdk.anthropic.messages.create(model="claude-nope", max_tokens=5, messages=HI)
    assert ae.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert ae.value.request_id == ae.value.response.headers["request-id"]
    with pytest.raises(mistral_errors.SDKError) as me:
        await sdk.mistral.chat.complete_async(model="nope", messages=HI)  # type: ignore[arg-type]
    assert me.value.status_code == 404 and '"object":"error"' in me.value.body


async def test_wrong_key_is_401(sdk: SDK, mock_core) -> None:  # type: ignore[no-untyped-def]
    mock_core.configure(
        MockConfig(api_keys={"openai": ("good",), "anthropic": ("good",), "mistral": ("good",)})
    )
    oa, an, mi = sdk.clients("bad")
    with pytest.raises(openai.AuthenticationError) as oe:
        await oa.chat.completions.create(model="gpt-4o", messages=HI)
    assert oe.value.code == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError):
        await an.messages.create(model=SONNET, max_tokens=5, messages=HI)
    with pytest.raises(mistral_errors.SDKError) as me:
        await mi.chat.complete_async(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    assert me.value.status_code == 401
    oa, _, _ = sdk.clients("good")
    assert (await oa.chat.completions.create(model="gpt-4o", messages=HI)).choices


async def test_missing_auth_and_version_headers(sdk: SDK) -> None:
    url = sdk.base_urls
    r = await sdk.http.post(url["openai"] + "/chat/completions", json={"model": "gpt-4o", "messages": HI})
    assert r.status_code == 401 and r.json()["error"]["code"] is None and "x-request-id" in r.headers
    body = {"model": SONNET, "max_tokens": 5, "messages": HI}
    r = await sdk.http.post(
        url["anthropic"] + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
    )
    assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
    r = await sdk.http.post(url["anthropic"] + "/v1/messages", json=body, headers={"x-api-key": "k"})
    assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]
    assert r.json()["request_id"] == r.headers["request-id"]
    r = await sdk.http.post(url["mistral"] + "/v1/chat/completions", json={})
    assert r.status_code == 401 and r.json()["object"] == "error"


async def test_malformed_bodies_name_the_field(sdk: SDK) -> None:
    with pytest.raises(openai.BadRequestError) as oe:
        await sdk.openai.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": 5}])  # type: ignore[list-item]
    assert oe.value.param == "messages[0].content" and oe.value.code == "invalid_type"
    with pytest.raises(openai.BadRequestError) as oe:
        await sdk.openai.chat.completions.create(
            model="gpt-4o", messages=HI, stream_options={"include_usage": True}
        )
    assert oe.value.param == "stream_options"
    with pytest.raises(anthropic.BadRequestError) as ae:
        await sdk.anthropic.messages.create(model=SONNET, max_tokens=0, messages=HI)
    assert "max_tokens" in ae.value.message
    with pytest.raises(anthropic.BadRequestError) as ae:
        await sdk.anthropic.messages.create(
            model=SONNET, max_tokens=5, messages=HI, extra_body={"max_tokens": None}
        )
    assert "max_tokens: Field required" in ae.value.message or "max_tokens" in ae.value.message
    with pytest.raises(mistral_errors.HTTPValidationError) as me:
        await sdk.mistral.chat.complete_async(model="mistral-small-latest", messages=HI, temperature=9)  # type: ignore[arg-type]
    assert me.value.data.detail and me.value.data.detail[0].loc == ["body", "temperature"]
    r = await sdk.http.post(
        sdk.base_urls["openai"] + "/chat/completions",
        content=b"{not json",
        headers={"authorization": "Bearer k"},
    )
    assert r.status_code == 400 and "parse the JSON" in r.json()["error"]["message"]


async def test_unknown_path_is_404_in_provider_shape(sdk: SDK) -> None:
    r = await sdk.http.post(
        sdk.base_urls["openai"] + "/nothing", json={}, headers={"authorization": "Bearer k"}
    )
    assert r.status_code == 404 and r.json()["error"]["message"] == "Invalid URL (POST /v1/nothing)"
    r = await sdk.http.get(sdk.base_urls["anthropic"] + "/v1/nothing")
    assert r.status_code == 404 and r.json()["type"] == "error"
    assert sdk.core.journal.entries[-1].endpoint == "other"


async def test_rate_limit_counts_down_per_key_then_429(sdk: SDK, mock_core, mock_clock) -> None:  # type: ignore[no-untyped-def]
    mock_core.configure(
        MockConfig(
            rate_limits={p: RateLimit(requests=2, window=60) for p in ("openai", "anthropic", "mistral")}
        )
    )  # type: ignore[misc]
    oa, an, mi = sdk.clients("k1")
    first = await oa.chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)
    second = await oa.chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert second.headers["x-ratelimit-remaining-requests"] == "0"
    assert int(first.headers["x-ratelimit-remaining-tokens"]) > int(
        second.headers["x-ratelimit-remaining-tokens"]
    )
    with pytest.raises(openai.RateLimitError) as oe:
        await oa.chat.completions.create(model="gpt-4o", messages=HI)
    assert oe.value.response.headers["retry-after"] == "60"
    other, _, _ = sdk.clients("k2")
    assert (await other.chat.completions.create(model="gpt-4o", messages=HI)).choices
    mock_clock.advance(61)
    again = await oa.chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)
    assert again.headers["x-ratelimit-remaining-requests"] == "1"
    for _ in range(2):
        await an.messages.create(model=SONNET, max_tokens=5, messages=HI)
    with pytest.raises(anthropic.RateLimitError) as ae:
        await an.messages.create(model=SONNET, max_tokens=5, messages=HI)
    assert ae.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"
    for _ in range(2):
        await mi.chat.complete_async(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    with pytest.raises(mistral_errors.SDKError) as me:
        await mi.chat.complete_async(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    assert me.value.status_code == 429


@pytest.mark.parametrize(
    ("status", "kind", "exc"),
    [
        (429, "insufficient_quota", openai.RateLimitError),
        (500, None, openai.InternalServerError),
        (503, None, openai.InternalServerError),
        (403, None, openai.PermissionDeniedError),
    ],
)
async def test_injected_openai_errors(sdk: SDK, status: int, kind: str | None, exc: type[Exception]) -> None:
    sdk.core.add_interceptor(Answer(error_response("openai", status, kind)))
    with pytest.raises(exc) as err:
        await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI)
    assert err.value.response.headers["x-request-id"].startswith("req_")  # type: ignore[attr-defined]
    assert sdk.core.journal.entries[-1].status == status


@pytest.mark.parametrize(
    ("status", "exc"),
    [(529, anthropic.OverloadedError), (500, anthropic.InternalServerError), (413, anthropic.APIStatusError)],
)
async def test_injected_anthropic_errors(sdk: SDK, status: int, exc: type[Exception]) -> None:
    sdk.core.add_interceptor(Answer(error_response("anthropic", status)))
    with pytest.raises(exc) as err:
        await sdk.anthropic.messages.create(model=SONNET, max_tokens=5, messages=HI)
    rid = err.value.response.headers["request-id"]  # type: ignore[attr-defined]
    assert err.value.body["request_id"] == rid  # type: ignore[attr-defined]
    assert sdk.core.journal.entries[-1].request_id == rid


@pytest.mark.parametrize("mode", ["reset", "close"])
async def test_abort_before_answer_is_a_connection_error(sdk: SDK, mode: str) -> None:
    sdk.core.add_interceptor(Abort(mode))
    with pytest.raises(openai.APIConnectionError):
        await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI)
    assert sdk.core.journal.entries[-1].aborted == mode
    assert sdk.core.journal.entries[-1].status == 0


async def test_abort_mid_stream_breaks_the_iteration(sdk: SDK) -> None:
    sdk.core.add_interceptor(Abort("close", mid_stream=True))
    stream = await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
    got = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            got.append(chunk)
    assert got  # the role chunk and the first token came through
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        async with sdk.anthropic.messages.stream(model=SONNET, max_tokens=50, messages=HI) as s:
            async for _ in s.text_stream:
                pass


async def test_hold_until_the_client_gives_up(sdk: SDK) -> None:
    if sdk.mode == "server":
        pytest.skip("on a socket the hold lasts until the client's real timeout; see test_mock_server.py")

    class Hold:
        async def __call__(self, request: MockRequest, call_next: Handler) -> MockResponse:
            assert request.hold is not None
            await request.hold()
            return await call_next(request)

    sdk.core.add_interceptor(Hold())
    with pytest.raises(openai.APITimeoutError):
        await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, timeout=30)
    assert sdk.core.journal.entries[-1].aborted == "ReadTimeout"
