"""The user-facing MLP: a spec, a backend, and the variables that backend holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt

from mlpcore.backend import Backend, BackendModel, Capability, supported_dtypes
from mlpcore.data.rows import Rows, as_rows
from mlpcore.devices import available_devices, resolve_device
from mlpcore.initialisers import Initialiser, initial_variables
from mlpcore.losses import LossName, check_loss
from mlpcore.optimizers import OptimizerState
from mlpcore.registry import get_backend
from mlpcore.regularisers import Regulariser
from mlpcore.spec import ComputeDType, DTypeName, MLPSpec, check_compute_dtype, master_dtype
from mlpcore.validation import check_finite_block, check_inputs, check_rows, check_targets

if TYPE_CHECKING:
    from mlpcore.training import Data, History

__all__ = ["MLP", "Evaluation", "IncompatibleKeys", "variable_problems"]

FloatArray = npt.NDArray[np.floating]


@dataclass(frozen=True)
class Evaluation:
    """Mean loss and classification accuracy (argmax of the outputs) over a dataset."""

    loss: float
    accuracy: float


class IncompatibleKeys(NamedTuple):
    """What :meth:`MLP.load_state_dict` left alone: the model's variables it was not given
    (kept), and the names it was given that the model does not have (ignored)."""

    missing_keys: list[str]
    unexpected_keys: list[str]


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
    the same spec and seed give the same model on every backend.

    ``loss`` is the loss the model is trained and evaluated with: ``fit`` sets it to the loss it
    trains with, and :meth:`evaluate` and ``fit`` use it when given none.

    ``dtype`` ``"bfloat16"`` or ``"float16"`` is mixed precision: the variables (and
    :meth:`state_dict`, checkpoints) stay float32 masters, the passes compute in ``dtype``.
    ``device`` (default: the CPU) is a portable name (``"cpu"``, ``"gpu"``, ``"gpu:N"``) or the
    backend's own (torch ``"cuda:1"``, TensorFlow ``"/GPU:1"``); see docs/devices.md."""

    def __init__(self, spec: MLPSpec, backend: str | Backend | None = None, *, seed: int = 0,
                 dtype: str = "float32", weights_init: Initialiser | None = None,
                 bias_init: Initialiser | None = None, loss: str = "softmax_cross_entropy",
                 device: str | None = None):
        self._attach(spec, backend, dtype, seed, device)
        self.loss: LossName = check_loss(loss)
        values = initial_variables(spec, seed, weights_init, bias_init,
                                   dtype=self.variable_dtype)
        self.native: BackendModel = self._build(values, self.device)

    def _attach(self, spec: MLPSpec, backend: str | Backend | None, dtype: str, seed: int,
                device: str | None) -> None:
        self.spec, self.seed = spec, seed
        self.optimizer_state: OptimizerState | None = None
        """Where the last ``fit`` left its optimizer; the next ``fit`` with an equal optimizer
        continues from it (``mlpcore.save`` stores it, ``mlpcore.load`` restores it)."""
        self.dtype: ComputeDType = check_compute_dtype(dtype)
        if backend is None or isinstance(backend, str):
            backend = get_backend(backend)
        self.backend = backend
        supported = supported_dtypes(backend)
        if self.dtype not in supported:
            raise ValueError(f"backend {backend.name!r} does not support dtype {self.dtype!r}; "
                             f"it supports {', '.join(supported)}")
        self.device = resolve_device(backend, device)

    def _build(self, values: Mapping[str, Any], device: str) -> BackendModel:
        """``backend.build``, given ``device=`` unless it is the backend's CPU (its default, so
        a ``build`` written before devices existed keeps working there)."""
        if device != available_devices(self.backend)[0]:
            return self.backend.build(self.spec, values, self.dtype,  # type: ignore[call-arg]
                                      device=device)
        return self.backend.build(self.spec, values, self.dtype)

    @classmethod
    def from_variables(cls, spec: MLPSpec, values: Mapping[str, Any],
                       backend: str | Backend | None = None, *, dtype: str = "float32",
                       seed: int = 0, loss: str = "softmax_cross_entropy",
                       device: str | None = None) -> MLP:
        """A model holding ``values`` (exactly ``spec``'s variables, else ``ValueError`` listing
        every problem), copied once by the backend: checkpoint loading makes no other copy."""
        problems = variable_problems(spec, values)
        if problems:
            raise ValueError("cannot build the model: " + "; ".join(problems))
        model = cls.__new__(cls)
        model._attach(spec, backend, dtype, seed, device)
        model.loss = check_loss(loss)
        model.native = model._build(values, model.device)
        return model

    @property
    def variable_dtype(self) -> DTypeName:
        """The dtype of the variables, checkpoints and inputs: float32 in mixed precision."""
        return master_dtype(self.dtype)

    def _place(self, device: str) -> None:
        """Move this model to ``device`` in place (``fit(device=...)``), variables bit for bit."""
        name = resolve_device(self.backend, device)
        if name != self.device:
            self.native = self._build(self.native.read_variables(), name)
            self.device = name

    def __repr__(self) -> str:
        return (f"MLP(sizes={self.spec.sizes}, activation={self.spec.activation!r}, dropout="
                f"{self.spec.dropout}, backend={self.backend.name!r}, dtype={self.dtype!r}, "
                f"device={self.device!r})")

    def state_dict(self) -> dict[str, FloatArray]:
        """Copies of every variable as NumPy arrays, by canonical name, canonical layout."""
        return self.native.read_variables()

    def load_state_dict(self, values: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Replace the model's variables by ``values`` (numeric, cast to :attr:`variable_dtype`);
        all-or-nothing, a ``ValueError`` lists every problem at once.

        ``strict=True``: ``values`` holds exactly the model's variables. ``strict=False`` (as
        torch's): a variable ``values`` lacks keeps its value and a name the model lacks is
        ignored, both reported in the returned :class:`IncompatibleKeys`; a wrong shape or a
        non-numeric value is still refused."""
        expected = self.spec.variable_shapes()
        missing = [name for name in expected if name not in values]
        unexpected = [name for name in values if name not in expected]
        given = dict(values) if strict else {n: v for n, v in values.items() if n in expected}
        problems = variable_problems(self.spec, given) if strict else [
            p for p in variable_problems(self.spec, given) if not p.startswith("missing")]
        arrays = {name: np.asarray(value) for name, value in given.items()}
        problems += [f"variable {name!r} has non-numeric dtype {array.dtype}"
                     for name, array in arrays.items() if array.dtype.kind not in "fiu"]
        if problems:
            raise ValueError("cannot assign variables: " + "; ".join(problems))
        complete = self.state_dict() if missing else {}
        complete.update(arrays)
        self.native.write_variables(
            {name: np.ascontiguousarray(complete[name], dtype=self.variable_dtype)
             for name in expected})
        return IncompatibleKeys(missing, unexpected)

    @property
    def variables(self) -> dict[str, FloatArray]:
        """:meth:`state_dict`: copies of every variable by canonical name."""
        return self.state_dict()

    def assign(self, values: Mapping[str, Any]) -> None:
        """:meth:`load_state_dict` with ``strict=True``: replace every variable by ``values``."""
        self.load_state_dict(values, strict=True)

    def to(self, backend: str | Backend | None = None, *, device: str | None = None) -> MLP:
        """A new model of the same spec, dtype, seed and loss, holding bit-for-bit copies of this
        model's variables and optimizer state, on ``backend`` (a name or a backend object;
        default: this one's) and ``device`` (default: this model's device on its own backend,
        else the CPU); this one is unchanged. A :class:`~mlpcore.errors.DeviceError` lists the
        devices available."""
        target = self.backend if backend is None else backend
        same = target is self.backend or target == self.backend.name
        model = MLP.from_variables(self.spec, self.state_dict(), target, dtype=self.dtype,
                                   seed=self.seed, loss=self.loss,
                                   device=self.device if device is None and same else device)
        state = self.optimizer_state
        model.optimizer_state = None if state is None else replace(
            state, slots={name: np.array(value) for name, value in state.slots.items()})
        return model

    def fit(self, train: Data, *, validation_data: Data | None = None,
            **options: Any) -> History:
        """:func:`mlpcore.fit` as a method, Keras's way: ``model.fit(train, validation_data=...,
        callbacks=[...], epochs=...)`` takes every keyword argument of :func:`mlpcore.fit`
        (``validation_data`` is its ``validation``)."""
        from mlpcore.training import fit

        if validation_data is not None:
            if options.get("validation") is not None:
                raise TypeError("give validation_data or validation, not both")
            options["validation"] = validation_data
        return fit(self, train, **options)

    def predict(self, x: Any) -> FloatArray:
        """Outputs (logits) (N, n_outputs), eval mode; a NaN in a row gives NaN for that row.

        :class:`~mlpcore.data.rows.Rows` and memory-mapped arrays are read a block at a time."""
        rows = as_rows(x)
        if rows is None:
            return self.native.forward(check_inputs(x, self.spec.n_inputs, self.variable_dtype))
        check_rows(rows, self.spec.n_inputs, self.variable_dtype)
        out = np.empty((len(rows), self.spec.n_outputs), self.variable_dtype)
        for where, block in rows.blocks(self.variable_dtype):
            out[where] = self.native.forward(block)
        return out

    def predict_classes(self, x: Any) -> npt.NDArray[np.int64]:
        """The argmax class of each row, shape (N,)."""
        classes: npt.NDArray[np.int64] = np.argmax(self.predict(x), axis=1).astype(np.int64)
        return classes

    def evaluate(self, x: Any, targets: Any, loss: str | None = None) -> Evaluation:
        """Mean ``loss`` (default: the model's :attr:`loss`; without penalties) and accuracy over
        ``(x, targets)``, eval mode."""
        loss_name = check_loss(self.loss if loss is None else loss)
        rows = as_rows(x)
        if rows is not None:
            return self._evaluate_rows(rows, targets, loss_name)
        inputs = check_inputs(x, self.spec.n_inputs, self.variable_dtype, finite=True)
        labels = check_targets(targets, len(inputs), self.spec.n_outputs, loss_name,
                               self.variable_dtype)
        outputs = self.native.forward(inputs)
        classes = labels if labels.ndim == 1 else np.argmax(labels, axis=1)
        return Evaluation(loss=self.backend.losses.value(loss_name, outputs, labels),
                          accuracy=float(np.mean(np.argmax(outputs, axis=1) == classes)))

    def _evaluate_rows(self, rows: Rows, targets: Any, loss: LossName) -> Evaluation:
        """:meth:`evaluate` a block at a time: the loss is the row-weighted mean of the blocks'
        mean losses (the same mean, rounded differently), each block checked for NaN and inf."""
        check_rows(rows, self.spec.n_inputs, self.variable_dtype)
        labels = check_targets(targets, len(rows), self.spec.n_outputs, loss, self.variable_dtype)
        classes = labels if labels.ndim == 1 else np.argmax(labels, axis=1)
        total, correct = 0.0, 0
        for where, block in rows.blocks(self.variable_dtype):
            check_finite_block(block, where.start, "inputs")
            outputs = self.native.forward(block)
            total += self.backend.losses.value(loss, outputs, labels[where]) * len(block)
            correct += int(np.count_nonzero(np.argmax(outputs, axis=1) == classes[where]))
        return Evaluation(loss=total / len(rows), accuracy=correct / len(rows))

    def loss_and_gradients(self, x: Any, targets: Any, loss: str | None = None,
                           regularisers: Sequence[Regulariser] = (),
                           keep_masks: Sequence[npt.NDArray[np.bool_]] | None = None,
                           ) -> tuple[float, dict[str, FloatArray]]:
        """The objective on one batch (``loss`` default: the model's) and its gradient for every
        variable (canonical layout)."""
        if Capability.GRADIENTS not in self.backend.capabilities:
            raise NotImplementedError(f"backend {self.backend.name!r} does not offer gradients")
        loss_name = check_loss(self.loss if loss is None else loss)
        inputs = check_inputs(x, self.spec.n_inputs, self.variable_dtype, finite=True)
        labels = check_targets(targets, len(inputs), self.spec.n_outputs, loss_name,
                               self.variable_dtype)
        return self.native.loss_and_gradients(inputs, labels, loss_name, tuple(regularisers),
                                              keep_masks)
