"""What a model keeps: its loss, state_dict / load_state_dict, to(backend), the fit method."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore import MLP, MLPSpec

SPEC = MLPSpec((5, 7, 3), activation="tanh")
BACKENDS = mlpcore.list_backends()


def data(n: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)).astype(np.float32), rng.integers(0, 3, n)


def same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(
        a[k].dtype == b[k].dtype and np.array_equal(a[k], b[k]) for k in a)


def test_state_dict_is_a_copy_and_variables_its_alias() -> None:
    model = MLP(SPEC, seed=1)
    state = model.state_dict()
    assert same(state, model.variables)
    state["dense_0/bias"][:] = 9.0
    assert not np.any(model.state_dict()["dense_0/bias"] == 9.0)


def test_load_state_dict_strict_replaces_everything_and_assign_is_its_alias() -> None:
    model, other = MLP(SPEC, seed=1), MLP(SPEC, seed=2)
    result = model.load_state_dict(other.state_dict())
    assert result == mlpcore.model.IncompatibleKeys([], [])
    assert same(model.state_dict(), other.state_dict())
    model.assign(MLP(SPEC, seed=3).state_dict())
    assert same(model.state_dict(), MLP(SPEC, seed=3).state_dict())


def test_load_state_dict_strict_refuses_missing_and_unexpected_names_and_assigns_nothing() -> None:
    model = MLP(SPEC, seed=1)
    before = model.state_dict()
    values = MLP(SPEC, seed=2).state_dict()
    del values["dense_1/bias"]
    values["dense_9/weights"] = np.zeros((2, 2), np.float32)
    with pytest.raises(ValueError, match=r"missing variable 'dense_1/bias'.*unexpected variable "
                                         r"'dense_9/weights'"):
        model.load_state_dict(values)
    assert same(model.state_dict(), before)


def test_load_state_dict_not_strict_keeps_missing_and_ignores_unexpected() -> None:
    model, donor = MLP(SPEC, seed=1), MLP(SPEC, seed=2).state_dict()
    before = model.state_dict()
    result = model.load_state_dict({"dense_0/weights": donor["dense_0/weights"],
                                    "head/weights": np.ones(3)}, strict=False)
    assert result.missing_keys == ["dense_0/bias", "dense_1/weights", "dense_1/bias"]
    assert result.unexpected_keys == ["head/weights"]
    after = model.state_dict()
    assert np.array_equal(after["dense_0/weights"], donor["dense_0/weights"])
    assert all(np.array_equal(after[k], before[k]) for k in result.missing_keys)


@pytest.mark.parametrize("bad", [np.zeros((5, 8), np.float32), np.array([["a"] * 7] * 5)])
def test_load_state_dict_not_strict_still_refuses_wrong_shapes_and_dtypes(bad: np.ndarray) -> None:
    model = MLP(SPEC, seed=1)
    before = model.state_dict()
    with pytest.raises(ValueError, match="dense_0/weights"):
        model.load_state_dict({"dense_0/weights": bad}, strict=False)
    assert same(model.state_dict(), before)


def test_the_model_keeps_its_loss_and_evaluate_uses_it() -> None:
    x, labels = data()
    targets = np.eye(3, dtype=np.float32)[labels]
    model = MLP(SPEC, seed=1)
    assert model.loss == "softmax_cross_entropy"
    assert model.evaluate(x, labels) == model.evaluate(x, labels, "softmax_cross_entropy")
    mlpcore.fit(model, (x, targets), loss="mse", epochs=1)
    assert model.loss == "mse"
    assert model.evaluate(x, targets) == model.evaluate(x, targets, loss="mse")
    assert model.evaluate(x, targets).loss != model.evaluate(x, targets,
                                                             "softmax_cross_entropy").loss
    # fit without a loss trains with the model's
    a, b = MLP(SPEC, seed=1, loss="mse"), MLP(SPEC, seed=1)
    assert mlpcore.fit(a, (x, targets), epochs=2).loss == \
        mlpcore.fit(b, (x, targets), loss="mse", epochs=2).loss
    assert same(a.state_dict(), b.state_dict())
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        MLP(SPEC, loss="hinge")


def test_a_checkpoint_keeps_the_loss(tmp_path: Path) -> None:
    model = MLP(MLPSpec((3, 2)), backend="numpy", loss="mse")
    loaded = mlpcore.load(mlpcore.save(model, tmp_path / "m.safetensors"))
    assert loaded.loss == "mse"
    assert mlpcore.read_checkpoint(tmp_path / "m.safetensors").manifest["loss"] == "mse"


def test_a_failed_fit_leaves_the_model_loss_alone() -> None:
    model = MLP(SPEC, seed=1)
    with pytest.raises(ValueError, match="epochs"):
        mlpcore.fit(model, data(), loss="mse", epochs=0)
    assert model.loss == "softmax_cross_entropy"


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("source", "target"), list(itertools.product(BACKENDS, repeat=2)))
def test_to_moves_a_trained_model_bit_for_bit(source: str, target: str, dtype: str) -> None:
    x, labels = data()
    targets = np.eye(3, dtype=dtype)[labels]
    model = MLP(SPEC, backend=source, seed=4, dtype=dtype)
    mlpcore.fit(model, (x, targets), loss="mse", epochs=2, batch_size=8)
    moved = model.to(target)
    assert moved is not model and moved.backend.name == target and model.backend.name == source
    assert (moved.spec, moved.dtype, moved.seed, moved.loss) == (SPEC, dtype, 4, "mse")
    assert same(moved.state_dict(), model.state_dict())
    assert np.array_equal(mlpcore.MLP(SPEC, backend=target, seed=4, dtype=dtype).to(source)
                          .state_dict()["dense_0/weights"],
                          mlpcore.MLP(SPEC, seed=4, dtype=dtype).state_dict()["dense_0/weights"])
    moved.load_state_dict({k: v * 0 for k, v in moved.state_dict().items()})
    assert not np.all(model.state_dict()["dense_0/weights"] == 0)  # no memory shared


def test_to_refuses_an_unknown_backend() -> None:
    with pytest.raises(mlpcore.BackendNotFoundError, match="no-such"):
        MLP(SPEC).to("no-such")


def test_fit_method_equals_the_function_with_validation_data() -> None:
    train, valid = data(), data(12, seed=1)
    a, b = MLP(SPEC, seed=2), MLP(SPEC, seed=2)
    history = a.fit(train, validation_data=valid, epochs=2, batch_size=8)
    expected = mlpcore.fit(b, train, validation=valid, epochs=2, batch_size=8)
    assert (history.loss, history.valid_loss) == (expected.loss, expected.valid_loss)
    assert same(a.state_dict(), b.state_dict())
    assert history.valid_loss[-1] == a.evaluate(*valid).loss
    with pytest.raises(TypeError, match="validation_data or validation"):
        a.fit(train, validation_data=valid, validation=valid)
    with pytest.raises(TypeError, match="unexpected keyword argument 'validatoin'"):
        a.fit(train, validatoin=valid)
