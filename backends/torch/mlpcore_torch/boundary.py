"""Where NumPy meets torch: array conversion and the weight layout, at the backend's boundary.

The canonical layout of a weight matrix is ``(fan_in, fan_out)`` (``dense_{i}/weights``); torch's
own layout, the one ``nn.Linear.weight`` and ``torch.nn.functional.linear`` use, is
``(fan_out, fan_in)``, so that ``z = x Wᵀ + b``. This module converts between the two, and
between NumPy arrays and CPU tensors. Every conversion keeps the dtype (float32 stays float32,
float64 stays float64) and the values bit for bit: a transpose moves numbers, it rounds none.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

FloatArray = npt.NDArray[np.floating]

_READ_ONLY_WARNING = "The given NumPy array is not writable"


def as_tensor(array: npt.ArrayLike) -> torch.Tensor:
    """A CPU tensor with ``array``'s values, dtype and shape (any shape, including 0-d).

    Shares memory with ``array`` when it is C-contiguous in native byte order (no copy: this is
    how a training set is bound once), and copies otherwise. The backend never writes into a
    tensor made here, so a read-only array is shared too (torch's warning about it is silenced).
    """
    a = np.asarray(array)
    if not a.dtype.isnative:
        a = a.astype(a.dtype.newbyteorder("="))
    a = np.require(a, requirements="C")
    if a.flags.writeable:
        return torch.from_numpy(a)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_READ_ONLY_WARNING, category=UserWarning)
        return torch.from_numpy(a)


def to_numpy(tensor: torch.Tensor) -> npt.NDArray[Any]:
    """A NumPy copy of ``tensor`` (same dtype and shape) that shares no memory with it."""
    return np.array(tensor.detach().cpu().numpy(), copy=True, order="C")


def native_weight(canonical: FloatArray) -> torch.Tensor:
    """A new contiguous ``(fan_out, fan_in)`` tensor from a canonical ``(fan_in, fan_out)`` array.

    Always a copy, never a view of ``canonical`` (the model owns and updates its tensors).
    """
    return torch.from_numpy(np.array(canonical.T, copy=True, order="C"))


def canonical_weight(native: torch.Tensor) -> FloatArray:
    """A new C-contiguous canonical ``(fan_in, fan_out)`` array from a native (out, in) tensor."""
    return np.array(native.detach().cpu().numpy().T, copy=True, order="C")


def dtype_of(name: str) -> torch.dtype:
    """The torch dtype of a model dtype name (``"float32"`` or ``"float64"``)."""
    dtype = {"float32": torch.float32, "float64": torch.float64}.get(name)
    if dtype is None:
        raise ValueError(f"the torch backend stores float32 or float64, not {name!r}")
    return dtype
