"""Inverted dropout in the NumPy backend, and the portable masks shared by every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlpcore.dropout import DROPOUT_MODES, keep_scale, portable_keep_mask

SHAPE = (40, 25)


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=SHAPE)


def test_modes() -> None:
    assert set(DROPOUT_MODES) == {"portable", "native"}


@pytest.mark.parametrize(("rate", "scale"), [(0.0, 1.0), (0.5, 2.0), (0.75, 4.0), (1.0, 0.0)])
def test_keep_scale(rate: float, scale: float) -> None:
    assert keep_scale(rate) == scale


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rate_zero_is_identity(numpy_backend, x, dtype: type) -> None:
    x = x.astype(dtype)
    for mask in (None, portable_keep_mask(1, 0, 0, SHAPE, 0.0)):
        y = numpy_backend.dropout.apply(x, 0.0, training=True, keep_mask=mask, seed=5)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rate_one_gives_zeros_without_nan_or_warnings(numpy_backend, strict_numerics, x,
                                                      dtype: type) -> None:
    x = x.astype(dtype)
    x[0, :3] = [np.inf, -np.inf, 1e30]
    mask = portable_keep_mask(1, 0, 0, SHAPE, 1.0)
    assert not mask.any()
    with strict_numerics():
        for keep_mask in (mask, None):
            y = numpy_backend.dropout.apply(x, 1.0, training=True, keep_mask=keep_mask, seed=2)
            assert y.dtype == dtype
            assert not np.isnan(y).any()
            np.testing.assert_array_equal(y, np.zeros_like(x))


@pytest.mark.parametrize("rate", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_eval_mode_is_identity(numpy_backend, x, rate: float, dtype: type) -> None:
    x = x.astype(dtype)
    mask = portable_keep_mask(1, 0, 0, SHAPE, 0.5)
    for keep_mask in (None, mask):
        y = numpy_backend.dropout.apply(x, rate, training=False, keep_mask=keep_mask)
        assert y.dtype == dtype
        np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kept_units_are_scaled_and_dropped_units_are_zero(numpy_backend, x, rate: float,
                                                         dtype: type) -> None:
    x = x.astype(dtype)
    mask = portable_keep_mask(9, 3, 1, SHAPE, rate)
    assert mask.any() and not mask.all()
    y = numpy_backend.dropout.apply(x, rate, training=True, keep_mask=mask)
    assert y.dtype == dtype and y.shape == SHAPE
    rtol = 1e-6 if dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y[mask], x[mask].astype(np.float64) / (1 - rate), rtol=rtol)
    assert not y[~mask].any()


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
@pytest.mark.parametrize("source", ["portable", "native"])
def test_mean_is_preserved_within_six_standard_errors(numpy_backend, rate: float,
                                                      source: str) -> None:
    # With x = 1 every output is 1/(1-p) with probability 1-p and 0 otherwise: mean 1,
    # variance p/(1-p). The mean of n outputs has standard error sqrt(p / ((1-p) n)).
    shape = (200, 500)
    n = shape[0] * shape[1]
    x = np.ones(shape)
    mask = portable_keep_mask(11, 0, 0, shape, rate) if source == "portable" else None
    y = numpy_backend.dropout.apply(x, rate, training=True, keep_mask=mask, seed=11)
    standard_error = math.sqrt(rate / ((1 - rate) * n))
    assert abs(float(y.mean()) - 1.0) < 6 * standard_error
    kept = float(np.count_nonzero(y)) / n
    assert abs(kept - (1 - rate)) < 6 * math.sqrt(rate * (1 - rate) / n)


@pytest.mark.parametrize("rate", [math.nan, -0.1, 1.1, math.inf, "0.5", None, True])
def test_invalid_rate_raises(numpy_backend, x, rate: object) -> None:
    with pytest.raises(ValueError):
        numpy_backend.dropout.apply(x, rate, training=True)
    with pytest.raises(ValueError):
        numpy_backend.dropout.apply(x, rate, training=False)
    with pytest.raises(ValueError):
        portable_keep_mask(0, 0, 0, SHAPE, rate)  # type: ignore[arg-type]


def test_portable_mask_is_a_function_of_seed_step_and_layer() -> None:
    mask = portable_keep_mask(7, 12, 1, SHAPE, 0.5)
    assert mask.dtype == np.bool_ and mask.shape == SHAPE
    np.testing.assert_array_equal(mask, portable_keep_mask(7, 12, 1, SHAPE, 0.5))
    for other in (portable_keep_mask(7, 13, 1, SHAPE, 0.5),   # next step
                  portable_keep_mask(7, 12, 0, SHAPE, 0.5),   # other layer
                  portable_keep_mask(8, 12, 1, SHAPE, 0.5),   # other seed
                  portable_keep_mask(7, 1, 12, SHAPE, 0.5)):  # step and layer swapped
        assert not np.array_equal(mask, other)


def test_portable_mask_nests_across_rates() -> None:
    # the same uniform draw is thresholded, so a unit kept at a high rate is kept at a low one
    high = portable_keep_mask(3, 4, 0, SHAPE, 0.8)
    low = portable_keep_mask(3, 4, 0, SHAPE, 0.2)
    assert np.all(low[high])
    assert portable_keep_mask(3, 4, 0, SHAPE, 0.0).all()
    assert not portable_keep_mask(3, 4, 0, SHAPE, 1.0).any()


@pytest.mark.parametrize(("seed", "step", "layer"), [(-1, 0, 0), (0, -1, 0), (0, 0, -1)])
def test_portable_mask_rejects_negative_keys(seed: int, step: int, layer: int) -> None:
    with pytest.raises(ValueError):
        portable_keep_mask(seed, step, layer, SHAPE, 0.5)


def test_native_mode_is_seeded_and_applies_inverted_dropout(numpy_backend, x) -> None:
    rate = 0.4
    y = numpy_backend.dropout.apply(x, rate, training=True, seed=21)
    np.testing.assert_array_equal(y, numpy_backend.dropout.apply(x, rate, training=True, seed=21))
    assert not np.array_equal(y, numpy_backend.dropout.apply(x, rate, training=True, seed=22))
    kept = y != 0
    assert kept.any() and not kept.all()
    np.testing.assert_allclose(y[kept], x[kept] / (1 - rate), rtol=1e-14)


@given(
    rows=st.integers(1, 16),
    cols=st.integers(1, 16),
    rate=st.floats(0.0, 1.0),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
    step=st.integers(0, 10**6),
    layer=st.integers(0, 8),
)
def test_dropout_property(numpy_backend, rows: int, cols: int, rate: float, dtype: type,
                          seed: int, step: int, layer: int) -> None:
    shape = (rows, cols)
    x = np.random.default_rng(seed).normal(size=shape).astype(dtype)
    mask = portable_keep_mask(seed, step, layer, shape, rate)
    assert mask.shape == shape and mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, portable_keep_mask(seed, step, layer, shape, rate))
    y = numpy_backend.dropout.apply(x, rate, training=True, keep_mask=mask)
    assert y.shape == shape and y.dtype == dtype
    assert np.isfinite(y).all()
    if rate == 1.0:
        assert not y.any()
    else:
        rtol = 1e-6 if dtype == np.float32 else 1e-14
        expected = np.where(mask, x.astype(np.float64) / (1.0 - rate), 0.0)
        np.testing.assert_allclose(y, expected, rtol=rtol, atol=0)
    np.testing.assert_array_equal(numpy_backend.dropout.apply(x, rate, training=False), x)
