"""Anthropic's Message Batches API, as the mock serves it.

``POST /v1/messages/batches {requests: [{custom_id, params}]}``, ``GET /v1/messages/batches``,
``GET|DELETE /v1/messages/batches/{id}``, ``POST …/{id}/cancel``, ``GET …/{id}/results`` (JSONL).
The shape of ``requests`` is checked at once (400 in Anthropic's shape); each item's ``params``
are checked when the item is processed, as the real API does, and a bad one ends ``errored``.
``request_counts`` other than ``processing`` stay zero until the batch has ended.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mockproviders.batch.lifecycle import Batch, Item
from mockproviders.batch.openai import query_params
from mockproviders.errors import FieldError, error_response, field_error_response
from mockproviders.types import MockRequest, MockResponse

if TYPE_CHECKING:
    from mockproviders.batch.service import BatchService

MAX_REQUESTS = 100_000
_BATCH = re.compile(r"^/v1/messages/batches/([^/]+)(/cancel|/results)?$")
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_REAL_HOSTS = ("api.anthropic.com",)


def handle(svc: BatchService, req: MockRequest) -> MockResponse:
    path, method = req.path, req.method
    rid = req.request_id
    try:
        if path == "/v1/messages/batches":
            if method == "POST":
                return _create(svc, req)
            if method == "GET":
                return _list(svc, req)
        elif (m := _BATCH.match(path)) is not None:
            batch = svc.batches.get(m.group(1))
            if batch is None or batch.provider != "anthropic":
                msg = f"message_batch_id: no batch found with id {m.group(1)!r}"
                return error_response("anthropic", 404, "not_found_error", msg, request_id=rid)
            svc.settle(batch)
            now = svc.now()
            action = m.group(2)
            if action == "/cancel" and method == "POST":
                batch.cancel(now)  # canceling an ended or canceling batch changes nothing
                return MockResponse.json_body(200, render(svc, batch, req))
            if action == "/results" and method == "GET":
                if not batch.is_terminal(now):
                    msg = f"Batch {batch.id} is still processing; results are available once it has ended."
                    return error_response("anthropic", 400, "invalid_request_error", msg, request_id=rid)
                return MockResponse(200, {"content-type": "application/binary"}, results(batch))
            if action is None and method == "GET":
                return MockResponse.json_body(200, render(svc, batch, req))
            if action is None and method == "DELETE":
                if not batch.is_terminal(now):
                    msg = f"Batch {batch.id} cannot be deleted while it is processing; cancel it first."
                    return error_response("anthropic", 400, "invalid_request_error", msg, request_id=rid)
                del svc.batches[batch.id]
                return MockResponse.json_body(200, {"id": batch.id, "type": "message_batch_deleted"})
    except FieldError as err:
        return field_error_response("anthropic", err, rid, {})
    return error_response("anthropic", 404, "not_found_error", "Not Found", request_id=rid)


def _create(svc: BatchService, req: MockRequest) -> MockResponse:
    body = req.json
    if not isinstance(body, dict):
        raise FieldError((), "the request body must be a JSON object", "json" if body is None else "type")
    requests = body.get("requests")
    if requests is None:
        raise FieldError(("requests",), "Field required", "missing")
    if not isinstance(requests, list):
        raise FieldError(("requests",), "Input should be a valid list", "type", requests)
    if not 1 <= len(requests) <= MAX_REQUESTS:
        raise FieldError(("requests",), f"List should have between 1 and {MAX_REQUESTS} items", "value")
    items: list[Item] = []
    seen: set[str] = set()
    for i, entry in enumerate(requests):
        if not isinstance(entry, dict):
            raise FieldError(("requests", i), "Input should be a valid dictionary", "type", entry)
        cid = entry.get("custom_id")
        if cid is None:
            raise FieldError(("requests", i, "custom_id"), "Field required", "missing")
        if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
            msg = "String should match pattern '^[a-zA-Z0-9_-]{1,64}$'"
            raise FieldError(("requests", i, "custom_id"), msg, "value", cid)
        if cid in seen:
            msg = f"Duplicate custom_id {cid!r}: each request in a batch needs a unique custom_id"
            raise FieldError(("requests", i, "custom_id"), msg, "value", cid)
        seen.add(cid)
        params = entry.get("params")
        if params is None:
            raise FieldError(("requests", i, "params"), "Field required", "missing")
        if not isinstance(params, dict):
            raise FieldError(("requests", i, "params"), "Input should be a valid dictionary", "type")
        items.append(Item(index=i, custom_id=cid, body=params))
    batch = Batch(
        id=f"msgbatch_01{svc.new_hex('msgbatch')}",
        provider="anthropic",
        created_at=svc.now(),
        items=items,
        timing=svc.core.config.batch,
    )
    svc.batches[batch.id] = batch
    return MockResponse.json_body(200, render(svc, batch, req))


def _stamp(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def results_url(req: MockRequest, batch_id: str) -> str:
    """Where the results are: on the host the client called (the mock server, or the real API
    host when the in-process transport answers for it)."""
    host = req.headers.get("host", "api.anthropic.com")
    path = f"/v1/messages/batches/{batch_id}/results"
    if host in _REAL_HOSTS:
        return f"https://{host}{path}"
    return f"http://{host}/anthropic{path}"


def render(svc: BatchService, batch: Batch, req: MockRequest) -> dict[str, Any]:
    """The MessageBatch object as ``GET /v1/messages/batches/{id}`` returns it now."""
    svc.settle(batch)
    now = svc.now()
    status = batch.status(now)
    ended = batch.is_terminal(now)
    counts = batch.counts()
    if not ended:
        counts = {"processing": len(batch.items), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    return {
        "id": batch.id,
        "type": "message_batch",
        "processing_status": "ended" if ended else ("canceling" if status == "cancelling" else "in_progress"),
        "request_counts": counts,
        "ended_at": _stamp(batch.ended_at(now)),
        "created_at": _stamp(batch.created_at),
        "expires_at": _stamp(batch.expires_at),
        "archived_at": None,
        "cancel_initiated_at": _stamp(batch.cancel_at),
        "results_url": results_url(req, batch.id) if ended else None,
    }


def results(batch: Batch) -> bytes:
    """The results file: one JSON line per item, in input order."""
    lines = []
    for item in batch.items:
        o = item.outcome
        if o is None:  # cannot happen once the batch has ended; kept total for safety
            continue
        result: dict[str, Any] = {"type": o.kind}
        if o.kind == "succeeded":
            result["message"] = o.body
        elif o.kind == "errored":
            result["error"] = o.body
        lines.append(json.dumps({"custom_id": item.custom_id, "result": result}, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def _list(svc: BatchService, req: MockRequest) -> MockResponse:
    query = query_params(req)
    raw = query.get("limit", "20")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise FieldError(("limit",), "Input should be between 1 and 1000", "value", raw)
    limit = int(raw)
    batches = [b for b in reversed(svc.batches.values()) if b.provider == "anthropic"]
    ids = [b.id for b in batches]
    if (after := query.get("after_id")) is not None:
        batches = batches[ids.index(after) + 1 :] if after in ids else []
    elif (before := query.get("before_id")) is not None:
        batches = batches[: ids.index(before)][-limit:] if before in ids else []
    page = [render(svc, b, req) for b in batches[:limit]]
    return MockResponse.json_body(
        200,
        {
            "data": page,
            "has_more": len(batches) > limit,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
        },
    )
