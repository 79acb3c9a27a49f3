"""Losses (``mlpcore/losses.py``): values and gradients, huge and tiny logits, labels against
one-hot, MSE as the mean over every element."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlpcore.backend import Backend
from mlpcore.losses import LossName
from mlpcore_conformance import reference
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.strategies import DTYPES, LOSSES, batches, conformance_settings
from mlpcore_conformance.tolerances import assert_close

HUGE_LOGITS = [
    [1000.0, 0.0, -1000.0],
    [1e30, -1e30, 0.0],
    [-1e30, 1e30, 1e30],
    [88.8, 88.7, -5.0],
    [-1e30, -1e30, -1e30],
    [1e4, 1e4 - 1.0, 1e4 - 2.0],
]
HUGE_LABELS = [0, 1, 2, 0, 1, 1]


def _value_and_gradient(backend: Backend, repro: Repro, loss: LossName, outputs: np.ndarray,
                        targets: np.ndarray, dtype: str, what: str) -> None:
    snippet = repro(f"value = backend.losses.value({loss!r}, outputs, targets)",
                    f"gradient = backend.losses.gradient({loss!r}, outputs, targets)",
                    f"want = reference.loss({loss!r}, outputs, targets)",
                    f"want_gradient = reference.loss_gradient({loss!r}, outputs, targets)",
                    outputs=outputs, targets=targets)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        try:
            value = backend.losses.value(loss, outputs, targets)
            gradient = backend.losses.gradient(loss, outputs, targets)
        except (RuntimeWarning, FloatingPointError) as warning:
            raise AssertionError(f"{loss} ({dtype}, {what}) warned: {warning!r}\n"
                                 f"reproduce:\n{snippet}") from None
    assert isinstance(value, float), f"losses.value gave {type(value).__name__}, not float"
    assert isinstance(gradient, np.ndarray) and gradient.shape == outputs.shape \
        and gradient.dtype == outputs.dtype, (
            f"losses.gradient gave {getattr(gradient, 'dtype', '?')} "
            f"{getattr(gradient, 'shape', '?')} for outputs {outputs.dtype} {outputs.shape}")
    assert_close(value, reference.loss(loss, outputs, targets), "loss", dtype,
                 what=f"{loss} value ({what})", reproduce=snippet)
    assert_close(gradient, reference.loss_gradient(loss, outputs, targets), "loss_gradient",
                 dtype, what=f"{loss} gradient ({what})", reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
@conformance_settings()
@given(data=st.data())
def test_values_and_gradients_match_reference(backend: Backend, repro: Repro, loss: LossName,
                                              dtype: str, data: st.DataObject) -> None:
    batch = data.draw(batches(dtype, loss), label="batch")
    _value_and_gradient(backend, repro, loss, batch.outputs, batch.targets, dtype,
                        f"{batch.kind} targets")


@pytest.mark.parametrize("dtype", DTYPES)
def test_huge_logits_stay_finite(backend: Backend, repro: Repro, dtype: str) -> None:
    """Logits up to 1e30 (log-sum-exp with the row maximum subtracted); a naive ``exp``
    overflows here."""
    outputs = np.array(HUGE_LOGITS, dtype=dtype)
    for targets, kind in ((np.array(HUGE_LABELS), "labels"),
                          (np.eye(3, dtype=dtype)[HUGE_LABELS], "one-hot")):
        snippet = repro("value = backend.losses.value('softmax_cross_entropy', outputs, targets)",
                        "gradient = backend.losses.gradient('softmax_cross_entropy', outputs, "
                        "targets)", outputs=outputs, targets=targets)
        value = backend.losses.value("softmax_cross_entropy", outputs, targets)
        gradient = backend.losses.gradient("softmax_cross_entropy", outputs, targets)
        assert np.isfinite(value) and np.all(np.isfinite(gradient)), (
            f"softmax_cross_entropy ({dtype}, {kind}) of logits up to 1e30 is not finite: "
            f"value {value}, gradient {np.asarray(gradient).tolist()}\nreproduce:\n{snippet}")
        _value_and_gradient(backend, repro, "softmax_cross_entropy", outputs, targets, dtype,
                            f"huge logits, {kind}")


@pytest.mark.parametrize("dtype", DTYPES)
def test_tiny_logits_give_log_k(backend: Backend, repro: Repro, dtype: str) -> None:
    tiny = float(np.finfo(np.dtype(dtype)).smallest_subnormal)
    outputs = np.array([[0.0, 0.0, 0.0, 0.0], [1e-30, -1e-30, 0.0, tiny],
                        [tiny, -tiny, tiny, 0.0]], dtype=dtype)
    labels = np.array([0, 3, 2])
    _value_and_gradient(backend, repro, "softmax_cross_entropy", outputs, labels, dtype,
                        "tiny logits")
    assert_close(backend.losses.value("softmax_cross_entropy", outputs, labels), np.log(4.0),
                 "loss", dtype, what="softmax_cross_entropy of equal logits is log K")


@pytest.mark.parametrize("dtype", DTYPES)
@conformance_settings()
@given(data=st.data())
def test_integer_labels_equal_their_one_hot_rows(backend: Backend, repro: Repro, dtype: str,
                                                 data: st.DataObject) -> None:
    batch = data.draw(batches(dtype, "softmax_cross_entropy"), label="batch")
    n, k = batch.outputs.shape
    labels = np.asarray(data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n),
                                  label="labels"), dtype=np.int64)
    one_hot = np.eye(k, dtype=dtype)[labels]
    snippet = repro("by_label = backend.losses.value('softmax_cross_entropy', outputs, labels)",
                    "by_row = backend.losses.value('softmax_cross_entropy', outputs, one_hot)",
                    outputs=batch.outputs, labels=labels, one_hot=one_hot)
    loss: LossName = "softmax_cross_entropy"
    assert_close(backend.losses.value(loss, batch.outputs, labels),
                 backend.losses.value(loss, batch.outputs, one_hot), "loss", dtype,
                 what="value with labels vs one-hot rows", reproduce=snippet)
    assert_close(backend.losses.gradient(loss, batch.outputs, labels),
                 backend.losses.gradient(loss, batch.outputs, one_hot), "loss_gradient", dtype,
                 what="gradient with labels vs one-hot rows", reproduce=snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mse_is_the_mean_over_every_element(backend: Backend, repro: Repro, dtype: str) -> None:
    outputs = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, -1.0]], dtype=dtype)
    targets = np.array([[0.0, 0.0], [0.0, 0.0], [0.0, 1.0]], dtype=dtype)
    snippet = repro("value = backend.losses.value('mse', outputs, targets)",
                    "gradient = backend.losses.gradient('mse', outputs, targets)",
                    outputs=outputs, targets=targets)
    assert_close(backend.losses.value("mse", outputs, targets), 34.0 / 6.0, "loss", dtype,
                 what="mse = (1/(N K)) Σ (o - t)²", reproduce=snippet)
    assert_close(backend.losses.gradient("mse", outputs, targets),
                 2.0 * (outputs.astype(np.float64) - targets) / 6.0, "loss_gradient", dtype,
                 what="dmse/do = 2 (o - t) / (N K)", reproduce=snippet)
