"""The mock's batch APIs: OpenAI Files + Batch, Anthropic Message Batches.

Life cycles run on the core's FakeClock: a test advances the clock and looks, nothing sleeps.
The official SDKs drive the mock over a real loopback socket (and, for the round trips, through
every front end via the ``sdk`` fixture).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Final

import anthropic
import httpx2
import openai
import pytest
import pytest_asyncio
from hypothesis import given, settings
from hypothesis import strategies as st
from mock_sdk_client import SDK

from mockproviders.batch import Batch, BatchConfig, Item, ItemError, parse_duration
from mockproviders.clock import FakeClock
from mockproviders.config import ConfigError, MockConfig, parse_config
from mockproviders.core import MockCore
from mockproviders.server import MockServer, create_app

CHAT: Final = "/v1/chat/completions"
TIMING = {"validating": "1s", "per_item": "100ms", "finalizing": "1s", "cancelling": "2s"}


def oa_line(cid: str, text: str = "hello", model: str = "gpt-4o-mini", **body: Any) -> dict[str, Any]:
    payload = {"model": model, "messages": [{"role": "user", "content": text}], **body}
    return {"custom_id": cid, "method": "POST", "url": CHAT, "body": payload}


def jsonl(rows: list[Any]) -> bytes:
    return ("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n").encode()


def an_req(cid: str, text: str = "hello", model: str = "claude-haiku-4-5", **params: Any) -> Any:
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}], **params}
    return {"custom_id": cid, "params": body}


@pytest.fixture
def mock_config() -> MockConfig:
    return parse_config({"batch": {**TIMING, "fail": [{"custom_id": "doomed", "status": 503}]}})


@pytest_asyncio.fixture
async def server(mock_core: MockCore) -> AsyncIterator[MockServer]:
    async with MockServer(app=create_app(core=mock_core)) as srv:
        yield srv


@pytest_asyncio.fixture
async def oai(server: MockServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(api_key="k", base_url=server.base_urls["openai"], max_retries=0) as c:
        yield c


@pytest_asyncio.fixture
async def ant(server: MockServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        api_key="k", base_url=server.base_urls["anthropic"], max_retries=0
    ) as c:
        yield c


async def submit(oai: openai.AsyncOpenAI, rows: list[Any]) -> openai.types.Batch:
    file = await oai.files.create(file=("input.jsonl", jsonl(rows)), purpose="batch")
    return await oai.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="24h")


def rc(batch: openai.types.Batch) -> openai.types.BatchRequestCounts:
    assert batch.request_counts is not None
    return batch.request_counts


async def lines_of(oai: openai.AsyncOpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    content = await oai.files.content(file_id)
    return {row["custom_id"]: row for row in map(json.loads, content.text.splitlines())}


# -- OpenAI ---------------------------------------------------------------------------------------


async def test_openai_life_cycle_on_the_fake_clock(
    oai: openai.AsyncOpenAI, mock_clock: FakeClock, mock_core: MockCore
) -> None:
    batch = await submit(oai, [oa_line(f"q{i}", f"question {i}") for i in range(4)])
    t0 = batch.created_at
    assert (batch.status, rc(batch).total, batch.output_file_id) == ("validating", 4, None)
    mock_clock.advance(1.0)  # validating ends: in progress, nothing answered yet
    batch = await oai.batches.retrieve(batch.id)
    assert (batch.status, batch.in_progress_at, rc(batch).completed) == ("in_progress", t0 + 1, 0)
    mock_clock.advance(0.25)  # two items due (each 100 ms)
    batch = await oai.batches.retrieve(batch.id)
    assert rc(batch).completed == 2
    mock_clock.advance(0.2)  # all four answered: finalizing
    batch = await oai.batches.retrieve(batch.id)
    assert (batch.status, rc(batch).completed, batch.completed_at) == ("finalizing", 4, None)
    mock_clock.advance(1.0)
    batch = await oai.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.completed_at is not None
    assert batch.error_file_id is None and batch.model == "gpt-4o-mini"
    assert batch.usage is not None and batch.usage.total_tokens > 0
    out = await lines_of(oai, batch.output_file_id)
    assert sorted(out) == ["q0", "q1", "q2", "q3"]
    assert all(row["response"]["status_code"] == 200 and row["error"] is None for row in out.values())
    file = await oai.files.retrieve(batch.output_file_id or "")
    assert (file.purpose, file.filename) == ("batch_output", f"{batch.id}_output.jsonl")
    endpoints = {(e.endpoint, e.method, e.status) for e in mock_core.journal}
    assert {("files", "POST", 200), ("batches", "POST", 200), ("batches", "GET", 200)} <= endpoints
    assert mock_clock.sleeps == []  # nothing waited, not even virtually


async def test_openai_items_equal_single_answers(oai: openai.AsyncOpenAI, mock_clock: FakeClock) -> None:
    rows = [oa_line("a", "what is a turnout?"), oa_line("b", "name a colour", max_completion_tokens=5)]
    batch = await submit(oai, rows)
    mock_clock.advance(10)
    batch = await oai.batches.retrieve(batch.id)
    out = await lines_of(oai, batch.output_file_id)
    for row in rows:
        single = await oai.chat.completions.create(**row["body"])
        body = out[row["custom_id"]]["response"]["body"]
        assert body["choices"][0]["message"] == single.choices[0].message.model_dump(exclude_unset=True)
        assert body["choices"][0]["finish_reason"] == single.choices[0].finish_reason
        assert body["usage"]["total_tokens"] == (single.usage.total_tokens if single.usage else None)


async def test_openai_item_failures_land_in_the_error_file(
    oai: openai.AsyncOpenAI, mock_clock: FakeClock, mock_core: MockCore
) -> None:
    mock_core.batches.add_item_hook(lambda p, cid, body: ItemError(429) if cid == "hooked" else None)
    rows = [
        oa_line("ok"),
        oa_line("bad-body", temperature=5),
        {"custom_id": "no-messages", "method": "POST", "url": CHAT, "body": {"model": "gpt-4o-mini"}},
        oa_line("doomed"),  # the config's fail rule
        oa_line("hooked"),
    ]
    batch = await submit(oai, rows)
    mock_clock.advance(10)
    batch = await oai.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert (rc(batch).completed, rc(batch).failed) == (1, 4)
    errors = await lines_of(oai, batch.error_file_id)
    status = {cid: row["response"]["status_code"] for cid, row in errors.items()}
    assert status == {"bad-body": 400, "no-messages": 400, "doomed": 503, "hooked": 429}
    assert errors["bad-body"]["response"]["body"]["error"]["param"] == "temperature"
    assert errors["no-messages"]["response"]["body"]["error"]["code"] == "missing_required_parameter"
    assert errors["doomed"]["response"]["body"]["error"]["type"] == "server_error"
    assert list(await lines_of(oai, batch.output_file_id)) == ["ok"]


async def test_openai_unknown_model_fails_the_item(oai: openai.AsyncOpenAI, mock_clock: FakeClock) -> None:
    batch = await submit(oai, [oa_line("x", model="gpt-nope")])
    mock_clock.advance(10)
    batch = await oai.batches.retrieve(batch.id)
    errors = await lines_of(oai, batch.error_file_id)
    assert errors["x"]["response"]["status_code"] == 404
    assert errors["x"]["response"]["body"]["error"]["code"] == "model_not_found"


async def test_openai_bad_input_file_fails_the_batch_naming_lines(
    oai: openai.AsyncOpenAI, mock_clock: FakeClock
) -> None:
    rows: list[Any] = [
        oa_line("a"),
        "{not json",
        oa_line("a"),
        {**oa_line("c"), "url": "/v1/embeddings"},
        {**oa_line("d"), "method": "GET"},
        oa_line("e", model="gpt-4.1"),
        {"method": "POST", "url": CHAT, "body": {}},
    ]
    batch = await submit(oai, rows)
    assert batch.status == "validating"
    mock_clock.advance(1.0)
    batch = await oai.batches.retrieve(batch.id)
    assert batch.status == "failed" and batch.failed_at is not None and batch.in_progress_at is None
    assert batch.errors is not None and batch.errors.data is not None
    codes = [(e.line, e.code) for e in batch.errors.data]
    assert codes == [
        (2, "invalid_json_line"),
        (3, "duplicate_custom_id"),
        (4, "mismatched_endpoint"),
        (5, "invalid_method"),
        (6, "mismatched_model"),
        (7, "missing_required_parameter"),
    ]
    assert batch.output_file_id is None and batch.error_file_id is None


async def test_openai_cancel_keeps_partial_results(oai: openai.AsyncOpenAI, mock_clock: FakeClock) -> None:
    batch = await submit(oai, [oa_line(f"q{i}") for i in range(5)])
    mock_clock.advance(1.25)  # two of five answered
    batch = await oai.batches.cancel(batch.id)
    assert batch.status == "cancelling" and batch.cancelling_at is not None
    mock_clock.advance(1.0)  # still cancelling: no more items are answered
    batch = await oai.batches.retrieve(batch.id)
    assert (batch.status, rc(batch).completed) == ("cancelling", 2)
    mock_clock.advance(1.0)
    batch = await oai.batches.retrieve(batch.id)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    assert sorted(await lines_of(oai, batch.output_file_id)) == ["q0", "q1"]
    errors = await lines_of(oai, batch.error_file_id)
    assert sorted(errors) == ["q2", "q3", "q4"]
    assert {row["error"]["code"] for row in errors.values()} == {"batch_cancelled"}
    assert all(row["response"] is None for row in errors.values())
    with pytest.raises(openai.ConflictError, match="cancelled"):
        await oai.batches.cancel(batch.id)


async def test_openai_expiry_stops_processing(mock_core: MockCore, mock_clock: FakeClock) -> None:
    mock_core.configure(parse_config({"batch": {**TIMING, "expires": "1.25s"}}))
    async with (
        MockServer(app=create_app(core=mock_core)) as srv,
        openai.AsyncOpenAI(api_key="k", base_url=srv.base_urls["openai"], max_retries=0) as oai,
    ):
        batch = await submit(oai, [oa_line(f"q{i}") for i in range(4)])
        mock_clock.advance(5)
        batch = await oai.batches.retrieve(batch.id)
        assert batch.status == "expired" and batch.expired_at == batch.created_at + 1
        assert rc(batch).completed == 2
        errors = await lines_of(oai, batch.error_file_id)
        assert {cid: row["error"]["code"] for cid, row in errors.items()} == {
            "q2": "batch_expired",
            "q3": "batch_expired",
        }


async def test_openai_request_errors_are_4xx_in_openai_shape(
    oai: openai.AsyncOpenAI, server: MockServer
) -> None:
    file = await oai.files.create(file=("in.jsonl", jsonl([oa_line("a")])), purpose="batch")
    with pytest.raises(openai.BadRequestError, match="completion_window"):
        await oai.batches.create(input_file_id=file.id, endpoint=CHAT, completion_window="1h")  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError, match="endpoint"):
        await oai.batches.create(input_file_id=file.id, endpoint="/v1/videos", completion_window="24h")
    with pytest.raises(openai.NotFoundError, match="No such File object"):
        await oai.batches.create(input_file_id="file-nope", endpoint=CHAT, completion_window="24h")
    with pytest.raises(openai.BadRequestError, match=r"\.jsonl"):
        await oai.files.create(file=("in.txt", b"{}"), purpose="batch")
    other = await oai.files.create(file=("notes.txt", b"hi"), purpose="user_data")
    with pytest.raises(openai.BadRequestError, match="purpose 'batch'"):
        await oai.batches.create(input_file_id=other.id, endpoint=CHAT, completion_window="24h")
    with pytest.raises(openai.NotFoundError, match="No batch found"):
        await oai.batches.retrieve("batch_nope")
    with pytest.raises(openai.NotFoundError):
        await oai.files.content("file-nope")
    async with httpx2.AsyncClient(
        base_url=server.base_urls["openai"], headers={"authorization": "Bearer k"}
    ) as h:
        cases: list[tuple[str, str, dict[str, Any]]] = [
            ("POST", "/batches", {"content": b"not json"}),
            ("POST", "/batches", {"json": {"endpoint": CHAT, "completion_window": "24h"}}),
            (
                "POST",
                "/batches",
                {"json": {"input_file_id": 3, "endpoint": CHAT, "completion_window": "24h"}},
            ),
            ("POST", "/files", {"content": b"plain", "headers": {"content-type": "text/plain"}}),
            ("POST", "/files", {"files": {"file": ("a.jsonl", b"{}")}}),
            ("GET", "/batches?limit=0", {}),
            ("PUT", "/batches", {}),
        ]
        for method, path, kwargs in cases:
            r = await h.request(method, path, **kwargs)
            assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
            assert set(r.json()["error"]) == {"message", "type", "param", "code"}, r.text
        r = await h.post("/batches", json={"endpoint": CHAT, "completion_window": "24h"})
        assert r.json()["error"]["param"] == "input_file_id"


async def test_openai_lists_page_newest_first(oai: openai.AsyncOpenAI) -> None:
    ids = [(await submit(oai, [oa_line("a")])).id for _ in range(3)]
    first = await oai.batches.list(limit=2)
    assert [b.id for b in first.data] == ids[::-1][:2] and first.has_more
    assert [b.id async for b in await oai.batches.list(limit=2)] == ids[::-1]  # the SDK follows `after`
    files = await oai.files.list(purpose="batch")
    assert len(files.data) == 3
    deleted = await oai.files.delete(files.data[0].id)
    assert deleted.deleted


# -- Anthropic ------------------------------------------------------------------------------------


async def test_anthropic_life_cycle_and_results(
    ant: anthropic.AsyncAnthropic, mock_clock: FakeClock, mock_core: MockCore
) -> None:
    requests = [an_req("ok", "what is a turnout?"), an_req("bad", max_tokens=0), an_req("ghost", model="x")]
    requests.append(an_req("doomed"))
    batch = await ant.messages.batches.create(requests=requests)
    assert batch.processing_status == "in_progress" and batch.results_url is None
    assert batch.request_counts.processing == 4
    mock_clock.advance(1.25)  # some items answered, but counts move only at the end
    batch = await ant.messages.batches.retrieve(batch.id)
    assert (batch.request_counts.processing, batch.request_counts.succeeded) == (4, 0)
    mock_clock.advance(5)
    batch = await ant.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "ended" and batch.ended_at is not None
    assert (batch.request_counts.succeeded, batch.request_counts.errored) == (1, 3)
    assert batch.results_url == f"{mock_core_url(ant)}/v1/messages/batches/{batch.id}/results"
    results = {r.custom_id: r.result async for r in await ant.messages.batches.results(batch.id)}
    assert results["ok"].type == "succeeded"
    assert results["bad"].type == "errored" and results["bad"].error.error.type == "invalid_request_error"
    assert results["ghost"].type == "errored" and results["ghost"].error.error.type == "not_found_error"
    assert results["doomed"].type == "errored" and results["doomed"].error.error.type == "api_error"
    single = await ant.messages.create(**requests[0]["params"])
    assert results["ok"].message.content == single.content
    assert results["ok"].message.usage.output_tokens == single.usage.output_tokens
    deleted = await ant.messages.batches.delete(batch.id)
    assert deleted.type == "message_batch_deleted"
    assert {e.endpoint for e in mock_core.journal if "batches" in e.path} == {"batches"}


def mock_core_url(client: anthropic.AsyncAnthropic) -> str:
    return str(client.base_url).rstrip("/")


async def test_anthropic_cancel_and_expiry(
    ant: anthropic.AsyncAnthropic, mock_clock: FakeClock, mock_core: MockCore
) -> None:
    batch = await ant.messages.batches.create(requests=[an_req(f"q{i}") for i in range(5)])
    mock_clock.advance(1.25)
    batch = await ant.messages.batches.cancel(batch.id)
    assert batch.processing_status == "canceling" and batch.cancel_initiated_at is not None
    with pytest.raises(anthropic.BadRequestError, match="while it is processing"):
        await ant.messages.batches.delete(batch.id)
    mock_clock.advance(2)
    batch = await ant.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "ended"
    assert (batch.request_counts.succeeded, batch.request_counts.canceled) == (2, 3)
    kinds = [r.result.type async for r in await ant.messages.batches.results(batch.id)]
    assert kinds == ["succeeded", "succeeded", "canceled", "canceled", "canceled"]

    mock_core.configure(parse_config({"batch": {**TIMING, "expires": "1.15s"}}))
    batch = await ant.messages.batches.create(requests=[an_req("a"), an_req("b")])
    mock_clock.advance(3)
    batch = await ant.messages.batches.retrieve(batch.id)
    assert (batch.request_counts.succeeded, batch.request_counts.expired) == (1, 1)
    kinds = [r.result.type async for r in await ant.messages.batches.results(batch.id)]
    assert kinds == ["succeeded", "expired"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({}, "requests"),
        ({"requests": []}, "requests"),
        ({"requests": "x"}, "requests"),
        ({"requests": [{"params": {}}]}, "requests.0.custom_id"),
        ({"requests": [{"custom_id": "a b", "params": {}}]}, "requests.0.custom_id"),
        (
            {"requests": [{"custom_id": "a", "params": {}}, {"custom_id": "a", "params": {}}]},
            "requests.1.custom_id",
        ),
        ({"requests": [{"custom_id": "a", "params": []}]}, "requests.0.params"),
    ],
)
async def test_anthropic_request_errors_are_400_in_anthropic_shape(
    server: MockServer, body: dict[str, Any], where: str
) -> None:
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with httpx2.AsyncClient(base_url=server.base_urls["anthropic"], headers=headers) as h:
        r = await h.post("/v1/messages/batches", json=body)
        assert r.status_code == 400
        payload = r.json()
        assert payload["type"] == "error" and payload["error"]["type"] == "invalid_request_error"
        assert payload["error"]["message"].startswith(where), payload
        for method, path in [
            ("GET", "/v1/messages/batches/msgbatch_nope"),
            ("POST", "/v1/messages/batches/msgbatch_nope/cancel"),
            ("GET", "/v1/messages/batches?limit=0"),
        ]:
            r = await h.request(method, path)
            assert r.status_code in (400, 404) and r.json()["type"] == "error"


async def test_anthropic_results_before_the_end_are_refused(
    ant: anthropic.AsyncAnthropic, server: MockServer
) -> None:
    batch = await ant.messages.batches.create(requests=[an_req("a")])
    with pytest.raises(anthropic.AnthropicError, match="results_url"):
        await ant.messages.batches.results(batch.id)
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    async with httpx2.AsyncClient(base_url=server.base_urls["anthropic"], headers=headers) as h:
        r = await h.get(f"/v1/messages/batches/{batch.id}/results")
        assert r.status_code == 400 and "still processing" in r.json()["error"]["message"]


async def test_anthropic_list_pages(ant: anthropic.AsyncAnthropic) -> None:
    ids = [(await ant.messages.batches.create(requests=[an_req("a")])).id for _ in range(3)]
    page = await ant.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == ids[::-1][:2] and page.has_more
    assert [b.id async for b in ant.messages.batches.list(limit=2)] == ids[::-1]


# -- every front end ------------------------------------------------------------------------------


async def test_round_trips_through_every_front_end(sdk: SDK, mock_clock: FakeClock) -> None:
    oai, ant, _ = sdk.clients()
    batch = await submit(oai, [oa_line("a")])
    message_batch = await ant.messages.batches.create(requests=[an_req("b")])
    mock_clock.advance(60)
    batch = await oai.batches.retrieve(batch.id)
    assert batch.status == "completed"
    assert list(await lines_of(oai, batch.output_file_id)) == ["a"]
    results = [r async for r in await ant.messages.batches.results(message_batch.id)]
    assert [(r.custom_id, r.result.type) for r in results] == [("b", "succeeded")]


# -- configuration --------------------------------------------------------------------------------


def test_durations_and_fail_rules_validate() -> None:
    assert parse_duration("10ms") == pytest.approx(0.01) and parse_duration("24h") == 86400
    cfg = BatchConfig.model_validate({"per_item": "10ms", "validating": 2, "fail": [{"pattern": "^x"}]})
    assert cfg.per_item == pytest.approx(0.01) and cfg.validating == 2
    assert cfg.failure_for("openai", "xy") is not None and cfg.failure_for("openai", "yx") is None
    for bad, what in [
        ({"per_item": "soon"}, "batch.per_item"),
        ({"validating": -1}, "batch.validating"),
        ({"fail": [{"status": 500}]}, "exactly one of custom_id or pattern"),
        ({"fail": [{"pattern": "("}]}, "not a valid regular expression"),
        ({"fail": [{"custom_id": "a", "status": 200}]}, "batch.fail.0.status"),
    ]:
        with pytest.raises(ConfigError, match=what.replace("(", r"\(")):
            parse_config({"batch": bad})


async def test_reset_forgets_batches(mock_core: MockCore, oai: openai.AsyncOpenAI) -> None:
    await submit(oai, [oa_line("a")])
    assert mock_core.batches.batches and mock_core.batches.files
    mock_core.reset()
    assert not mock_core.batches.batches and not mock_core.batches.files


# -- invariants -----------------------------------------------------------------------------------

_ORDER = {"validating": 0, "in_progress": 1, "finalizing": 2, "cancelling": 3}


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(1, 6),
    expires=st.floats(0.0, 20.0),
    steps=st.lists(st.tuples(st.floats(0.0, 4.0), st.booleans()), min_size=1, max_size=12),
)
def test_life_cycle_invariants(n: int, expires: float, steps: list[tuple[float, bool]]) -> None:
    """Whatever the clock and cancels do: counts always add up, a status never goes back, a
    terminal batch has every item settled, and answered items stay answered."""
    timing = BatchConfig(validating=1, per_item=0.5, finalizing=1, cancelling=2, expires=expires)
    batch = Batch("b", "openai", 0.0, [Item(i, f"q{i}", {}) for i in range(n)], timing)
    now, last, answered = 0.0, -1, 0

    def answer(provider: str, item: Item, rid: str, at: float) -> tuple[int, Any]:
        assert at <= now
        return (200 if item.index % 2 else 500), {}

    for advance, cancel in steps:
        now += advance
        if cancel:
            batch.cancel(now)
        batch.settle(now, answer, lambda item: f"r{item.index}")
        status = batch.status(now)
        counts = batch.counts()
        assert sum(counts.values()) == n
        rank = _ORDER.get(status, 9)
        assert rank >= last or (last == 3 and rank == 9), (status, last)
        last = rank
        done = counts["succeeded"] + counts["errored"]
        assert done >= answered
        answered = done
        if batch.is_terminal(now):
            assert counts["processing"] == 0
            ended = batch.ended_at(now)
            assert ended is not None and ended <= now
        if status == "completed":
            assert counts["canceled"] == counts["expired"] == 0
