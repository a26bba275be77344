"""Real Locust runs (subprocesses, a few seconds each) against the mock's OpenAI endpoint.

They prove the locustfile end to end: streamed and whole answers validated with zero failures,
TTFT and chunk gaps as their own rows in the CSV output, the SLO gate's exit codes, and
distributed mode with one master and two workers on loopback.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from loadtest_procs import ROOT, SHAPED_LOCUSTFILE, free_port, run_locust, spawn_locust

from loadtests.slo import StatsRow, is_request_row, read_stats_csv


def rows_by_key(prefix: Path) -> dict[tuple[str, str], StatsRow]:
    return {(row.type, row.name): row for row in read_stats_csv(prefix)}


def common(host: str, users: int, seconds: int) -> list[str]:
    return [
        "--headless",
        "-u",
        str(users),
        "-r",
        str(users),
        "-t",
        f"{seconds}s",
        "--host",
        host,
        "--api-key",
        "sk-test",
        "--stream-share",
        "0.5",
        "--max-tokens",
        "16",
        "--request-timeout",
        "20",
        # let in-flight requests finish when the time is up, so even a starved run counts some
        "--stop-timeout",
        "20",
    ]


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"exit {result.returncode}\n--- stderr ---\n{result.stderr[-6000:]}\n"
        f"--- stdout ---\n{result.stdout[-3000:]}"
    )


def test_headless_run_with_csv_output_has_no_failures_and_measures_ttft(
    mock_openai: str, tmp_path: Path
) -> None:
    prefix = tmp_path / "run"
    result = run_locust(*common(mock_openai, 4, 5), "--csv", str(prefix), cwd=tmp_path)
    assert result.returncode == 0, explain(result)

    rows = rows_by_key(prefix)
    plain, stream = rows[("POST", "chat")], rows[("POST", "chat-stream")]
    ttft, gaps = rows[("TTFT", "chat-stream")], rows[("CHUNK_GAP", "chat-stream")]
    assert plain.requests > 0 and stream.requests > 0, rows
    assert sum(r.failures for r in rows.values()) == 0, rows
    assert ttft.requests == stream.requests  # every stream's first token was timed
    assert gaps.requests > 0
    assert ttft.percentile(0.5) >= 10  # the mock holds every first token for 10 ms
    assert not any(t == "FALLBACK" for t, _ in rows)  # the mock sends no x-turnout headers
    failures_csv = (tmp_path / "run_failures.csv").read_text().strip().splitlines()
    assert len(failures_csv) == 1, failures_csv  # the header only

    # the standalone checker reads the same CSVs
    def check(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "loadtests.slo", str(prefix), *args],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    lenient = check("--max-error-rate", "0", "--p99-ms", "60000", "--ttft-p99-ms", "60000")
    assert lenient.returncode == 0, lenient.stdout + lenient.stderr
    strict = check("--ttft-p50-ms", "1")
    assert strict.returncode == 1
    assert "SLO FAILED: p50 time to first token of TTFT chat-stream" in strict.stdout


def test_the_slo_gate_sets_the_exit_code(mock_openai: str, tmp_path: Path) -> None:
    # The two runs are independent: run them side by side to halve the wall time.
    strict_log, lenient_log = tmp_path / "strict.log", tmp_path / "lenient.log"
    runs = [
        spawn_locust(*common(mock_openai, 2, 3), "--slo-p99-ms", "1", cwd=tmp_path, log=strict_log),
        spawn_locust(
            *common(mock_openai, 2, 3),
            *("--slo-max-error-rate", "0.01", "--slo-p99-ms", "60000", "--slo-ttft-p99-ms", "60000"),
            cwd=tmp_path,
            log=lenient_log,
        ),
    ]
    try:
        codes = [run.wait(timeout=60) for run in runs]
    finally:
        for run in runs:
            if run.poll() is None:
                run.kill()
                run.wait(timeout=10)
    strict, lenient = strict_log.read_text(), lenient_log.read_text()
    assert codes[0] == 3, strict[-6000:]
    assert re.search(r"SLO FAILED: p99 latency of POST chat(-stream)? is \d+ ms > max 1 ms", strict)
    assert codes[1] == 0, lenient[-6000:]
    assert "SLO gate: PASS" in lenient


def test_bad_options_stop_the_run_before_it_starts(tmp_path: Path) -> None:
    result = run_locust(
        "--headless",
        "-u",
        "1",
        "-t",
        "1s",
        "--host",
        "http://127.0.0.1:9/v1",
        "--stream-share",
        "2",
        cwd=tmp_path,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--stream-share must be between 0 and 1" in result.stderr


def test_distributed_master_and_two_workers_on_loopback(mock_openai: str, tmp_path: Path) -> None:
    port = free_port()
    prefix = tmp_path / "dist"
    workers = [
        spawn_locust(
            "--worker",
            "--master-host",
            "127.0.0.1",
            "--master-port",
            str(port),
            cwd=tmp_path,
            log=tmp_path / f"worker{i}.log",
        )
        for i in range(2)
    ]
    try:
        master = run_locust(
            *common(mock_openai, 4, 5),
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(port),
            "--expect-workers",
            "2",
            "--expect-workers-max-wait",
            "30",
            "--csv",
            str(prefix),
            "--slo-max-error-rate",
            "0",  # the gate runs on the master, over the workers' merged statistics
            cwd=tmp_path,
            timeout=90,
        )
        codes = [w.wait(timeout=30) for w in workers]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait(timeout=10)
    worker_logs = "\n".join((tmp_path / f"worker{i}.log").read_text() for i in range(2))
    assert master.returncode == 0, explain(master) + worker_logs
    assert codes == [0, 0], worker_logs
    assert "SLO gate: PASS" in master.stderr

    reported = dict(re.findall(r"worker (\S+) reported (\d+) samples", master.stderr))
    assert len(reported) == 2, master.stderr  # both workers sent statistics
    assert all(int(n) > 0 for n in reported.values()), reported

    rows = rows_by_key(prefix)
    aggregated = rows[("", "Aggregated")]
    per_row = [r for r in rows.values() if is_request_row(r)]  # metric rows are not in the total
    assert sum(int(n) for n in reported.values()) == aggregated.requests  # the workers' shares add up
    assert sum(r.requests for r in per_row) == aggregated.requests  # and so do the rows
    assert rows[("POST", "chat")].requests > 0 and rows[("POST", "chat-stream")].requests > 0
    assert aggregated.failures == 0, rows


def test_a_step_shape_drives_the_user_count_and_stops_the_run_by_itself(
    mock_openai: str, tmp_path: Path
) -> None:
    prefix = tmp_path / "step"
    result = run_locust(
        "--headless",
        "--host",
        mock_openai,
        "--api-key",
        "sk-test",
        "--max-tokens",
        "8",
        "--shape",
        "step:users=2,every=1500ms,steps=2",
        "--csv",
        str(prefix),
        "--csv-full-history",
        cwd=tmp_path,
        timeout=45,
        locustfile=SHAPED_LOCUSTFILE,
    )  # fmt: skip  -- no -t: only the shape can end this run
    assert result.returncode == 0, explain(result)
    with (tmp_path / "step_stats_history.csv").open(encoding="utf-8") as file:
        users = {int(row["User Count"]) for row in csv.DictReader(file)}
    assert max(users) == 4, users  # two steps of two users
    rows = rows_by_key(prefix)
    assert rows[("POST", "chat")].requests > 0 and rows[("", "Aggregated")].failures == 0


def test_one_process_run_tables_csv_and_verdict_agree(mock_openai: str, tmp_path: Path) -> None:
    """Before: the Aggregated row counted TTFT and chunk-gap samples as requests; `_stats.csv`
    missed the run's last second; the SLO verdict came ~20 lines above the final tables."""
    prefix, log = tmp_path / "run", tmp_path / "run.log"
    run = spawn_locust(
        *common(mock_openai, 4, 4),
        "--csv",
        str(prefix),
        "--slo-max-error-rate",
        "0.01",
        cwd=tmp_path,
        log=log,
    )
    try:
        code = run.wait(timeout=60)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait(timeout=10)
    out = log.read_text()
    assert code == 0, out[-6000:]
    rows = rows_by_key(prefix)
    requests = rows[("POST", "chat")].requests + rows[("POST", "chat-stream")].requests
    assert rows[("", "Aggregated")].requests == requests  # requests only, no metric samples
    assert rows[("TTFT", "chat-stream")].requests == rows[("POST", "chat-stream")].requests
    # the final table (the last "Aggregated" line Locust prints) and the CSV count the same
    final = [line for line in out.splitlines() if line.strip().startswith("Aggregated")][-2]
    assert int(final.split()[1]) == requests, final
    lines = [line for line in out.splitlines() if line.strip()]
    last_table = max(i for i, line in enumerate(lines) if "Aggregated" in line)
    verdict = next(i for i, line in enumerate(lines) if "SLO gate: PASS" in line)
    assert verdict > last_table, "\n".join(lines[-30:])  # the verdict is the run's last word
