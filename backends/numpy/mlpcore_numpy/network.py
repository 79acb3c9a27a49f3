"""The NumPy MLP: forward pass and hand-written backpropagation over preallocated buffers.

For layer ``i`` with input ``a_i`` (N, d_i), weights ``W_i`` (d_i, d_{i+1}) and bias ``b_i``::

    forward:   z_i = a_i W_i + b_i;  h_i = f(z_i);  a_{i+1} = h_i * m_i / (1 - p)  (hidden layers)
    backward:  δ_{L-1} = dL/dz_{L-1}                                 (from the loss)
               dL/dW_i = a_iᵀ δ_i ;   dL/db_i = Σ_n δ_i
               δ_{i-1} = (δ_i W_iᵀ) * m_{i-1} / (1 - p) * f'(z_{i-1})

``f'`` is taken from the kept output ``h_i``. A :class:`Workspace` holds every buffer of one
batch size, so a training step allocates almost nothing. ``keep_masks``: one bool mask per hidden
layer in training mode, none in eval mode. Call both passes inside ``np.errstate(over="ignore")``
(see :mod:`mlpcore_numpy.ops`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend_common import BoolArray, FloatArray, penalties
from mlpcore.dropout import keep_scale
from mlpcore.losses import LossName
from mlpcore.regularisers import Regulariser
from mlpcore.spec import MLPSpec
from mlpcore_numpy.ops import ACTIVATIONS, LOSSES, PENALTY_GRADIENTS, penalty


class Workspace:
    """The buffers of one batch of ``n`` rows: the gathered inputs ``x``, pre-activations ``z``,
    activations ``h``, the scaled keep-masks ``m · s``, the dropped-out activations, deltas,
    derivative scratch and the gradients."""

    def __init__(self, spec: MLPSpec, n: int, dtype: np.dtype[np.floating]):
        widths = spec.sizes[1:]
        self.x = np.empty((n, spec.sizes[0]), dtype)
        self.z, self.delta, self.scratch = ([np.empty((n, w), dtype) for w in widths]
                                            for _ in range(3))
        self.h, self.scaled_mask, self.dropped = ([np.empty((n, w), dtype) for w in widths[:-1]]
                                                  for _ in range(3))
        self.grad_w = [np.empty(shape, dtype) for shape in zip(spec.sizes, widths, strict=False)]
        self.grad_b = [np.empty((w,), dtype) for w in widths]


def forward_into(spec: MLPSpec, weights: Sequence[FloatArray], biases: Sequence[FloatArray],
                 x: FloatArray, ws: Workspace, keep_masks: Sequence[BoolArray]) -> FloatArray:
    """The logits of ``x`` (a view into ``ws``), the hidden layers' inputs left in ``ws``."""
    activate, _ = ACTIVATIONS[spec.activation]
    scale = x.dtype.type(keep_scale(spec.dropout))
    a = x
    for i in range(spec.n_layers):
        np.matmul(a, weights[i], out=ws.z[i])
        ws.z[i] += biases[i]
        if i == spec.n_layers - 1:
            break
        activate(ws.z[i], ws.h[i])
        a = ws.h[i]
        if keep_masks:  # h · (m · s): one bool-to-float cast, reused by backprop
            np.multiply(keep_masks[i], scale, out=ws.scaled_mask[i])
            a = np.multiply(ws.h[i], ws.scaled_mask[i], out=ws.dropped[i])
    return ws.z[-1]


def backprop(spec: MLPSpec, weights: Sequence[FloatArray], biases: Sequence[FloatArray],
             x: FloatArray, targets: npt.NDArray[Any], loss: LossName,
             regularisers: Sequence[Regulariser], ws: Workspace,
             keep_masks: Sequence[BoolArray]) -> float:
    """Forward and backward pass on one batch; gradients land in ``ws.grad_w`` / ``ws.grad_b``.
    Returns the objective: batch-mean loss plus penalties."""
    _, derivative_from_output = ACTIVATIONS[spec.activation]
    terms = penalties(PENALTY_GRADIENTS, regularisers)
    delta = ws.delta
    objective = LOSSES[loss](forward_into(spec, weights, biases, x, ws, keep_masks),
                                   targets, delta[-1])
    for i in range(spec.n_layers - 1, -1, -1):
        layer_input = x if i == 0 else (ws.dropped if keep_masks else ws.h)[i - 1]
        np.matmul(layer_input.T, delta[i], out=ws.grad_w[i])
        np.sum(delta[i], axis=0, out=ws.grad_b[i])
        for strength, gradient in terms:
            ws.grad_w[i] += strength * gradient(weights[i])
        if i == 0:
            break
        np.matmul(delta[i], weights[i].T, out=delta[i - 1])
        if keep_masks:
            delta[i - 1] *= ws.scaled_mask[i - 1]
        derivative_from_output(ws.h[i - 1], ws.scratch[i - 1])
        delta[i - 1] *= ws.scratch[i - 1]
    return objective + penalty(regularisers, weights) if terms else objective
