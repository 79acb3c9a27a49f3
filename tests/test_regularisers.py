"""L1 and L2 penalties: values, gradients, validation, and that biases are never penalised."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from mlpcore import L1, L2, MLP, MLPSpec, Normal

STRENGTH = 0.3


@pytest.fixture
def weights(rng: np.random.Generator) -> list[np.ndarray]:
    ws = [rng.normal(size=(4, 3)), rng.normal(size=(3, 2))]
    ws[0][1, 2] = 0.0  # sign(0) = 0 for L1
    return ws


def test_l2_value_and_gradient(numpy_backend, weights) -> None:
    value = numpy_backend.regularisers.value(L2(STRENGTH), weights)
    expected = STRENGTH * sum(float(x) ** 2 for w in weights for x in w.ravel()) / 2
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-13)
    grads = numpy_backend.regularisers.gradient(L2(STRENGTH), weights)
    assert len(grads) == len(weights)
    for w, g in zip(weights, grads, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(g, STRENGTH * w, rtol=1e-15)


def test_l1_value_and_gradient(numpy_backend, weights) -> None:
    value = numpy_backend.regularisers.value(L1(STRENGTH), weights)
    expected = STRENGTH * sum(abs(float(x)) for w in weights for x in w.ravel())
    assert value == pytest.approx(expected, rel=1e-13)
    grads = numpy_backend.regularisers.gradient(L1(STRENGTH), weights)
    for w, g in zip(weights, grads, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        expected_grad = np.array([STRENGTH * (x > 0) - STRENGTH * (x < 0) for x in w.ravel()])
        np.testing.assert_allclose(g.ravel(), expected_grad, rtol=1e-15)
    assert grads[0][1, 2] == 0.0


@pytest.mark.parametrize("make", [L1, L2])
def test_gradient_matches_finite_differences(numpy_backend, weights, make) -> None:  # type: ignore[no-untyped-def]
    regulariser = make(STRENGTH)
    grads = numpy_backend.regularisers.gradient(regulariser, weights)
    h = 1e-6
    for layer, w in enumerate(weights):
        for index in np.ndindex(w.shape):
            if w[index] == 0.0:
                continue  # |w| has no derivative at 0
            plus = [x.copy() for x in weights]
            minus = [x.copy() for x in weights]
            plus[layer][index] += h
            minus[layer][index] -= h
            numeric = (numpy_backend.regularisers.value(regulariser, plus)
                       - numpy_backend.regularisers.value(regulariser, minus)) / (2 * h)
            assert grads[layer][index] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("make", [L1, L2])
def test_float32_weights_keep_their_dtype(numpy_backend, weights, make) -> None:  # type: ignore[no-untyped-def]
    w32 = [w.astype(np.float32) for w in weights]
    for g in numpy_backend.regularisers.gradient(make(STRENGTH), w32):
        assert g.dtype == np.float32


@pytest.mark.parametrize("make", [L1, L2])
def test_zero_strength_is_no_penalty(numpy_backend, weights, make) -> None:  # type: ignore[no-untyped-def]
    assert numpy_backend.regularisers.value(make(0.0), weights) == 0.0
    assert not any(g.any() for g in numpy_backend.regularisers.gradient(make(0), weights))


@pytest.mark.parametrize("strength", [math.nan, math.inf, -math.inf, -1, -1e-12, "a", "0.1",
                                      True, False, None, [0.1]])
@pytest.mark.parametrize("make", [L1, L2])
def test_invalid_strength_raises(make, strength: object) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="strength"):
        make(strength)


@pytest.mark.parametrize("strength", [0, 0.0, 1e-4, 2, np.float64(0.5), np.float32(0.25)])
@pytest.mark.parametrize("make", [L1, L2])
def test_valid_strength_is_stored_as_float(make, strength: float) -> None:  # type: ignore[no-untyped-def]
    regulariser = make(strength)
    assert type(regulariser.strength) is float
    assert regulariser.strength == float(strength)
    with pytest.raises(dataclasses.FrozenInstanceError):
        regulariser.strength = 1.0


def test_kinds() -> None:
    assert L1(0.1).kind == "l1" and L2(0.1).kind == "l2"


@pytest.mark.parametrize("regularisers", [(L2(0.5),), (L1(0.5),), (L1(0.2), L2(0.7))])
def test_biases_are_not_penalised(regularisers: tuple[L1 | L2, ...]) -> None:
    spec = MLPSpec(sizes=(5, 4, 3, 2), activation="tanh")
    model = MLP(spec, seed=3, dtype="float64", weights_init=Normal(0.5), bias_init=Normal(0.5))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(7, 5))
    y = rng.integers(0, 2, size=7)
    plain_value, plain = model.loss_and_gradients(x, y)
    value, grads = model.loss_and_gradients(x, y, regularisers=regularisers)
    variables = model.variables
    weights = [variables[n] for n in spec.weight_names()]
    penalty = 0.0
    for r in regularisers:
        penalty += (r.strength * sum(float(np.sum(w ** 2)) for w in weights) / 2 if r.kind == "l2"
                    else r.strength * sum(float(np.sum(np.abs(w))) for w in weights))
    assert value == pytest.approx(plain_value + penalty, rel=1e-13)
    for name in spec.variable_shapes():
        if name.endswith("/bias"):
            np.testing.assert_array_equal(grads[name], plain[name])
        else:
            extra = sum((r.strength * variables[name] if r.kind == "l2"
                         else r.strength * np.sign(variables[name])) for r in regularisers)
            np.testing.assert_allclose(grads[name], plain[name] + extra, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_an_unknown_regulariser_kind_is_refused_not_taken_for_l1(backend: str,
                                                                 weights) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip(backend)
    import mlpcore

    @dataclasses.dataclass(frozen=True)
    class Elastic:
        strength: float = 0.1
        kind: str = "elastic"

    ops = mlpcore.get_backend(backend).regularisers
    for call in (ops.value, ops.gradient):
        with pytest.raises(ValueError, match="unknown regulariser 'elastic'"):
            call(Elastic(), weights)  # type: ignore[arg-type]
    model = MLP(MLPSpec((4, 3, 2)), backend=backend)
    x, y = np.zeros((5, 4), np.float32), np.zeros(5, np.int64)
    with pytest.raises(ValueError, match="unknown regulariser 'elastic'"):
        model.native.loss_and_gradients(x, y, "softmax_cross_entropy", (Elastic(),))  # type: ignore[arg-type]
