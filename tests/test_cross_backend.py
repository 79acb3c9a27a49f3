"""Every installed backend against the NumPy backend, and checkpoints between every pair.

Backends are the installed ones (``mlpcore.list_backends()``), so CI, which installs torch and
TensorFlow, runs the full matrix. Tolerances come from the shipped table
(``mlpcore_conformance/tolerances.toml``).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore.dropout import portable_keep_mask
from mlpcore_conformance.tolerances import assert_close

BACKENDS = mlpcore.list_backends()
OTHERS = [name for name in BACKENDS if name != "numpy"]
PAIRS = list(itertools.permutations(BACKENDS, 2))
DTYPES = ["float32", "float64"]
SPEC = mlpcore.MLPSpec((12, 9, 7, 4), activation="tanh", dropout=0.25)


def problem(dtype: str, n: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, SPEC.n_inputs)).astype(dtype), rng.integers(0, 4, n)


def models(backend: str, dtype: str, spec: mlpcore.MLPSpec = SPEC
           ) -> tuple[mlpcore.MLP, mlpcore.MLP]:
    return (mlpcore.MLP(spec, backend=backend, seed=5, dtype=dtype),
            mlpcore.MLP(spec, backend="numpy", seed=5, dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_initial_variables_are_bit_identical(backend: str, dtype: str) -> None:
    ours, reference = models(backend, dtype)
    for name, value in reference.variables.items():
        got = ours.variables[name]
        assert got.dtype == value.dtype and got.shape == value.shape, name
        assert np.array_equal(got, value), f"{backend} {name} differs from numpy"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("backend", OTHERS)
def test_forward_agrees_with_numpy(backend: str, activation: str, dtype: str) -> None:
    spec = mlpcore.MLPSpec((12, 9, 7, 4), activation=activation)
    ours, reference = models(backend, dtype, spec)
    x, _ = problem(dtype)
    assert_close(ours.predict(x), reference.predict(x), "forward", dtype,
                 f"{backend} vs numpy, {activation}")


@pytest.mark.parametrize("loss", ["softmax_cross_entropy", "mse"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", OTHERS)
def test_autodiff_gradients_match_handwritten_backprop(backend: str, dtype: str,
                                                       loss: str) -> None:
    ours, reference = models(backend, dtype)
    x, labels = problem(dtype)
    targets = labels if loss == "softmax_cross_entropy" else np.eye(4, dtype=dtype)[labels]
    masks = [portable_keep_mask(3, 0, layer, (len(x), width), SPEC.dropout)
             for layer, width in enumerate(SPEC.sizes[1:-1])]
    regularisers = (mlpcore.L2(0.01), mlpcore.L1(0.001))
    got_loss, got = ours.loss_and_gradients(x, targets, loss, regularisers, masks)
    want_loss, want = reference.loss_and_gradients(x, targets, loss, regularisers, masks)
    assert_close(got_loss, want_loss, "loss", dtype, f"{backend} vs numpy, {loss}")
    assert set(got) == set(want)
    for name in want:
        assert_close(got[name], want[name], "gradients", dtype, f"{backend} {name}, {loss}")


@pytest.mark.parametrize("dropout_mode", ["portable"])
@pytest.mark.parametrize("backend", OTHERS)
def test_training_follows_numpy_epoch_by_epoch(backend: str, dropout_mode: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((300, SPEC.n_inputs)).astype(np.float32)
    y = (x[:, :4].argmax(axis=1)).astype(np.int64)
    histories = {}
    for name in (backend, "numpy"):
        model = mlpcore.MLP(SPEC, backend=name, seed=9)
        histories[name] = mlpcore.fit(model, (x, y), epochs=3, batch_size=32,
                                      optimizer=mlpcore.SGD(0.1, momentum=0.5),
                                      regulariser=mlpcore.L2(1e-3), dropout_mode=dropout_mode,
                                      validation=(x[:50], y[:50]))
    assert_close(histories[backend].loss, histories["numpy"].loss, "training", "float32",
                 f"{backend} vs numpy per-epoch loss")


@pytest.mark.parametrize(("saver", "loader"), PAIRS)
def test_checkpoint_saved_by_one_backend_loads_in_another(tmp_path: Path, saver: str,
                                                          loader: str) -> None:
    x, y = problem("float32", n=64)
    model = mlpcore.MLP(SPEC, backend=saver, seed=2)
    mlpcore.fit(model, (x, y), epochs=2, batch_size=16, train_accuracy=False)
    path = mlpcore.save(model, tmp_path / f"{saver}.safetensors")
    assert mlpcore.read_checkpoint(path).backend == saver
    loaded = mlpcore.load(path, backend=loader)
    assert loaded.backend.name == loader
    for name, value in model.variables.items():
        assert np.array_equal(loaded.variables[name], value), name
    assert_close(loaded.predict(x), model.predict(x), "forward", "float32",
                 f"saved by {saver}, loaded by {loader}")


BAD_INPUTS = {
    "wrong width": (np.zeros((3, 5), np.float32), np.array([0, 1, 2])),
    "integer inputs": (np.zeros((3, 12), np.int64), np.array([0, 1, 2])),
    "label out of range": (np.zeros((3, 12), np.float32), np.array([0, 1, 4])),
    "negative label": (np.zeros((3, 12), np.float32), np.array([0, -1, 2])),
    "empty batch": (np.zeros((0, 12), np.float32), np.array([], np.int64)),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_input_raises_the_same_error_everywhere(backend: str, case: str) -> None:
    x, y = BAD_INPUTS[case]
    model = mlpcore.MLP(SPEC, backend=backend)
    messages = []
    for call in (lambda: model.evaluate(x, y), lambda: mlpcore.fit(model, (x, y), epochs=1)):
        with pytest.raises(mlpcore.InvalidInputError) as error:
            call()
        messages.append(str(error.value))
    reference = mlpcore.MLP(SPEC, backend="numpy")
    with pytest.raises(mlpcore.InvalidInputError) as expected:
        reference.evaluate(x, y)
    assert messages[0] == str(expected.value)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nan_rows_give_nan_outputs_only_in_that_row(backend: str) -> None:
    model = mlpcore.MLP(SPEC, backend=backend)
    x, y = problem("float32", n=4)
    x[2, 3] = np.nan
    outputs = model.predict(x)
    assert np.isnan(outputs[2]).all()
    assert np.isfinite(np.delete(outputs, 2, axis=0)).all()
    with pytest.raises(mlpcore.InvalidInputError, match="row 2"):
        model.evaluate(x, y)
