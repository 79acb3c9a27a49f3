"""The MLP (``mlpcore/spec.py``, ``BackendModel``): forward pass and gradients against the float64
reference, and gradients against finite differences of the backend's own objective."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import mlpcore
from mlpcore.backend import Backend
from mlpcore.spec import ActivationName, DTypeName
from mlpcore_conformance import cases, reference
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.strategies import DTYPES, conformance_settings, mlp_problems
from mlpcore_conformance.tolerances import assert_close

FD_SPEC = {name: mlpcore.MLPSpec((3, 4, 3, 2), activation=name, dropout=0.25)
           for name in reference.ACTIVATIONS}
FD_STEP = {"float32": 1e-2, "float64": 1e-6}
"""Relative step of the central differences: about the cube root of the dtype's epsilon."""
FD_CASES = [(name, dtype) for name in reference.ACTIVATIONS for dtype in DTYPES
            if (name, dtype) != ("relu", "float32")]
"""relu in float32 is left out: a step of 1e-2 would cross its kink."""


@pytest.mark.parametrize("dtype", DTYPES)
@conformance_settings()
@given(data=st.data())
def test_forward_matches_reference(backend: Backend, repro: Repro, device: str,
                                   dtype: DTypeName, data: st.DataObject) -> None:
    problem = data.draw(mlp_problems(dtype, training=False), label="problem")
    snippet = repro("got = cases.build(backend, spec, variables, dtype, device).forward(x)",
                    "want = reference.forward(spec, variables, x)",
                    device=device, spec=problem.spec, variables=problem.variables, dtype=dtype,
                    x=problem.x)
    got = cases.build(backend, problem.spec, problem.variables, dtype,
                      device).forward(problem.x)
    assert isinstance(got, np.ndarray) and got.dtype == np.dtype(dtype) \
        and got.shape == (len(problem.x), problem.spec.n_outputs), (
            f"forward gave {getattr(got, 'dtype', '?')} {getattr(got, 'shape', '?')}")
    assert_close(got, reference.forward(problem.spec, problem.variables, problem.x), "forward",
                 dtype, what=f"logits of {problem.spec}", reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_is_eval_mode_whatever_the_dropout_rate(backend: Backend, repro: Repro,
                                                        device: str,
                                                        dtype: DTypeName) -> None:
    spec = mlpcore.MLPSpec((6, 8, 8, 4), activation="sigmoid", dropout=0.5)
    variables = cases.variables(spec, 51, dtype)
    x = cases.normal(52, (10, 6), dtype)
    snippet = repro("got = cases.build(backend, spec, variables, dtype, device).forward(x)",
                    device=device, spec=spec, variables=variables, dtype=dtype,
                    x=cases.code("normal", 52, (10, 6), dtype))
    got = cases.build(backend, spec, variables, dtype, device).forward(x)
    assert_close(got, reference.forward(spec, variables, x), "forward", dtype,
                 what="forward with dropout 0.5 in the spec (no dropout in eval mode)",
                 reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_predict_through_the_mlp_api_matches_reference(backend: Backend, repro: Repro,
                                                       device: str,
                                                       dtype: str) -> None:
    spec = mlpcore.MLPSpec((6, 5, 4), activation="relu")
    snippet = repro("model = mlpcore.MLP(spec, backend=backend, seed=3, dtype=dtype, "
                    "device=device)", "got = model.predict(x)", device=device, spec=spec,
                    dtype=dtype,
                    x=cases.code("normal", 53, (9, 6), dtype))
    model = mlpcore.MLP(spec, backend=backend, seed=3, dtype=dtype, device=device)
    x = cases.normal(53, (9, 6), dtype)
    assert_close(model.predict(x), reference.forward(spec, model.variables, x), "forward", dtype,
                 what="MLP.predict", reproduce=snippet)


@pytest.mark.mlpcore_requires("gradients")
@pytest.mark.parametrize("dtype", DTYPES)
@conformance_settings()
@given(data=st.data())
def test_gradients_match_reference(backend: Backend, repro: Repro, device: str,
                                   dtype: DTypeName, data: st.DataObject) -> None:
    p = data.draw(mlp_problems(dtype, training=True), label="problem")
    assume(reference.clear_of_relu_kinks(p.spec, p.variables, p.x, dtype, p.keep_masks))
    snippet = repro("model = cases.build(backend, spec, variables, dtype, device)",
                    "objective, grads = model.loss_and_gradients(x, targets, loss, regs, masks)",
                    "want = reference.loss_and_gradients(spec, variables, x, targets, loss, "
                    "regs, masks)",
                    device=device, spec=p.spec, variables=p.variables, dtype=dtype, x=p.x,
                    targets=p.targets, loss=p.loss, regs=p.regularisers, masks=p.keep_masks)
    model = cases.build(backend, p.spec, p.variables, dtype, device)
    objective, grads = model.loss_and_gradients(p.x, p.targets, p.loss,
                                                p.regularisers, p.keep_masks)
    want_objective, want = reference.loss_and_gradients(p.spec, p.variables, p.x, p.targets,
                                                        p.loss, p.regularisers, p.keep_masks)
    assert_close(objective, want_objective, "loss", dtype, what=f"{p.loss} objective",
                 reproduce=snippet)
    assert list(grads) == list(want), f"gradients named {list(grads)}, expected {list(want)}"
    for name, value in want.items():
        assert_close(grads[name], value, "gradients", dtype, what=f"d objective / d {name}",
                     reproduce=snippet)


@pytest.mark.mlpcore_requires("gradients")
@pytest.mark.parametrize(("activation", "dtype"), FD_CASES)
def test_gradients_match_finite_differences(backend: Backend, repro: Repro, device: str,
                                            activation: ActivationName,
                                            dtype: DTypeName) -> None:
    spec = FD_SPEC[activation]
    variables = cases.variables(spec, 61, dtype)
    x = cases.normal(62, (5, 3), dtype)
    labels = cases.labels(63, 5, 2)
    masks = [reference.keep_mask(64, 0, layer, (5, width), spec.dropout)
             for layer, width in enumerate(spec.sizes[1:-1])]
    regs = (mlpcore.L2(0.1),)  # smooth: L1 has a kink at 0 that a step could cross
    snippet = repro("model = cases.build(backend, spec, variables, dtype, device)",
                    "_, grads = model.loss_and_gradients(x, labels, 'softmax_cross_entropy', "
                    "regs, masks)",
                    device=device, spec=spec, variables=variables, dtype=dtype,
                    x=cases.code("normal", 62, (5, 3), dtype),
                    labels=cases.code("labels", 63, 5, 2), regs=regs, masks=masks)
    model = cases.build(backend, spec, variables, dtype, device)
    _, grads = model.loss_and_gradients(x, labels, "softmax_cross_entropy", regs, masks)

    def objective(values: dict[str, np.ndarray]) -> float:
        model.write_variables({name: v.astype(dtype) for name, v in values.items()})
        return model.loss_and_gradients(x, labels, "softmax_cross_entropy", regs, masks)[0]

    want = reference.finite_difference_gradients(objective, variables, FD_STEP[dtype])
    for name, value in want.items():
        assert_close(grads[name], value, "finite_differences", dtype,
                     what=f"d objective / d {name} ({activation}) vs central differences",
                     reproduce=snippet)
