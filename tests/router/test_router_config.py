"""Config: the documented shape, ${ENV} substitution, and errors that name file, field and reason."""

from pathlib import Path

import pytest

from router.config import ConfigError, load_config, load_yaml, parse_config

GOOD = """
providers:
  openai:    {kind: openai,    base_url: http://127.0.0.1:8100/openai/v1, api_key: "${TT_KEY:-sk-test}"}
  anthropic: {kind: anthropic, base_url: http://127.0.0.1:8100/anthropic, api_key: x}
  local:     {kind: openai_compatible, base_url: http://127.0.0.1:8000/v1}
models:
  gpt-4o-mini:   {provider: openai,    model: gpt-4o-mini, rpm: 500, tpm: 200000}
  claude-sonnet: {provider: anthropic, model: claude-sonnet-4-5, max_tokens: 1024,
                  prices: {input: 3, output: 15, cached: 0.3}}
  llama:         {provider: local, model: llama-3.1-8b, context_window: 8192}
routes:
  summarization:
    chain: [claude-sonnet, gpt-4o-mini]
    on_error: {context_length: [llama]}
    hedge: {after: 2s}
    timeouts: {first_token: 500ms}
defaults:
  retries: 1
  timeouts: {total: 30s, connect: 1.5}
  breaker: {failures: 3, window: 10s, cooldown: 1m}
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "router.yaml"
    p.write_text(text)
    return p


def test_good_config(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.providers["openai"].api_key == "sk-test"
    route = cfg.routes["summarization"]
    assert route.hedge is not None and route.hedge.after == 2.0
    assert cfg.defaults.breaker.cooldown == 60.0
    t = cfg.timeouts_for(route)
    assert (t.total, t.connect, t.first_token, t.idle) == (30.0, 1.5, 0.5, 15.0)


def test_env_substitution_and_missing_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TT_KEY", "from-env")
    assert load_yaml(write(tmp_path, GOOD))["providers"]["openai"]["api_key"] == "from-env"
    monkeypatch.delenv("TT_NOPE", raising=False)
    p = write(tmp_path, 'providers:\n  o: {kind: openai, base_url: x, api_key: "${TT_NOPE}"}\n')
    with pytest.raises(ConfigError, match=r"router.yaml: providers.o.api_key: environment variable TT_NOPE"):
        load_yaml(p)


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        (("models", "gpt-4o-mini", "rmp"), r"models.gpt-4o-mini.rmp: unknown field"),
        (("defaults", "timeouts", "total"), r"defaults.timeouts.total: invalid duration 'soon'"),
        (
            ("routes", "summarization", "chain"),
            r"routes.summarization.chain\[1\]: route 'summarization' names unknown model 'gpt-5'",
        ),
        (("models", "llama", "provider"), r"models.llama.provider: unknown provider 'nowhere'"),
        (("providers", "openai", "kind"), r"providers.openai.kind: 'bard' is not one of 'openai'"),
    ],
)
def test_errors_name_the_field(patch: tuple[str, ...], expected: str) -> None:
    import yaml

    data = yaml.safe_load(GOOD.replace("${TT_KEY:-sk-test}", "k"))
    values = {
        ("models", "gpt-4o-mini", "rmp"): 5,
        ("defaults", "timeouts", "total"): "soon",
        ("routes", "summarization", "chain"): ["claude-sonnet", "gpt-5"],
        ("models", "llama", "provider"): "nowhere",
        ("providers", "openai", "kind"): "bard",
    }
    node = data
    for key in patch[:-1]:
        node = node[key]
    node[patch[-1]] = values[patch]
    with pytest.raises(ConfigError, match=expected) as info:
        parse_config(data, source="cfg.yaml")
    assert str(info.value).startswith("cfg.yaml: ")


def test_weight_is_not_accepted() -> None:
    """Nothing reads a deployment weight, so a config that sets one is told so, not ignored."""
    import yaml

    data = yaml.safe_load(GOOD.replace("${TT_KEY:-sk-test}", "k"))
    data["models"]["gpt-4o-mini"]["weight"] = 2
    with pytest.raises(ConfigError, match=r"cfg.yaml: models.gpt-4o-mini.weight: unknown field"):
        parse_config(data, source="cfg.yaml")


def test_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must be a mapping"):
        load_config(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(write(tmp_path, "a: [\n"))


def test_the_library_reads_a_sidecar_file_but_not_a_misspelt_section(tmp_path: Path) -> None:
    # One file serves `turnout serve` and Router.from_file: the sidecar's sections are skipped...
    serving = GOOD + "server: {port: 8200}\naudit: {path: stdout}\nalerts: {interval: 15}\n"
    assert (
        load_config(write(tmp_path, serving)).routes.keys()
        == load_config(write(tmp_path, GOOD)).routes.keys()
    )
    # ...and any other unknown section is still named as an error.
    with pytest.raises(ConfigError, match="sever: unknown field"):
        load_config(write(tmp_path, GOOD + "sever: {port: 8200}\n"))


def _caps(models: dict[str, dict[str, object]], chain: list[str]) -> dict[str, object]:
    return {
        "providers": {
            "o": {"kind": "openai", "base_url": "http://o.invalid/v1"},
            "a": {"kind": "anthropic", "base_url": "http://a.invalid"},
            "m": {"kind": "mistral", "base_url": "http://m.invalid/v1"},
        },
        "models": models,
        "routes": {"r": {"chain": chain}},
    }


def test_a_route_serves_one_task_and_embeddings_never_mix_models() -> None:
    chat = {"provider": "o", "model": "gpt-4o-mini"}
    small = {"provider": "o", "model": "text-embedding-3-small"}
    with pytest.raises(ConfigError, match=r"routes\.r\.chain: mixes chat deployments \['c'\]"):
        parse_config(_caps({"c": chat, "e": small}, ["c", "e"]))
    mistral = {"provider": "m", "model": "mistral-embed"}
    with pytest.raises(ConfigError, match=r"one embedding model and dimension.*mistral-embed"):
        parse_config(_caps({"e": small, "f": mistral}, ["e", "f"]))
    sized = {"provider": "o", "model": "text-embedding-3-small", "dimensions": 512}
    with pytest.raises(ConfigError, match=r"512 dims"):
        parse_config(_caps({"e": small, "f": sized}, ["e", "f"]))
    with pytest.raises(ConfigError, match=r"models\.e\.task: anthropic has no embeddings API"):
        parse_config(_caps({"e": {"provider": "a", "model": "voyage-embed", "task": "embeddings"}}, ["e"]))
    # the same embedding model on two providers is a fine fallback; `task` overrides the id
    twin = {"provider": "o", "model": "text-embedding-3-small"}
    cfg = parse_config(_caps({"e": small, "f": twin}, ["e", "f"]))
    assert cfg.models["e"].serves == "embeddings"
    cfg = parse_config(_caps({"c": {"provider": "o", "model": "embedder-chat", "task": "chat"}}, ["c"]))
    assert cfg.models["c"].serves == "chat"
