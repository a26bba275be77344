"""The HTTP side of a batch: submit, poll, cancel and download, one class per provider.

Each call is one HTTP request on the run's ``aiohttp`` session with the deployment's URL and
headers; failures leave as :mod:`router.errors` classes, classified by the same table as the
adapters' (so a 429 or a 503 on a poll is retryable, a 401 is not).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from router.adapters import PROVIDERS, Deployment, provider_for
from router.batch import wire
from router.batch._aiohttp_errors import CAUGHT, from_aiohttp
from router.batch.types import BatchError, BatchItem
from router.classify import classify_response, malformed

__all__ = ["AnthropicBatches", "BatchAPI", "BatchState", "OpenAIBatches", "batch_api", "batch_class"]


@dataclass(slots=True)
class BatchState:
    """A batch as last seen: its id, the provider's status, and the raw object."""

    id: str
    status: str
    terminal: bool
    raw: dict[str, Any] = field(default_factory=dict)


class BatchAPI(Protocol):
    """One provider's batch endpoints."""

    async def submit(self, items: Sequence[BatchItem]) -> BatchState: ...

    async def retrieve(self, batch_id: str) -> BatchState: ...

    async def cancel(self, batch_id: str) -> BatchState: ...

    async def results(
        self, state: BatchState, known: Mapping[str, BatchItem]
    ) -> tuple[dict[str, wire.ItemOutcome], list[str]]:
        """The items' outcomes, and the batch-level errors (why a whole batch failed)."""
        ...


