"""Every Hypothesis strategy of the conformance suite, and its settings, in one place.

Settings: :func:`conformance_settings` is the decorator every property test wears. The number of
examples is :data:`DEFAULT_EXAMPLES` unless ``--mlpcore-examples N`` says otherwise; runs are
derandomized (the same examples every time, no example database) when the ``CI`` environment
variable is set. The plugin calls :func:`configure` before the test modules are imported.

Values stay where the contracts promise agreement within the tolerance table: logits within ±50
for the general loss tests (huge and tiny logits have their own explicit tests), activation inputs
up to ±1000, small layer widths so that a failing example prints as a short literal. No strategy
draws subnormal numbers: platforms may flush them to zero (TensorFlow does on CPU), and the
numeric contracts do not cover them; checkpoints must still keep them bit for bit, which
``test_checkpoints`` checks with explicit values.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import hypothesis.extra.numpy as hnp
import numpy as np
import numpy.typing as npt
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument

import mlpcore
from mlpcore.losses import LossName
from mlpcore.regularisers import Regulariser
from mlpcore.spec import ActivationName

__all__ = [
    "DEFAULT_EXAMPLES",
    "DTYPES",
    "LOSSES",
    "Batch",
    "MLPProblem",
    "activation_inputs",
    "batches",
    "configure",
    "conformance_settings",
    "float_arrays",
    "mlp_problems",
    "rates",
    "regularisers",
    "weight_lists",
]

DEFAULT_EXAMPLES = 20
"""Examples per property test unless ``--mlpcore-examples`` raises it."""
DTYPES = ("float32", "float64")
LOSSES: tuple[LossName, ...] = ("softmax_cross_entropy", "mse")
TARGET_KINDS = ("labels", "one_hot", "probabilities")

PROFILE = "mlpcore-conformance"
"""The Hypothesis settings profile :func:`configure` registers (Hypothesis keeps it, so it survives
pytest runs nested in one process)."""


def configure(*, max_examples: int, derandomize: bool) -> None:
    """Set the examples per test and derandomization for the tests imported afterwards."""
    options: dict[str, Any] = {
        "max_examples": int(max_examples),
        "derandomize": bool(derandomize),
        "deadline": None,
        "print_blob": True,
        # one failure per test, replayed last: the session shows that replay's snippet
        "report_multiple_bugs": False,
        "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
    }
    if derandomize:
        options["database"] = None
    settings.register_profile(PROFILE, **options)


def conformance_settings(**overrides: Any) -> settings:
    """The Hypothesis settings of a property test (a decorator)."""
    try:
        base = settings.get_profile(PROFILE)
    except InvalidArgument:
        configure(max_examples=DEFAULT_EXAMPLES, derandomize=bool(os.environ.get("CI")))
        base = settings.get_profile(PROFILE)
    return settings(base, **overrides)


def _floats(dtype: str, low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(low, high, width=32 if dtype == "float32" else 64,
                     allow_nan=False, allow_infinity=False, allow_subnormal=False)


def float_arrays(dtype: str, shape: tuple[int, ...] | st.SearchStrategy[tuple[int, ...]],
                 low: float = -50.0, high: float = 50.0
                 ) -> st.SearchStrategy[npt.NDArray[np.floating]]:
    """Finite arrays of ``dtype`` with values in ``[low, high]``."""
    return hnp.arrays(np.dtype(dtype), shape, elements=_floats(dtype, low, high))


def activation_inputs(dtype: str) -> st.SearchStrategy[npt.NDArray[np.floating]]:
    """Arrays of 1 to 3 dimensions mixing ordinary values with 0, ±1000 and the values where
    float32 ``exp`` overflows."""
    special = st.sampled_from([0.0, -0.0, 1000.0, -1000.0, 88.5, -88.5, 89.0, -89.0, 20.0,
                               -20.0])
    elements = st.one_of(_floats(dtype, -30.0, 30.0), special)
    shape = hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=5)
    return hnp.arrays(np.dtype(dtype), shape, elements=elements)


@dataclass(frozen=True)
class Batch:
    """Outputs and targets for a loss: ``targets`` are int64 labels (N,) or floats (N, K)."""

    outputs: npt.NDArray[np.floating]
    targets: npt.NDArray[Any]
    kind: str


@st.composite
def batches(draw: st.DrawFn, dtype: str, loss: str, max_abs: float = 50.0) -> Batch:
    """A batch of 1-6 rows and 1-5 outputs for ``loss``: logits in ``±max_abs`` with labels,
    one-hot rows or probability rows (cross-entropy), or float targets (MSE)."""
    n = draw(st.integers(1, 6))
    k = draw(st.integers(1 if loss == "mse" else 2, 5))
    outputs = draw(float_arrays(dtype, (n, k), -max_abs, max_abs))
    if loss == "mse":
        return Batch(outputs, draw(float_arrays(dtype, (n, k), -5.0, 5.0)), "floats")
    kind = draw(st.sampled_from(TARGET_KINDS))
    labels = np.asarray(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)),
                        dtype=np.int64)
    if kind == "labels":
        return Batch(outputs, labels, kind)
    if kind == "one_hot":
        return Batch(outputs, np.eye(k, dtype=dtype)[labels], kind)
    weights = draw(float_arrays("float64", (n, k), 0.01, 1.0))
    return Batch(outputs, (weights / weights.sum(axis=1, keepdims=True)).astype(dtype), kind)


@st.composite
def regularisers(draw: st.DrawFn) -> Regulariser:
    """``L1(λ)`` or ``L2(λ)`` with ``λ`` in [0, 1]."""
    strength = draw(st.floats(0.0, 1.0))
    return mlpcore.L1(strength) if draw(st.booleans()) else mlpcore.L2(strength)


@st.composite
def weight_lists(draw: st.DrawFn, dtype: str) -> list[npt.NDArray[np.floating]]:
    """One to three weight matrices, some entries exactly 0 (where L1's sign is 0)."""
    count = draw(st.integers(1, 3))
    shapes = [draw(hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=5))
              for _ in range(count)]
    elements = st.one_of(_floats(dtype, -3.0, 3.0), st.just(0.0))
    return [draw(hnp.arrays(np.dtype(dtype), shape, elements=elements)) for shape in shapes]


