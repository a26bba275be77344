"""One duration grammar for every package: the strict reader for values people write, the
lenient one for provider headers (tests/router/test_headers.py covers the Go-style shapes)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from turnout.durations import MAX_SECONDS, Duration, parse_duration, read_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("60s", 60.0),
        ("1.5s", 1.5),
        ("200ms", 0.2),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("1m30s", 90.0),
        (3, 3.0),
        (0.25, 0.25),
        ("3", 3.0),
        (" 10s ", 10.0),
        (0, 0.0),
    ],
)
def test_parse_duration(value: str | float, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "value", ["", "soon", "10 seconds", "-1s", "1x", "s", "nan", -1, math.inf, math.nan, True]
)
def test_parse_duration_rejects_with_a_clear_message(value: str | float) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_parse_duration_rejects_other_types() -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(None)  # type: ignore[arg-type]


@given(st.text(max_size=20))
def test_parse_duration_raises_only_value_error(text: str) -> None:
    try:
        seconds = parse_duration(text)
    except ValueError as e:
        assert repr(text) in str(e)
    else:
        assert math.isfinite(seconds) and seconds >= 0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1m 30s", 90.0), ("30 s", 30.0), ("1d", 86400.0), ("1.5h", 5400.0), ("250ms", 0.25), ("300us", 3e-4)],
)
def test_spaces_between_parts_days_and_every_unit(value: str, seconds: float) -> None:
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["1 2", "10 seconds", "1m-30s", "30 s s"])
def test_spaces_inside_a_number_or_a_word_are_not_a_duration(value: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(value)


def test_more_than_a_year_is_refused_and_the_limit_is_adjustable() -> None:
    with pytest.raises(ValueError, match="at most"):
        parse_duration(MAX_SECONDS + 1)
    with pytest.raises(ValueError, match=r"invalid duration '2s': at most 1 seconds"):
        parse_duration("2s", max_seconds=1)
    assert parse_duration("367d", max_seconds=math.inf) == 367 * 86400


def test_read_duration_never_raises_and_reads_bad_values_as_none() -> None:
    assert read_duration("6m0s") == 360.0
    assert read_duration(None) is None
    assert [read_duration(v) for v in ("-1s", "soon", "", "inf")] == [None, None, None, None]


class _Model(BaseModel):
    wait: Duration


def test_the_pydantic_field_type_names_the_field_and_the_value() -> None:
    assert _Model(wait="2s").wait == 2.0
    with pytest.raises(ValidationError, match=r"wait\n.*invalid duration 'later'"):
        _Model(wait="later")


def test_the_sidecars_drain_timeout_takes_a_duration_string_too() -> None:
    from router.sidecar.settings import SettingsError, parse_settings

    assert parse_settings({"server": {"drain_timeout": "1m30s"}}, source="s.yaml").server.drain_timeout == 90
    assert parse_settings({"server": {"drain_timeout": 2.5}}, source="s.yaml").server.drain_timeout == 2.5
    with pytest.raises(SettingsError, match=r"s\.yaml: server\.drain_timeout: .*invalid duration 'soon'"):
        parse_settings({"server": {"drain_timeout": "soon"}}, source="s.yaml")
