"""d2l's weight-decay experiment (scripts/weight_decay.py, docs/weight-decay.md): the same figures
on every installed backend, the behaviour d2l shows, and d2l's update in mlpcore's terms."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import mlpcore

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "weight_decay.py"
_spec = importlib.util.spec_from_file_location("weight_decay", SCRIPT)
assert _spec is not None and _spec.loader is not None
weight_decay = importlib.util.module_from_spec(_spec)
sys.modules["weight_decay"] = weight_decay  # dataclasses look their module up
_spec.loader.exec_module(weight_decay)

BACKENDS = mlpcore.list_backends()


@pytest.fixture(scope="module")
def runs() -> dict[tuple[str, float], object]:
    return {(b, lambd): weight_decay.train(b, lambd)
            for lambd in weight_decay.LAMBDAS for b in BACKENDS}


@pytest.mark.parametrize("lambd", [0.0, 3.0])
def test_every_backend_gives_the_figures_of_numpy(runs: dict, lambd: float) -> None:
    reference = runs["numpy", lambd]
    for backend in BACKENDS:
        run = runs[backend, lambd]
        assert len(run.train_loss) == len(run.test_loss) == weight_decay.EPOCHS
        # float32, 400 steps: ‖w‖ and the test loss agree to ~1e-7 (rtol 1e-5 leaves room);
        # the λ = 0 train loss (~4e-6) is a difference of near-equal numbers: 1e-3
        assert run.weight_norm == pytest.approx(reference.weight_norm, rel=1e-5), backend
        assert run.test_loss == pytest.approx(reference.test_loss, rel=1e-5), backend
        assert run.train_loss == pytest.approx(reference.train_loss, rel=1e-3), backend


def test_the_figures_show_what_d2l_shows(runs: dict) -> None:
    free, decayed = runs["numpy", 0.0], runs["numpy", 3.0]
    # without decay the 200 weights fit 20 examples: train loss vanishes, test loss stays huge
    assert free.train_loss[-1] < 1e-4 < 100 < free.test_loss[-1]
    # with λ = 3 the weights shrink by a factor ~40 and the test loss falls by ~1000
    assert decayed.weight_norm < free.weight_norm / 20
    assert decayed.test_loss[-1] < free.test_loss[-1] / 500
    assert decayed.test_loss == sorted(decayed.test_loss, reverse=True)


def test_one_mlpcore_step_is_d2ls_step() -> None:
    """mse with L2(2λ) and lr/2 takes d2l's step: w -= lr·(mean((ŷ - y)·x) + λ·w)."""
    (x, y), _ = weight_decay.data()
    x, y = x[:5].astype(np.float64), y[:5].astype(np.float64)
    lr, lambd = weight_decay.LR, 3.0
    model = mlpcore.MLP(mlpcore.MLPSpec((200, 1)), seed=0, dtype="float64",
                        weights_init=mlpcore.Normal(1.0), loss="mse")
    w, b = model.state_dict()["dense_0/weights"], model.state_dict()["dense_0/bias"]
    error = x @ w + b - y
    expected_w = w - lr * (x.T @ error / 5 + lambd * w)
    expected_b = b - lr * error.mean(axis=0)
    mlpcore.fit(model, (x, y), optimizer=mlpcore.SGD(lr / 2),
                regulariser=mlpcore.L2(2 * lambd), epochs=1, batch_size=5, train_accuracy=False)
    np.testing.assert_allclose(model.state_dict()["dense_0/weights"], expected_w, rtol=1e-12)
    np.testing.assert_allclose(model.state_dict()["dense_0/bias"], expected_b, rtol=1e-12)


def test_the_page_renders_the_table_and_an_embedded_png(runs: dict) -> None:
    text = weight_decay.render(list(runs.values()), b"\x89PNG\r\n\x1a\n", "numpy")
    assert text.count("\n| ") == 2 * len(BACKENDS) + 1
    assert "| 3 | numpy |" in text and "(data:image/png;base64,iVBORw" in text
