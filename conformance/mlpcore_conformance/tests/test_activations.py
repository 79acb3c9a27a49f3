"""Activations (``mlpcore/activations.py``): values, derivatives, extremes, relu'(0) = 0."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlpcore.backend import Backend
from mlpcore.spec import ActivationName
from mlpcore_conformance import reference
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.strategies import DTYPES, activation_inputs, conformance_settings
from mlpcore_conformance.tolerances import assert_bit_identical, assert_close

ACTIVATIONS = reference.ACTIVATIONS
EXTREMES = [-1000.0, -100.0, -89.0, -88.5, -30.0, -1.0, 0.0, 1.0, 30.0, 88.5, 89.0, 100.0,
            1000.0]
EXACT_AT_1000 = {  # f(-1000), f(1000), f'(-1000), f'(1000)
    "relu": (0.0, 1000.0, 0.0, 1.0),
    "sigmoid": (0.0, 1.0, 0.0, 0.0),
    "tanh": (-1.0, 1.0, 0.0, 0.0),
}


def _check_array(got: object, x: np.ndarray, what: str) -> np.ndarray:
    assert isinstance(got, np.ndarray), f"{what} returned {type(got).__name__}, not ndarray"
    assert got.shape == x.shape and got.dtype == x.dtype, (
        f"{what} returned {got.dtype} {got.shape} for {x.dtype} {x.shape} input")
    return got


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
@conformance_settings()
@given(data=st.data())
def test_values_match_reference(backend: Backend, repro: Repro, name: ActivationName, dtype: str,
                                data: st.DataObject) -> None:
    x = data.draw(activation_inputs(dtype), label="x")
    snippet = repro(f"got = backend.activations.value({name!r}, x)",
                    f"want = reference.activation({name!r}, x)", x=x)
    got = _check_array(backend.activations.value(name, x), x, f"activations.value({name!r})")
    assert_close(got, reference.activation(name, x), "activation", dtype, what=f"{name} value",
                 reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
@conformance_settings()
@given(data=st.data())
def test_derivatives_match_reference(backend: Backend, repro: Repro, name: ActivationName,
                                     dtype: str, data: st.DataObject) -> None:
    x = data.draw(activation_inputs(dtype), label="x")
    snippet = repro(f"got = backend.activations.derivative({name!r}, x)",
                    f"want = reference.activation_derivative({name!r}, x)", x=x)
    got = _check_array(backend.activations.derivative(name, x), x,
                       f"activations.derivative({name!r})")
    assert_close(got, reference.activation_derivative(name, x), "activation_derivative", dtype,
                 what=f"{name} derivative", reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_extremes_are_finite_exact_and_silent(backend: Backend, repro: Repro, name: ActivationName,
                                              dtype: str) -> None:
    """±1000 and the float32 overflow edge of exp: no warning, no NaN, the exact limits."""
    x = np.array(EXTREMES, dtype=dtype)
    snippet = repro(f"value = backend.activations.value({name!r}, x)",
                    f"derivative = backend.activations.derivative({name!r}, x)", x=x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            value = backend.activations.value(name, x)
            derivative = backend.activations.derivative(name, x)
        except (Warning, FloatingPointError) as warning:
            raise AssertionError(f"{name} at {EXTREMES} ({dtype}) warned: {warning!r}\n"
                                 f"reproduce:\n{snippet}") from None
    for label, got in (("value", value), ("derivative", derivative)):
        assert np.all(np.isfinite(got)), (
            f"{name} {label} ({dtype}) is not finite at {x[~np.isfinite(got)].tolist()}: "
            f"{got[~np.isfinite(got)].tolist()}\nreproduce:\n{snippet}")
    low, high, d_low, d_high = EXACT_AT_1000[name]
    exact = {"f(-1000)": (value[0], low), "f(1000)": (value[-1], high),
             "f'(-1000)": (derivative[0], d_low), "f'(1000)": (derivative[-1], d_high)}
    wrong = {k: (float(g), w) for k, (g, w) in exact.items() if float(g) != w}
    assert not wrong, (f"{name} ({dtype}) must be exact at ±1000: got {wrong} (got, want)\n"
                       f"reproduce:\n{snippet}")
    assert_close(value, reference.activation(name, x), "activation", dtype,
                 what=f"{name} value at extremes", reproduce=snippet)
    assert_close(derivative, reference.activation_derivative(name, x), "activation_derivative",
                 dtype, what=f"{name} derivative at extremes", reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_relu_derivative_at_zero_is_zero(backend: Backend, repro: Repro, dtype: str) -> None:
    tiny = float(np.finfo(np.dtype(dtype)).tiny)  # the smallest normal number
    x = np.array([0.0, -0.0, tiny, -tiny, 1.0, -1.0], dtype=dtype)
    snippet = repro("got = backend.activations.derivative('relu', x)", x=x)
    got = backend.activations.derivative("relu", x)
    want = np.array([0.0, 0.0, 1.0, 0.0, 1.0, 0.0], dtype=dtype)
    assert_bit_identical(np.abs(got), want, f"relu'({x.tolist()}) ({dtype}); relu'(0) must be 0",
                         snippet)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_nan_in_gives_nan_out(backend: Backend, repro: Repro, name: ActivationName,
                              dtype: str) -> None:
    x = np.array([[np.nan, 1.0], [-2.0, np.nan]], dtype=dtype)
    snippet = repro(f"got = backend.activations.value({name!r}, x)", x=x)
    got = backend.activations.value(name, x)
    assert np.array_equal(np.isnan(got), np.isnan(x)), (
        f"{name}({x.tolist()}) = {got.tolist()} ({dtype}): NaN must give NaN, only there\n"
        f"reproduce:\n{snippet}")
