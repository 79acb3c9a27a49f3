"""The NumPy training loop: many SGD steps per call, in place, on preallocated buffers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.backend import TrainingConfig
from mlpcore.dropout import portable_keep_mask
from mlpcore.random import Purpose, stream
from mlpcore.spec import MLPSpec
from mlpcore_numpy.dropout import native_keep_mask
from mlpcore_numpy.network import BoolArray, FloatArray, Workspace, backprop


class NumpyTrainer:
    """:class:`mlpcore.backend.Trainer` over a NumPy model's own weight and bias arrays."""

    def __init__(self, spec: MLPSpec, weights: list[FloatArray], biases: list[FloatArray],
                 config: TrainingConfig, x: FloatArray, targets: npt.NDArray[Any]):
        self._spec = spec
        self._weights = weights
        self._biases = biases
        self._config = config
        self._x = x
        self._targets = targets
        dtype = weights[0].dtype
        self._lr = dtype.type(config.optimizer.lr)
        self._momentum = dtype.type(config.optimizer.momentum)
        self._velocity: list[FloatArray] = (
            [np.zeros_like(v) for pair in zip(weights, biases, strict=True) for v in pair]
            if config.optimizer.momentum > 0 else [])
        # per batch size: the workspace and the buffer the batch's input rows are gathered into
        self._workspaces: dict[int, tuple[Workspace, FloatArray]] = {}
        self._native_rng = stream(config.seed, Purpose.DROPOUT)

    def _workspace(self, batch_size: int) -> tuple[Workspace, FloatArray]:
        if batch_size not in self._workspaces:
            self._workspaces[batch_size] = (
                Workspace(self._spec, batch_size, self._x.dtype),
                np.empty((batch_size, self._x.shape[1]), self._x.dtype))
        return self._workspaces[batch_size]

    def _keep_masks(self, step: int, n: int) -> list[BoolArray] | None:
        spec = self._spec
        if spec.dropout == 0.0:
            return None
        widths = spec.sizes[1:-1]
        if self._config.dropout_mode == "native":
            return [native_keep_mask(self._native_rng, (n, w), spec.dropout) for w in widths]
        return [portable_keep_mask(self._config.seed, step, layer, (n, w), spec.dropout)
                for layer, w in enumerate(widths)]

    def run(self, order: npt.NDArray[np.int64], batch_size: int,
            first_step: int) -> npt.NDArray[np.float64]:
        n_steps = math.ceil(len(order) / batch_size)
        losses = np.empty(n_steps, np.float64)
        if len(order) and (order.min() < 0 or order.max() >= len(self._x)):
            raise IndexError(f"order holds row indices outside 0..{len(self._x) - 1}: "
                             f"{int(order.min())}..{int(order.max())}")
        ws, x_batch_full = self._workspace(batch_size)
        with np.errstate(over="ignore"):
            self._run_steps(order, batch_size, first_step, n_steps, ws, x_batch_full, losses)
        return losses

    def _run_steps(self, order: npt.NDArray[np.int64], batch_size: int, first_step: int,
                   n_steps: int, ws: Workspace, x_batch_full: FloatArray,
                   losses: npt.NDArray[np.float64]) -> None:
        for j in range(n_steps):
            rows = order[j * batch_size:(j + 1) * batch_size]
            x_batch = x_batch_full[:len(rows)]
            # rows were checked above; mode='raise' would buffer `out` (a copy per step)
            np.take(self._x, rows, axis=0, out=x_batch, mode="clip")
            losses[j] = backprop(self._spec, self._weights, self._biases, x_batch,
                                 self._targets[rows], self._config.loss,
                                 self._config.regularisers, ws,
                                 self._keep_masks(first_step + j, len(rows)))
            self._update(ws)

    def _update(self, ws: Workspace) -> None:
        """SGD in place; the gradient buffers are free after this step, so they hold ``lr * g``."""
        grads = [g for pair in zip(ws.grad_w, ws.grad_b, strict=True) for g in pair]
        params = [p for pair in zip(self._weights, self._biases, strict=True) for p in pair]
        if self._velocity:
            for v, g in zip(self._velocity, grads, strict=True):
                v *= self._momentum
                v += g
                np.multiply(v, self._lr, out=g)
        else:
            for g in grads:
                g *= self._lr
        for p, g in zip(params, grads, strict=True):
            p -= g
