"""Parsing providers' retry and rate-limit headers: values, formats, and garbage that never raises."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from router.adapters import PROVIDERS
from router.headers import (
    MAX_RETRY_AFTER,
    RateLimitSnapshot,
    parse_duration,
    parse_retry_after,
    parse_should_retry,
)

NOW = 1_700_000_000.0


def parse_ratelimit_headers(kind: str, headers: dict[str, str], now: float) -> RateLimitSnapshot | None:
    """The dialect of ``kind``'s provider module (router.adapters), read as the router reads it."""
    return PROVIDERS[kind].ratelimits.parse(headers, now)


def quota_exhausted(kind: str, headers: dict[str, str]) -> bool:
    return PROVIDERS[kind].ratelimits.exhausted(headers)


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- retry-after ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "1.5"}, 1.5),
        ({"retry-after": "0"}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),  # ms first, like the OpenAI SDK
        ({"retry-after-ms": "soon", "retry-after": "9"}, 9.0),  # a bad ms falls through
        ({"Retry-After": "3"}, 3.0),  # case-insensitive on a plain dict
        ({"RETRY-AFTER-MS": "1000"}, 1.0),
        ({}, None),
        ({"retry-after": "-1"}, None),
        ({"retry-after": "soon"}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after-ms": "-5"}, None),
        ({"retry-after": ""}, None),
    ],
)
def test_parse_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert parse_retry_after(headers, NOW) == expected


def test_retry_after_as_http_date() -> None:
    when = datetime.fromtimestamp(NOW + 30, UTC)
    assert parse_retry_after({"retry-after": format_datetime(when, usegmt=True)}, NOW) == 30.0
    past = datetime.fromtimestamp(NOW - 30, UTC)
    assert parse_retry_after({"retry-after": format_datetime(past, usegmt=True)}, NOW) == 0.0


def test_retry_after_date_without_now_uses_the_wall_clock() -> None:
    soon = format_datetime(datetime.fromtimestamp(time.time() + 3600, UTC), usegmt=True)
    seconds = parse_retry_after({"retry-after": soon})
    assert seconds is not None and 3590 < seconds <= 3600


@pytest.mark.parametrize(
    "headers",
    [
        {"retry-after": "1e308"},
        {"retry-after-ms": "1e308"},
        {"retry-after": format_datetime(datetime(9999, 12, 31, tzinfo=UTC), usegmt=True)},
    ],
)
def test_an_absurd_retry_after_is_clamped(headers: dict[str, str]) -> None:
    assert parse_retry_after(headers, NOW) == MAX_RETRY_AFTER == 86400.0


def test_case_insensitive_mappings_are_used_as_they_are() -> None:
    proxy = CIMultiDictProxy(CIMultiDict({"Retry-After": "4", "X-Should-Retry": "false"}))
    assert parse_retry_after(proxy) == 4.0
    assert parse_should_retry(proxy) is False
    hx = httpx2.Headers({"Retry-After-Ms": "1500"})
    assert parse_retry_after(hx) == 1.5


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", True), ("false", False), ("TRUE", True), (" false ", False), ("yes", None), ("", None)],
)
def test_parse_should_retry(value: str, expected: bool | None) -> None:
    assert parse_should_retry({"x-should-retry": value}) is expected


def test_should_retry_absent() -> None:
    assert parse_should_retry({"retry-after": "1"}) is None


# --- durations -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6ms", 0.006),
        ("1s", 1.0),
        ("0.5s", 0.5),
        ("6m0s", 360.0),
        ("1h2m3.5s", 3723.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("0s", 0.0),
        ("1m30.5s", 90.5),
        ("250us", 0.00025),
        ("3µs", 0.000003),
        ("100ns", 1e-7),
        ("20", 20.0),  # a bare number is seconds
        ("1.5", 1.5),
        (" 1s ", 1.0),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", [None, "", "s", "1x", "-1s", "1s-", "1 s", "ms", "1..5s", "1e3s", "nan", "inf", "s1"]
)
def test_parse_duration_rejects(text: str | None) -> None:
    assert parse_duration(text) is None


def _go_duration(seconds: float) -> str:
    """Go's time.Duration.String() for a non-negative number of milliseconds."""
    if seconds < 1:
        return f"{round(seconds * 1000)}ms"
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    s_text = f"{s:.3f}".rstrip("0").rstrip(".")
    if h:
        return f"{int(h)}h{int(m)}m{s_text}s"
    if m:
        return f"{int(m)}m{s_text}s"
    return f"{s_text}s"


