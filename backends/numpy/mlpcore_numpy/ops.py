"""The NumPy backend's function for each name of the contract, and its four ops objects (maths in
:mod:`mlpcore.activations`, :mod:`mlpcore.losses`, :mod:`mlpcore.regularisers`,
:mod:`mlpcore.dropout`).

- ``ACTIVATIONS[name]`` is ``(f, f')``, in place on preallocated buffers: ``f(z, out)`` writes
  ``f(z)`` into ``out`` (which may be ``z``); ``f'(a, out)`` the derivative from the *output*
  ``a = f(z)``, which is what the backward pass keeps. Call ``f`` inside
  ``np.errstate(over="ignore")``: sigmoid's ``exp(-z)`` overflows to ``inf`` for very negative
  ``z``, and the result is then exactly 0, the correctly rounded value.
- ``LOSSES[name](outputs, targets, grad_out)`` returns the batch-mean loss and writes ``dL/d
  outputs`` into ``grad_out`` (the outputs' shape); ``targets`` are labels (N,) or floats (N, K).
- ``PENALTIES[kind]`` is one weight matrix's term before λ (``l2``: ``Σ W² / 2``; ``l1``:
  ``Σ |W|``), ``PENALTY_GRADIENTS[kind]`` its gradient (``W``; ``sign(W)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ActivationName
from mlpcore.backend_common import BoolArray, FloatArray, Penalty, Table, floating, penalties
from mlpcore.dropout import check_rate, keep_scale
from mlpcore.losses import LossName
from mlpcore.regularisers import Regulariser

InPlace = Callable[[FloatArray, FloatArray], FloatArray]

ACTIVATIONS: Table[tuple[InPlace, InPlace]] = Table("activation", {
    # max(z, 0); relu' = [a > 0], so relu'(0) = 0
    "relu": (lambda z, out: np.maximum(z, 0, out=out), lambda a, out: np.greater(a, 0, out=out)),
    # 1 / (1 + exp(-z)); sigmoid' = (1 - a) a
    "sigmoid": (lambda z, out: np.reciprocal(np.add(np.exp(np.negative(z, out=out), out=out), 1,
                                                    out=out), out=out),
                lambda a, out: np.multiply(np.subtract(1, a, out=out), a, out=out)),
    # tanh(z); tanh' = 1 - a²
    "tanh": (lambda z, out: np.tanh(z, out=out),
             lambda a, out: np.subtract(1, np.multiply(a, a, out=out), out=out)),
})


def _mse(outputs: FloatArray, targets: npt.NDArray[Any], grad_out: FloatArray) -> float:
    np.subtract(outputs, targets, out=grad_out)
    loss = float(np.vdot(grad_out, grad_out)) / grad_out.size
    grad_out *= 2.0 / grad_out.size
    return loss


def _cross_entropy(outputs: FloatArray, targets: npt.NDArray[Any], grad_out: FloatArray) -> float:
    n = outputs.shape[0]
    # shift by the row max, then log-sum-exp
    np.subtract(outputs, outputs.max(axis=1, keepdims=True), out=grad_out)
    # sum_k t_nk * shifted_nk: the shifted logit of the target class
    picked = (grad_out[np.arange(n), targets] if targets.ndim == 1
              else (grad_out * targets).sum(axis=1))
    np.exp(grad_out, out=grad_out)
    sums = grad_out.sum(axis=1, keepdims=True)
    grad_out /= sums
    log_sums = np.log(sums[:, 0])
    if targets.ndim == 1:
        loss = float(np.mean(log_sums - picked))
        grad_out[np.arange(n), targets] -= 1
    else:
        # for rows of t that do not sum to one: L_n = sum(t_n) * lse(z_n) - t_n . z_n
        target_mass = targets.sum(axis=1, dtype=grad_out.dtype)
        loss = float(np.mean(log_sums * target_mass - picked))
        grad_out *= target_mass[:, None]
        grad_out -= targets
    grad_out /= n
    return loss


LOSSES: Table[Callable[[FloatArray, npt.NDArray[Any], FloatArray], float]] = Table(
    "loss", {"softmax_cross_entropy": _cross_entropy, "mse": _mse})

PENALTIES: Table[Callable[[FloatArray], float]] = Table("regulariser", {
    "l2": lambda w: float(np.vdot(w, w)) / 2, "l1": lambda w: float(np.abs(w).sum())})
PENALTY_GRADIENTS: Table[Callable[[FloatArray], Any]] = Table("regulariser", {
    "l2": lambda w: w, "l1": np.sign})


def penalty(regularisers: Sequence[Regulariser], weights: Sequence[FloatArray]) -> float:
    """``Σ λ Σ_i term(W_i)`` over the regularisers and the weight matrices."""
    return float(Penalty(penalties(PENALTIES, regularisers))(*weights))


def native_keep_mask(rng: np.random.Generator, shape: tuple[int, ...], rate: float) -> BoolArray:
    """A keep-mask from NumPy's own generator ``rng`` (the backend's native RNG)."""
    return rng.random(shape, dtype=np.float32) >= np.float32(rate)


class NumpyActivations:
    """:class:`mlpcore.activations.ActivationOps` in NumPy."""

    def value(self, name: ActivationName, x: FloatArray) -> FloatArray:
        f, _ = ACTIVATIONS[name]
        x = floating(x)
        with np.errstate(over="ignore"):
            return f(x, np.empty_like(x))

    def derivative(self, name: ActivationName, x: FloatArray) -> FloatArray:
        _, f_prime = ACTIVATIONS[name]
        a = self.value(name, x)
        return f_prime(a, np.empty_like(a))


class NumpyLosses:
    """:class:`mlpcore.losses.LossOps` in NumPy."""

    def value(self, name: LossName, outputs: FloatArray, targets: npt.NDArray[Any]) -> float:
        return LOSSES[name](outputs, targets, np.empty_like(outputs))

    def gradient(self, name: LossName, outputs: FloatArray,
                 targets: npt.NDArray[Any]) -> FloatArray:
        LOSSES[name](outputs, targets, grad := np.empty_like(outputs))
        return grad


class NumpyRegularisers:
    """:class:`mlpcore.regularisers.RegulariserOps` in NumPy."""

    def value(self, regulariser: Regulariser, weights: Sequence[FloatArray]) -> float:
        return penalty((regulariser,), weights)

    def gradient(self, regulariser: Regulariser,
                 weights: Sequence[FloatArray]) -> list[FloatArray]:
        gradient = PENALTY_GRADIENTS[regulariser.kind]
        return [np.multiply(regulariser.strength, gradient(w), dtype=w.dtype) for w in weights]


class NumpyDropout:
    """:class:`mlpcore.dropout.DropoutOps` in NumPy."""

    def apply(self, x: FloatArray, rate: float, *, training: bool,
              keep_mask: BoolArray | None = None, seed: int = 0) -> FloatArray:
        rate = check_rate(rate)
        x = np.asarray(x)
        if not training or rate == 0.0:
            return x.copy()
        if keep_mask is None:
            keep_mask = native_keep_mask(np.random.default_rng(seed), x.shape, rate)
        out = np.zeros_like(x)
        if rate < 1.0:
            np.multiply(x, x.dtype.type(keep_scale(rate)), out=out, where=keep_mask)
        return out
