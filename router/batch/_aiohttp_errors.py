"""The batch client's edge: aiohttp's and the socket's failures as :mod:`router.errors` classes.

The batch calls (uploads, polls, downloads) run on an ``aiohttp`` session, so its exceptions are
translated here, where they are caught, through one table (first match wins) and chained with
``raise ... from``; nothing past this module sees aiohttp's vocabulary.
"""

from __future__ import annotations

import aiohttp

from router import errors as E

__all__ = ["CAUGHT", "from_aiohttp"]

CAUGHT = (aiohttp.ClientError, OSError, TimeoutError)  # what a batch call catches

_TABLE: tuple[tuple[tuple[type[BaseException], ...], type[E.RouterError], str], ...] = (
    ((aiohttp.ConnectionTimeoutError,), E.ConnectTimeout, "connect timeout"),
    ((TimeoutError, aiohttp.ServerTimeoutError), E.ReadTimeout, "read timeout"),
    ((aiohttp.ClientConnectorError, ConnectionRefusedError), E.ConnectFailed, "cannot connect"),
    ((aiohttp.ClientPayloadError,), E.StreamCut, "the answer was cut"),
    (
        (aiohttp.ServerDisconnectedError, ConnectionResetError, aiohttp.ClientOSError),
        E.ConnectFailed,
        "connection lost",
    ),
    ((aiohttp.ClientResponseError, aiohttp.ClientConnectionError), E.ConnectFailed, "transport error"),
)


def from_aiohttp(exc: BaseException, *, provider: str, model: str, during: str) -> E.RouterError:
    """The router's error for a failure of a batch call; ``during`` names the call."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    for kinds, cls, what in _TABLE:
        if isinstance(exc, kinds):
            return cls(f"{what} during {during} ({detail})", provider=provider, model=model)
    return E.MalformedResponse(
        f"unexpected failure during {during} ({detail})", provider=provider, model=model
    )
