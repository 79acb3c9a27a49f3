"""Mixed precision (``dtype`` bfloat16 or float16, capabilities of those names): float32 master
variables, the passes in the low dtype, against the float64 reference within the table's
bfloat16 / float16 rows; training (float16 with the backend's loss scaling) along the
reference trajectory; checkpoints hold the float32 masters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore.backend import Backend
from mlpcore.spec import ComputeDType
from mlpcore_conformance import cases, reference
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.tests.test_training import CASES, _check_run
from mlpcore_conformance.tolerances import assert_bit_identical, assert_close

MIXED = ("bfloat16", "float16")
SPEC = mlpcore.MLPSpec((6, 8, 8, 4), activation="tanh", dropout=0.25)


@pytest.mark.parametrize("dtype", MIXED)
def test_low_precision_forward_matches_reference(backend: Backend, repro: Repro, device: str,
                                                 dtype: ComputeDType) -> None:
    variables, x = cases.variables(SPEC, 91, "float32"), cases.normal(92, (16, 6), "float32")
    snippet = repro("got = cases.build(backend, spec, variables, dtype, device).forward(x)",
                    spec=SPEC, variables=variables, dtype=dtype, device=device,
                    x=cases.code("normal", 92, (16, 6), "float32"))
    got = cases.build(backend, SPEC, variables, dtype, device).forward(x)
    assert isinstance(got, np.ndarray) and got.dtype == np.float32, (
        f"a {dtype} model's forward must return float32, got {getattr(got, 'dtype', '?')}")
    assert_close(got, reference.forward(SPEC, variables, x), "forward", dtype,
                 what=f"{dtype} logits", reproduce=snippet)


@pytest.mark.mlpcore_requires("gradients")
@pytest.mark.parametrize("dtype", MIXED)
def test_low_precision_gradients_match_reference(backend: Backend, repro: Repro, device: str,
                                                 dtype: ComputeDType) -> None:
    variables, x = cases.variables(SPEC, 93, "float32"), cases.normal(94, (16, 6), "float32")
    labels, regs = cases.labels(95, 16, 4), (mlpcore.L2(0.01),)
    masks = [reference.keep_mask(96, 0, layer, (16, 8), SPEC.dropout) for layer in range(2)]
    snippet = repro("model = cases.build(backend, spec, variables, dtype, device)",
                    "objective, grads = model.loss_and_gradients(x, labels, "
                    "'softmax_cross_entropy', regs, masks)", spec=SPEC, variables=variables,
                    dtype=dtype, device=device, x=cases.code("normal", 94, (16, 6), "float32"),
                    labels=cases.code("labels", 95, 16, 4), regs=regs, masks=masks)
    model = cases.build(backend, SPEC, variables, dtype, device)
    objective, grads = model.loss_and_gradients(x, labels, "softmax_cross_entropy", regs, masks)
    want_objective, want = reference.loss_and_gradients(SPEC, variables, x, labels,
                                                        "softmax_cross_entropy", regs, masks)
    assert_close(objective, want_objective, "loss", dtype, what=f"{dtype} objective",
                 reproduce=snippet)
    for name, value in want.items():
        assert grads[name].dtype == np.float32, f"{name}'s gradient must be float32 (master)"
        assert_close(grads[name], value, "gradients", dtype, what=f"{dtype} d objective / d "
                     f"{name}", reproduce=snippet)


@pytest.mark.parametrize("dtype", MIXED)
def test_variables_and_checkpoints_hold_float32_masters(backend: Backend, repro: Repro,
                                                        device: str, dtype: ComputeDType,
                                                        tmp_path: Path) -> None:
    values = cases.variables(SPEC, 97, "float32")  # not representable in bfloat16 / float16
    snippet = repro("model = mlpcore.MLP(spec, backend=backend, dtype=dtype, device=device)",
                    "model.assign(values)", "mlpcore.save(model, 'mixed.safetensors')",
                    "loaded = mlpcore.load('mixed.safetensors', backend=backend, dtype=dtype)",
                    spec=SPEC, dtype=dtype, device=device, values=values)
    model = mlpcore.MLP(SPEC, backend=backend, dtype=dtype, device=device)
    model.assign(values)
    path = mlpcore.save(model, tmp_path / "mixed.safetensors")
    assert mlpcore.read_checkpoint(path).dtype == "float32"
    loaded = mlpcore.load(path, backend=backend, dtype=dtype, device=device)
    assert loaded.dtype == dtype
    for what, variables in (("model.variables", model.variables),
                            ("the checkpoint", mlpcore.read_checkpoint(path).variables),
                            ("the loaded model", loaded.variables)):
        for name, value in values.items():
            assert_bit_identical(variables[name], value, f"{name} in {what} ({dtype} model: "
                                 "float32 masters, never rounded)", snippet)


@pytest.mark.parametrize("dtype", MIXED)
@pytest.mark.parametrize("case_name", sorted(CASES))
def test_low_precision_sgd_steps_follow_the_reference(backend: Backend, repro: Repro,
                                                      device: str, case_name: str,
                                                      dtype: ComputeDType) -> None:
    _check_run(backend, repro, case_name, dtype, None, compiled=False, device=device)
