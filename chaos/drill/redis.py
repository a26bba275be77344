"""A redis-server of the drill's own, for replicas that share state (``router.shared_state``).

Started on a free loopback port with no persistence, so a restart comes back empty, as a Redis
that lost its data would. Needs the ``redis-server`` binary (Debian: ``apt-get install
redis-server``; CI installs it).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import tempfile


class DrillRedis:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "this drill shares state in Redis: install redis-server (apt-get install redis-server)"
            )
        self.binary = binary
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.dir = tempfile.mkdtemp(prefix="turnout-drill-redis-")
        self.proc: subprocess.Popen[bytes] | None = None
        self.restarts: list[tuple[float, float]] = []  # (killed at, back at), drill seconds

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [
                *(self.binary, "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--dir", self.dir, "--loglevel", "warning"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self) -> None:
        self.proc = self._spawn()
        for _ in range(500):  # up to 5 s for it to answer
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    break
                await asyncio.sleep(0.01)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    async def restart(self, at: float, down_for: float, now: float) -> None:
        """Kill it ``at`` seconds into the drill (``now`` is the time so far) and start it again
        ``down_for`` later."""
        await asyncio.sleep(max(0.0, at - now))
        self.kill()
        await asyncio.sleep(down_for)
        await self.start()
        self.restarts.append((at, at + down_for))

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)
