"""Embeddings only from embedding models, and ``dimensions`` only where the model takes it, as the
real APIs answer; through every front end (socket, interception, MockTransport)."""

from __future__ import annotations

import openai
import pytest
from mistralai.client import errors as mistral_errors
from mock_sdk_client import SDK

from mockproviders.config import MockConfig


async def test_openai_refuses_embeddings_from_a_chat_model(sdk: SDK) -> None:
    with pytest.raises(openai.PermissionDeniedError) as info:
        await sdk.openai.embeddings.create(model="gpt-4o-mini", input="a cat")
    assert info.value.status_code == 403
    assert info.value.body == {
        "message": "You are not allowed to generate embeddings from this model",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    assert sdk.core.journal.entries[-1].status == 403


@pytest.mark.parametrize("model", ["text-embedding-3-small", "text-embedding-3-large"])
async def test_openai_dimensions_are_honoured_by_text_embedding_3(sdk: SDK, model: str) -> None:
    r = await sdk.openai.embeddings.create(model=model, input=["a", "b"], dimensions=256)
    assert [len(d.embedding) for d in r.data] == [256, 256]
    full = await sdk.openai.embeddings.create(model=model, input="a")
    native = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072}[model]
    assert len(full.data[0].embedding) == native


async def test_openai_ada_002_refuses_dimensions(sdk: SDK) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.openai.embeddings.create(model="text-embedding-ada-002", input="a", dimensions=512)
    assert info.value.body == {
        "message": "This model does not support specifying dimensions.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }
    r = await sdk.openai.embeddings.create(model="text-embedding-ada-002", input="a")
    assert len(r.data[0].embedding) == 1536


async def test_mistral_refuses_embeddings_from_a_chat_model(sdk: SDK) -> None:
    with pytest.raises(mistral_errors.SDKError) as info:
        await sdk.mistral.embeddings.create_async(model="mistral-small-latest", inputs=["one"])
    assert info.value.status_code == 404
    assert '"Invalid model: mistral-small-latest"' in info.value.body
    assert '"type":"invalid_model"' in info.value.body
    ok = await sdk.mistral.embeddings.create_async(model="mistral-embed", inputs=["one"])
    assert len(ok.data[0].embedding or []) == 1024


async def test_a_configured_model_is_an_embedding_model_by_its_dimensions(sdk: SDK) -> None:
    sdk.core.configure(
        MockConfig(models={"openai": ("my-vectors", "gpt-4o")}, embedding_dimensions={"my-vectors": 12})
    )
    r = await sdk.openai.embeddings.create(model="my-vectors", input="a")
    assert len(r.data[0].embedding) == 12
    with pytest.raises(openai.PermissionDeniedError):
        await sdk.openai.embeddings.create(model="gpt-4o", input="a")
