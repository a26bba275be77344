"""OpenAI's Files and Batch APIs, as the mock serves them.

``POST /v1/files`` (multipart, ``purpose: batch``), ``GET /v1/files``, ``GET|DELETE /v1/files/{id}``,
``GET /v1/files/{id}/content``; ``POST /v1/batches``, ``GET /v1/batches``, ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel``. Request errors (a missing field, an unknown id) are 4xx in
OpenAI's shape at once; problems inside the input file (a line that is not JSON, a duplicate
``custom_id``, a second model) fail the batch after ``validating``, listed in ``errors`` with
their line numbers, as the real API does. Only ``/v1/chat/completions`` batches are served.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from mockproviders.batch.lifecycle import Batch, Item
from mockproviders.batch.multipart import FormError, parse_form
from mockproviders.errors import FieldError, error_response, field_error_response
from mockproviders.types import MockRequest, MockResponse

if TYPE_CHECKING:
    from mockproviders.batch.service import BatchService, StoredFile

ENDPOINTS = ("/v1/chat/completions",)
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_FILE = re.compile(r"^/v1/files/([^/]+)(/content)?$")
_BATCH = re.compile(r"^/v1/batches/([^/]+)(/cancel)?$")
_MAX_ERRORS = 100


def handle(svc: BatchService, req: MockRequest) -> MockResponse:
    path, method = req.path, req.method
    try:
        if path == "/v1/files":
            if method == "POST":
                return _upload(svc, req)
            if method == "GET":
                return _list_files(svc, req)
        elif (m := _FILE.match(path)) is not None:
            file = svc.files.get(m.group(1))
            if file is None:
                return _not_found(req, f"No such File object: {m.group(1)}", "id")
            if m.group(2) and method == "GET":
                return MockResponse(200, {"content-type": "application/octet-stream"}, file.data)
            if not m.group(2) and method == "GET":
                return MockResponse.json_body(200, _render_file(file))
            if not m.group(2) and method == "DELETE":
                del svc.files[file.id]
                return MockResponse.json_body(200, {"id": file.id, "object": "file", "deleted": True})
        elif path == "/v1/batches":
            if method == "POST":
                return _create(svc, req)
            if method == "GET":
                return _list_batches(svc, req)
        elif (m := _BATCH.match(path)) is not None:
            batch = svc.batches.get(m.group(1))
            if batch is None or batch.provider != "openai":
                return _not_found(req, f"No batch found with id '{m.group(1)}'.", "batch_id")
            if m.group(2) and method == "POST":
                svc.settle(batch)
                if not batch.cancel(svc.now()):
                    status = batch.status(svc.now())
                    msg = f"Cannot cancel a batch with status '{status}'."
                    rid = req.request_id
                    return error_response("openai", 409, "invalid_request_error", msg, request_id=rid)
                return MockResponse.json_body(200, render(svc, batch))
            if not m.group(2) and method == "GET":
                return MockResponse.json_body(200, render(svc, batch))
    except FieldError as err:
        return field_error_response("openai", err, req.request_id, {})
    msg = f"Invalid URL ({method} {path})"
    return error_response("openai", 404, "invalid_request_error", msg, code=None, request_id=req.request_id)


def _not_found(req: MockRequest, message: str, param: str) -> MockResponse:
    return error_response(
        "openai", 404, "invalid_request_error", message, param=param, code=None, request_id=req.request_id
    )


def query_params(req: MockRequest) -> dict[str, str]:
    """The query string's parameters (the last value of each)."""
    return {k: v[-1] for k, v in parse_qs(req.query).items()}


def _limit(query: dict[str, str], default: int, high: int) -> int:
    raw = query.get("limit")
    if raw is None:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise FieldError(("limit",), f"expected an integer between 1 and {high}.", "value", raw)
    return int(raw)


# -- files ------------------------------------------------------------------------------------


def _upload(svc: BatchService, req: MockRequest) -> MockResponse:
    try:
        form = parse_form(req.headers.get("content-type", ""), req.body)
    except FormError as exc:
        raise FieldError((), f"could not parse the multipart body: {exc}") from None
    if "purpose" not in form:
        raise FieldError(("purpose",), "Field required", "missing")
    if "file" not in form:
        raise FieldError(("file",), "Field required", "missing")
    purpose = form["purpose"].data.decode("utf-8", "replace")
    if purpose not in PURPOSES:
        raise FieldError(("purpose",), f"expected one of {', '.join(PURPOSES)}.", "value", purpose)
    filename = form["file"].filename or "upload"
    if purpose == "batch" and not filename.endswith(".jsonl"):
        msg = f"Invalid file format for Batch API. Must be .jsonl, got {filename!r}."
        raise FieldError(("file",), msg, "value", filename)
    from mockproviders.batch.service import StoredFile

    file = StoredFile(f"file-{svc.new_hex('file')}", filename, purpose, form["file"].data, svc.now())
    svc.files[file.id] = file
    return MockResponse.json_body(200, _render_file(file))


