"""The journal: one entry per request the mock received, for tests and drills to assert on."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(slots=True)
class JournalEntry:
    """What happened to one request. ``status`` is 0 when the connection was dropped instead."""

    index: int
    time: float
    provider: str
    endpoint: str
    method: str
    path: str
    model: str | None
    status: int
    stream: bool
    retry_count: int | None  # the SDK's ``x-stainless-retry-count``, if sent
    request_id: str
    api_key: str | None = None
    error_type: str | None = None
    aborted: str | None = None  # "reset" or "close" when the connection was dropped
    annotations: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Journal:
    """A bounded, append-only log of :class:`JournalEntry` (oldest dropped beyond ``maxlen``)."""

    def __init__(self, maxlen: int = 10_000) -> None:
        self._entries: deque[JournalEntry] = deque(maxlen=maxlen)

    def append(self, entry: JournalEntry) -> None:
        self._entries.append(entry)

    def clear(self) -> None:
        self._entries.clear()

    @property
    def entries(self) -> list[JournalEntry]:
        return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(list(self._entries))

    def filter(self, **fields: Any) -> list[JournalEntry]:
        """Entries whose attributes equal every given value, e.g. ``filter(provider="openai")``."""
        return [e for e in self._entries if all(getattr(e, k) == v for k, v in fields.items())]

    def to_json(self) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self._entries]
