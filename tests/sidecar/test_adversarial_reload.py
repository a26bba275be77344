"""Issue 14's reload and secrets cases: `server:` applied or the reload refused naming the
settings, an admin key for /admin/, YAML errors that quote no key, a scrubber that matches words."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from router.config import ConfigError
from router.sidecar import create_app
from router.sidecar.config import load
from router.sidecar.serve import make_factory
from router.sidecar.server import SidecarServer
from router.sidecar.settings import secret_values

OLD, NEW, ADMIN = "client-key-old-1", "client-key-new-2", "admin-key-0042"
PROVIDER_KEY = "sk-provider-TOPSECRET-123456"


def config(**server: Any) -> dict[str, Any]:
    return {
        "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", "api_key": PROVIDER_KEY}},
        "models": {"gpt-tokens": {"provider": "p", "model": "gpt-4o-mini"}},
        "routes": {"main": {"chain": ["gpt-tokens"]}},
        "server": {"api_keys": [OLD], **server},
    }


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Path, SidecarServer]]:
    path = tmp_path / "turnout.yaml"
    path.write_text(yaml.safe_dump(config()))
    server = SidecarServer(create_app(load(path).settings, make_factory(str(path), None)))
    await server.start_server()
    yield path, server
    await server.close()


async def call(server: SidecarServer, method: str, path: str, key: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as s,
        s.request(method, server.make_url(path), headers={"Authorization": f"Bearer {key}"}) as r,
    ):
        return r.status, await r.json(content_type=None)


async def test_a_reload_applies_new_client_keys(served: tuple[Path, SidecarServer]) -> None:
    path, server = served
    assert (await call(server, "GET", "/v1/models", OLD))[0] == 200
    path.write_text(yaml.safe_dump(config(api_keys=[NEW], max_concurrency=7)))
    status, body = await call(server, "POST", "/admin/reload", OLD)
    assert (
        status == 200 and "server.api_keys" in body["message"] and "server.max_concurrency" in body["message"]
    )
    assert (await call(server, "GET", "/v1/models", OLD))[0] == 401  # revoked
    assert (await call(server, "GET", "/v1/models", NEW))[0] == 200  # the new one works


async def test_a_reload_that_needs_a_restart_is_refused_naming_the_settings(
    served: tuple[Path, SidecarServer],
) -> None:
    path, server = served
    path.write_text(yaml.safe_dump(config(port=9999, max_body_bytes=4096, api_keys=[NEW])))
    status, body = await call(server, "POST", "/admin/reload", OLD)
    assert status == 400
    message = body["error"]["message"]
    assert "server.port" in message and "server.max_body_bytes" in message and "restart" in message
    assert (await call(server, "GET", "/v1/models", OLD))[0] == 200  # nothing was applied


async def test_an_admin_key_guards_admin_and_client_keys_do_not_suffice(
    served: tuple[Path, SidecarServer],
) -> None:
    path, server = served
    path.write_text(yaml.safe_dump(config(admin_keys=[ADMIN])))
    assert (await call(server, "POST", "/admin/reload", OLD))[0] == 200  # the last reload a client key may do
    assert (await call(server, "GET", "/admin/state", OLD))[0] == 401
    assert (await call(server, "POST", "/admin/reload", OLD))[0] == 401
    assert (await call(server, "GET", "/admin/state", ADMIN))[0] == 200
    assert (await call(server, "GET", "/v1/models", OLD))[0] == 200  # /v1 still takes client keys


async def test_a_yaml_error_on_reload_quotes_no_key(served: tuple[Path, SidecarServer]) -> None:
    path, server = served
    path.write_text(f"providers:\n  p: {{kind: openai, api_key: {PROVIDER_KEY}-NEW base_url: [\n")
    status, body = await call(server, "POST", "/admin/reload", OLD)
    assert status == 400
    assert "line 2" in body["error"]["message"] and PROVIDER_KEY not in body["error"]["message"]


async def test_the_scrubber_matches_key_names_as_words(served: tuple[Path, SidecarServer]) -> None:
    _, server = served
    status, body = await call(server, "GET", "/admin/state", OLD)
    assert status == 200
    text = str(body)
    assert "gpt-tokens" in text and "***" not in text.replace(PROVIDER_KEY, "")
    assert secret_values(config()) == {PROVIDER_KEY, OLD}


def test_an_audit_path_that_is_a_directory_fails_the_check(tmp_path: Path) -> None:
    path = tmp_path / "turnout.yaml"
    path.write_text(yaml.safe_dump({**config(), "audit": {"path": str(tmp_path)}}))
    with pytest.raises(ConfigError, match=r"audit\.path: .*is a directory"):
        load(path)
