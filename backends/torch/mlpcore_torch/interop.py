"""torch ``state_dict`` files, read and written; ``nn.Linear.weight`` ``(out, in)`` is transposed
to and from the canonical ``(fan_in, fan_out)``, values keep their dtype and bits.

Reading checks the zip CRC-32s (``torch.load`` does not), then uses only ``torch.load(...,
weights_only=True)``, torch's restricted unpickler; a tensor declaring more bytes than its
storage holds (a stride-0 expansion: 10^12 elements in 2 KB) is refused before it is
materialised. Anything refused is a :class:`~mlpcore.errors.CheckpointError` naming the file.
"""

from __future__ import annotations

import collections
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from mlpcore.errors import CheckpointError
from mlpcore.io.atomic import write_atomically

__all__ = ["read_state_dict", "write_state_dict"]


def read_state_dict(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of the ``state_dict`` at ``path``, 2-D ones transposed to canonical layout."""
    damaged = None
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()  # reads every member, checking its CRC-32
        loaded = None if damaged else torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # UnpicklingError, RuntimeError, EOFError, zip errors, ...
        raise CheckpointError(
            f"checkpoint {path} was refused by torch.load(weights_only=True), the only way "
            f"mlpcore reads torch files (it never runs a full unpickler): "
            f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
        ) from error
    if damaged:
        raise CheckpointError(f"checkpoint {path} is corrupt: the zip member {damaged!r} fails "
                              "its CRC-32 check")
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"checkpoint {path} holds a {type(loaded).__name__}, not a "
                              "state_dict (a mapping of names to tensors)")
    nested = [k for k, v in loaded.items() if isinstance(v, Mapping)]
    if nested:
        raise CheckpointError(
            f"checkpoint {path} is not a flat state_dict: {', '.join(map(repr, nested))} hold "
            "mappings (a training checkpoint? save model.state_dict() itself)")
    result: dict[str, npt.NDArray[Any]] = {}
    for name, value in loaded.items():
        if not isinstance(name, str):
            raise CheckpointError(f"checkpoint {path}: the key {name!r} ({type(name).__name__}) "
                                  "is not a string; state_dict keys are variable names")
        if not isinstance(value, torch.Tensor):
            raise CheckpointError(f"checkpoint {path}: entry {name!r} is a "
                                  f"{type(value).__name__}, not a tensor")
        if value.dtype not in (torch.float32, torch.float64):
            raise CheckpointError(f"checkpoint {path}: tensor {name!r} has dtype {value.dtype}; "
                                  "mlpcore reads float32 and float64")
        declared, stored = value.numel() * value.element_size(), value.untyped_storage().nbytes()
        if declared > stored:
            raise CheckpointError(
                f"checkpoint {path}: tensor {name!r} declares {tuple(value.shape)} "
                f"({declared} bytes) but its storage holds {stored} bytes (a stride-0 "
                "expansion?); mlpcore does not materialise it")
        array = value.detach().contiguous().numpy()
        result[name] = np.ascontiguousarray(array.T) if array.ndim == 2 else np.array(array)
    return result


def write_state_dict(path: Path, variables: Mapping[str, npt.NDArray[Any]]) -> None:
    """``torch.save`` a ``state_dict`` of ``variables``, 2-D ones as (out, in); atomic."""
    state = collections.OrderedDict(
        (name, torch.from_numpy(array.T.copy() if array.ndim == 2 else array.copy()))
        for name, array in variables.items())

    def write(folder: Path) -> list[tuple[Path, Path]]:
        torch.save(state, folder / path.name)
        return [(folder / path.name, path)]

    write_atomically(path, write, errors=(RuntimeError,))  # torch's error for a full disk
