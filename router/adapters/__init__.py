"""Provider adapters: one pure module per wire format, one shared HTTP adapter, one registry.

An OpenAI-compatible server (vLLM, Ollama, llama.cpp, a proxy) is a row of data here, not new
code: it reuses OpenAI's codec under its own kind.
"""

from __future__ import annotations

from router.adapters import anthropic, mistral, openai
from router.adapters._http import Codec, HttpAdapter
from router.adapters.base import Adapter, AdapterEvent, CallOptions, Deployment, StreamAccumulator
from router.clock import SYSTEM_CLOCK, Clock
from router.transport import MAX_BODY, Transport

__all__ = [
    "CODECS",
    "CONTINUES",
    "Adapter",
    "AdapterEvent",
    "CallOptions",
    "Codec",
    "Deployment",
    "HttpAdapter",
    "StreamAccumulator",
    "make_adapter",
    "make_deployment",
]


def _openai_like(kind: str) -> Codec:
    return Codec(
        kind=kind,
        chat_path=openai.chat_path,
        auth_headers=openai.auth_headers,
        to_wire=openai.to_wire,
        from_wire=openai.from_wire,
        parse_event=openai.parse_event,
        terminator="[DONE]",
        complete_on_finish=True,
        embeddings_path=openai.embeddings_path,
        embed_to_wire=openai.embed_to_wire,
        embed_from_wire=openai.embed_from_wire,
    )


CODECS: dict[str, Codec] = {
    "openai": _openai_like("openai"),
    "openai_compatible": _openai_like("openai_compatible"),
    "anthropic": Codec(
        kind="anthropic",
        chat_path=anthropic.chat_path,
        auth_headers=anthropic.auth_headers,
        to_wire=anthropic.to_wire,
        from_wire=anthropic.from_wire,
        parse_event=anthropic.parse_event,
        terminator="message_stop",
    ),
    "mistral": Codec(
        kind="mistral",
        chat_path=mistral.chat_path,
        auth_headers=mistral.auth_headers,
        to_wire=mistral.to_wire,
        from_wire=mistral.from_wire,
        parse_event=mistral.parse_event,
        terminator="[DONE]",
        complete_on_finish=True,
        embeddings_path=mistral.embeddings_path,
        embed_to_wire=mistral.embed_to_wire,
        embed_from_wire=mistral.embed_from_wire,
    ),
}


# Kinds that continue a trailing assistant message by default (WIRE.md "Continuing a cut
# answer"). OpenAI's own API answers afresh, so it never continues; an openai_compatible server
# does only when its deployment says so (vLLM's continue_final_message).
CONTINUES: dict[str, bool] = {"anthropic": True, "mistral": True, "openai": False, "openai_compatible": False}


def make_adapter(
    kind: str,
    *,
    connections: int = 256,
    max_reply_bytes: int = MAX_BODY,
    transport: Transport | None = None,
    clock: Clock = SYSTEM_CLOCK,
) -> HttpAdapter:
    """The HTTP adapter for a provider ``kind`` (a key of :data:`CODECS`): over ``transport``
    (by default a keep-alive pool of its own), its limits measured on ``clock``."""
    return HttpAdapter(
        CODECS[kind],
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
    the kind's own capability (:data:`CONTINUES`)."""
    codec = CODECS[kind]
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
        continuation=CONTINUES[kind] if continuation is None else continuation and kind != "openai",
    )
