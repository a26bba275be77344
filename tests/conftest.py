"""Test-wide set-up.

The official SDKs (openai, anthropic, mistralai) are built on httpx2. respx patches ``httpx``,
so ``httpx`` is aliased to httpx2 here, before anything imports respx (its own pytest plugin is
disabled in pyproject.toml for that reason).
"""

import httpx2

httpx2.alias_httpx()
