"""The NumPy training loop: many SGD steps per call, in place, on preallocated buffers."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import TrainingConfig
from mlpcore.backend_common import TrainerBase, interleave, penalties
from mlpcore.random import Purpose, stream
from mlpcore.spec import MLPSpec
from mlpcore_numpy.dropout import native_keep_mask
from mlpcore_numpy.losses import TABLE as LOSSES
from mlpcore_numpy.network import BoolArray, FloatArray, Workspace, backprop
from mlpcore_numpy.regularisers import TABLE as PENALTIES


class NumpyTrainer(TrainerBase):
    """:class:`mlpcore.backend.Trainer` over a NumPy model's own weight and bias arrays."""

    def __init__(self, spec: MLPSpec, weights: list[FloatArray], biases: list[FloatArray],
                 config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any]):
        super().__init__(spec, config, x.shape[0])
        self._weights, self._biases = weights, biases
        self._x, self._targets = x, targets
        self._loss, self._terms = LOSSES[config.loss], penalties(PENALTIES, config.regularisers)
        self._lr = x.dtype.type(config.optimizer.lr)
        self._momentum = x.dtype.type(config.optimizer.momentum)
        self._velocity = ([np.zeros_like(p) for p in interleave(weights, biases)]
                          if config.optimizer.momentum > 0 else [])
        # per batch size: the workspace and the buffer the batch's input rows are gathered into
        self._workspaces: dict[int, tuple[Workspace, FloatArray]] = {}
        self._native_rng = stream(config.seed, Purpose.DROPOUT)

    def _keep_masks(self, step: int, n: int) -> list[BoolArray]:
        if self.dropout == "native":
            return [native_keep_mask(self._native_rng, (n, w), self.spec.dropout)
                    for w in self.widths]
        return self.step_masks(step, n)

    def _block(self, rows: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        n_steps, batch = rows.shape
        if batch not in self._workspaces:
            self._workspaces[batch] = (Workspace(self.spec, batch, self._x.dtype),
                                       np.empty((batch, self._x.shape[1]), self._x.dtype))
        ws, x_batch = self._workspaces[batch]
        losses = np.empty(n_steps, np.float64)
        with np.errstate(over="ignore"):
            for j in range(n_steps):
                # rows were checked by run; mode='raise' would buffer `out` (a copy per step)
                np.take(self._x, rows[j], axis=0, out=x_batch, mode="clip")
                losses[j] = backprop(self.spec, self._weights, self._biases, x_batch,
                                     self._targets[rows[j]], self._loss, self._terms, ws,
                                     self._keep_masks(first_step + j, batch))
                self._update(ws)
        return losses

    def _update(self, ws: Workspace) -> None:
        """SGD in place; the gradient buffers are free after this step, so they hold ``lr * g``."""
        grads = interleave(ws.grad_w, ws.grad_b)
        if self._velocity:
            for v, g in zip(self._velocity, grads, strict=True):
                v *= self._momentum
                v += g
                np.multiply(v, self._lr, out=g)
        else:
            for g in grads:
                g *= self._lr
        for p, g in zip(interleave(self._weights, self._biases), grads, strict=True):
            p -= g
