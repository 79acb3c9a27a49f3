"""The NumPy backend's model against a naive float64 reference written out in full here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from mlpcore import L1, L2, MLP, SGD, MLPSpec, Normal, fit
from mlpcore.backend import TrainingConfig
from mlpcore.dropout import portable_keep_mask
from mlpcore.random import Purpose, stream
from mlpcore_numpy.backend import NumpyModel

FORWARD_ROWS = NumpyModel.forward_rows

ACTIVATIONS = ("relu", "sigmoid", "tanh")
Variables = dict[str, np.ndarray]


# ---------------------------------------------------------------------------------------------
# naive float64 reference: plain NumPy, every formula written out
# ---------------------------------------------------------------------------------------------

def act(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return np.where(z > 0, z, 0.0)
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    return np.tanh(z)


def act_prime(name: str, z: np.ndarray) -> np.ndarray:
    if name == "relu":
        return (z > 0).astype(np.float64)
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        return s * (1.0 - s)
    return 1.0 - np.tanh(z) ** 2


def as_targets(targets: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[targets] if targets.ndim == 1 else targets.astype(np.float64)


def naive_forward(spec: MLPSpec, v: Variables, x: np.ndarray, masks: list[np.ndarray] | None = None,
                  ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Return (layer inputs a_0..a_{L-1}, pre-activations z_0..z_{L-1}); z_{L-1} are logits."""
    a = [np.asarray(x, np.float64)]
    zs = []
    for i in range(spec.n_layers):
        z = a[-1] @ v[f"dense_{i}/weights"] + v[f"dense_{i}/bias"]
        zs.append(z)
        if i < spec.n_layers - 1:
            h = act(spec.activation, z)
            if masks is not None:
                h = h * masks[i] / (1.0 - spec.dropout) if spec.dropout < 1 else h * 0.0
            a.append(h)
    return a, zs


def naive_penalty(spec: MLPSpec, v: Variables, regularisers: tuple[Any, ...]) -> float:
    total = 0.0
    for r in regularisers:
        for name in spec.weight_names():
            w = v[name]
            total += r.strength * (np.sum(w * w) / 2 if r.kind == "l2" else np.sum(np.abs(w)))
    return float(total)


def naive_objective(spec: MLPSpec, v: Variables, x: np.ndarray, targets: np.ndarray, loss: str,
                    regularisers: tuple[Any, ...] = (),
                    masks: list[np.ndarray] | None = None) -> float:
    _, zs = naive_forward(spec, v, x, masks)
    logits = zs[-1]
    t = as_targets(targets, spec.n_outputs)
    if loss == "mse":
        value = np.mean((logits - t) ** 2)
    else:
        log_softmax = logits - np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
        value = -np.mean(np.sum(t * log_softmax, axis=1))
    return float(value) + naive_penalty(spec, v, regularisers)


def naive_gradients(spec: MLPSpec, v: Variables, x: np.ndarray, targets: np.ndarray, loss: str,
                    regularisers: tuple[Any, ...] = (),
                    masks: list[np.ndarray] | None = None) -> tuple[float, Variables]:
    """Hand-written backpropagation of the objective."""
    a, zs = naive_forward(spec, v, x, masks)
    logits = zs[-1]
    n, k = logits.shape
    t = as_targets(targets, k)
    if loss == "mse":
        delta = 2.0 * (logits - t) / (n * k)
    else:
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        softmax = e / e.sum(axis=1, keepdims=True)
        delta = (softmax * t.sum(axis=1, keepdims=True) - t) / n
    grads: Variables = {}
    for i in reversed(range(spec.n_layers)):
        grads[f"dense_{i}/weights"] = a[i].T @ delta
        grads[f"dense_{i}/bias"] = delta.sum(axis=0)
        for r in regularisers:
            w = v[f"dense_{i}/weights"]
            grads[f"dense_{i}/weights"] = grads[f"dense_{i}/weights"] + (
                r.strength * w if r.kind == "l2" else r.strength * np.sign(w))
        if i > 0:
            upstream = delta @ v[f"dense_{i}/weights"].T
            if masks is not None:
                upstream = upstream * masks[i - 1] / (1.0 - spec.dropout)
            delta = upstream * act_prime(spec.activation, zs[i - 1])
    return naive_objective(spec, v, x, targets, loss, regularisers, masks), grads


