"""The contract between an adapter and whatever carries its HTTP exchange.

One method, as httpx's ``AsyncBaseTransport``: :meth:`Transport.handle_async_request` takes a
:class:`Request` and returns a :class:`Response` once the answer's status and headers are in.
The body is then read whole (:meth:`Response.read`) or as it arrives (:meth:`Response.readany`),
and the response settled with :meth:`Response.release` (read to the end: the connection may be
reused) or :meth:`Response.close` (anything else).

Time limits are durations in seconds, each measured from the call that takes it; ``None`` means
none. Failures are :mod:`router.errors` classes, raised by the transport itself:
:class:`~router.errors.ConnectFailed`, :class:`~router.errors.ConnectTimeout`,
:class:`~router.errors.ReadTimeout`, :class:`~router.errors.StreamCut` (the body ended before
its end) and :class:`~router.errors.ReplyTooLarge`. ``provider`` and ``model`` are left empty: a
transport does not know them, the adapter fills them in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

__all__ = ["Request", "Response", "Transport"]


@dataclass(slots=True)
class Request:
    """One POST to a provider, its whole body known in advance."""

    url: str
    body: bytes
    headers: Mapping[str, str]
    timeout: float | None = None  # until the answer's status and headers are in, connect included
    connect_timeout: float | None = None  # for making a new connection (a pooled one is reused)

    def json(self) -> Any:
        """The body, parsed (for tests and scripted replies)."""
        return json.loads(self.body)


class Response(Protocol):
    """An answer: status and headers at once; the body read whole or as it arrives."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read(self, timeout: float | None = None) -> bytes:
        """The whole body (:class:`~router.errors.ReadTimeout` past ``timeout``)."""
        ...

    async def readany(self, timeout: float | None = None) -> bytes:
        """What has arrived since the last call, waiting for some; ``b""`` at the end."""
        ...

    def release(self) -> None:
        """Done, the body read to its end: the connection may be reused."""
        ...

    def close(self) -> None:
        """Done, the body unread, unfinished or broken: the connection is dropped."""
        ...


class Transport(Protocol):
    """Carries one HTTP exchange; the router's adapters reach providers only through this."""

    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request``; return once the answer's status and headers are in."""
        ...
