"""The NumPy MLP: forward pass and hand-written backpropagation over preallocated buffers.

For layer ``i`` with input ``a_i`` (N, d_i), weights ``W_i`` (d_i, d_{i+1}) and bias ``b_i``::

    forward:   z_i = a_i W_i + b_i;  h_i = f(z_i);  a_{i+1} = h_i * m_i / (1 - p)  (hidden layers)
    backward:  δ_{L-1} = dL/dz_{L-1}                                 (from the loss)
               dL/dW_i = a_iᵀ δ_i ;   dL/db_i = Σ_n δ_i
               δ_{i-1} = (δ_i W_iᵀ) * m_{i-1} / (1 - p) * f'(z_{i-1})

``f'`` is taken from the kept output ``h_i`` (see :mod:`mlpcore_numpy.activations`). A
:class:`Workspace` holds every per-batch buffer so a training step allocates almost nothing.
``keep_masks`` holds one bool mask per hidden layer in training mode; empty is eval mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.dropout import keep_scale
from mlpcore.spec import MLPSpec
from mlpcore_numpy import activations
from mlpcore_numpy.losses import Loss
from mlpcore_numpy.regularisers import Terms, add_gradient, penalty

FloatArray = npt.NDArray[np.floating]
BoolArray = npt.NDArray[np.bool_]


class Workspace:
    """Buffers for one batch size: pre-activations, activations, deltas and gradients."""

    def __init__(self, spec: MLPSpec, batch_size: int, dtype: np.dtype[np.floating]):
        widths = spec.sizes[1:]
        self.batch_size = batch_size
        self.z = [np.empty((batch_size, w), dtype) for w in widths]
        self.h = [np.empty((batch_size, w), dtype) for w in widths[:-1]]
        self.dropped = [np.empty((batch_size, w), dtype) for w in widths[:-1]]
        self.delta = [np.empty((batch_size, w), dtype) for w in widths]
        self.scratch = [np.empty((batch_size, w), dtype) for w in widths]
        self.grad_w = [np.empty((fan_in, fan_out), dtype)
                       for fan_in, fan_out in zip(spec.sizes, spec.sizes[1:], strict=False)]
        self.grad_b = [np.empty((w,), dtype) for w in widths]

    def rows(self, buffers: list[FloatArray], n: int) -> list[FloatArray]:
        return buffers if n == self.batch_size else [b[:n] for b in buffers]


def forward_into(spec: MLPSpec, weights: Sequence[FloatArray], biases: Sequence[FloatArray],
                 x: FloatArray, ws: Workspace, keep_masks: Sequence[BoolArray]) -> FloatArray:
    """Run the forward pass of ``x`` (n <= ws.batch_size rows) through the workspace buffers,
    with dropout at rate ``spec.dropout`` by ``keep_masks``. Returns the logits buffer (a view
    into ``ws``). Call it inside ``np.errstate(over="ignore")`` (see
    :mod:`mlpcore_numpy.activations`).
    """
    activate, _ = activations.TABLE[spec.activation]
    n = x.shape[0]
    z, h, dropped = (ws.rows(b, n) for b in (ws.z, ws.h, ws.dropped))
    scale = x.dtype.type(keep_scale(spec.dropout))
    a = x
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        np.matmul(a, w, out=z[i])
        z[i] += b
        if i == spec.n_layers - 1:
            return z[i]
        activate(z[i], h[i])
        if not keep_masks or spec.dropout == 0.0:
            a = h[i]
        else:
            dropped[i].fill(0)
            np.multiply(h[i], scale, out=dropped[i], where=keep_masks[i])
            a = dropped[i]
    raise AssertionError("an MLPSpec has at least one layer")


def backprop(spec: MLPSpec, weights: Sequence[FloatArray], biases: Sequence[FloatArray],
             x: FloatArray, targets: npt.NDArray[Any], loss: Loss, terms: Terms, ws: Workspace,
             keep_masks: Sequence[BoolArray]) -> float:
    """Forward and backward pass on one batch; gradients land in ``ws.grad_w`` / ``ws.grad_b``.

    ``loss`` is from :data:`mlpcore_numpy.losses.TABLE`, ``terms`` the penalties' (see
    :mod:`mlpcore_numpy.regularisers`). Returns the objective: batch-mean loss plus penalties.
    Call it inside ``np.errstate(over="ignore")`` (see :mod:`mlpcore_numpy.activations`).
    """
    _, derivative_from_output = activations.TABLE[spec.activation]
    n = x.shape[0]
    logits = forward_into(spec, weights, biases, x, ws, keep_masks)
    delta, h, dropped, scratch = (ws.rows(b, n) for b in (ws.delta, ws.h, ws.dropped, ws.scratch))
    objective = loss(logits, targets, delta[-1])
    dropout_on = bool(keep_masks) and spec.dropout > 0.0
    scale = x.dtype.type(keep_scale(spec.dropout))
    for i in range(spec.n_layers - 1, -1, -1):
        layer_input = x if i == 0 else (dropped[i - 1] if dropout_on else h[i - 1])
        np.matmul(layer_input.T, delta[i], out=ws.grad_w[i])
        np.sum(delta[i], axis=0, out=ws.grad_b[i])
        if terms:
            add_gradient(terms, weights[i], ws.grad_w[i])
        if i == 0:
            break
        np.matmul(delta[i], weights[i].T, out=delta[i - 1])
        if dropout_on:
            delta[i - 1] *= scale
            np.multiply(delta[i - 1], keep_masks[i - 1], out=delta[i - 1])
        derivative_from_output(h[i - 1], scratch[i - 1])
        delta[i - 1] *= scratch[i - 1]
    if terms:
        objective += penalty(terms, weights)
    return objective