def _render_file(file: StoredFile) -> dict[str, Any]:
    return {
        "id": file.id,
        "object": "file",
        "bytes": len(file.data),
        "created_at": int(file.created_at),
        "filename": file.filename,
        "purpose": file.purpose,
        "status": "processed",
        "expires_at": None,
        "status_details": None,
    }


def _list_files(svc: BatchService, req: MockRequest) -> MockResponse:
    query = query_params(req)
    files = [f for f in reversed(svc.files.values()) if query.get("purpose") in (None, f.purpose)]
    return _page([_render_file(f) for f in files], query, 10_000)


def _page(objects: list[dict[str, Any]], query: dict[str, str], high: int) -> MockResponse:
    limit = _limit(query, 20 if high <= 100 else 10_000, high)
    after = query.get("after")
    if after is not None:
        ids = [o["id"] for o in objects]
        objects = objects[ids.index(after) + 1 :] if after in ids else []
    page = objects[:limit]
    return MockResponse.json_body(
        200,
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(objects) > limit,
        },
    )


# -- batches ----------------------------------------------------------------------------------


def _create(svc: BatchService, req: MockRequest) -> MockResponse:
    body = req.json
    if not isinstance(body, dict):
        raise FieldError((), "the request body must be a JSON object", "json" if body is None else "type")
    for key in ("input_file_id", "endpoint", "completion_window"):
        if key not in body:
            raise FieldError((key,), "Field required", "missing")
        if not isinstance(body[key], str):
            raise FieldError((key,), "expected a string.", "type", body[key])
    if body["completion_window"] != "24h":
        raise FieldError(("completion_window",), "expected '24h'.", "value", body["completion_window"])
    if body["endpoint"] not in ENDPOINTS:
        msg = f"the mock serves batches of {', '.join(ENDPOINTS)} only."
        raise FieldError(("endpoint",), msg, "value", body["endpoint"])
    metadata = body.get("metadata")
    if metadata is not None and (
        not isinstance(metadata, dict)
        or len(metadata) > 16
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        raise FieldError(("metadata",), "expected at most 16 string keys with string values.", "type")
    file = svc.files.get(body["input_file_id"])
    if file is None:
        return _not_found(req, f"No such File object: {body['input_file_id']}", "input_file_id")
    if file.purpose != "batch":
        msg = f"File {file.id} has purpose '{file.purpose}'; a batch needs a file with purpose 'batch'."
        raise FieldError(("input_file_id",), msg, "value", file.id)
    items, errors = parse_input(file.data, body["endpoint"])
    batch = Batch(
        id=f"batch_{svc.new_hex('batch')}",
        provider="openai",
        created_at=svc.now(),
        items=items,
        timing=svc.core.config.batch,
        endpoint=body["endpoint"],
        input_file_id=file.id,
        metadata=metadata,
        validation_errors=errors,
    )
    svc.batches[batch.id] = batch
    return MockResponse.json_body(200, render(svc, batch))


def parse_input(data: bytes, endpoint: str) -> tuple[list[Item], list[dict[str, Any]]]:
    """The items of a batch input file, and the errors that fail the batch (with line numbers)."""
    items: list[Item] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    model: str | None = None

    def fail(line: int, code: str, message: str, param: str | None = None) -> None:
        if len(errors) < _MAX_ERRORS:
            errors.append({"code": code, "line": line, "message": message, "param": param})

    lines = data.decode("utf-8", "replace").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines:
        fail(1, "empty_file", "The batch input file is empty.")
    for n, text in enumerate(lines, 1):
        try:
            row = json.loads(text)
        except ValueError:
            fail(n, "invalid_json_line", "This line is not parseable as valid JSON.")
            continue
        if not isinstance(row, dict):
            fail(n, "invalid_request", "Each line must be a JSON object.")
            continue
        cid = row.get("custom_id")
        if not isinstance(cid, str) or not cid:
            fail(n, "missing_required_parameter", "Missing required parameter: 'custom_id'.", "custom_id")
            continue
        if cid in seen:
            msg = "The custom_id for this request is a duplicate of another request; it must be unique."
            fail(n, "duplicate_custom_id", msg, "custom_id")
            continue
        seen.add(cid)
        if row.get("method") != "POST":
            fail(n, "invalid_method", "The request method must be POST.", "method")
            continue
        if row.get("url") != endpoint:
            msg = f"The url {row.get('url')!r} does not match the batch's endpoint {endpoint!r}."
            fail(n, "mismatched_endpoint", msg, "url")
            continue
        body = row.get("body")
        if not isinstance(body, dict):
            fail(n, "invalid_request", "The body must be a JSON object.", "body")
            continue
        item_model = body.get("model")
        if model is None and isinstance(item_model, str):
            model = item_model
        elif isinstance(item_model, str) and item_model != model:
            msg = f"A batch may use one model only: this line uses {item_model!r}, an earlier one {model!r}."
            fail(n, "mismatched_model", msg, "body.model")
            continue
        items.append(Item(index=len(items), custom_id=cid, body=body, line=n))
    return items, errors


def render(svc: BatchService, batch: Batch) -> dict[str, Any]:
    """The Batch object as ``GET /v1/batches/{id}`` returns it now."""
    svc.settle(batch)
    now = svc.now()
    status = batch.status(now)
    if batch.is_terminal(now):
        _make_files(svc, batch)

    def at(t: float | None, reached: bool = True) -> int | None:
        return int(t) if t is not None and reached and now >= t else None

    counts = batch.counts()
    stop = batch.stop_at
    failed = bool(batch.validation_errors)
    usage = _usage(batch)
    model = next((i.body.get("model") for i in batch.items if isinstance(i.body.get("model"), str)), None)
    return {
        "id": batch.id,
        "object": "batch",
        "endpoint": batch.endpoint,
        "model": model,
        "errors": {"object": "list", "data": batch.validation_errors} if failed else None,
        "input_file_id": batch.input_file_id,
        "completion_window": "24h",
        "status": status,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "created_at": int(batch.created_at),
        "in_progress_at": at(batch.validated_at, not failed and (stop is None or stop > batch.validated_at)),
        "expires_at": int(batch.expires_at),
        "finalizing_at": at(batch.processed_at, not failed and stop is None),
        "completed_at": at(batch.finalized_at, status == "completed"),
        "failed_at": at(batch.validated_at, failed),
        "expired_at": at(batch.expires_at, status == "expired"),
        "cancelling_at": at(batch.cancel_at),
        "cancelled_at": at(batch.cancelled_at, status == "cancelled"),
        "request_counts": {
            "total": 0 if failed else len(batch.items),
            "completed": counts["succeeded"],
            "failed": counts["errored"],
        },
        "usage": usage,
        "metadata": batch.metadata,
    }


def _usage(batch: Batch) -> dict[str, Any]:
    inp = out = cached = 0
    for item in batch.items:
        if item.outcome is not None and item.outcome.kind == "succeeded":
            u = item.outcome.body.get("usage") or {}
            inp += u.get("prompt_tokens", 0)
            out += u.get("completion_tokens", 0)
            cached += (u.get("prompt_tokens_details") or {}).get("cached_tokens", 0)
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": out,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": inp + out,
    }


