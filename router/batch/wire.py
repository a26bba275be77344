"""Pure translation between normalized requests and the providers' batch formats.

Requests go through the adapters' own ``to_wire`` and answers through their ``from_wire``, so a
batch item is exactly the body a single request would send. Results files are read line by line;
a line that is not the provider's format raises :class:`~router.batch.types.BatchResultError`
naming the file and the line, while an item whose answer body cannot be read is marked
``errored`` (with that line's number) and so retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from router.adapters import CODECS, Deployment
from router.batch.types import BatchItem, BatchOutcome, BatchResultError
from router.classify import classify_response, classify_stream_error
from router.errors import MalformedResponse, RouterError
from router.types import ChatResponse

__all__ = [
    "CHAT_ENDPOINT",
    "ItemOutcome",
    "anthropic_requests",
    "openai_input_file",
    "parse_anthropic_results",
    "parse_openai_results",
]

CHAT_ENDPOINT = "/v1/chat/completions"


@dataclass(slots=True)
class ItemOutcome:
    """What a results file says about one item."""

    outcome: BatchOutcome
    response: ChatResponse | None = None
    error: RouterError | None = None
    line: int = 0


def _body(item: BatchItem, deployment: Deployment) -> dict[str, Any]:
    request = replace(item.request, stream=False) if item.request.stream else item.request
    return CODECS[deployment.kind].to_wire(request, deployment)


def openai_input_file(items: Sequence[BatchItem], deployment: Deployment) -> bytes:
    """The JSONL input file of an OpenAI chat-completions batch."""
    lines = [
        json.dumps(
            {
                "custom_id": it.custom_id,
                "method": "POST",
                "url": CHAT_ENDPOINT,
                "body": _body(it, deployment),
            },
            separators=(",", ":"),
        )
        for it in items
    ]
    return ("\n".join(lines) + "\n").encode()


def anthropic_requests(items: Sequence[BatchItem], deployment: Deployment) -> dict[str, Any]:
    """The body of ``POST /v1/messages/batches``."""
    return {"requests": [{"custom_id": it.custom_id, "params": _body(it, deployment)} for it in items]}


def _rows(text: str, label: str, known: Mapping[str, BatchItem]) -> list[tuple[int, str, dict[str, Any]]]:
    """(line number, custom_id, row) for every non-blank line; BatchResultError on a bad one."""
    rows = []
    seen: set[str] = set()
    for n, raw in enumerate(text.splitlines(), 1):
        if not raw.strip():
            continue
        where = f"{label} line {n}"
        try:
            row = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise BatchResultError(f"{where}: not JSON ({exc.msg}): {raw[:80]!r}") from None
        if not isinstance(row, dict):
            raise BatchResultError(f"{where}: expected a JSON object, got {type(row).__name__}")
        cid = row.get("custom_id")
        if not isinstance(cid, str):
            raise BatchResultError(f"{where}: no custom_id")
        if cid not in known:
            raise BatchResultError(f"{where}: custom_id {cid!r} is not one of the batch's requests")
        if cid in seen:
            raise BatchResultError(f"{where}: custom_id {cid!r} appears twice")
        seen.add(cid)
        rows.append((n, cid, row))
    return rows


def _answer(body: Any, deployment: Deployment, where: str, n: int) -> ItemOutcome:
    try:
        response = CODECS[deployment.kind].from_wire(body, deployment)
    except MalformedResponse as exc:
        exc.message = f"{where}: {exc.message}"
        return ItemOutcome("errored", error=exc, line=n)
    return ItemOutcome("succeeded", response=response, line=n)


def parse_openai_results(
    text: str, label: str, known: Mapping[str, BatchItem], deployment: Deployment
) -> dict[str, ItemOutcome]:
    """Outcomes from an OpenAI output or error file (``label`` names it in errors)."""
    out: dict[str, ItemOutcome] = {}
    where_model: dict[str, Any] = {"provider": deployment.provider, "model": deployment.name}
    for n, cid, row in _rows(text, label, known):
        where = f"{label} line {n}"
        response, error = row.get("response"), row.get("error")
        if isinstance(response, dict):
            status = response.get("status_code")
            if not isinstance(status, int):
                raise BatchResultError(f"{where}: response.status_code is not an integer")
            body = response.get("body")
            if 200 <= status < 300:
                out[cid] = _answer(body, deployment, where, n)
            else:
                raw = json.dumps(body).encode()
                err = classify_response(deployment.kind, status, raw, {}, **where_model)
                out[cid] = ItemOutcome("errored", error=err, line=n)
        elif isinstance(error, dict):
            code = str(error.get("code") or "")
            message = str(error.get("message") or code or "no message")
            kind: BatchOutcome = {"batch_expired": "expired", "batch_cancelled": "canceled"}.get(
                code, "errored"
            )  # type: ignore[assignment]
            err = RouterError(f"{where}: {code}: {message}", error_type=code or None, **where_model)
            out[cid] = ItemOutcome(kind, error=err, line=n)
        else:
            raise BatchResultError(f"{where}: neither a response nor an error object")
    return out


def parse_anthropic_results(
    text: str, label: str, known: Mapping[str, BatchItem], deployment: Deployment
) -> dict[str, ItemOutcome]:
    """Outcomes from an Anthropic results file."""
    out: dict[str, ItemOutcome] = {}
    where_model: dict[str, Any] = {"provider": deployment.provider, "model": deployment.name}
    for n, cid, row in _rows(text, label, known):
        where = f"{label} line {n}"
        result = row.get("result")
        if not isinstance(result, dict):
            raise BatchResultError(f"{where}: no result object")
        rtype = result.get("type")
        if rtype == "succeeded":
            out[cid] = _answer(result.get("message"), deployment, where, n)
        elif rtype == "errored":
            err = classify_stream_error(deployment.kind, result.get("error"), **where_model)
            err.message = f"{where}: {err.message}"
            out[cid] = ItemOutcome("errored", error=err, line=n)
        elif rtype in ("canceled", "expired"):
            err = RouterError(f"{where}: the batch ended with this request {rtype}", **where_model)
            out[cid] = ItemOutcome(rtype, error=err, line=n)
        else:
            raise BatchResultError(f"{where}: unknown result type {rtype!r}")
    return out
