"""The TensorFlow backend against the NumPy backend: ops, model, training, tracing, checkpoints.

Tolerances are the shipped table (``mlpcore_conformance/tolerances.toml``), keyed by (op, dtype);
training comparisons in float64 are checked far tighter than the table's float32 entries.
"""

from __future__ import annotations

import gc
import math
import subprocess
import sys
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import mlpcore  # noqa: E402
from mlpcore import L1, L2, MLP, SGD, InvalidInputError, MLPSpec, Normal, fit  # noqa: E402
from mlpcore.backend import Backend, BackendModel, Capability, Trainer, TrainingConfig  # noqa: E402
from mlpcore.dropout import portable_keep_mask  # noqa: E402
from mlpcore.training import epoch_order  # noqa: E402
from mlpcore_conformance.tolerances import assert_close  # noqa: E402
from mlpcore_numpy.backend import NumpyBackend  # noqa: E402
from mlpcore_tensorflow.backend import TensorflowBackend, TensorflowModel  # noqa: E402
from mlpcore_tensorflow.ops import native_keep_mask, native_seed  # noqa: E402
from mlpcore_tensorflow.training import TensorflowTrainer, apply_sgd  # noqa: E402

DTYPES = ["float32", "float64"]
ACTIVATIONS = ["relu", "sigmoid", "tanh"]
TF = TensorflowBackend()
NP = NumpyBackend()


def pair(spec: MLPSpec, dtype: str = "float64", seed: int = 5,
         **init: Any) -> tuple[MLP, MLP]:
    """The same model on the TensorFlow and on the NumPy backend."""
    return (MLP(spec, backend=TF, seed=seed, dtype=dtype, **init),
            MLP(spec, backend="numpy", seed=seed, dtype=dtype, **init))


def data(spec: MLPSpec, n: int, kind: str = "labels", seed: int = 0,
         dtype: str = "float64") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, spec.n_inputs)).astype(dtype)
    labels = rng.integers(0, spec.n_outputs, n)
    if kind == "labels":
        return x, labels
    if kind == "one_hot":
        return x, np.eye(spec.n_outputs, dtype=dtype)[labels]
    if kind == "probabilities":  # rows that do not sum to one: the general formula
        return x, rng.random((n, spec.n_outputs)).astype(dtype)
    return x, rng.normal(size=(n, spec.n_outputs)).astype(dtype)


def capture_trainer(model: MLP) -> list[Any]:
    """Make ``model.native.start_training`` remember the trainers it returns."""
    trainers: list[Any] = []
    start = model.native.start_training

    def wrapped(*args: Any) -> Any:
        trainers.append(start(*args))
        return trainers[-1]

    setattr(model.native, "start_training", wrapped)  # noqa: B010
    return trainers


# ---------------------------------------------------------------------------------------------
# the backend object
# ---------------------------------------------------------------------------------------------

def test_backend_declares_the_contract() -> None:
    backend = mlpcore.get_backend("tensorflow")
    assert isinstance(backend, Backend)
    assert backend.name == "tensorflow"
    assert backend.contract_version == mlpcore.CONTRACT_VERSION
    assert backend.capabilities == {Capability.FLOAT64, Capability.GRADIENTS,
                                    Capability.NATIVE_DROPOUT, Capability.COMPILE,
                                    Capability.DATA_PARALLEL, Capability.BFLOAT16,
                                    Capability.FLOAT16, Capability.OPTIMIZERS,
                                    Capability.LOCAL_DATA_PARALLEL}
    assert backend.training_methods == ("autodiff", "optimizer", "manual")
    assert backend.framework_version() == tf.__version__
    model = MLP(MLPSpec((3, 2)), backend=backend)
    assert isinstance(model.native, BackendModel)
    assert isinstance(model.native, TensorflowModel)
    assert all(isinstance(v, tf.Variable) for v in model.native._weights + model.native._biases)
    trainer = model.native.start_training(
        TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(), method="autodiff"),
        np.zeros((2, 3), np.float32), np.zeros(2, np.int64))
    assert isinstance(trainer, Trainer)


