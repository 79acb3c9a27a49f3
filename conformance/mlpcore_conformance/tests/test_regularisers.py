"""Regularisers (``mlpcore/regularisers.py``): values, gradients, weights only, invalid λ."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mlpcore
from mlpcore.backend import Backend
from mlpcore.spec import DTypeName
from mlpcore_conformance import cases, reference
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.strategies import (
    DTYPES,
    conformance_settings,
    regularisers,
    weight_lists,
)
from mlpcore_conformance.tolerances import assert_bit_identical, assert_close

INVALID_STRENGTHS: list[Any] = [math.nan, math.inf, -math.inf, -0.5, -1e-12, True, "0.1", None]


@pytest.mark.parametrize("dtype", DTYPES)
@conformance_settings()
@given(data=st.data())
def test_penalty_and_gradient_match_reference(backend: Backend, repro: Repro, dtype: str,
                                              data: st.DataObject) -> None:
    weights = data.draw(weight_lists(dtype), label="weights")
    regulariser = data.draw(regularisers(), label="regulariser")
    snippet = repro("value = backend.regularisers.value(regulariser, weights)",
                    "gradient = backend.regularisers.gradient(regulariser, weights)",
                    regulariser=regulariser, weights=weights)
    value = backend.regularisers.value(regulariser, weights)
    assert isinstance(value, float), f"regularisers.value gave {type(value).__name__}, not float"
    assert_close(value, reference.penalty(regulariser, weights), "regulariser", dtype,
                 what=f"{regulariser.kind} penalty", reproduce=snippet)
    gradient = backend.regularisers.gradient(regulariser, weights)
    assert len(gradient) == len(weights), "one gradient per weight matrix"
    for i, (got, want) in enumerate(zip(gradient, reference.penalty_gradient(regulariser,
                                                                             weights),
                                        strict=True)):
        assert got.shape == weights[i].shape and got.dtype == weights[i].dtype, (
            f"gradient {i} is {got.dtype} {got.shape}, the weights {weights[i].dtype} "
            f"{weights[i].shape}")
        assert_close(got, want, "regulariser_gradient", dtype,
                     what=f"{regulariser.kind} gradient of matrix {i}", reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_l1_gradient_of_zero_is_zero(backend: Backend, repro: Repro, dtype: str) -> None:
    weights = [np.array([[0.0, -0.0, 2.0], [-3.0, 0.0, 1e-30]], dtype=dtype)]
    snippet = repro("got = backend.regularisers.gradient(L1(0.5), weights)", weights=weights)
    got = backend.regularisers.gradient(mlpcore.L1(0.5), weights)[0]
    want = np.array([[0.0, 0.0, 0.5], [-0.5, 0.0, 0.5]], dtype=dtype)
    assert_bit_identical(got + np.zeros_like(got), want, f"L1(0.5) gradient ({dtype}); "
                         "sign(0) must be 0", snippet)


@pytest.mark.parametrize("kind", ["L1", "L2"])
@pytest.mark.parametrize("strength", INVALID_STRENGTHS, ids=repr)
def test_invalid_strength_raises_value_error(backend: Backend, repro: Repro, kind: str,
                                             strength: Any) -> None:
    del backend  # the same on every backend: the core refuses λ before a backend sees it
    repro(f"{kind}(strength)  # must raise ValueError", strength=strength)
    make = mlpcore.L1 if kind == "L1" else mlpcore.L2
    with pytest.raises(ValueError):
        make(strength)


@pytest.mark.mlpcore_requires("gradients")
@pytest.mark.parametrize("dtype", DTYPES)
def test_penalties_act_on_weights_not_biases(backend: Backend, repro: Repro,
                                             dtype: DTypeName) -> None:
    spec = mlpcore.MLPSpec((4, 5, 3), activation="tanh")
    variables = cases.variables(spec, 21, dtype)
    x = cases.normal(22, (6, 4), dtype)
    labels = cases.labels(23, 6, 3)
    regs = (mlpcore.L2(0.3), mlpcore.L1(0.05))
    snippet = repro("model = backend.build(spec, variables, dtype)",
                    "plain = model.loss_and_gradients(x, labels, 'softmax_cross_entropy')",
                    "penalised = model.loss_and_gradients(x, labels, 'softmax_cross_entropy', "
                    "regs)",
                    spec=spec, variables=variables, dtype=dtype,
                    x=cases.code("normal", 22, (6, 4), dtype),
                    labels=cases.code("labels", 23, 6, 3), regs=regs)
    model = backend.build(spec, variables, dtype)
    plain, plain_grads = model.loss_and_gradients(x, labels, "softmax_cross_entropy", (), None)
    penalised, grads = model.loss_and_gradients(x, labels, "softmax_cross_entropy", regs, None)
    weights = [variables[name] for name in spec.weight_names()]
    extra = sum(reference.penalty(r, weights) for r in regs)
    assert_close(penalised - plain, extra, "regulariser", dtype,
                 what="objective with penalties minus without = Σ penalties", reproduce=snippet)
    for i, name in enumerate(spec.weight_names()):
        want = sum(reference.penalty_gradient(r, weights)[i] for r in regs)
        assert_close(grads[name] - plain_grads[name], want, "regulariser_gradient", dtype,
                     what=f"penalty gradient in {name}", reproduce=snippet)
    for name in spec.variable_shapes():
        if name.endswith("/bias"):
            assert_close(grads[name], plain_grads[name], "gradients", dtype,
                         what=f"{name}: biases are not penalised", reproduce=snippet)
