"""JSON from untrusted bytes, bounded: one decoder for the sidecar, the router's replies and the mock.

``json.loads`` alone turns hostile input into a crash rather than an answer: nesting past the
interpreter's recursion limit raises ``RecursionError`` (``[`` x 100,000), an integer of more than
4,300 digits a bare ``ValueError``, bytes that are not UTF-8 a ``UnicodeDecodeError``, and it
accepts ``NaN`` and ``Infinity``, which are not JSON. :func:`loads` raises one :class:`JSONError`
(a ``ValueError``) whose message names the problem, for each of them:

- ``max_bytes``: longer input is refused before parsing (the caller's own cap comes first);
- ``max_depth``: arrays and objects nested deeper are refused before parsing, so nothing that
  walks the result later (an encoder, a validator) can recurse out of the stack either;
- integers longer than the interpreter's limit (``sys.get_int_max_str_digits()``, 4,300);
- ``NaN``, ``Infinity``, ``-Infinity``.

A number too large for a float (``1e400``) decodes to ``inf``, as in ``json``; callers that take
numbers check their range (a check per number here would slow every embedding reply tenfold).

Cost: two ``bytes.count`` calls for ordinary bodies (under ``max_depth`` brackets in all); input
with more brackets is measured exactly, at C speed (escapes and strings removed, then one pass of
``bytes.replace`` per level). This module imports nothing from
turnout's packages so that each of them can use it.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_DEPTH", "JSONError", "depth_exceeds", "loads"]

MAX_DEPTH = 128

# Once escapes are gone, only quotes and brackets matter for nesting.
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


class JSONError(ValueError):
    """Input that is not acceptable JSON; the message says why and, where it can, where."""


def depth_exceeds(raw: bytes, limit: int) -> bool:
    """True when arrays/objects in ``raw`` nest deeper than ``limit`` (or brackets do not pair)."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    if b"\\" in raw:  # ``\\`` first, pairing from the left as JSON does, then ``\"``
        raw = raw.replace(b"\\\\", b"").replace(b'\\"', b"")
    skeleton = b"".join(raw.translate(None, _NOT_STRUCTURE).split(b'"')[::2])  # strings dropped
    for _ in range(limit):
        # One level a pass: innermost pairs become a mark, then the marks go (a pair that only
        # becomes innermost once its inside is marked is not removed in the same pass).
        shorter = skeleton.replace(b"[]", b"\0").replace(b"{}", b"\0").replace(b"\0", b"")
        if not shorter:
            return False
        if len(shorter) == len(skeleton):
            return True  # brackets that do not pair: not JSON anyway, and not worth recursing on
        skeleton = shorter
    return True


def _reject_constant(name: str) -> Any:
    raise JSONError(f"{name} is not a JSON number")


_DECODER = json.JSONDecoder(parse_constant=_reject_constant)  # the C scanner's fast paths stay


def loads(
    raw: bytes | str, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH, what: str = "the body"
) -> Any:
    """``raw`` decoded, or :class:`JSONError` naming the problem (``what`` names the input)."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise JSONError(f"{what} is {len(raw)} bytes, more than the limit of {max_bytes}")
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if depth_exceeds(data, max_depth):
        raise JSONError(f"{what} nests arrays/objects deeper than the limit of {max_depth}")
    try:
        text = raw if isinstance(raw, str) else raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise JSONError(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    try:
        return _DECODER.decode(text)
    except JSONError as exc:
        raise JSONError(f"{what} is not valid JSON: {exc}") from None
    except json.JSONDecodeError as exc:
        raise JSONError(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # the interpreter's limit on an integer's digits
        raise JSONError(f"{what} holds a number that cannot be decoded ({str(exc).split(':')[0]})") from None
    except RecursionError:  # a backstop: the depth check above should have caught it
        raise JSONError(f"{what} nests arrays/objects too deeply") from None
