"""How the router's adapters reach a provider: one small contract, two implementations.

- :class:`Transport` (:mod:`router.transport.base`): one method, ``handle_async_request``, as
  httpx's ``AsyncBaseTransport``: a :class:`Request` in, a :class:`Response` out;
- :class:`HttpPool` (:mod:`router.transport.pool`): the default, the router's own keep-alive
  HTTP/1.1 client on asyncio + httptools, one per provider;
- :class:`MemoryTransport` (:mod:`router.transport.memory`): scripted :class:`Reply` s in memory,
  with delays, pauses, cuts and hangs on an injected clock, for tests.

``Router(config, transport=...)`` sends every provider's calls through the given transport (which
stays the caller's to close); without one, each provider gets its own :class:`HttpPool`, closed
with the router. A transport raises the router's own
errors (:mod:`router.errors`): :class:`~router.errors.ConnectFailed`,
:class:`~router.errors.ConnectTimeout`, :class:`~router.errors.ReadTimeout`,
:class:`~router.errors.StreamCut`, :class:`~router.errors.ReplyTooLarge`.
"""

from __future__ import annotations

from router import errors as _E
from router.transport.base import Request, Response, Transport
from router.transport.memory import MemoryResponse, MemoryTransport, Pause, Reply
from router.transport.pool import MAX_BODY, HttpPool, HttpResponse

__all__ = [
    "MAX_BODY",
    "HttpPool",
    "HttpResponse",
    "MemoryResponse",
    "MemoryTransport",
    "Pause",
    "Reply",
    "Request",
    "Response",
    "Transport",
]

# The client's own exception classes before the transport seam, kept as aliases of the router
# errors that replaced them (router.errors), so an ``except`` written against them still catches.
# Deprecated: catch the router.errors classes.
TransportError = _E.TransportError
ConnectError = _E.ConnectFailed
Disconnected = _E.ConnectFailed
ProtocolError = _E.ConnectFailed
ConnectTimeout = _E.ConnectTimeout
HeadTimeout = _E.ReadTimeout
PayloadError = _E.StreamCut
TooLarge = _E.ReplyTooLarge
