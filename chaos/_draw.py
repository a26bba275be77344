"""Stable pseudo-random draws keyed on (seed, rule, request index).

Why not ``random.Random`` or ``hash()``: a shared generator's sequence depends on the order in
which concurrent requests reach it, and ``hash()`` of a string changes with every interpreter
(``PYTHONHASHSEED``). A keyed hash gives each (seed, rule, request) its own number, the same in
every run and every process, whatever the interleaving.
"""

from __future__ import annotations

import hashlib

_SCALE = float(1 << 64)


def uniform(seed: int, rule: str, index: int, salt: str = "") -> float:
    """A number in ``[0, 1)`` fixed by its arguments alone."""
    key = f"{seed}\x1f{rule}\x1f{index}\x1f{salt}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / _SCALE
