"""Anthropic's prompt as the mock counts and caches it.

**Blocks.** A Messages request is read as a list of blocks in Anthropic's caching order: tools,
then the system prompt, then the messages' content blocks. Each block has a token count (the
mock's approximation, :mod:`mockproviders.tokens`) and a hash of the prefix that ends with it.
The same counts serve the answer's ``usage`` and ``POST /v1/messages/count_tokens``:

- text: its tokens; each message adds ``MESSAGE_OVERHEAD`` at its first block, the system too;
- a tool definition, a ``tool_use`` input, any other block: the tokens of its JSON;
- a ``tool_result``: the blocks of its content;
- an image: ``width * height / 750`` after Anthropic's resizing (long edge ≤ 1568 px, about
  1.15 megapixels), read from a PNG, GIF or JPEG header; ``FALLBACK_IMAGE_TOKENS`` when the size
  cannot be read (a URL, another format);
- a document: the tokens of a text source, or ``PDF_PAGE_TOKENS`` per page of a base64 PDF;
- plus ``REPLY_PRIMING`` for the request.

**Caching** (:class:`PromptCache`), as Anthropic does it:

- ``cache_control`` on at most ``MAX_BREAKPOINTS`` blocks (a top-level ``cache_control`` marks
  the last block and takes one of the slots); more is a 400;
- the prefix ending at each breakpoint is written when it reaches the model's minimum cacheable
  length (:meth:`mockproviders.config.MockConfig.cache_min_tokens`), for ``ttl`` (5 minutes, or
  1 hour), refreshed on every read;
- the read is the longest cached prefix found at any breakpoint or at the ``LOOKBACK`` block
  boundaries before one, so turn 2 of a conversation reads turn 1's system + history prefix and
  writes only what is new;
- usage: ``cache_read_input_tokens`` is that prefix, ``cache_creation_input_tokens`` runs from its
  end to the last prefix written, ``input_tokens`` is the rest (after the last breakpoint).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from mockproviders.errors import FieldError
from mockproviders.tokens import MESSAGE_OVERHEAD, REPLY_PRIMING, count_tokens, stable_hash

MAX_BREAKPOINTS = 4
LOOKBACK = 20  # block boundaries checked for a hit before each breakpoint
TTLS = {"5m": 300.0, "1h": 3600.0}
FALLBACK_IMAGE_TOKENS = 1600
PDF_PAGE_TOKENS = 1500
_MAX_EDGE = 1568
_MAX_PIXELS = 1_150_000
_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
_ENTRIES_BOUND = 4096


@dataclass(slots=True)
class Prompt:
    """A request's blocks: tokens per block, what identifies each block, and the breakpoints
    (block index → TTL in seconds). Prefix hashes are computed only when a breakpoint asks."""

    model: str
    tokens: list[int] = field(default_factory=list)
    identities: list[Any] = field(default_factory=list)
    marks: dict[int, float] = field(default_factory=dict)
    _keys: list[int] | None = None

    def add(self, tokens: int, identity: Any, mark: Any, loc: Sequence[str | int]) -> None:
        self.tokens.append(tokens)
        self.identities.append(identity)
        if mark is not None:
            self.marks[len(self.tokens) - 1] = ttl_of(mark, loc)

    @property
    def keys(self) -> list[int]:
        """The hash of the prefix ending at each block (chained: each hashes the one before)."""
        if self._keys is None:
            key = stable_hash("anthropic-prompt", self.model)
            keys = []
            for identity in self.identities:
                key = stable_hash(key, _canonical(identity))
                keys.append(key)
            self._keys = keys
        return self._keys

    @property
    def input_tokens(self) -> int:
        """Every token of the prompt: what ``count_tokens`` answers and usage adds up to."""
        return sum(self.tokens) + REPLY_PRIMING


def ttl_of(mark: Any, loc: Sequence[str | int]) -> float:
    """The TTL in seconds of a ``cache_control`` value, or a 400 naming it."""
    where = (*loc, "cache_control")
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
        raise FieldError((*where, "type"), "Input should be 'ephemeral'", "value", mark)
    ttl = mark.get("ttl", "5m")
    if ttl not in TTLS:
        raise FieldError((*where, "ttl"), "Input should be '5m' or '1h'", "value", ttl)
    return TTLS[ttl]


def build_prompt(model: str, body: dict[str, Any]) -> Prompt:
    """The blocks of a Messages (or count_tokens) body already checked for shape by the caller."""
    prompt = Prompt(model)
    for i, tool in enumerate(body.get("tools") or ()):
        plain = _without_mark(tool)
        prompt.add(count_tokens(_json(plain)), plain, tool.get("cache_control"), ("tools", i))
    system = body.get("system")
    if isinstance(system, str):
        prompt.add(count_tokens(system) + MESSAGE_OVERHEAD, system, None, ("system",))
    elif isinstance(system, list):
        for j, block in enumerate(system):
            tokens = block_tokens(block) + MESSAGE_OVERHEAD * (j == 0)
            prompt.add(tokens, _without_mark(block), block.get("cache_control"), ("system", j))
    for i, msg in enumerate(body["messages"]):
        content = msg["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        for j, block in enumerate(blocks):
            tokens = block_tokens(block) + MESSAGE_OVERHEAD * (j == 0)
            identity = (msg["role"], j, _without_mark(block))
            mark = block.get("cache_control") if isinstance(block, dict) else None
            prompt.add(tokens, identity, mark, ("messages", i, "content", j))
    top = body.get("cache_control")
    if top is not None and prompt.tokens:
        prompt.marks[len(prompt.tokens) - 1] = ttl_of(top, ())
    if len(prompt.marks) > MAX_BREAKPOINTS:
        raise FieldError(
            (),
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {len(prompt.marks)}.",
            "value",
        )
    return prompt


def block_tokens(block: Any) -> int:
    """The tokens of one content block (see the module docstring)."""
    if isinstance(block, str):
        return count_tokens(block)
    if not isinstance(block, dict):
        return count_tokens(_json(block))
    kind = block.get("type")
    if kind == "text" and isinstance(block.get("text"), str):
        return count_tokens(block["text"])
    if kind == "tool_result":
        content = block.get("content")
        if isinstance(content, str):
            return count_tokens(content)
        if isinstance(content, list):
            return sum(block_tokens(b) for b in content)
        return 0
    if kind == "tool_use":
        return count_tokens(str(block.get("name", ""))) + count_tokens(_json(block.get("input")))
    if kind == "thinking" and isinstance(block.get("thinking"), str):
        return count_tokens(block["thinking"])
    if kind == "image":
        return image_tokens(block.get("source"))
    if kind == "document":
        extra = sum(count_tokens(block[k]) for k in ("title", "context") if isinstance(block.get(k), str))
        return document_tokens(block.get("source")) + extra
    return count_tokens(_json(_without_mark(block)))


def image_tokens(source: Any) -> int:
    """Anthropic's ``width * height / 750`` after its resizing, or the fallback."""
    size = _image_size(_base64_data(source)) if isinstance(source, dict) else None
    if size is None:
        return FALLBACK_IMAGE_TOKENS
    w, h = size
    scale = min(1.0, _MAX_EDGE / max(w, h), math.sqrt(_MAX_PIXELS / (w * h)))
    return max(1, math.ceil(w * h * scale * scale / 750))