def naive_sgd(spec: MLPSpec, v: Variables, x: np.ndarray, targets: np.ndarray, loss: str,
              lr: float, momentum: float, regularisers: tuple[Any, ...], seed: int,
              batches: list[tuple[np.ndarray, int]],
              velocity: Variables | None = None) -> tuple[Variables, list[float], Variables]:
    """Plain SGD over ``batches`` = [(rows, step number)]: v <- μ v + g; w <- w - lr v."""
    params = {name: value.astype(np.float64) for name, value in v.items()}
    velocity = {name: np.zeros_like(p) for name, p in params.items()} if velocity is None \
        else velocity
    losses = []
    for rows, step in batches:
        masks = None
        if spec.dropout > 0:
            masks = [portable_keep_mask(seed, step, layer, (len(rows), width), spec.dropout)
                     for layer, width in enumerate(spec.sizes[1:-1])]
        value, grads = naive_gradients(spec, params, x[rows], targets[rows], loss, regularisers,
                                       masks)
        losses.append(value)
        for name in params:
            velocity[name] = momentum * velocity[name] + grads[name]
            params[name] = params[name] - lr * velocity[name]
    return params, losses, velocity


def epoch_batches(seed: int, epochs: int, n: int, batch_size: int) -> list[tuple[np.ndarray, int]]:
    """The rows and step number of every step of ``fit``; epoch e shuffles by (seed, SHUFFLE, e)."""
    batches = []
    step = 0
    for epoch in range(epochs):
        order = stream(seed, Purpose.SHUFFLE, epoch).permutation(n)
        for start in range(0, n, batch_size):
            batches.append((order[start:start + batch_size], step))
            step += 1
    return batches


# ---------------------------------------------------------------------------------------------


def make_data(spec: MLPSpec, n: int, loss: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, spec.n_inputs))
    labels = rng.integers(0, spec.n_outputs, size=n)
    if loss == "softmax_cross_entropy_labels":
        return x, labels
    if loss == "softmax_cross_entropy_one_hot":
        return x, np.eye(spec.n_outputs)[labels]
    return x, rng.normal(size=(n, spec.n_outputs))


def test_the_naive_reference_is_right() -> None:
    """Guard the reference itself: its gradient matches finite differences of its objective."""
    spec = MLPSpec(sizes=(3, 4, 2), activation="tanh", dropout=0.5)
    model = MLP(spec, seed=1, dtype="float64", weights_init=Normal(0.7), bias_init=Normal(0.3))
    v = model.variables
    x, y = make_data(spec, 5, "softmax_cross_entropy_labels")
    masks = [portable_keep_mask(0, 0, 0, (5, 4), 0.5)]
    regs = (L1(0.1), L2(0.2))
    _, grads = naive_gradients(spec, v, x, y, "softmax_cross_entropy", regs, masks)
    for name, value in v.items():
        for index in np.ndindex(value.shape):
            plus = {k: w.copy() for k, w in v.items()}
            minus = {k: w.copy() for k, w in v.items()}
            plus[name][index] += 1e-6
            minus[name][index] -= 1e-6
            numeric = (naive_objective(spec, plus, x, y, "softmax_cross_entropy", regs, masks)
                       - naive_objective(spec, minus, x, y, "softmax_cross_entropy", regs, masks)
                       ) / 2e-6
            assert grads[name][index] == pytest.approx(numeric, rel=1e-6, abs=1e-9)


