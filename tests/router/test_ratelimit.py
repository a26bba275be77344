"""Client-side rate limits: token buckets on the fake clock, truthful waits, provider headers."""

from __future__ import annotations

import json
from collections import deque

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.clock import FakeClock
from router.headers import RateLimitSnapshot
from router.ratelimit import RateLimiter, estimate_tokens


class CountingClock(FakeClock):
    __slots__ = ("reads",)

    def __init__(self) -> None:
        super().__init__()
        self.reads = 0

    def now(self) -> float:
        self.reads += 1
        return super().now()


def test_unlimited_is_a_fast_path_that_never_reads_the_clock() -> None:
    clock = CountingClock()
    limiter = RateLimiter(None, None, clock)
    reads = clock.reads
    assert all(limiter.try_acquire(10**9) == 0.0 for _ in range(1000))
    assert clock.reads == reads
    assert limiter.headroom() == 1.0


def test_requests_burst_to_capacity_then_refill_continuously() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=None, clock=clock)
    assert all(limiter.try_acquire() == 0.0 for _ in range(60))
    assert limiter.try_acquire() == pytest.approx(1.0)  # one request a second refills
    clock.advance(0.5)
    assert limiter.try_acquire() == pytest.approx(0.5)
    clock.advance(0.5)
    assert limiter.try_acquire() == 0.0
    assert limiter.try_acquire() == pytest.approx(1.0)


def test_a_refusal_takes_nothing() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=2, tpm=100, clock=clock)
    assert limiter.try_acquire(90) == 0.0
    wait = limiter.try_acquire(50)
    assert wait == pytest.approx(40 / (100 / 60))
    for _ in range(5):
        assert limiter.try_acquire(50) == pytest.approx(wait)  # asking again costs nothing
    assert limiter.try_acquire(10) == 0.0  # what is left still fits


def test_tokens_larger_than_capacity_wait_for_a_full_bucket_then_go_into_debt() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=None, tpm=600, clock=clock)
    assert limiter.try_acquire(100) == 0.0
    assert limiter.try_acquire(1000) == pytest.approx(10.0)  # 100 tokens to refill at 10/s
    clock.advance(10.0)
    assert limiter.try_acquire(1000) == 0.0
    assert limiter.snapshot()["tokens_available"] == -400.0
    assert limiter.try_acquire(1) == pytest.approx(40.1)  # the debt is repaid first


def test_refund_and_commit_correct_the_estimate() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=10, tpm=1000, clock=clock)
    assert limiter.try_acquire(800) == 0.0
    limiter.commit(estimated=800, actual=300)  # 500 back
    assert limiter.snapshot()["tokens_available"] == 700
    limiter.commit(estimated=100, actual=400)  # 300 more than estimated
    assert limiter.snapshot()["tokens_available"] == 400
    limiter.refund(10_000, requests=5)  # never above capacity
    assert limiter.snapshot()["tokens_available"] == 1000
    assert limiter.snapshot()["requests_available"] == 10


def test_provider_zero_remaining_holds_requests_until_its_reset() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=600, tpm=None, clock=clock)
    limiter.observe(RateLimitSnapshot(remaining_requests=0, reset_requests_s=2.0))
    assert limiter.try_acquire() == pytest.approx(2.0)
    assert limiter.headroom() == 0.0
    clock.advance(2.0)
    assert limiter.try_acquire() == 0.0


def test_provider_headers_apply_without_configured_limits() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, None, clock)
    limiter.observe(RateLimitSnapshot(remaining_tokens=0, reset_tokens_s=3.0))
    assert limiter.try_acquire(5) == pytest.approx(3.0)
    assert limiter.snapshot()["blocked_for_s"] == pytest.approx(3.0)
    clock.advance(3.0)
    assert limiter.try_acquire(5) == 0.0
    assert limiter.try_acquire(5) == 0.0  # back on the fast path


def test_provider_headers_only_tighten() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=10, tpm=1000, clock=clock)
    limiter.observe(
        RateLimitSnapshot(remaining_requests=10_000, remaining_tokens=10**9, limit_requests=10**6)
    )
    assert limiter.snapshot()["requests_available"] == 10
    assert limiter.snapshot()["tokens_available"] == 1000
    limiter.observe(RateLimitSnapshot(remaining_requests=1, remaining_tokens=50))
    assert limiter.try_acquire(10) == 0.0
    assert limiter.try_acquire(10) > 0  # the provider said one request was left
    limiter.observe(RateLimitSnapshot(remaining_requests=3))  # remaining > level: no change
    assert limiter.snapshot()["requests_available"] == 0
    limiter.observe(RateLimitSnapshot(remaining_requests=0))  # no reset given: the bucket governs
    assert limiter.try_acquire() == pytest.approx(6.0)


def test_a_later_block_is_never_shortened() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, None, clock)
    limiter.observe(RateLimitSnapshot(remaining_requests=0, reset_requests_s=10.0))
    limiter.observe(RateLimitSnapshot(remaining_requests=0, reset_requests_s=1.0))
    assert limiter.try_acquire() == pytest.approx(10.0)


def test_headroom_and_snapshot() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=10, tpm=100, clock=clock)
    assert limiter.headroom() == 1.0
    limiter.try_acquire(75)
    assert limiter.headroom() == pytest.approx(0.25)  # the tighter of 0.9 and 0.25
    snap = limiter.snapshot()
    json.dumps(snap)
    assert snap == {
        "rpm": 10,
        "tpm": 100,
        "requests_available": 9.0,
        "tokens_available": 25.0,
        "blocked_for_s": 0.0,
        "headroom": 0.25,
    }


