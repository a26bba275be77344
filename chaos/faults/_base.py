"""The fault contract: a small object with its own parameters and one required method.

As in toxiproxy, a fault knows only what it does; the generic settings (name, targeting,
trigger) live in :class:`chaos.rules.Rule`. A fault class declares its parameter model
(``Params``, a pydantic model), its family, and implements :meth:`Fault.apply`, which receives
the request, the rest of the chain (``call_next``) and a :class:`FaultContext`. It may answer
without calling ``call_next`` (a status error), delay, raise
:class:`~mockproviders.types.AbortConnection`, set ``request.patch``, or call ``call_next`` and
wrap ``response.stream``.

Faults register themselves by name in :data:`REGISTRY` with the :func:`register` decorator.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from chaos._draw import uniform
from mockproviders.types import Clock, Handler, MockRequest, MockResponse

Family = Literal["connection", "status", "stream", "completion"]


class FaultParams(BaseModel):
    """Base of every fault's parameter model: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


P = TypeVar("P", bound=FaultParams)


@dataclass(frozen=True, slots=True)
class FaultContext:
    """What a fault may use besides the request: its rule's name, the seed and the clock."""

    rule: str
    seed: int
    index: int  # the request's index, as the engine counted it
    clock: Clock

    def draw(self, salt: str) -> float:
        """A number in [0, 1) fixed by (seed, rule, index, salt): seeded jitter."""
        return uniform(self.seed, self.rule, self.index, salt)


class Fault(Generic[P]):
    """Base class of all faults. Subclasses set ``name``, ``family``, ``Params`` and ``apply``."""

    name: ClassVar[str]
    family: ClassVar[Family]
    Params: ClassVar[type[FaultParams]] = FaultParams
    streams_only: ClassVar[bool] = False  # only streamed requests can get it
    endpoints: ClassVar[frozenset[str] | None] = None  # None: any endpoint

    def __init__(self, params: P) -> None:
        self.params = params

    @classmethod
    def from_params(cls, params: Any = None) -> Fault[Any]:
        """Build from a dict (validated) or a ready ``Params`` instance."""
        if not isinstance(params, cls.Params):
            params = cls.Params.model_validate(params or {})
        return cls(params)

    def applies_to(self, request: MockRequest) -> bool:
        """Whether this fault can happen to ``request`` at all (e.g. stream faults need a stream)."""
        if self.streams_only and not request.stream:
            return False
        return self.endpoints is None or request.endpoint in self.endpoints

    async def apply(self, request: MockRequest, call_next: Handler, ctx: FaultContext) -> MockResponse:
        """Do the fault to this request and return the answer the client will get."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.params!r})"


class FaultRegistry:
    """Fault classes by name. ``REGISTRY["latency"]`` raises a KeyError that lists known names."""

    def __init__(self) -> None:
        self._faults: dict[str, type[Fault[Any]]] = {}

    def register(self, cls: type[Fault[Any]]) -> type[Fault[Any]]:
        if cls.name in self._faults:
            raise ValueError(f"a fault named {cls.name!r} is already registered")
        self._faults[cls.name] = cls
        return cls

    def __getitem__(self, name: str) -> type[Fault[Any]]:
        try:
            return self._faults[name]
        except KeyError:
            raise KeyError(f"unknown fault {name!r}; known faults: {', '.join(self.names())}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._faults

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._faults))

    def __len__(self) -> int:
        return len(self._faults)

    def names(self) -> list[str]:
        return sorted(self._faults)

    def describe(self) -> dict[str, dict[str, Any]]:
        """Each fault's family and parameter JSON schema, for the control API."""
        return {
            n: {"family": c.family, "streams_only": c.streams_only, "params": c.Params.model_json_schema()}
            for n, c in sorted(self._faults.items())
        }


REGISTRY = FaultRegistry()
"""Every known fault class, by name."""

F = TypeVar("F", bound=type[Fault[Any]])


def register(cls: F) -> F:
    """Class decorator: add a fault class to :data:`REGISTRY`."""
    REGISTRY.register(cls)
    return cls
