"""The SLO gate: error rate, percentiles, Locust CSV reading, and the standalone checker's exit codes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from loadtests import slo
from loadtests.slo import SloError, StatsRow, Thresholds, check, read_stats_csv

HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,"
    "99.99%,100%"
)


def csv_row(kind: str, name: str, requests: int, failures: int, p50: float, p99: float) -> str:
    pcts = [p50, p50, p50, p50, p50, p99, p99, p99, p99, p99, p99]
    return ",".join(
        [
            kind,
            name,
            str(requests),
            str(failures),
            str(p50),
            str(p50),
            "1",
            str(p99),
            "100",
            "5",
            "0",
            *(f"{p:g}" for p in pcts),
        ]
    )


def write_csv(tmp_path: Path, *rows: str) -> Path:
    prefix = tmp_path / "run"
    (tmp_path / "run_stats.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    return prefix


ROWS = [
    StatsRow("POST", "chat", 90, 1, {0.5: 20.0, 0.99: 120.0}),
    StatsRow("POST", "chat-stream", 10, 1, {0.5: 200.0, 0.99: 900.0}),
    StatsRow("TTFT", "chat-stream", 10, 0, {0.5: 15.0, 0.99: 40.0}),
    StatsRow("CHUNK_GAP", "chat-stream", 300, 0, {0.99: 9.0}),
    StatsRow("FALLBACK", "a -> b", 500, 0, {0.99: 99999.0}),
    StatsRow("", "Aggregated", 910, 2, {0.99: 99999.0}),
]


def test_the_error_rate_counts_request_rows_only() -> None:
    assert check(ROWS, Thresholds(max_error_rate=0.02)).ok  # 2/100, metric rows do not dilute it
    report = check(ROWS, Thresholds(max_error_rate=0.019))
    assert report.violations == ["error rate 2.00% (2/100) > max 1.90%"]


def test_latency_percentiles_are_checked_row_by_row() -> None:
    report = check(ROWS, Thresholds(latency_ms={0.99: 500.0}))
    assert report.violations == ["p99 latency of POST chat-stream is 900 ms > max 500 ms"]
    assert report.passed == ["p99 latency of POST chat is 120 ms <= max 500 ms"]
    assert check(ROWS, Thresholds(latency_ms={0.5: 200.0, 0.99: 900.0})).ok


def test_ttft_and_chunk_gap_have_their_own_thresholds() -> None:
    assert check(ROWS, Thresholds(ttft_ms={0.99: 40.0}, chunk_gap_ms={0.99: 9.0})).ok
    report = check(ROWS, Thresholds(ttft_ms={0.5: 10.0}, chunk_gap_ms={0.99: 8.0}))
    assert report.violations == [
        "p50 time to first token of TTFT chat-stream is 15 ms > max 10 ms",
        "p99 chunk gap of CHUNK_GAP chat-stream is 9 ms > max 8 ms",
    ]


def test_a_threshold_on_a_metric_that_was_never_measured_fails() -> None:
    report = check(ROWS[:2], Thresholds(ttft_ms={0.99: 1000.0}))
    assert report.violations == ["no time to first token was measured, but thresholds were set for it"]


def test_too_few_requests_fail_a_gate_that_checks_anything() -> None:
    assert check([], Thresholds()).ok  # nothing asked, nothing judged
    report = check([StatsRow("POST", "chat", 0, 0)], Thresholds(max_error_rate=0.5))
    assert report.violations == ["only 0 request(s) were made, at least 1 needed"]
    assert not check(ROWS, Thresholds(max_error_rate=1.0, min_requests=101)).ok


def test_a_percentile_the_statistics_lack_is_an_error_not_a_pass() -> None:
    with pytest.raises(SloError, match=r"POST chat: no p97 percentile in the statistics \(have p50, p99\)"):
        check(ROWS, Thresholds(latency_ms={0.97: 1000.0}))


def test_render_leads_with_the_verdict() -> None:
    text = check(ROWS, Thresholds(max_error_rate=0.0)).render()
    assert text.splitlines()[0] == "SLO gate: FAIL (1 threshold(s) passed)"
    assert "SLO FAILED: error rate 2.00% (2/100) > max 0.00%" in text


def test_read_stats_csv_takes_a_prefix_or_the_file(tmp_path: Path) -> None:
    prefix = write_csv(
        tmp_path,
        csv_row("POST", "chat", 10, 1, 20, 120),
        "TTFT,chat-stream,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A",
    )
    rows = read_stats_csv(prefix)
    assert rows == read_stats_csv(f"{prefix}_stats.csv")
    assert rows[0] == StatsRow(
        "POST",
        "chat",
        10,
        1,
        {
            0.5: 20,
            0.66: 20,
            0.75: 20,
            0.8: 20,
            0.9: 20,
            0.95: 120,
            0.98: 120,
            0.99: 120,
            0.999: 120,
            0.9999: 120,
            1.0: 120,
        },
    )
    assert rows[0].percentile(0.999) == 120
    assert rows[1].percentiles == {}


def test_read_stats_csv_errors_name_the_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(SloError, match=r"cannot read .*nope_stats\.csv"):
        read_stats_csv(tmp_path / "nope")
    (tmp_path / "x_stats.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SloError, match="not a Locust stats CSV"):
        read_stats_csv(tmp_path / "x")
    prefix = write_csv(tmp_path, csv_row("POST", "chat", 10, 1, 20, 120).replace(",10,", ",ten,", 1))
    with pytest.raises(SloError, match=r"run_stats.csv:2: bad number"):
        read_stats_csv(prefix)


def test_the_standalone_checker_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prefix = str(write_csv(tmp_path, csv_row("POST", "chat", 100, 1, 20, 120)))
    assert slo.main([prefix, "--max-error-rate", "0.01", "--p99-ms", "120"]) == 0
    assert "SLO gate: PASS" in capsys.readouterr().out
    assert slo.main([prefix, "--max-error-rate", "0.005"]) == 1
    assert "SLO FAILED: error rate 1.00% (1/100) > max 0.50%" in capsys.readouterr().out
    assert slo.main([prefix, "--p99-ms", "100"]) == 1
    assert slo.main([str(tmp_path / "missing"), "--p99-ms", "100"]) == 2
    assert "cannot read" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        slo.main([prefix])
    assert info.value.code == 2
    assert "no threshold given" in capsys.readouterr().err


def test_options_with_a_prefix_and_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_SLO_P99_MS", "1500")
    monkeypatch.setenv("TURNOUT_SLO_MIN_REQUESTS", "5")
    parser = argparse.ArgumentParser()
    slo.add_arguments(parser, prefix="slo-")
    options = parser.parse_args(["--slo-max-error-rate", "0.01", "--slo-ttft-p99-ms", "800"])
    assert slo.thresholds_from_options(options, prefix="slo-") == Thresholds(
        max_error_rate=0.01, latency_ms={0.99: 1500.0}, ttft_ms={0.99: 800.0}, min_requests=5
    )
    assert not slo.thresholds_from_options(argparse.Namespace()).enabled


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_SLO_MAX_ERROR_RATE", "one percent")
    with pytest.raises(
        SloError, match="TURNOUT_SLO_MAX_ERROR_RATE='one percent': 'one percent' is not a number"
    ):
        slo.add_arguments(argparse.ArgumentParser())
    monkeypatch.setenv("TURNOUT_SLO_MAX_ERROR_RATE", "2")
    with pytest.raises(SloError, match="TURNOUT_SLO_MAX_ERROR_RATE='2': 2 is not a rate between 0 and 1"):
        slo.add_arguments(argparse.ArgumentParser())


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--max-error-rate", "2"], "argument --max-error-rate: 2 is not a rate between 0 and 1"),
        (["--max-error-rate", "-1"], "argument --max-error-rate: -1 is not a rate between 0 and 1"),
        (["--max-error-rate", "nan"], "'nan' is not a finite number"),
        (["--p99-ms", "0"], "argument --p99-ms: 0 is not a positive number of milliseconds"),
        (["--ttft-p95-ms", "-5"], "argument --ttft-p95-ms: -5 is not a positive number"),
        (["--max-error-rate", "0.1", "--min-requests", "-3"], "argument --min-requests: -3 is negative"),
    ],
)
def test_out_of_range_thresholds_exit_2_before_judging(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `--max-error-rate 2` passed 100 % errors (`<= max 200.00%`), and `-1` ran and failed."""
    prefix = str(write_csv(tmp_path, csv_row("POST", "chat", 100, 100, 20, 120)))
    with pytest.raises(SystemExit) as info:
        slo.main([prefix, *argv])
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_the_checker_runs_as_a_module_without_a_warning(tmp_path: Path) -> None:
    """Before: every `python -m loadtests.slo` printed runpy's RuntimeWarning (the package imported
    loadtests.slo before runpy ran it)."""
    import subprocess
    import sys

    prefix = str(write_csv(tmp_path, csv_row("POST", "chat", 100, 0, 20, 120)))
    result = subprocess.run(
        [sys.executable, "-W", "error", "-m", "loadtests.slo", prefix, "--max-error-rate", "0.01"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "SLO gate: PASS" in result.stdout
