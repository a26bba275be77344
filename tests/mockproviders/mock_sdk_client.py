"""The SDK clients the conformance tests drive (see conftest.py's ``sdk`` fixture)."""

from __future__ import annotations

from dataclasses import dataclass, field

import anthropic
import httpx2
import openai
from mistralai.client import Mistral

from mockproviders.core import MockCore

# Mistral makes a sync client too unless given one; this one skips loading the CA bundle.
_SYNC = httpx2.Client(verify=False)

Clients = tuple[openai.AsyncOpenAI, anthropic.AsyncAnthropic, Mistral]


@dataclass
class SDK:
    """The three SDK clients, all talking to ``core``; ``http`` is a raw client for odd requests.

    ``mode`` is the front end: ``server`` (a socket), ``intercept`` (the real API hosts answered in process)
    or ``transport`` (an httpx2 client on :class:`~mockproviders.inprocess.MockTransport`).
    """

    mode: str
    core: MockCore
    http: httpx2.AsyncClient
    base_urls: dict[str, str]
    _made: list[Clients] = field(default_factory=list)

    def clients(self, api_key: str = "test-key") -> Clients:
        """A set of clients with ``api_key``, no retries; closed by :meth:`aclose`."""

        # Clients of our own with verify=False: loading the CA bundle for each SDK client would
        # be the slowest part of a test. The transport mode shares its in-process client.
        def own() -> httpx2.AsyncClient:
            return self.http if self.mode == "transport" else httpx2.AsyncClient(verify=False)

        made = (
            openai.AsyncOpenAI(
                api_key=api_key, base_url=self.base_urls["openai"], max_retries=0, http_client=own()
            ),
            anthropic.AsyncAnthropic(
                api_key=api_key, base_url=self.base_urls["anthropic"], max_retries=0, http_client=own()
            ),
            Mistral(api_key=api_key, server_url=self.base_urls["mistral"], async_client=own(), client=_SYNC),
        )
        self._made.append(made)
        return made

    @property
    def openai(self) -> openai.AsyncOpenAI:
        return self._default()[0]

    @property
    def anthropic(self) -> anthropic.AsyncAnthropic:
        return self._default()[1]

    @property
    def mistral(self) -> Mistral:
        return self._default()[2]

    def _default(self) -> Clients:
        return self._made[0] if self._made else self.clients()

    async def aclose(self) -> None:
        for oa, an, mi in self._made:
            if self.mode != "transport":
                await oa.close()
                await an.close()
                await mi.sdk_configuration.async_client.aclose()  # type: ignore[union-attr]
        self._made.clear()
