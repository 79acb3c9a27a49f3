"""The TensorFlow training loop: a whole chunk of optimizer steps inside one ``tf.function`` call.

Why: calling a ``tf.function`` costs about 0.4 ms, more than one training step of an MLP this
size. So :meth:`TensorflowTrainer.run` does not loop in Python; it makes at most two calls per
chunk, and each runs a ``tf.while_loop`` over the steps in the graph::

    x (N, d_0), targets (N,) or (N, K), order (n_steps, B) int64, first_step int64,
        updates made int64 [, portable masks (n_steps, B, d_l) bool ...]
    for j in 0 … n_steps-1 (in the graph; each variable read after the previous step's update):
        rows = order[j];  x_b = gather(x, rows);  t_b = gather(targets, rows)
        keep = masks[j] | stateless_uniform((seed, (first_step + j) · n_hidden + l)) >= p
                                          (Philox; Threefry in XLA mode, see ops.py)
        with GradientTape: J = loss(forward(x_b, keep), t_b) + penalties;  g = dJ/dθ
            (manual: J and g by Backprop, TensorFlow's linear algebra, no tape)
        update θ (autodiff, manual: apply_sgd / apply_adam; optimizer: Keras's apply_gradients)
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

Updates, for every variable ``w`` with gradient ``g`` (weights and biases), those of
:mod:`mlpcore.optimizers`:

* ``"autodiff"`` and ``"manual"``: SGD, momentum and Nesterov by :func:`apply_sgd` (one fused
  TensorFlow kernel a variable), Adam by :func:`apply_adam` (TensorFlow ops, torch.optim's
  arithmetic);
* ``"optimizer"``: ``keras.optimizers.SGD(lr, momentum, nesterov)``, whose form
  ``m = μ m - lr g; w += m`` (Nesterov: ``w += μ m - lr g``) follows the same trajectory for a
  constant learning rate (only the rounding differs; its slot ``m`` is ``-lr·v``: reading the
  state reports ``v = m / -lr`` and sets ``m`` to that ``v``'s ``-lr·v``, since no ``v`` of the
  same precision gives back every ``m`` exactly, so that the run goes on from exactly the state
  it reported and a resumed run is the straight run, bit for bit), or
  ``keras.optimizers.Adam(lr, β1, β2, ε)``. Keras adds ε to ``√v`` before the bias correction
  (``w -= lr·√(1-β2^t)/(1-β1^t) · m / (√v + ε)``), so its ``epsilon`` is given as a variable set
  to ``ε·√(1-β2^t)`` before each update: then it computes the contract's
  ``w -= lr·m̂ / (√v̂ + ε)`` exactly, up to rounding. The learning rate is a constant callable
  returning a NumPy float64, momentum and betas NumPy float64: Keras casts them straight to each
  variable's dtype. (With plain Python floats Keras rounds them through float32, its floatx, and
  float64 runs drift by ~1e-8 relative.)

The update count (Adam's ``t``) enters each call as ``updates``; the slots start from the
:class:`~mlpcore.optimizers.OptimizerState` handed to the trainer, if any.

Devices: the chunk function's ops are placed on the model's device (``tf.device`` at trace
time), where its variables and the training set (copied once per trainer) are. With
``config.devices`` (one process, several devices) each step's gradients come from
:meth:`TensorflowTrainer._replicated`, inside the same ``tf.while_loop`` (a
``MirroredStrategy``'s all-reduce runs there, unlike a multi-worker one's): every replica
computes its rows' share on its device, the all-reduce sums them, and the one update is made on
the model's device; in compiled mode XLA compiles each replica's gradients. Mixed precision
(``dtype`` bfloat16 or float16): the network casts to ``dtype`` inside every dense layer; the
variables, gradients and updates are float32. float16 scales the loss dynamically with
``keras.optimizers.LossScaleOptimizer`` around the Keras optimizer (a step whose gradients
overflow is skipped and the scale halved; it doubles after 2000 good steps), so float16 trains
with the ``"optimizer"`` method.
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
from mlpcore.backend_common import Backprop, FloatArray, TrainerBase, interleave, network
from mlpcore.errors import DistributedError
from mlpcore.optimizers import SLOTS, Adam, OptimizerState
from mlpcore.spec import MLPSpec
from mlpcore_tensorflow import distributed
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
                 targets: tf.Tensor, dtype: str = "float32", device: str = "/CPU:0",
                 state: OptimizerState | None = None):
        super().__init__(spec, config, int(x.shape[0]), state)
        self.trace_count = 0
        self.calls = 0
        self.compile_seconds = 0.0
        self.shapes: set[tuple[int, int]] = set()
        if config.method == "manual" and dtype not in ("float32", "float64"):
            raise ValueError(f"the manual method's backprop computes in the model's float32 "
                             f"variables; {dtype} trains with 'autodiff' or 'optimizer'")
        self._net = network(OPS, spec.activation, config.loss, config.regularisers, dtype)
        self._backprop = (Backprop(OPS, spec.activation, config.loss, config.regularisers)
                          if config.method == "manual" else None)
        self._weights, self._biases = list(weights), list(biases)
        self._variables = interleave(self._weights, self._biases)
        self._x, self._targets, self._device = x, targets, device
        self._dtype = x.dtype
        opt = config.optimizer
        self._lr = tf.constant(opt.lr, self._dtype)
        self._momentum = tf.constant(0.0 if isinstance(opt, Adam) else opt.momentum, self._dtype)
        starts = self.start_slots()
        self._optimizer: Any = None
        self._loss_scaled = dtype == "float16"
        if self._loss_scaled and config.method != "optimizer":
            raise ValueError("float16 training scales the loss with keras' LossScaleOptimizer: "
                             "use method='optimizer' (the default for float16)")
        if config.method == "optimizer":
            self._optimizer = self._keras_optimizer(starts)
            self._slots: list[list[tf.Variable]] = []
        else:
            self._slots = [[tf.Variable(tf.zeros_like(v) if value is None else value,
                                        trainable=False, dtype=self._dtype) for value in values]
                           for v, values in zip(self._variables, starts, strict=True)]
        signature = [
            tf.TensorSpec([None, *x.shape[1:]], x.dtype, name="x"),
            tf.TensorSpec([None, *targets.shape[1:]], targets.dtype, name="targets"),
            tf.TensorSpec([None, None], tf.int64, name="order"),
            tf.TensorSpec([], tf.int64, name="first_step"),
            tf.TensorSpec([], tf.int64, name="updates"),
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
                  updates: tf.Tensor, masks: tuple[tf.Tensor, ...]) -> tf.Tensor:
            alive = trainer()
            assert alive is not None, "a chunk function called after its trainer was freed"
            with tf.device(device):
                return alive._chunk(x, targets, order, first_step, updates, masks)

        self._mirrored = distributed.mirrored(config.devices) if config.devices else None

        def local(*args: Any) -> list[tf.Tensor]:
            alive = trainer()
            assert alive is not None, "a replica's function called after its trainer was freed"
            return alive._local(*args)

        self._compiled_local = (tf.function(local, jit_compile=True)
                                if self._mirrored is not None and config.compiled else None)
        self._chunk_fn = tf.function(chunk, input_signature=signature,
                                     jit_compile=config.compiled and self._mirrored is None)
        self._reduced = 0
        """All-reduces made (data-parallel steps), to name the one that failed."""
        if config.world.size > 1:
            self._shard_fn = self._shard_step(distributed.strategy(), device, signature)

    def _shard_step(self, strategy: tf.distribute.Strategy, device: str,
                    signature: list[Any]) -> Any:
        """The data-parallel step, one ``tf.function`` call each (``strategy.run`` and its
        collective cannot run inside the chunk's ``tf.while_loop``): this rank's rows, the
        gradients, ``Σ_ranks share · (objective, gradients)`` by the strategy's all-reduce
        (``multiply_no_nan``: a rank without rows adds 0, not the NaN of an empty mean), and the
        update every rank makes alike. In compiled mode XLA compiles the rank's gradients."""
        trainer = weakref.ref(self)

        def local(x: tf.Tensor, targets: tf.Tensor, rows: tf.Tensor, share: tf.Tensor,
                  masks: tuple[tf.Tensor, ...]) -> list[tf.Tensor]:
            alive = trainer()
            assert alive is not None, "a step function called after its trainer was freed"
            with tf.device(device):
                keep = [scaled_mask(k, alive.spec.dropout, alive._dtype) for k in masks]
                value, grads = alive._gradients(tf.gather(x, rows), tf.gather(targets, rows),
                                                keep)
                return [tf.math.multiply_no_nan(v, share) for v in (value, *grads)]

        gradients = tf.function(local, jit_compile=True) if self.config.compiled else local

        def step(x: tf.Tensor, targets: tf.Tensor, rows: tf.Tensor, updates: tf.Tensor,
                 share: tf.Tensor, masks: tuple[tf.Tensor, ...]) -> tf.Tensor:
            alive = trainer()
            assert alive is not None, "a step function called after its trainer was freed"
            value, *grads = strategy.run(
                lambda *args: distributed.all_reduce(gradients(*args)),
                args=(x, targets, rows, share, masks))
            with tf.device(device):
                alive._update(grads, updates + 1)
            return value

        x, targets, _, _, updates, masks = signature
        return tf.function(step, input_signature=[
            x, targets, tf.TensorSpec([None], tf.int64, name="rows"), updates,
            tf.TensorSpec([], self._dtype, name="share"),
            tuple(tf.TensorSpec(m.shape[1:], tf.bool, name=m.name) for m in masks)])

    def _keras_optimizer(self, starts: list[list[FloatArray | None]]) -> Any:
        """The Keras optimizer of the config, built, its slots and iterations set from
        ``starts`` and :attr:`step` (Keras's SGD slot is ``-lr·v``)."""
        import keras

        opt, lr = self.config.optimizer, np.float64(self.config.optimizer.lr)
        if isinstance(opt, Adam):
            # a variable: ε·√(1-β2^t) is set before each update (see the module docstring)
            self._epsilon = tf.Variable(tf.constant(opt.eps, self._dtype), trainable=False)
            optimizer = keras.optimizers.Adam(learning_rate=lambda: lr,
                                              beta_1=np.float64(opt.betas[0]),
                                              beta_2=np.float64(opt.betas[1]), epsilon=opt.eps)
        else:
            optimizer = keras.optimizers.SGD(learning_rate=lambda: lr,
                                             momentum=np.float64(opt.momentum),
                                             nesterov=opt.nesterov)
        outer = keras.optimizers.LossScaleOptimizer(optimizer) if self._loss_scaled else optimizer
        outer.build(self._variables)  # a loss scaler builds the optimizer it wraps
        if isinstance(opt, Adam):
            optimizer.epsilon = self._epsilon
        optimizer.iterations.assign(self.step)
        self._set_keras_slots(optimizer, starts)
        return outer

    def _set_keras_slots(self, optimizer: Any, values: Sequence[Sequence[FloatArray | None]],
                         ) -> None:
        """Set the Keras optimizer's slots from the contract's ``values`` (``None``: leave it):
        Adam's ``m`` and ``v`` as they are, SGD's ``-lr·v`` (rounded in the slot's dtype)."""
        opt = self.config.optimizer
        for variables, slots in zip(self._keras_slots(optimizer), values, strict=True):
            for variable, value in zip(variables, slots, strict=True):
                if value is not None:
                    scale = value.dtype.type(1.0 if isinstance(opt, Adam) else -opt.lr)
                    variable.assign(value * scale)

    def _keras_slots(self, optimizer: Any) -> list[list[tf.Variable]]:
        """Per variable, the Keras optimizer's slot variables in ``SLOTS`` order: its
        ``variables`` after ``iteration``, grouped."""
        n = len(SLOTS[self.kind])
        slots = list(optimizer.variables[1:])
        if len(slots) != n * len(self._variables):  # pragma: no cover - another Keras
            raise RuntimeError(f"unexpected Keras optimizer variables: "
                               f"{[v.path for v in optimizer.variables]}")
        return [slots[i * n:(i + 1) * n] for i in range(len(self._variables))]

    def _slot_values(self) -> list[list[FloatArray]]:
        """The slots now. Keras's SGD slot ``-lr·v`` is divided by ``-lr``; as no ``v`` of the
        slot's precision multiplies back to every ``-lr·v`` exactly, the slot is then set to the
        reported ``v``'s ``-lr·v``: the trainer continues from exactly the state it reported,
        as one started from it would (a resumed run is the straight run, bit for bit)."""
        if self._optimizer is None:
            return [[np.array(v.numpy()) for v in values] for values in self._slots]
        opt = self.config.optimizer
        keras_optimizer = getattr(self._optimizer, "inner_optimizer", self._optimizer)  # unscaled
        values = [[np.array(v.numpy()) for v in slots]
                  for slots in self._keras_slots(keras_optimizer)]
        if isinstance(opt, Adam):
            return values
        velocities = [[value / value.dtype.type(-opt.lr) for value in slots] for slots in values]
        self._set_keras_slots(keras_optimizer, velocities)
        return velocities

    # --- the graph ------------------------------------------------------------------------------

    def _chunk(self, x: tf.Tensor, targets: tf.Tensor, order: tf.Tensor, first_step: tf.Tensor,
               updates: tf.Tensor, masks: tuple[tf.Tensor, ...]) -> tf.Tensor:
        """Run ``order.shape[0]`` steps of batch ``order.shape[1]``; their objectives (n_steps,)."""
        self.trace_count += 1  # a Python side effect: runs only while tracing
        n_steps = tf.shape(order)[0]
        losses = tf.TensorArray(self._dtype, size=n_steps, element_shape=())

        def step(j: tf.Tensor, losses: tf.TensorArray) -> tuple[tf.Tensor, tf.TensorArray]:
            rows = order[j]
            if self._mirrored is not None:
                value, grads = self._replicated(x, targets, rows, [m[j] for m in masks])
            else:
                x_batch = tf.gather(x, rows)
                t_batch = tf.gather(targets, rows)
                keep = self._keep_masks(j, first_step, tf.shape(rows)[0], masks)
                value, grads = self._gradients(x_batch, t_batch, keep)
            self._update(grads, updates + tf.cast(j, tf.int64) + 1)
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

    def _replicated(self, x: tf.Tensor, targets: tf.Tensor, rows: tf.Tensor,
                    masks: Sequence[tf.Tensor]) -> tuple[tf.Tensor, list[tf.Tensor]]:
        """The objective and gradients of the global batch ``rows`` (B,), its portable masks
        (B, d_l), shared over the ``MirroredStrategy``'s ``N`` replicas: replica ``r`` takes
        ``World(r, N).rows(B)`` of them (values per replica by
        ``experimental_distribute_values_from_function``), computes ``share · (J_r, ∇J_r)``
        at copies of the variables on its device, and ``ReplicaContext.all_reduce`` sums them;
        replica 0's sum is returned (every replica holds the same)."""
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
            local = self._compiled_local or self._local
            summed: list[tf.Tensor] = tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, local(x_mine, t_mine, keep, share, values))
            return summed

        args = strategy.experimental_distribute_values_from_function(part)
        value, *grads = (strategy.experimental_local_results(v)[0]
                         for v in strategy.run(replica, args=args))
        return value, grads

    def _local(self, x: tf.Tensor, targets: tf.Tensor, masks: Sequence[tf.Tensor],
               share: tf.Tensor, values: Sequence[tf.Tensor]) -> list[tf.Tensor]:
        """``share · (objective, gradients)`` of one replica's rows (``multiply_no_nan``: a
        replica without rows adds 0, not the NaN of an empty mean); XLA-compiled in compiled
        mode, taking the variables' values as arguments (XLA reads no variable of another
        device)."""
        keep = [scaled_mask(k, self.spec.dropout, self._dtype) for k in masks]
        value, grads = self._gradients(x, targets, keep, values)
        return [tf.math.multiply_no_nan(v, share) for v in (value, *grads)]

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

    def _update(self, grads: Sequence[tf.Tensor], t: tf.Tensor) -> None:
        """Apply update number ``t`` to the variables (the Keras optimizer's, or
        :func:`apply_sgd` / :func:`apply_adam`)."""
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

    # --- the Python side: one call per block (at most two per chunk) --------------------------

    def _bind(self, x: npt.NDArray[Any], targets: npt.NDArray[Any]) -> None:
        with tf.device(self._device):  # convert_to_tensor makes host tensors; identity copies
            placed = [tf.convert_to_tensor(a) for a in (x, targets)]
            self._x, self._targets = (placed if self._device.startswith("/CPU")
                                      else [tf.identity(t) for t in placed])

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
            self._reduced += 1
            try:
                values.append(self._shard_fn(
                    self._x, self._targets, tf.constant(order[j]),
                    tf.constant(self.step, tf.int64), share,
                    tuple(tf.constant(mask[j]) for mask in masks)).numpy())
            except distributed.COLLECTIVE_ERRORS as error:
                world = self.config.world
                raise DistributedError(
                    f"rank {world.rank} of {world.size}: the all-reduce of its step "
                    f"{self._reduced} failed, another worker exited or timed out "
                    f"({type(error).__name__}: {error.message.strip().splitlines()[-1]})"
                ) from error
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

    Each variable is updated by one fused kernel, ``ResourceApplyGradientDescent`` or
    ``ResourceApplyMomentum`` (``use_nesterov``), which computes exactly these roundings,
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
                                         momentum=momentum, use_nesterov=nesterov)
