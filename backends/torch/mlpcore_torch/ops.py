"""The torch backend's function for each name of the contract, and its arrays and gradients.

What :class:`mlpcore.backend_common.AutodiffOps` asks for, in torch's public API (maths in
:mod:`mlpcore.activations`, :mod:`mlpcore.losses`, :mod:`mlpcore.regularisers`,
:mod:`mlpcore.dropout`):

==============  =================================================================================
dense           ``torch.nn.functional.linear(a, W, b) = a Wᵀ + b``, ``W`` as ``nn.Linear.weight``
                ``(d_out, d_in)``; torch picks the CPU kernel (``torch.compile`` its own)
activations     ``torch.relu``, ``torch.sigmoid`` (finite and silent at ``|x| = 1000``),
                ``torch.tanh``; autograd's derivatives use the saved output: relu' = [a > 0]
                (so relu'(0) = 0), sigmoid' = a (1 - a), tanh' = 1 - a²
losses          ``F.cross_entropy`` (log-softmax, the row max subtracted: logits of 1e30 stay
                finite; float targets give ``(1/N) Σ_n (s_n lse(z_n) - t_n·z_n)`` for any rows),
                ``F.mse_loss`` (the mean over every element)
penalties       ``Σ W² / 2`` and ``Σ |W|`` (autograd: ``W`` and ``sign(W)``, 0 at 0)
native masks    ``torch.rand`` in float32 from ``torch.Generator().manual_seed(seed)``, kept where
                ``u >= float32(p)``: the portable rule with torch's generator
==============  =================================================================================

Gradients are ``torch.autograd.grad``; the ``manual`` method's backprop
(:class:`mlpcore.backend_common.Backprop`) takes ``dL/dz`` (``(softmax(z)·Σ_k t_k - t) / N``,
``2 (o - t) / (N K)``), ``f'`` from the output, ``aᵀ δ`` and ``δ W`` from the functions of
:class:`mlpcore.backend_common.ManualOps` here. Every conversion keeps the dtype and the values;
``cast`` (mixed precision) is ``Tensor.to(dtype)``, a no-op for a tensor already in that dtype.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from torch.nn import functional

from mlpcore.backend_common import Table
from mlpcore.dropout import keep_scale

Unary = Callable[[torch.Tensor], torch.Tensor]


def as_tensor(array: npt.ArrayLike) -> torch.Tensor:
    """A CPU tensor with ``array``'s values, dtype and shape (any shape, including 0-d).

    Shares memory with ``array`` when it is C-contiguous in native byte order (no copy: this is
    how a training set is bound once), and copies otherwise. The backend never writes into a
    tensor made here, so a read-only array is shared too (torch's warning about it is silenced).
    """
    a = np.asarray(array)
    a = np.require(a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("=")),
                   requirements="C")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(a)


def _cross_entropy_gradient(z: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    probabilities = torch.softmax(z, dim=1)
    if targets.dtype.is_floating_point:
        return (probabilities * targets.sum(dim=1, keepdim=True) - targets) / z.shape[0]
    return (probabilities - functional.one_hot(targets, z.shape[1]).to(z.dtype)) / z.shape[0]


class TorchOps:
    """:class:`mlpcore.backend_common.AutodiffOps` and :class:`~mlpcore.backend_common.ManualOps`
    in torch."""

    activations: Table[Unary] = Table("activation", {
        "relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh})
    losses: Table[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Table("loss", {
        "softmax_cross_entropy": functional.cross_entropy, "mse": functional.mse_loss})
    penalties: Table[Unary] = Table("regulariser", {
        "l2": lambda w: torch.sum(w.square()) / 2, "l1": lambda w: torch.sum(w.abs())})
    loss_gradients: Table[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Table("loss", {
        "softmax_cross_entropy": _cross_entropy_gradient,
        "mse": lambda o, t: 2 * (o - t) / o.numel()})
    derivatives: Table[Unary] = Table("activation", {
        "relu": lambda h: (h > 0).to(h.dtype), "sigmoid": lambda h: h * (1 - h),
        "tanh": lambda h: 1 - h * h})
    penalty_gradients: Table[Unary] = Table("regulariser", {"l2": lambda w: w, "l1": torch.sign})
    dense = staticmethod(functional.linear)
    tensor = staticmethod(as_tensor)

    @staticmethod
    def dense_gradients(a: torch.Tensor, delta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(δᵀ a, Σ_n δ)``: the weight gradient in ``nn.Linear``'s ``(d_out, d_in)`` layout."""
        return delta.T @ a, delta.sum(dim=0)

    @staticmethod
    def dense_backward(delta: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return delta @ w

    @staticmethod
    def numpy(value: torch.Tensor) -> npt.NDArray[Any]:
        return np.array(value.detach().cpu().numpy(), order="C")

    @staticmethod
    def cast(x: torch.Tensor, dtype: str) -> torch.Tensor:
        return x.to(getattr(torch, dtype))

    @staticmethod
    def gradients(fn: Callable[..., torch.Tensor], args: Sequence[torch.Tensor],
                  n: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        leaves = [a.detach().requires_grad_(True) for a in args[:n]]
        value = fn(*leaves, *args[n:])
        return value.detach(), list(torch.autograd.grad(value.sum(), leaves))

    @staticmethod
    def keep_mask(seed: int, shape: tuple[int, ...], rate: float) -> torch.Tensor:
        uniform = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
        return uniform >= float(np.float32(rate))

    @staticmethod
    def dropout(x: torch.Tensor, keep: torch.Tensor, rate: float) -> torch.Tensor:
        return torch.where(keep, x * keep_scale(rate), torch.zeros((), dtype=x.dtype))


OPS = TorchOps()