def document_tokens(source: Any) -> int:
    if not isinstance(source, dict):
        return PDF_PAGE_TOKENS
    if source.get("type") == "text" and isinstance(source.get("data"), str):
        return count_tokens(source["data"])
    if source.get("type") == "content":
        content = source.get("content")
        if isinstance(content, str):
            return count_tokens(content)
        return sum(block_tokens(b) for b in content) if isinstance(content, list) else 0
    data = _base64_data(source)
    if data is None:
        return PDF_PAGE_TOKENS  # a URL or a file id: one page, the mock cannot read it
    return PDF_PAGE_TOKENS * max(1, len(_PDF_PAGE.findall(data)))


def _base64_data(source: dict[str, Any]) -> bytes | None:
    data = source.get("data")
    if source.get("type") != "base64" or not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=False)
    except (binascii.Error, ValueError):
        return None


def _image_size(data: bytes | None) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF or JPEG header, or None."""
    if not data:
        return None
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        w, h = struct.unpack(">II", data[16:24])
    elif data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        w, h = struct.unpack("<HH", data[6:10])
    elif data[:2] == b"\xff\xd8":
        found = _jpeg_size(data)
        if found is None:
            return None
        w, h = found
    else:
        return None
    return (w, h) if w > 0 and h > 0 else None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = int.from_bytes(data[i + 2 : i + 4], "big")
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            h, w = struct.unpack(">HH", data[i + 5 : i + 9])
            return w, h
        i += 2 + length
    return None


@dataclass(slots=True)
class CacheUse:
    """What a request read from and wrote to the cache, in tokens."""

    read: int = 0
    written_5m: int = 0
    written_1h: int = 0

    @property
    def written(self) -> int:
        return self.written_5m + self.written_1h


class PromptCache:
    """Cached prefixes (hash → expiry time), shared by every request of one mock."""

    def __init__(self) -> None:
        self._entries: dict[int, tuple[float, float]] = {}  # key -> (expiry, ttl)

    def clear(self) -> None:
        self._entries.clear()

    def use(self, prompt: Prompt, min_tokens: int, now: float) -> CacheUse:
        """Read the longest cached prefix, write the prefixes at the breakpoints (Anthropic's rules)."""
        if not prompt.marks:
            return CacheUse()
        ends = _cumulative(prompt.tokens)
        read_at = -1
        for mark in prompt.marks:
            for i in range(mark, max(-1, mark - LOOKBACK - 1), -1):
                if i <= read_at:
                    break
                entry = self._entries.get(prompt.keys[i])
                if entry is not None and entry[0] > now:
                    read_at = i
                    break
        use = CacheUse(read=ends[read_at] if read_at >= 0 else 0)
        if read_at >= 0:
            ttl = self._entries[prompt.keys[read_at]][1]
            self._entries[prompt.keys[read_at]] = (now + ttl, ttl)
        level = use.read
        for mark in sorted(prompt.marks):
            ttl = prompt.marks[mark]
            if ends[mark] < min_tokens:
                continue  # too short to cache: processed as if unmarked
            if mark > read_at:
                if ttl > TTLS["5m"]:
                    use.written_1h += ends[mark] - level
                else:
                    use.written_5m += ends[mark] - level
                level = ends[mark]
            self._entries[prompt.keys[mark]] = (now + ttl, ttl)
        if len(self._entries) > _ENTRIES_BOUND:  # bound memory: drop expired entries
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        return use


def _cumulative(tokens: list[int]) -> list[int]:
    out, total = [], 0
    for n in tokens:
        total += n
        out.append(total)
    return out


def _without_mark(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
