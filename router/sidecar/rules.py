"""Render the shipped Prometheus rule file from the watcher's default rules.

python -m router.sidecar.rules > deploy/prometheus/turnout-alerts.yaml
"""

from __future__ import annotations

import yaml

from router.sidecar.alerts import AlertRule, default_rules, render_prometheus_rules

RULES_HEADER = """\
# Prometheus alerting rules for the turnout sidecar.
# Generated from router.sidecar.alerts.default_rules(), the same rules the sidecar's built-in
# watcher applies (alerts.webhook in the sidecar's YAML). Regenerate with:
#   python -m router.sidecar.rules > deploy/prometheus/turnout-alerts.yaml
# Load it from prometheus.yml:  rule_files: [turnout-alerts.yaml]
"""


def render_rules_file(rules: list[AlertRule] | None = None) -> str:
    """The text of deploy/prometheus/turnout-alerts.yaml."""
    body = render_prometheus_rules(default_rules() if rules is None else rules)
    return RULES_HEADER + yaml.safe_dump(body, sort_keys=False, width=1000)


if __name__ == "__main__":
    print(render_rules_file(), end="")
