import anthropic
import openai
import pytest
from mistralai.client import Mistral

HI = [{"role": "user", "content": "Hello"}]


def test_openai(mock_providers, mock_journal):
    answer = openai.OpenAI(api_key="sk-test").chat.completions.create(model="gpt-4o", messages=HI)
    assert answer.choices[0].message.content
    assert [(e.provider, e.endpoint, e.status) for e in mock_journal] == [("openai", "chat", 200)]


@pytest.mark.anyio
async def test_anthropic_streaming(mock_providers):
    client = anthropic.AsyncAnthropic(api_key="sk-test")
    async with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HI) as stream:
        text = "".join([chunk async for chunk in stream.text_stream])
    assert text


def test_mistral_streaming(mock_providers):
    events = Mistral(api_key="test").chat.stream(model="mistral-small-latest", messages=HI)
    assert "".join(e.data.choices[0].delta.content or "" for e in events)


@pytest.mark.turnout_chaos(
    rules=[{"fault": "rate_limit", "params": {"retry_after_ms": 1}, "when": {"first": 1}}]
)
def test_openai_retries_a_429(mock_providers, mock_journal):
    openai.OpenAI(api_key="sk-test").chat.completions.create(model="gpt-4o", messages=HI)
    assert [e.status for e in mock_journal] == [429, 200]
