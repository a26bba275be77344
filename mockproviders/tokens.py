"""Deterministic content and the mock's approximation of tokenization.

**Tokens.** The mock does not ship a real tokenizer. A *token* is one whitespace-separated word
together with the whitespace before it (regex ``\\s*\\S+``; trailing whitespace joins the last
token). So ``"Hello, big world"`` is 3 tokens, and joining the tokens gives back the text exactly,
which is what makes streamed and non-streamed answers agree: the stream sends one token per
content event. Prompt usage is the token count of every text part of the request plus 3 per
message (role and separators), plus 3 for the reply's priming; real tokenizers count about 1.3
times more, but the counts are consistent with the text, which is what tests need.

**Determinism.** Content is derived from a stable hash (BLAKE2b) of the seed, provider, model and
messages, never from Python's per-process randomized ``hash()``; the same request and seed give
the same answer in every process.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
import struct
from collections.abc import Iterable
from typing import Any

_TOKEN_RE = re.compile(r"\s*\S+")

MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3

_VOCABULARY = (
    "the a switch track signal train route model answer request stream token mock provider "
    "reliable quick steady fallback latency budget retry circuit breaker window quota seed "
    "deterministic pipeline service station platform junction express local freight rail north "
    "south east west morning evening clear calm bright careful simple useful honest runs waits "
    "checks sends returns keeps finds moves holds turns opens closes guides "
)
_WORDS = tuple(_VOCABULARY.split())


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is the same in every process and Python version."""
    data = "\x1f".join([repr(part) for part in parts]).encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def split_tokens(text: str) -> list[str]:
    """Split ``text`` into tokens whose concatenation is exactly ``text``."""
    pieces = _TOKEN_RE.findall(text)
    if not pieces:
        return [text] if text else []
    rest = len(text) - sum(len(p) for p in pieces)
    if rest:
        pieces[-1] += text[len(text) - rest :]
    return pieces


def count_tokens(text: str) -> int:
    """Token count of ``text`` under the approximation above (at least 1 for non-empty text)."""
    if not text:
        return 0
    return len(_TOKEN_RE.findall(text)) or 1


@functools.lru_cache(maxsize=4096)
def generate_text(key: int, min_words: int = 8, max_words: int = 32) -> str:
    """A deterministic sentence or two of plain words derived from ``key`` (cached: it is pure)."""
    # Hash bytes pick the words: several times faster than random.choice per word.
    stream = hashlib.blake2b(key.to_bytes(8, "big"), digest_size=64).digest()
    n = min_words + stream[0] % (max_words - min_words + 1)
    words = [_WORDS[b % len(_WORDS)] for b in stream[1 : n + 1]]
    cut = n // 2 if n > 12 else n
    first = " ".join(words[:cut]).capitalize() + "."
    if cut == n:
        return first
    return first + " " + " ".join(words[cut:]).capitalize() + "."


def embedding_vector(key: int, dimensions: int) -> list[float]:
    """A deterministic unit vector of ``dimensions`` floats derived from ``key``."""
    rng = random.Random(key)
    vec = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    # Round through float32 so the float and base64 encodings carry the same numbers.
    return list(struct.unpack(f"<{dimensions}f", struct.pack(f"<{dimensions}f", *(v / norm for v in vec))))


def text_parts(content: Any) -> Iterable[str]:
    """Every text string in a message ``content`` (a string, or a list of typed parts)."""
    if isinstance(content, str):
        yield content
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                for key in ("text", "content", "input"):
                    sub = part.get(key)
                    if isinstance(sub, str):
                        yield sub
                    elif isinstance(sub, list | dict) and key != "input":
                        yield from text_parts(sub if isinstance(sub, list) else [sub])
            elif isinstance(part, str):
                yield part
