"""Portable dropout masks made on the model's device, bit for bit
:func:`mlpcore.dropout.portable_keep_mask`, so a model on an accelerator never copies a mask.

The mask keeps unit ``k`` when the stream's ``k``-th 32-bit word is ``>= keep_threshold(p)``.
NumPy's Philox is Philox4x64-10 (Salmon et al. 2011, Random123): for the stream's key
``(k0, k1)`` (:func:`mlpcore.random.philox_key`, derived on the host) block ``b`` is ten rounds
on the counter ``(b + 1, 0, 0, 0)``::

    (hi0, lo0) = M0 · x0,  (hi1, lo1) = M1 · x2          (128-bit products)
    x = (hi1 ^ x1 ^ k0,  lo1,  hi0 ^ x3 ^ k1,  lo0)       round r uses k + r · (W0, W1)

and its four 64-bit outputs give eight words, each low half first. A 64-bit word is an int64
tensor holding its bit pattern (products and sums wrap modulo 2^64); the high half of a product
is assembled from 32-bit halves. Many steps are drawn at once: the rounds are ~450 elementwise
ops, so one draw per step would cost more in kernel launches than the host draw and its copy.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.dropout import keep_threshold
from mlpcore.random import Purpose, philox_key

__all__ = ["philox4x64_10", "portable_keep_masks"]

_LOW = 0xFFFFFFFF
_M = (0xD2E7470EE14C6C93, 0xCA5A826395121157)
_W = np.array([0x9E3779B97F4A7C15, 0xBB67AE8584CAA73B], np.uint64)
ROUNDS = 10


def _high(x: torch.Tensor) -> torch.Tensor:
    """The upper 32 bits of 64-bit words (a logical shift: ``>>`` on int64 extends the sign)."""
    return (x >> 32) & _LOW


def _mulhilo(x: torch.Tensor, m: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The high and low 64-bit words of the 128-bit product ``x · m``, for the constant ``m``."""
    x0, x1, m0, m1 = x & _LOW, _high(x), m & _LOW, m >> 32
    p01, p10 = x0 * m1, x1 * m0
    middle = _high(x0 * m0) + (p01 & _LOW) + (p10 & _LOW)  # < 3 · 2^32: no wrap
    high = x1 * m1 + _high(p01) + _high(p10) + (middle >> 32)
    return high, x * (m - (1 << 64) if m >> 63 else m)


def philox4x64_10(counter: torch.Tensor, keys: npt.NDArray[np.uint64]) -> torch.Tensor:
    """Philox4x64-10 of the counters ``(c, 0, 0, 0)`` for every ``c`` of ``counter`` (B,) int64
    under every key of ``keys`` (S, 2): int64 (S, B, 4) on ``counter``'s device, the outputs' bit
    patterns. The round keys are made on the host and copied once."""
    rounds = keys[None] + np.arange(ROUNDS, dtype=np.uint64)[:, None, None] * _W  # mod 2^64
    round_keys = torch.from_numpy(rounds.view(np.int64)).to(counter.device)[..., None]
    zero = counter.new_zeros(())
    x0, x1, x2, x3 = counter, zero, zero, zero
    for k in round_keys:  # k: (S, 2, 1)
        hi0, lo0 = _mulhilo(x0, _M[0])
        hi1, lo1 = _mulhilo(x2, _M[1])
        x0, x1, x2, x3 = hi1 ^ x1 ^ k[:, 0], lo1, hi0 ^ x3 ^ k[:, 1], lo0
    return torch.stack((x0, x1, x2, x3), dim=-1)  # every round after the first is (S, B)


def portable_keep_masks(seed: int, first_step: int, n_steps: int, layer: int,
                        shape: tuple[int, ...], rate: float,
                        device: torch.device | str = "cpu") -> torch.Tensor:
    """``portable_keep_mask(seed, first_step + j, layer, shape, rate)`` for ``j < n_steps``,
    stacked: bool ``(n_steps, *shape)`` on ``device``, made there. The working memory peaks at
    about 16 bytes per mask entry: draw a long run in groups of steps."""
    threshold = keep_threshold(rate)
    if any(d < 0 for d in shape):
        raise ValueError(f"shape must have non-negative dimensions, got {shape!r}")
    keys = np.array([philox_key(seed, Purpose.DROPOUT, first_step + j, layer)
                     for j in range(n_steps)], np.uint64).reshape(n_steps, 2)
    size = int(np.prod(shape, dtype=np.int64))
    if threshold == 0 or threshold >> 32 or size == 0:  # all kept, none kept, or empty
        return torch.full((n_steps, *shape), threshold == 0, dtype=torch.bool, device=device)
    counter = torch.arange(1, -(-size // 8) + 1, dtype=torch.int64, device=device)
    out = philox4x64_10(counter, keys)
    keep = torch.stack(((out & _LOW) >= threshold, _high(out) >= threshold), dim=-1)
    return keep.reshape(n_steps, 8 * len(counter))[:, :size].reshape(n_steps, *shape)
