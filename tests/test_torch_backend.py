"""The torch backend against the NumPy backend: variables, layout, ops, gradients, training.

Tolerances (``|got - want| <= atol + rtol·|want|``) are the shipped table's
(``mlpcore_conformance/tolerances.toml``) where one applies; what was measured on the development
machine is written in docs/backend-torch.md. float64 agrees to rounding (~1e-15 relative for ops,
gradients and forward passes); float32 to float32 rounding of the sums involved.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import mlpcore  # noqa: E402
from mlpcore import L1, L2, MLP, SGD, Capability, MLPSpec, fit  # noqa: E402
from mlpcore.backend import Backend, TrainingConfig  # noqa: E402
from mlpcore.backend_common import network  # noqa: E402
from mlpcore.dropout import keep_scale, portable_keep_mask, scaled_mask  # noqa: E402
from mlpcore.training import epoch_order  # noqa: E402
from mlpcore_torch.backend import TorchBackend, TorchModel  # noqa: E402
from mlpcore_torch.ops import OPS  # noqa: E402
from mlpcore_torch.training import native_scaled_mask_, scaled_mask_  # noqa: E402

DTYPES = ("float32", "float64")
ACTIVATIONS = ("relu", "sigmoid", "tanh")
SPEC = MLPSpec((12, 9, 7, 4), activation="tanh", dropout=0.25)
# float64: rounding only; float32: rounding of sums of up to a few hundred float32 products
CLOSE = {"float64": {"rtol": 1e-10, "atol": 1e-12}, "float32": {"rtol": 1e-4, "atol": 1e-5}}
Strict = Callable[[], AbstractContextManager[None]]


@pytest.fixture(scope="module")
def torch_backend() -> TorchBackend:
    backend = mlpcore.get_backend("torch")
    assert isinstance(backend, TorchBackend)
    return backend


def problem(dtype: str, n: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, SPEC.n_inputs)).astype(dtype), rng.integers(0, 4, n)


def pair(spec: MLPSpec = SPEC, dtype: str = "float32", seed: int = 5) -> tuple[MLP, MLP]:
    return MLP(spec, backend="torch", seed=seed, dtype=dtype), MLP(spec, backend="numpy",
                                                                   seed=seed, dtype=dtype)


def native(model: MLP) -> TorchModel:
    assert isinstance(model.native, TorchModel)
    return model.native


def assert_close(got: Any, want: Any, dtype: str, what: str = "") -> None:
    np.testing.assert_allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=CLOSE[dtype]["rtol"], atol=CLOSE[dtype]["atol"], err_msg=what)


# ---------------------------------------------------------------------------------------------
# the backend object
# ---------------------------------------------------------------------------------------------

def test_backend_declares_its_contract(torch_backend: TorchBackend) -> None:
    assert isinstance(torch_backend, Backend)
    assert torch_backend.name == "torch"
    assert torch_backend.contract_version == mlpcore.CONTRACT_VERSION
    assert torch_backend.capabilities == {Capability.FLOAT64, Capability.GRADIENTS,
                                          Capability.NATIVE_DROPOUT, Capability.COMPILE,
                                          Capability.DATA_PARALLEL, Capability.BFLOAT16,
                                          Capability.FLOAT16, Capability.OPTIMIZERS}
    assert torch_backend.training_methods == ("autodiff", "optimizer", "manual")
    assert torch_backend.framework_version() == str(torch.__version__)
    assert "torch" in mlpcore.list_backends()


def test_plugin_and_package_import_no_torch() -> None:
    code = ("import sys, mlpcore_torch, mlpcore_torch.plugin, mlpcore; mlpcore.list_backends(); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_training_leaves_torch_thread_settings_alone() -> None:
    threads, interop = torch.get_num_threads(), torch.get_num_interop_threads()
    model = MLP(SPEC, backend="torch")
    x, y = problem("float32")
    fit(model, (x, y), epochs=1, batch_size=8, train_accuracy=False)
    assert (torch.get_num_threads(), torch.get_num_interop_threads()) == (threads, interop)


# ---------------------------------------------------------------------------------------------
# variables and layout
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
def test_initial_variables_are_bit_identical_to_numpy(dtype: str) -> None:
    ours, reference = pair(dtype=dtype)
    got = ours.variables
    for name, value in reference.variables.items():
        assert got[name].dtype == value.dtype == np.dtype(dtype), name
        assert got[name].shape == value.shape, name
        assert got[name].flags.c_contiguous, name
        assert np.array_equal(got[name], value), name


@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_are_stored_in_linear_layout(dtype: str) -> None:
    model = MLP(SPEC, backend="torch", seed=3, dtype=dtype)
    variables = model.variables
    for i, (w, b) in enumerate(zip(native(model)._weights, native(model)._biases, strict=True)):
        fan_in, fan_out = SPEC.sizes[i], SPEC.sizes[i + 1]
        assert tuple(w.shape) == (fan_out, fan_in) and w.is_contiguous()
        assert w.dtype == getattr(torch, dtype) and w.requires_grad and w.is_leaf
        assert np.array_equal(w.detach().numpy(), variables[f"dense_{i}/weights"].T)
        assert np.array_equal(b.detach().numpy(), variables[f"dense_{i}/bias"])


def test_read_variables_returns_copies() -> None:
    model = MLP(SPEC, backend="torch", seed=3)
    first = model.variables
    for value in first.values():
        value += 1.0
    assert all(not np.array_equal(model.variables[k], v) for k, v in first.items())


def test_single_column_weights_are_copied_not_aliased() -> None:
    # a (n, 1) canonical matrix is (1, n) natively: contiguous either way, still never a view
    spec = MLPSpec((5, 1))
    values = mlpcore.initial_variables(spec, 0)
    model = TorchBackend().build(spec, values, "float32")
    read = model.read_variables()
    read["dense_0/weights"][:] = 7.0
    values["dense_0/weights"][:] = 9.0
    assert np.all(model.read_variables()["dense_0/weights"] != 7.0)
    assert np.all(model.read_variables()["dense_0/weights"] != 9.0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_nn_linear_with_canonical_weights_gives_the_same_outputs(dtype: str) -> None:
    model = MLP(SPEC, backend="torch", seed=4, dtype=dtype)
    x, _ = problem(dtype)
    layers: list[Any] = []
    for i in range(SPEC.n_layers):
        linear = torch.nn.Linear(SPEC.sizes[i], SPEC.sizes[i + 1], dtype=getattr(torch, dtype))
        with torch.no_grad():  # nn.Linear.weight is (out, in): the canonical matrix transposed
            linear.weight.copy_(torch.from_numpy(model.variables[f"dense_{i}/weights"].T.copy()))
            linear.bias.copy_(torch.from_numpy(model.variables[f"dense_{i}/bias"]))
        layers += [linear, torch.nn.Tanh()]
    net = torch.nn.Sequential(*layers[:-1]).eval()
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_array_equal(model.predict(x), expected)


@pytest.mark.parametrize("dtype", DTYPES)
def test_write_variables_replaces_in_place(dtype: str) -> None:
    model, reference = pair(dtype=dtype, seed=1)
    tensors = native(model)._weights + native(model)._biases
    other = MLP(SPEC, backend="numpy", seed=2, dtype=dtype).variables
    model.assign(other)
    assert all(a is b for a, b in zip(tensors, native(model)._weights + native(model)._biases,
                                      strict=True))
    for name, value in other.items():
        assert np.array_equal(model.variables[name], value)
    x, _ = problem(dtype)
    reference.assign(other)
    assert_close(model.predict(x), reference.predict(x), dtype)


def test_write_variables_is_all_or_nothing() -> None:
    model = MLP(SPEC, backend="torch", seed=1)
    before = model.variables
    values: dict[str, Any] = dict(MLP(SPEC, backend="numpy", seed=2).variables)
    values["dense_2/bias"] = np.array(["not", "a", "number", "!"])  # fails the last conversion
    with pytest.raises(ValueError):
        native(model).write_variables(values)
    for name, value in before.items():
        assert np.array_equal(model.variables[name], value), name


# ---------------------------------------------------------------------------------------------
# forward pass, loss and gradients against the NumPy backend
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_agrees_with_numpy(activation: str, dtype: str) -> None:
    spec = MLPSpec((12, 9, 7, 4), activation=activation)  # type: ignore[arg-type]
    ours, reference = pair(spec, dtype)
    x, _ = problem(dtype, n=33)
    got = ours.predict(x)
    assert got.dtype == np.dtype(dtype) and got.shape == (33, 4)
    assert_close(got, reference.predict(x), dtype, activation)


def test_forward_runs_in_blocks_and_keeps_nan_rows_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(TorchModel, "forward_rows", 5)
    ours, reference = pair()
    x, _ = problem("float32", n=23)
    x[7, 2] = np.nan
    got = ours.predict(x)
    assert np.isnan(got[7]).all() and np.isfinite(np.delete(got, 7, axis=0)).all()
    assert_close(np.delete(got, 7, axis=0), np.delete(reference.predict(x), 7, axis=0),
                 "float32")


def _targets(kind: str, labels: np.ndarray, dtype: str) -> tuple[str, np.ndarray]:
    one_hot = np.eye(4, dtype=dtype)[labels]
    if kind == "labels":
        return "softmax_cross_entropy", labels
    if kind == "one-hot":
        return "softmax_cross_entropy", one_hot
    if kind == "unnormalised":
        return "softmax_cross_entropy", (0.3 + one_hot * 0.9).astype(dtype)
    return "mse", one_hot


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "one-hot", "unnormalised", "mse"])
@pytest.mark.parametrize("with_masks", [False, True])
def test_objective_and_gradients_agree_with_numpy(dtype: str, kind: str,
                                                  with_masks: bool) -> None:
    ours, reference = pair(dtype=dtype)
    x, labels = problem(dtype)
    loss, targets = _targets(kind, labels, dtype)
    masks = ([portable_keep_mask(3, 0, layer, (len(x), w), SPEC.dropout)
              for layer, w in enumerate(SPEC.sizes[1:-1])] if with_masks else None)
    regularisers = (L2(0.01), L1(0.001))
    got_value, got = ours.loss_and_gradients(x, targets, loss, regularisers, masks)
    want_value, want = reference.loss_and_gradients(x, targets, loss, regularisers, masks)
    assert isinstance(got_value, float)
    assert_close(got_value, want_value, dtype, "objective")
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        # gradients: relative to the largest entry, as tiny entries carry only absolute error
        np.testing.assert_allclose(got[name], value, rtol=CLOSE[dtype]["rtol"],
                                   atol=CLOSE[dtype]["rtol"] * float(np.abs(value).max()),
                                   err_msg=name)


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
def test_gradients_match_finite_differences_in_float64(loss: str) -> None:
    model = MLP(SPEC, backend="torch", seed=8, dtype="float64")
    x, labels = problem("float64", n=6)
    targets = labels if loss == "softmax_cross_entropy" else np.eye(4)[labels]
    regularisers = (L2(0.05),)
    _, grads = model.loss_and_gradients(x, targets, loss, regularisers)
    variables = model.variables
    eps = 1e-6
    for name in ("dense_0/weights", "dense_2/bias"):
        for index in [(0,) * variables[name].ndim, tuple(s - 1 for s in variables[name].shape)]:
            values = {k: v.copy() for k, v in variables.items()}
            values[name][index] += eps
            model.assign(values)
            up, _ = model.loss_and_gradients(x, targets, loss, regularisers)
            values[name][index] -= 2 * eps
            model.assign(values)
            down, _ = model.loss_and_gradients(x, targets, loss, regularisers)
            model.assign(variables)
            assert grads[name][index] == pytest.approx((up - down) / (2 * eps), abs=1e-7)


# ---------------------------------------------------------------------------------------------
# ops: activations, losses, regularisers, dropout
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_agree_with_numpy(torch_backend: TorchBackend, numpy_backend: Any,
                                      strict_numerics: Strict, name: str, dtype: str) -> None:
    x = np.concatenate([np.linspace(-8, 8, 101), [-1000.0, 1000.0, 0.0, -0.0, 1e-30]]
                       ).astype(dtype).reshape(2, 53)
    with strict_numerics():
        value = torch_backend.activations.value(name, x)  # type: ignore[arg-type]
        derivative = torch_backend.activations.derivative(name, x)  # type: ignore[arg-type]
    assert value.dtype == derivative.dtype == np.dtype(dtype) and value.shape == x.shape
    assert np.isfinite(value).all() and np.isfinite(derivative).all()
    tol = {"float64": 1e-14, "float32": 1e-6}[dtype]
    np.testing.assert_allclose(value, numpy_backend.activations.value(name, x), rtol=tol,
                               atol=tol)
    np.testing.assert_allclose(derivative, numpy_backend.activations.derivative(name, x),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_activation_edges(torch_backend: TorchBackend, dtype: str) -> None:
    ops = torch_backend.activations
    big = np.array([-1000.0, 1000.0], dtype)
    assert ops.value("sigmoid", big).tolist() == [0.0, 1.0]
    assert ops.derivative("sigmoid", big).tolist() == [0.0, 0.0]
    assert ops.derivative("tanh", big).tolist() == [0.0, 0.0]
    assert ops.derivative("relu", np.array([-1.0, 0.0, -0.0, 2.0], dtype)).tolist() == \
        [0.0, 0.0, 0.0, 1.0]
    assert np.isnan(ops.value("relu", np.array([np.nan], dtype))).all()
    assert ops.value("tanh", np.array(0.5, dtype)).shape == ()
    with pytest.raises(TypeError):
        ops.value("relu", np.arange(3))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        ops.value("gelu", big)  # type: ignore[arg-type]


def test_relu_autograd_derivative_at_zero_is_zero() -> None:
    # the training path differentiates relu by autograd: relu'(0) = 0 there too
    w = torch.tensor([[1.0], [-1.0], [0.0]], requires_grad=True)  # z = (1, -1, 0) for x = 1
    logits = network(OPS, "relu").forward([w, torch.ones(1, 3)], [torch.zeros(3), torch.zeros(1)],
                                          torch.tensor([[1.0]]))
    (grad,) = torch.autograd.grad(logits.sum(), w)
    assert grad.tolist() == [[1.0], [0.0], [0.0]]
    z = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
    (grad,) = torch.autograd.grad(torch.relu(z).sum(), z)
    assert grad.tolist() == [0.0, 0.0, 1.0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "one-hot", "unnormalised", "mse"])
def test_losses_agree_with_numpy(torch_backend: TorchBackend, numpy_backend: Any, dtype: str,
                                 kind: str) -> None:
    rng = np.random.default_rng(2)
    outputs = (3 * rng.standard_normal((10, 4))).astype(dtype)
    loss, targets = _targets(kind, rng.integers(0, 4, 10), dtype)
    tol = {"float64": 1e-12, "float32": 1e-5}[dtype]
    got = torch_backend.losses.value(loss, outputs, targets)  # type: ignore[arg-type]
    assert isinstance(got, float)
    assert got == pytest.approx(numpy_backend.losses.value(loss, outputs, targets), rel=tol)
    grad = torch_backend.losses.gradient(loss, outputs, targets)  # type: ignore[arg-type]
    assert grad.dtype == np.dtype(dtype) and grad.shape == outputs.shape
    np.testing.assert_allclose(grad, numpy_backend.losses.gradient(loss, outputs, targets),
                               rtol=tol, atol=tol * 0.1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_stable_and_labels_equal_one_hot(torch_backend: TorchBackend,
                                                          numpy_backend: Any,
                                                          strict_numerics: Strict,
                                                          dtype: str) -> None:
    outputs = np.array([[1e30, 0.0, -1e30], [0.0, 1e30, 1e30], [-5.0, 2.0, 1.0]], dtype)
    labels = np.array([0, 2, 1])
    one_hot = np.eye(3, dtype=dtype)[labels]
    ops = torch_backend.losses
    with strict_numerics():
        by_label = ops.value("softmax_cross_entropy", outputs, labels)
        by_one_hot = ops.value("softmax_cross_entropy", outputs, one_hot)
        grad_label = ops.gradient("softmax_cross_entropy", outputs, labels)
        grad_one_hot = ops.gradient("softmax_cross_entropy", outputs, one_hot)
    assert np.isfinite(by_label) and np.isfinite(grad_label).all()
    assert by_label == pytest.approx(by_one_hot, rel=1e-6)
    np.testing.assert_allclose(grad_label, grad_one_hot, atol=1e-7)
    assert by_label == pytest.approx(
        numpy_backend.losses.value("softmax_cross_entropy", outputs, labels), rel=1e-6)
    np.testing.assert_allclose(
        grad_label, numpy_backend.losses.gradient("softmax_cross_entropy", outputs, labels),
        atol=1e-7)


def test_mse_is_the_mean_over_every_element(torch_backend: TorchBackend) -> None:
    outputs = np.arange(6, dtype=np.float64).reshape(2, 3)
    targets = np.zeros((2, 3))
    assert torch_backend.losses.value("mse", outputs, targets) == pytest.approx(55 / 6)
    np.testing.assert_allclose(torch_backend.losses.gradient("mse", outputs, targets),
                               2 * outputs / 6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("regulariser", [L1(0.3), L2(0.7)])
def test_regularisers_agree_with_numpy(torch_backend: TorchBackend, numpy_backend: Any,
                                       dtype: str, regulariser: Any) -> None:
    rng = np.random.default_rng(3)
    weights = [rng.standard_normal((5, 4)).astype(dtype), rng.standard_normal((4, 2)).astype(dtype)]
    weights[0][0, 0] = 0.0
    tol = {"float64": 1e-12, "float32": 1e-5}[dtype]
    assert torch_backend.regularisers.value(regulariser, weights) == pytest.approx(
        numpy_backend.regularisers.value(regulariser, weights), rel=tol)
    got = torch_backend.regularisers.gradient(regulariser, weights)
    for g, want in zip(got, numpy_backend.regularisers.gradient(regulariser, weights),
                       strict=True):
        assert g.dtype == np.dtype(dtype)
        np.testing.assert_allclose(g, want, rtol=tol)
    assert got[0][0, 0] == 0.0  # sign(0) = 0 for L1, λ·0 for L2
    assert torch_backend.regularisers.value(regulariser, []) == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_ops(torch_backend: TorchBackend, numpy_backend: Any, dtype: str) -> None:
    ops = torch_backend.dropout
    x = np.random.default_rng(4).standard_normal((64, 32)).astype(dtype)
    x[0, 0] = np.inf
    mask = portable_keep_mask(1, 2, 0, x.shape, 0.3)
    got = ops.apply(x, 0.3, training=True, keep_mask=mask)
    np.testing.assert_array_equal(got, numpy_backend.dropout.apply(x, 0.3, training=True,
                                                                   keep_mask=mask))
    np.testing.assert_array_equal(got[mask], x[mask] * x.dtype.type(keep_scale(0.3)))
    assert (got[~mask] == 0).all()
    for rate in (0.0, 0.5, 1.0):
        np.testing.assert_array_equal(ops.apply(x, rate, training=False), x)
    np.testing.assert_array_equal(ops.apply(x, 0.0, training=True), x)
    dropped = ops.apply(x, 1.0, training=True)
    assert dropped.dtype == np.dtype(dtype) and (dropped == 0).all()  # no NaN, even from inf
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            ops.apply(x, bad, training=True)


def test_native_dropout_statistics_and_seeding(torch_backend: TorchBackend) -> None:
    ops = torch_backend.dropout
    x = np.ones((400, 500), np.float32)
    out = ops.apply(x, 0.3, training=True, seed=11)
    kept = out != 0
    assert abs(kept.mean() - 0.7) < 0.005  # 200,000 draws: 5 standard deviations ~ 0.005
    assert np.allclose(out[kept], np.float32(1 / 0.7))
    assert abs(out.mean() - 1.0) < 0.01  # inverted dropout keeps the expectation
    np.testing.assert_array_equal(out, ops.apply(x, 0.3, training=True, seed=11))
    assert not np.array_equal(out, ops.apply(x, 0.3, training=True, seed=12))
    # the trainer's native masks: same rule, drawn into reused buffers
    scaled = torch.empty(400, 500, dtype=torch.float64)
    uniform = torch.empty(400, 500)
    native_scaled_mask_(scaled, uniform, torch.Generator().manual_seed(3), 0.5)
    assert set(torch.unique(scaled).tolist()) == {0.0, 2.0}
    assert abs(float((scaled != 0).double().mean()) - 0.5) < 0.005


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rate", [0.0, 0.25, 1.0])
def test_trainer_portable_masks_are_the_numpy_masks(dtype: str, rate: float) -> None:
    mask = portable_keep_mask(7, 42, 1, (8, 6), rate)
    out = scaled_mask_(torch.empty((8, 6), dtype=getattr(torch, dtype)), torch.from_numpy(mask),
                       rate)
    np.testing.assert_array_equal(out.numpy(), scaled_mask(mask, rate, dtype))
    np.testing.assert_array_equal(out.numpy(), mask * np.dtype(dtype).type(keep_scale(rate)))


# ---------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------

def classification(n: int = 240, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, SPEC.n_inputs)).astype(dtype)
    return x, x[:, :4].argmax(axis=1).astype(np.int64)


def histories(dtype: str = "float32", **options: Any) -> dict[str, mlpcore.History]:
    """Train the same model on both backends; ``options`` override fit's keyword arguments."""
    x, y = classification(dtype=dtype)
    settings: dict[str, Any] = {"epochs": 3, "batch_size": 32,
                                "optimizer": SGD(0.1, momentum=0.9), "regulariser": L2(1e-3),
                                "validation": (x[:50], y[:50]), **options}
    method = settings.pop("method", "autodiff")
    result = {}
    for backend in ("torch", "numpy"):
        model = MLP(SPEC, backend=backend, seed=9, dtype=dtype)
        result[backend] = fit(model, (x, y), method=method if backend == "torch" else None,
                              **settings)
    return result


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("method", ["autodiff", "optimizer"])
def test_training_follows_numpy_epoch_by_epoch(method: str, momentum: float) -> None:
    # the last batch of 240 rows at batch size 32 is short (16 rows): both batch sizes run
    runs = histories(method=method, optimizer=SGD(0.1, momentum=momentum))
    ours, reference = runs["torch"], runs["numpy"]
    np.testing.assert_allclose(ours.loss, reference.loss, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.array([e.valid_loss for e in ours.epochs], float),
                               np.array([e.valid_loss for e in reference.epochs], float),
                               rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(np.array(ours.train_accuracy, float),
                               np.array(reference.train_accuracy, float), atol=0.02)


def test_training_in_float64_follows_numpy_to_rounding() -> None:
    runs = histories("float64", regulariser=[L1(1e-3), L2(1e-3)])
    np.testing.assert_allclose(runs["torch"].loss, runs["numpy"].loss, rtol=1e-10)


def test_mse_and_float_targets_train_like_numpy() -> None:
    x, y = classification()
    targets = np.eye(4, dtype=np.float32)[y]
    runs = {backend: fit(MLP(SPEC, backend=backend, seed=2), (x, targets), loss="mse",
                         epochs=2, batch_size=48, train_accuracy=False)
            for backend in ("torch", "numpy")}
    np.testing.assert_allclose(runs["torch"].loss, runs["numpy"].loss, rtol=1e-3, atol=1e-5)


def test_trainer_runs_chunks_and_binds_the_training_set_without_copying() -> None:
    x, y = classification(n=100)
    model = MLP(SPEC, backend="torch", seed=4)
    config = TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(0.1), seed=4,
                            method="autodiff")
    trainer: Any = native(model).start_training(config, x, y)
    assert trainer._x.data_ptr() == x.ctypes.data and trainer._targets.data_ptr() == y.ctypes.data
    order = epoch_order(4, 0, 100)
    whole = trainer.run(order, 16, 0)
    assert whole.dtype == np.float64 and whole.shape == (7,)
    again = MLP(SPEC, backend="torch", seed=4)
    chunked_trainer: Any = native(again).start_training(config, x, y)
    chunks = [chunked_trainer.run(order[start:start + 48], 16, start // 16)
              for start in range(0, 100, 48)]
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    for name, value in model.variables.items():
        np.testing.assert_array_equal(again.variables[name], value)


def test_trainer_refuses_a_method_it_does_not_have() -> None:
    x, y = classification(n=10)
    config = TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(0.1), method="by-hand")
    with pytest.raises(ValueError, match="'autodiff' or 'optimizer' or 'manual'"):
        native(MLP(SPEC, backend="torch")).start_training(config, x, y)


