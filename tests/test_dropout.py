"""Inverted dropout in the NumPy backend, and the portable masks shared by every backend."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlpcore.dropout import DROPOUT_MODES, keep_scale, keep_threshold, portable_keep_mask
from mlpcore.random import Purpose, philox_key, stream, stream_words

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


def float_keep_mask(seed: int, step: int, layer: int, shape: tuple[int, ...],
                    rate: float) -> np.ndarray:
    """The portable mask by its definition: float32 uniforms from the stream, then ``>=``."""
    uniform = stream(seed, Purpose.DROPOUT, step, layer).random(shape, dtype=np.float32)
    return uniform >= np.float32(rate)


EDGE_RATES = (0.0, 1.0, 5e-324, 1e-45, 1e-30, 2.0**-24, 2.0**-25, 3e-8, 0.1, 0.25, 1 / 3, 0.5,
              0.7, 0.9, 1 - 2.0**-24, 1 - 2.0**-25, float(np.nextafter(1.0, 0.0)))


def test_portable_mask_equals_its_float_definition() -> None:
    shapes = [(), (0, 4), (1,), (3,), (1, 1), (2, 3), (5, 7), (128, 256), (3, 4, 5)]
    for seed in (0, 1, 7, 2**32 - 1, 2**32, 2**64 + 3):
        for step in (0, 1, 2, 1000, 2**32 - 1, 2**32, 10**20):
            for layer in (0, 1, 5):
                for shape in shapes:
                    for rate in EDGE_RATES:
                        np.testing.assert_array_equal(
                            portable_keep_mask(seed, step, layer, shape, rate),
                            float_keep_mask(seed, step, layer, shape, rate),
                            err_msg=f"{seed=} {step=} {layer=} {shape=} {rate=}")


def test_portable_mask_at_the_uniforms_themselves() -> None:
    # rates equal to a drawn uniform (kept: u >= p) and one float32 ulp above it (dropped)
    uniform = stream(3, Purpose.DROPOUT, 1, 0).random((32, 32), dtype=np.float32).ravel()
    for u in uniform[:100]:
        for rate in (float(u), float(np.nextafter(u, np.float32(1))), float(u) + 1e-12):
            np.testing.assert_array_equal(portable_keep_mask(3, 1, 0, (32, 32), rate),
                                          float_keep_mask(3, 1, 0, (32, 32), rate))


@given(seed=st.integers(0, 2**70), step=st.integers(0, 2**40), layer=st.integers(0, 64),
       rows=st.integers(0, 9), cols=st.integers(0, 9), rate=st.floats(0.0, 1.0))
def test_portable_mask_property(seed: int, step: int, layer: int, rows: int, cols: int,
                                rate: float) -> None:
    np.testing.assert_array_equal(portable_keep_mask(seed, step, layer, (rows, cols), rate),
                                  float_keep_mask(seed, step, layer, (rows, cols), rate))


def test_portable_mask_pinned() -> None:
    # fixed bits: a change in NumPy's Philox, SeedSequence or in our keying shows here
    mask = portable_keep_mask(7, 12, 1, (4, 16), 0.5)
    assert np.packbits(mask).tobytes().hex() == "86609ee1d66890f3"


def test_keep_threshold() -> None:
    assert keep_threshold(0.0) == 0
    assert keep_threshold(1.0) == keep_threshold(1 - 2.0**-25) == 2**32
    assert keep_threshold(0.5) == 2**31
    assert keep_threshold(1e-45) == keep_threshold(2.0**-24) == 256
    assert keep_threshold(1 - 2.0**-24) == 2**32 - 256
    with pytest.raises(ValueError, match="dropout rate"):
        keep_threshold(1.5)


def test_stream_words_are_the_generators_32_bit_draws() -> None:
    """Against NumPy's own Philox: words are each 64-bit output's low half, then its high half,
    whatever the host's byte order; the float32 uniform is ``(word >> 8) · 2^-24``."""
    for count in (0, 1, 2, 7, 64, 1001):
        words = stream_words(5, Purpose.DROPOUT, 3, 1, count=count)
        assert words.shape == (count,) and words.dtype == np.uint32
        raw = stream(5, Purpose.DROPOUT, 3, 1).bit_generator.random_raw((count + 1) // 2)
        np.testing.assert_array_equal(words[0::2], raw & 0xFFFFFFFF)
        np.testing.assert_array_equal(words[1::2], (raw >> 32)[:count // 2])
        # Generator.integers over the full uint32 range returns next_uint32 unchanged
        np.testing.assert_array_equal(
            words, stream(5, Purpose.DROPOUT, 3, 1).integers(0, 2**32, count, dtype=np.uint32))
        np.testing.assert_array_equal(
            (words >> 8).astype(np.float32) * np.float32(2.0**-24),
            stream(5, Purpose.DROPOUT, 3, 1).random(count, dtype=np.float32))


def test_philox_key_is_the_streams_key() -> None:
    state = stream(11, Purpose.DROPOUT, 4, 2).bit_generator.state["state"]
    assert philox_key(11, Purpose.DROPOUT, 4, 2) == tuple(int(k) for k in state["key"])
    assert not state["counter"].any()
    with pytest.raises(ValueError, match="seed"):
        philox_key(-1, Purpose.DROPOUT, 0, 0)


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
