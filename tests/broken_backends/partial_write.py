"""A ``write_variables`` that converts and assigns one variable at a time.

When the conversion of a later variable fails, the earlier ones have already been replaced: a
failed load leaves the model half old, half new. The contract asks for all-or-nothing: convert
everything first, assign only when every conversion succeeded.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlpcore.spec import DTypeName, MLPSpec, bias_name, weights_name
from mlpcore_numpy.backend import NumpyBackend, NumpyModel
from mlpcore_numpy.network import FloatArray


class PartialWriteModel(NumpyModel):
    """:class:`NumpyModel` with a one-variable-at-a-time ``write_variables``."""

    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        for i in range(self.spec.n_layers):
            # BUG: convert and assign in one loop
            self._weights[i][...] = np.asarray(values[weights_name(i)], dtype=self.dtype)
            self._biases[i][...] = np.asarray(values[bias_name(i)], dtype=self.dtype)


class Backend(NumpyBackend):
    """The NumPy backend with :class:`PartialWriteModel`."""

    name = "broken_partial_write"

    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: DTypeName) -> PartialWriteModel:
        return PartialWriteModel(spec, variables, dtype)
