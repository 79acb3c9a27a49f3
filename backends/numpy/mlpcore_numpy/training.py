"""The NumPy training loop: many SGD steps per call, in place, on preallocated buffers."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import TrainingConfig
from mlpcore.backend_common import FloatArray, TrainerBase, interleave
from mlpcore.random import Purpose, stream
from mlpcore.spec import MLPSpec
from mlpcore_numpy.dropout import native_keep_mask
from mlpcore_numpy.network import Workspace, backprop


class NumpyTrainer(TrainerBase):
    """:class:`mlpcore.backend.Trainer` over a NumPy model's own weight and bias arrays."""

    def __init__(self, spec: MLPSpec, weights: list[FloatArray], biases: list[FloatArray],
                 config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any]):
        super().__init__(spec, config, x.shape[0])
        self._weights, self._biases = weights, biases
        self._x, self._targets = x, targets
        self._lr = x.dtype.type(config.optimizer.lr)
        self._momentum = x.dtype.type(config.optimizer.momentum)
        self._velocity = ([np.zeros_like(p) for p in interleave(weights, biases)]
                          if config.optimizer.momentum > 0 else [])
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

    def _update(self, ws: Workspace) -> None:
        """SGD in place; the gradient buffers are free after this step, so they hold ``lr * g``
        (momentum: ``v <- μ v + g``, then ``lr * v``)."""
        params = interleave(self._weights, self._biases)
        for i, (p, g) in enumerate(zip(params, interleave(ws.grad_w, ws.grad_b), strict=True)):
            if self._velocity:
                self._velocity[i] *= self._momentum
                self._velocity[i] += g
                np.multiply(self._velocity[i], self._lr, out=g)
            else:
                g *= self._lr
            p -= g
