"""Inverted dropout (``mlpcore/dropout.py``): p = 0 and eval are the identity, p = 1 gives zeros,
the mean is preserved, invalid rates raise, portable masks equal the reference.

The statistical bound: with ``n`` units of value 1 and rate ``p``, the mean of ``x m / (1 - p)``
has expectation 1 and standard deviation ``sqrt(p / ((1 - p) n))``; the test allows
:data:`SIGMAS` standard deviations (a false alarm about once in 500 million runs for a fixed
seed, and the seed is fixed, so a correct backend passes or fails the same way every time).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlpcore.backend import Backend
from mlpcore.dropout import portable_keep_mask
from mlpcore_conformance import cases, reference
from mlpcore_conformance.repro import Code, Repro
from mlpcore_conformance.strategies import DTYPES, conformance_settings, float_arrays, rates
from mlpcore_conformance.tolerances import assert_bit_identical, assert_close

SIGMAS = 6.0
INVALID_RATES: list[Any] = [math.nan, -0.1, 1.1, math.inf, -math.inf]


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_rate_is_the_identity(backend: Backend, repro: Repro, dtype: str) -> None:
    x = cases.normal(31, (4, 5), dtype)
    for mask, label in ((None, "native mask"), (np.ones(x.shape, bool), "all-kept mask")):
        snippet = repro("got = backend.dropout.apply(x, 0.0, training=True, keep_mask=mask, "
                        "seed=3)", x=x, mask=mask)
        got = backend.dropout.apply(x, 0.0, training=True, keep_mask=mask, seed=3)
        assert_bit_identical(got, x, f"dropout p=0, training, {label} ({dtype})", snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_rate_one_gives_zeros(backend: Backend, repro: Repro, dtype: str) -> None:
    x = cases.normal(32, (4, 5), dtype)
    for mask, label in ((None, "native mask"), (np.zeros(x.shape, bool), "all-dropped mask")):
        snippet = repro("got = backend.dropout.apply(x, 1.0, training=True, keep_mask=mask, "
                        "seed=3)", x=x, mask=mask)
        got = backend.dropout.apply(x, 1.0, training=True, keep_mask=mask, seed=3)
        assert_bit_identical(np.abs(got), np.zeros_like(x),
                             f"dropout p=1, training, {label} ({dtype}): zeros, no NaN", snippet)


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", DTYPES)
def test_eval_mode_is_the_identity(backend: Backend, repro: Repro, dtype: str,
                                   rate: float) -> None:
    x = cases.normal(33, (4, 5), dtype)
    snippet = repro(f"got = backend.dropout.apply(x, {rate}, training=False, seed=3)", x=x)
    got = backend.dropout.apply(x, rate, training=False, seed=3)
    assert_bit_identical(got, x, f"dropout p={rate}, eval mode ({dtype})", snippet)


@pytest.mark.parametrize("rate", [0.2, 0.5])
@pytest.mark.parametrize("mask_source", ["native", "portable"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_is_preserved(backend: Backend, repro: Repro, dtype: str, mask_source: str,
                           rate: float) -> None:
    shape = (400, 250)
    x = np.ones(shape, dtype=dtype)
    mask = None if mask_source == "native" else portable_keep_mask(5, 0, 0, shape, rate)
    snippet = repro(
        f"got = backend.dropout.apply(x, {rate}, training=True, keep_mask=mask, seed=11)",
        "print(got.mean())", x=Code(f"np.ones({shape}, dtype={dtype!r})"),
        mask=None if mask is None else Code(
            f"mlpcore.dropout.portable_keep_mask(5, 0, 0, {shape}, {rate})"))
    got = np.asarray(backend.dropout.apply(x, rate, training=True, keep_mask=mask, seed=11),
                     dtype=np.float64)
    bound = SIGMAS * math.sqrt(rate / ((1.0 - rate) * x.size))
    mean = float(got.mean())
    assert abs(mean - 1.0) <= bound, (
        f"dropout p={rate} ({dtype}, {mask_source} mask) of ones has mean {mean:.5f}; inverted "
        f"dropout keeps it at 1 within {bound:.5f} ({SIGMAS:g} sigma). Kept units must be scaled "
        f"by 1/(1-p) = {1 / (1 - rate):g}; values seen: {np.unique(got)[:5].tolist()}\n"
        f"reproduce:\n{snippet}")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("rate", INVALID_RATES, ids=repr)
def test_invalid_rate_raises_value_error(backend: Backend, repro: Repro, rate: float,
                                         training: bool) -> None:
    x = np.ones((2, 3), np.float32)
    repro(f"backend.dropout.apply(x, rate, training={training}, seed=0)  # must raise ValueError",
          x=x, rate=rate)
    with pytest.raises(ValueError):
        backend.dropout.apply(x, rate, training=training, seed=0)


@conformance_settings()
@given(seed=st.integers(0, 2**32), step=st.integers(0, 10**6), layer=st.integers(0, 5),
       rows=st.integers(1, 6), cols=st.integers(1, 6), rate=rates())
def test_portable_masks_equal_the_reference(backend: Backend, repro: Repro, seed: int,
                                            step: int, layer: int, rows: int, cols: int,
                                            rate: float) -> None:
    del backend  # drawn by the core for every backend; checked once per backend run
    call = f"({seed}, {step}, {layer}, {(rows, cols)}, {rate!r})"
    snippet = repro(f"got = mlpcore.dropout.portable_keep_mask{call}",
                    f"want = reference.keep_mask{call}")
    got = portable_keep_mask(seed, step, layer, (rows, cols), rate)
    want = reference.keep_mask(seed, step, layer, (rows, cols), rate)
    assert_bit_identical(got, want, f"portable_keep_mask{call}", snippet)


@pytest.mark.parametrize("dtype", DTYPES)
@conformance_settings()
@given(data=st.data())
def test_apply_with_a_mask_matches_reference(backend: Backend, repro: Repro, dtype: str,
                                             data: st.DataObject) -> None:
    shape = (data.draw(st.integers(1, 6), label="rows"), data.draw(st.integers(1, 6),
                                                                    label="cols"))
    x = data.draw(float_arrays(dtype, shape, -10.0, 10.0), label="x")
    rate = data.draw(rates(), label="rate")
    mask = data.draw(st.integers(0, 2**32), label="seed")
    keep = reference.keep_mask(mask, 0, 0, shape, rate)
    snippet = repro(f"got = backend.dropout.apply(x, {rate!r}, training=True, keep_mask=keep)",
                    f"want = reference.dropout(x, {rate!r}, training=True, mask=keep)",
                    x=x, keep=keep)
    got = backend.dropout.apply(x, rate, training=True, keep_mask=keep, seed=0)
    assert isinstance(got, np.ndarray) and got.dtype == x.dtype and got.shape == x.shape, (
        f"dropout.apply gave {getattr(got, 'dtype', '?')} {getattr(got, 'shape', '?')} for "
        f"{x.dtype} {x.shape}")
    dropped = ~keep if rate > 0.0 else np.zeros(shape, bool)
    assert np.all(got[dropped] == 0), (
        f"dropout p={rate} must zero exactly the units the mask drops\nreproduce:\n{snippet}")
    assert_close(got, reference.dropout(x, rate, training=True, mask=keep), "dropout", dtype,
                 what=f"x m / (1 - p) at p={rate}", reproduce=snippet)