async def test_acquire_waits_on_the_clock_or_gives_up() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm=6, tpm=None, clock=clock)
    for _ in range(6):
        assert await limiter.acquire() == 0.0
    assert await limiter.acquire(max_wait=5.0) is None  # 10 s away: gives up, takes nothing
    assert clock.sleeps == []
    assert await limiter.acquire() == pytest.approx(10.0)
    assert clock.sleeps == [pytest.approx(10.0)]


@pytest.mark.parametrize(("rpm", "tpm"), [(0, None), (None, 0), (-5, None), (True, None)])
def test_bad_limits_are_refused(rpm: int | None, tpm: int | None) -> None:
    with pytest.raises(ValueError, match="positive"):
        RateLimiter(rpm, tpm, FakeClock())


def test_estimate_tokens() -> None:
    assert estimate_tokens(0, None) == 0
    assert estimate_tokens(4, None) == 1
    assert estimate_tokens(5, None) == 2  # rounds up: better to over-estimate
    assert estimate_tokens(4000, 256) == 1256
    assert estimate_tokens(-3, -1) == 0


def test_a_token_bucket_is_not_a_sliding_window() -> None:
    """Documented trade-off: after a full burst, the refill lets through about rpm more within the
    same 60 s, as the provider's own bucket would."""
    clock = FakeClock()
    limiter = RateLimiter(rpm=60, tpm=None, clock=clock)
    admitted = sum(limiter.try_acquire() == 0.0 for _ in range(100))
    for _ in range(59):
        clock.advance(1.0)
        admitted += limiter.try_acquire() == 0.0
    assert admitted == 60 + 59


# --- invariants ----------------------------------------------------------------------------------

steps = st.lists(
    st.tuples(st.floats(0, 30), st.integers(0, 5), st.integers(0, 3000)),  # advance, requests, tokens each
    max_size=60,
)


@given(st.integers(1, 50), st.one_of(st.none(), st.integers(1, 5000)), steps)
def test_never_more_than_a_full_bucket_plus_the_refill(
    rpm: int, tpm: int | None, plan: list[tuple[float, int, int]]
) -> None:
    """Any T seconds admit at most rpm + rpm*T/60 requests (and likewise tokens, debt aside)."""
    clock = FakeClock()
    limiter = RateLimiter(rpm, tpm, clock)
    admitted: deque[float] = deque()
    times: list[float] = []
    for advance, requests, tokens in plan:
        clock.advance(advance)
        for _ in range(requests):
            if limiter.try_acquire(tokens) == 0.0:
                times.append(clock.now())
    for i, start in enumerate(times):
        admitted.clear()
        for t in times[i:]:
            if t - start <= 60.0:
                admitted.append(t)
        span = admitted[-1] - start
        assert len(admitted) <= rpm + rpm * span / 60 + 1e-6


@given(
    st.one_of(st.none(), st.integers(1, 100)),
    st.one_of(st.none(), st.integers(1, 10_000)),
    st.lists(
        st.one_of(
            st.tuples(st.just("advance"), st.floats(0, 20)),
            st.tuples(st.just("acquire"), st.integers(0, 20_000)),
            st.tuples(st.just("refund"), st.integers(-500, 500)),
            st.tuples(
                st.just("observe"),
                st.builds(
                    RateLimitSnapshot,
                    remaining_requests=st.one_of(st.none(), st.integers(0, 200)),
                    remaining_tokens=st.one_of(st.none(), st.integers(0, 20_000)),
                    reset_requests_s=st.one_of(st.none(), st.floats(0, 60)),
                    reset_tokens_s=st.one_of(st.none(), st.floats(0, 60)),
                ),
            ),
        ),
        max_size=40,
    ),
)
def test_waits_are_truthful(rpm: int | None, tpm: int | None, ops: list[tuple[str, object]]) -> None:
    """Whatever happened before, waiting the returned time then asking again succeeds, and
    asking noticeably earlier does not."""
    clock = FakeClock()
    limiter = RateLimiter(rpm, tpm, clock)
    for op, arg in ops:
        if op == "advance":
            clock.advance(arg)  # type: ignore[arg-type]
        elif op == "refund":
            limiter.refund(arg)  # type: ignore[arg-type]
        elif op == "observe":
            limiter.observe(arg)  # type: ignore[arg-type]
        else:
            tokens: int = arg  # type: ignore[assignment]
            wait = limiter.try_acquire(tokens)
            assert wait >= 0.0
            if wait > 0.0:
                due = clock.now() + wait
                if wait > 0.01:
                    clock.advance(wait * 0.99)
                    assert limiter.try_acquire(tokens) > 0.0
                clock.advance(max(0.0, due - clock.now()))
                assert limiter.try_acquire(tokens) == 0.0
        assert 0.0 <= limiter.headroom() <= 1.0


@given(st.integers(1, 1000), st.floats(0.01, 120))
def test_a_refused_request_is_admitted_after_the_wait(rpm: int, gap: float) -> None:
    clock = FakeClock()
    limiter = RateLimiter(rpm, None, clock)
    while limiter.try_acquire() == 0.0:
        pass
    clock.advance(gap)
    wait = limiter.try_acquire()
    if wait > 0.0:  # else the gap was long enough and it went through at once
        clock.advance(wait)
        assert limiter.try_acquire() == 0.0
