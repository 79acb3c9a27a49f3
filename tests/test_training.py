"""fit: argument checks, History, validation data, learning, chunked steps, progress."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from mlpcore import MLP, SGD, EpochRecord, History, MLPSpec, Normal, fit
from mlpcore.backend import batch_blocks

SPEC = MLPSpec(sizes=(2, 8, 2), activation="relu", dropout=0.0)


@dataclass(frozen=True)
class Split:
    """A stand-in for mlpcore.data.Dataset: anything with images and labels."""

    images: np.ndarray
    labels: np.ndarray


def blobs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated Gaussian blobs in 2-D, a problem an MLP must learn quickly."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    centres = np.array([[-1.5, -1.0], [1.5, 1.0]])
    return (centres[labels] + rng.normal(scale=0.6, size=(n, 2))).astype(np.float32), labels


@pytest.fixture
def train() -> tuple[np.ndarray, np.ndarray]:
    return blobs(64, seed=0)


@pytest.fixture
def valid() -> tuple[np.ndarray, np.ndarray]:
    return blobs(32, seed=1)


def variables_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"epochs": 0}, "epochs"),
    ({"epochs": -1}, "epochs"),
    ({"epochs": 1.5}, "epochs"),
    ({"epochs": True}, "epochs"),
    ({"batch_size": 0}, "batch_size"),
    ({"batch_size": -4}, "batch_size"),
    ({"batch_size": 2.0}, "batch_size"),
    ({"steps_per_call": 0}, "steps_per_call"),
    ({"dropout_mode": "fast"}, "dropout_mode"),
    ({"dropout_mode": None}, "dropout_mode"),
    ({"loss": "hinge"}, "loss"),
    ({"loss": ""}, "loss"),
])
def test_fit_rejects_bad_arguments_before_training(train, kwargs: dict[str, object],
                                                   match: str) -> None:
    model = MLP(SPEC, seed=0)
    before = model.variables
    with pytest.raises(ValueError, match=match):
        fit(model, train, **kwargs)  # type: ignore[arg-type]
    assert variables_equal(model.variables, before)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"regulariser": "l2"}, "regulariser"),
    ({"regulariser": ["l1"]}, "regulariser"),
    ({"regulariser": 1e-4}, "regulariser"),
    ({"optimizer": "sgd"}, "optimizer"),
])
def test_fit_rejects_wrong_types_by_name(train, kwargs: dict[str, object], match: str) -> None:
    model = MLP(SPEC, seed=0)
    before = model.variables
    with pytest.raises(TypeError, match=match):
        fit(model, train, **kwargs)  # type: ignore[arg-type]
    assert variables_equal(model.variables, before)


def test_fit_rejects_malformed_data_pairs(train) -> None:
    model = MLP(SPEC, seed=0)
    with pytest.raises(ValueError):
        fit(model, (train[0], train[1], train[1]))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        fit(model, train, validation=(train[0],))  # type: ignore[arg-type]


@pytest.mark.parametrize(("lr", "momentum"), [
    (0, 0.0), (-0.1, 0.0), (math.nan, 0.0), (math.inf, 0.0), (True, 0.0), ("0.1", 0.0),
    (0.1, 1.0), (0.1, -0.1), (0.1, math.nan), (0.1, True),
])
def test_sgd_rejects_bad_hyperparameters(lr: object, momentum: object) -> None:
    with pytest.raises(ValueError):
        SGD(lr=lr, momentum=momentum)  # type: ignore[arg-type]


def test_sgd_stores_floats() -> None:
    sgd = SGD(lr=1, momentum=0)
    assert (sgd.lr, sgd.momentum) == (1.0, 0.0)
    assert type(sgd.lr) is float and type(sgd.momentum) is float


def test_history_fields(train, valid) -> None:
    model = MLP(SPEC, seed=0)
    seen: list[EpochRecord] = []
    history = fit(model, train, optimizer=SGD(0.1), epochs=3, batch_size=16, validation=valid,
                  on_epoch=seen.append)
    assert isinstance(history, History)
    assert [e.epoch for e in history.epochs] == [1, 2, 3]
    assert seen == history.epochs
    assert history.loss == [e.loss for e in history.epochs]
    for record in history.epochs:
        assert isinstance(record.loss, float) and math.isfinite(record.loss)
        assert record.train_accuracy is not None and 0.0 <= record.train_accuracy <= 1.0
        assert record.valid_accuracy is not None and 0.0 <= record.valid_accuracy <= 1.0
        assert record.valid_loss is not None and math.isfinite(record.valid_loss)
        assert record.seconds >= 0.0
    assert history.train_accuracy == [e.train_accuracy for e in history.epochs]
    assert history.valid_accuracy == [e.valid_accuracy for e in history.epochs]
    # the last record describes the trained model
    final_train = model.evaluate(*train)
    final_valid = model.evaluate(*valid)
    assert history.train_accuracy[-1] == final_train.accuracy
    assert history.valid_accuracy[-1] == final_valid.accuracy
    assert history.epochs[-1].valid_loss == pytest.approx(final_valid.loss, rel=1e-6)


def test_history_without_validation_or_train_accuracy(train) -> None:
    history = fit(MLP(SPEC, seed=0), train, epochs=2, batch_size=32, train_accuracy=False)
    assert history.train_accuracy == [None, None]
    assert history.valid_accuracy == [None, None]
    assert [e.valid_loss for e in history.epochs] == [None, None]


def test_validation_data_is_evaluated_and_accepts_dataset_objects(train, valid) -> None:
    a, b = MLP(SPEC, seed=4), MLP(SPEC, seed=4)
    ha = fit(a, train, epochs=2, batch_size=16, validation=valid)
    hb = fit(b, Split(*train), epochs=2, batch_size=16, validation=Split(*valid))
    assert ha.loss == hb.loss
    assert ha.valid_accuracy == hb.valid_accuracy
    assert [e.valid_loss for e in ha.epochs] == [e.valid_loss for e in hb.epochs]
    # the validation numbers are those of the validation set, not of the training set
    other = fit(MLP(SPEC, seed=4), train, epochs=2, batch_size=16, validation=train)
    assert [e.valid_loss for e in other.epochs] != [e.valid_loss for e in ha.epochs]


def test_validation_does_not_change_training(train, valid) -> None:
    a, b = MLP(SPEC, seed=4), MLP(SPEC, seed=4)
    fit(a, train, epochs=2, batch_size=16, validation=valid)
    fit(b, train, epochs=2, batch_size=16)
    assert variables_equal(a.variables, b.variables)


def test_validation_labels_are_checked(train) -> None:
    model = MLP(SPEC, seed=0)
    with pytest.raises(ValueError, match="validation labels"):
        fit(model, train, validation=(train[0], train[1] + 5))


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_loss_decreases_on_a_learnable_problem(train, valid, momentum: float) -> None:
    model = MLP(SPEC, seed=2, weights_init=Normal(0.5))
    before = model.evaluate(*valid)
    history = fit(model, train, optimizer=SGD(0.2, momentum=momentum), epochs=10, batch_size=8,
                  validation=valid)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.epochs[-1].valid_loss < 0.5 * before.loss  # type: ignore[operator]
    assert history.valid_accuracy[-1] >= 0.9  # type: ignore[operator]


def test_mse_with_one_hot_targets_learns(train) -> None:
    x, labels = train
    model = MLP(SPEC, seed=2, weights_init=Normal(0.5))
    history = fit(model, (x, np.eye(2, dtype=np.float32)[labels]), loss="mse",
                  optimizer=SGD(0.2), epochs=10, batch_size=8)
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.train_accuracy[-1] >= 0.9  # type: ignore[operator]


@pytest.mark.parametrize("dropout_mode", ["portable", "native"])
@pytest.mark.parametrize("steps_per_call", [1, 2, 3, 100])
def test_chunked_steps_equal_whole_epoch_calls(train, dropout_mode: str,
                                               steps_per_call: int) -> None:
    spec = MLPSpec(sizes=(2, 6, 5, 2), activation="tanh", dropout=0.3)
    x, y = train[0][:30], train[1][:30]  # 30 rows, batch 7: 5 steps, the last of 2 rows
    whole, chunked = MLP(spec, seed=5, dtype="float64"), MLP(spec, seed=5, dtype="float64")
    kwargs = {"optimizer": SGD(0.1, momentum=0.9), "epochs": 3, "batch_size": 7,
              "dropout_mode": dropout_mode}
    h_whole = fit(whole, (x, y), **kwargs)  # type: ignore[arg-type]
    h_chunked = fit(chunked, (x, y), steps_per_call=steps_per_call, **kwargs)  # type: ignore[arg-type]
    assert h_whole.loss == h_chunked.loss
    for name, value in whole.variables.items():
        assert value.tobytes() == chunked.variables[name].tobytes(), name


def test_seed_argument_overrides_the_model_seed(train) -> None:
    spec = MLPSpec(sizes=(2, 6, 2), dropout=0.3)
    a, b, c = MLP(spec, seed=1), MLP(spec, seed=1), MLP(spec, seed=1)
    fit(a, train, epochs=1, batch_size=16)
    fit(b, train, epochs=1, batch_size=16, seed=1)
    fit(c, train, epochs=1, batch_size=16, seed=2)
    assert variables_equal(a.variables, b.variables)
    assert not variables_equal(a.variables, c.variables)


@pytest.mark.parametrize(("steps_per_call", "expected"), [
    (None, [(1, 4, 4), (2, 4, 4)]),
    (3, [(1, 3, 4), (1, 4, 4), (2, 3, 4), (2, 4, 4)]),
    (1, [(e, s, 4) for e in (1, 2) for s in (1, 2, 3, 4)]),
])
def test_progress_callback(train, steps_per_call: int | None,
                           expected: list[tuple[int, int, int]]) -> None:
    calls: list[tuple[int, int, int]] = []
    x, y = train[0][:10], train[1][:10]  # 10 rows, batch 3: 4 steps per epoch
    fit(MLP(SPEC, seed=0), (x, y), epochs=2, batch_size=3, steps_per_call=steps_per_call,
        progress=lambda *args: calls.append(args))
    assert calls == expected


def test_regulariser_list_equals_the_sum_of_its_parts(train) -> None:
    from mlpcore import L1, L2

    x, y = train
    a, b = MLP(SPEC, seed=3, dtype="float64"), MLP(SPEC, seed=3, dtype="float64")
    ha = fit(a, (x, y), regulariser=[L1(0.01), L2(0.1)], epochs=1, batch_size=16)
    hb = fit(b, (x, y), regulariser=(L2(0.1), L1(0.01)), epochs=1, batch_size=16)
    plain = fit(MLP(SPEC, seed=3, dtype="float64"), (x, y), epochs=1, batch_size=16)
    assert ha.loss[0] == pytest.approx(hb.loss[0], rel=1e-12)
    assert ha.loss[0] > plain.loss[0]
    for name, value in a.variables.items():
        np.testing.assert_allclose(value, b.variables[name], rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(("n_rows", "batch", "shapes"), [
    (10, 4, [((2, 4), 7), ((1, 2), 9)]),
    (8, 4, [((2, 4), 7)]),
    (3, 4, [((1, 3), 7)]),
    (0, 4, []),
])
def test_batch_blocks_split_whole_batches_and_the_short_last_one(
        n_rows: int, batch: int, shapes: list[tuple[tuple[int, int], int]]) -> None:
    order = np.arange(100, 100 + n_rows, dtype=np.int64)
    blocks = batch_blocks(order, batch, 7)
    assert [(block.shape, step) for block, step in blocks] == shapes
    rows = np.concatenate([block.reshape(-1) for block, _ in blocks]) if blocks else order
    assert rows.tolist() == order.tolist()  # every row once, in order