_UNRUN = {
    "expired": ("batch_expired", "This request could not be executed before the completion window expired."),
    "canceled": ("batch_cancelled", "This request was not executed because the batch was cancelled."),
}


def _make_files(svc: BatchService, batch: Batch) -> None:
    """Write the output and error files once the batch has ended (each only if it has lines)."""
    if batch.files_made or batch.validation_errors:
        batch.files_made = True
        return
    batch.files_made = True
    output: list[str] = []
    errors: list[str] = []
    for item in batch.items:
        o = item.outcome
        if o is None:
            continue
        line: dict[str, Any] = {"id": f"batch_req_{o.request_id[4:28]}", "custom_id": item.custom_id}
        if o.status is not None:
            line["response"] = {"status_code": o.status, "request_id": o.request_id, "body": o.body}
            line["error"] = None
        else:
            code, message = _UNRUN[o.kind]
            line["response"] = None
            line["error"] = {"code": code, "message": message}
        (output if o.kind == "succeeded" else errors).append(json.dumps(line, separators=(",", ":")))
    from mockproviders.batch.service import StoredFile

    now = batch.ended_at(svc.now()) or svc.now()
    for lines, kind in ((output, "output"), (errors, "error")):
        if not lines:
            continue
        file = StoredFile(
            f"file-{svc.new_hex('file')}",
            f"{batch.id}_{kind}.jsonl",
            "batch_output",
            ("\n".join(lines) + "\n").encode(),
            now,
        )
        svc.files[file.id] = file
        if kind == "output":
            batch.output_file_id = file.id
        else:
            batch.error_file_id = file.id


def _list_batches(svc: BatchService, req: MockRequest) -> MockResponse:
    batches = [b for b in reversed(svc.batches.values()) if b.provider == "openai"]
    return _page([render(svc, b) for b in batches], query_params(req), 100)
