"""The tolerance table: how close a backend must be, keyed by (op, dtype), shipped as data.

The table lives in ``tolerances.toml`` beside this module; ``docs/conformance.md`` states it. A
value ``got`` agrees with ``want`` when ``|got - want| <= atol + rtol * |want|`` element-wise
(``numpy.allclose``; NaN agrees with NaN, an infinity only with the same infinity).

:func:`assert_close` is the one comparison the conformance suite makes. Every call is measured
(:class:`Measurement`: largest absolute and relative errors, and how much of the allowed tolerance
was used) and handed to the listeners installed with :func:`recording`, which is how
``--mlpcore-report`` learns the errors of every op and dtype. A failure message names the op and
dtype, the errors, the allowed tolerance and, when the caller gives one, a snippet that reproduces
the comparison outside pytest.
"""

from __future__ import annotations

import contextlib
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "Measurement",
    "Tolerance",
    "assert_bit_identical",
    "assert_close",
    "measure",
    "recording",
    "table",
    "tolerance",
    "tolerance_table_markdown",
]


@dataclass(frozen=True)
class Tolerance:
    """Relative and absolute tolerance for one (op, dtype)."""

    op: str
    dtype: str
    rtol: float
    atol: float

    def describe(self) -> str:
        """``atol 1e-06 + rtol 1e-05·|want|`` (and where it comes from)."""
        return (f"|got - want| <= atol {self.atol:.1e} + rtol {self.rtol:.1e}·|want| "
                f"(tolerances.toml [{self.op}.{self.dtype}])")


@dataclass(frozen=True)
class Measurement:
    """How far one comparison was from its reference.

    ``max_abs`` is the largest ``|got - want|``; ``max_rel`` the largest ``|got - want| / |want|``
    over the elements with ``|want| > atol`` (below that the absolute tolerance decides; NaN when
    there is no such element); ``used`` the largest
    ``|got - want| / (atol + rtol |want|)``, so a comparison passes when ``used <= 1``.
    Mismatched NaN/infinity counts as an infinite error.
    """

    op: str
    dtype: str
    what: str
    max_abs: float
    max_rel: float
    used: float
    size: int
    bad: int
    passed: bool


_listeners: list[Callable[[Measurement], None]] = []


@contextlib.contextmanager
def recording(listener: Callable[[Measurement], None]) -> Iterator[None]:
    """Call ``listener`` with the :class:`Measurement` of every comparison made inside."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


@cache
def table() -> dict[str, dict[str, dict[str, float]]]:
    """The whole tolerance table as ``{op: {dtype: {"rtol": ..., "atol": ...}}}``."""
    text = files("mlpcore_conformance").joinpath("tolerances.toml").read_text(encoding="utf-8")
    loaded: dict[str, dict[str, dict[str, float]]] = tomllib.loads(text)
    return loaded


def tolerance(op: str, dtype: str) -> Tolerance:
    """The tolerance of ``op`` in ``dtype``; ``KeyError`` naming what exists when unknown."""
    entries = table()
    if op not in entries or dtype not in entries[op]:
        known = ", ".join(f"{o}.{d}" for o, by_dtype in entries.items() for d in by_dtype)
        raise KeyError(f"no tolerance for ({op!r}, {dtype!r}); the table has {known}")
    entry = entries[op][dtype]
    return Tolerance(op, dtype, float(entry["rtol"]), float(entry["atol"]))


def tolerance_table_markdown() -> str:
    """The table as Markdown, one row per op with every dtype (as shown in the docs)."""
    dtypes = list(dict.fromkeys(d for by_dtype in table().values() for d in by_dtype))
    lines = ["| op | " + " | ".join(f"{d} {t}" for d in dtypes for t in ("rtol", "atol")) + " |",
             "|----|" + "".join("-" * (len(d) + 6) + ":|" for d in dtypes for _ in "ra")]
    for op, by_dtype in table().items():
        cells = []
        for dtype in dtypes:
            entry = by_dtype.get(dtype)
            cells += ["-", "-"] if entry is None else [_short(entry["rtol"]),
                                                       _short(entry["atol"])]
        lines.append(f"| `{op}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _short(value: float) -> str:
    """``1e-06``; ``2.5e-07`` where one digit would round the value."""
    short = f"{value:.0e}"
    return "0" if value == 0 else short if float(short) == value else f"{value:.1e}"


def _errors(got: npt.NDArray[np.float64], want: npt.NDArray[np.float64],
            tol: Tolerance) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Element-wise absolute error (0 for agreeing NaN/infinities, inf for disagreeing ones)
    and the allowed error."""
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.abs(got - want)
        same_special = (np.isnan(got) & np.isnan(want)) | ((got == want) & np.isinf(want))
        error = np.where(same_special, 0.0, error)
        error = np.where(np.isnan(error) | (np.isinf(want) & ~same_special), np.inf, error)
        allowed = tol.atol + tol.rtol * np.where(np.isfinite(want), np.abs(want), 0.0)
    return error, allowed


