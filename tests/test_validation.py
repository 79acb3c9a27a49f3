"""Bad user data is refused the same way everywhere; MLP.assign is all-or-nothing."""

from __future__ import annotations

import numpy as np
import pytest

from mlpcore import MLP, InvalidInputError, MlpcoreError, MLPSpec, fit
from mlpcore.validation import check_inputs, check_targets

SPEC = MLPSpec(sizes=(4, 5, 3), activation="tanh")
N = 6


@pytest.fixture
def model() -> MLP:
    return MLP(SPEC, seed=0)


@pytest.fixture
def x(rng: np.random.Generator) -> np.ndarray:
    return rng.normal(size=(N, 4)).astype(np.float32)


@pytest.fixture
def y() -> np.ndarray:
    return np.array([0, 1, 2, 0, 1, 2])


def entry_points(model: MLP, x: object, y: object):  # type: ignore[no-untyped-def]
    """Every public call that takes inputs, as zero-argument callables."""
    return {
        "predict": lambda: model.predict(x),
        "predict_classes": lambda: model.predict_classes(x),
        "evaluate": lambda: model.evaluate(x, y),
        "loss_and_gradients": lambda: model.loss_and_gradients(x, y),
        "fit": lambda: fit(model, (x, y), epochs=1),
        "fit validation": lambda: fit(model, (np.zeros((2, 4), np.float32), np.zeros(2, int)),
                                      validation=(x, y), epochs=1),
    }


def assert_invalid_input(call, *fragments: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, MlpcoreError)
    for fragment in fragments:
        assert fragment in str(info.value), str(info.value)


@pytest.mark.parametrize(("bad_x", "fragments"), [
    (np.zeros((N, 5), np.float32), ("width 5", "expects 4")),
    (np.zeros((N, 3)), ("width 3",)),
    (np.zeros((N,), np.float32), ("shape",)),
    (np.zeros((N, 4, 1), np.float32), ("shape",)),
    (np.float32(1.0), ("shape",)),
    (np.zeros((N, 4), np.int64), ("floating-point", "int64")),
    (np.zeros((N, 4), np.uint8), ("floating-point", "uint8")),
    (np.zeros((N, 4), bool), ("floating-point",)),
    (np.zeros((N, 4), np.complex128), ("floating-point",)),
    ([[1, 2, 3, 4]] * N, ("floating-point",)),
    (np.zeros((0, 4), np.float32), ("empty",)),
])
@pytest.mark.parametrize("call", ["predict", "predict_classes", "evaluate", "loss_and_gradients",
                                  "fit", "fit validation"])
def test_bad_inputs_are_refused_everywhere(model: MLP, y, bad_x, fragments: tuple[str, ...],
                                           call: str) -> None:
    before = model.variables
    labels = y if np.ndim(bad_x) >= 1 and np.shape(bad_x)[0] == N else np.zeros(0, int)
    assert_invalid_input(entry_points(model, bad_x, labels)[call], *fragments)
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize(("labels", "fragments"), [
    (np.array([0, 1, 3, 0, 1, 2]), ("[0, 3)", "3")),
    (np.array([0, 1, -1, 0, 1, 2]), ("[0, 3)", "-1")),
    (np.array([0, 1, 2, 0, 1]), ("5 rows", "6")),
    (np.array([0, 1, 2, 0, 1, 2, 0]), ("7 rows",)),
    (np.zeros((N, 2), np.float32), ("shape",)),
    (np.zeros((N + 1, 3), np.float32), ("shape",)),
    (np.zeros(N, np.float32), ("integer class indices",)),
    (np.zeros((N, 3), np.int64), ("integer class indices",)),
    (np.full((N, 3), np.nan, np.float32), ("NaN",)),
    (np.array(["a"] * N), ("integer class indices",)),
])
@pytest.mark.parametrize("call", ["evaluate", "loss_and_gradients", "fit", "fit validation"])
def test_bad_labels_are_refused(model: MLP, x, labels, fragments: tuple[str, ...],
                                call: str) -> None:
    assert_invalid_input(entry_points(model, x, labels)[call], *fragments)


@pytest.mark.parametrize("call", ["evaluate", "loss_and_gradients", "fit"])
def test_mse_refuses_integer_labels(model: MLP, x, y, call: str) -> None:
    calls = {
        "evaluate": lambda: model.evaluate(x, y, loss="mse"),
        "loss_and_gradients": lambda: model.loss_and_gradients(x, y, loss="mse"),
        "fit": lambda: fit(model, (x, y), loss="mse", epochs=1),
    }
    assert_invalid_input(calls[call], "mse", "one-hot")


def test_good_data_is_accepted(model: MLP, x, y) -> None:
    assert model.predict(x).shape == (N, 3)
    assert model.predict(x.tolist()).shape == (N, 3)  # nested lists of floats are fine
    assert model.predict_classes(x).dtype == np.int64
    assert 0.0 <= model.evaluate(x, y.astype(np.uint8)).accuracy <= 1.0
    assert model.evaluate(x, np.eye(3, dtype=np.float32)[y]).loss > 0.0
    assert model.evaluate(x, np.eye(3)[y], loss="mse").loss > 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("call", ["evaluate", "loss_and_gradients", "fit", "fit validation"])
