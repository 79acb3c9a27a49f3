"""The torch MLP: forward pass and objective over tensors in torch's native layout.

Layer ``i`` holds ``W_i`` as a ``(d_{i+1}, d_i)`` tensor (``nn.Linear.weight``'s layout) and
``b_i`` as ``(d_{i+1},)``; the canonical ``(d_i, d_{i+1})`` matrix is ``W_iᵀ`` (see
:mod:`mlpcore_torch.boundary`). For a batch ``a_0 = x`` of shape (N, d_0)::

    z_i     = dense(a_i, W_i, b_i) = a_i W_iᵀ + b_i                             (N, d_{i+1})
    a_{i+1} = f(z_i) · s_i            hidden layers; s_i the scaled dropout mask, or 1 in eval
    logits  = z_{L-1}                 (N, K), the output layer is linear

    objective = loss(logits, targets) + Σ penalties(W_0 … W_{L-1})

Gradients are autograd's (``torch.autograd.grad`` or ``backward``). The only derivative written
out is the dense product's own (``dJ/dx = g W``, ``dJ/dW = gᵀ x``, ``dJ/db = Σ g``) when
:func:`mlpcore_torch.linear.dense` runs it on oneDNN; see :mod:`mlpcore_torch.linear`. The same
functions run eagerly and inside ``torch.compile``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from mlpcore.regularisers import Regulariser
from mlpcore_torch.activations import activate_
from mlpcore_torch.linear import LinearKernel, dense
from mlpcore_torch.losses import loss_value
from mlpcore_torch.regularisers import penalty


def forward(activation: str, weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor],
            x: torch.Tensor, masks: Sequence[torch.Tensor] = (),
            kernels: Sequence[LinearKernel] | None = None) -> torch.Tensor:
    """Logits (N, K) of ``x`` (N, d_0). ``masks``: one scaled mask (N, d_{i+1}) per hidden layer
    in training mode, or empty for eval mode (no dropout). ``kernels``: each layer's dense
    kernel, as :func:`mlpcore_torch.linear.kernel_for` chooses it for ``x``; ``None`` chooses
    per product."""
    last = len(weights) - 1
    a = x
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = dense(a, w, b, None if kernels is None else kernels[i])
        if i == last:
            return z
        a = activate_(activation, z)
        if masks:
            a = a * masks[i]
    raise AssertionError("an MLP has at least one layer")


def objective(activation: str, loss: str, regularisers: Sequence[Regulariser],
              weights: Sequence[torch.Tensor], biases: Sequence[torch.Tensor], x: torch.Tensor,
              targets: torch.Tensor, masks: Sequence[torch.Tensor] = (),
              kernels: Sequence[LinearKernel] | None = None) -> torch.Tensor:
    """Batch-mean loss plus the regularisers' penalty over the weight matrices, a 0-d tensor
    (``masks`` and ``kernels`` as in :func:`forward`)."""
    value = loss_value(loss, forward(activation, weights, biases, x, masks, kernels), targets)
    if regularisers:
        value = value + penalty(regularisers, weights)
    return value