class _Http:
    def __init__(self, session: aiohttp.ClientSession, deployment: Deployment, timeout: float) -> None:
        self.session = session
        self.dep = deployment
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.where: dict[str, Any] = {"provider": deployment.provider, "model": deployment.name}

    async def call(self, method: str, url: str, *, json_body: Any = None, form: Any = None) -> bytes:
        headers = dict(self.dep.headers)
        kwargs: dict[str, Any] = {"timeout": self.timeout}
        if form is not None:
            headers.pop("content-type", None)  # aiohttp writes the multipart boundary
            kwargs["data"] = form
        elif json_body is not None:
            kwargs["data"] = json.dumps(json_body, separators=(",", ":")).encode()
        try:
            async with self.session.request(method, url, headers=headers, **kwargs) as resp:
                body = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except CAUGHT as exc:
            raise from_aiohttp(exc, **self.where, during=f"{method} {url}") from exc
        if status >= 400:
            raise classify_response(self.dep.kind, status, body, resp_headers, **self.where)
        return body

    async def json(self, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
        body = await self.call(method, url, **kwargs)
        try:
            data = json.loads(body)
        except ValueError:
            raise malformed(f"{method} {url}: answer is not JSON", **self.where, raw=body) from None
        if not isinstance(data, dict):
            raise malformed(f"{method} {url}: answer is not a JSON object", **self.where, raw=body)
        return data

    def state(self, data: dict[str, Any], status_key: str, terminal: frozenset[str]) -> BatchState:
        batch_id, status = data.get("id"), data.get(status_key)
        if not isinstance(batch_id, str) or not isinstance(status, str):
            raise malformed(f"batch object without id or {status_key}", **self.where, raw=json.dumps(data))
        return BatchState(batch_id, status, status in terminal, data)


class OpenAIBatches:
    """OpenAI: upload a JSONL file, create a batch on it, read the output and error files."""

    TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
    CUSTOM_ID: re.Pattern[str] | None = None  # any string

    def __init__(self, session: aiohttp.ClientSession, deployment: Deployment, timeout: float) -> None:
        self.http = _Http(session, deployment, timeout)
        self.base = deployment.base_url

    async def submit(self, items: Sequence[BatchItem]) -> BatchState:
        form = aiohttp.FormData()
        form.add_field("purpose", "batch")
        data = wire.openai_input_file(items, self.http.dep)
        form.add_field("file", data, filename="turnout-batch.jsonl", content_type="application/jsonl")
        file = await self.http.json("POST", f"{self.base}/files", form=form)
        if not isinstance(file.get("id"), str):
            raise BatchError("the file upload answered without an id", **self.http.where)
        body = {"input_file_id": file["id"], "endpoint": wire.CHAT_ENDPOINT, "completion_window": "24h"}
        return self._state(await self.http.json("POST", f"{self.base}/batches", json_body=body))

    async def retrieve(self, batch_id: str) -> BatchState:
        return self._state(await self.http.json("GET", f"{self.base}/batches/{batch_id}"))

    async def cancel(self, batch_id: str) -> BatchState:
        return self._state(await self.http.json("POST", f"{self.base}/batches/{batch_id}/cancel"))

    def _state(self, data: dict[str, Any]) -> BatchState:
        return self.http.state(data, "status", self.TERMINAL)

    async def results(
        self, state: BatchState, known: Mapping[str, BatchItem]
    ) -> tuple[dict[str, wire.ItemOutcome], list[str]]:
        out: dict[str, wire.ItemOutcome] = {}
        for key in ("output_file_id", "error_file_id"):
            file_id = state.raw.get(key)
            if not isinstance(file_id, str) or not file_id:
                continue
            raw = await self.http.call("GET", f"{self.base}/files/{file_id}/content")
            text = raw.decode("utf-8", "replace")
            label = f"{key.removesuffix('_id').replace('_', ' ')} {file_id}"
            for cid, outcome in wire.parse_openai_results(text, label, known, self.http.dep).items():
                if cid in out:
                    raise BatchError(f"{label}: custom_id {cid!r} is also in the other result file")
                out[cid] = outcome
        errors = []
        data = (state.raw.get("errors") or {}).get("data") or []
        for e in data if isinstance(data, list) else []:
            if isinstance(e, dict):
                errors.append(f"line {e.get('line')}: {e.get('code')}: {e.get('message')}")
        return out, errors


class AnthropicBatches:
    """Anthropic: create a message batch with the requests inline, read its results JSONL."""

    TERMINAL = frozenset({"ended"})
    CUSTOM_ID: re.Pattern[str] | None = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")

    def __init__(self, session: aiohttp.ClientSession, deployment: Deployment, timeout: float) -> None:
        self.http = _Http(session, deployment, timeout)
        self.url = f"{deployment.base_url}/v1/messages/batches"

    async def submit(self, items: Sequence[BatchItem]) -> BatchState:
        body = wire.anthropic_requests(items, self.http.dep)
        return self._state(await self.http.json("POST", self.url, json_body=body))

    async def retrieve(self, batch_id: str) -> BatchState:
        return self._state(await self.http.json("GET", f"{self.url}/{batch_id}"))

    async def cancel(self, batch_id: str) -> BatchState:
        return self._state(await self.http.json("POST", f"{self.url}/{batch_id}/cancel"))

    def _state(self, data: dict[str, Any]) -> BatchState:
        return self.http.state(data, "processing_status", self.TERMINAL)

    async def results(
        self, state: BatchState, known: Mapping[str, BatchItem]
    ) -> tuple[dict[str, wire.ItemOutcome], list[str]]:
        url = state.raw.get("results_url")
        if not isinstance(url, str) or not url:
            raise BatchError(f"batch {state.id} ended without a results_url", **self.http.where)
        if not url.startswith(("http://", "https://")):  # the API sends it absolute; be lenient
            url = f"{self.http.dep.base_url}/{url.lstrip('/')}"
        text = (await self.http.call("GET", url)).decode("utf-8", "replace")
        return wire.parse_anthropic_results(text, f"results of {state.id}", known, self.http.dep), []


# The batch APIs this package speaks, by the name a Provider's ``batch`` fact gives.
_PROTOCOLS: dict[str, type[OpenAIBatches] | type[AnthropicBatches]] = {
    "openai": OpenAIBatches,
    "anthropic": AnthropicBatches,
}


def batch_class(deployment: Deployment) -> type[OpenAIBatches] | type[AnthropicBatches]:
    """The batch API class of ``deployment``'s provider kind; ``ValueError`` when it has none."""
    protocol = provider_for(deployment.kind).batch
    if protocol is None:
        kinds = ", ".join(k for k, p in PROVIDERS.items() if p.batch is not None)
        raise ValueError(
            f"deployment {deployment.name!r} is of kind {deployment.kind!r}; "
            f"batches are supported on kinds {kinds}"
        )
    return _PROTOCOLS[protocol]


def batch_api(session: aiohttp.ClientSession, deployment: Deployment, *, timeout: float = 60.0) -> BatchAPI:
    """The batch API for ``deployment``'s provider kind (:attr:`~router.adapters.Provider.batch`)."""
    return batch_class(deployment)(session, deployment, timeout)
