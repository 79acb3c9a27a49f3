"""An independent float64 NumPy reference of every mlpcore contract.

Written from the maths in ``docs/contracts.md``, separately from the NumPy backend: this module
imports neither ``mlpcore_numpy`` nor any other backend, and not even ``mlpcore.random`` or
``mlpcore.initialisers`` (the random streams and initialisers are re-derived from their documented
formulas, so the suite also checks the core's own draws). Everything is computed in float64 from
the inputs as given: to compare a float32 backend, cast the inputs to float32 first and hand the
rounded values to both. Where the contract allows more than one formula the reference picks the
most accurate one (sigmoid as ``exp(min(x, 0)) / (1 + exp(-|x|))``, log-sum-exp with the row
maximum subtracted), and it derives activation derivatives from the pre-activation, not from the
output as the NumPy backend does.

Objects from the core are read by duck typing: a spec has ``sizes``, ``activation`` and
``dropout``; a regulariser has ``kind`` (``"l1"``/``"l2"``) and ``strength``; an initialiser is
recognised by its class name and fields; an optimizer has ``lr`` and ``momentum`` (and
``nesterov``), or ``lr``, ``betas`` and ``eps`` (Adam).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from mlpcore.spec import ActivationName  # a type only: the maths below is independent

__all__ = [
    "ACTIVATIONS",
    "DEFAULT_BIAS",
    "DEFAULT_WEIGHTS",
    "PURPOSE_DROPOUT",
    "PURPOSE_INIT",
    "PURPOSE_SHUFFLE",
    "TrainResult",
    "activation",
    "activation_derivative",
    "clear_of_relu_kinks",
    "dropout",
    "epoch_order",
    "finite_difference_gradients",
    "forward",
    "initial_variables",
    "keep_mask",
    "loss",
    "loss_and_gradients",
    "loss_gradient",
    "one_hot",
    "penalty",
    "penalty_gradient",
    "philox",
    "sample_initialiser",
    "train_steps",
    "variable_names",
]

F64 = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

ACTIVATIONS: tuple[ActivationName, ...] = ("relu", "sigmoid", "tanh")
PURPOSE_INIT = 1
"""First element of the stream path of initial variables: ``(seed, 1, layer, slot)``."""
PURPOSE_DROPOUT = 2
"""First element of the stream path of portable dropout masks: ``(seed, 2, step, layer)``."""
PURPOSE_SHUFFLE = 3
"""First element of the stream path of an epoch's order: ``(seed, 3, epoch)``."""


class SpecLike(Protocol):
    """What the reference reads from an ``MLPSpec``."""

    @property
    def sizes(self) -> tuple[int, ...]: ...

    @property
    def activation(self) -> str: ...

    @property
    def dropout(self) -> float: ...


class RegulariserLike(Protocol):
    """What the reference reads from ``L1``/``L2``."""

    @property
    def kind(self) -> str: ...

    @property
    def strength(self) -> float: ...


def _f64(x: Any) -> F64:
    return np.asarray(x, dtype=np.float64)


# --------------------------------------------------------------------------------- activations

def activation(name: str, x: Any) -> F64:
    """``f(x)`` element-wise: ``max(x, 0)``, ``1 / (1 + exp(-x))`` or ``tanh(x)``."""
    v = _f64(x)
    if name == "relu":
        return _f64(np.maximum(v, 0.0))
    if name == "sigmoid":
        # never exponentiates a positive number: no overflow at |x| = 1000
        return _f64(np.exp(np.minimum(v, 0.0)) / (1.0 + np.exp(-np.abs(v))))
    if name == "tanh":
        return _f64(np.tanh(v))
    raise ValueError(f"unknown activation {name!r}")


def activation_derivative(name: str, x: Any) -> F64:
    """``f'(x)`` at the pre-activation ``x``; relu'(0) = 0."""
    v = _f64(x)
    if name == "relu":
        return _f64(np.where(np.isnan(v), np.nan, (v > 0).astype(np.float64)))
    if name == "sigmoid":
        # s(x) (1 - s(x)) = s(|x|)' = exp(-|x|) / (1 + exp(-|x|))^2, exact at both tails
        e = np.exp(-np.abs(v))
        return _f64(e / (1.0 + e) ** 2)
    if name == "tanh":
        # 1 - tanh² = 1 / cosh², without cancellation where tanh is close to ±1
        with np.errstate(over="ignore"):
            return _f64(1.0 / np.cosh(v) ** 2)
    raise ValueError(f"unknown activation {name!r}")


