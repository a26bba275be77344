"""OpenAI's Responses API on the mock: create (streamed or not), retrieve, delete, and the
stored responses that ``previous_response_id`` continues.

The core sends every ``/v1/responses`` request here after the checks all requests get (API key,
rate limit), so responses are journaled and faulted like chat: status faults answer before this
runs, completion faults reach the answer through ``request.patch``, and stream faults act on the
tagged events of :func:`~mockproviders.providers.openai_responses.stream_events`.

A stored response keeps its rendered body (for ``GET``) and its conversation (for a later
``previous_response_id``). ``store: false`` keeps neither, as the real API does. At most
:data:`MAX_STORED` responses are kept; the oldest go first.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mockproviders.answers import compose
from mockproviders.errors import FieldError, error_response
from mockproviders.providers._base import Usage
from mockproviders.providers.openai_responses import (
    conversation_after,
    parse_request,
    render_response,
    stream_events,
)
from mockproviders.types import MockRequest, MockResponse

if TYPE_CHECKING:
    from mockproviders.core import MockCore
    from mockproviders.ratelimit import Window

MAX_STORED = 10_000
_JSON = {"content-type": "application/json"}


@dataclass(slots=True)
class Stored:
    body: dict[str, Any]
    conversation: list[tuple[str, str]]


class ResponsesService:
    """The stored responses of one core; reset with the core."""

    def __init__(self, core: MockCore) -> None:
        self.core = core
        self.stored: OrderedDict[str, Stored] = OrderedDict()

    def reset(self) -> None:
        self.stored.clear()

    async def handle(self, req: MockRequest, window: Window) -> MockResponse:
        """Answer ``POST /v1/responses``, ``GET`` or ``DELETE /v1/responses/{id}``."""
        path = req.path.rstrip("/")
        if path == "/v1/responses" and req.method == "POST":
            return await self._create(req, window)
        rid = path[len("/v1/responses/") :] if path.startswith("/v1/responses/") else ""
        if rid and "/" not in rid and req.method in ("GET", "DELETE"):
            found = self.stored.get(rid)
            if found is None:
                return _not_found(rid, req.request_id)
            if req.method == "DELETE":
                del self.stored[rid]
                return MockResponse.json_body(200, {"id": rid, "object": "response.deleted", "deleted": True})
            return MockResponse.json_body(200, found.body)
        return error_response(
            "openai",
            404,
            "invalid_request_error",
            f"Invalid URL ({req.method} {req.path})",
            code=None,
            request_id=req.request_id,
        )

    async def _create(self, req: MockRequest, window: Window) -> MockResponse:
        if req.json is None:
            raise FieldError((), "the request body is not valid JSON", "json", None)
        history: list[tuple[str, str]] = []
        previous = req.json.get("previous_response_id") if isinstance(req.json, dict) else None
        if isinstance(previous, str):
            found = self.stored.get(previous)
            if found is None:
                return error_response(
                    "openai",
                    400,
                    "invalid_request_error",
                    f"Previous response with id '{previous}' not found.",
                    param="previous_response_id",
                    code="previous_response_not_found",
                    request_id=req.request_id,
                )
            history = found.conversation
        parsed = parse_request(req.json, history)
        q = parsed.query
        if not self.core.knows_model("openai", q.model):
            return self.core.unknown_model("openai", q.model, req.request_id)
        choice = compose(self.core.config, self.core.seed, "openai", q, req.patch)[0]
        usage = Usage(q.prompt_tokens, choice.completion_tokens)
        window.tokens += usage.total_tokens
        response_id = req.request_id.replace("-", "")[-24:]
        created = int(req.received_at)
        body = render_response(response_id, created, parsed, choice, usage)
        if parsed.store:
            self.stored[body["id"]] = Stored(body, conversation_after(parsed, choice))
            while len(self.stored) > MAX_STORED:
                self.stored.popitem(last=False)
        if q.stream:
            events = stream_events(response_id, created, parsed, choice, usage)
            return self.core.stream_response(events, req, q.model)
        await self.core.answer_delay(req, q.model, usage.completion_tokens)
        return MockResponse(200, headers=dict(_JSON), body=json.dumps(body, separators=(",", ":")).encode())


def _not_found(rid: str, request_id: str) -> MockResponse:
    return error_response(
        "openai",
        404,
        "invalid_request_error",
        f"Response with id '{rid}' not found.",
        code=None,
        request_id=request_id,
    )