def test_native_dropout_is_reproducible_within_the_backend() -> None:
    x, y = classification()
    losses = [fit(MLP(SPEC, backend="torch", seed=6), (x, y), epochs=2, batch_size=32,
                  dropout_mode="native", seed=seed, train_accuracy=False).loss
              for seed in (1, 1, 2)]
    assert losses[0] == losses[1] and losses[0] != losses[2]


@pytest.mark.parametrize("method", ["autodiff", "optimizer"])
def test_compiled_step_matches_eager(method: str) -> None:
    # one batch size (no short last batch), so the step compiles once
    x, y = classification(n=96)
    # the optimizer's step graph would compile twice with momentum (state appears): keep it at 0
    momentum = 0.9 if method == "autodiff" else 0.0
    options: dict[str, Any] = {"epochs": 2, "batch_size": 32, "train_accuracy": False,
                               "optimizer": SGD(0.1, momentum=momentum),
                               "regulariser": L2(1e-3), "method": method}
    eager = fit(MLP(SPEC, backend="torch", seed=3), (x, y), **options)
    model = MLP(SPEC, backend="torch", seed=3)
    config = TrainingConfig(loss="softmax_cross_entropy", optimizer=options["optimizer"],
                            regularisers=(options["regulariser"],), seed=3, method=method,
                            compiled=True)
    trainer: Any = native(model).start_training(config, x, y)
    losses = [float(np.mean(trainer.run(epoch_order(3, epoch, 96), 32, 3 * epoch)))
              for epoch in range(2)]
    assert trainer.compile_seconds > 0
    np.testing.assert_allclose(losses, eager.loss, rtol=1e-5)
    eager_model = MLP(SPEC, backend="torch", seed=3)
    fit(eager_model, (x, y), **options)
    for name, value in eager_model.variables.items():
        np.testing.assert_allclose(model.variables[name], value, rtol=1e-4, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# checkpoints and bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("saver", "loader"), [("torch", "numpy"), ("numpy", "torch"),
                                               ("torch", "torch")])
