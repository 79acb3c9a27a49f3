"""Inverted dropout in torch. See :mod:`mlpcore.dropout` for the maths and the mask sources.

With rate ``p`` and keep-mask ``m`` (True = kept)::

    training, p < 1:  y = x · m / (1 - p)        training, p = 1:  y = 0        eval:  y = x

Inside the network a mask is applied as one multiplication by a *scaled mask*
``s = m · keep_scale(p)`` in the model dtype (entries ``1/(1-p)`` or 0), so autograd's
``dy/dx = s`` is the contract's ``m / (1 - p)``, and ``p = 1`` gives ``s = 0`` without a division.
``keep_scale(p)`` is cast to the model dtype before it multiplies, as in the NumPy backend, so
the scaled values are bit-identical to NumPy's.

Masks come from :func:`mlpcore.dropout.portable_keep_mask` (portable mode, the same masks as every
backend) or from a ``torch.Generator`` (native mode). Native masks follow the same rule as the
portable ones, keep where ``u >= float32(p)`` for ``u`` uniform in [0, 1) in float32, with ``u``
drawn by torch (``torch.rand``). That is three in-place passes over a reused buffer; it is more than
twice as fast on CPU as ``Tensor.bernoulli_`` (which ``F.dropout`` uses), and about as fast as the
portable masks, because torch's CPU generator (mt19937) draws at about the rate of NumPy's Philox.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.dropout import check_rate, keep_scale, portable_keep_mask
from mlpcore_torch.boundary import as_tensor

FloatArray = npt.NDArray[np.floating]


def scaled_mask_(out: torch.Tensor, keep_mask: torch.Tensor, rate: float) -> torch.Tensor:
    """Write ``keep_mask · keep_scale(rate)`` into ``out`` (the model dtype) and return it."""
    out.copy_(keep_mask)
    return out.mul_(keep_scale(rate))


def portable_scaled_mask_(out: torch.Tensor, seed: int, step: int, layer: int,
                          rate: float) -> torch.Tensor:
    """The portable mask of ``(seed, step, layer)``, shape ``out.shape``, scaled, into ``out``."""
    mask = portable_keep_mask(seed, step, layer, tuple(out.shape), rate)
    return scaled_mask_(out, torch.from_numpy(mask), rate)


def native_scaled_mask_(out: torch.Tensor, uniform: torch.Tensor, generator: torch.Generator,
                        rate: float) -> torch.Tensor:
    """A native mask from ``generator``, scaled, into ``out``; ``uniform`` is a float32 scratch
    tensor of the same shape. Each entry is kept (``u >= float32(p)``) with probability 1 - p."""
    torch.rand(uniform.shape, generator=generator, out=uniform)
    torch.ge(uniform, float(np.float32(rate)), out=out)
    return out.mul_(keep_scale(rate))


def native_keep_mask(generator: torch.Generator, shape: tuple[int, ...],
                     rate: float) -> torch.Tensor:
    """A boolean keep-mask from ``generator``: ``u >= float32(p)`` for ``u`` uniform in [0, 1)."""
    uniform = torch.rand(shape, generator=generator, dtype=torch.float32)
    return uniform >= float(np.float32(rate))


def apply_dropout(x: torch.Tensor, keep_mask: torch.Tensor, rate: float) -> torch.Tensor:
    """Training-mode inverted dropout of ``x`` with a boolean ``keep_mask`` (same shape).

    Dropped entries are exactly 0 even where ``x`` is infinite or NaN (a ``where``, not a
    multiplication), and ``p = 1`` gives all zeros.
    """
    kept = x * keep_scale(rate)
    return torch.where(keep_mask, kept, torch.zeros((), dtype=x.dtype))


class TorchDropout:
    """:class:`mlpcore.dropout.DropoutOps` evaluated by torch, NumPy in and out.

    Without ``keep_mask`` the mask comes from ``torch.Generator().manual_seed(seed)``.
    """

    def apply(self, x: FloatArray, rate: float, *, training: bool,
              keep_mask: npt.NDArray[np.bool_] | None = None, seed: int = 0) -> FloatArray:
        rate = check_rate(rate)
        tensor = as_tensor(x)
        if not training or rate == 0.0:
            result_eval: FloatArray = tensor.clone().numpy()
            return result_eval
        if keep_mask is None:
            mask = native_keep_mask(torch.Generator().manual_seed(seed), tuple(tensor.shape),
                                    rate)
        else:
            mask = as_tensor(keep_mask).to(torch.bool)
        result: FloatArray = apply_dropout(tensor, mask, rate).numpy()
        return result