def test_plugin_and_package_import_no_tensorflow() -> None:
    code = ("import sys, mlpcore_tensorflow, mlpcore_tensorflow.plugin, mlpcore; "
            "mlpcore.list_backends(); "
            "print([m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("dtype", DTYPES)
def test_initial_variables_are_bit_identical(dtype: str) -> None:
    spec = MLPSpec((7, 6, 5, 3))
    for init in ({}, {"weights_init": mlpcore.GlorotUniform(), "bias_init": Normal(0.3)}):
        ours, reference = pair(spec, dtype, seed=11, **init)
        got, want = ours.variables, reference.variables
        assert list(got) == list(want)
        for name, value in want.items():
            assert got[name].dtype == value.dtype and got[name].shape == value.shape
            assert got[name].tobytes() == value.tobytes(), name
        assert isinstance(ours.native, TensorflowModel)
        assert ours.native._weights[0].shape == (7, 6)  # canonical (fan_in, fan_out)


def test_variables_are_copies_and_write_is_all_or_nothing() -> None:
    model = MLP(MLPSpec((3, 4, 2)), backend=TF, seed=1, dtype="float64")
    before = model.variables
    before["dense_0/weights"][:] = 99.0
    assert not np.any(model.variables["dense_0/weights"] == 99.0)
    new = {name: np.full_like(v, 0.5) for name, v in model.variables.items()}
    model.assign(new)
    assert all(np.array_equal(v, new[k]) for k, v in model.variables.items())
    current = model.variables
    broken = dict(new, **{"dense_1/bias": np.array(["a", "b"], dtype=object)})
    with pytest.raises((ValueError, TypeError)):
        model.native.write_variables(broken)  # the last conversion fails: nothing assigned
    assert all(np.array_equal(v, current[k]) for k, v in model.variables.items())
    with pytest.raises(ValueError, match="shape"):
        model.assign(dict(new, **{"dense_0/weights": np.zeros((4, 3))}))
    assert all(np.array_equal(v, current[k]) for k, v in model.variables.items())


# ---------------------------------------------------------------------------------------------
# ops against the NumPy backend
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activations_match_numpy(name: str, dtype: str) -> None:
    x = np.concatenate([np.random.default_rng(0).normal(scale=4, size=200),
                        [-1000.0, -100.0, -20.0, 0.0, 20.0, 100.0, 1000.0]]).astype(dtype)
    value = TF.activations.value(name, x)  # type: ignore[arg-type]
    derivative = TF.activations.derivative(name, x)  # type: ignore[arg-type]
    assert value.dtype == x.dtype and derivative.dtype == x.dtype
    assert np.isfinite(value).all() and np.isfinite(derivative).all()
    assert_close(value, NP.activations.value(name, x), "activation", dtype)  # type: ignore[arg-type]
    assert_close(derivative, NP.activations.derivative(name, x),  # type: ignore[arg-type]
                 "activation_derivative", dtype)
    if name == "sigmoid":
        assert value[-7] == 0.0 and value[-1] == 1.0
        assert derivative[-7] == 0.0 and derivative[-1] == 0.0


def test_relu_derivative_at_zero_is_zero_and_bad_input_is_refused() -> None:
    assert TF.activations.derivative("relu", np.array([-1.0, 0.0, 1.0])).tolist() == [0, 0, 1]
    with pytest.raises(TypeError):
        TF.activations.value("relu", np.array([1, 2]))
    with pytest.raises(ValueError, match="unknown activation"):
        TF.activations.value("gelu", np.array([1.0]))  # type: ignore[arg-type]
    nan = TF.activations.value("sigmoid", np.array([np.nan, 0.0]))
    assert np.isnan(nan[0]) and nan[1] == 0.5


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["labels", "one_hot", "probabilities", "mse"])
def test_losses_match_numpy(kind: str, dtype: str) -> None:
    spec = MLPSpec((1, 6))
    _, targets = data(spec, 9, kind, dtype=dtype)
    z = np.random.default_rng(3).normal(scale=3, size=(9, 6)).astype(dtype)
    loss = "mse" if kind == "mse" else "softmax_cross_entropy"
    value = TF.losses.value(loss, z, targets)  # type: ignore[arg-type]
    grad = TF.losses.gradient(loss, z, targets)  # type: ignore[arg-type]
    assert isinstance(value, float) and grad.dtype == z.dtype and grad.shape == z.shape
    assert_close(value, NP.losses.value(loss, z, targets), "loss", dtype)  # type: ignore[arg-type]
    assert_close(grad, NP.losses.gradient(loss, z, targets),  # type: ignore[arg-type]
                 "loss_gradient", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_cross_entropy_is_stable_and_labels_equal_one_hot(dtype: str) -> None:
    z = np.array([[1e30, 0.0, -1e30], [0.0, 1e30, 1e30], [1.0, 2.0, 3.0]], dtype=dtype)
    labels = np.array([0, 2, 1])
    one_hot = np.eye(3, dtype=dtype)[labels]
    for targets in (labels, one_hot):
        value = TF.losses.value("softmax_cross_entropy", z, targets)
        grad = TF.losses.gradient("softmax_cross_entropy", z, targets)
        assert math.isfinite(value) and np.isfinite(grad).all()
        assert_close(value, NP.losses.value("softmax_cross_entropy", z, targets), "loss", dtype)
        assert_close(grad, NP.losses.gradient("softmax_cross_entropy", z, targets),
                     "loss_gradient", dtype)
    assert_close(TF.losses.value("softmax_cross_entropy", z, labels),
                 TF.losses.value("softmax_cross_entropy", z, one_hot), "loss", dtype)
    assert_close(TF.losses.gradient("softmax_cross_entropy", z, labels),
                 TF.losses.gradient("softmax_cross_entropy", z, one_hot), "loss_gradient", dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("regulariser", [L1(0.3), L2(0.7)])
def test_regularisers_match_numpy(regulariser: Any, dtype: str) -> None:
    rng = np.random.default_rng(2)
    weights = [rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=(3, 2)).astype(dtype)]
    weights[0][0, 0] = 0.0  # sign(0) = 0 for L1
    assert_close(TF.regularisers.value(regulariser, weights),
                 NP.regularisers.value(regulariser, weights), "regulariser", dtype)
    grads = TF.regularisers.gradient(regulariser, weights)
    for got, want in zip(grads, NP.regularisers.gradient(regulariser, weights), strict=True):
        assert got.dtype == want.dtype
        assert_close(got, want, "regulariser_gradient", dtype)
    assert grads[0][0, 0] == 0.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_modes(dtype: str) -> None:
    x = np.random.default_rng(0).normal(size=(64, 50)).astype(dtype)
    for rate in (0.0, 0.3, 1.0):
        assert np.array_equal(TF.dropout.apply(x, rate, training=False), x)  # eval: identity
    assert np.array_equal(TF.dropout.apply(x, 0.0, training=True), x)
    zeros = TF.dropout.apply(x, 1.0, training=True, keep_mask=np.ones(x.shape, bool))
    assert np.array_equal(zeros, np.zeros_like(x)) and not np.isnan(zeros).any()
    assert np.array_equal(TF.dropout.apply(x, 1.0, training=True), np.zeros_like(x))
    mask = portable_keep_mask(3, 7, 0, x.shape, 0.25)
    got = TF.dropout.apply(x, 0.25, training=True, keep_mask=mask)
    want = NP.dropout.apply(x, 0.25, training=True, keep_mask=mask)
    assert got.dtype == x.dtype
    assert_close(got, want, "dropout", dtype)
    np.testing.assert_array_equal(got != 0, mask)
    np.testing.assert_allclose(got[mask], x[mask] / 0.75, rtol=1e-6 if dtype == "float32"
                               else 1e-15)
    # native masks: the stateless RNG, reproducible by seed, keeping about 1 - p of the units
    big = np.ones((400, 500), dtype)
    native = TF.dropout.apply(big, 0.25, training=True, seed=1)
    assert np.array_equal(native, TF.dropout.apply(big, 0.25, training=True, seed=1))
    assert not np.array_equal(native, TF.dropout.apply(big, 0.25, training=True, seed=2))
    kept = native != 0
    assert abs(kept.mean() - 0.75) < 0.005
    np.testing.assert_allclose(native[kept], 1 / 0.75, rtol=1e-6)
    assert abs(float(native.mean()) - 1.0) < 0.01  # E[y] = x
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError):
            TF.dropout.apply(x, bad, training=True)