@pytest.mark.parametrize("dtype", DTYPES)
def test_checkpoint_round_trip(tmp_path: Path, saver: str, loader: str, dtype: str) -> None:
    x, y = problem(dtype, n=64)
    model = MLP(SPEC, backend=saver, seed=2, dtype=dtype)
    fit(model, (x, y), epochs=1, batch_size=16, train_accuracy=False)
    path = mlpcore.save(model, tmp_path / "model.safetensors")
    loaded = mlpcore.load(path, backend=loader)
    assert loaded.backend.name == loader and loaded.dtype == dtype
    for name, value in model.variables.items():
        np.testing.assert_array_equal(loaded.variables[name], value)
    assert_close(loaded.predict(x), model.predict(x), dtype, f"{saver} -> {loader}")


BAD_INPUTS = {
    "wrong width": (np.zeros((3, 5), np.float32), np.array([0, 1, 2])),
    "integer inputs": (np.zeros((3, 12), np.int64), np.array([0, 1, 2])),
    "label out of range": (np.zeros((3, 12), np.float32), np.array([0, 1, 4])),
    "negative label": (np.zeros((3, 12), np.float32), np.array([0, -1, 2])),
    "empty batch": (np.zeros((0, 12), np.float32), np.array([], np.int64)),
}


def _error(call: Callable[[], Any]) -> str:
    with pytest.raises(mlpcore.InvalidInputError) as error:
        call()
    return str(error.value)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_raises_like_numpy(case: str) -> None:
    x, y = BAD_INPUTS[case]
    messages = {}
    for backend in ("torch", "numpy"):
        model = MLP(SPEC, backend=backend)
        messages[backend] = [
            _error(partial(model.evaluate, x, y)),
            _error(partial(model.loss_and_gradients, x, y)),
            _error(partial(fit, model, (x, y), epochs=1)),
        ]
        if case in ("wrong width", "integer inputs", "empty batch"):
            messages[backend].append(_error(partial(model.predict, x)))
    assert messages["torch"] == messages["numpy"]
