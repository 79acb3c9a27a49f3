"""The NumPy training loop: many optimizer steps per call, in place, on preallocated buffers.

The updates of :mod:`mlpcore.optimizers`, written as torch.optim computes them (per variable
``w``, gradient ``g``; Adam's factors from :func:`~mlpcore.optimizers.adam_factors`)::

    SGD        w -= lr·g
    momentum   v = μ·v + g;  w -= lr·v      (Nesterov: w -= lr·(g + μ·v))
    Adam       m += (1 - β1)·(g - m);  v = β2·v + (1 - β2)·g·g
               w -= step_size · m / (√v / √(1 - β2^t) + ε)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import TrainingConfig
from mlpcore.backend_common import FloatArray, TrainerBase, interleave
from mlpcore.optimizers import Adam, OptimizerState, adam_factors
from mlpcore.random import Purpose, stream
from mlpcore.spec import MLPSpec
from mlpcore_numpy.network import Workspace, backprop
from mlpcore_numpy.ops import native_keep_mask


class NumpyTrainer(TrainerBase):
    """:class:`mlpcore.backend.Trainer` over a NumPy model's own weight and bias arrays."""

    def __init__(self, spec: MLPSpec, weights: list[FloatArray], biases: list[FloatArray],
                 config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any],
                 state: OptimizerState | None = None):
        super().__init__(spec, config, x.shape[0], state)
        self._weights, self._biases = weights, biases
        self._x, self._targets = x, targets
        params = interleave(weights, biases)
        self._slots = [[np.zeros_like(p) if value is None else np.array(value, p.dtype)
                        for value in values]
                       for p, values in zip(params, self.start_slots(), strict=True)]
        self._scratch = [np.empty_like(p) for p in params] if self.kind != "sgd" else []
        self._workspaces: dict[int, Workspace] = {}  # per batch size
        self._rng = stream(config.seed, Purpose.DROPOUT)  # native masks

    def _bind(self, x: FloatArray, targets: npt.NDArray[Any]) -> None:
        self._x, self._targets = x, targets

    def _block(self, rows: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        n_steps, batch = rows.shape
        ws = self._workspaces.get(batch) or self._workspaces.setdefault(
            batch, Workspace(self.spec, batch, self._x.dtype))
        losses = np.empty(n_steps, np.float64)
        with np.errstate(over="ignore"):
            for j in range(n_steps):
                # rows were checked by run; mode='raise' would buffer `out` (a copy per step)
                np.take(self._x, rows[j], axis=0, out=ws.x, mode="clip")
                masks = ([native_keep_mask(self._rng, (batch, w), self.spec.dropout)
                          for w in self.widths] if self.dropout == "native"
                         else self.step_masks(first_step + j, batch))
                losses[j] = backprop(self.spec, self._weights, self._biases, ws.x,
                                     self._targets[rows[j]], self.config.loss,
                                     self.config.regularisers, ws, masks)
                self._update(ws)
        return losses

    def _slot_values(self) -> list[list[FloatArray]]:
        return [[value.copy() for value in values] for values in self._slots]

    def _update(self, ws: Workspace) -> None:
        """One update in place (the module's formulas); the gradient buffers are free after this
        step, so they serve as scratch too."""
        self.step += 1
        opt, dtype = self.config.optimizer, self._x.dtype.type
        params = interleave(self._weights, self._biases)
        grads = interleave(ws.grad_w, ws.grad_b)
        if isinstance(opt, Adam):
            step_size, root = adam_factors(opt, self.step)
            beta1, beta2 = opt.betas
            for p, g, (m, v), s in zip(params, grads, self._slots, self._scratch, strict=True):
                np.subtract(g, m, out=s)
                s *= dtype(1.0 - beta1)
                m += s
                v *= dtype(beta2)
                g *= g
                g *= dtype(1.0 - beta2)
                v += g
                np.sqrt(v, out=s)
                s /= dtype(root)
                s += dtype(opt.eps)
                np.divide(m, s, out=s)
                s *= dtype(step_size)
                p -= s
            return
        lr, mu = dtype(opt.lr), dtype(opt.momentum)
        for p, g, slots, s in zip(params, grads, self._slots,
                                  self._scratch or [None] * len(params), strict=True):
            if slots and opt.nesterov:
                v = slots[0]
                v *= mu
                v += g
                np.multiply(v, mu, out=s)
                g += s
                g *= lr
            elif slots:
                v = slots[0]
                v *= mu
                v += g
                np.multiply(v, lr, out=g)
            else:
                g *= lr
            p -= g