# ---------------------------------------------------------------------------------------------
# the model against the NumPy backend
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_matches_numpy(activation: str, dtype: str) -> None:
    spec = MLPSpec((6, 5, 4, 3), activation=activation, dropout=0.5)  # type: ignore[arg-type]
    ours, reference = pair(spec, dtype, weights_init=Normal(0.8), bias_init=Normal(0.5))
    x, _ = data(spec, 13, dtype=dtype)
    got = ours.predict(x)
    assert got.dtype == np.dtype(dtype) and got.shape == (13, 3)
    assert_close(got, reference.predict(x), "forward", dtype)
    assert np.array_equal(ours.predict(x), got)  # eval mode: no dropout


def test_forward_in_blocks_and_nan_rows() -> None:
    spec = MLPSpec((3, 4, 2), activation="tanh")
    ours, reference = pair(spec)
    x = np.random.default_rng(0).normal(size=(TensorflowModel.forward_rows + 5, 3))
    assert_close(ours.predict(x), reference.predict(x), "forward", "float64")
    x[2, 1] = np.nan
    out = ours.predict(x[:4])
    assert np.isnan(out[2]).all() and np.isfinite(np.delete(out, 2, axis=0)).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("activation", "kind", "dropout", "regs"), [
    ("sigmoid", "labels", 0.0, ()),
    ("relu", "one_hot", 0.4, (L2(0.1),)),
    ("tanh", "probabilities", 0.4, (L1(0.05), L2(0.1))),
    ("tanh", "mse", 0.0, (L1(0.05),)),
])
def test_loss_and_gradients_match_numpy(activation: str, kind: str, dropout: float,
                                        regs: tuple[Any, ...], dtype: str) -> None:
    spec = MLPSpec((6, 5, 4, 3), activation=activation, dropout=dropout)  # type: ignore[arg-type]
    ours, reference = pair(spec, dtype, weights_init=Normal(0.6), bias_init=Normal(0.2))
    x, targets = data(spec, 8, kind, seed=3, dtype=dtype)
    loss = "mse" if kind == "mse" else "softmax_cross_entropy"
    masks = None if dropout == 0 else [portable_keep_mask(5, 2, layer, (8, width), dropout)
                                       for layer, width in enumerate(spec.sizes[1:-1])]
    value, grads = ours.loss_and_gradients(x, targets, loss, regs, keep_masks=masks)
    want_value, want_grads = reference.loss_and_gradients(x, targets, loss, regs, keep_masks=masks)
    assert isinstance(value, float)
    assert_close(value, want_value, "loss", dtype)
    assert list(grads) == list(want_grads)
    for name, want in want_grads.items():
        assert grads[name].dtype == want.dtype
        assert_close(grads[name], want, "gradients", dtype, name)
        if dtype == "float64":  # what the brief promises: ~1e-10 relative
            np.testing.assert_allclose(grads[name], want, rtol=1e-10, atol=1e-13)
    if dtype == "float64":
        assert value == pytest.approx(want_value, rel=1e-12)


