"""The JAX training loop: a whole chunk of SGD steps as one jitted XLA program.

:meth:`JaxTrainer.run` makes one call of :func:`run_chunk` per block (at most two per chunk: the
full batches as one ``(n_steps, B)`` order matrix and the short remainder as a ``(1, r)`` one).
Each call runs, in the compiled program, ``lax.fori_loop`` over the steps::

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
shared by every trainer with the same static configuration (its
:class:`~mlpcore.backend_common.Network`, the dropout rate and kind), since :func:`run_chunk` is
one module-level ``jax.jit``. Learning rate and momentum are traced, so changing them does not
recompile. Portable masks are drawn in NumPy for the block and enter as ``(capacity, B, d_l)``
booleans; native masks are drawn inside the loop from :func:`~mlpcore_jax.ops.native_key`, so
they depend on the step number only.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from jax import lax
from mlpcore.backend import TrainingConfig
from mlpcore.backend_common import Network, TrainerBase, network
from mlpcore.optimizers import SGD
from mlpcore.spec import MLPSpec

from mlpcore_jax.ops import OPS, in_x64_scope, native_keep_mask, native_key, scaled_mask

Params = tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]
"""``(weights, biases)``: the pytree ``jax.grad`` differentiates."""
Carry = tuple[Params, Params | tuple[()], jax.Array]


def capacity_for(n_steps: int) -> int:
    """The padded number of steps of a program: the smallest power of two >= ``n_steps``."""
    return 1 << max(n_steps - 1, 0).bit_length()


@partial(jax.jit, static_argnames=("net", "rate", "dropout"))
def run_chunk(params: Params, velocities: Params | tuple[()], x: jax.Array, targets: jax.Array,
              order: jax.Array, n_steps: jax.Array, keep: tuple[jax.Array, ...], key: jax.Array,
              first_step: jax.Array, lr: jax.Array, momentum: jax.Array, *, net: Network,
              rate: float, dropout: str) -> Carry:
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
            return tuple(scaled_mask(native_keep_mask(native_key(key, first_step + j, layer),
                                                      (batch, width), rate), rate, dtype)
                         for layer, width in enumerate(widths))
        return ()

    def objective(theta: Params, rows: jax.Array, masks: tuple[jax.Array, ...]) -> jax.Array:
        value: jax.Array = net.objective(theta[0], theta[1], jnp.take(x, rows, axis=0),
                                         jnp.take(targets, rows, axis=0), masks)
        return value

    def body(j: jax.Array, carry: Carry) -> Carry:
        theta, v, objectives = carry
        value, grads = jax.value_and_grad(objective)(theta, order[j], masks_at(j))
        if v:
            v = jax.tree_util.tree_map(lambda vel, g: momentum * vel + g, v, grads)
        theta = jax.tree_util.tree_map(lambda w, d: w - lr * d, theta, v or grads)
        return theta, v, objectives.at[j].set(value)

    start: Carry = (params, velocities, jnp.zeros((capacity,), dtype))
    result: Carry = lax.fori_loop(0, n_steps, body, start)
    return result


class JaxTrainer(TrainerBase):
    """:class:`mlpcore.backend.Trainer` for a JAX model. ``weights`` and ``biases`` are the
    model's own lists: JAX arrays are immutable, so each block reads them and puts the new arrays
    back, and a ``write_variables`` between two blocks is seen. ``x`` (N, d_0) and ``targets``
    are bound once. :attr:`programs` records the distinct ``(capacity, batch)`` shapes run (one
    compiled program each, unless another trainer compiled it first)."""

    def __init__(self, spec: MLPSpec, weights: list[jax.Array], biases: list[jax.Array],
                 config: TrainingConfig, x: jax.Array, targets: jax.Array):
        super().__init__(spec, config, int(x.shape[0]))
        self._weights, self._biases, self._x, self._targets = weights, biases, x, targets
        self._net = network(OPS, spec.activation, config.loss, config.regularisers)
        optimizer = config.optimizer
        if not isinstance(optimizer, SGD) or optimizer.nesterov:  # no 'optimizers' capability
            raise ValueError(f"the jax backend trains with SGD (momentum allowed, not Nesterov), "
                             f"not {optimizer!r}")
        self._lr = jnp.asarray(optimizer.lr, x.dtype)
        self._momentum = jnp.asarray(optimizer.momentum, x.dtype)
        self._velocities: Params | tuple[()] = ()
        if optimizer.momentum > 0.0:
            self._velocities = (tuple(map(jnp.zeros_like, weights)),
                                tuple(map(jnp.zeros_like, biases)))
        self._key = jax.random.key(config.seed)
        self.programs: set[tuple[int, int]] = set()

    run = in_x64_scope(TrainerBase.run)
    bind = in_x64_scope(TrainerBase.bind)

    def _bind(self, x: npt.NDArray[Any], targets: npt.NDArray[Any]) -> None:
        device = next(iter(self._x.devices()))  # the model's, where start_training put x
        self._x, self._targets = (jax.device_put(a, device) for a in (x, targets))

    def _block(self, order: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        n_steps, batch = order.shape
        capacity = capacity_for(n_steps)
        padded = np.zeros((capacity, batch), np.int32)
        padded[:n_steps] = order
        keep = (tuple(map(jnp.asarray, self.block_masks(first_step, n_steps, batch, capacity)))
                if self.dropout == "portable" else ())
        (weights, biases), self._velocities, objectives = run_chunk(
            (tuple(self._weights), tuple(self._biases)), self._velocities, self._x,
            self._targets, jnp.asarray(padded), jnp.asarray(n_steps, jnp.int32), keep, self._key,
            jnp.asarray(first_step, jnp.int64), self._lr, self._momentum, net=self._net,
            rate=self.spec.dropout if self.dropout != "off" else 0.0, dropout=self.dropout)
        self._weights[:], self._biases[:] = weights, biases
        self.programs.add((capacity, batch))
        return np.asarray(objectives, dtype=np.float64)[:n_steps]
