"""What the load-test users send: options (command line or environment), prompts, request bodies.

Every option has an environment variable, so the same locustfile runs from a shell, a CI job or
Locust's web UI. In distributed mode the master's values reach the workers with each spawn
message (Locust forwards custom options), so only the master needs them. Pure Python, no Locust.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PROMPTS",
    "LoadSettings",
    "SettingsError",
    "add_arguments",
    "build_body",
    "load_prompts",
    "settings_from_options",
]

Messages = list[dict[str, Any]]

DEFAULT_PROMPTS: tuple[str, ...] = (
    "Summarize the plot of Hamlet in two sentences.",
    "Classify the sentiment of: 'The delivery was late but the food was great.'",
    "Translate 'the train switches tracks at the turnout' into French.",
    "List three ways to make an HTTP client resilient to timeouts.",
    "Write a haiku about circuit breakers.",
    "Explain what a p99 latency is to a new engineer.",
    "Extract the city from: 'Ship it to 42 Rue de Rivoli, Paris, by Friday.'",
    "Give one sentence of advice for writing load tests.",
)


class SettingsError(ValueError):
    """A bad option value or prompts file; the message names the option, file or line."""


@dataclass(frozen=True, slots=True)
class LoadSettings:
    model: str = "gpt-4o-mini"  # the body's `model`: a sidecar route or a provider model
    primary_model: str | None = None  # the route's first model, to tell fallbacks apart
    path: str = "/chat/completions"  # appended to --host (an OpenAI base URL such as .../v1)
    api_key: str = ""
    max_tokens: int = 64
    stream_share: float = 0.5  # share of requests that stream, 0..1
    stream_usage: bool = True  # ask for the usage chunk (stream_options.include_usage)
    require_usage: bool = True
    require_content: bool = False
    timeout: float = 60.0  # seconds to connect, and between two reads
    prompts: tuple[Messages, ...] = tuple([{"role": "user", "content": p}] for p in DEFAULT_PROMPTS)


_BOOL_TRUE = {"1", "true", "yes", "on"}
_BOOL_FALSE = {"0", "false", "no", "off", ""}


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    if raw.strip().lower() in _BOOL_TRUE:
        return True
    if raw.strip().lower() in _BOOL_FALSE:
        return False
    raise SettingsError(f"environment variable {name}={raw!r} is not a boolean (use 1/0, true/false)")


def _env_number(name: str, default: float, kind: type[int] | type[float]) -> Any:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return kind(default)
    try:
        return kind(raw)
    except ValueError:
        raise SettingsError(
            f"environment variable {name}={raw!r} is not {'an integer' if kind is int else 'a number'}"
        ) from None


def _bool(text: str | bool) -> bool:
    if isinstance(text, bool):
        return text
    lowered = text.strip().lower()
    if lowered in _BOOL_TRUE:
        return True
    if lowered in _BOOL_FALSE:
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {text!r}")


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """Add the users' options; each defaults to its ``TURNOUT_LOAD_*`` environment variable."""
    d = LoadSettings()
    parser.add_argument(
        "--model",
        default=_env("TURNOUT_LOAD_MODEL", d.model),
        help="the `model` field of each request: a sidecar route or a provider model "
        "[env TURNOUT_LOAD_MODEL]",
    )
    parser.add_argument(
        "--primary-model",
        default=_env("TURNOUT_LOAD_PRIMARY_MODEL", ""),
        help="the route's first model; an answer from another one (x-turnout-model) counts as a "
        "FALLBACK [env TURNOUT_LOAD_PRIMARY_MODEL]",
    )
    parser.add_argument(
        "--chat-path",
        default=_env("TURNOUT_LOAD_CHAT_PATH", d.path),
        help="path appended to --host, which is an OpenAI base URL such as http://127.0.0.1:8080/v1 "
        "[env TURNOUT_LOAD_CHAT_PATH]",
    )
    parser.add_argument(
        "--api-key",
        default=_env("TURNOUT_LOAD_API_KEY", ""),
        help="sent as 'Authorization: Bearer KEY' when set [env TURNOUT_LOAD_API_KEY]",
    )
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=_env_number("TURNOUT_LOAD_MAX_TOKENS", d.max_tokens, int),
        help="max_tokens of each request [env TURNOUT_LOAD_MAX_TOKENS]",
    )
    parser.add_argument(
        "--stream-share",
        type=float,
        default=_env_number("TURNOUT_LOAD_STREAM_SHARE", d.stream_share, float),
        help="share of requests that stream, 0..1 [env TURNOUT_LOAD_STREAM_SHARE]",
    )
    parser.add_argument(
        "--stream-usage",
        type=_bool,
        default=_env_bool("TURNOUT_LOAD_STREAM_USAGE", d.stream_usage),
        help="send stream_options.include_usage (off for endpoints that reject it, such as Mistral) "
        "[env TURNOUT_LOAD_STREAM_USAGE]",
    )
    parser.add_argument(
        "--require-usage",
        type=_bool,
        default=_env_bool("TURNOUT_LOAD_REQUIRE_USAGE", d.require_usage),
        help="fail a response without usage [env TURNOUT_LOAD_REQUIRE_USAGE]",
    )
    parser.add_argument(
        "--require-content",
        type=_bool,
        default=_env_bool("TURNOUT_LOAD_REQUIRE_CONTENT", d.require_content),
        help="fail a response with no answer text or tool call [env TURNOUT_LOAD_REQUIRE_CONTENT]",
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=_env_number("TURNOUT_LOAD_TIMEOUT", d.timeout, float),
        help="seconds to connect and between two reads of a response [env TURNOUT_LOAD_TIMEOUT]",
    )
    parser.add_argument(
        "--prompts-file",
        default=_env("TURNOUT_LOAD_PROMPTS", ""),
        help="prompts: a text file (one per line) or JSONL ({'prompt': ...} or {'messages': [...]}) "
        "[env TURNOUT_LOAD_PROMPTS]",
    )


