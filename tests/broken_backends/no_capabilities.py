"""Not broken: a backend that declares no optional capability.

Tests gated on capabilities (float64 models, gradients, native dropout, compiled training) must
skip for it, with the capability as the reason, and never fail.
"""

from __future__ import annotations

from mlpcore.backend import Capability
from mlpcore_numpy.backend import NumpyBackend


class Backend(NumpyBackend):
    """The NumPy backend, declaring ``frozenset()`` as its capabilities."""

    name = "no_capabilities"
    capabilities: frozenset[Capability] = frozenset()
