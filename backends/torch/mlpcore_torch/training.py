"""The torch training loop: a whole chunk of SGD steps per call, natively, with autograd.

Every step ``j`` of a chunk gathers its batch with ``index_select`` (into a buffer kept per batch
size), runs :func:`mlpcore_torch.network.objective` (loss + penalties) and updates the model's
own tensors in place. Two methods compute the same update (``SGD`` in :mod:`mlpcore.optimizers`)::

    momentum = 0:  w <- w - lr·g            momentum = μ:  v <- μ·v + g;  w <- w - lr·v

* ``"autodiff"``: ``g = torch.autograd.grad(objective, params)`` and a hand-written update with
  ``torch._foreach_mul_`` / ``torch._foreach_add_`` on the whole list of tensors at once;
* ``"optimizer"``: ``objective.backward()`` and ``torch.optim.SGD(params, lr, momentum).step()``.

With ``TrainingConfig.compiled`` the step is ``torch.compile``d (see :class:`TorchTrainer`).
Per-step objectives stay tensors until the chunk ends and are converted to NumPy once.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.backend import TrainingConfig
from mlpcore.spec import MLPSpec
from mlpcore_torch.boundary import as_tensor
from mlpcore_torch.dropout import native_scaled_mask_, portable_scaled_mask_
from mlpcore_torch.linear import LinearKernel, kernel_for_rows
from mlpcore_torch.network import objective

TRAINING_METHODS = ("autodiff", "optimizer")
"""The methods :class:`TorchTrainer` implements, the default first."""

Step = Callable[[torch.Tensor, Sequence[torch.Tensor], "_Buffers"], torch.Tensor]
"""``step(rows, scaled_masks, buffers) -> objective`` (a detached 0-d tensor)."""


def sgd_update_(params: list[torch.Tensor], grads: tuple[torch.Tensor, ...],
                velocities: list[torch.Tensor], lr: float, momentum: float) -> None:
    """SGD in place on every tensor of ``params`` at once (call it under ``torch.no_grad``).

    With ``velocities`` (momentum > 0): ``v <- μ·v + g; w <- w - lr·v``; else ``w <- w - lr·g``.
    """
    if velocities:
        torch._foreach_mul_(velocities, momentum)
        torch._foreach_add_(velocities, grads)
        torch._foreach_add_(params, velocities, alpha=-lr)
    else:
        torch._foreach_add_(params, grads, alpha=-lr)


class _Buffers:
    """Per batch size: the gathered inputs and targets, one scaled mask per hidden layer and, for
    native dropout, one float32 scratch tensor per hidden layer for the uniform draws."""

    def __init__(self, n: int, x: torch.Tensor, targets: torch.Tensor, widths: Sequence[int],
                 native: bool):
        self.x = x.new_empty((n, *x.shape[1:]))
        self.targets = targets.new_empty((n, *targets.shape[1:]))
        self.masks = [x.new_empty((n, w)) for w in widths]
        self.uniform = [torch.empty((n, w), dtype=torch.float32) for w in widths] if native else []


def _graphs_compiled() -> int:
    """How many graphs torch.compile has compiled in this process (0 if unknown)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - older or newer torch
        return 0
    return int(counters["stats"]["unique_graphs"])


@contextlib.contextmanager
def _tracing_autograd() -> Iterator[None]:
    """Let torch.compile trace ``torch.autograd.grad`` into the step's graph.

    Without ``torch._dynamo.config.trace_autograd_ops`` the call is a graph break, and the step
    would run as two graphs with eager autograd between them. The setting is patched only while a
    compiled chunk runs.
    """
    config: Any = torch._dynamo.config
    if not hasattr(config, "trace_autograd_ops"):  # pragma: no cover - older torch
        yield
        return
    with config.patch(trace_autograd_ops=True):
        yield