def measure(got: Any, want: Any, op: str, dtype: str, what: str = "") -> Measurement:
    """Compare ``got`` with ``want`` under ``tolerance(op, dtype)``, without raising."""
    tol = tolerance(op, dtype)
    got_array = np.asarray(got, dtype=np.float64)
    want_array = np.asarray(want, dtype=np.float64)
    if got_array.shape != want_array.shape:
        return Measurement(op, dtype, what, np.inf, np.inf, np.inf, want_array.size,
                           want_array.size, False)
    error, allowed = _errors(got_array, want_array, tol)
    if error.size == 0:
        return Measurement(op, dtype, what, 0.0, 0.0, 0.0, 0, 0, True)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(error == 0.0, 0.0, error / allowed)
        significant = (np.abs(want_array) > tol.atol) & (want_array != 0) \
            & np.isfinite(want_array)
        relative = error[significant] / np.abs(want_array[significant])
    bad = int(np.count_nonzero(~(error <= allowed)))
    return Measurement(
        op, dtype, what,
        max_abs=float(error.max()),
        max_rel=float(relative.max()) if relative.size else float("nan"),
        used=float(ratio.max()),
        size=int(error.size),
        bad=bad,
        passed=bad == 0,
    )


def _notify(measurement: Measurement) -> None:
    for listener in list(_listeners):
        listener(measurement)


def _worst(got: npt.NDArray[np.float64], want: npt.NDArray[np.float64],
           tol: Tolerance) -> str:
    error, allowed = _errors(got, want, tol)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(error == 0.0, 0.0, error / allowed)
    flat = int(np.argmax(ratio))
    index = np.unravel_index(flat, got.shape) if got.ndim else ()
    where = f" at index {tuple(int(i) for i in index)}" if got.ndim else ""
    return f"worst element{where}: got {got[index]!r}, want {want[index]!r}"


def assert_close(got: Any, want: Any, op: str, dtype: str, context: str = "", *,
                 what: str = "", reproduce: object = None) -> Measurement:
    """Raise ``AssertionError`` unless ``got`` agrees with ``want`` within ``tolerance(op, dtype)``.

    ``what`` says what was compared (``"sigmoid value"``), ``context`` anything else worth
    knowing, and ``reproduce`` (anything whose ``str()`` is Python code; only formatted on failure)
    how to reproduce it. The message names the op and dtype, the largest absolute and relative
    errors, the allowed tolerance, the worst element, and the reproduction. Returns the
    :class:`Measurement`, which listeners installed with :func:`recording` also receive.
    """
    tol = tolerance(op, dtype)
    measurement = measure(got, want, op, dtype, what)
    _notify(measurement)
    if measurement.passed:
        return measurement
    got_array = np.asarray(got, dtype=np.float64)
    want_array = np.asarray(want, dtype=np.float64)
    label = f"{op} ({dtype})" + (f": {what}" if what else "")
    lines = []
    if got_array.shape != want_array.shape:
        lines.append(f"{label}: shape {got_array.shape} != expected {want_array.shape}")
    else:
        lines.append(
            f"{label} disagrees with the reference: max abs error {measurement.max_abs:.3e}, "
            f"max rel error {measurement.max_rel:.3e}, {measurement.bad} of "
            f"{measurement.size} element(s) outside the tolerance "
            f"({measurement.used:.3g} times the allowed error)")
        lines.append(f"allowed: {tol.describe()}")
        lines.append(_worst(got_array, want_array, tol))
    if context:
        lines.append(context)
    if reproduce is not None:
        lines.append("reproduce:\n" + _indent(str(reproduce)))
    raise AssertionError("\n".join(lines))


def assert_bit_identical(got: Any, want: Any, what: str, reproduce: object = None) -> None:
    """Raise ``AssertionError`` unless ``got`` and ``want`` have the same dtype, shape and bytes
    (so -0.0, subnormals and NaN payloads must survive too)."""
    got_array = np.asarray(got)
    want_array = np.asarray(want)
    problem = ""
    if got_array.dtype != want_array.dtype:
        problem = f"dtype {got_array.dtype} != expected {want_array.dtype}"
    elif got_array.shape != want_array.shape:
        problem = f"shape {got_array.shape} != expected {want_array.shape}"
    elif got_array.tobytes() != want_array.tobytes():
        got_bytes = np.ascontiguousarray(got_array).reshape(-1).view(np.uint8)
        want_bytes = np.ascontiguousarray(want_array).reshape(-1).view(np.uint8)
        differ = got_bytes.reshape(-1, got_array.itemsize) \
            != want_bytes.reshape(-1, want_array.itemsize)
        flat = np.flatnonzero(differ.any(axis=1))
        first = np.unravel_index(int(flat[0]), got_array.shape) if got_array.ndim else ()
        problem = (f"{flat.size} of {got_array.size} element(s) differ bit-wise; first at "
                   f"{tuple(int(i) for i in first)}: got {got_array[first]!r}, "
                   f"want {want_array[first]!r}")
    if problem:
        message = f"{what}: not bit-identical: {problem}"
        if reproduce is not None:
            message += "\nreproduce:\n" + _indent(str(reproduce))
        raise AssertionError(message)


def _indent(text: str) -> str:
    return "\n".join("    " + line if line else line for line in text.splitlines())
