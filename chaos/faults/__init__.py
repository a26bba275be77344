"""The fault catalogue: every fault class, registered by name in :data:`REGISTRY`.

Families, one module each: ``connection`` (reset, refuse, hang, latency), ``status`` (provider
error answers), ``stream`` (faults after the 200), ``completion`` (bad answers).
"""

from chaos.faults import completion, connection, status, stream
from chaos.faults._base import REGISTRY, Fault, FaultContext, FaultParams, FaultRegistry, register

__all__ = [
    "REGISTRY",
    "Fault",
    "FaultContext",
    "FaultParams",
    "FaultRegistry",
    "completion",
    "connection",
    "register",
    "status",
    "stream",
]