# ---------------------------------------------------------------------------------------------
# training against the NumPy backend
# ---------------------------------------------------------------------------------------------

def train_both(spec: MLPSpec, dtype: str, *, method: str, momentum: float = 0.0,
               compiled: bool = False, kind: str = "labels", n: int = 90, batch: int = 16,
               epochs: int = 3, regs: tuple[Any, ...] = (), steps_per_call: int | None = None,
               ) -> tuple[MLP, MLP, mlpcore.History, mlpcore.History, list[Any]]:
    ours, reference = pair(spec, dtype, weights_init=Normal(0.5))
    x, y = data(spec, n, kind, seed=8, dtype=dtype)
    loss = "mse" if kind == "mse" else "softmax_cross_entropy"
    trainers = capture_trainer(ours)
    common: dict[str, Any] = dict(loss=loss, optimizer=SGD(0.2, momentum=momentum),
                                  regulariser=regs, epochs=epochs, batch_size=batch, seed=13,
                                  validation=(x[:20], y[:20]))
    got = fit(ours, (x, y), method=method, compiled=compiled, steps_per_call=steps_per_call,
              **common)
    want = fit(reference, (x, y), **common)
    return ours, reference, got, want, trainers


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("method", ["autodiff", "optimizer"])
def test_training_matches_numpy(method: str, momentum: float) -> None:
    """90 rows at batch 16: five full batches and a partial one of 10 rows per epoch."""
    spec = MLPSpec((5, 8, 4), activation="sigmoid")
    for dtype in DTYPES:
        ours, reference, got, want, _ = train_both(spec, dtype, method=method, momentum=momentum)
        assert_close(got.loss, want.loss, "training", "float32")  # ~1e-3 relative
        assert got.train_accuracy == want.train_accuracy
        assert got.valid_accuracy == want.valid_accuracy
        if dtype == "float64":
            # the same updates in float64; Keras's momentum form only rounds differently
            tight = 1e-10
            np.testing.assert_allclose(got.loss, want.loss, rtol=tight)
            for name, value in reference.variables.items():
                np.testing.assert_allclose(ours.variables[name], value, rtol=tight, atol=tight)