# -------------------------------------------------------------------------------------- losses

def one_hot(labels: Any, n_classes: int) -> F64:
    """Rows of the identity picked by integer ``labels``."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros((labels.shape[0], n_classes))
    out[np.arange(labels.shape[0]), labels] = 1.0
    return out


def _float_targets(outputs: F64, targets: Any) -> F64:
    targets = np.asarray(targets)
    if targets.ndim == 1 and targets.dtype.kind in "iu":
        return one_hot(targets, outputs.shape[1])
    return _f64(targets)


def _log_softmax(z: F64) -> F64:
    shifted = z - z.max(axis=1, keepdims=True)
    return _f64(shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True)))


def loss(name: str, outputs: Any, targets: Any) -> float:
    """The batch-mean loss.

    ``softmax_cross_entropy``: ``-(1/N) Σ_n Σ_k t_nk log_softmax(z_n)_k`` (labels become one-hot
    rows); ``mse``: the mean of ``(o - t)²`` over every element.
    """
    z = _f64(outputs)
    t = _float_targets(z, targets)
    if name == "softmax_cross_entropy":
        return float(-(t * _log_softmax(z)).sum() / z.shape[0])
    if name == "mse":
        return float(((z - t) ** 2).mean())
    raise ValueError(f"unknown loss {name!r}")


def loss_gradient(name: str, outputs: Any, targets: Any) -> F64:
    """``dL/d outputs``: ``(s_n softmax(z_n) - t_n) / N`` with ``s_n = Σ_k t_nk``, or
    ``2 (o - t) / (N K)``."""
    z = _f64(outputs)
    t = _float_targets(z, targets)
    if name == "softmax_cross_entropy":
        softmax = np.exp(_log_softmax(z))
        mass = t.sum(axis=1, keepdims=True)
        return _f64((mass * softmax - t) / z.shape[0])
    if name == "mse":
        return _f64(2.0 * (z - t) / z.size)
    raise ValueError(f"unknown loss {name!r}")


# -------------------------------------------------------------------------------- regularisers

def penalty(regulariser: RegulariserLike, weights: Sequence[Any]) -> float:
    """``λ Σ w² / 2`` (L2) or ``λ Σ |w|`` (L1) over the weight matrices."""
    strength = float(regulariser.strength)
    if regulariser.kind == "l2":
        return strength * sum(float((_f64(w) ** 2).sum()) for w in weights) / 2.0
    if regulariser.kind == "l1":
        return strength * sum(float(np.abs(_f64(w)).sum()) for w in weights)
    raise ValueError(f"unknown regulariser kind {regulariser.kind!r}")


def penalty_gradient(regulariser: RegulariserLike, weights: Sequence[Any]) -> list[F64]:
    """``λ W`` (L2) or ``λ sign(W)`` with ``sign(0) = 0`` (L1), one array per matrix."""
    strength = float(regulariser.strength)
    if regulariser.kind == "l2":
        return [strength * _f64(w) for w in weights]
    if regulariser.kind == "l1":
        return [strength * np.sign(_f64(w)) for w in weights]
    raise ValueError(f"unknown regulariser kind {regulariser.kind!r}")


# ------------------------------------------------------------------------------ random streams

def philox(seed: int, *path: int) -> np.random.Generator:
    """``Generator(Philox(SeedSequence(seed, spawn_key=path)))``, the documented stream."""
    return np.random.Generator(np.random.Philox(np.random.SeedSequence(seed, spawn_key=path)))


def keep_mask(seed: int, step: int, layer: int, shape: tuple[int, ...], rate: float) -> BoolArray:
    """The portable keep-mask: ``u >= float32(p)`` for ``u`` uniform float32 draws from the
    stream ``(seed, DROPOUT, step, layer)``."""
    uniform = philox(seed, PURPOSE_DROPOUT, step, layer).random(shape, dtype=np.float32)
    return uniform >= np.float32(rate)


def epoch_order(seed: int, epoch: int, n_rows: int) -> npt.NDArray[np.int64]:
    """The order in which epoch ``epoch`` visits ``n_rows`` training rows."""
    return philox(seed, PURPOSE_SHUFFLE, epoch).permutation(n_rows).astype(np.int64)


# ------------------------------------------------------------------------------------- dropout

def dropout(x: Any, rate: float, *, training: bool, mask: Any = None) -> F64:
    """Inverted dropout: ``x m / (1 - p)`` in training (0 for ``p = 1``), ``x`` in eval."""
    v = _f64(x)
    if not training or rate == 0.0:
        return v.copy()
    if rate >= 1.0:
        return np.zeros_like(v)
    return _f64(np.where(np.asarray(mask, dtype=bool), v / (1.0 - rate), 0.0))


# -------------------------------------------------------------------------------- initialisers

def _initialiser_fields(init: Any) -> tuple[str, float, float]:
    """``(class name, stddev, mean)`` of an initialiser object (or of a ``(name, stddev, mean)``
    tuple)."""
    if isinstance(init, tuple):
        name, stddev, mean = init
        return str(name), float(stddev), float(mean)
    return (type(init).__name__, float(getattr(init, "stddev", 0.0)),
            float(getattr(init, "mean", 0.0)))


def sample_initialiser(init: Any, rng: np.random.Generator, shape: tuple[int, ...]) -> F64:
    """Draw ``shape`` values the way ``init`` documents, recognised by its class name."""
    kind, stddev, mean = _initialiser_fields(init)
    if kind == "TruncatedNormal":
        values = rng.standard_normal(shape)
        # re-draw only the entries outside ±2, in index order, until none is
        while True:
            outside = np.abs(values) > 2.0
            count = int(outside.sum())
            if count == 0:
                break
            values[outside] = rng.standard_normal(count)
        return mean + stddev * values
    if kind == "Normal":
        return mean + stddev * rng.standard_normal(shape)
    if kind == "Zeros":
        return np.zeros(shape)
    if kind == "GlorotUniform":
        fan_in, fan_out = (shape[0], shape[-1]) if len(shape) >= 2 else (shape[0], shape[0])
        limit = math.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)
    raise ValueError(f"the reference does not know initialiser {kind}")


DEFAULT_WEIGHTS = ("TruncatedNormal", 0.1, 0.0)
"""The default weight initialiser, as ``(name, stddev, mean)``."""
DEFAULT_BIAS = ("Zeros", 0.0, 0.0)
"""The default bias initialiser."""


def variable_names(sizes: Sequence[int]) -> list[str]:
    """Canonical names in layer order, weights before bias."""
    return [f"dense_{i}/{slot}" for i in range(len(sizes) - 1) for slot in ("weights", "bias")]


def initial_variables(sizes: Sequence[int], seed: int, weights: Any = None, bias: Any = None,
                      dtype: str = "float32") -> dict[str, npt.NDArray[np.floating]]:
    """The starting variables: ``dense_i/weights`` from stream ``(seed, INIT, i, 0)``,
    ``dense_i/bias`` from ``(seed, INIT, i, 1)``, drawn in float64 and cast to ``dtype``.
    Defaults: truncated normal (0.1) weights, zero biases."""
    weights = DEFAULT_WEIGHTS if weights is None else weights
    bias = DEFAULT_BIAS if bias is None else bias
    values: dict[str, npt.NDArray[np.floating]] = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = sample_initialiser(weights, philox(seed, PURPOSE_INIT, i, 0), (fan_in, fan_out))
        b = sample_initialiser(bias, philox(seed, PURPOSE_INIT, i, 1), (fan_out,))
        values[f"dense_{i}/weights"] = w.astype(dtype)
        values[f"dense_{i}/bias"] = b.astype(dtype)
    return values


# ------------------------------------------------------------------------------------- network

def _layers(spec: SpecLike, variables: Mapping[str, Any]) -> list[tuple[F64, F64]]:
    return [(_f64(variables[f"dense_{i}/weights"]), _f64(variables[f"dense_{i}/bias"]))
            for i in range(len(spec.sizes) - 1)]


def forward(spec: SpecLike, variables: Mapping[str, Any], x: Any,
            keep_masks: Sequence[Any] | None = None) -> F64:
    """Logits ``(N, K)``; with ``keep_masks`` (one per hidden layer) in training-mode dropout."""
    a = _f64(x)
    layers = _layers(spec, variables)
    for i, (w, b) in enumerate(layers):
        z = a @ w + b
        if i == len(layers) - 1:
            return z
        a = activation(spec.activation, z)
        if keep_masks is not None:
            a = dropout(a, spec.dropout, training=True, mask=keep_masks[i])
    raise AssertionError("a spec has at least one layer")


def clear_of_relu_kinks(spec: SpecLike, variables: Mapping[str, Any], x: Any, dtype: str,
                        keep_masks: Sequence[Any] | None = None, factor: float = 64.0) -> bool:
    """Whether no hidden relu pre-activation lies within rounding distance of the kink at 0.

    relu' jumps at 0, so where a pre-activation ``z`` is so close to 0 that a ``dtype`` backend
    may round it to the other side (or flush it to zero as a subnormal), no tolerance can compare
    gradients. Clear means ``z == 0`` with every term of its sum 0, or
    ``|z| > max(factor · eps · Σ|a_i W_ij| + |b_j|, 1000 · tiny)`` with ``eps`` and ``tiny`` of
    ``dtype``. Always true for sigmoid and tanh.
    """
    if spec.activation != "relu":
        return True
    info = np.finfo(np.dtype(dtype))
    a = _f64(x)
    layers = _layers(spec, variables)
    for i, (w, b) in enumerate(layers[:-1]):
        z = a @ w + b
        scale = np.abs(a) @ np.abs(w) + np.abs(b)
        margin = np.maximum(factor * float(info.eps) * scale, 1000.0 * float(info.tiny))
        if np.any((scale > 0) & (np.abs(z) <= margin)):
            return False
        a = activation("relu", z)
        if keep_masks is not None and spec.dropout > 0.0:
            a = dropout(a, spec.dropout, training=True, mask=keep_masks[i])
    return True


def loss_and_gradients(spec: SpecLike, variables: Mapping[str, Any], x: Any, targets: Any,
                       loss_name: str, regularisers: Sequence[RegulariserLike] = (),
                       keep_masks: Sequence[Any] | None = None) -> tuple[float, dict[str, F64]]:
    """The objective (batch-mean loss + penalties) and its gradient for every variable."""
    layers = _layers(spec, variables)
    n_layers = len(layers)
    scale = 0.0 if spec.dropout >= 1.0 else 1.0 / (1.0 - spec.dropout)
    inputs: list[F64] = []       # the input a_i of every layer
    pre: list[F64] = []          # z_i
    factors: list[F64] = []      # d a_{i+1} / d h_i: the dropout mask and its scale, or 1
    a = _f64(x)
    for i, (w, b) in enumerate(layers):
        inputs.append(a)
        z = a @ w + b
        pre.append(z)
        if i < n_layers - 1:
            h = activation(spec.activation, z)
            if keep_masks is not None and spec.dropout > 0.0:
                factor = np.asarray(keep_masks[i], dtype=np.float64) * scale
            else:
                factor = np.ones_like(h)
            factors.append(factor)
            a = h * factor
    objective = loss(loss_name, pre[-1], targets)
    delta = loss_gradient(loss_name, pre[-1], targets)
    weights = [w for w, _ in layers]
    penalties = [np.zeros_like(w) for w in weights]
    for regulariser in regularisers:
        objective += penalty(regulariser, weights)
        for total, grad in zip(penalties, penalty_gradient(regulariser, weights), strict=True):
            total += grad
    grads: dict[str, F64] = {}
    for i in range(n_layers - 1, -1, -1):
        grads[f"dense_{i}/weights"] = inputs[i].T @ delta + penalties[i]
        grads[f"dense_{i}/bias"] = delta.sum(axis=0)
        if i > 0:
            delta = (delta @ weights[i].T) * factors[i - 1] \
                * activation_derivative(spec.activation, pre[i - 1])
    return objective, {name: grads[name] for name in variable_names(spec.sizes)}


def finite_difference_gradients(objective: Callable[[dict[str, F64]], float],
                                variables: Mapping[str, Any],
                                step: float) -> dict[str, F64]:
    """Central differences ``(f(v + h e) - f(v - h e)) / 2h`` of ``objective`` for every entry
    of every variable, with ``h = step · max(1, |v|)``."""
    base = {name: _f64(value).copy() for name, value in variables.items()}
    grads: dict[str, F64] = {}
    for name, value in base.items():
        grad = np.zeros_like(value)
        for index in np.ndindex(value.shape):
            original = value[index]
            h = step * max(1.0, abs(float(original)))
            value[index] = original + h
            upper = objective(base)
            value[index] = original - h
            lower = objective(base)
            value[index] = original
            grad[index] = (upper - lower) / (2.0 * h)
        grads[name] = grad
    return grads


# ---------------------------------------------------------------------------------- optimizers

@dataclass
class TrainResult:
    """What :func:`train_steps` returns: per-step objectives, final variables, the optimizer's
    slots by ``{variable}/{slot}`` name and its update count ``step``."""

    objectives: F64
    variables: dict[str, F64]
    slots: dict[str, F64]
    step: int


def _update(optimizer: Any, name: str, w: F64, g: F64, slots: dict[str, F64], t: int) -> F64:
    """Update number ``t`` of ``w`` by ``optimizer`` (duck typed: ``betas`` and ``eps`` make it
    Adam, else SGD with ``lr``, ``momentum`` and ``nesterov``); ``slots`` updated in place."""
    lr = float(optimizer.lr)
    if hasattr(optimizer, "betas"):
        beta1, beta2 = map(float, optimizer.betas)
        m = slots[f"{name}/m"] = beta1 * slots.get(f"{name}/m", 0.0 * w) + (1 - beta1) * g
        v = slots[f"{name}/v"] = beta2 * slots.get(f"{name}/v", 0.0 * w) + (1 - beta2) * g * g
        m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
        return w - lr * m_hat / (np.sqrt(v_hat) + float(optimizer.eps))
    momentum = float(optimizer.momentum)
    if momentum == 0.0:
        return w - lr * g
    v = slots[f"{name}/velocity"] = momentum * slots.get(f"{name}/velocity", 0.0 * w) + g
    return w - lr * (g + momentum * v if getattr(optimizer, "nesterov", False) else v)


def train_steps(spec: SpecLike, variables: Mapping[str, Any], x: Any, targets: Any, *,
                loss_name: str, optimizer: Any, regularisers: Sequence[RegulariserLike] = (),
                seed: int = 0, order: Sequence[int] | npt.NDArray[np.int64], batch_size: int,
                first_step: int = 0, slots: Mapping[str, Any] | None = None,
                step: int = 0) -> TrainResult:
    """``ceil(len(order) / batch_size)`` optimizer steps with portable dropout masks.

    Step ``j`` uses rows ``order[j B:(j + 1) B]`` and the masks of step ``first_step + j``; its
    objective is taken before its update, which is the optimizer's update number
    ``step + j + 1`` (docs/contracts.md, "Optimizers"), from ``slots`` (missing ones are 0).
    """
    x = _f64(x)
    targets = np.asarray(targets)
    order = np.asarray(order, dtype=np.int64)
    current = {name: _f64(value).copy() for name, value in variables.items()}
    state = {name: _f64(value).copy() for name, value in (slots or {}).items()}
    hidden = list(spec.sizes[1:-1])
    n_steps = math.ceil(len(order) / batch_size)
    objectives = np.empty(n_steps)
    for j in range(n_steps):
        rows = order[j * batch_size:(j + 1) * batch_size]
        masks = None
        if spec.dropout > 0.0:
            masks = [keep_mask(seed, first_step + j, layer, (len(rows), width), spec.dropout)
                     for layer, width in enumerate(hidden)]
        objective, grads = loss_and_gradients(spec, current, x[rows], targets[rows], loss_name,
                                              regularisers, masks)
        objectives[j] = objective
        for name, grad in grads.items():
            current[name] = _update(optimizer, name, current[name], grad, state, step + j + 1)
    return TrainResult(objectives, current, state, step + n_steps)
