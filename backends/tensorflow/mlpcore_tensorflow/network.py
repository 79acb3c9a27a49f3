"""The MLP as TensorFlow ops: forward pass and objective, differentiated by ``tf.GradientTape``.

For layer ``i`` with input ``a_i`` (N, d_i), weights ``W_i`` (d_i, d_{i+1}) and bias ``b_i``::

    z_i     = a_i W_i + b_i                          (tf.matmul, then tf.nn.bias_add)
    a_{i+1} = f(z_i) · s_i                           hidden layers i < L-1; s_i the scaled
                                                     dropout mask, left out in eval mode
    logits  = z_{L-1}                                (N, K), linear output layer
    objective = loss(logits, targets) + Σ penalties(W_0 … W_{L-1})

There is no hand-written backward pass: the gradients are those of ``tf.GradientTape``, which
matches the NumPy backend's backpropagation (``dW_i = a_iᵀ δ_i``, ``db_i = Σ_n δ_i``).
``bias_add`` rather than ``+``: the values are the same, but its gradient is one ``BiasAddGrad``
where a broadcast add's is ``BroadcastGradientArgs``, ``Sum`` and ``Reshape`` on shapes computed
at run time, and the graph optimiser can fuse it with the product. These functions build ops
only; they run eagerly or inside a ``tf.function`` alike, so the eager ``loss_and_gradients``
and the in-graph training loop share one definition.
"""

from __future__ import annotations

from collections.abc import Sequence

import tensorflow as tf

from mlpcore.losses import LossName
from mlpcore.regularisers import Regulariser
from mlpcore.spec import MLPSpec
from mlpcore_tensorflow.activations import activate
from mlpcore_tensorflow.dropout import scaled_mask
from mlpcore_tensorflow.losses import loss_tensor
from mlpcore_tensorflow.regularisers import penalty_tensor


def forward(spec: MLPSpec, weights: Sequence[tf.Tensor], biases: Sequence[tf.Tensor],
            x: tf.Tensor, keep_masks: Sequence[tf.Tensor] | None = None) -> tf.Tensor:
    """Logits (N, K) of ``x`` (N, d_0).

    ``keep_masks`` (one bool (N, d_{i+1}) per hidden layer) applies training-mode dropout at rate
    ``spec.dropout`` as a multiplication by the scaled mask; ``None`` is eval mode.
    """
    a = x
    last = spec.n_layers - 1
    for i, (w, b) in enumerate(zip(weights, biases, strict=True)):
        z = tf.nn.bias_add(tf.matmul(a, w), b)
        if i == last:
            return z
        a = activate(spec.activation, z)
        if keep_masks is not None and spec.dropout > 0.0:
            a = a * scaled_mask(keep_masks[i], spec.dropout, a.dtype)
    raise AssertionError("an MLPSpec has at least one layer")


def objective(spec: MLPSpec, weights: Sequence[tf.Tensor], biases: Sequence[tf.Tensor],
              x: tf.Tensor, targets: tf.Tensor, loss: LossName,
              regularisers: Sequence[Regulariser],
              keep_masks: Sequence[tf.Tensor] | None = None) -> tf.Tensor:
    """Batch-mean loss plus every regulariser's penalty, a scalar in the model dtype."""
    value = loss_tensor(loss, forward(spec, weights, biases, x, keep_masks), targets)
    penalty = penalty_tensor(regularisers, weights)
    return value if penalty is None else value + penalty