@pytest.mark.parametrize("dtype", DTYPES)
def test_training_with_portable_dropout_regularisers_and_float_targets(dtype: str) -> None:
    spec = MLPSpec((5, 9, 7, 3), activation="relu", dropout=0.3)
    for kind, regs in (("labels", (L2(0.01),)), ("one_hot", (L1(0.01), L2(0.02))),
                       ("mse", ())):
        ours, reference, got, want, _ = train_both(spec, dtype, method="autodiff", kind=kind,
                                                   momentum=0.5, regs=regs, steps_per_call=4)
        assert_close(got.loss, want.loss, "training", dtype if dtype == "float64" else "float32")
        for name, value in reference.variables.items():
            assert_close(ours.variables[name], value, "forward", dtype, name)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("mode", ["eager", "graph", "xla"])
def test_apply_sgd_is_the_sgd_update_of_mlpcore_optimizers(dtype: str, mode: str) -> None:
    """The fused kernels compute w - lr g and v = mu v + g; w - lr v: bit for bit eagerly and in
    a graph, to rounding under XLA (which may contract a multiply-add)."""
    rng = np.random.default_rng(3)
    shapes = [(7, 5), (5,)]
    start = [rng.standard_normal(s).astype(dtype) for s in shapes]
    vel0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    lr, mu = np.asarray(0.1, dtype), np.asarray(0.9, dtype)
    tight = {"rtol": 0.0, "atol": 0.0} if mode != "xla" else {"rtol": 1e-6, "atol": 1e-6}
    for momentum in (False, True):
        weights = [tf.Variable(w) for w in start]
        velocities = [tf.Variable(v) for v in vel0] if momentum else []

        def step(g: list[tf.Tensor], weights: list[tf.Variable] = weights,
                 velocities: list[tf.Variable] = velocities) -> None:
            apply_sgd(weights, g, tf.constant(lr), velocities, tf.constant(mu))

        run = step if mode == "eager" else tf.function(step, jit_compile=mode == "xla")
        run([tf.constant(g) for g in grads])
        for i, (w, g) in enumerate(zip(start, grads, strict=True)):
            v = mu * vel0[i] + g if momentum else g
            np.testing.assert_allclose(weights[i].numpy(), w - lr * v, **tight)
            assert weights[i].dtype == dtype
            if momentum:
                np.testing.assert_allclose(velocities[i].numpy(), v, **tight)
    with pytest.raises(ValueError, match="velocities given without a momentum"):
        apply_sgd([tf.Variable(start[0])], [tf.constant(grads[0])], tf.constant(lr),
                  [tf.Variable(vel0[0])])


