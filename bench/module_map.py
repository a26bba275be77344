"""Which of turnout's modules one sidecar request runs: the map behind "a request touches N modules".

    .venv/bin/python bench/module_map.py [--json]

Starts ``turnout mock`` in a child process and the sidecar in this one (the same stack as
``turnout serve``: :class:`router.sidecar.server.SidecarServer` over a real :class:`router.Router`
with one route to the mock), sends one non-streamed and one streamed chat request as warm-up
(start-up and first-call imports are not what a request costs), then sends them again with
``sys.setprofile`` on and lists the project modules that had a function called while each was
in flight. The client is a plain aiohttp session, so only the sidecar's work is seen.

Run it on two checkouts (``PYTHONPATH=CHECKOUT``) to compare the maps before and after a change.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from types import FrameType
from typing import Any

from _common import free_port, start_mock, wait_port

KEY = "map-client-key"
BODY = {"model": "chat", "messages": [{"role": "user", "content": "Say hello"}], "max_tokens": 16}


class Tracer:
    """A ``sys.setprofile`` hook that keeps the project modules whose functions were called."""

    def __init__(self, root: Path) -> None:
        self.root = str(root) + "/"
        self.modules: set[str] = set()
        # the project's packages (not the virtualenv, the tests, or this script)
        self.packages = {
            p.name
            for p in root.iterdir()
            if (p / "__init__.py").exists() and p.name not in ("bench", "tests")
        }
        self._seen: dict[str, str | None] = {}

    def _module(self, filename: str) -> str | None:
        if not filename.startswith(self.root):
            return None
        rel = filename[len(self.root) :]
        top = rel.split("/", 1)[0]
        if not rel.endswith(".py") or "/" not in rel or top not in self.packages:
            return None
        name = rel[:-3].replace("/", ".")
        return name[: -len(".__init__")] if name.endswith(".__init__") else name

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "call":
            return
        filename = frame.f_code.co_filename
        module = self._seen.get(filename, "")
        if module == "":
            module = self._seen[filename] = self._module(filename)
        if module is not None:
            self.modules.add(module)


async def _request(session: Any, url: str, stream: bool) -> str:
    body = {**BODY, "stream": stream}
    async with session.post(url, json=body, headers={"Authorization": f"Bearer {KEY}"}) as resp:
        text = await resp.text()
        if resp.status != 200:
            raise RuntimeError(f"sidecar answered {resp.status}: {text}")
        return text


async def _main(mock_url: str, root: Path) -> dict[str, list[str]]:
    import aiohttp

    from router import Router, parse_config
    from router.sidecar import Built, SidecarSettings, create_app
    from router.sidecar.server import SidecarServer

    config = parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": f"{mock_url}/openai/v1", "api_key": "sk-map"}
            },
            "models": {"gpt-4o-mini": {"provider": "openai", "model": "gpt-4o-mini"}},
            "routes": {"chat": {"chain": ["gpt-4o-mini"]}},
            "defaults": {"retries": 0},
        }
    )
    settings = SidecarSettings.model_validate({"server": {"api_keys": [KEY]}})
    server = SidecarServer(create_app(settings, lambda: Built(Router(config))))
    await server.start_server()
    url = str(server.make_url("/v1/chat/completions"))
    tracer = Tracer(root)
    found: dict[str, list[str]] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for stream in (False, True):  # warm-up: first-call imports and caches
                await _request(session, url, stream)
            for stream in (False, True):
                tracer.modules = set()
                sys.setprofile(tracer)
                try:
                    await _request(session, url, stream)
                finally:
                    sys.setprofile(None)
                found["streamed" if stream else "non-streamed"] = sorted(tracer.modules)
    finally:
        await server.close()
    found["either"] = sorted({m for mods in found.values() for m in mods})
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the map as JSON")
    args = parser.parse_args()
    import router

    root = Path(router.__file__).resolve().parent.parent
    port = free_port()
    child = start_mock(port)
    try:
        wait_port(port, child, "turnout mock", poll=0.1)
        found = asyncio.run(_main(f"http://127.0.0.1:{port}", root))
    finally:
        child.terminate()
        child.wait(timeout=10)
    if args.json:
        print(json.dumps(found, indent=2))
        return 0
    print(f"checkout: {root}")
    for kind, mods in found.items():
        print(f"{kind}: {len(mods)} modules")
        for m in mods:
            print(f"  {m}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