@pytest.mark.parametrize("sizes", [(5, 4, 3), (6, 5, 4, 3)])
@pytest.mark.parametrize("target_kind", ["softmax_cross_entropy_labels",
                                         "softmax_cross_entropy_one_hot", "mse"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dropout", [0.0, 0.4])
@pytest.mark.parametrize("regularised", [False, True])
def test_gradients_match_finite_differences(sizes: tuple[int, ...], target_kind: str,
                                            activation: str, dropout: float,
                                            regularised: bool) -> None:
    spec = MLPSpec(sizes=sizes, activation=activation, dropout=dropout)  # type: ignore[arg-type]
    model = MLP(spec, seed=7, dtype="float64", weights_init=Normal(0.6), bias_init=Normal(0.2))
    loss = "mse" if target_kind == "mse" else "softmax_cross_entropy"
    n = 6
    x, targets = make_data(spec, n, target_kind, seed=3)
    masks = None
    if dropout > 0:
        masks = [portable_keep_mask(5, 2, layer, (n, width), dropout)
                 for layer, width in enumerate(sizes[1:-1])]
    regs = (L1(0.05), L2(0.1)) if regularised else ()
    value, grads = model.loss_and_gradients(x, targets, loss, regs, keep_masks=masks)
    v = model.variables
    assert isinstance(value, float)
    assert value == pytest.approx(naive_objective(spec, v, x, targets, loss, regs, masks),
                                  rel=1e-12)
    assert list(grads) == list(spec.variable_shapes())
    h = 1e-6
    for name, w in v.items():
        assert grads[name].shape == w.shape and grads[name].dtype == np.float64
        numeric = np.zeros_like(w)
        for index in np.ndindex(w.shape):
            plus = {k: a.copy() for k, a in v.items()}
            minus = {k: a.copy() for k, a in v.items()}
            plus[name][index] += h
            minus[name][index] -= h
            numeric[index] = (naive_objective(spec, plus, x, targets, loss, regs, masks)
                              - naive_objective(spec, minus, x, targets, loss, regs, masks)
                              ) / (2 * h)
        np.testing.assert_allclose(grads[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)
    # and against the hand-written reference backpropagation, far more tightly
    _, expected = naive_gradients(spec, v, x, targets, loss, regs, masks)
    for name in v:
        np.testing.assert_allclose(grads[name], expected[name], rtol=1e-10, atol=1e-13,
                                   err_msg=name)
    # the model's variables are untouched by a gradient evaluation
    for name, w in model.variables.items():
        np.testing.assert_array_equal(w, v[name])


def test_keep_masks_change_the_gradient() -> None:
    spec = MLPSpec(sizes=(5, 4, 3), activation="sigmoid", dropout=0.5)
    model = MLP(spec, seed=2, dtype="float64")
    x, y = make_data(spec, 8, "softmax_cross_entropy_labels")
    masks = [portable_keep_mask(1, 0, 0, (8, 4), 0.5)]
    eval_value, eval_grads = model.loss_and_gradients(x, y)
    train_value, train_grads = model.loss_and_gradients(x, y, keep_masks=masks)
    assert eval_value != train_value
    assert not np.array_equal(eval_grads["dense_0/weights"], train_grads["dense_0/weights"])


@pytest.mark.parametrize("sizes", [(5, 4, 3), (6, 5, 4, 3), (3, 2)])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_equals_naive_forward(sizes: tuple[int, ...], activation: str) -> None:
    spec = MLPSpec(sizes=sizes, activation=activation, dropout=0.5)  # type: ignore[arg-type]
    x = np.random.default_rng(4).normal(size=(9, sizes[0]))
    model64 = MLP(spec, seed=11, dtype="float64", weights_init=Normal(0.8), bias_init=Normal(0.5))
    expected = naive_forward(spec, model64.variables, x)[1][-1]
    got = model64.predict(x)
    assert got.dtype == np.float64 and got.shape == (9, sizes[-1])
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)
    # eval mode ignores dropout: predict twice gives the same outputs
    np.testing.assert_array_equal(model64.predict(x), got)
    model32 = MLP(spec, seed=11, weights_init=Normal(0.8), bias_init=Normal(0.5))
    v32 = {k: w.astype(np.float64) for k, w in model32.variables.items()}
    got32 = model32.predict(x.astype(np.float32))
    assert got32.dtype == np.float32
    np.testing.assert_allclose(got32, naive_forward(spec, v32, x.astype(np.float32))[1][-1],
                               rtol=1e-5, atol=1e-5)


def test_forward_on_more_rows_than_one_block() -> None:
    spec = MLPSpec(sizes=(3, 4, 2), activation="tanh")
    model = MLP(spec, seed=1, dtype="float64", weights_init=Normal(0.5))
    x = np.random.default_rng(0).normal(size=(2 * FORWARD_ROWS + 3, 3))
    expected = naive_forward(spec, model.variables, x)[1][-1]
    np.testing.assert_allclose(model.predict(x), expected, rtol=1e-12, atol=1e-14)


def test_float32_is_the_default_dtype(numpy_backend) -> None:
    spec = MLPSpec(sizes=(5, 4, 3))
    model = MLP(spec, backend=numpy_backend)
    assert model.dtype == "float32"
    assert all(v.dtype == np.float32 for v in model.variables.values())
    x, y = make_data(spec, 4, "softmax_cross_entropy_labels")
    assert model.predict(x).dtype == np.float32  # float64 inputs are cast
    value, grads = model.loss_and_gradients(x, y)
    assert isinstance(value, float)
    assert all(g.dtype == np.float32 for g in grads.values())


def test_float64_is_supported() -> None:
    spec = MLPSpec(sizes=(5, 4, 3))
    model = MLP(spec, dtype="float64")
    assert model.backend.name == "numpy"
    assert "float64" in model.backend.capabilities
    assert all(v.dtype == np.float64 for v in model.variables.values())
    x, _ = make_data(spec, 4, "mse")
    assert model.predict(x.astype(np.float32)).dtype == np.float64


@pytest.mark.parametrize("dtype", ["float16", "int32", "float", None])
def test_unsupported_dtype_raises(dtype: object) -> None:
    with pytest.raises(ValueError, match="dtype"):
        MLP(MLPSpec(sizes=(2, 1)), dtype=dtype)  # type: ignore[arg-type]


@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize(("loss", "target_kind", "dropout", "regs"), [
    ("softmax_cross_entropy", "softmax_cross_entropy_labels", 0.0, ()),
    ("softmax_cross_entropy", "softmax_cross_entropy_one_hot", 0.3, (L2(0.01),)),
    ("mse", "mse", 0.0, (L1(0.01), L2(0.02))),
])
def test_fit_follows_naive_sgd(momentum: float, loss: str, target_kind: str, dropout: float,
                               regs: tuple[Any, ...]) -> None:
    spec = MLPSpec(sizes=(4, 5, 3), activation="sigmoid", dropout=dropout)
    model = MLP(spec, seed=6, dtype="float64", weights_init=Normal(0.5))
    start = model.variables
    n, batch_size, epochs, lr, seed = 11, 4, 3, 0.2, 13  # 11 rows: the last batch has 3
    x, targets = make_data(spec, n, target_kind, seed=8)
    history = fit(model, (x, targets), loss=loss, optimizer=SGD(lr=lr, momentum=momentum),
                  regulariser=regs, epochs=epochs, batch_size=batch_size, seed=seed)
    batches = epoch_batches(seed, epochs, n, batch_size)
    assert [len(rows) for rows, _ in batches[:3]] == [4, 4, 3]
    expected, losses, _ = naive_sgd(spec, start, x, targets, loss, lr, momentum, regs, seed,
                                    batches)
    for name, value in model.variables.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-10, atol=1e-12, err_msg=name)
        assert not np.allclose(value, start[name])
    steps = math.ceil(n / batch_size)
    expected_epoch_losses = [float(np.mean(losses[e * steps:(e + 1) * steps]))
                             for e in range(epochs)]
    np.testing.assert_allclose(history.loss, expected_epoch_losses, rtol=1e-10)


def test_last_partial_batch_is_trained_on() -> None:
    spec = MLPSpec(sizes=(3, 2))
    x, y = make_data(spec, 5, "softmax_cross_entropy_labels", seed=2)
    # batch_size larger than the data: one step on a partial batch of all 5 rows
    model = MLP(spec, seed=0, dtype="float64")
    start = model.variables
    fit(model, (x, y), optimizer=SGD(lr=0.5), epochs=1, batch_size=8, train_accuracy=False)
    order = stream(0, Purpose.SHUFFLE, 0).permutation(5)
    expected, _, _ = naive_sgd(spec, start, x, y, "softmax_cross_entropy", 0.5, 0.0, (), 0,
                               [(order, 0)])
    for name, value in model.variables.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-12, atol=1e-14)


