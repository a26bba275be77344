"""Provider adapters: one pure module per wire format, one shared HTTP adapter, one registry.

Each provider module ends with its :class:`Provider`: its codec and its facts (rate-limit header
dialect, genai-prices id, cache markers, batch API, continuation, the max-tokens field). An
OpenAI-compatible server (vLLM, Ollama, llama.cpp, a proxy) reuses OpenAI's codec under its own
kind; a hosted one with its own facts (``groq``) is one small module and one row of the registry.
"""

from __future__ import annotations

from router.adapters import anthropic, groq, mistral, openai
from router.adapters._http import Codec, HttpAdapter
from router.adapters.base import Adapter, AdapterEvent, CallOptions, Deployment, StreamAccumulator
from router.adapters.provider import Provider
from router.clock import SYSTEM_CLOCK, Clock
from router.transport import MAX_BODY, Transport

__all__ = [
    "CODECS",
    "PROVIDERS",
    "Adapter",
    "AdapterEvent",
    "CallOptions",
    "Codec",
    "Deployment",
    "HttpAdapter",
    "Provider",
    "StreamAccumulator",
    "make_adapter",
    "make_deployment",
    "provider_for",
]

# The registry: one row per provider kind. A new provider is a module ending in its Provider,
# and one row here; nothing else in the router names a provider.
PROVIDERS: dict[str, Provider] = {
    p.kind: p
    for p in (
        openai.PROVIDER,
        anthropic.PROVIDER,
        mistral.PROVIDER,
        openai.COMPATIBLE,
        groq.PROVIDER,
    )
}

CODECS: dict[str, Codec] = {kind: p.codec for kind, p in PROVIDERS.items()}


def provider_for(kind: str) -> Provider:
    """The :class:`Provider` of ``kind``; ``ValueError`` naming the known kinds for any other."""
    try:
        return PROVIDERS[kind]
    except KeyError:
        raise ValueError(f"unknown provider kind {kind!r} (known: {', '.join(PROVIDERS)})") from None


def make_adapter(
    kind: str,
    *,
    connections: int = 256,
    max_reply_bytes: int = MAX_BODY,
    transport: Transport | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> HttpAdapter:
    """The HTTP adapter for a provider ``kind`` (a key of :data:`PROVIDERS`): over ``transport``
    (by default a keep-alive pool of its own), its limits measured on ``clock``."""
    return HttpAdapter(
        provider_for(kind).codec,
        connections=connections,
        max_reply_bytes=max_reply_bytes,
        transport=transport,
        clock=clock,
    )


def make_deployment(
    name: str,
    *,
    provider: str,
    kind: str,
    model: str,
    base_url: str,
    api_key: str | None = None,
    headers: dict[str, str] | None = None,
    max_tokens: int | None = None,
    context_window: int | None = None,
    continuation: bool | None = None,
) -> Deployment:
    """A :class:`Deployment` with its URLs and headers computed once; ``continuation`` unset:
    the kind's own default (:attr:`Provider.continues`); set, only where the kind may continue."""
    spec = provider_for(kind)
    codec = spec.codec
    base = base_url.rstrip("/")
    probe = Deployment(name=name, provider=provider, kind=kind, model=model, base_url=base)
    all_headers = {"content-type": "application/json", **codec.auth_headers(api_key)}
    all_headers.update({k.lower(): v for k, v in (headers or {}).items()})
    return Deployment(
        name=name,
        provider=provider,
        kind=kind,
        model=model,
        base_url=base,
        chat_url=base + codec.chat_path(probe),
        embeddings_url=base + codec.embeddings_path(probe) if codec.embeddings_path else "",
        headers=all_headers,
        max_tokens=max_tokens,
        context_window=context_window,
        continuation=spec.continues if continuation is None else continuation and spec.may_continue,
    )
