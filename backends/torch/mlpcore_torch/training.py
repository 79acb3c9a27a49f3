"""The torch training loop: a chunk of optimizer steps per call, in place (the methods, compiled
mode, devices and mixed precision: docs/backend-torch.md).

Every step gathers its batch with ``index_select`` (into buffers kept per batch size), takes the
gradients of the objective (loss + penalties): ``torch.autograd.grad`` of the
:class:`~mlpcore.backend_common.Network` (``"autodiff"``, ``"optimizer"``) or, without autograd,
:class:`~mlpcore.backend_common.Backprop` (``"manual"``), and updates the model's own tensors
with the update of :mod:`mlpcore.optimizers`: hand-written (:func:`sgd_update_`,
:func:`adam_update_`) or ``torch.optim`` (``"optimizer"``; float16 scales the loss with
``torch.amp.GradScaler``). Compiled mode puts gather, gradients and an SGD update in one
``torch.compile`` graph per batch size; masks are drawn eagerly and enter it as inputs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.backend import TrainingConfig
from mlpcore.backend_common import Backprop, FloatArray, Network, TrainerBase, interleave, network
from mlpcore.dropout import keep_scale
from mlpcore.errors import DistributedError
from mlpcore.optimizers import SGD, Adam, OptimizerState, adam_factors
from mlpcore.spec import MLPSpec
from mlpcore_torch.distributed import GradientSum
from mlpcore_torch.masks import portable_keep_masks
from mlpcore_torch.ops import OPS, as_tensor

Grads = tuple[torch.Tensor, ...]
Slots = list[list[torch.Tensor]]


def sgd_update_(params: list[torch.Tensor], grads: Grads, slots: Slots, optimizer: SGD) -> None:
    """SGD in place on every tensor of ``params`` (call it under ``torch.no_grad``); ``slots``
    holds each tensor's velocity (momentum > 0) or nothing: ``w ← w − lr·g``, or
    ``v ← μ·v + g; w ← w − lr·v`` (Nesterov: ``w ← w − lr·(g + μ·v)``)."""
    momentum = optimizer.momentum
    for param, grad, slot in zip(params, grads, slots, strict=True):
        if slot:  # public per-tensor ops: 1.5 us a step slower than torch._foreach_*
            velocity = slot[0].mul_(momentum).add_(grad)
            grad = grad.add(velocity, alpha=momentum) if optimizer.nesterov else velocity
        param.add_(grad, alpha=-optimizer.lr)


def adam_update_(params: list[torch.Tensor], grads: Grads, slots: Slots, optimizer: Adam,
                 t: int) -> None:
    """Adam's update number ``t`` in place, with ``slots`` ``[m, v]`` per tensor, as
    torch.optim.Adam computes it: ``m += (1 − β1)(g − m)``, ``v = β2·v + (1 − β2)·g²``,
    ``w −= lr/(1 − β1^t) · m / (√v / √(1 − β2^t) + ε)``."""
    step_size, root = adam_factors(optimizer, t)
    beta1, beta2 = optimizer.betas
    for param, grad, (m, v) in zip(params, grads, slots, strict=True):
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        param.addcdiv_(m, (v.sqrt() / root).add_(optimizer.eps), value=-step_size)


def scaled_mask_(out: torch.Tensor, keep: torch.Tensor, rate: float) -> torch.Tensor:
    """``keep · keep_scale(rate)`` into ``out`` (the model dtype), the scale rounded to it."""
    return out.copy_(keep).mul_(keep_scale(rate))


def native_scaled_mask_(out: torch.Tensor, uniform: torch.Tensor, generator: torch.Generator,
                        rate: float) -> torch.Tensor:
    """A native mask from ``generator``, scaled, into ``out``; ``uniform`` is a float32 scratch
    tensor of its shape. Kept where ``u >= float32(p)``: three passes, over twice as fast on CPU
    as ``Tensor.bernoulli_`` (which ``F.dropout`` uses)."""
    torch.rand(uniform.shape, generator=generator, out=uniform)
    return torch.ge(uniform, float(np.float32(rate)), out=out).mul_(keep_scale(rate))


DEVICE_MASK_STEPS = 64
"""Steps of portable masks drawn at once on a device: a draw is ~450 elementwise kernels."""
DEVICE_MASK_ENTRIES = 1 << 22
"""At most this many mask entries per layer in one device draw (~16 bytes each while drawn)."""


def masks_on_device(device: torch.device) -> bool:
    """Whether portable masks are made on ``device`` by :mod:`mlpcore_torch.masks`: off the CPU
    (on the CPU NumPy's draw is far faster, and ``torch.from_numpy`` copies nothing)."""
    return device.type != "cpu"


def _gradients(net: Network | Backprop, params: list[torch.Tensor], x: torch.Tensor,
               targets: torch.Tensor, masks: Sequence[torch.Tensor],
               scaler: torch.amp.GradScaler | None = None) -> tuple[torch.Tensor, Grads]:
    """The objective and the gradients of ``scaler.scale(objective)`` (no scaler: itself);
    :class:`Backprop` (the ``manual`` method) computes them without autograd."""
    if isinstance(net, Backprop):
        with torch.no_grad():
            value, grads = net(params[0::2], params[1::2], x, targets, masks)
        return value, tuple(grads)
    value = net.objective(params[0::2], params[1::2], x, targets, masks)
    scaled = value if scaler is None else scaler.scale(value)
    return value.detach(), torch.autograd.grad(scaled, params)


def _graphs_compiled() -> int:
    """How many graphs torch.compile has compiled in this process."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class _Buffers:
    """Per batch size: the gathered inputs and targets, one scaled mask per hidden layer and, for
    native dropout, one float32 scratch tensor per hidden layer for the uniform draws."""

    def __init__(self, n: int, x: torch.Tensor, targets: torch.Tensor, widths: Sequence[int],
                 native: bool):
        self.x = x.new_empty((n, *x.shape[1:]))
        self.targets = targets.new_empty((n, *targets.shape[1:]))
        self.masks = [x.new_empty((n, w)) for w in widths]
        self.uniform = [torch.empty((n, w), device=x.device) for w in widths] if native else []


class TorchTrainer(TrainerBase):
    """:class:`mlpcore.backend.Trainer` updating a torch model's own leaf tensors ``weights``
    (``(out, in)``) and ``biases`` in place; ``x`` (N, d_0) and ``targets`` ((N,) int64 or
    (N, K)) on the model's device are never written; ``dtype`` is the model's."""

    def __init__(self, spec: MLPSpec, weights: list[torch.Tensor], biases: list[torch.Tensor],
                 config: TrainingConfig, x: torch.Tensor, targets: torch.Tensor,
                 dtype: str = "float32", state: OptimizerState | None = None):
        super().__init__(spec, config, x.shape[0], state)
        self._x, self._targets, self._device = x, targets, x.device
        self._params = interleave(weights, biases)
        self._net: Network | Backprop = (
            Backprop(OPS, spec.activation, config.loss, config.regularisers)
            if config.method == "manual"
            else network(OPS, spec.activation, config.loss, config.regularisers, dtype))
        net, opt = self._net, config.optimizer
        # torch.optim makes its own slots unless it continues a state
        self._slots: Slots = [[torch.zeros_like(p) if value is None else _native(value, p)
                               for value in values]
                              for p, values in zip(self._params, self.start_slots(), strict=True)
                              ] if config.method != "optimizer" or self.step else []
        self._optimizer = _framework_optimizer(self._params, opt, self._slots, self.step) \
            if config.method == "optimizer" else None
        self._scaler = None
        if dtype == "float16":
            if self._optimizer is None or config.compiled:
                raise ValueError("float16 training scales the loss with torch.amp.GradScaler, "
                                 "which steps torch.optim: use method='optimizer' (the default "
                                 "for float16) and compiled=False")
            self._scaler = torch.amp.GradScaler(self._device.type)
        self._generator = torch.Generator(device=self._device).manual_seed(config.seed)
        self._buffers: dict[int, _Buffers] = {}
        self._sum = GradientSum(self._params) if config.world.size > 1 else None
        self._drawn: tuple[int, list[torch.Tensor]] = (0, [])  # see _device_masks
        self.compile_seconds = 0.0
        """Seconds spent in the calls that compiled a graph (compiled mode only)."""
        self._graph: Callable[..., tuple[torch.Tensor, Grads]] | None = None
        self._optimizer_step: Callable[[], Any] | None = (
            None if self._optimizer is None else self._optimizer.step)
        if not config.compiled:
            return
        # a hand-written SGD update joins the graph
        whole = self._optimizer is None and self._sum is None and isinstance(opt, SGD)

        def step(params: list[torch.Tensor], slots: Slots, x: torch.Tensor,
                 targets: torch.Tensor, rows: torch.Tensor,
                 masks: Sequence[torch.Tensor]) -> tuple[torch.Tensor, Grads]:
            value, grads = _gradients(net, params, x.index_select(0, rows),
                                      targets.index_select(0, rows), masks)
            if not whole or not isinstance(opt, SGD):
                return value, grads
            with torch.no_grad():
                sgd_update_(params, grads, slots, opt)
            return value, ()

        self._graph = torch.compile(step, dynamic=False)
        if self._optimizer is not None:
            self._optimizer_step = torch.compile(self._optimizer.step, dynamic=False)

    def _bind(self, x: npt.NDArray[Any], targets: npt.NDArray[Any]) -> None:
        self._x = as_tensor(x).to(self._device, non_blocking=True)
        self._targets = as_tensor(targets).to(self._device, non_blocking=True)

    def _block(self, rows: npt.NDArray[np.int64], first_step: int) -> npt.NDArray[np.float64]:
        n_steps, batch = rows.shape
        if batch not in self._buffers:
            self._buffers[batch] = _Buffers(batch, self._x, self._targets, self.widths,
                                            self.dropout == "native")
        buffers = self._buffers[batch]
        indices = as_tensor(rows).to(self._device, non_blocking=True)
        # trace_autograd_ops: torch.compile traces autograd.grad into the graph, not breaks it
        with (contextlib.nullcontext() if self._graph is None
              else torch._dynamo.config.patch(trace_autograd_ops=True)):
            values = [self._step(indices[j], self._masks(first_step + j, buffers), buffers)
                      for j in range(n_steps)]
        result: npt.NDArray[np.float64] = torch.stack(values).to("cpu", torch.float64).numpy()
        return result

    def _masks(self, step: int, buffers: _Buffers) -> list[torch.Tensor]:
        """The scaled dropout masks of step ``step``, in the buffers (none without dropout)."""
        rate = self.spec.dropout
        if self.dropout == "native":
            for mask, uniform in zip(buffers.masks, buffers.uniform, strict=True):
                native_scaled_mask_(mask, uniform, self._generator, rate)
        elif self.dropout == "portable":
            n, device = len(buffers.x), buffers.masks[0].device
            keeps = (self._device_masks(step, n, device) if masks_on_device(device)
                     else map(torch.from_numpy, self.step_masks(step, n)))
            for mask, keep in zip(buffers.masks, keeps, strict=True):
                scaled_mask_(mask, keep, rate)
        return buffers.masks

    def _device_masks(self, step: int, n: int, device: torch.device) -> list[torch.Tensor]:
        """Step ``step``'s portable keep-masks made on ``device`` (this rank's ``n`` rows of the
        global batch's, as :meth:`step_masks`), drawn for up to :data:`DEVICE_MASK_STEPS` steps
        at a time (fewer when a step's masks are large)."""
        world = self.config.world
        batch, rows = (n, slice(None)) if world.size == 1 else (self.batch, world.rows(self.batch))
        first, drawn = self._drawn
        if not drawn or not first <= step < first + len(drawn[0]) or drawn[0].shape[1] != batch:
            steps = max(1, min(DEVICE_MASK_STEPS,
                               DEVICE_MASK_ENTRIES // (batch * max(self.widths))))
            first, drawn = step, [portable_keep_masks(self.config.seed, step, steps, layer,
                                                      (batch, width), self.spec.dropout, device)
                                  for layer, width in enumerate(self.widths)]
            self._drawn = first, drawn
        return [block[step - first][rows] for block in drawn]

    def _step(self, rows: torch.Tensor, masks: list[torch.Tensor],
              buffers: _Buffers) -> torch.Tensor:
        if self._graph is None:
            value, grads = _gradients(self._net, self._params,
                                      torch.index_select(self._x, 0, rows, out=buffers.x),
                                      torch.index_select(self._targets, 0, rows,
                                                         out=buffers.targets), masks,
                                      self._scaler)
            value, grads = self._all_reduce(value, grads)
            self._apply(grads)
            return value
        graphs, started = _graphs_compiled(), time.perf_counter()
        try:
            value, grads = self._graph(self._params, self._slots, self._x, self._targets,
                                       rows, masks)
            value, grads = self._all_reduce(value, grads)
            self._apply(grads)
        except DistributedError:
            raise
        except Exception as error:
            raise RuntimeError(
                f"the compiled training step failed ({type(error).__name__}, see above); "
                f"torch.compile on CPU needs a working C++ compiler (e.g. gcc) and the Python "
                f"headers. compiled=False runs the same step eagerly.") from error
        if _graphs_compiled() != graphs:
            self.compile_seconds += time.perf_counter() - started
        return value

    def _all_reduce(self, value: torch.Tensor, grads: Grads) -> tuple[torch.Tensor, Grads]:
        """With several workers, the objective and gradients of the global batch: the sum over
        the ranks of ``share · (value, grads)`` (:mod:`mlpcore.distributed`)."""
        return (value, grads) if self._sum is None else self._sum(value, grads, self.share)

    def _apply(self, grads: Grads) -> None:
        """The update from ``grads`` (none: the compiled step has made it)."""
        self.step += 1
        if not grads:
            return
        opt = self.config.optimizer
        if self._optimizer_step is None:
            with torch.no_grad():
                if isinstance(opt, Adam):
                    adam_update_(self._params, grads, self._slots, opt, self.step)
                else:
                    sgd_update_(self._params, grads, self._slots, opt)
            return
        for p, g in zip(self._params, grads, strict=True):
            p.grad = g
        if self._scaler is not None and self._optimizer is not None:
            self._scaler.step(self._optimizer)  # unscales .grad; skips the step on inf or NaN
            self._scaler.update()
        else:
            self._optimizer_step()
        for p in self._params:
            p.grad = None

    def _slot_values(self) -> list[list[FloatArray]]:
        if self._optimizer is None:
            return [[canonical(value) for value in values] for values in self._slots]
        names = {"adam": ("exp_avg", "exp_avg_sq"), "momentum": ("momentum_buffer",), "sgd": ()}
        return [[canonical(self._optimizer.state[p].get(name, torch.zeros_like(p)))
                 for name in names[self.kind]] for p in self._params]


def _native(value: FloatArray, like: torch.Tensor) -> torch.Tensor:
    """A slot's canonical NumPy value as a new tensor in the layout and dtype of its variable
    ``like`` (weights transposed)."""
    return torch.from_numpy(np.array(value.T, order="C")).to(like.device, like.dtype)


def canonical(value: torch.Tensor) -> FloatArray:
    """A native variable or slot as a new canonical NumPy array (weights transposed)."""
    return np.array(value.detach().cpu().numpy().T, order="C")


def _framework_optimizer(params: list[torch.Tensor], optimizer: SGD | Adam, slots: Slots,
                         step: int) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` or ``torch.optim.Adam`` for ``optimizer``, its state set from ``slots``
    (the contract's velocity is torch's ``momentum_buffer``; ``m``, ``v``: ``exp_avg``,
    ``exp_avg_sq``) and ``step``; without a step, torch's own empty state."""
    if isinstance(optimizer, Adam):
        framework: torch.optim.Optimizer = torch.optim.Adam(
            params, lr=optimizer.lr, betas=optimizer.betas, eps=optimizer.eps)
        if step:
            for p, (m, v) in zip(params, slots, strict=True):
                framework.state[p] = {"step": torch.tensor(float(step)), "exp_avg": m,
                                      "exp_avg_sq": v}
        return framework
    framework = torch.optim.SGD(params, lr=optimizer.lr, momentum=optimizer.momentum,
                                nesterov=optimizer.nesterov)
    if step and optimizer.momentum > 0:
        for p, (velocity,) in zip(params, slots, strict=True):
            framework.state[p] = {"momentum_buffer": velocity}
    return framework
