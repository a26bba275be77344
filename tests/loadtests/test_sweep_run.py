"""A real capacity sweep (``turnout sweep``, Locust in a subprocess) against a known quota.

``turnout mock --profile`` gives the only deployment 600 requests a minute (10 req/s, enforced
over 0.5 s: a bucket of 5 refilled at 10 a second, so a 4 s step at 12 req/s exhausts it) and
``turnout serve`` routes ``chat`` to it with no fallback. Past 10 req/s the mock
answers 429 with ``retry-after: 1``, so requests wait at least a second or fail: with a p99 SLO
of 800 ms the knee must land between 8 and 12 req/s. Four short steps (4, 8, 12, then 10) keep
the run near 20 s; the 3,000 rpm check of the README takes longer steps and is documented there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from loadtest_procs import Service, start_mock, start_service, subprocess_env

PROFILE = """\
enforce: 500ms
providers:
  openai:
    limits: {rpm: 600}
    speed: {ttft: 20ms, tokens_per_second: 2000}
"""

SIDECAR = """\
providers:
  openai: {{kind: openai, base_url: "{mock}", api_key: sk-test}}
models:
  only: {{provider: openai, model: gpt-4o-mini}}
routes:
  chat: {{chain: [only], buffer_stream: false}}
"""


def test_the_knee_of_a_10_rps_quota_lands_near_10_rps(tmp_path: Path, services: list[Service]) -> None:
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE, encoding="utf-8")
    mock = start_mock(tmp_path, None, "--profile", str(profile))
    services.append(mock)
    config = tmp_path / "router.yaml"
    config.write_text(SIDECAR.format(mock=mock.url), encoding="utf-8")
    sidecar = start_service(
        "sidecar",
        ["serve", "--config", str(config), "--port", "0"],
        tmp_path,
        url_pattern=r"listening on (http://\S+/v1)",
        health=lambda url: url.rsplit("/v1", 1)[0] + "/readyz",
    )
    services.append(sidecar)
    out = tmp_path / "report"
    result = subprocess.run(
        [sys.executable, "-m", "turnout", "sweep", "--host", sidecar.url, "--model", "chat",
         "--primary-model", "only", "--max-tokens", "16", "--slo-max-error-rate", "0.01",
         "--slo-p99-ms", "800", "--start", "4", "--step", "+4", "--max", "16", "--max-steps", "4",
         "--step-time", "3s", "--warmup", "1s", "--drain-timeout", "8s", "--arrivals", "constant",
         "--require", "20rps", "--out", str(out), "--loglevel", "INFO"],
        cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    context = f"exit {result.returncode}\n{result.stderr[-5000:]}"
    summary = json.loads((out / "sweep.json").read_text(encoding="utf-8"))
    assert result.returncode == 1, context  # the knee is below --require 20rps
    assert summary["order"] == [4, 8, 12, 10], context
    knee = summary["knee"]
    assert knee["outcome"] == "found" and 8 <= knee["held"] <= 10 < knee["broken"] <= 12, summary
    assert "require 20 req/s: FAIL" in result.stderr and "knee: " in result.stderr, context
    steps = {s["rate"]: s for s in summary["steps"]}
    assert steps[4]["held"] and steps[8]["held"] and not steps[12]["held"], context
    # the router's own count covers the warm-up too: every request of the step, and no other model
    assert (
        list(steps[4]["deployments"]) == ["only"] and steps[4]["deployments"]["only"] >= steps[4]["requests"]
    )
    assert steps[8]["cost_per_hour"] > steps[4]["cost_per_hour"] > 0
    assert "open loop, constant arrivals" in summary["load"]
    assert (out / "sweep.md").is_file() and "<svg" in (out / "sweep.html").read_text(encoding="utf-8")
