"""The user-facing MLP: a spec, a backend, and the variables that backend holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import Backend, BackendModel, Capability
from mlpcore.initialisers import Initialiser, initial_variables
from mlpcore.losses import LossName, check_loss
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


def resolve_backend(backend: str | Backend | None) -> Backend:
    """A backend object from a name, ``None`` (the default backend) or a backend object."""
    if backend is None or isinstance(backend, str):
        return get_backend(backend)
    return backend


def variable_problems(spec: MLPSpec, values: Mapping[str, Any]) -> list[str]:
    """Every missing, unexpected and wrong-shape variable of ``values`` against ``spec``."""
    expected = spec.variable_shapes()
    problems = [f"missing variable {name!r} (expected shape {shape})"
                for name, shape in expected.items() if name not in values]
    problems += [f"unexpected variable {name!r}" for name in values if name not in expected]
    for name, shape in expected.items():
        if name in values:
            got = tuple(np.shape(values[name]))
            if got != shape:
                problems.append(f"variable {name!r} has shape {got}, expected {shape}")
    return problems


class MLP:
    """A multilayer perceptron built from ``spec`` on one backend.

    The starting variables come from ``initial_variables(spec, seed, ...)`` (by default
    truncated-normal(0.1) weights and zero biases), drawn in NumPy, so the same spec and seed give
    the same model on every backend. ``backend`` is a name, a backend object, or ``None`` for
    ``$MLPCORE_BACKEND`` / ``"numpy"``.
    """

    def __init__(self, spec: MLPSpec, backend: str | Backend | None = None, *, seed: int = 0,
                 dtype: str = "float32", weights_init: Initialiser | None = None,
                 bias_init: Initialiser | None = None):
        self.spec = spec
        self.dtype: DTypeName = check_dtype(dtype)
        self.seed = seed
        self.backend = resolve_backend(backend)
        if self.dtype == "float64" and Capability.FLOAT64 not in self.backend.capabilities:
            raise ValueError(f"backend {self.backend.name!r} does not support float64")
        values = initial_variables(spec, seed, weights_init, bias_init, dtype=self.dtype)
        self.native: BackendModel = self.backend.build(spec, values, self.dtype)

    @classmethod
    def from_variables(cls, spec: MLPSpec, values: Mapping[str, Any],
                       backend: str | Backend | None = None, *, dtype: str = "float32",
                       seed: int = 0) -> MLP:
        """A model holding ``values`` from the start, without drawing initial weights.

        ``values`` must name exactly ``spec``'s variables with their shapes (``ValueError``
        listing every problem otherwise). The backend copies them into its own arrays once; no
        other full-size array is made (checkpoint loading relies on this).
        """
        problems = variable_problems(spec, values)
        if problems:
            raise ValueError("cannot build the model: " + "; ".join(problems))
        model = cls.__new__(cls)
        model.spec = spec
        model.dtype = check_dtype(dtype)
        model.seed = seed
        model.backend = resolve_backend(backend)
        if model.dtype == "float64" and Capability.FLOAT64 not in model.backend.capabilities:
            raise ValueError(f"backend {model.backend.name!r} does not support float64")
        model.native = model.backend.build(spec, values, model.dtype)
        return model

    def __repr__(self) -> str:
        return (f"MLP(sizes={self.spec.sizes}, activation={self.spec.activation!r}, "
                f"dropout={self.spec.dropout}, backend={self.backend.name!r}, "
                f"dtype={self.dtype!r})")

    @property
    def variables(self) -> dict[str, FloatArray]:
        """Copies of every variable as NumPy arrays, by canonical name, canonical layout."""
        return self.native.read_variables()

    def assign(self, values: Mapping[str, Any]) -> None:
        """Replace every variable. All-or-nothing: on any problem nothing changes.

        ``values`` must name exactly the model's variables with their shapes; they are cast to
        the model's dtype. Raises ``ValueError`` listing every problem at once.
        """
        problems = variable_problems(self.spec, values)
        arrays = {name: np.asarray(value) for name, value in values.items()}
        problems += [f"variable {name!r} has non-numeric dtype {array.dtype}"
                     for name, array in arrays.items() if array.dtype.kind not in "fiu"]
        if problems:
            raise ValueError("cannot assign variables: " + "; ".join(problems))
        converted: dict[str, FloatArray] = {
            name: np.ascontiguousarray(array, dtype=self.dtype) for name, array in arrays.items()}
        self.native.write_variables(converted)

    def predict(self, x: Any) -> FloatArray:
        """Outputs (logits) of shape (N, n_outputs) in eval mode (no dropout).

        NaN in a row of ``x`` gives NaN outputs for that row.
        """
        return self.native.forward(check_inputs(x, self.spec.n_inputs, self.dtype))

    def predict_classes(self, x: Any) -> npt.NDArray[np.int64]:
        """The argmax class of each row, shape (N,)."""
        classes: npt.NDArray[np.int64] = np.argmax(self.predict(x), axis=1).astype(np.int64)
        return classes

    def evaluate(self, x: Any, targets: Any,
                 loss: str = "softmax_cross_entropy") -> Evaluation:
        """Mean ``loss`` (without penalties) and accuracy over ``(x, targets)``, eval mode."""
        loss_name: LossName = check_loss(loss)
        inputs = check_inputs(x, self.spec.n_inputs, self.dtype, finite=True)
        labels = check_targets(targets, inputs.shape[0], self.spec.n_outputs, loss_name,
                               self.dtype)
        outputs = self.native.forward(inputs)
        value = self.backend.losses.value(loss_name, outputs, labels)
        classes = labels if labels.ndim == 1 else np.argmax(labels, axis=1)
        accuracy = float(np.mean(np.argmax(outputs, axis=1) == classes))
        return Evaluation(loss=value, accuracy=accuracy)

    def loss_and_gradients(self, x: Any, targets: Any, loss: str = "softmax_cross_entropy",
                           regularisers: Sequence[Regulariser] = (),
                           keep_masks: Sequence[npt.NDArray[np.bool_]] | None = None,
                           ) -> tuple[float, dict[str, FloatArray]]:
        """The objective on one batch and its gradient for every variable (canonical layout)."""
        if Capability.GRADIENTS not in self.backend.capabilities:
            raise NotImplementedError(f"backend {self.backend.name!r} does not offer gradients")
        loss_name = check_loss(loss)
        inputs = check_inputs(x, self.spec.n_inputs, self.dtype, finite=True)
        labels = check_targets(targets, inputs.shape[0], self.spec.n_outputs, loss_name,
                               self.dtype)
        return self.native.loss_and_gradients(inputs, labels, loss_name, tuple(regularisers),
                                              keep_masks)
