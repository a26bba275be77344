"""Judging chat completions (whole and streamed) and reading the sidecar's routing headers."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from loadtests.validation import (
    Routing,
    StreamCheck,
    check_completion,
    check_completion_bytes,
    error_summary,
    routing_from_headers,
)
from turnout.sse import SSEEvent, SSEParser

GOOD: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


def mutated(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is None:
            body.pop(key)
        else:
            body[key] = value
    return body


def test_a_complete_answer_has_no_problems() -> None:
    assert check_completion(GOOD) == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (mutated(choices=[]), "empty choices"),
        (mutated(choices=None), "empty choices"),
        (mutated(model=None), "missing model"),
        (mutated(model=""), "missing model"),
        (mutated(usage=None), "missing usage"),
        (mutated(usage={"prompt_tokens": 1, "completion_tokens": "2"}), "usage.completion_tokens is not"),
        (mutated(usage={"prompt_tokens": True, "completion_tokens": 2}), "usage.prompt_tokens is not"),
        (mutated(object="chat.completion.chunk"), "object is 'chat.completion.chunk'"),
        (mutated(choices=[{"index": 0, "message": {"content": "x"}}]), "finish_reason is missing"),
        (mutated(choices=[{"index": 0, "finish_reason": "stop"}]), "message is missing"),
        (mutated(choices=["x"]), "choices[0] is not an object"),
        (
            {"error": {"type": "server_error", "code": "boom", "message": "down"}},
            "error body: server_error/boom",
        ),
        ([1, 2], "body is a JSON list"),
    ],
)
def test_an_incomplete_answer_names_what_is_missing(body: Any, problem: str) -> None:
    problems = check_completion(body)
    assert any(problem in p for p in problems), problems


def test_usage_and_content_requirements_can_be_relaxed_or_tightened() -> None:
    assert check_completion(mutated(usage=None), require_usage=False) == []
    empty = mutated(
        choices=[{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}]
    )
    assert check_completion(empty) == []
    assert check_completion(empty, require_content=True) == ["choices[0] has no content"]


def test_bytes_that_are_not_json_are_one_problem() -> None:
    assert check_completion_bytes(b"<html>")[1] == ["body is not JSON: JSONDecodeError"]
    assert check_completion_bytes(b"\xff")[1] == ["body is not JSON: UnicodeDecodeError"]
    body, problems = check_completion_bytes(json.dumps(GOOD).encode())
    assert body == GOOD
    assert problems == []


def chunk(content: str | None = None, finish: str | None = None, **extra: Any) -> str:
    delta = {"content": content} if content is not None else {}
    payload = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        "usage": None,
    }
    payload.update(extra)
    return json.dumps(payload)


USAGE = json.dumps(
    {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
)


def run_stream(*datas: str, **kwargs: Any) -> tuple[StreamCheck, list[str], list[bool]]:
    raw = "".join(f"data: {d}\n\n" for d in datas).encode()
    parser = SSEParser()
    check = StreamCheck(**kwargs)
    carried = [check.on_event(e) for e in parser.feed(raw)]
    return check, check.finish(cut_mid_event=parser.pending), carried


def test_a_complete_stream_has_no_problems_and_marks_content_chunks() -> None:
    check, problems, carried = run_stream(
        chunk(""), chunk("Hel"), chunk("lo"), chunk(finish="stop"), USAGE, "[DONE]"
    )
    assert problems == []
    assert carried == [False, True, True, False, False, False]
    assert (check.content_chunks, check.model, check.finish_reason) == (2, "gpt-4o-mini", "stop")


@pytest.mark.parametrize(
    ("datas", "problem"),
    [
        ((chunk("a"), chunk(finish="stop"), USAGE), "stream ended without [DONE]"),
        (
            (chunk("a"), '{"error": {"type": "server_error", "message": "x"}}', "[DONE]"),
            "in-band error: server_error",
        ),
        ((chunk("a"), "{not json", chunk(finish="stop"), USAGE, "[DONE]"), "malformed event (not JSON)"),
        ((chunk("a"), chunk(finish="stop"), "[DONE]"), "missing usage"),
        ((chunk("a"), chunk(finish="stop"), USAGE, "[DONE]", chunk("late")), "event after [DONE]"),
        ((chunk("a"), chunk(finish="stop", id="c2"), USAGE, "[DONE]"), "chunk id changed mid-stream"),
        ((chunk("a"), USAGE, "[DONE]"), "no finish_reason"),
        ((USAGE, "[DONE]"), "empty choices"),
        (("[DONE]",), "stream had no chunks"),
        (
            (
                chunk("a", model=None),
                chunk(finish="stop", model=None),
                USAGE.replace("gpt-4o-mini", ""),
                "[DONE]",
            ),
            "missing model",
        ),
        ((chunk("a", object="chat.completion"), chunk(finish="stop"), USAGE, "[DONE]"), "chunk object is"),
        (("[1]", chunk("a"), chunk(finish="stop"), USAGE, "[DONE]"), "malformed event (not a JSON object)"),
    ],
)
def test_an_incomplete_stream_names_what_went_wrong(datas: tuple[str, ...], problem: str) -> None:
    _, problems, _ = run_stream(*datas)
    assert any(problem in p for p in problems), problems


def test_a_stream_cut_mid_event_says_so() -> None:
    check = StreamCheck()
    parser = SSEParser()
    for event in parser.feed(f'data: {chunk("a")}\n\ndata: {{"id'.encode()):
        check.on_event(event)
    assert check.finish(cut_mid_event=parser.pending)[:2] == [
        "stream ended mid-event",
        "stream ended without [DONE]",
    ]


def test_an_anthropic_style_error_event_is_an_in_band_error() -> None:
    check = StreamCheck()
    check.on_event(SSEEvent('{"type": "error"}', event="error"))
    assert check.problems == ['in-band error event: {"type": "error"}']


def test_a_stream_without_content_fails_only_when_content_is_required() -> None:
    datas = (chunk(""), chunk(finish="stop"), USAGE, "[DONE]")
    assert run_stream(*datas)[1] == []
    assert run_stream(*datas, require_content=True)[1] == ["stream had no content"]
    assert run_stream(chunk("a"), chunk(finish="stop"), "[DONE]", require_usage=False)[1] == []


def test_routing_headers_are_read_in_any_case() -> None:
    routing = routing_from_headers(
        {
            "X-Turnout-Model": "mistral-small",
            "x-turnout-provider": "mistral",
            "X-TURNOUT-ATTEMPTS": "3",
            "content-type": "application/json",
        }
    )
    assert routing == Routing(model="mistral-small", provider="mistral", attempts=3)


@pytest.mark.parametrize("raw", ["0", "-1", "two", ""])
def test_a_malformed_attempts_header_is_a_problem(raw: str) -> None:
    routing = routing_from_headers({"x-turnout-attempts": raw})
    assert routing.attempts is None
    assert routing.problem == "x-turnout-attempts is not a positive integer"


def test_no_headers_means_no_fallback() -> None:
    routing = routing_from_headers({})
    assert routing == Routing()
    assert not routing.fell_back("a") and not routing.fell_back(None) and not routing.retried("a")


@pytest.mark.parametrize(
    ("routing", "primary", "fell_back", "retried"),
    [
        (Routing(model="b", attempts=2), "a", True, False),
        (Routing(model="b", attempts=1), "a", True, False),  # the first model was skipped (breaker open)
        (Routing(model="a", attempts=3), "a", False, True),  # retries on the first model
        (Routing(model="a", attempts=1), "a", False, False),
        (Routing(model="a", attempts=2), None, True, False),  # without the primary, attempts decide
        (Routing(model="a", attempts=1), None, False, False),
        (Routing(attempts=2), "a", True, False),
    ],
)
def test_fallbacks_and_retries_are_told_apart(
    routing: Routing, primary: str | None, fell_back: bool, retried: bool
) -> None:
    assert routing.fell_back(primary) is fell_back
    assert routing.retried(primary) is retried


def test_error_labels_prefer_the_stable_type_and_code() -> None:
    assert error_summary(
        {"error": {"type": "server_error", "code": "unavailable", "message": "retry in 0.7s"}}
    ) == ("server_error/unavailable")
    assert error_summary({"error": {"message": "x" * 100}}) == "x" * 80
    assert error_summary({"error": "plain"}) == "plain"
    assert error_summary({"detail": []}) == "error"
