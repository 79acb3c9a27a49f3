"""The user-facing MLP: a spec, a backend, and the variables that backend holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import Backend, BackendModel, Capability
from mlpcore.initialisers import Initialiser, initial_variables
from mlpcore.losses import check_loss
from mlpcore.registry import get_backend
from mlpcore.regularisers import Regulariser
from mlpcore.spec import DTypeName, MLPSpec, check_dtype
from mlpcore.validation import check_inputs, check_targets

__all__ = ["MLP", "Evaluation", "variable_problems"]

FloatArray = npt.NDArray[np.floating]


@dataclass(frozen=True)
class Evaluation:
    """Mean loss and classification accuracy (argmax of the outputs) over a dataset."""

    loss: float
    accuracy: float


def variable_problems(spec: MLPSpec, values: Mapping[str, Any]) -> list[str]:
    """Every missing, unexpected and wrong-shape variable of ``values`` against ``spec``."""
    expected = spec.variable_shapes()
    problems = [f"missing variable {name!r} (expected shape {shape})"
                for name, shape in expected.items() if name not in values]
    problems += [f"unexpected variable {name!r}" for name in values if name not in expected]
    shapes = {name: tuple(np.shape(values[name])) for name in expected if name in values}
    return problems + [f"variable {name!r} has shape {got}, expected {expected[name]}"
                       for name, got in shapes.items() if got != expected[name]]


class MLP:
    """A multilayer perceptron of ``spec`` on ``backend`` (a name, a backend object, or ``None``
    for the default), starting from ``initial_variables(spec, seed, weights_init, bias_init)``:
    the same spec and seed give the same model on every backend."""

    def __init__(self, spec: MLPSpec, backend: str | Backend | None = None, *, seed: int = 0,
                 dtype: str = "float32", weights_init: Initialiser | None = None,
                 bias_init: Initialiser | None = None):
        self._attach(spec, backend, dtype, seed)
        values = initial_variables(spec, seed, weights_init, bias_init, dtype=self.dtype)
        self.native: BackendModel = self.backend.build(spec, values, self.dtype)

    def _attach(self, spec: MLPSpec, backend: str | Backend | None, dtype: str, seed: int) -> None:
        self.spec, self.seed = spec, seed
        self.dtype: DTypeName = check_dtype(dtype)
        if backend is None or isinstance(backend, str):
            backend = get_backend(backend)
        self.backend = backend
        if self.dtype == "float64" and Capability.FLOAT64 not in self.backend.capabilities:
            raise ValueError(f"backend {self.backend.name!r} does not support float64")

    @classmethod
    def from_variables(cls, spec: MLPSpec, values: Mapping[str, Any],
                       backend: str | Backend | None = None, *, dtype: str = "float32",
                       seed: int = 0) -> MLP:
        """A model holding ``values`` (exactly ``spec``'s variables, else ``ValueError`` listing
        every problem), copied once by the backend: checkpoint loading makes no other copy."""
        problems = variable_problems(spec, values)
        if problems:
            raise ValueError("cannot build the model: " + "; ".join(problems))
        model = cls.__new__(cls)
        model._attach(spec, backend, dtype, seed)
        model.native = model.backend.build(spec, values, model.dtype)
        return model

    def __repr__(self) -> str:
        return (f"MLP(sizes={self.spec.sizes}, activation={self.spec.activation!r}, dropout="
                f"{self.spec.dropout}, backend={self.backend.name!r}, dtype={self.dtype!r})")

    @property
    def variables(self) -> dict[str, FloatArray]:
        """Copies of every variable as NumPy arrays, by canonical name, canonical layout."""
        return self.native.read_variables()

    def assign(self, values: Mapping[str, Any]) -> None:
        """Replace every variable by ``values`` (exactly the model's variables, numeric, cast to
        its dtype); all-or-nothing, a ``ValueError`` lists every problem at once."""
        problems = variable_problems(self.spec, values)
        arrays = {name: np.asarray(value) for name, value in values.items()}
        problems += [f"variable {name!r} has non-numeric dtype {array.dtype}"
                     for name, array in arrays.items() if array.dtype.kind not in "fiu"]
        if problems:
            raise ValueError("cannot assign variables: " + "; ".join(problems))
        self.native.write_variables(
            {name: np.ascontiguousarray(array, dtype=self.dtype) for name, array in arrays.items()})

    def predict(self, x: Any) -> FloatArray:
        """Outputs (logits) (N, n_outputs), eval mode; a NaN in a row gives NaN for that row."""
        return self.native.forward(check_inputs(x, self.spec.n_inputs, self.dtype))

    def predict_classes(self, x: Any) -> npt.NDArray[np.int64]:
        """The argmax class of each row, shape (N,)."""
        classes: npt.NDArray[np.int64] = np.argmax(self.predict(x), axis=1).astype(np.int64)
        return classes

    def evaluate(self, x: Any, targets: Any, loss: str = "softmax_cross_entropy") -> Evaluation:
        """Mean ``loss`` (without penalties) and accuracy over ``(x, targets)``, eval mode."""
        loss_name = check_loss(loss)
        inputs = check_inputs(x, self.spec.n_inputs, self.dtype, finite=True)
        labels = check_targets(targets, len(inputs), self.spec.n_outputs, loss_name, self.dtype)
        outputs = self.native.forward(inputs)
        classes = labels if labels.ndim == 1 else np.argmax(labels, axis=1)
        return Evaluation(loss=self.backend.losses.value(loss_name, outputs, labels),
                          accuracy=float(np.mean(np.argmax(outputs, axis=1) == classes)))

    def loss_and_gradients(self, x: Any, targets: Any, loss: str = "softmax_cross_entropy",
                           regularisers: Sequence[Regulariser] = (),
                           keep_masks: Sequence[npt.NDArray[np.bool_]] | None = None,
                           ) -> tuple[float, dict[str, FloatArray]]:
        """The objective on one batch and its gradient for every variable (canonical layout)."""
        if Capability.GRADIENTS not in self.backend.capabilities:
            raise NotImplementedError(f"backend {self.backend.name!r} does not offer gradients")
        loss_name = check_loss(loss)
        inputs = check_inputs(x, self.spec.n_inputs, self.dtype, finite=True)
        labels = check_targets(targets, len(inputs), self.spec.n_outputs, loss_name, self.dtype)
        return self.native.loss_and_gradients(inputs, labels, loss_name, tuple(regularisers),
                                              keep_masks)