def test_trainer_accepts_a_different_batch_size_on_each_call() -> None:
    """Trainer.run takes batch_size per call; the buffers must follow it both ways."""
    spec = MLPSpec(sizes=(4, 5, 3), activation="relu")
    model = MLP(spec, seed=3, dtype="float64", weights_init=Normal(0.5))
    start = model.variables
    x, y = make_data(spec, 9, "softmax_cross_entropy_labels")
    config = TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(lr=0.1, momentum=0.5))
    trainer = model.native.start_training(config, x, y)
    order = np.arange(9, dtype=np.int64)
    calls = [(4, 0), (2, 3), (4, 8), (9, 11)]
    batches = []
    for batch_size, first_step in calls:
        losses = trainer.run(order, batch_size, first_step)
        assert losses.shape == (math.ceil(9 / batch_size),) and losses.dtype == np.float64
        batches += [(order[s:s + batch_size], first_step + j)
                    for j, s in enumerate(range(0, 9, batch_size))]
    expected, _, _ = naive_sgd(spec, start, x, y, "softmax_cross_entropy", 0.1, 0.5, (), 0,
                               batches)
    for name, value in model.variables.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("bad", [-1, 9])
def test_trainer_refuses_an_order_outside_the_rows_and_changes_nothing(bad: int) -> None:
    """Rows are gathered with mode="clip" (no per-step copy), so the chunk is checked first."""
    spec = MLPSpec(sizes=(4, 3))
    model = MLP(spec, seed=0, dtype="float64")
    x, y = make_data(spec, 9, "softmax_cross_entropy_labels")
    trainer = model.native.start_training(
        TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(lr=0.1)), x, y)
    before = model.variables
    order = np.arange(9, dtype=np.int64)
    order[5] = bad
    with pytest.raises(IndexError, match=r"outside 0\.\.8"):
        trainer.run(order, 4, 0)
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])


