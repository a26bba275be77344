"""Run inside a virtualenv where only `pip install turnout` (no extras) was done: the router library
serves a request (through the mock provider over a loopback socket), and no drill, Locust or
in-process-mock dependency was pulled in."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from pathlib import Path

LEFT_OUT = ("matplotlib", "tqdm", "respx", "locust", "redis")


async def serve_one() -> str:
    from mockproviders.server import MockServer
    from router import ChatRequest, Message, Router, parse_config

    async with MockServer() as mock:
        openai = {"kind": "openai", "base_url": mock.base_urls["openai"], "api_key": "k"}
        gpt = {"provider": "openai", "model": "gpt-4o-mini"}
        config = parse_config({"providers": {"openai": openai}, "models": {"gpt": gpt}})
        async with Router(config) as router:
            answer = await router.complete(ChatRequest(model="gpt", messages=[Message("user", "Hello?")]))
    assert answer.content and answer.model == "gpt", answer
    return answer.content


def main() -> int:
    pulled = [name for name in LEFT_OUT if importlib.util.find_spec(name) is not None]
    if pulled:
        print(f"lean install pulled {pulled}", file=sys.stderr)
        return 1
    print("router answered:", asyncio.run(serve_one())[:60])
    turnout = str(Path(sys.executable).parent / "turnout")
    drill = subprocess.run([turnout, "drill", "x.yaml"], capture_output=True, text=True, check=False)
    if drill.returncode != 2 or "turnout[drills]" not in drill.stderr:
        print(f"turnout drill without its extra: {drill.returncode} {drill.stderr!r}", file=sys.stderr)
        return 1
    print("turnout drill says:", drill.stderr.strip()[:100])
    return 0


if __name__ == "__main__":
    sys.exit(main())
