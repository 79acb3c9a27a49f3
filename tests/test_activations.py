"""NumPy backend activations against closed forms, finite differences and the numerics contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlpcore.activations import ACTIVATIONS, check_activation

NAMES = ("relu", "sigmoid", "tanh")


def closed_form(name: str, x: np.ndarray) -> np.ndarray:
    """f(x) evaluated element by element with Python's math module, in float64."""
    if name == "relu":
        f = lambda v: v if v > 0 else 0.0  # noqa: E731
    elif name == "sigmoid":
        f = lambda v: 1.0 / (1.0 + math.exp(-v))  # noqa: E731
    else:
        f = math.tanh
    return np.array([f(float(v)) for v in x.ravel()]).reshape(x.shape)


def closed_form_derivative(name: str, x: np.ndarray) -> np.ndarray:
    if name == "relu":
        f = lambda v: 1.0 if v > 0 else 0.0  # noqa: E731
    elif name == "sigmoid":
        f = lambda v: math.exp(-v) / (1.0 + math.exp(-v)) ** 2  # noqa: E731
    else:
        f = lambda v: 1.0 / math.cosh(v) ** 2  # noqa: E731
    return np.array([f(float(v)) for v in x.ravel()]).reshape(x.shape)


@pytest.fixture
def grid(rng: np.random.Generator) -> np.ndarray:
    return np.concatenate([np.linspace(-20.0, 20.0, 81), rng.normal(0.0, 3.0, 200)])


def test_the_contract_lists_three_activations() -> None:
    assert set(ACTIVATIONS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_value_matches_closed_form_float64(numpy_backend, grid: np.ndarray, name: str) -> None:
    got = numpy_backend.activations.value(name, grid)
    np.testing.assert_allclose(got, closed_form(name, grid), rtol=1e-14, atol=1e-300)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_closed_form_float64(numpy_backend, grid: np.ndarray,
                                                name: str) -> None:
    got = numpy_backend.activations.derivative(name, grid)
    np.testing.assert_allclose(got, closed_form_derivative(name, grid), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_central_differences(numpy_backend, grid: np.ndarray,
                                                name: str) -> None:
    x = grid[np.abs(grid) > 1e-3]  # keep clear of relu's kink at 0
    h = 1e-6
    value = numpy_backend.activations.value
    numeric = (value(name, x + h) - value(name, x - h)) / (2 * h)
    got = numpy_backend.activations.derivative(name, x)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_derivative_at_zero_is_zero(numpy_backend, dtype: type) -> None:
    x = np.array([0.0, -0.0, 1e-30, -1e-30], dtype=dtype)
    got = numpy_backend.activations.derivative("relu", x)
    np.testing.assert_array_equal(got, np.array([0.0, 0.0, 1.0, 0.0], dtype=dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_extreme_inputs_are_finite_and_warning_free(numpy_backend, strict_numerics, dtype: type,
                                                    name: str) -> None:
    x = np.array([-1000.0, -100.0, 0.0, 100.0, 1000.0], dtype=dtype)
    with strict_numerics():
        value = numpy_backend.activations.value(name, x)
        derivative = numpy_backend.activations.derivative(name, x)
    assert np.isfinite(value).all() and np.isfinite(derivative).all()
    assert value.dtype == dtype and derivative.dtype == dtype
    expected = {"relu": [0.0, 0.0, 0.0, 100.0, 1000.0],
                "sigmoid": [0.0, 0.0, 0.5, 1.0, 1.0],
                "tanh": [-1.0, -1.0, 0.0, 1.0, 1.0]}[name]
    np.testing.assert_allclose(value, np.array(expected, dtype=dtype), rtol=0, atol=1e-30)
    expected_derivative = {"relu": [0.0, 0.0, 0.0, 1.0, 1.0],
                           "sigmoid": [0.0, 0.0, 0.25, 0.0, 0.0],
                           "tanh": [0.0, 0.0, 1.0, 0.0, 0.0]}[name]
    np.testing.assert_allclose(derivative, np.array(expected_derivative, dtype=dtype),
                               rtol=0, atol=1e-30)


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_saturating_activations_stay_in_range_float32(numpy_backend, name: str) -> None:
    x = np.linspace(-1000, 1000, 4001, dtype=np.float32)
    value = numpy_backend.activations.value(name, x)
    low = 0.0 if name == "sigmoid" else -1.0
    assert value.min() >= low and value.max() <= 1.0
    assert np.all(np.diff(value) >= 0), "a monotone function must stay monotone"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_nan_propagates_through_value(numpy_backend, dtype: type, name: str) -> None:
    x = np.array([[1.0, np.nan], [-2.0, 0.5]], dtype=dtype)
    got = numpy_backend.activations.value(name, x)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(x))


@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_nan_propagates_through_smooth_derivatives(numpy_backend, name: str) -> None:
    x = np.array([1.0, np.nan, -2.0])
    got = numpy_backend.activations.derivative(name, x)
    np.testing.assert_array_equal(np.isnan(got), [False, True, False])


@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", NAMES)
def test_shape_and_dtype_preserved(numpy_backend, rng: np.random.Generator, shape: tuple[int, ...],
                                   dtype: type, name: str) -> None:
    x = rng.normal(size=shape).astype(dtype)
    before = x.copy()
    for fn in (numpy_backend.activations.value, numpy_backend.activations.derivative):
        got = fn(name, x)
        assert got.shape == shape and got.dtype == dtype
    np.testing.assert_array_equal(x, before)  # the input is not modified


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_float64(numpy_backend, grid: np.ndarray, name: str) -> None:
    x32 = grid.astype(np.float32)
    x64 = x32.astype(np.float64)
    for fn in (numpy_backend.activations.value, numpy_backend.activations.derivative):
        np.testing.assert_allclose(fn(name, x32), fn(name, x64), rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["softmax", "ReLU", ""])
def test_unknown_activation_raises(numpy_backend, name: str) -> None:
    with pytest.raises(ValueError, match="activation"):
        check_activation(name)
    with pytest.raises(ValueError, match="activation"):
        numpy_backend.activations.value(name, np.zeros(3))
    with pytest.raises(ValueError, match="activation"):
        numpy_backend.activations.derivative(name, np.zeros(3))


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_a_model_refuses_an_unknown_activation_instead_of_falling_back(backend: str) -> None:
    """A spec that slipped past validation (its activation overwritten) is refused by name;
    no backend may silently compute sigmoid for it."""
    pytest.importorskip(backend)
    from mlpcore import MLP, MLPSpec, fit

    model = MLP(MLPSpec((3, 4, 2)), backend=backend)
    object.__setattr__(model.spec, "activation", "softmax")
    x, y = np.zeros((5, 3), np.float32), np.zeros(5, np.int64)
    for call in (lambda: model.predict(x), lambda: model.loss_and_gradients(x, y),
                 lambda: fit(model, (x, y), epochs=1)):
        with pytest.raises(ValueError, match="unknown activation 'softmax'"):
            call()
