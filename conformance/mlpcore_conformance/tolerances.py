"""The tolerance table: how close a backend must be, keyed by (op, dtype), shipped as data.

The table lives in ``tolerances.toml`` beside this module; docs/contracts.md states it. A value
``got`` agrees with ``want`` when ``|got - want| <= atol + rtol * |want|`` element-wise.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np

__all__ = ["Tolerance", "assert_close", "tolerance"]


@dataclass(frozen=True)
class Tolerance:
    """Relative and absolute tolerance for one (op, dtype)."""

    op: str
    dtype: str
    rtol: float
    atol: float


@cache
def _table() -> dict[str, dict[str, dict[str, float]]]:
    text = files("mlpcore_conformance").joinpath("tolerances.toml").read_text(encoding="utf-8")
    table: dict[str, dict[str, dict[str, float]]] = tomllib.loads(text)
    return table


def tolerance(op: str, dtype: str) -> Tolerance:
    """The tolerance of ``op`` in ``dtype``; ``KeyError`` naming what exists when unknown."""
    table = _table()
    if op not in table or dtype not in table[op]:
        known = ", ".join(f"{o}.{d}" for o, by_dtype in table.items() for d in by_dtype)
        raise KeyError(f"no tolerance for ({op!r}, {dtype!r}); the table has {known}")
    entry = table[op][dtype]
    return Tolerance(op, dtype, float(entry["rtol"]), float(entry["atol"]))


def assert_close(got: Any, want: Any, op: str, dtype: str, context: str = "") -> None:
    """Raise ``AssertionError`` unless ``got`` agrees with ``want`` within ``tolerance(op, dtype)``.

    The message names the op and dtype, the largest absolute and relative errors, the allowed
    tolerance, and ``context`` (what was compared, how to reproduce it).
    """
    tol = tolerance(op, dtype)
    got_array = np.asarray(got, dtype=np.float64)
    want_array = np.asarray(want, dtype=np.float64)
    if got_array.shape != want_array.shape:
        raise AssertionError(f"{op} ({dtype}): shape {got_array.shape} != expected "
                             f"{want_array.shape}. {context}")
    if np.allclose(got_array, want_array, rtol=tol.rtol, atol=tol.atol, equal_nan=True):
        return
    error = np.abs(got_array - want_array)
    relative = error / np.maximum(np.abs(want_array), np.finfo(np.float64).tiny)
    raise AssertionError(
        f"{op} ({dtype}) disagrees: max abs error {np.nanmax(error):.3e}, max rel error "
        f"{np.nanmax(relative):.3e}; allowed atol {tol.atol:.1e} + rtol {tol.rtol:.1e}·|want|. "
        f"{context}")
