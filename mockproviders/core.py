"""The request-handling core shared by the aiohttp server and the in-process transport.

A front end calls :meth:`MockCore.dispatch` with the raw method, path, headers and body. The core
parses them into a :class:`~mockproviders.types.MockRequest` (provider, endpoint, model, API key,
stream) *before* the interceptors run, so a fault layer can target any of them; then it runs the
interceptor chain, whose last link is the core's own answer, and records the outcome in the
journal. Interceptors run in the order given; each gets ``call_next`` for the rest of the chain.

Order of checks in the core's own answer, as the real APIs do: unknown path (404), API key (401),
required headers (400), rate limit (429), body validation (400, Mistral 422), unknown model (404),
then the answer, shaped by the request's :class:`~mockproviders.types.AnswerPatch` if any.
Files and batch endpoints (OpenAI Batch, Anthropic Message Batches) pass the same checks up to
the rate limit, then go to :attr:`MockCore.batches` (:mod:`mockproviders.batch`).
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from typing import Any

from mockproviders import ratelimit
from mockproviders.answers import compose
from mockproviders.batch.service import BatchService
from mockproviders.clock import SystemClock
from mockproviders.config import FIXED_DIMENSIONS, Latency, MockConfig
from mockproviders.errors import (
    FieldError,
    error_response,
    field_error_response,
    request_id,
    request_id_headers,
)
from mockproviders.journal import Journal, JournalEntry
from mockproviders.prompt_cache import Prompt, PromptCache
from mockproviders.providers import PROVIDERS
from mockproviders.providers._base import ProviderAPI, Render, Usage
from mockproviders.providers.anthropic import AnthropicAPI
from mockproviders.providers.openai import encode_base64
from mockproviders.responses import ResponsesService
from mockproviders.tokens import count_tokens, embedding_vector, stable_hash
from mockproviders.types import (
    AbortConnection,
    Clock,
    Handler,
    Interceptor,
    MockRequest,
    MockResponse,
    StreamEvent,
)
from turnout import safejson

_JSON = {"content-type": "application/json"}
_SSE = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}
_PLACEHOLDER_RID = "req_mock"


def parse_body(body: bytes) -> tuple[Any, str | None, bool]:
    """A request body's JSON (None when empty or not JSON), its ``model`` when that is a string,
    and whether it asks to stream (``"stream": true``)."""
    data: Any = None
    if body:
        try:
            data = safejson.loads(body)
        except ValueError:
            data = None
    model = data.get("model") if isinstance(data, dict) else None
    stream = isinstance(data, dict) and data.get("stream") is True
    return data, model if isinstance(model, str) else None, stream


class MockCore:
    """Answers requests for all three providers; one instance per mock server or test."""

    def __init__(
        self,
        config: MockConfig | None = None,
        *,
        seed: int | None = None,
        clock: Clock | None = None,
        interceptors: Sequence[Interceptor] = (),
    ) -> None:
        self.config = config if config is not None else MockConfig()
        self.seed = seed if seed is not None else (self.config.seed or 0)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.journal = Journal(self.config.journal_size)
        self._apply_config(self.config)
        self.prompt_cache = PromptCache()  # Anthropic's cached prompt prefixes
        self._index = 0
        self._interceptors: tuple[Interceptor, ...] = tuple(interceptors)
        self._chain: Handler = self._build_chain()
        self.batches = BatchService(self)  # files and batches, with their life cycles on self.clock
        self.responses = ResponsesService(self)  # OpenAI's Responses API and its stored responses

    # -- interceptors ---------------------------------------------------------------------------

    @property
    def interceptors(self) -> tuple[Interceptor, ...]:
        return self._interceptors

    @interceptors.setter
    def interceptors(self, value: Sequence[Interceptor]) -> None:
        self._interceptors = tuple(value)
        self._chain = self._build_chain()

    def add_interceptor(self, interceptor: Interceptor) -> None:
        """Append ``interceptor`` to the chain (it runs after those already installed)."""
        self.interceptors = (*self._interceptors, interceptor)

    def remove_interceptor(self, interceptor: Interceptor) -> None:
        self.interceptors = tuple(i for i in self._interceptors if i is not interceptor)

    def _build_chain(self) -> Handler:
        handler: Handler = self._answer
        for interceptor in reversed(self._interceptors):
            handler = _link(interceptor, handler)
        return handler

    # -- state ----------------------------------------------------------------------------------

    def configure(self, config: MockConfig) -> None:
        """Replace the configuration at run time (rules, models, keys, limits, latency, and the
        seed if the new one sets it); the journal and arrival count are kept."""
        self.config = config
        if config.seed is not None:
            self.seed = config.seed
        self._apply_config(config)

    def _apply_config(self, config: MockConfig) -> None:
        self.limiter = ratelimit.RateLimiter({str(k): v for k, v in config.rate_limits.items()})
        self._models = {p: config.known_models(p) for p in PROVIDERS}
        self._model_order = {p: sorted(m) for p, m in self._models.items()}

    def reset(self) -> None:
        """Forget the journal, arrival count, rate-limit windows, prompt cache, files, batches and
        stored responses."""
        self.journal.clear()
        self._index = 0
        self.limiter.reset()
        self.prompt_cache.clear()
        self.batches.reset()
        self.responses.reset()

    # -- entry points ---------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        hold: Callable[[], Awaitable[None]] | None = None,
    ) -> MockRequest | None:
        """Parse a raw request whose path starts with ``/openai``, ``/anthropic`` or ``/mistral``.

        ``headers`` must be looked up case-insensitively or have lower-case names. Returns None
        for a path outside the three providers. A query string (``?...``) is kept apart.
        """
        path, _, query = path.partition("?")
        _, prefix, rel = path.split("/", 2) if path.count("/") >= 2 else ("", path.strip("/"), "")
        api = PROVIDERS.get(prefix)
        if api is None:
            return None
        rel = "/" + rel
        data, model, stream = parse_body(body)
        index = self._index
        self._index += 1
        return MockRequest(
            provider=api.name,
            endpoint=api.endpoint(method, rel),
            method=method,
            path=rel,
            headers=headers,
            body=body,
            index=index,
            received_at=self.clock.now(),
            json=data,
            model=model,
            api_key=api.api_key(headers),
            stream=stream,
            hold=hold,
            request_id=request_id(api.name, self.seed, index),
            query=query,
        )

    async def dispatch(
        self,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        hold: Callable[[], Awaitable[None]] | None = None,
    ) -> MockResponse:
        """Parse, run the interceptors and the core, and journal: what a front end calls."""
        request = self.request(method, path, headers, body, hold=hold)
        if request is None:
            return MockResponse.json_body(
                404, {"error": {"message": f"Unknown path {path}", "type": "not_found"}}
            )
        return await self.handle(request)

    async def handle(self, request: MockRequest) -> MockResponse:
        """Run the interceptor chain and the core for ``request``, and journal the outcome."""
        try:
            response = await self._chain(request)
        except AbortConnection as exc:
            self._record(request, 0, None, aborted=exc.mode)
            raise
        except Exception as exc:  # e.g. a held request's ReadTimeout: journal it, then let it go on
            self._record(request, 0, None, aborted=type(exc).__name__)
            raise
        self._finish_headers(request, response)
        self._record(request, response.status, response)
        return response

    # -- the core's own answer ------------------------------------------------------------------

    async def _answer(self, req: MockRequest) -> MockResponse:
        api = PROVIDERS[req.provider]
        rid = req.request_id
        if req.endpoint == "other":
            return api.not_found(req.method, req.path, rid)
        key = req.api_key
        allowed = self.config.api_keys.get(req.provider)
        if key is None or (allowed and key not in allowed):
            return api.auth_error(key, rid)
        bad_header = api.header_error(req.headers, rid)
        if bad_header is not None:
            return bad_header
        if req.endpoint == "count_tokens":  # Anthropic limits it apart from messages: not admitted here
            return self._count_tokens(req)
        now = self.clock.now()
        window, admitted = self.limiter.admit(req.provider, key, now)
        limits = ratelimit.headers(req.provider, window, now)
        if not admitted:
            return error_response(
                req.provider,
                429,
                request_id=rid,
                headers={**limits, **ratelimit.retry_after(req.provider, window, now)},
            )
        if req.endpoint in ("files", "batches"):
            response = await self.batches.handle(req)
            response.headers.update(limits)
            return response
        try:
            if req.endpoint == "models":
                response = self._models_response(api, req)
            elif req.endpoint == "responses":
                response = await self.responses.handle(req, window)
            else:
                if req.json is None:
                    raise FieldError((), "the request body is not valid JSON", "json", None)
                if req.endpoint == "embeddings":
                    response = self._embeddings(api, req, window)
                else:
                    response = await self._chat(api, req, window)
        except FieldError as err:
            response = field_error_response(req.provider, err, rid, {})
        response.headers.update(limits)
        return response

    def _count_tokens(self, req: MockRequest) -> MockResponse:
        api = PROVIDERS["anthropic"]
        assert isinstance(api, AnthropicAPI)  # the only provider with the endpoint
        try:
            if req.json is None:
                raise FieldError((), "the request body is not valid JSON", "json", None)
            model, tokens = api.count_tokens(req.json)
        except FieldError as err:
            return field_error_response(req.provider, err, req.request_id, {})
        if model not in self._models[req.provider]:
            return api.unknown_model(model, req.request_id)
        return MockResponse.json_body(200, {"input_tokens": tokens})

    def _models_response(self, api: ProviderAPI, req: MockRequest) -> MockResponse:
        created = 1_700_000_000
        if req.path.rstrip("/") == "/v1/models":
            return MockResponse.json_body(200, api.render_models(self._model_order[req.provider], created))
        model = req.path[len("/v1/models/") :]
        if model not in self._models[req.provider]:
            return api.unknown_model(model, req.request_id)
        return MockResponse.json_body(200, api.render_model(model, created))

    def _embeddings(self, api: ProviderAPI, req: MockRequest, window: ratelimit.Window) -> MockResponse:
        q = api.parse_embeddings(req.json)
        if q.model not in self._models[req.provider]:
            return api.unknown_model(q.model, req.request_id)
        if not self.config.is_embedding_model(q.model):
            return api.not_embedding_model(q.model, req.request_id)
        if q.dimensions is not None and q.model in FIXED_DIMENSIONS:
            return api.fixed_dimensions(q.model, req.request_id)
        dims = q.dimensions or self.config.dimensions(q.model)
        vectors: list[list[float] | str] = []
        for text in q.inputs:
            vec = embedding_vector(stable_hash(self.seed, req.provider, q.model, text), dims)
            vectors.append(encode_base64(vec) if q.base64 else vec)
        tokens = sum(count_tokens(t) for t in q.inputs)
        window.tokens += tokens
        render = self._render(req, q.model)
        return MockResponse.json_body(200, api.render_embeddings(render, vectors, tokens))

    async def _chat(self, api: ProviderAPI, req: MockRequest, window: ratelimit.Window) -> MockResponse:
        q = api.parse_chat(req.json)
        if q.model not in self._models[req.provider]:
            return api.unknown_model(q.model, req.request_id)
        choices = compose(self.config, self.seed, req.provider, q, req.patch)
        usage = Usage(q.prompt_tokens, sum(c.completion_tokens for c in choices))
        if q.prompt is not None and q.prompt.marks:
            self._apply_cache(q.prompt, usage)
        window.tokens += usage.total_tokens
        render = self._render(req, q.model)
        if q.stream:
            return self.stream_response(api.stream_chat(render, q, choices, usage), req, q.model)
        await self.answer_delay(req, q.model, usage.completion_tokens)
        body = json.dumps(api.render_chat(render, q, choices, usage), separators=(",", ":")).encode()
        return MockResponse(200, headers=dict(_JSON), body=body)

    # -- helpers for the endpoint services (responses, batches) ----------------------------------

    def knows_model(self, provider: str, model: str) -> bool:
        return model in self._models[provider]

    def unknown_model(self, provider: str, model: str, rid: str) -> MockResponse:
        return PROVIDERS[provider].unknown_model(model, rid)

    def _latency(self, provider: str, model: str) -> Latency | None:
        latency = self.config.latency_for(provider, model) if self.config.latency else None
        if latency is not None and not (latency.ttft or latency.tokens_per_second):
            return None
        return latency

    def stream_response(self, events: Iterator[StreamEvent], req: MockRequest, model: str) -> MockResponse:
        """A 200 event stream, paced by the latency model configured for ``model``."""
        latency = self._latency(req.provider, model)
        stream = _plain(events) if latency is None else self._paced(events, latency, req.index)
        return MockResponse(200, headers=dict(_SSE), stream=stream)

    async def answer_delay(self, req: MockRequest, model: str, completion_tokens: int) -> None:
        """Wait as long as the latency model says a whole (not streamed) answer takes."""
        latency = self._latency(req.provider, model)
        if latency is not None:
            rng = random.Random(stable_hash(self.seed, "latency", req.index))
            tps = latency.tokens_per_second
            delay = latency.ttft * _jitter(rng, latency) + (completion_tokens / tps if tps else 0.0)
            await self.clock.sleep(delay * _jitter(rng, latency))

    def answer_body(self, provider: str, body: Any, *, request_id: str, created: float) -> tuple[int, Any]:
        """Answer a chat request body as a non-streamed request would be answered, but with no
        interceptor, latency or rate limit: what a batch item gets. Returns (status, JSON body),
        the answer or the provider's own error (invalid body, unknown model)."""
        api = PROVIDERS[provider]
        try:
            q = api.parse_chat(body)
            if q.stream:
                raise FieldError(("stream",), "streaming is not supported in a batch", "value", True)
        except FieldError as err:
            error = field_error_response(api.name, err, request_id, {})
            return error.status, json.loads(error.body or b"null")
        if q.model not in self._models[provider]:
            error = api.unknown_model(q.model, request_id)
            return error.status, json.loads(error.body or b"null")
        choices = compose(self.config, self.seed, provider, q, None)
        usage = Usage(q.prompt_tokens, sum(c.completion_tokens for c in choices))
        if q.prompt is not None and q.prompt.marks:
            self._apply_cache(q.prompt, usage)
        render = Render(request_id.replace("-", "")[-16:], int(created), q.model)
        return 200, api.render_chat(render, q, choices, usage)

    def _apply_cache(self, prompt: Prompt, usage: Usage) -> None:
        use = self.prompt_cache.use(prompt, self.config.cache_min_tokens(prompt.model), self.clock.now())
        usage.cache_read_tokens = use.read
        usage.cache_creation_tokens = use.written
        usage.cache_creation_1h_tokens = use.written_1h

    def _render(self, req: MockRequest, model: str) -> Render:
        # Derived from the request id rather than hashed again: the hot path hashes once per id.
        return Render(req.request_id.replace("-", "")[-16:], int(req.received_at), model)

    async def _paced(
        self, events: Iterator[StreamEvent], latency: Latency, index: int
    ) -> AsyncIterator[StreamEvent]:
        """Send ``events`` with the latency model: a pause before the first token, then per token."""
        rng = random.Random(stable_hash(self.seed, "latency", index))
        first = True
        for event in events:
            if event.kind == "content" and event.tokens:
                if first:
                    first = False
                    await self.clock.sleep(latency.ttft * _jitter(rng, latency))
                elif latency.tokens_per_second:
                    await self.clock.sleep(event.tokens / latency.tokens_per_second * _jitter(rng, latency))
            yield event

    # -- bookkeeping ----------------------------------------------------------------------------

    def _finish_headers(self, req: MockRequest, response: MockResponse) -> None:
        hdrs = response.headers
        rid_headers = request_id_headers(req.provider, req.request_id)
        for name, value in rid_headers.items():
            if hdrs.get(name, _PLACEHOLDER_RID) == _PLACEHOLDER_RID:
                hdrs[name] = value
        if response.body is not None and response.status >= 400 and b'"req_mock"' in response.body:
            response.body = response.body.replace(b'"req_mock"', json.dumps(req.request_id).encode())
        if req.provider == "openai" and "openai-processing-ms" not in hdrs:
            hdrs["openai-processing-ms"] = str(max(1, int((self.clock.now() - req.received_at) * 1000)))

    def _record(
        self, req: MockRequest, status: int, response: MockResponse | None, aborted: str | None = None
    ) -> None:
        retry = req.headers.get("x-stainless-retry-count")
        error_type = None
        if response is not None and status >= 400 and response.body:
            error_type = _error_type(response.body)
        self.journal.append(
            JournalEntry(
                index=req.index,
                time=req.received_at,
                provider=req.provider,
                endpoint=req.endpoint,
                method=req.method,
                path=req.path,
                model=req.model,
                status=status,
                stream=req.stream,
                retry_count=int(retry) if retry is not None and retry.isdigit() else None,
                request_id=req.request_id,
                api_key=req.api_key,
                error_type=error_type,
                aborted=aborted,
                annotations=dict(req.annotations),
            )
        )


def _link(interceptor: Interceptor, call_next: Handler) -> Handler:
    async def handler(request: MockRequest) -> MockResponse:
        return await interceptor(request, call_next)

    return handler


async def _plain(events: Iterator[StreamEvent]) -> AsyncIterator[StreamEvent]:
    for event in events:
        yield event


def _jitter(rng: random.Random, latency: Latency) -> float:
    return 1.0 + latency.jitter * rng.uniform(-1.0, 1.0) if latency.jitter else 1.0


def _error_type(body: bytes) -> str | None:
    try:
        data = safejson.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    err = data.get("error")
    if isinstance(err, dict) and isinstance(err.get("type"), str):
        return str(err["type"])
    if "detail" in data:
        return "validation_error"
    kind = data.get("type")
    return kind if isinstance(kind, str) else None
