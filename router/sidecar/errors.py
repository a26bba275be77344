"""Router errors and bad requests as OpenAI-shaped error bodies, with secrets scrubbed.

Every error the sidecar answers with is ``{"error": {"message", "type", "param", "code"}}`` and
the status the router's error class names (``RouterError.http_status``). Messages often quote an
upstream body, and upstream bodies sometimes quote the key that was sent: :class:`Scrubber`
removes every configured secret (and anything shaped like a provider key) before a message leaves.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

from router.errors import AllAttemptsFailed, ErrorKind, RouterError

# Shapes of provider keys, scrubbed even when they are not in the configuration.
_KEY_SHAPES = re.compile(r"(sk-[A-Za-z0-9_\-]{8,}|Bearer\s+[A-Za-z0-9_\-.=]{8,})")


class Scrubber:
    """Replaces configured secrets and key-shaped strings with ``***``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        ordered = sorted({s for s in secrets if s}, key=len, reverse=True)
        self._pattern = re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub("***", text)
        return _KEY_SHAPES.sub("***", text)


def _type_for(status: int, kind: str) -> str:
    if kind == ErrorKind.QUOTA:
        return "insufficient_quota"
    if status == 401:
        return "authentication_error"
    if status == 429:
        return "rate_limit_exceeded"
    if status < 500:
        return "invalid_request_error"
    return "server_error"


def error_body(message: str, *, status: int, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": _type_for(status, code or ""), "param": param, "code": code}
    }


def retry_after(err: RouterError) -> float | None:
    """Seconds a client should wait, when the router knows, else None."""
    if err.retry_after is not None:
        return err.retry_after
    if isinstance(err, AllAttemptsFailed):
        waits = [e.retry_after for e in err.errors if e.retry_after is not None]
        if waits:
            return min(waits)
    return None


_HELD_BACK = frozenset({ErrorKind.RATE_LIMIT, ErrorKind.UNAVAILABLE, ErrorKind.OVERLOADED})


def exhausted_status(err: RouterError) -> int:
    """The status to answer with; a chain that failed only on limits says so (429 or 503)."""
    if isinstance(err, AllAttemptsFailed) and err.errors:
        kinds = {e.kind for e in err.errors}
        if kinds == {ErrorKind.RATE_LIMIT}:
            return 429
        if kinds <= _HELD_BACK:
            return 503
    return err.http_status


def router_error_response(err: RouterError, scrub: Scrubber) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(status, body, extra headers) for a router error raised before any output was sent."""
    status = exhausted_status(err)
    headers: dict[str, str] = {}
    wait = retry_after(err)
    if wait is None and (status in (429, 503) or err.kind in (ErrorKind.EXHAUSTED, ErrorKind.UNAVAILABLE)):
        wait = 1.0  # every choice exhausted or held back: tell the client when to come back
    if wait is not None:
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    message = err.message
    if err.kind == ErrorKind.UNKNOWN_ROUTE:
        body = error_body(scrub(message), status=status, code="model_not_found", param="model")
    else:
        body = error_body(scrub(message), status=status, code=str(err.kind))
    return status, body, headers


Answer = tuple[int, dict[str, str], bytes]  # status, headers, body: what either server sends


def json_answer(
    status: int, message: str, code: str, *, param: str | None = None, headers: dict[str, str] | None = None
) -> Answer:
    """An OpenAI-shaped JSON error answer."""
    body = json.dumps(error_body(message, status=status, code=code, param=param)).encode()
    return status, {"Content-Type": "application/json", **(headers or {})}, body


def router_error_answer(err: RouterError, scrub: Scrubber) -> Answer:
    """:func:`router_error_response` as an answer to send."""
    status, body, headers = router_error_response(err, scrub)
    return status, {"Content-Type": "application/json", **headers}, json.dumps(body).encode()


def stream_error_body(err: BaseException, scrub: Scrubber) -> dict[str, Any]:
    """The body of the SSE error event that ends a stream which failed after output began."""
    if isinstance(err, RouterError):
        kind = getattr(err, "cause_kind", None) or err.kind
        return error_body(scrub(err.message), status=502, code=str(kind))
    return error_body("The stream failed inside the router.", status=500, code="internal_error")
