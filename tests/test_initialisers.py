"""Initialisers: reproducible, counter-based draws with the documented distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlpcore import MLP, GlorotUniform, MLPSpec, Normal, TruncatedNormal, Zeros, initial_variables
from mlpcore.random import Purpose, stream

SPEC = MLPSpec(sizes=(6, 5, 4, 3))
DRAW = (300, 200)  # 60 000 draws for the distribution checks


def truncated_normal_std() -> float:
    """Standard deviation of N(0, 1) truncated to [-2, 2]: sqrt(1 - 2·2·φ(2) / (Φ(2) - Φ(-2)))."""
    phi = math.exp(-2.0) / math.sqrt(2 * math.pi)
    mass = math.erf(2 / math.sqrt(2))
    return math.sqrt(1 - 4 * phi / mass)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_names_shapes_and_dtypes(dtype: str) -> None:
    values = initial_variables(SPEC, seed=0, dtype=dtype)
    assert list(values) == list(SPEC.variable_shapes())
    for name, shape in SPEC.variable_shapes().items():
        assert values[name].shape == shape
        assert values[name].dtype == np.dtype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_same_seed_gives_bit_identical_variables(dtype: str) -> None:
    first = initial_variables(SPEC, seed=42, dtype=dtype)
    second = initial_variables(SPEC, seed=42, dtype=dtype)
    for name in first:
        assert first[name].tobytes() == second[name].tobytes()


def test_float32_is_the_rounded_float64_draw() -> None:
    v32 = initial_variables(SPEC, seed=3, dtype="float32")
    v64 = initial_variables(SPEC, seed=3, dtype="float64")
    for name in v32:
        np.testing.assert_array_equal(v32[name], v64[name].astype(np.float32))


def test_different_seeds_give_different_weights() -> None:
    a = initial_variables(SPEC, seed=1)
    b = initial_variables(SPEC, seed=2)
    for name in SPEC.weight_names():
        assert not np.array_equal(a[name], b[name])


def test_layers_draw_from_independent_streams() -> None:
    spec = MLPSpec(sizes=(4, 4, 4))
    values = initial_variables(spec, seed=5)
    assert not np.array_equal(values["dense_0/weights"], values["dense_1/weights"])


def test_default_is_truncated_normal_weights_and_zero_biases() -> None:
    values = initial_variables(SPEC, seed=9, dtype="float64")
    for layer, name in enumerate(SPEC.weight_names()):
        w = values[name]
        assert np.abs(w).max() <= 0.2
        assert w.std() > 0.01
        expected = TruncatedNormal(0.1).sample(stream(9, Purpose.INIT, layer, 0), w.shape)
        np.testing.assert_array_equal(w, expected)
    for name, shape in SPEC.variable_shapes().items():
        if name.endswith("/bias"):
            np.testing.assert_array_equal(values[name], np.zeros(shape))


def test_model_starts_from_initial_variables() -> None:
    for dtype in ("float32", "float64"):
        model = MLP(SPEC, seed=17, dtype=dtype)
        expected = initial_variables(SPEC, seed=17, dtype=dtype)
        got = model.variables
        assert list(got) == list(expected)
        for name in expected:
            assert got[name].dtype == np.dtype(dtype)
            np.testing.assert_array_equal(got[name], expected[name])
    a, b = MLP(SPEC, seed=17).variables, MLP(SPEC, seed=18).variables
    assert not np.array_equal(a["dense_0/weights"], b["dense_0/weights"])


def test_model_uses_custom_initialisers() -> None:
    model = MLP(SPEC, seed=4, dtype="float64", weights_init=GlorotUniform(),
                bias_init=Normal(0.5))
    expected = initial_variables(SPEC, 4, GlorotUniform(), Normal(0.5), dtype="float64")
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, expected[name])
    assert model.variables["dense_0/bias"].any()


@pytest.mark.parametrize(("mean", "stddev"), [(0.0, 0.1), (0.5, 1.5)])
def test_truncated_normal_distribution(mean: float, stddev: float) -> None:
    draws = TruncatedNormal(stddev=stddev, mean=mean).sample(np.random.default_rng(0), DRAW)
    n = draws.size
    assert draws.shape == DRAW and draws.dtype == np.float64
    assert np.all(np.abs(draws - mean) <= 2 * stddev * (1 + 1e-12))
    sigma = truncated_normal_std() * stddev  # ≈ 0.8796 σ
    assert truncated_normal_std() == pytest.approx(0.8796, abs=1e-4)
    # standard errors of the sample mean and (conservatively) of the sample std
    assert abs(draws.mean() - mean) < 6 * sigma / math.sqrt(n)
    assert abs(draws.std() - sigma) < 6 * sigma / math.sqrt(n)
    # values near the edge exist: the cut is at 2σ, not narrower
    assert np.abs(draws - mean).max() > 1.95 * stddev


def test_normal_distribution() -> None:
    draws = Normal(stddev=0.3, mean=-1.0).sample(np.random.default_rng(1), DRAW)
    n = draws.size
    assert abs(draws.mean() + 1.0) < 6 * 0.3 / math.sqrt(n)
    assert abs(draws.std() - 0.3) < 6 * 0.3 / math.sqrt(2 * n)  # SE of a normal sample std
    assert np.abs(draws + 1.0).max() > 2 * 0.3  # not truncated


@pytest.mark.parametrize(("shape", "fan_sum"), [((300, 200), 500), ((50, 7), 57), ((64,), 128)])
def test_glorot_uniform_limit(shape: tuple[int, ...], fan_sum: int) -> None:
    limit = math.sqrt(6.0 / fan_sum)
    draws = GlorotUniform().sample(np.random.default_rng(2), shape)
    assert draws.shape == shape
    assert np.abs(draws).max() <= limit
    assert np.abs(draws).max() > 0.9 * limit
    if draws.size >= 10_000:
        n = draws.size
        assert abs(draws.std() - limit / math.sqrt(3)) < 6 * limit / math.sqrt(n)
        assert abs(draws.mean()) < 6 * limit / math.sqrt(3 * n)


def test_zeros() -> None:
    draws = Zeros().sample(np.random.default_rng(3), (4, 5))
    assert draws.shape == (4, 5) and draws.dtype == np.float64
    assert not draws.any()


@pytest.mark.parametrize("stddev", [0, -0.1, math.nan, math.inf, "0.1", None])
@pytest.mark.parametrize("make", [TruncatedNormal, Normal])
def test_invalid_stddev_raises(make, stddev: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="stddev"):
        make(stddev=stddev)


@pytest.mark.parametrize("seed", [-1, 1.5, "0", True])
def test_invalid_seed_raises(seed: object) -> None:
    with pytest.raises(ValueError, match="seed"):
        initial_variables(SPEC, seed=seed)  # type: ignore[arg-type]