def settings_from_options(options: argparse.Namespace) -> LoadSettings:
    """Validate the parsed options into :class:`LoadSettings`."""
    share = float(options.stream_share)
    if not 0.0 <= share <= 1.0:
        raise SettingsError(f"--stream-share must be between 0 and 1, not {share}")
    max_tokens = int(options.max_tokens)
    if max_tokens < 1:
        raise SettingsError(f"--max-tokens must be at least 1, not {max_tokens}")
    timeout = float(options.request_timeout)
    if timeout <= 0:
        raise SettingsError(f"--request-timeout must be positive, not {timeout}")
    if not options.model:
        raise SettingsError("--model must not be empty")
    path = str(options.chat_path)
    return LoadSettings(
        model=str(options.model),
        primary_model=str(options.primary_model) or None,
        path=path if path.startswith("/") else "/" + path,
        api_key=str(options.api_key),
        max_tokens=max_tokens,
        stream_share=share,
        stream_usage=_bool(options.stream_usage),
        require_usage=_bool(options.require_usage),
        require_content=_bool(options.require_content),
        timeout=timeout,
        prompts=load_prompts(options.prompts_file) if options.prompts_file else LoadSettings().prompts,
    )


def load_prompts(path: str | os.PathLike[str]) -> tuple[Messages, ...]:
    """Read prompts: ``*.jsonl`` holds one JSON object a line, anything else one prompt a line.

    Blank lines and, in text files, lines starting with ``#`` are skipped.
    """
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"cannot read prompts file {file}: {exc}") from exc
    prompts: list[Messages] = []
    jsonl = file.suffix.lower() == ".jsonl"
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or (not jsonl and line.lstrip().startswith("#")):
            continue
        prompts.append(_jsonl_prompt(file, line_no, line) if jsonl else [{"role": "user", "content": line}])
    if not prompts:
        raise SettingsError(f"prompts file {file} holds no prompt")
    return tuple(prompts)


def _jsonl_prompt(file: Path, line_no: int, line: str) -> Messages:
    where = f"{file}:{line_no}"
    try:
        item = json.loads(line)
    except ValueError as exc:
        raise SettingsError(f"{where}: not JSON ({exc})") from None
    if isinstance(item, dict) and isinstance(item.get("prompt"), str):
        return [{"role": "user", "content": item["prompt"]}]
    messages = item.get("messages") if isinstance(item, dict) else None
    if (
        not isinstance(messages, list)
        or not messages
        or not all(
            isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in messages
        )
    ):
        raise SettingsError(
            f"{where}: expected {{'prompt': str}} or {{'messages': [{{'role': ..., 'content': ...}}, ...]}}"
        )
    return messages


def build_body(settings: LoadSettings, messages: Sequence[dict[str, Any]], *, stream: bool) -> dict[str, Any]:
    """An OpenAI chat-completions request body."""
    body: dict[str, Any] = {
        "model": settings.model,
        "messages": list(messages),
        "max_tokens": settings.max_tokens,
    }
    if stream:
        body["stream"] = True
        if settings.stream_usage:
            body["stream_options"] = {"include_usage": True}
    return body