def test_keras_momentum_form_follows_the_same_trajectory() -> None:
    """Keras v <- μv - lr g; w <- w + v equals v <- μv + g; w <- w - lr v for constant lr."""
    spec = MLPSpec((4, 6, 3), activation="tanh")
    x, y = data(spec, 40, seed=2)
    models = []
    for method in ("autodiff", "optimizer"):
        model = MLP(spec, backend=TF, seed=4, dtype="float64")
        fit(model, (x, y), optimizer=SGD(0.1, momentum=0.9), epochs=4, batch_size=8,
            method=method)
        models.append(model.variables)
    for name in models[0]:
        np.testing.assert_allclose(models[1][name], models[0][name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("lr", [0.1, 0.3, 0.07])
def test_keras_sgd_continues_from_the_state_it_reports(lr: float, nesterov: bool,
                                                        dtype: str) -> None:
    """Keras's SGD slot is -lr·v; the v reported by optimizer_state() is where the trainer goes
    on from: after the read it runs as a trainer started from that state does, bit for bit."""
    spec = MLPSpec((5, 7, 3), activation="tanh")
    x, y = data(spec, 48, seed=3, dtype=dtype)
    config = TrainingConfig(loss="softmax_cross_entropy",
                            optimizer=SGD(lr, momentum=0.9, nesterov=nesterov), method="optimizer")
    order = np.arange(48, dtype=np.int64)
    first = MLP(spec, backend=TF, seed=4, dtype=dtype).native
    trainer = first.start_training(config, x, y)
    trainer.run(order, 8, 0)
    state = trainer.optimizer_state()
    second = TF.build(spec, first.read_variables(), dtype)
    resumed = second.start_training(config, x, y, state)
    np.testing.assert_array_equal(resumed.run(order, 8, 6), trainer.run(order, 8, 6))
    for name, value in first.read_variables().items():
        np.testing.assert_array_equal(second.read_variables()[name], value, err_msg=name)
    again = trainer.optimizer_state()
    for name, value in again.slots.items():
        np.testing.assert_array_equal(resumed.optimizer_state().slots[name], value, err_msg=name)


def test_compiled_xla_mode_trains_and_matches() -> None:
    spec = MLPSpec((5, 8, 4), activation="relu", dropout=0.25)
    for method in ("autodiff", "optimizer"):
        ours, reference, got, want, trainers = train_both(spec, "float64", method=method,
                                                          compiled=True, momentum=0.9)
        rtol, atol = 1e-10, 1e-12  # XLA may fuse and reorder, but only at rounding level
        np.testing.assert_allclose(got.loss, want.loss, rtol=rtol)
        for name, value in reference.variables.items():
            np.testing.assert_allclose(ours.variables[name], value, rtol=rtol, atol=atol)
        trainer = trainers[0]
        assert trainer.trace_count == 1
        assert trainer.shapes == {(5, 16), (1, 10)}  # one XLA compilation per shape
        assert trainer.compile_seconds > 0
    # float32, native dropout, compiled: trains (the loss falls) without NaN
    model = MLP(spec, backend=TF, seed=1)
    x, y = data(spec, 200, seed=1, dtype="float32")
    history = fit(model, (x, y), optimizer=SGD(0.2), epochs=4, batch_size=32,
                  dropout_mode="native", compiled=True)
    assert np.isfinite(history.loss).all() and history.loss[-1] < history.loss[0]


def test_native_masks_depend_on_seed_step_and_layer_not_on_chunking_in_both_modes() -> None:
    """Native masks are Philox draws in graph mode and Threefry draws in XLA mode, each a pure
    function of (seed, step, layer): the same run chunked differently takes the same steps."""
    spec = MLPSpec((6, 10, 8, 3), activation="relu", dropout=0.3)
    x, y = data(spec, 90, seed=3)
    losses = {}
    for compiled in (False, True):
        runs = []
        for chunk in (None, 2):
            model = MLP(spec, backend=TF, seed=2, dtype="float64")
            history = fit(model, (x, y), optimizer=SGD(0.1), epochs=2, batch_size=16,
                          dropout_mode="native", compiled=compiled, steps_per_call=chunk)
            runs.append((history.loss, model.variables))
        np.testing.assert_allclose(runs[1][0], runs[0][0], rtol=1e-12)
        for name, value in runs[0][1].items():
            np.testing.assert_allclose(runs[1][1][name], value, rtol=1e-12, atol=1e-14)
        losses[compiled] = runs[0][0]
    assert not np.allclose(losses[True], losses[False], rtol=1e-6)  # different algorithms


def test_native_mask_algorithm_follows_the_mode() -> None:
    """Threefry exists only in XLA (TensorFlow's CPU kernels refuse it), so both sides of the
    compiled case run in a jit-compiled function."""
    seed = native_seed(5, 7)
    for compiled, alg in ((False, "philox"), (True, "threefry")):
        def draw(c: bool = compiled, a: str = alg) -> tuple[tf.Tensor, tf.Tensor]:
            want = tf.random.stateless_uniform([4, 9], seed=seed, alg=a) >= np.float32(0.4)
            return native_keep_mask([4, 9], 0.4, seed, compiled=c), want

        got, want = tf.function(draw, jit_compile=compiled)()
        assert np.array_equal(got.numpy(), want.numpy())
        assert 0 < int(tf.reduce_sum(tf.cast(got, tf.int32))) < 36


def test_training_traces_once_whatever_the_epochs_and_chunks() -> None:
    spec = MLPSpec((5, 8, 4), activation="sigmoid", dropout=0.2)
    x, y = data(spec, 70, dtype="float32")
    for dropout_mode in ("portable", "native"):
        counts = []
        for epochs, chunk in ((1, None), (6, None), (6, 2), (3, 5)):
            model = MLP(spec, backend=TF, seed=0)
            trainers = capture_trainer(model)
            fit(model, (x, y), epochs=epochs, batch_size=16, steps_per_call=chunk,
                dropout_mode=dropout_mode)
            counts.append(trainers[0].trace_count)
            steps = math.ceil(70 / 16) * epochs
            assert trainers[0].calls >= steps / (chunk or 5)
        assert counts == [1, 1, 1, 1]
    # one trainer, many batch sizes and chunk lengths: still a single trace
    model = MLP(spec, backend=TF, seed=0, dtype="float64")
    trainer = model.native.start_training(
        TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(0.1), method="autodiff"),
        x.astype("float64"), y)
    assert isinstance(trainer, TensorflowTrainer)
    step = 0
    for batch in (16, 7, 70, 1, 33, 16):
        order = epoch_order(0, step, 70)
        losses = trainer.run(order, batch, step)
        assert losses.shape == (math.ceil(70 / batch),) and losses.dtype == np.float64
        step += len(losses)
    assert trainer.trace_count == 1


@pytest.mark.parametrize(("method", "compiled"),
                         [("autodiff", False), ("optimizer", False), ("autodiff", True)])
def test_a_fit_frees_its_trainer_and_input_copy_without_the_cyclic_collector(
        method: str, compiled: bool) -> None:
    """The trainer holds a TensorFlow copy of the training inputs (as large as the dataset); it
    must go when ``fit`` returns, not when Python's cyclic collector next runs."""
    spec = MLPSpec((5, 8, 4), activation="relu", dropout=0.5)
    x, y = data(spec, 40, dtype="float32")
    model = MLP(spec, backend=TF, seed=0)
    start_training = model.native.start_training
    refs: list[weakref.ref[Any]] = []

    def spy(*args: Any) -> Any:
        trainer = start_training(*args)
        refs.extend([weakref.ref(trainer), weakref.ref(trainer._x), weakref.ref(trainer._targets)])
        return trainer

    model.native.start_training = spy  # type: ignore[method-assign]
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        fit(model, (x, y), epochs=2, batch_size=16, method=method, compiled=compiled,
            dropout_mode="native")
        assert len(refs) == 3
        assert [ref() is None for ref in refs] == [True, True, True]
    finally:
        if was_enabled:
            gc.enable()


def test_assign_during_training_is_seen_by_the_trainer() -> None:
    spec = MLPSpec((3, 2))
    ours, reference = pair(spec)
    x, y = data(spec, 4)
    config = TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(0.1), method="autodiff")
    trainer = ours.native.start_training(config, x, y)
    new = {"dense_0/weights": np.full((3, 2), 0.25), "dense_0/bias": np.array([0.1, -0.1])}
    ours.assign(new)
    reference.assign(new)
    trainer.run(np.arange(4, dtype=np.int64), 4, 0)
    reference.native.start_training(
        TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(0.1)), x, y
    ).run(np.arange(4, dtype=np.int64), 4, 0)
    for name, value in reference.variables.items():
        np.testing.assert_allclose(ours.variables[name], value, rtol=1e-12)


