"""Continuing a stream that failed after output began, so the caller keeps one stream.

When a stream breaks after the caller has text (a cut connection, a stall past the idle limit,
a malformed event, an in-band server error), :meth:`router.Router.stream` asks a deployment
that can continue (:attr:`~router.adapters.Deployment.continuation`: Anthropic, Mistral, an
``openai_compatible`` server configured for it; never OpenAI's own API, which answers afresh) to
go on from the text already sent, given as an assistant prefill
(:attr:`~router.types.ChatRequest.prefill`), and relays only what comes next.

This module holds the pure parts: which failures may be continued, on which deployments, the
request that continues, and the :class:`Splice` that joins the continuation onto what was sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from router._runtime import BREAKER_COUNTS, DeploymentRuntime, RoutePlan
from router.errors import ErrorKind
from router.types import ChatRequest

__all__ = ["CONTINUABLE", "MAX_CONTINUATIONS", "Splice", "continuation_plan", "continuation_request"]

# A stream is continued at most this many times: each continuation is a walk of the chain with
# its own retries, so a provider that cuts every stream cannot keep one request going forever.
MAX_CONTINUATIONS = 3

# Failures of the provider's stream, not of the request (what counts against its health, and a
# 429 arriving in-band): the answer so far is good and the rest can come from another attempt.
# Not continued: a refusal or bad request arriving in-band (the
# answer itself is in question), auth/quota/not-found, and the request's own deadline.
CONTINUABLE: frozenset[ErrorKind] = BREAKER_COUNTS | {ErrorKind.RATE_LIMIT}

# A deployment that refuses the prefill answers 400 (e.g. "final assistant content cannot end
# with trailing whitespace"): it is passed over for the next one, never the caller's final error.
_REFUSALS = (ErrorKind.BAD_REQUEST, ErrorKind.CONTEXT_LENGTH, ErrorKind.CONTENT_POLICY)


def continuation_plan(
    plan: RoutePlan,
    failed: str,
    deployments: Mapping[str, DeploymentRuntime],
    broke: Collection[str] = (),
) -> RoutePlan | None:
    """The plan that continues a stream ``failed`` cut: the same deployment first (a retry),
    then the ones after it in the chain, keeping only those that can continue and leaving out
    ``broke`` (deployments that already broke a continuation of this stream); None if none can.

    Each continuation attempt goes through the engine as any attempt does (gates, retries,
    records); a refusal of the prefill moves on to the next deployment."""
    chain: Sequence[str] = plan.chain
    after = chain[chain.index(failed) + 1 :] if failed in chain else chain
    names = tuple(
        n
        for n in dict.fromkeys((failed, *after))
        if n not in broke and deployments[n].deployment.continuation
    )
    if not names:
        return None
    return replace(
        plan,
        chain=names,
        on_error=dict.fromkeys(_REFUSALS, names),  # minus those tried: the walk goes on
        hedge_after=None,
        buffer_stream=False,
        final_on_policy=False,
    )


def continuation_request(request: ChatRequest, sent: str) -> ChatRequest:
    """``request`` asking to continue ``sent``. Trailing whitespace is left out of the prefill
    (Anthropic refuses it, and tokenizers continue a word better without it); :class:`Splice`
    drops its repeat. Whitespace alone is no prefill: that is a plain retry."""
    prefill = sent.rstrip()
    return replace(request, prefill=prefill or None)


class Splice:
    """Joins a continuation onto the text already sent, so the caller sees each character once.

    Two repeats are dropped: a provider that echoes the prefill before continuing it (Mistral's
    ``prefix: true`` is documented both ways), and the trailing whitespace the prefill left out
    (sent already) when the continuation starts with it. While the continuation's first text is
    still a prefix of the prefill it is held back, so :meth:`flush` must end the relay."""

    __slots__ = ("echo", "held", "pending")

    def __init__(self, sent: str) -> None:
        self.echo = sent.rstrip()  # the prefill as sent
        self.held = ""
        self.pending = sent[len(self.echo) :]

    def feed(self, text: str) -> str:
        """The part of ``text`` (the next delta of the continuation) the caller has not seen."""
        if self.echo:
            held = self.held + text
            if self.echo.startswith(held):
                if len(held) < len(self.echo):
                    self.held = held  # maybe an echo: wait and see
                    return ""
                self.echo = self.held = ""  # the whole prefill, repeated: drop it
                return ""
            text = held[len(self.echo) :] if held.startswith(self.echo) else held
            self.echo = self.held = ""
        pending = self.pending
        if not pending:
            return text
        i = 0
        while i < len(text) and i < len(pending) and text[i] == pending[i]:
            i += 1
        # A character the caller has not seen ends the splice; a delta of whitespace alone that
        # repeats what was sent leaves the rest of it pending for the next delta.
        self.pending = "" if i < len(text) else pending[i:]
        return text[i:]

    def flush(self) -> str:
        """What is still held back when the continuation ends: it was no echo after all."""
        held, self.held, self.echo = self.held, "", ""
        return self.feed(held) if held else ""
