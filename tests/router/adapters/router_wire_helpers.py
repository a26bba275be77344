"""Shared helpers for the pure adapter tests: run SSE bytes through a codec without a socket."""

from router.adapters import CODECS, Deployment, StreamAccumulator, make_deployment
from router.types import StreamEnd, TextDelta, ToolCallDelta
from turnout.sse import SSEParser


def dep(kind: str, model: str = "m-1") -> Deployment:
    return make_deployment(
        "dep", provider="prov", kind=kind, model=model, base_url="http://h/x/", api_key="k"
    )


def run_stream(kind: str, raw: bytes) -> tuple[list[TextDelta | ToolCallDelta], StreamAccumulator]:
    d = dep(kind)
    acc = StreamAccumulator(d)
    parser = SSEParser()
    out: list[TextDelta | ToolCallDelta] = []
    for ev in parser.feed(raw) + parser.close():
        out += CODECS[kind].parse_event(ev, acc)
    return out, acc


def sse(*frames: str, event: str | None = None) -> bytes:
    return b"".join(
        (f"event: {event}\n" if event else "").encode() + f"data: {f}\n\n".encode() for f in frames
    )


__all__ = ["StreamEnd", "dep", "run_stream", "sse"]