def test_non_finite_inputs_are_refused_naming_the_row(model: MLP, x, y, bad: float,
                                                      call: str) -> None:
    x = x.copy()
    x[3, 1] = bad
    x[5, 0] = bad
    assert_invalid_input(entry_points(model, x, y)[call], "row 3", "2 row(s)")


def test_finite_values_whose_row_sum_overflows_are_accepted(model: MLP, y) -> None:
    x = np.full((N, 4), 3e38, np.float32)
    x[:, 1] = -3e38
    assert model.evaluate(x, y).loss >= 0.0  # no false alarm: every value is finite


def test_predict_propagates_nan_row_by_row(model: MLP, x) -> None:
    clean = model.predict(x)
    x = x.copy()
    x[2, 0] = np.nan
    out = model.predict(x)
    assert np.isnan(out[2]).all()
    rows = [0, 1, 3, 4, 5]
    assert np.isfinite(out[rows]).all()
    np.testing.assert_allclose(out[rows], clean[rows], rtol=1e-6, atol=1e-7)


def test_check_inputs_casts_to_the_model_dtype(x) -> None:
    got = check_inputs(x.astype(np.float16), 4, "float64")
    assert got.dtype == np.float64 and got.flags.c_contiguous
    assert check_inputs(np.asfortranarray(x), 4, "float32").flags.c_contiguous


def test_check_targets_normalises_labels(y) -> None:
    assert check_targets(y.astype(np.int8), N, 3, "softmax_cross_entropy", "float32").dtype \
        == np.int64
    assert check_targets(np.eye(3)[y], N, 3, "mse", "float32").dtype == np.float32


# ---------------------------------------------------------------------------------------------
# MLP.assign
# ---------------------------------------------------------------------------------------------

def good_values(dtype: type = np.float64) -> dict[str, np.ndarray]:
    return {name: np.full(shape, 0.5, dtype) for name, shape in SPEC.variable_shapes().items()}


def test_assign_replaces_every_variable_and_casts(model: MLP) -> None:
    model.assign(good_values())
    for name, value in model.variables.items():
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, np.full(SPEC.variable_shapes()[name], 0.5))


def test_assign_copies_its_input(model: MLP) -> None:
    values = good_values(np.float32)
    model.assign(values)
    values["dense_0/weights"][...] = 9.0
    assert not (model.variables["dense_0/weights"] == 9.0).any()


def test_variables_are_copies(model: MLP) -> None:
    model.variables["dense_0/weights"][...] = 9.0
    assert not (model.variables["dense_0/weights"] == 9.0).any()


def test_assign_reports_every_problem_and_changes_nothing(model: MLP) -> None:
    before = model.variables
    values = good_values()
    del values["dense_1/bias"]                       # missing
    values["dense_2/weights"] = np.zeros((3, 3))     # unexpected
    values["dense_0/weights"] = np.zeros((5, 4))     # transposed
    values["dense_0/bias"] = np.zeros((5, 1))        # wrong rank
    with pytest.raises(ValueError) as info:
        model.assign(values)
    message = str(info.value)
    for fragment in ("missing variable 'dense_1/bias'", "unexpected variable 'dense_2/weights'",
                     "'dense_0/weights' has shape (5, 4), expected (4, 5)",
                     "'dense_0/bias' has shape (5, 1), expected (5,)"):
        assert fragment in message
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])


def test_assign_reports_every_non_numeric_variable_and_changes_nothing(model: MLP) -> None:
    before = model.variables
    values = good_values()
    values["dense_0/bias"] = np.array(["a"] * 5)
    values["dense_1/bias"] = np.array([None] * 3)
    values["dense_1/weights"] = np.zeros((5, 4))     # and a shape problem
    with pytest.raises(ValueError) as info:
        model.assign(values)
    message = str(info.value)
    assert "'dense_0/bias'" in message and "'dense_1/bias'" in message
    assert "'dense_1/weights' has shape (5, 4)" in message
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize(("change", "fragment"), [
    (lambda v: v.pop("dense_1/bias"), "missing variable 'dense_1/bias'"),
    (lambda v: v.update({"dense_9/bias": np.zeros(3)}), "unexpected variable 'dense_9/bias'"),
    (lambda v: v.update({"dense_1/weights": np.zeros((3, 5))}), "has shape (3, 5)"),
    (lambda v: v.update({"dense_1/weights": np.zeros(15)}), "has shape (15,)"),
    (lambda v: v.update({"dense_0/bias": np.array(["x"] * 5)}), "non-numeric"),
    (lambda v: v.update({"dense_0/bias": np.zeros(5, np.complex64)}), "non-numeric"),
])
def test_assign_with_a_single_problem_changes_nothing(model: MLP, change, fragment: str) -> None:  # type: ignore[no-untyped-def]
    before = model.variables
    values = good_values()
    change(values)
    with pytest.raises(ValueError) as info:
        model.assign(values)
    assert fragment in str(info.value)
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])


def test_assign_of_a_partial_dict_leaves_the_model_unchanged(model: MLP) -> None:
    before = model.variables
    with pytest.raises(ValueError, match="missing"):
        model.assign({"dense_0/weights": np.zeros((4, 5))})
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])
