"""The TensorFlow training loop: a whole chunk of optimizer steps inside one ``tf.function`` call.

A ``tf.function`` call costs about 0.4 ms, more than one step of an MLP this size, so
:meth:`TensorflowTrainer.run` makes at most two calls per chunk (the full batches, an
``(n // B, B)`` order, and the remainder, ``(1, n % B)``), each a ``tf.while_loop`` in the graph::

    x (N, d_0), targets (N,) or (N, K), order (n_steps, B) int64, first_step, updates int64
        [, portable masks (n_steps, B, d_l) bool ...]
    for j in 0 … n_steps-1 (each variable read after the previous step's update):
        rows = order[j];  x_b = gather(x, rows);  t_b = gather(targets, rows)
        keep = masks[j] | stateless_uniform((seed, (first_step + j) · n_hidden + l)) >= p
        J = loss(forward(x_b, keep), t_b) + penalties;  g = dJ/dθ   (tape, or Backprop: manual)
        update θ (apply_sgd / apply_adam, or Keras's apply_gradients: optimizer)
        losses[j] = J

One ``input_signature`` with both order dimensions unknown: traced once per trainer (x and
targets are arguments, not captures, so the trainer's copy goes with it); XLA compiles once per
order shape. The why and the figures: docs/backend-tensorflow.md.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from mlpcore.backend import TrainingConfig
from mlpcore.backend_common import Backprop, FloatArray, TrainerBase, interleave, network
from mlpcore.optimizers import SLOTS, Adam, OptimizerState
from mlpcore.spec import MLPSpec
from mlpcore_tensorflow import distributed
from mlpcore_tensorflow.ops import OPS, native_keep_mask, native_seed, on_device, scaled_mask


def _weakly(trainer: TensorflowTrainer, method: str) -> Callable[..., Any]:
    """``trainer``'s ``method``, holding the trainer weakly: a ``tf.function`` of the bound method
    (or of a ``WeakMethod``'s, which autograph keeps) would keep the trainer and its copy of the
    training set in a reference cycle until Python's cyclic collector runs."""
    ref = weakref.ref(trainer)

    def call(*args: Any) -> Any:
        alive = ref()
        assert alive is not None, "a tf.function called after its trainer was freed"
        return getattr(alive, method)(*args)

    return call


class TensorflowTrainer(TrainerBase):
    """:class:`mlpcore.backend.Trainer` updating a TensorFlow model's own ``tf.Variable`` objects.

    For inspection and benchmarks: ``trace_count`` (traces of the chunk function), ``shapes``
    (the distinct ``(n_steps, batch)`` order shapes called, one XLA compilation each),
    ``compile_seconds`` (wall time of the calls that traced or compiled) and ``calls``.
    """

    def __init__(self, spec: MLPSpec, weights: Sequence[tf.Variable],
                 biases: Sequence[tf.Variable], config: TrainingConfig, x: FloatArray,
                 targets: npt.NDArray[Any], dtype: str = "float32", device: str = "/CPU:0",
                 state: OptimizerState | None = None):
        super().__init__(spec, config, len(x), state)
        self.trace_count = 0
        self.calls = 0
        self.compile_seconds = 0.0
        self.shapes: set[tuple[int, int]] = set()
        self._loss_scaled = dtype == "float16"
        if self._loss_scaled and config.method != "optimizer":
            raise ValueError("float16 training scales the loss with keras' LossScaleOptimizer: "
                             "use method='optimizer' (the default for float16)")
        self._net = network(OPS, spec.activation, config.loss, config.regularisers, dtype)
        self._backprop = (Backprop(OPS, spec.activation, config.loss, config.regularisers)
                          if config.method == "manual" else None)
        self._weights, self._biases = list(weights), list(biases)
        self._variables = interleave(self._weights, self._biases)
        self._device = device
        self._bind(x, targets)
        self._dtype = self._x.dtype
        opt = config.optimizer
        self._lr = tf.constant(opt.lr, self._dtype)
        self._momentum = tf.constant(0.0 if isinstance(opt, Adam) else opt.momentum, self._dtype)
        self._optimizer: Any = None
        self._keras: Any = None
        self._slots: list[list[tf.Variable]] = []
        if config.method == "optimizer":
            self._keras_optimizer(self.start_slots())
        else:
            self._slots = [[tf.Variable(tf.zeros_like(v) if value is None else value,
                                        trainable=False, dtype=self._dtype) for value in values]
                           for v, values in zip(self._variables, self.start_slots(), strict=True)]
        self._mirrored = distributed.mirrored(tuple(config.devices)) if config.devices else None
        local = _weakly(self, "_local")
        self._local_fn = tf.function(local, jit_compile=True) if config.compiled else local
        data = [tf.TensorSpec([None, *t.shape[1:]], t.dtype) for t in (self._x, self._targets)]
        count = tf.TensorSpec([], tf.int64)
        masks = tuple(tf.TensorSpec([None, None, w], tf.bool)
                      for w in self.widths if self.dropout == "portable")
        self._chunk_fn = tf.function(
            _weakly(self, "_chunk"), input_signature=[*data, tf.TensorSpec([None, None], tf.int64),
                                                   count, count, masks],
            jit_compile=config.compiled and self._mirrored is None)
        if config.world.size > 1:
            self._shard_fn = tf.function(_weakly(self, "_shard_step"), input_signature=[
                *data, tf.TensorSpec([None], tf.int64), count, tf.TensorSpec([], self._dtype),
                tuple(tf.TensorSpec(m.shape[1:], tf.bool) for m in masks)])

    # --- the optimizer's slots --------------------------------------------------------------

    def _keras_optimizer(self, starts: list[list[FloatArray | None]]) -> None:
        """The config's Keras optimizer (``_keras``; ``_optimizer`` wraps it in a loss scaler for
        float16), its iterations and slots set from :attr:`step` and ``starts``. Keras's SGD slot
        is ``-lr·v``; its Adam adds ε to ``√v`` before the bias correction, so ``epsilon`` is a
        variable set to ``ε·√(1-β2^t)`` before each update. Hyper-parameters are NumPy float64:
        Keras rounds Python floats through float32 (docs/backend-tensorflow.md)."""
        import keras

        opt, lr = self.config.optimizer, np.float64(self.config.optimizer.lr)
        if isinstance(opt, Adam):
            self._epsilon = tf.Variable(tf.constant(opt.eps, self._dtype), trainable=False)
            self._keras = keras.optimizers.Adam(learning_rate=lambda: lr,
                                                beta_1=np.float64(opt.betas[0]),
                                                beta_2=np.float64(opt.betas[1]), epsilon=opt.eps)
        else:
            self._keras = keras.optimizers.SGD(learning_rate=lambda: lr,
                                               momentum=np.float64(opt.momentum),
                                               nesterov=opt.nesterov)
        self._optimizer = (keras.optimizers.LossScaleOptimizer(self._keras)
                           if self._loss_scaled else self._keras)
        self._optimizer.build(self._variables)  # a loss scaler builds the optimizer it wraps
        if isinstance(opt, Adam):
            self._keras.epsilon = self._epsilon
        self._keras.iterations.assign(self.step)
        self._scale = 1.0 if isinstance(opt, Adam) else -opt.lr  # Keras's slot / the contract's
        self._set_keras_slots(starts)

    def _set_keras_slots(self, values: Sequence[Sequence[FloatArray | None]]) -> None:
        """Set the Keras slots to ``_scale`` times the contract's ``values`` (``None``: leave)."""
        for variables, slots in zip(self._keras_slots(), values, strict=True):
            for variable, value in zip(variables, slots, strict=True):
                if value is not None:
                    variable.assign(value * value.dtype.type(self._scale))

    def _keras_slots(self) -> list[list[tf.Variable]]:
        """Per variable, the Keras optimizer's slot variables in ``SLOTS`` order (its
        ``variables`` after ``iteration``, grouped)."""
        n = len(SLOTS[self.kind])
        slots = list(self._keras.variables[1:])
        if len(slots) != n * len(self._variables):  # pragma: no cover - another Keras
            raise RuntimeError(f"unexpected Keras optimizer variables: "
                               f"{[v.path for v in self._keras.variables]}")
        return [slots[i * n:(i + 1) * n] for i in range(len(self._variables))]

    def _slot_values(self) -> list[list[FloatArray]]:
        """The slots now; a Keras slot divided by ``_scale``, then set to that value's ``_scale``
        multiple (no ``v`` gives back every ``-lr·v``), so the trainer goes on from exactly the
        state it reported: a resumed run is the straight run, bit for bit."""
        if self._keras is None:
            return [[np.array(v.numpy()) for v in values] for values in self._slots]
        read = [[np.array(v.numpy()) for v in slots] for slots in self._keras_slots()]
        values = [[s / s.dtype.type(self._scale) for s in slots] for slots in read]
        self._set_keras_slots(values)
        return values

    # --- the graph ----------------------------------------------------------------------------

    def _chunk(self, x: tf.Tensor, targets: tf.Tensor, order: tf.Tensor, first_step: tf.Tensor,
               updates: tf.Tensor, masks: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """Run ``order.shape[0]`` steps of batch ``order.shape[1]``; their objectives (n_steps,)."""
        self.trace_count += 1  # a Python side effect: runs only while tracing

        def step(j: tf.Tensor, losses: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
            rows = order[j]
            if self._mirrored is not None:
                value, grads = self._replicated(x, targets, rows, [m[j] for m in masks])
            else:
                keep = self._keep_masks(j, first_step, tf.shape(rows)[0], masks)
                value, grads = self._gradients(tf.gather(x, rows), tf.gather(targets, rows), keep)
            self._update(grads, updates + tf.cast(j, tf.int64) + 1)
            return j + 1, losses.write(j, value)

        # No explicit barrier between steps: TensorFlow's automatic control dependencies run
        # each variable's reads and writes in program order, across iterations too, so only the
        # next step's stateless work (its rows, its batch) starts early. A barrier with one
        # iteration at a time gave the same weights bit for bit and a 9 % slower epoch.
        with tf.device(self._device):
            n_steps = tf.shape(order)[0]
            losses = tf.TensorArray(self._dtype, size=n_steps, element_shape=())
            _, losses = tf.while_loop(lambda j, _: j < n_steps, step, (tf.constant(0), losses))
            return losses.stack()

    def _gradients(self, x: tf.Tensor, targets: tf.Tensor, keep: Sequence[tf.Tensor],
                   values: Sequence[tf.Tensor] | None = None,
                   ) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """The objective on these rows and the gradients (of the scaled objective, float16), at
        the variables or at ``values``, tensors of theirs (:func:`interleave` order)."""
        watched = self._variables if values is None else list(values)
        weights, biases = watched[0::2], watched[1::2]
        if self._backprop is not None:
            value, grads = self._backprop(weights, biases, x, targets, keep)
            return value, list(grads)
        with tf.GradientTape() as tape:
            tape.watch(watched)
            value = self._net.objective(weights, biases, x, targets, keep)
            scaled = self._optimizer.scale_loss(value) if self._loss_scaled else value
        return value, list(tape.gradient(scaled, watched))

    def _local(self, x: tf.Tensor, targets: tf.Tensor, masks: Sequence[tf.Tensor],
               share: tf.Tensor, values: Sequence[tf.Tensor] | None = None) -> list[tf.Tensor]:
        """``share · (objective, gradients)`` of one replica's (or rank's) rows (no rows: 0, not
        the NaN of an empty mean), at the variables or their ``values`` copied to a replica's
        device (XLA, in compiled mode, reads no variable of another device)."""
        keep = [scaled_mask(k, self.spec.dropout, self._dtype) for k in masks]
        value, grads = self._gradients(x, targets, keep, values)
        return [tf.math.multiply_no_nan(v, share) for v in (value, *grads)]

    def _replicated(self, x: tf.Tensor, targets: tf.Tensor, rows: tf.Tensor,
                    masks: Sequence[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """The objective and gradients of the global batch ``rows`` (B,) and its portable masks
        (B, d_l) over the ``MirroredStrategy``'s ``N`` replicas: replica ``r`` takes
        ``World(r, N).rows(B)`` of them, :meth:`_local` at copies of the variables on its
        device, and ``ReplicaContext.all_reduce`` sums them (replica 0's sum is returned)."""
        strategy = self._mirrored
        assert strategy is not None
        n, batch = strategy.num_replicas_in_sync, tf.shape(rows, out_type=tf.int64)[0]

        def part(context: tf.distribute.experimental.ValueContext,
                 ) -> tuple[tf.Tensor, tuple[tf.Tensor, ...], tf.Tensor]:
            r = context.replica_id_in_sync_group
            start, stop = r * batch // n, (r + 1) * batch // n
            share = tf.cast(stop - start, self._dtype) / tf.cast(batch, self._dtype)
            return rows[start:stop], tuple(m[start:stop] for m in masks), share

        def replica(mine: tf.Tensor, keep: tuple[tf.Tensor, ...],
                    share: tf.Tensor) -> list[tf.Tensor]:
            with tf.device(self._device):  # the rows are gathered where the training set is
                x_mine, t_mine = tf.gather(x, mine), tf.gather(targets, mine)
            values = [tf.identity(v) for v in self._variables]  # copied to this replica
            summed: list[tf.Tensor] = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, self._local_fn(x_mine, t_mine, keep, share, values))
            return summed

        args = strategy.experimental_distribute_values_from_function(part)
        value, *grads = (strategy.experimental_local_results(v)[0]
                         for v in strategy.run(replica, args=args))
        return value, grads

    def _shard_step(self, x: tf.Tensor, targets: tf.Tensor, rows: tf.Tensor, updates: tf.Tensor,
                    share: tf.Tensor, masks: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """One data-parallel step (``strategy.run`` and its collective cannot run inside the
        chunk's ``tf.while_loop``): ``Σ_ranks`` :meth:`_local` of this rank's ``rows`` by the
        strategy's all-reduce, and the update every rank makes alike."""
        def replica(*args: Any) -> list[tf.Tensor]:
            with tf.device(self._device):
                local = self._local_fn(*args)
            return distributed.all_reduce(local)

        with tf.device(self._device):
            x_rows, t_rows = tf.gather(x, rows), tf.gather(targets, rows)
        value, *grads = distributed.strategy().run(replica, args=(x_rows, t_rows, masks, share))
        with tf.device(self._device):
            self._update(grads, updates + 1)
        return value

    def _keep_masks(self, j: tf.Tensor, first_step: tf.Tensor, n: tf.Tensor,
                    masks: tuple[tf.Tensor, ...]) -> list[tf.Tensor]:
        """Step ``j``'s scaled masks, one per hidden layer (none without dropout)."""
        rate = self.spec.dropout
        if self.dropout == "native":
            first = (first_step + tf.cast(j, tf.int64)) * len(self.widths)
            masks = tuple(native_keep_mask(tf.stack([n, width]), rate,
                                           native_seed(self.config.seed, first + layer),
                                           compiled=self.config.compiled)
                          for layer, width in enumerate(self.widths))
        else:
            masks = tuple(mask[j] for mask in masks)
        return [scaled_mask(keep, rate, self._dtype) for keep in masks]

    def _update(self, grads: Sequence[tf.Tensor], t: tf.Tensor) -> None:
        """Apply update number ``t`` to the variables."""
        opt = self.config.optimizer
        if self._optimizer is not None:
            if isinstance(opt, Adam):
                power = tf.pow(tf.constant(opt.betas[1], self._dtype), tf.cast(t, self._dtype))
                self._epsilon.assign(tf.constant(opt.eps, self._dtype) * tf.sqrt(1 - power))
            self._optimizer.apply_gradients(zip(grads, self._variables, strict=True))
        elif isinstance(opt, Adam):
            apply_adam(self._variables, grads, self._slots, opt, t)
        else:
            apply_sgd(self._variables, grads, self._lr, [s[0] for s in self._slots if s],
                      self._momentum, nesterov=opt.nesterov)

    # --- the Python side -------------------------------------------------------------------

    def _bind(self, x: npt.NDArray[Any], targets: npt.NDArray[Any]) -> None:
        self._x, self._targets = (on_device(a, self._device) for a in (x, targets))

    def _block(self, order: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        if self.config.world.size > 1:
            return self._shard_block(order, first_step)
        shape = (int(order.shape[0]), int(order.shape[1]))
        masks: tuple[tf.Tensor, ...] = ()
        if self.dropout == "portable":
            masks = tuple(map(tf.convert_to_tensor, self.block_masks(first_step, *shape)))
        traces = self.trace_count
        new_shape = shape not in self.shapes
        started = time.perf_counter()
        losses = self._chunk_fn(self._x, self._targets, tf.convert_to_tensor(order),
                                tf.constant(first_step, tf.int64),
                                tf.constant(self.step, tf.int64), masks).numpy()
        self.step += shape[0]
        elapsed = time.perf_counter() - started
        self.calls += 1
        self.shapes.add(shape)
        if self.trace_count != traces or (self.config.compiled and new_shape):
            self.compile_seconds += elapsed
        return np.asarray(losses, dtype=np.float64)

    def _shard_block(self, order: npt.NDArray[np.int64],
                     first_step: int) -> npt.NDArray[np.float64]:
        """This rank's columns ``order`` of a block, one data-parallel step a call."""
        n_steps, n = (int(d) for d in order.shape)
        masks = (self.block_masks(first_step, n_steps, n) if self.dropout == "portable"
                 else [])
        share = tf.constant(self.share, self._dtype)
        values = []
        for j in range(n_steps):
            with distributed.reporting(f"its step {self.calls + 1}"):  # calls: steps made
                values.append(self._shard_fn(
                    self._x, self._targets, tf.constant(order[j]),
                    tf.constant(self.step, tf.int64), share,
                    tuple(tf.constant(mask[j]) for mask in masks)).numpy())
            self.step += 1
            self.calls += 1
        return np.asarray(values, dtype=np.float64)


def apply_adam(variables: Sequence[tf.Variable], grads: Sequence[tf.Tensor],
               slots: Sequence[Sequence[tf.Variable]], optimizer: Adam, t: tf.Tensor) -> None:
    """Adam's update number ``t`` (int64) in place, slots ``[m, v]`` per variable, in
    torch.optim.Adam's arithmetic: ``m += (1 − β1)(g − m)``, ``v = β2·v + (1 − β2)·g²``,
    ``w −= lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)``. (``ResourceApplyAdam`` adds ε to ``√v``
    before the bias correction, as Keras does.)"""
    for var, (m, v), g in zip(variables, slots, grads, strict=True):
        dtype = var.dtype
        beta1, beta2 = (tf.constant(b, dtype) for b in optimizer.betas)
        step = tf.cast(t, dtype)
        step_size = tf.constant(optimizer.lr, dtype) / (1 - tf.pow(beta1, step))
        root = tf.sqrt(1 - tf.pow(beta2, step))
        m.assign_add((g - m) * (1 - beta1))
        v.assign(v * beta2 + g * g * (1 - beta2))
        var.assign_sub(step_size * m / (tf.sqrt(v) / root + tf.constant(optimizer.eps, dtype)))


def apply_sgd(variables: Sequence[tf.Variable], grads: Sequence[tf.Tensor], lr: tf.Tensor,
              velocities: Sequence[tf.Variable] = (), momentum: tf.Tensor | None = None, *,
              nesterov: bool = False) -> None:
    """One SGD step in place, :mod:`mlpcore.optimizers`'s update, for each variable ``w`` with
    gradient ``g`` (same shape and dtype; ``lr`` and ``momentum`` scalars of that dtype)::

        without velocities:  w ← w − lr·g
        with velocities v:   v ← μ·v + g;  w ← w − lr·v     (nesterov: w ← w − lr·(g + μ·v))

    by one fused kernel a variable (``ResourceApplyGradientDescent``, ``ResourceApplyMomentum``):
    ``assign_sub(lr * g)``'s roundings in one pass, without its temporary ``lr·g``.
    """
    if not velocities:
        for var, g in zip(variables, grads, strict=True):
            tf.raw_ops.ResourceApplyGradientDescent(var=var.handle, alpha=lr, delta=g)
        return
    if momentum is None:
        raise ValueError("apply_sgd: velocities given without a momentum")
    for var, vel, g in zip(variables, velocities, grads, strict=True):
        tf.raw_ops.ResourceApplyMomentum(var=var.handle, accum=vel.handle, lr=lr, grad=g,
                                         momentum=momentum, use_nesterov=nesterov)
