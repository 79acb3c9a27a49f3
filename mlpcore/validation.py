"""User data checked once in the core for every backend; docs/contracts.md, "Input validation"."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from mlpcore.data.rows import Rows
from mlpcore.errors import InvalidInputError
from mlpcore.losses import LossName

__all__ = ["check_finite_block", "check_inputs", "check_output_path", "check_rows",
           "check_targets"]


def check_inputs(x: Any, n_inputs: int, dtype: str, *, what: str = "inputs",
                 finite: bool = False) -> npt.NDArray[np.floating]:
    """Floating ``x`` (N >= 1, n_inputs) as C-contiguous ``dtype``; ``finite`` refuses NaN, inf."""
    array = np.asarray(x)
    if array.dtype.kind != "f":
        raise InvalidInputError(
            f"{what} must be a floating-point array, got dtype {array.dtype}; "
            f"convert it first, e.g. x.astype('float32') / 255 for 8-bit images")
    if array.ndim != 2:
        raise InvalidInputError(f"{what} must have shape (batch, {n_inputs}), got {array.shape}")
    if array.shape[0] == 0:
        raise InvalidInputError(f"{what} is empty: shape {array.shape}; give at least one row")
    if array.shape[1] != n_inputs:
        raise InvalidInputError(
            f"{what} have width {array.shape[1]}, but the model expects {n_inputs} "
            f"(shape (batch, {n_inputs}), got {array.shape})")
    array = np.ascontiguousarray(array, dtype=dtype)
    if finite:
        # only a row whose sum is not finite can hold NaN or inf (or finite values overflowing it)
        with np.errstate(over="ignore", invalid="ignore"):
            suspects = np.flatnonzero(~np.isfinite(array.sum(axis=1)))
        bad = suspects[~np.isfinite(array[suspects]).all(axis=1)]
        if bad.size:
            raise InvalidInputError(
                f"{what} contain NaN or infinity (after conversion to {dtype}) in {bad.size} "
                f"row(s), first at row {int(bad[0])}")
    return array


def check_rows(rows: Rows, n_inputs: int, dtype: str, *, what: str = "inputs",
               finite: bool = False) -> Rows:
    """:class:`~mlpcore.data.rows.Rows` (N >= 1, n_inputs). ``finite`` reads floating rows once,
    a block at a time, and refuses NaN and inf (integer rows need no reading)."""
    n, width = rows.shape
    if n == 0:
        raise InvalidInputError(f"{what} is empty: shape {rows.shape}; give at least one row")
    if width != n_inputs:
        raise InvalidInputError(
            f"{what} have width {width}, but the model expects {n_inputs} "
            f"(shape (batch, {n_inputs}), got {rows.shape})")
    if finite and rows.values.dtype.kind == "f":
        for where, block in rows.blocks(dtype):
            check_finite_block(block, where.start, what)
    return rows


def check_finite_block(block: npt.NDArray[np.floating], first_row: int, what: str) -> None:
    """Refuse NaN or inf in ``block``, rows ``first_row``… of ``what``."""
    bad = np.flatnonzero(~np.isfinite(block).all(axis=1))
    if bad.size:
        raise InvalidInputError(f"{what} contain NaN or infinity (after conversion to "
                                f"{block.dtype}), first at row {first_row + int(bad[0])}")


def check_targets(targets: Any, n_rows: int, n_outputs: int, loss: LossName, dtype: str,
                  *, what: str = "labels") -> npt.NDArray[Any]:
    """Int labels (N,) in [0, n_outputs) as int64 (not for mse), or finite floats (N, n_outputs)."""
    array = np.asarray(targets)
    if array.ndim == 1 and array.dtype.kind in "iu":
        if loss == "mse":
            raise InvalidInputError(
                f"mse needs float {what} of shape ({n_rows}, {n_outputs}), got integer labels; "
                f"one-hot encode them or use softmax_cross_entropy")
        if array.shape[0] != n_rows:
            raise InvalidInputError(f"{what} have {len(array)} rows but the inputs have {n_rows}")
        if array.size and (array.min() < 0 or array.max() >= n_outputs):
            bad = int(array[(array < 0) | (array >= n_outputs)][0])
            raise InvalidInputError(
                f"{what} must be class indices in [0, {n_outputs}), found {bad}")
        return np.ascontiguousarray(array, dtype=np.int64)
    if array.ndim == 2 and array.dtype.kind == "f":
        if array.shape != (n_rows, n_outputs):
            raise InvalidInputError(
                f"{what} must have shape ({n_rows}, {n_outputs}), got {array.shape}")
        if not np.isfinite(array).all():
            raise InvalidInputError(f"{what} contain NaN or infinity")
        return np.ascontiguousarray(array, dtype=dtype)
    raise InvalidInputError(
        f"{what} must be integer class indices of shape ({n_rows},) or floats of shape "
        f"({n_rows}, {n_outputs}); got dtype {array.dtype} and shape {array.shape}")


def check_output_path(path: str | os.PathLike[str], what: str) -> Path:
    """``path`` as a :class:`Path` if a file can be written there: its folder exists and it is
    not a folder itself; else ``ValueError`` naming ``what``. Folders are never created."""
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"{what} must be a file path, got {path!r}")
    target = Path(os.fspath(path))
    if target.is_dir():
        raise ValueError(f"{what} {str(target)!r} is a folder; give a file path")
    if not target.parent.is_dir():
        raise ValueError(f"{what} {str(target)!r}: folder {str(target.parent)!r} does not exist")
    return target
