"""NumPy backend losses against naive float64 references and finite differences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlpcore.losses import LOSSES, check_loss

N, K = 6, 4


def naive_cross_entropy(z: np.ndarray, t: np.ndarray) -> float:
    """-(1/N) Σ_n Σ_k t_nk log(exp(z_nk) / Σ_j exp(z_nj)), computed without any shift."""
    total = 0.0
    for row, target in zip(z.tolist(), t.tolist(), strict=True):
        denominator = sum(math.exp(v) for v in row)
        total -= sum(tk * math.log(math.exp(v) / denominator)
                     for v, tk in zip(row, target, strict=True))
    return total / len(z)


def one_hot(labels: np.ndarray, k: int, dtype: type = np.float64) -> np.ndarray:
    return np.eye(k, dtype=dtype)[labels]


def numeric_gradient(f, z: np.ndarray, h: float = 1e-6) -> np.ndarray:  # type: ignore[no-untyped-def]
    grad = np.zeros_like(z)
    for index in np.ndindex(z.shape):
        plus, minus = z.copy(), z.copy()
        plus[index] += h
        minus[index] -= h
        grad[index] = (f(plus) - f(minus)) / (2 * h)
    return grad


@pytest.fixture
def logits(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(0.0, 3.0, size=(N, K))


@pytest.fixture
def labels() -> np.ndarray:
    return np.array([0, 3, 1, 1, 2, 3], dtype=np.int64)


@pytest.fixture
def soft_targets(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(size=(N, K))
    return t / t.sum(axis=1, keepdims=True)


def test_the_contract_lists_two_losses() -> None:
    assert set(LOSSES) == {"softmax_cross_entropy", "mse"}


def test_cross_entropy_matches_naive_reference(numpy_backend, logits, labels) -> None:
    got = numpy_backend.losses.value("softmax_cross_entropy", logits, labels)
    assert isinstance(got, float)
    assert got == pytest.approx(naive_cross_entropy(logits, one_hot(labels, K)), rel=1e-12)


def test_cross_entropy_with_probability_targets(numpy_backend, logits, soft_targets) -> None:
    got = numpy_backend.losses.value("softmax_cross_entropy", logits, soft_targets)
    assert got == pytest.approx(naive_cross_entropy(logits, soft_targets), rel=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_integer_labels_equal_one_hot(numpy_backend, logits, labels, dtype: type) -> None:
    z = logits.astype(dtype)
    t = one_hot(labels, K, dtype)
    value_int = numpy_backend.losses.value("softmax_cross_entropy", z, labels)
    value_hot = numpy_backend.losses.value("softmax_cross_entropy", z, t)
    rel = 1e-6 if dtype == np.float32 else 1e-14
    assert value_int == pytest.approx(value_hot, rel=rel)
    grad_int = numpy_backend.losses.gradient("softmax_cross_entropy", z, labels)
    grad_hot = numpy_backend.losses.gradient("softmax_cross_entropy", z, t)
    np.testing.assert_allclose(grad_int, grad_hot, rtol=rel, atol=rel * 1e-2)


def test_cross_entropy_gradient_closed_form(numpy_backend, logits, labels) -> None:
    e = np.exp(logits)
    expected = (e / e.sum(axis=1, keepdims=True) - one_hot(labels, K)) / N
    got = numpy_backend.losses.gradient("softmax_cross_entropy", logits, labels)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(numpy_backend, strict_numerics,
                                                 dtype: type) -> None:
    z = np.array([[1e30, -1e30, 0.0], [-1e30, 1e30, 5.0], [1e30, 1e30, -1e30]], dtype=dtype)
    labels = np.array([1, 1, 0])
    with strict_numerics():
        value = numpy_backend.losses.value("softmax_cross_entropy", z, labels)
        value_hot = numpy_backend.losses.value("softmax_cross_entropy", z,
                                               one_hot(labels, 3, dtype))
        grad = numpy_backend.losses.gradient("softmax_cross_entropy", z, labels)
    # row 0 loses max(z) - z_y = 2e30; row 1 is right with certainty; row 2 ties: log 2
    expected = (float(dtype(1e30)) * 2 + 0.0 + math.log(2)) / 3
    assert math.isfinite(value) and value == pytest.approx(expected, rel=1e-6)
    assert value_hot == pytest.approx(expected, rel=1e-6)
    assert grad.dtype == dtype and np.isfinite(grad).all()
    expected_grad = np.array([[1.0, -1.0, 0.0], [0.0, 0.0, 0.0], [-0.5, 0.5, 0.0]]) / 3
    np.testing.assert_allclose(grad, expected_grad, atol=1e-7)


@pytest.mark.parametrize("target_kind", ["labels", "one_hot", "soft"])
def test_cross_entropy_gradient_matches_finite_differences(numpy_backend, logits, labels,
                                                           soft_targets, target_kind: str) -> None:
    targets = {"labels": labels, "one_hot": one_hot(labels, K), "soft": soft_targets}[target_kind]

    def loss(z: np.ndarray) -> float:
        return numpy_backend.losses.value("softmax_cross_entropy", z, targets)

    got = numpy_backend.losses.gradient("softmax_cross_entropy", logits, targets)
    np.testing.assert_allclose(got, numeric_gradient(loss, logits), rtol=1e-6, atol=1e-9)


def test_mse_value_and_gradient(numpy_backend, logits, soft_targets) -> None:
    value = numpy_backend.losses.value("mse", logits, soft_targets)
    assert isinstance(value, float)
    expected = sum((o - t) ** 2 for o, t in zip(logits.ravel().tolist(),
                                                  soft_targets.ravel().tolist(), strict=True))
    assert value == pytest.approx(expected / (N * K), rel=1e-13)
    grad = numpy_backend.losses.gradient("mse", logits, soft_targets)
    np.testing.assert_allclose(grad, 2 * (logits - soft_targets) / (N * K), rtol=1e-13)


def test_mse_gradient_matches_finite_differences(numpy_backend, logits, soft_targets) -> None:
    got = numpy_backend.losses.gradient("mse", logits, soft_targets)

    def loss(o: np.ndarray) -> float:
        return numpy_backend.losses.value("mse", o, soft_targets)

    np.testing.assert_allclose(got, numeric_gradient(loss, logits), rtol=1e-6, atol=1e-9)


def test_mse_zero_at_targets(numpy_backend, soft_targets) -> None:
    assert numpy_backend.losses.value("mse", soft_targets, soft_targets) == 0.0
    assert not numpy_backend.losses.gradient("mse", soft_targets, soft_targets).any()


@pytest.mark.parametrize(("loss", "target_kind"), [
    ("softmax_cross_entropy", "labels"), ("softmax_cross_entropy", "one_hot"),
    ("softmax_cross_entropy", "soft"), ("mse", "soft"), ("mse", "one_hot"),
])
def test_loss_is_a_mean_over_the_batch(numpy_backend, logits, labels, soft_targets, loss: str,
                                       target_kind: str) -> None:
    targets = {"labels": labels, "one_hot": one_hot(labels, K), "soft": soft_targets}[target_kind]
    twice_z = np.concatenate([logits, logits])
    twice_t = np.concatenate([targets, targets])
    once = numpy_backend.losses.value(loss, logits, targets)
    twice = numpy_backend.losses.value(loss, twice_z, twice_t)
    assert twice == pytest.approx(once, rel=1e-13)
    grad = numpy_backend.losses.gradient(loss, logits, targets)
    grad_twice = numpy_backend.losses.gradient(loss, twice_z, twice_t)
    np.testing.assert_allclose(grad_twice[:N], grad / 2, rtol=1e-12, atol=1e-16)
    np.testing.assert_allclose(grad_twice[N:], grad / 2, rtol=1e-12, atol=1e-16)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
def test_gradient_dtype_and_inputs_untouched(numpy_backend, logits, soft_targets,
                                             loss: str) -> None:
    z = logits.astype(np.float32)
    t = soft_targets.astype(np.float32)
    z_before, t_before = z.copy(), t.copy()
    grad = numpy_backend.losses.gradient(loss, z, t)
    assert grad.dtype == np.float32 and grad.shape == z.shape
    assert isinstance(numpy_backend.losses.value(loss, z, t), float)
    np.testing.assert_array_equal(z, z_before)
    np.testing.assert_array_equal(t, t_before)


@pytest.mark.parametrize("name", ["hinge", "cross_entropy", ""])
def test_unknown_loss_raises(numpy_backend, logits, soft_targets, name: str) -> None:
    with pytest.raises(ValueError, match="loss"):
        check_loss(name)
    with pytest.raises(ValueError, match="loss"):
        numpy_backend.losses.value(name, logits, soft_targets)
    with pytest.raises(ValueError, match="loss"):
        numpy_backend.losses.gradient(name, logits, soft_targets)


def test_cross_entropy_with_unnormalised_targets(numpy_backend, logits, soft_targets) -> None:
    # L = -(1/N) Σ t·log_softmax(z) holds for any non-negative rows, e.g. rows summing to 2 or 0.5
    targets = soft_targets * np.array([[2.0], [0.5], [1.0], [0.0], [3.0], [1.0]])
    value = numpy_backend.losses.value("softmax_cross_entropy", logits, targets)
    assert value == pytest.approx(naive_cross_entropy(logits, targets), rel=1e-12)
    got = numpy_backend.losses.gradient("softmax_cross_entropy", logits, targets)

    def loss(z: np.ndarray) -> float:
        return numpy_backend.losses.value("softmax_cross_entropy", z, targets)

    np.testing.assert_allclose(got, numeric_gradient(loss, logits), rtol=1e-6, atol=1e-9)
    assert not got[3].any()  # a row with no target mass contributes nothing


@pytest.mark.parametrize("backend", ["numpy", "torch", "tensorflow"])
def test_a_backend_model_refuses_an_unknown_loss_instead_of_falling_back(backend: str) -> None:
    """The model's own methods (which the core calls after its checks, and a third party may
    call directly) refuse a loss they do not know; none silently computes cross-entropy."""
    pytest.importorskip(backend)
    from mlpcore import MLP, SGD, MLPSpec
    from mlpcore.backend import TrainingConfig

    native = MLP(MLPSpec((3, 4, 2)), backend=backend).native
    x, y = np.zeros((5, 3), np.float32), np.zeros(5, np.int64)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        native.loss_and_gradients(x, y, "hinge")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        native.start_training(TrainingConfig(loss="hinge", optimizer=SGD()),  # type: ignore[arg-type]
                              x, y).run(np.arange(5), 5, 0)
