"""A torch-style layout bug: weights held as (out, in) and read back with ``reshape``.

A framework whose native weight is ``(fan_out, fan_in)`` (torch's ``Linear.weight``) must
transpose at the boundary. This backend reshapes instead: every shape comes out right, so nothing
complains, but the values are scrambled, and for a square layer the checkpoint holds ``Wᵀ``, a
weight saved without the transpose. Its forward pass and training are right, so only what reads
the variables back (``MLP.variables``, ``mlpcore.save``) is wrong.
"""

from __future__ import annotations

import numpy as np

from mlpcore.spec import DTypeName, MLPSpec, weights_name
from mlpcore_numpy.backend import NumpyBackend, NumpyModel
from mlpcore_numpy.network import FloatArray


class ReshapingModel(NumpyModel):
    """:class:`NumpyModel` whose ``read_variables`` converts (out, in) with ``reshape``."""

    def read_variables(self) -> dict[str, FloatArray]:
        values = super().read_variables()
        for i in range(self.spec.n_layers):
            name = weights_name(i)
            native = np.ascontiguousarray(values[name].T)  # how torch holds it: (out, in)
            values[name] = native.reshape(values[name].shape)  # BUG: reshape, not .T
        return values


class Backend(NumpyBackend):
    """The NumPy backend with :class:`ReshapingModel`."""

    name = "broken_weights_not_transposed"

    def build(self, spec: MLPSpec, variables: dict[str, FloatArray],  # type: ignore[override]
              dtype: DTypeName) -> ReshapingModel:
        return ReshapingModel(spec, variables, dtype)