class TorchTrainer:
    """:class:`mlpcore.backend.Trainer` that updates a torch model's own tensors in place.

    ``weights`` (native ``(out, in)`` layout) and ``biases`` are the model's leaf tensors
    (``requires_grad=True``); ``x`` (N, d_0) and ``targets`` ((N,) int64 or (N, K)) are bound once
    and never copied or written.

    Compiled mode (``config.compiled``): ``"autodiff"`` compiles the whole step (gather, forward,
    ``autograd.grad``, update) into one graph; ``"optimizer"`` compiles gather, forward and
    ``autograd.grad`` into one graph and the optimizer's ``step`` into another (torch.optim breaks
    the graph around ``step()`` on purpose). Each batch size compiles once, on first use; the
    seconds spent in calls that compiled accumulate in :attr:`compile_seconds`. Dropout masks are
    drawn eagerly in both modes and enter the graph as inputs, so compiled and eager steps see
    the same masks.
    """

    def __init__(self, spec: MLPSpec, weights: list[torch.Tensor], biases: list[torch.Tensor],
                 config: TrainingConfig, x: torch.Tensor, targets: torch.Tensor):
        if config.method is not None and config.method not in TRAINING_METHODS:
            raise ValueError(f"the torch backend trains with method "
                             f"{' or '.join(map(repr, TRAINING_METHODS))}, "
                             f"not {config.method!r}")
        self._config = config
        self._activation: str = spec.activation
        self._rate = spec.dropout
        self._widths = spec.sizes[1:-1] if spec.dropout > 0.0 else ()
        self._weights = weights
        self._biases = biases
        self._params = [p for pair in zip(weights, biases, strict=True) for p in pair]
        self._x = x
        self._targets = targets
        self._lr = float(config.optimizer.lr)
        self._momentum = float(config.optimizer.momentum)
        self._buffers: dict[int, _Buffers] = {}
        self._kernels: dict[int, list[LinearKernel]] = {}
        self._generator = torch.Generator().manual_seed(config.seed)
        self.compile_seconds = 0.0
        """Seconds spent in the calls that compiled a graph (compiled mode only)."""
        self._velocities: list[torch.Tensor] = []
        self._optimizer: torch.optim.SGD | None = None
        if config.method == "optimizer":
            self._optimizer = torch.optim.SGD(self._params, lr=self._lr, momentum=self._momentum)
        elif self._momentum > 0.0:
            self._velocities = [torch.zeros_like(p) for p in self._params]
        self._step: Step
        if not config.compiled:
            self._step = (self._eager_optimizer_step if self._optimizer is not None
                          else self._eager_autodiff_step)
        elif self._optimizer is not None:
            self._grads_graph = torch.compile(self._make_grads_function(), dynamic=False)
            self._optimizer_graph = torch.compile(self._optimizer.step, dynamic=False)
            self._step = self._compiled_optimizer_step
        else:
            self._step_graph = torch.compile(self._make_step_function(), dynamic=False)
            self._step = self._compiled_autodiff_step

    # -- the chunk -------------------------------------------------------------------------------

    def run(self, order: npt.NDArray[np.int64], batch_size: int,
            first_step: int) -> npt.NDArray[np.float64]:
        n_steps = math.ceil(len(order) / batch_size)
        if n_steps == 0:
            return np.empty(0, np.float64)
        objectives: list[torch.Tensor] = []
        self._kernels.clear()  # chosen afresh each chunk, so MLPCORE_TORCH_LINEAR applies
        batches = torch.split(as_tensor(order), batch_size)
        with _tracing_autograd() if self._config.compiled else contextlib.nullcontext():
            for j, rows in enumerate(batches):
                buffers = self._buffers_for(rows.shape[0])
                masks = self._masks(first_step + j, buffers)
                if self._config.compiled:
                    objectives.append(self._timed_step(rows, masks, buffers))
                else:
                    objectives.append(self._step(rows, masks, buffers))
        values: npt.NDArray[np.float64] = torch.stack(objectives).to(torch.float64).numpy()
        return values

    def _buffers_for(self, n: int) -> _Buffers:
        buffers = self._buffers.get(n)
        if buffers is None:
            buffers = self._buffers[n] = _Buffers(n, self._x, self._targets, self._widths,
                                                  self._config.dropout_mode == "native")
        return buffers

    def _masks(self, step: int, buffers: _Buffers) -> Sequence[torch.Tensor]:
        """The scaled dropout masks of global step ``step`` (none without dropout)."""
        if not buffers.masks:
            return ()
        if self._config.dropout_mode == "native":
            return [native_scaled_mask_(m, u, self._generator, self._rate)
                    for m, u in zip(buffers.masks, buffers.uniform, strict=True)]
        return [portable_scaled_mask_(m, self._config.seed, step, layer, self._rate)
                for layer, m in enumerate(buffers.masks)]

    def _timed_step(self, rows: torch.Tensor, masks: Sequence[torch.Tensor],
                    buffers: _Buffers) -> torch.Tensor:
        graphs = _graphs_compiled()
        started = time.perf_counter()
        try:
            value = self._step(rows, masks, buffers)
        except Exception as error:
            raise RuntimeError(
                f"the compiled training step failed ({type(error).__name__}, see above); "
                f"torch.compile on CPU needs a working C++ compiler (e.g. gcc) and the Python "
                f"headers. compiled=False runs the same step eagerly.") from error
        if _graphs_compiled() != graphs:
            self.compile_seconds += time.perf_counter() - started
        return value

    # -- eager steps -----------------------------------------------------------------------------

    def _batch(self, rows: torch.Tensor, buffers: _Buffers) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.index_select(self._x, 0, rows, out=buffers.x),
                torch.index_select(self._targets, 0, rows, out=buffers.targets))

    def _objective(self, x: torch.Tensor, targets: torch.Tensor,
                   masks: Sequence[torch.Tensor]) -> torch.Tensor:
        config = self._config
        return objective(self._activation, config.loss, config.regularisers, self._weights,
                         self._biases, x, targets, masks, self._kernels_for(x))

    def _kernels_for(self, x: torch.Tensor) -> list[LinearKernel]:
        """Each layer's dense kernel for the batch ``x``, chosen once per chunk and batch size
        (the choice costs a few microseconds, a few per cent of a small step)."""
        n = x.shape[0]
        kernels = self._kernels.get(n)
        if kernels is None:
            kernels = self._kernels[n] = [kernel_for_rows(n, x.dtype, x.device, w)
                                          for w in self._weights]
        return kernels

    def _eager_autodiff_step(self, rows: torch.Tensor, masks: Sequence[torch.Tensor],
                             buffers: _Buffers) -> torch.Tensor:
        value = self._objective(*self._batch(rows, buffers), masks)
        grads = torch.autograd.grad(value, self._params)
        with torch.no_grad():
            sgd_update_(self._params, grads, self._velocities, self._lr, self._momentum)
        return value.detach()

    def _eager_optimizer_step(self, rows: torch.Tensor, masks: Sequence[torch.Tensor],
                              buffers: _Buffers) -> torch.Tensor:
        assert self._optimizer is not None
        value = self._objective(*self._batch(rows, buffers), masks)
        torch.autograd.backward(value)
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)
        return value.detach()

    # -- compiled steps --------------------------------------------------------------------------

    def _make_step_function(self) -> Callable[..., torch.Tensor]:
        """The whole autodiff step as one function of tensors, for ``torch.compile``."""
        activation, config = self._activation, self._config
        lr, momentum = self._lr, self._momentum

        def step(params: list[torch.Tensor], velocities: list[torch.Tensor], x: torch.Tensor,
                 targets: torch.Tensor, rows: torch.Tensor,
                 masks: Sequence[torch.Tensor]) -> torch.Tensor:
            value = objective(activation, config.loss, config.regularisers, params[0::2],
                              params[1::2], x.index_select(0, rows),
                              targets.index_select(0, rows), masks)
            grads = torch.autograd.grad(value, params)
            with torch.no_grad():
                sgd_update_(params, grads, velocities, lr, momentum)
            return value.detach()

        return step

    def _make_grads_function(self) -> Callable[..., tuple[torch.Tensor, tuple[torch.Tensor, ...]]]:
        """Forward and ``autograd.grad`` as one function of tensors, for ``torch.compile``."""
        activation, config = self._activation, self._config

        def grads(params: list[torch.Tensor], x: torch.Tensor, targets: torch.Tensor,
                  rows: torch.Tensor, masks: Sequence[torch.Tensor],
                  ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
            value = objective(activation, config.loss, config.regularisers, params[0::2],
                              params[1::2], x.index_select(0, rows),
                              targets.index_select(0, rows), masks)
            return value.detach(), torch.autograd.grad(value, params)

        return grads

    def _compiled_autodiff_step(self, rows: torch.Tensor, masks: Sequence[torch.Tensor],
                                buffers: _Buffers) -> torch.Tensor:
        value: torch.Tensor = self._step_graph(self._params, self._velocities, self._x,
                                               self._targets, rows, list(masks))
        return value

    def _compiled_optimizer_step(self, rows: torch.Tensor, masks: Sequence[torch.Tensor],
                                 buffers: _Buffers) -> torch.Tensor:
        value, grads = self._grads_graph(self._params, self._x, self._targets, rows, list(masks))
        for p, g in zip(self._params, grads, strict=True):
            p.grad = g
        self._optimizer_graph()
        for p in self._params:
            p.grad = None
        result: torch.Tensor = value
        return result
