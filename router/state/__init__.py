"""Shared state for router replicas: rate limits, breakers and budgets in one store (issue 8).

See :mod:`router.state.base` for the :class:`StateStore` primitives.
"""

from router.state.base import (
    Admission,
    BreakerSpec,
    BreakerView,
    BucketSpec,
    StateStore,
    StateStoreError,
)

__all__ = [
    "Admission",
    "BreakerSpec",
    "BreakerView",
    "BucketSpec",
    "StateStore",
    "StateStoreError",
]
