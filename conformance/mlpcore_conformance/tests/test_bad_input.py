"""Bad input (``mlpcore/validation.py``, ``mlpcore/errors.py``): the same error class on every
backend, a failed call changes nothing, and NaN rows in ``predict`` stay in their row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import mlpcore
from mlpcore.backend import Backend
from mlpcore_conformance import cases
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.tolerances import assert_bit_identical

SPEC = mlpcore.MLPSpec((4, 5, 3), activation="sigmoid")
GOOD_X = cases.normal(101, (3, 4), "float32")
GOOD_Y = np.array([0, 1, 2])

BAD_DATA: dict[str, tuple[Any, Any, str]] = {
    # case: (inputs, targets, loss)
    "wrong width": (np.zeros((3, 5), np.float32), GOOD_Y, "softmax_cross_entropy"),
    "integer inputs": (np.zeros((3, 4), np.int64), GOOD_Y, "softmax_cross_entropy"),
    "1-d inputs": (np.zeros(4, np.float32), GOOD_Y[:1], "softmax_cross_entropy"),
    "empty batch": (np.zeros((0, 4), np.float32), np.array([], np.int64),
                    "softmax_cross_entropy"),
    "NaN input": (np.where(np.eye(3, 4) > 0, np.nan, 0.0).astype(np.float32), GOOD_Y,
                  "softmax_cross_entropy"),
    "infinite input": (np.full((3, 4), np.inf, np.float32), GOOD_Y, "softmax_cross_entropy"),
    "label out of range": (GOOD_X, np.array([0, 1, 3]), "softmax_cross_entropy"),
    "negative label": (GOOD_X, np.array([0, -1, 2]), "softmax_cross_entropy"),
    "too few labels": (GOOD_X, np.array([0, 1]), "softmax_cross_entropy"),
    "boolean labels": (GOOD_X, np.array([True, False, True]), "softmax_cross_entropy"),
    "2-d integer labels": (GOOD_X, np.eye(3, dtype=np.int64), "softmax_cross_entropy"),
    "NaN targets": (GOOD_X, np.full((3, 3), np.nan, np.float32), "mse"),
    "wrong target width": (GOOD_X, np.zeros((3, 4), np.float32), "mse"),
    "mse with labels": (GOOD_X, GOOD_Y, "mse"),
}
CALLS: dict[str, Callable[[mlpcore.MLP, Any, Any, str], object]] = {
    "evaluate": lambda model, x, y, loss: model.evaluate(x, y, loss),
    "fit": lambda model, x, y, loss: mlpcore.fit(model, (x, y), loss=loss, epochs=1,
                                                 batch_size=2),
    "loss_and_gradients": lambda model, x, y, loss: model.loss_and_gradients(x, y, loss),
}
BAD_ARGUMENTS: dict[str, str] = {
    # case: a call that must raise ValueError, run as written (given backend, spec, x, y), so a
    # failure's snippet is exactly what ran
    "dtype float8": "mlpcore.MLP(spec, backend=backend, dtype='float8_e4m3fn')",
    "negative seed": "mlpcore.MLP(spec, backend=backend, seed=-1)",
    "epochs 0": "mlpcore.fit(mlpcore.MLP(spec, backend=backend), (x, y), epochs=0)",
    "batch size 0": "mlpcore.fit(mlpcore.MLP(spec, backend=backend), (x, y), batch_size=0)",
    "unknown dropout mode": "mlpcore.fit(mlpcore.MLP(spec, backend=backend), (x, y), "
                            "dropout_mode='bogus')",
    "unknown loss": "mlpcore.MLP(spec, backend=backend).evaluate(x, y, 'hinge')",
    "unknown training method": "mlpcore.fit(mlpcore.MLP(spec, backend=backend), (x, y), "
                               "method='no-such-method')",
    "activation op: unknown name": "backend.activations.value('swish', x)",
    "loss op: unknown name": "backend.losses.value('hinge', x, y)",
    "dropout op: rate 1.5": "backend.dropout.apply(x, 1.5, training=True)",
}


@pytest.mark.parametrize("call", sorted(CALLS))
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_raises_invalid_input_error_and_changes_nothing(backend: Backend, repro: Repro,
                                                                 case: str, call: str) -> None:
    if call == "loss_and_gradients" and mlpcore.Capability.GRADIENTS not in backend.capabilities:
        pytest.skip(f"backend {backend.name!r} does not declare capability 'gradients'")
    x, y, loss = BAD_DATA[case]
    snippet = repro("model = mlpcore.MLP(spec, backend=backend, seed=4)",
                    f"# {call} with {case}: must raise mlpcore.InvalidInputError",
                    spec=SPEC, x=x, y=y, loss=loss)
    model = mlpcore.MLP(SPEC, backend=backend, seed=4)
    before = model.variables
    try:
        CALLS[call](model, x, y, loss)
    except mlpcore.InvalidInputError:
        pass
    except Exception as error:
        raise AssertionError(f"{call} with {case} raised {type(error).__name__}: {error}; "
                             f"expected mlpcore.InvalidInputError\nreproduce:\n{snippet}") from None
    else:
        raise AssertionError(f"{call} with {case} raised nothing; expected "
                             f"mlpcore.InvalidInputError\nreproduce:\n{snippet}")
    for name, value in before.items():
        assert_bit_identical(model.variables[name], value, f"{name} after {call} with {case}")


@pytest.mark.parametrize("case", list(BAD_ARGUMENTS))
def test_bad_arguments_raise_value_error(backend: Backend, repro: Repro, case: str) -> None:
    call = BAD_ARGUMENTS[case]
    repro(f"{call}  # must raise ValueError", spec=SPEC, x=GOOD_X, y=GOOD_Y)
    with pytest.raises(ValueError):
        eval(call, {"mlpcore": mlpcore, "backend": backend, "spec": SPEC, "x": GOOD_X,
                    "y": GOOD_Y})


def test_nan_row_gives_nan_outputs_in_that_row_only(backend: Backend, repro: Repro) -> None:
    x = cases.normal(102, (4, 4), "float32")
    x[2, 1] = np.nan
    snippet = repro("model = mlpcore.MLP(spec, backend=backend, seed=4)",
                    "outputs = model.predict(x)", spec=SPEC, x=x)
    outputs = mlpcore.MLP(SPEC, backend=backend, seed=4).predict(x)
    rows = np.asarray(np.isnan(outputs).any(axis=1))
    assert np.isnan(outputs[2]).all() and not rows[[0, 1, 3]].any(), (
        f"predict with NaN in row 2 gave NaN in rows {np.flatnonzero(rows).tolist()}: "
        f"{outputs.tolist()}\nreproduce:\n{snippet}")
