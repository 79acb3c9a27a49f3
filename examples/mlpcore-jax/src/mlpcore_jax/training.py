"""The JAX training loop: a whole chunk of SGD steps as one jitted XLA program.

:meth:`JaxTrainer.run` makes at most two calls of :func:`run_chunk` per chunk: the full batches as
one ``(n_steps, B)`` order matrix and the short remainder as a ``(1, r)`` one. Each call runs, in
the compiled program, ``lax.fori_loop`` over the steps::

    for j in 0 … n_steps-1:
        rows = order[j];  x_b = x[rows];  t_b = targets[rows]
        s_l  = scaled keep-mask of layer l at step first_step + j       (portable or native)
        J, g = jax.value_and_grad(objective)(θ, x_b, t_b, s)            loss + penalties
        θ    = θ - lr·g          or, with momentum μ:  v = μ·v + g;  θ = θ - lr·v
        objectives[j] = J                                               before the update

exactly the update of :mod:`mlpcore.optimizers`. ``n_steps`` is a traced argument (the loop is a
``while_loop``), and the order matrix and the portable masks are padded with unused rows to a
power-of-two capacity, so one program serves every chunk of up to that many steps: a run compiles
at most ``2 · log2(steps)`` programs per batch size whatever its chunk sizes, and programs are
shared by every trainer with the same static configuration (activation, loss, regularisers,
dropout), since :func:`run_chunk` is one module-level ``jax.jit``. Learning rate and momentum are
traced, so changing them does not recompile.

Portable masks are drawn in NumPy (:func:`mlpcore.dropout.portable_keep_mask`) for the chunk and
enter as ``(capacity, B, d_l)`` booleans; native masks are drawn inside the loop from
``fold_in(fold_in(key(seed), step), layer)``, so they depend on the step number only.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from jax import lax
from mlpcore.backend import TrainingConfig, batch_blocks
from mlpcore.dropout import portable_keep_mask
from mlpcore.regularisers import Regulariser
from mlpcore.spec import MLPSpec

from mlpcore_jax.boundary import in_x64_scope
from mlpcore_jax.dropout import native_keep_mask, native_key, scaled_mask
from mlpcore_jax.network import Params, objective

TRAINING_METHODS = ("autodiff",)
"""``jax.value_and_grad`` and a hand-written SGD update; the only method."""

DropoutKind = Literal["off", "portable", "native"]
Carry = tuple[Params, Params | tuple[()], jax.Array]


def capacity_for(n_steps: int) -> int:
    """The padded number of steps of a program: the smallest power of two >= ``n_steps``."""
    return 1 << max(n_steps - 1, 0).bit_length()


@partial(jax.jit, static_argnames=("activation", "loss", "regularisers", "rate", "dropout"))
def run_chunk(params: Params, velocities: Params | tuple[()], x: jax.Array, targets: jax.Array,
              order: jax.Array, n_steps: jax.Array, keep: tuple[jax.Array, ...], key: jax.Array,
              first_step: jax.Array, lr: jax.Array, momentum: jax.Array, *, activation: str,
              loss: str, regularisers: tuple[Regulariser, ...], rate: float,
              dropout: DropoutKind) -> Carry:
    """Run steps ``0 … n_steps-1`` of ``order`` (capacity, B); returns the new variables, the new
    velocities (``()`` without momentum) and the objectives (capacity,), valid up to ``n_steps``.
    """
    dtype = x.dtype
    capacity, batch = order.shape
    widths = [w.shape[1] for w in params[0][:-1]]

    def masks_at(j: jax.Array) -> tuple[jax.Array, ...]:
        if dropout == "portable":
            return tuple(scaled_mask(k[j], rate, dtype) for k in keep)
        if dropout == "native":
            step = first_step + j
            return tuple(scaled_mask(native_keep_mask(native_key(key, step, layer),
                                                      (batch, width), rate), rate, dtype)
                         for layer, width in enumerate(widths))
        return ()

    def body(j: jax.Array, carry: Carry) -> Carry:
        theta, v, objectives = carry
        rows = order[j]
        value, grads = jax.value_and_grad(objective)(
            theta, jnp.take(x, rows, axis=0), jnp.take(targets, rows, axis=0), masks_at(j),
            activation, loss, regularisers)
        if v:
            v = jax.tree_util.tree_map(lambda vel, g: momentum * vel + g, v, grads)
            direction = v
        else:
            direction = grads
        theta = jax.tree_util.tree_map(lambda w, d: w - lr * d, theta, direction)
        return theta, v, objectives.at[j].set(value)

    start: Carry = (params, velocities, jnp.zeros((capacity,), dtype))
    result: Carry = lax.fori_loop(0, n_steps, body, start)
    return result


class VariableStore:
    """The variables of one model, shared by the model and its trainers.

    JAX arrays are immutable, so "updating in place" means replacing :attr:`params`; a trainer
    reads it at the start of every chunk and writes it at the end, so it sees a
    ``write_variables`` made between two chunks, as the contract asks.
    """

    def __init__(self, params: Params):
        self.params = params


class JaxTrainer:
    """:class:`mlpcore.backend.Trainer` for a JAX model. ``x`` (N, d_0) and ``targets`` ((N,)
    int32 labels or (N, K) floats) are bound once, as JAX arrays.

    :attr:`programs` records the distinct ``(capacity, batch)`` shapes this trainer has run (one
    compiled program each, unless another trainer compiled it first).
    """

    def __init__(self, spec: MLPSpec, store: VariableStore, config: TrainingConfig,
                 x: jax.Array, targets: jax.Array):
        if config.method is not None and config.method not in TRAINING_METHODS:
            raise ValueError(f"the jax backend trains with method 'autodiff', "
                             f"not {config.method!r}")
        self._spec = spec
        self._store = store
        self._config = config
        self._x = x
        self._targets = targets
        self._widths: Sequence[int] = spec.sizes[1:-1]
        self._dropout: DropoutKind = "off"
        if spec.dropout > 0.0 and self._widths:
            self._dropout = "native" if config.dropout_mode == "native" else "portable"
        dtype = x.dtype
        self._lr = jnp.asarray(config.optimizer.lr, dtype)
        self._momentum = jnp.asarray(config.optimizer.momentum, dtype)
        self._velocities: Params | tuple[()] = ()
        if config.optimizer.momentum > 0.0:
            self._velocities = jax.tree_util.tree_map(jnp.zeros_like, store.params)
        self._key = jax.random.key(config.seed)
        self.programs: set[tuple[int, int]] = set()

    @in_x64_scope
    def run(self, order: npt.NDArray[np.int64], batch_size: int,
            first_step: int) -> npt.NDArray[np.float64]:
        parts = [self._call(block, step)
                 for block, step in batch_blocks(order, batch_size, first_step)]
        return np.concatenate(parts) if parts else np.empty(0, np.float64)

    def _call(self, order: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        n_steps, batch = order.shape
        capacity = capacity_for(n_steps)
        padded = np.zeros((capacity, batch), np.int32)
        padded[:n_steps] = order
        params, self._velocities, objectives = run_chunk(
            self._store.params, self._velocities, self._x, self._targets, jnp.asarray(padded),
            jnp.asarray(n_steps, jnp.int32), self._portable_masks(first_step, n_steps, capacity,
                                                                  batch),
            self._key, jnp.asarray(first_step, jnp.int64), self._lr, self._momentum,
            activation=self._spec.activation, loss=self._config.loss,
            regularisers=tuple(self._config.regularisers), rate=self._rate(),
            dropout=self._dropout)
        self._store.params = params
        self.programs.add((capacity, batch))
        return np.asarray(objectives, dtype=np.float64)[:n_steps]

    def _rate(self) -> float:
        """The dropout rate the program is compiled for (0 without dropout: one program)."""
        return 0.0 if self._dropout == "off" else float(self._spec.dropout)

    def _portable_masks(self, first_step: int, n_steps: int, capacity: int,
                        batch: int) -> tuple[jax.Array, ...]:
        """The chunk's portable keep-masks: one (capacity, batch, d_l) bool array per layer."""
        if self._dropout != "portable":
            return ()
        seed, rate = self._config.seed, self._spec.dropout
        masks = []
        for layer, width in enumerate(self._widths):
            block = np.zeros((capacity, batch, width), dtype=bool)
            for j in range(n_steps):
                block[j] = portable_keep_mask(seed, first_step + j, layer, (batch, width), rate)
            masks.append(jnp.asarray(block))
        return tuple(masks)