def test_native_dropout_is_reproducible_and_independent_of_chunking() -> None:
    spec = MLPSpec((5, 16, 3), activation="relu", dropout=0.5)
    x, y = data(spec, 50, dtype="float32")
    runs = {}
    for key, seed, chunk in (("a", 1, None), ("b", 1, 3), ("c", 2, None)):
        model = MLP(spec, backend=TF, seed=0)
        history = fit(model, (x, y), epochs=2, batch_size=8, dropout_mode="native",
                      seed=seed, steps_per_call=chunk)
        runs[key] = (history.loss, model.variables["dense_0/weights"])
    assert runs["a"][0] == runs["b"][0]
    assert runs["a"][1].tobytes() == runs["b"][1].tobytes()
    assert runs["a"][0] != runs["c"][0]
    # and it is not eval mode: without dropout the run differs
    model = MLP(MLPSpec((5, 16, 3), activation="relu"), backend=TF, seed=0)
    assert fit(model, (x, y), epochs=2, batch_size=8, seed=1).loss != runs["a"][0]


# ---------------------------------------------------------------------------------------------
# checkpoints and bad input
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("source", "target"), [("tensorflow", "numpy"),
                                                ("numpy", "tensorflow")])
def test_checkpoint_round_trip(tmp_path: Path, source: str, target: str) -> None:
    spec = MLPSpec((6, 5, 3), activation="tanh")
    model = MLP(spec, backend=source, seed=3)
    x, y = data(spec, 30, dtype="float32")
    fit(model, (x, y), epochs=1, batch_size=8)
    path = mlpcore.save(model, tmp_path / "m.safetensors")
    loaded = mlpcore.load(path, backend=target)
    assert loaded.backend.name == target
    for name, value in model.variables.items():
        assert loaded.variables[name].tobytes() == value.tobytes()
    assert_close(loaded.predict(x), model.predict(x), "forward", "float32")
    assert np.array_equal(loaded.predict_classes(x), model.predict_classes(x))