def rates() -> st.SearchStrategy[float]:
    """Valid dropout rates in [0, 1), the ends included with extra weight."""
    return st.one_of(st.sampled_from([0.0, 0.5, 0.9]), st.floats(0.0, 0.95))


@dataclass(frozen=True)
class MLPProblem:
    """A small MLP, its variables and a batch to run it on."""

    spec: mlpcore.MLPSpec
    variables: dict[str, npt.NDArray[np.floating]]
    x: npt.NDArray[np.floating]
    targets: npt.NDArray[Any]
    loss: LossName
    regularisers: tuple[Regulariser, ...]
    keep_masks: list[npt.NDArray[np.bool_]] | None


@st.composite
def mlp_problems(draw: st.DrawFn, dtype: str, training: bool = True) -> MLPProblem:
    """1-3 dense layers of width 1-5, any activation, weights in ±1, inputs in ±3, a loss with
    matching targets, up to two regularisers, and (when ``training``) dropout keep-masks."""
    sizes = tuple(draw(st.lists(st.integers(1, 5), min_size=2, max_size=4)))
    activation: ActivationName = draw(st.sampled_from(("relu", "sigmoid", "tanh")))
    dropout = draw(st.sampled_from([0.0, 0.25, 0.5])) if training else 0.0
    spec = mlpcore.MLPSpec(sizes, activation=activation, dropout=dropout)
    variables = {}
    for name, shape in spec.variable_shapes().items():
        variables[name] = draw(float_arrays(dtype, shape, -1.0, 1.0))
    n = draw(st.integers(1, 5))
    x = draw(float_arrays(dtype, (n, sizes[0]), -3.0, 3.0))
    loss: LossName = draw(st.sampled_from(LOSSES if sizes[-1] > 1 else ("mse",)))
    if loss == "mse":
        targets: npt.NDArray[Any] = draw(float_arrays(dtype, (n, sizes[-1]), -1.0, 1.0))
    else:
        labels = np.asarray(draw(st.lists(st.integers(0, sizes[-1] - 1), min_size=n,
                                          max_size=n)), dtype=np.int64)
        targets = labels if draw(st.booleans()) else np.eye(sizes[-1], dtype=dtype)[labels]
    regs = tuple(draw(st.lists(regularisers(), max_size=2)))
    masks = None
    if training and dropout > 0.0:
        masks = [draw(hnp.arrays(np.bool_, (n, width))) for width in sizes[1:-1]]
    return MLPProblem(spec, variables, x, targets, loss, regs, masks)
