"""The notebook's manual-backprop run on real Fashion-MNIST, when Debian's package provides it.

784-128 (sigmoid)-10, truncated-normal(0.1) weights, zero biases, SGD lr 0.1, batch 64, 10 epochs
on the first 55,000 training images. On MNIST the notebook reaches Test ACC 0.945; on
Fashion-MNIST a correct implementation reaches about 0.85 (docs/textbook-run.md has the figures).
"""

from __future__ import annotations

import pytest

import mlpcore
from mlpcore.data import DEBIAN_FASHION_MNIST, load_dataset

pytestmark = pytest.mark.skipif(
    not DEBIAN_FASHION_MNIST.is_dir(),
    reason=f"real Fashion-MNIST not installed at {DEBIAN_FASHION_MNIST} "
           "(apt-get install dataset-fashion-mnist)")


def test_numpy_backend_reproduces_the_textbook_run() -> None:
    data = load_dataset(DEBIAN_FASHION_MNIST, validation_size=5000)
    assert len(data.train.labels) == 55_000
    model = mlpcore.MLP(mlpcore.MLPSpec((784, 128, 10), "sigmoid"), backend="numpy", seed=123)
    history = mlpcore.fit(model, data.train, optimizer=mlpcore.SGD(0.1), epochs=10,
                          batch_size=64, validation=data.valid, train_accuracy=False)
    test = model.evaluate(data.test.images, data.test.labels)
    assert 0.6 < history.loss[0] < 1.0
    assert history.loss == sorted(history.loss, reverse=True)
    # seed 123 ends on a noisy epoch (0.828); seeds 1, 2, 3, 2024 give 0.846-0.852
    assert test.accuracy >= 0.82
    assert history.valid_accuracy[-1] is not None and history.valid_accuracy[-1] >= 0.83
