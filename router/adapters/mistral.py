"""Mistral chat completions and embeddings: OpenAI's format with a few differences.

``stream_options`` is rejected (chunks carry ``usage`` anyway), ``seed`` is ``random_seed``,
``tool_choice: required`` is ``any``, and ``finish_reason`` may be ``model_length`` or ``error``
(both in :data:`router.adapters.openai.FINISH`). Paths are under ``/v1`` of the base URL.
"""

from __future__ import annotations

from typing import Any

from router.adapters import openai
from router.adapters.base import Deployment
from router.types import ChatRequest

auth_headers = openai.auth_headers
from_wire = openai.from_wire
parse_event = openai.parse_event
embed_to_wire = openai.embed_to_wire
embed_from_wire = openai.embed_from_wire


def chat_path(deployment: Deployment) -> str:
    return "/v1/chat/completions"


def embeddings_path(deployment: Deployment) -> str:
    return "/v1/embeddings"


def to_wire(request: ChatRequest, deployment: Deployment) -> dict[str, Any]:
    """The JSON body of Mistral's ``POST /v1/chat/completions``."""
    body = openai.to_wire(request, deployment)
    body.pop("stream_options", None)
    body.pop("user", None)
    if "seed" in body:
        body["random_seed"] = body.pop("seed")
    if body.get("tool_choice") == "required":
        body["tool_choice"] = "any"
    if request.prefill is not None:
        body["messages"][-1]["prefix"] = True  # continue this assistant message, not a new one
    if request.extra:
        body.update(request.extra)  # the caller's own parameters win over the renames
    return body