def test_assign_during_training_is_seen_by_the_trainer() -> None:
    spec = MLPSpec(sizes=(3, 2))
    model = MLP(spec, seed=0, dtype="float64")
    x, y = make_data(spec, 4, "softmax_cross_entropy_labels")
    trainer = model.native.start_training(
        TrainingConfig(loss="softmax_cross_entropy", optimizer=SGD(lr=0.1)), x, y)
    new = {"dense_0/weights": np.full((3, 2), 0.25), "dense_0/bias": np.array([0.1, -0.1])}
    model.assign(new)
    trainer.run(np.arange(4, dtype=np.int64), 4, 0)
    expected, _, _ = naive_sgd(spec, new, x, y, "softmax_cross_entropy", 0.1, 0.0, (), 0,
                               [(np.arange(4), 0)])
    for name, value in model.variables.items():
        np.testing.assert_allclose(value, expected[name], rtol=1e-12)


@pytest.mark.parametrize("dropout_mode", ["portable", "native"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_is_reproducible_for_the_same_seed(dropout_mode: str, dtype: str) -> None:
    spec = MLPSpec(sizes=(4, 6, 3), activation="relu", dropout=0.25)
    x, y = make_data(spec, 20, "softmax_cross_entropy_labels", seed=5)
    runs = []
    for _ in range(2):
        model = MLP(spec, seed=21, dtype=dtype)
        history = fit(model, (x, y), optimizer=SGD(0.3, momentum=0.9), epochs=2, batch_size=6,
                      dropout_mode=dropout_mode)  # type: ignore[arg-type]
        runs.append((history.loss, model.variables))
    assert runs[0][0] == runs[1][0]
    for name in runs[0][1]:
        assert runs[0][1][name].tobytes() == runs[1][1][name].tobytes()
    other = MLP(spec, seed=22, dtype=dtype)
    fit(other, (x, y), optimizer=SGD(0.3, momentum=0.9), epochs=2, batch_size=6,
        dropout_mode=dropout_mode)  # type: ignore[arg-type]
    assert not np.array_equal(other.variables["dense_0/weights"], runs[0][1]["dense_0/weights"])


def test_native_dropout_trains() -> None:
    spec = MLPSpec(sizes=(2, 16, 2), activation="relu", dropout=0.2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2))
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = MLP(spec, seed=1, weights_init=Normal(0.5))
    portable = MLP(spec, seed=1, weights_init=Normal(0.5))
    history = fit(model, (x, y), optimizer=SGD(0.5), epochs=15, batch_size=16,
                  dropout_mode="native")
    fit(portable, (x, y), optimizer=SGD(0.5), epochs=15, batch_size=16)
    assert all(math.isfinite(v) for v in history.loss)
    assert history.loss[-1] < 0.6 * history.loss[0]
    assert model.evaluate(x, y).accuracy > 0.85
    # native masks are not the portable ones, so the runs differ
    assert not np.array_equal(model.variables["dense_0/weights"],
                              portable.variables["dense_0/weights"])