def test_bad_input_raises_invalid_input_error() -> None:
    spec = MLPSpec((4, 3, 3))
    model = MLP(spec, backend=TF)
    x, y = data(spec, 6, dtype="float32")
    cases = [
        (np.zeros((6, 5), np.float32), y, "width"),
        (np.zeros((6, 4), np.int32), y, "floating"),
        (x, np.array([0, 1, 2, 3, 0, 1]), r"\[0, 3\)"),
        (x, np.array([0, 1, -1, 2, 0, 1]), r"\[0, 3\)"),
        (np.zeros((0, 4), np.float32), np.zeros(0, np.int64), "empty"),
    ]
    for inputs, labels, match in cases:
        with pytest.raises(InvalidInputError, match=match):
            fit(model, (inputs, labels), epochs=1)
        with pytest.raises(InvalidInputError, match=match):
            model.evaluate(inputs, labels)
        with pytest.raises(InvalidInputError, match=match):
            model.loss_and_gradients(inputs, labels)
        numpy_model = MLP(spec, backend="numpy")
        with pytest.raises(InvalidInputError, match=match):
            numpy_model.evaluate(inputs, labels)
    with pytest.raises(InvalidInputError):
        model.predict(np.zeros((2, 5), np.float32))
    with pytest.raises(ValueError, match="method"):
        fit(model, (x, y), method="by-hand")
