"""The TensorFlow training loop: a whole chunk of SGD steps inside one ``tf.function`` call.

Why: calling a ``tf.function`` costs about 0.4 ms, more than one training step of an MLP this
size. So :meth:`TensorflowTrainer.run` does not loop in Python; it makes at most two calls per
chunk, and each runs a ``tf.while_loop`` over the steps in the graph::

    x (N, d_0), targets (N,) or (N, K), order (n_steps, B) int64, first_step int64
        [, portable masks (n_steps, B, d_l) bool ...]
    for j in 0 … n_steps-1 (in the graph; each variable read after the previous step's update):
        rows = order[j];  x_b = gather(x, rows);  t_b = gather(targets, rows)
        keep = masks[j] | stateless_uniform((seed, (first_step + j) · n_hidden + l)) >= p
                                          (Philox; Threefry in XLA mode, see ops.py)
        with GradientTape: J = loss(forward(x_b, keep), t_b) + penalties
        g = dJ/dθ;  update θ (autodiff: apply_sgd; optimizer: keras SGD.apply_gradients)
        losses[j] = J                                   (a TensorArray, returned once)

A chunk of ``n`` rows at batch size ``B`` is split into the full batches, one ``(n // B, B)``
order matrix, and the short remainder, a ``(1, n % B)`` matrix. The function has one
``input_signature`` with both dimensions unknown, so it is traced **once per trainer**, whatever
the number of epochs, chunks or batch sizes (``trace_count``). The inputs and targets, bound once
per trainer (or per chunk by ``bind``, when ``fit`` streams data larger than memory), are
arguments of every call rather than tensors its graphs capture, so that the trainer's copy of them
is freed as soon as the fit ends, and a new binding needs no new trace. In compiled mode
(``config.compiled``, ``jit_compile=True``) XLA needs static shapes and compiles once per
distinct order shape (``shapes``): with whole-epoch chunks that is two, the full batches and the
remainder, each compiled on first use and then cached.

Updates, for every variable ``w`` with gradient ``g`` (weights and biases):

* ``"autodiff"``: ``w -= lr · g``, or with momentum μ ``v = μ v + g; w -= lr · v``, exactly
  :mod:`mlpcore.optimizers`, by :func:`apply_sgd` (one fused TensorFlow kernel a variable);
Devices: the chunk function's ops are placed on the model's device (``tf.device`` at trace
time), where its variables and the training set (copied once per trainer) are. Mixed precision
(``dtype`` bfloat16 or float16): the network casts to ``dtype`` inside every dense layer; the
variables, gradients and updates are float32. float16 scales the loss dynamically with
``keras.optimizers.LossScaleOptimizer`` around the Keras SGD (a step whose gradients overflow is
skipped and the scale halved; it doubles after 2000 good steps), so float16 trains with the
``"optimizer"`` method.

* ``"optimizer"``: ``keras.optimizers.SGD(lr, momentum)``, whose form ``v = μ v - lr g; w += v``
  follows the same trajectory for a constant learning rate (only the rounding differs). The
  learning rate is given as a constant callable returning a NumPy float64 and the momentum as a
  NumPy float64: Keras casts both straight to each variable's dtype. (With plain Python floats
  Keras rounds them through float32, its floatx, and float64 runs drift by ~1e-8 relative.)
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from mlpcore.backend import TrainingConfig
from mlpcore.backend_common import TrainerBase, interleave, network
from mlpcore.spec import MLPSpec
from mlpcore_tensorflow.ops import OPS, native_keep_mask, native_seed, scaled_mask


class TensorflowTrainer(TrainerBase):
    """:class:`mlpcore.backend.Trainer` updating a TensorFlow model's own ``tf.Variable`` objects.

    Attributes for inspection and benchmarks:

    * ``trace_count``: how many times the chunk function was traced (1 after the first call);
    * ``shapes``: the distinct ``(n_steps, batch)`` order shapes it was called with (in compiled
      mode, one XLA compilation each);
    * ``compile_seconds``: wall time of the calls that traced or compiled (including running
      their own steps); ``calls``: number of ``tf.function`` calls made.
    """

    def __init__(self, spec: MLPSpec, weights: Sequence[tf.Variable],
                 biases: Sequence[tf.Variable], config: TrainingConfig, x: tf.Tensor,
                 targets: tf.Tensor, dtype: str = "float32", device: str = "/CPU:0"):
        super().__init__(spec, config, int(x.shape[0]))
        self.trace_count = 0
        self.calls = 0
        self.compile_seconds = 0.0
        self.shapes: set[tuple[int, int]] = set()
        self._net = network(OPS, spec.activation, config.loss, config.regularisers, dtype)
        self._weights, self._biases = list(weights), list(biases)
        self._variables = interleave(self._weights, self._biases)
        self._x, self._targets, self._device = x, targets, device
        self._dtype = x.dtype
        self._lr = tf.constant(config.optimizer.lr, self._dtype)
        self._momentum = tf.constant(config.optimizer.momentum, self._dtype)
        self._velocities: list[tf.Variable] = []
        self._optimizer: Any = None
        self._loss_scaled = dtype == "float16"
        if self._loss_scaled and config.method != "optimizer":
            raise ValueError("float16 training scales the loss with keras' LossScaleOptimizer: "
                             "use method='optimizer' (the default for float16)")
        if config.method == "optimizer":
            import keras

            # Keras would keep a float learning rate in a float32 variable and turn a Python
            # float momentum into a float32 tensor before casting it to the variable dtype,
            # rounding both for float64 models. A callable returning a NumPy float64 and a
            # NumPy float64 momentum (a float subclass) are cast straight to the variable dtype.
            lr = np.float64(config.optimizer.lr)
            self._optimizer = keras.optimizers.SGD(learning_rate=lambda: lr,
                                                   momentum=np.float64(config.optimizer.momentum))
            if self._loss_scaled:
                self._optimizer = keras.optimizers.LossScaleOptimizer(self._optimizer)
            self._optimizer.build(self._variables)
        elif config.optimizer.momentum > 0.0:
            self._velocities = [tf.Variable(tf.zeros_like(v), trainable=False)
                                for v in self._variables]
        signature = [
            tf.TensorSpec([None, *x.shape[1:]], x.dtype, name="x"),
            tf.TensorSpec([None, *targets.shape[1:]], targets.dtype, name="targets"),
            tf.TensorSpec([None, None], tf.int64, name="order"),
            tf.TensorSpec([], tf.int64, name="first_step"),
            tuple(tf.TensorSpec([None, None, w], tf.bool, name=f"keep_{layer}")
                  for layer, w in enumerate(self.widths) if self.dropout == "portable"),
        ]
        # The trainer's copy of the inputs must be freed with the trainer, when the fit ends, not
        # whenever Python's cyclic collector next runs: so x and targets are arguments of the
        # function rather than captured by its graphs (TensorFlow's graphs are full of reference
        # cycles), and the function holds the trainer weakly (a bound method would make a cycle
        # trainer -> function -> method -> trainer).
        trainer = weakref.ref(self)

        def chunk(x: tf.Tensor, targets: tf.Tensor, order: tf.Tensor, first_step: tf.Tensor,
                  masks: tuple[tf.Tensor, ...]) -> tf.Tensor:
            alive = trainer()
            assert alive is not None, "a chunk function called after its trainer was freed"
            with tf.device(device):
                return alive._chunk(x, targets, order, first_step, masks)

        self._chunk_fn = tf.function(chunk, input_signature=signature,
                                     jit_compile=config.compiled)

    # --- the graph ------------------------------------------------------------------------------

    def _chunk(self, x: tf.Tensor, targets: tf.Tensor, order: tf.Tensor, first_step: tf.Tensor,
               masks: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """Run ``order.shape[0]`` steps of batch ``order.shape[1]``; their objectives (n_steps,)."""
        self.trace_count += 1  # a Python side effect: runs only while tracing
        n_steps = tf.shape(order)[0]
        losses = tf.TensorArray(self._dtype, size=n_steps, element_shape=())

        def step(j: tf.Tensor, losses: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
            rows = order[j]
            x_batch = tf.gather(x, rows)
            t_batch = tf.gather(targets, rows)
            keep = self._keep_masks(j, first_step, tf.shape(rows)[0], masks)
            with tf.GradientTape() as tape:
                value = self._net.objective(self._weights, self._biases, x_batch, t_batch, keep)
                scaled = self._optimizer.scale_loss(value) if self._loss_scaled else value
            grads = tape.gradient(scaled, self._variables)
            self._update(grads)
            return j + 1, losses.write(j, value)

        # No control dependency ties the next step to this one's update, and several iterations
        # may be in flight: TensorFlow's automatic control dependencies already run each
        # variable's reads and writes in program order, within an iteration and across
        # iterations, so step j + 1 reads what step j wrote. Only the stateless work of the next
        # step (slicing its row of `order`, gathering its batch) may start early. An explicit
        # barrier on the updates with one iteration at a time gave the same weights bit for bit
        # and a notebook epoch 9 % slower (docs/benchmarks.md).
        _, losses = tf.while_loop(lambda j, _: j < n_steps, step, (tf.constant(0), losses))
        return losses.stack()

    def _keep_masks(self, j: tf.Tensor, first_step: tf.Tensor, n: tf.Tensor,
                    masks: tuple[tf.Tensor, ...]) -> list[tf.Tensor]:
        """Step ``j``'s scaled masks, one per hidden layer (none without dropout)."""
        rate = self.spec.dropout
        if self.dropout == "native":
            step = first_step + tf.cast(j, tf.int64)
            masks = tuple(native_keep_mask(tf.stack([n, width]), rate,
                                           native_seed(self.config.seed,
                                                       step * len(self.widths) + layer),
                                           compiled=self.config.compiled)
                          for layer, width in enumerate(self.widths))
        else:
            masks = tuple(mask[j] for mask in masks)
        return [scaled_mask(keep, rate, self._dtype) for keep in masks]

    def _update(self, grads: Sequence[tf.Tensor]) -> None:
        """Apply one SGD step to the variables (the Keras optimizer's, or :func:`apply_sgd`)."""
        if self._optimizer is not None:
            self._optimizer.apply_gradients(zip(grads, self._variables, strict=True))
        else:
            apply_sgd(self._variables, grads, self._lr, self._velocities, self._momentum)

    # --- the Python side: one call per block (at most two per chunk) --------------------------

    def _bind(self, x: npt.NDArray[Any], targets: npt.NDArray[Any]) -> None:
        with tf.device(self._device):  # convert_to_tensor makes host tensors; identity copies
            placed = [tf.convert_to_tensor(a) for a in (x, targets)]
            self._x, self._targets = (placed if self._device.startswith("/CPU")
                                      else [tf.identity(t) for t in placed])

    def _block(self, order: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        shape = (int(order.shape[0]), int(order.shape[1]))
        masks: tuple[tf.Tensor, ...] = ()
        if self.dropout == "portable":
            masks = tuple(map(tf.convert_to_tensor, self.block_masks(first_step, *shape)))
        traces = self.trace_count
        new_shape = shape not in self.shapes
        started = time.perf_counter()
        losses = self._chunk_fn(self._x, self._targets, tf.convert_to_tensor(order),
                                tf.constant(first_step, tf.int64), masks).numpy()
        elapsed = time.perf_counter() - started
        self.calls += 1
        self.shapes.add(shape)
        if self.trace_count != traces or (self.config.compiled and new_shape):
            self.compile_seconds += elapsed
        return np.asarray(losses, dtype=np.float64)


def apply_sgd(variables: Sequence[tf.Variable], grads: Sequence[tf.Tensor], lr: tf.Tensor,
              velocities: Sequence[tf.Variable] = (), momentum: tf.Tensor | None = None) -> None:
    """One SGD step in place, :mod:`mlpcore.optimizers`'s update, for each variable ``w`` with
    gradient ``g`` (same shape and dtype; ``lr`` and ``momentum`` scalars of that dtype)::

        without velocities:  w ← w − lr·g
        with velocities v:   v ← μ·v + g;  w ← w − lr·v

    Each variable is updated by one fused kernel, ``ResourceApplyGradientDescent`` or
    ``ResourceApplyMomentum`` (``use_nesterov=False``), which computes exactly these roundings,
    instead of ``assign_sub(lr * g)``, which first writes ``lr·g`` to a temporary as large as the
    variable and then reads it back: the same values bit for bit in one pass over each variable
    (the dropout benchmark's epoch ran ~6 % faster, docs/benchmarks.md). Both kernels also exist
    under XLA.
    """
    if not velocities:
        for var, g in zip(variables, grads, strict=True):
            tf.raw_ops.ResourceApplyGradientDescent(var=var.handle, alpha=lr, delta=g)
        return
    if momentum is None:
        raise ValueError("apply_sgd: velocities given without a momentum")
    for var, vel, g in zip(variables, velocities, grads, strict=True):
        tf.raw_ops.ResourceApplyMomentum(var=var.handle, accum=vel.handle, lr=lr, grad=g,
                                         momentum=momentum, use_nesterov=False)
