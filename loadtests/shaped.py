"""Locust entry point: the chat-completion users under a named load shape (``--shape``).

    locust -f loadtests/shaped.py --headless --host http://127.0.0.1:8080/v1 \\
        --shape 'spike:base=2,peak=20,warmup=20s,spike=10s,cooldown=20s'

The shape decides the user count and stops the run when it is over (``-u``, ``-r`` and ``-t`` do
not apply). The schedules themselves live in :mod:`loadtests.shapes`.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests.shapes import StepShape, parse_shape
from loadtests.users import ChatUser

__all__ = ["ChatUser", "NamedShape"]


class NamedShape(LoadTestShape):
    """Follows the schedule ``--shape`` names (default ``step``)."""

    _schedule = None

    def tick(self) -> tuple[int, float] | None:
        if self._schedule is None:
            options = self.runner.environment.parsed_options if self.runner else None
            spec = getattr(options, "shape", "") or StepShape.name
            self._schedule = parse_shape(spec)
        return self._schedule.tick(self.get_run_time())
