"""One module per provider: request validation and response rendering for its wire format."""

from __future__ import annotations

from mockproviders.providers._base import ProviderAPI, Usage
from mockproviders.providers.anthropic import AnthropicAPI
from mockproviders.providers.mistral import MistralAPI
from mockproviders.providers.openai import OpenAIAPI

PROVIDERS: dict[str, ProviderAPI] = {
    "openai": OpenAIAPI(),
    "anthropic": AnthropicAPI(),
    "mistral": MistralAPI(),
}

__all__ = ["PROVIDERS", "AnthropicAPI", "MistralAPI", "OpenAIAPI", "ProviderAPI", "Usage"]