@given(st.integers(min_value=0, max_value=10 * 24 * 3600 * 1000))
def test_durations_round_trip(millis: int) -> None:
    seconds = millis / 1000
    assert parse_duration(_go_duration(seconds)) == pytest.approx(seconds, abs=1e-6)


@given(
    st.integers(0, 99),
    st.integers(0, 59),
    st.integers(0, 59),
    st.integers(0, 999),
)
def test_compound_durations_round_trip(h: int, m: int, s: int, ms: int) -> None:
    text = f"{h}h{m}m{s}.{ms:03d}s"
    assert parse_duration(text) == pytest.approx(h * 3600 + m * 60 + s + ms / 1000)


# --- rate-limit headers --------------------------------------------------------------------------

OPENAI = {
    "x-ratelimit-limit-requests": "500",
    "x-ratelimit-limit-tokens": "200000",
    "x-ratelimit-remaining-requests": "499",
    "x-ratelimit-remaining-tokens": "199000",
    "x-ratelimit-reset-requests": "120ms",
    "x-ratelimit-reset-tokens": "6m0s",
}


def test_openai_ratelimit_headers() -> None:
    snap = parse_ratelimit_headers("openai", OPENAI, NOW)
    assert snap == RateLimitSnapshot(
        remaining_requests=499,
        remaining_tokens=199000,
        limit_requests=500,
        limit_tokens=200000,
        reset_requests_s=0.12,
        reset_tokens_s=360.0,
    )


def test_openai_compatible_kinds_use_the_openai_names() -> None:
    snap = parse_ratelimit_headers("openai_compatible", {"X-RateLimit-Remaining-Requests": "0"}, NOW)
    assert snap == RateLimitSnapshot(remaining_requests=0)


def test_anthropic_ratelimit_headers() -> None:
    headers = {
        "anthropic-ratelimit-requests-limit": "50",
        "anthropic-ratelimit-requests-remaining": "0",
        "anthropic-ratelimit-requests-reset": _rfc3339(NOW + 2),
        "anthropic-ratelimit-tokens-limit": "40000",
        "anthropic-ratelimit-tokens-remaining": "39000",
        "anthropic-ratelimit-tokens-reset": "2023-11-14T22:13:50.5+00:00",  # fractional, offset
        "anthropic-ratelimit-input-tokens-remaining": "1",
    }
    snap = parse_ratelimit_headers("anthropic", headers, NOW)
    assert snap is not None
    assert (snap.limit_requests, snap.remaining_requests, snap.reset_requests_s) == (50, 0, 2.0)
    assert (snap.limit_tokens, snap.remaining_tokens) == (40000, 39000)
    assert snap.reset_tokens_s == pytest.approx(
        datetime(2023, 11, 14, 22, 13, 50, 500000, UTC).timestamp() - NOW
    )


def test_anthropic_input_tokens_when_tokens_are_missing() -> None:
    headers = {
        "anthropic-ratelimit-input-tokens-limit": "1000",
        "anthropic-ratelimit-input-tokens-remaining": "10",
        "anthropic-ratelimit-input-tokens-reset": _rfc3339(NOW - 5),  # already past: reset now
    }
    snap = parse_ratelimit_headers("anthropic", headers, NOW)
    assert snap == RateLimitSnapshot(remaining_tokens=10, limit_tokens=1000, reset_tokens_s=0.0)


def test_mistral_minute_headers() -> None:
    headers = {
        "x-ratelimit-limit-req-minute": "60",
        "x-ratelimit-remaining-req-minute": "59",
        "x-ratelimitbysize-limit-minute": "500000",
        "x-ratelimitbysize-remaining-minute": "499000",
        "x-ratelimit-reset": "42",
    }
    snap = parse_ratelimit_headers("mistral", headers, NOW)
    assert snap == RateLimitSnapshot(59, 499000, 60, 500000, 42.0, 42.0)


def test_mistral_with_openai_names() -> None:
    assert parse_ratelimit_headers("mistral", OPENAI, NOW) == parse_ratelimit_headers("openai", OPENAI, NOW)


def test_no_ratelimit_headers_is_none() -> None:
    for kind in ("openai", "anthropic", "mistral"):
        assert parse_ratelimit_headers(kind, {"content-type": "application/json"}, NOW) is None


