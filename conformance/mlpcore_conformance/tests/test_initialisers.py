"""Initialisers (``mlpcore/initialisers.py``): the same seed gives bit-identical variables on
every backend, equal to the reference's own draws from the documented Philox streams."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import mlpcore
from mlpcore.backend import Backend
from mlpcore.spec import DTypeName
from mlpcore_conformance import cases, reference
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.strategies import DTYPES
from mlpcore_conformance.tolerances import assert_bit_identical

SPEC = mlpcore.MLPSpec((5, 7, 7, 3), activation="relu")
"""Has a square layer, where a transposed matrix keeps its shape."""
INITIALISERS: dict[str, tuple[Any, Any]] = {
    "defaults": (None, None),
    "truncated-normal": (mlpcore.TruncatedNormal(0.3, mean=0.1), mlpcore.TruncatedNormal(0.01)),
    "normal": (mlpcore.Normal(0.05, mean=-0.2), mlpcore.Normal(1.0)),
    "glorot-uniform": (mlpcore.GlorotUniform(), mlpcore.GlorotUniform()),
    "zeros": (mlpcore.Zeros(), mlpcore.Zeros()),
}


@pytest.mark.parametrize("init", sorted(INITIALISERS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_initial_variables_equal_the_reference(backend: Backend, repro: Repro, dtype: str,
                                               init: str) -> None:
    weights, bias = INITIALISERS[init]
    snippet = repro("model = mlpcore.MLP(spec, backend=backend, seed=123, dtype=dtype, "
                    "weights_init=weights, bias_init=bias)",
                    "got = model.variables",
                    "want = reference.initial_variables(spec.sizes, 123, weights, bias, "
                    "dtype=dtype)",
                    spec=SPEC, dtype=dtype, weights=weights, bias=bias)
    model = mlpcore.MLP(SPEC, backend=backend, seed=123, dtype=dtype, weights_init=weights,
                        bias_init=bias)
    want = reference.initial_variables(SPEC.sizes, 123, weights, bias, dtype=dtype)
    got = model.variables
    assert list(got) == list(want), f"variables {list(got)}, expected {list(want)}"
    for name, value in want.items():
        assert_bit_identical(got[name], value, f"{name} of MLP(seed=123, {init}, {dtype})",
                             snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_same_seed_same_values_other_seed_other_values(backend: Backend, repro: Repro,
                                                       dtype: str) -> None:
    repro(*[f"{name} = mlpcore.MLP(spec, backend=backend, seed={seed}, dtype=dtype).variables"
            for name, seed in (("first", 7), ("again", 7), ("other", 8))],
          spec=SPEC, dtype=dtype)
    first = mlpcore.MLP(SPEC, backend=backend, seed=7, dtype=dtype).variables
    again = mlpcore.MLP(SPEC, backend=backend, seed=7, dtype=dtype).variables
    other = mlpcore.MLP(SPEC, backend=backend, seed=8, dtype=dtype).variables
    for name in first:
        assert_bit_identical(again[name], first[name], f"{name} for seed 7, built twice")
        if name.endswith("/weights"):
            assert not np.array_equal(other[name], first[name]), f"{name}: seeds 7 and 8 agree"


@pytest.mark.parametrize("dtype", DTYPES)
def test_build_keeps_the_given_variables_bit_for_bit(backend: Backend, repro: Repro,
                                                     dtype: DTypeName) -> None:
    values = cases.variables(SPEC, 41, dtype)
    special = cases.special_values(dtype)
    for value in values.values():
        flat = value.reshape(-1)
        count = min(flat.size, special.size)
        flat[:count] = special[:count]
    snippet = repro("got = backend.build(spec, values, dtype).read_variables()",
                    spec=SPEC, values=values, dtype=dtype)
    got = backend.build(SPEC, values, dtype).read_variables()
    for name, value in values.items():
        assert_bit_identical(got[name], value, f"{name} read back after build ({dtype})",
                             snippet)
