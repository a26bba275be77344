"""Provider error answers for the faults, built with the mock's own builders.

Delegating to :mod:`mockproviders.errors` keeps injected errors byte-for-byte in the shape the
mock itself sends (which the SDK tests pin down); this module only adds what a fault needs on
top: a 429 *without* ``retry-after`` when none was asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mockproviders import errors as mock_errors
from mockproviders.types import MockResponse, Provider, StreamEvent


def error_response(
    provider: Provider,
    status: int,
    kind: str | None = None,
    message: str | None = None,
    *,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> MockResponse:
    """``provider``'s error answer; ``kind``/``message``/``code`` default to the provider's own."""
    extra: dict[str, Any] = {} if code is None else {"code": code}
    hdrs = dict(headers or {})
    response = mock_errors.error_response(provider, status, kind, message, headers=hdrs, **extra)
    # The builder adds OpenAI's usual ``retry-after: 1`` to a 429; a fault sends only what it was told.
    for name in ("retry-after", "retry-after-ms"):
        if name not in hdrs:
            response.headers.pop(name, None)
    return response


def stream_error_event(
    provider: Provider, kind: str | None = None, message: str | None = None
) -> StreamEvent:
    """An in-band error event, sent after the 200 in the middle of a stream."""
    return mock_errors.stream_error_event(provider, kind, message)