def test_garbage_fields_read_as_absent() -> None:
    headers = {
        "x-ratelimit-remaining-requests": "lots",
        "x-ratelimit-remaining-tokens": "12.0",
        "x-ratelimit-reset-tokens": "soon",
    }
    snap = parse_ratelimit_headers("openai", headers, NOW)
    assert snap == RateLimitSnapshot(remaining_tokens=12)
    bad_date = {
        "anthropic-ratelimit-requests-remaining": "3",
        "anthropic-ratelimit-requests-reset": "tomorrow",
    }
    assert parse_ratelimit_headers("anthropic", bad_date, NOW) == RateLimitSnapshot(remaining_requests=3)


def test_negative_remaining_is_clamped() -> None:
    snap = parse_ratelimit_headers("openai", {"x-ratelimit-remaining-requests": "-3"}, NOW)
    assert snap == RateLimitSnapshot(remaining_requests=0)


# --- garbage never raises ------------------------------------------------------------------------

_NAMES = st.sampled_from(
    [
        "retry-after",
        "Retry-After-Ms",
        "x-should-retry",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-tokens",
        "x-ratelimit-reset",
        "x-ratelimit-remaining-req-minute",
        "anthropic-ratelimit-requests-reset",
        "anthropic-ratelimit-tokens-remaining",
        "anthropic-ratelimit-input-tokens-reset",
    ]
)
_VALUES = st.one_of(
    st.text(max_size=40),
    st.builds(
        "{}{}{}".format,
        st.sampled_from(["", "-", "+", " "]),
        st.one_of(st.integers(0, 10**30), st.floats(allow_nan=True, allow_infinity=True)),
        st.sampled_from(["", "ms", "s", "m", "h", "us", "e999", "ms1s", "s5"]),
    ),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: format_datetime(d, usegmt=True)),
)


@given(st.dictionaries(_NAMES, _VALUES, max_size=6), st.sampled_from(sorted(PROVIDERS)))
def test_garbage_headers_never_raise(headers: dict[str, str], kind: str) -> None:
    ra = parse_retry_after(headers, NOW)
    assert ra is None or (math.isfinite(ra) and ra >= 0)
    assert parse_should_retry(headers) in (True, False, None)
    snap = parse_ratelimit_headers(kind, headers, NOW)
    if snap is not None:
        for value in (snap.reset_requests_s, snap.reset_tokens_s):
            assert value is None or (math.isfinite(value) and value >= 0)
        for count in (snap.remaining_requests, snap.remaining_tokens):
            assert count is None or count >= 0


@given(st.text(max_size=40))
def test_garbage_durations_never_raise(text: str) -> None:
    value = parse_duration(text)
    assert value is None or (math.isfinite(value) and value >= 0)


_NAMES = [
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "anthropic-ratelimit-requests-remaining",
    "anthropic-ratelimit-tokens-remaining",
    "anthropic-ratelimit-tokens-limit",
    "anthropic-ratelimit-input-tokens-remaining",
    "x-ratelimit-remaining-req-minute",
    "x-ratelimitbysize-remaining-minute",
    "x-ratelimit-remaining-tokens-minute",
    "x-ratelimit-reset",
]


@pytest.mark.parametrize(
    ("kind", "headers", "expected"),
    [
        ("openai", {"X-RateLimit-Remaining-Requests": "0"}, True),
        ("openai", {"x-ratelimit-remaining-requests": "3", "x-ratelimit-remaining-tokens": "0"}, True),
        ("openai", {"x-ratelimit-remaining-requests": "3", "x-ratelimit-remaining-tokens": "90"}, False),
        ("openai", {"x-ratelimit-remaining-requests": "soon"}, False),
        ("openai_compatible", {"x-ratelimit-remaining-requests": "-1"}, True),
        ("anthropic", {"anthropic-ratelimit-input-tokens-remaining": "0"}, True),
        ("anthropic", {"x-ratelimit-remaining-requests": "0"}, False),  # not Anthropic's header
        ("mistral", {"x-ratelimitbysize-remaining-minute": "0.0"}, True),
        ("mistral", {}, False),
    ],
)
def test_quota_exhausted(kind: str, headers: dict[str, str], expected: bool) -> None:
    assert quota_exhausted(kind, headers) is expected


@given(
    kind=st.sampled_from(sorted(PROVIDERS)),
    headers=st.dictionaries(
        st.sampled_from(_NAMES), st.sampled_from(["0", "-1", "0.0", "0.9", "7", "x", "", "2s"])
    ),
)
def test_quota_exhausted_never_misses_a_zero_the_parser_sees(kind: str, headers: dict[str, str]) -> None:
    snap = parse_ratelimit_headers(kind, headers, 0.0)
    if snap is not None and 0 in (snap.remaining_requests, snap.remaining_tokens):
        assert quota_exhausted(kind, headers)
