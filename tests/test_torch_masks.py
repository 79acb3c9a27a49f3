"""Portable dropout masks made with torch ops (mlpcore_torch.masks), on CPU tensors: bit for bit
NumPy's Philox and :func:`mlpcore.dropout.portable_keep_mask`; the trainer's device path trains
exactly as its NumPy-drawn path. (No accelerator here: the device itself is not exercised.)"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from mlpcore import MLP, SGD, MLPSpec, fit  # noqa: E402
from mlpcore.dropout import portable_keep_mask  # noqa: E402
from mlpcore_torch import training  # noqa: E402
from mlpcore_torch.masks import philox4x64_10, portable_keep_masks  # noqa: E402

EDGE_RATES = (0.0, 1.0, 1e-45, 2.0**-24, 3e-8, 0.1, 1 / 3, 0.5, 0.9, 1 - 2.0**-24, 1 - 2.0**-25)


def test_philox_is_numpys_philox() -> None:
    rng = np.random.default_rng(4)
    keys = np.concatenate([rng.integers(0, 2**64, (30, 2), dtype=np.uint64),
                           np.array([[0, 0], [2**64 - 1, 2**64 - 1], [2**63, 1]], np.uint64)])
    out = philox4x64_10(torch.arange(1, 11), keys).numpy().view(np.uint64)
    assert out.shape == (len(keys), 10, 4)
    for key, got in zip(keys, out, strict=True):
        want = np.random.Philox(key=key).random_raw(40).reshape(10, 4)
        np.testing.assert_array_equal(got, want)


def test_masks_equal_the_numpy_masks() -> None:
    shapes = [(), (0, 3), (1,), (7,), (8,), (9,), (1, 1), (2, 3), (128, 256), (3, 4, 5)]
    cases = [(shape, rate) for shape in shapes for rate in (0.5, 0.1)]
    cases += [((5, 7), rate) for rate in EDGE_RATES]
    for seed, first, layer in ((0, 0, 0), (3, 99, 2), (2**32 + 1, 2**32 - 2, 1),
                               (2**64 + 7, 10**20, 0)):
        for shape, rate in cases:
            got = portable_keep_masks(seed, first, 3, layer, shape, rate)
            want = np.stack([portable_keep_mask(seed, first + j, layer, shape, rate)
                             for j in range(3)])
            assert got.dtype == torch.bool and got.shape == want.shape
            np.testing.assert_array_equal(
                got.numpy(), want, err_msg=f"{seed=} {first=} {layer=} {shape=} {rate=}")


def test_masks_refuse_bad_arguments() -> None:
    with pytest.raises(ValueError, match="dropout rate"):
        portable_keep_masks(0, 0, 1, 0, (2, 2), 1.5)
    with pytest.raises(ValueError, match="shape"):
        portable_keep_masks(0, 0, 1, 0, (2, -1), 0.5)
    with pytest.raises(ValueError, match="seed"):
        portable_keep_masks(-1, 0, 1, 0, (2, 2), 0.5)
    assert portable_keep_masks(0, 0, 0, 0, (2, 2), 0.5).shape == (0, 2, 2)


def test_masks_on_device_only_off_the_cpu() -> None:
    assert not training.masks_on_device(torch.device("cpu"))
    assert training.masks_on_device(torch.device("cuda", 0))


@pytest.mark.parametrize("steps_per_call", [None, 4])
def test_trainer_device_masks_train_as_the_numpy_masks(monkeypatch: pytest.MonkeyPatch,
                                                       steps_per_call: int | None) -> None:
    """The device path (forced on CPU tensors), drawn 3 steps at a time across chunks, epochs and
    a short last batch, gives the weights of the NumPy-drawn path bit for bit."""
    spec = MLPSpec((6, 9, 5, 3), activation="relu", dropout=0.4)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((70, 6)).astype(np.float32)
    y = rng.integers(0, 3, 70)
    draws: list[tuple[int, int, int]] = []  # (first step, steps, layer)

    def recording(seed: int, first: int, n_steps: int, layer: int,
                  *args: object) -> torch.Tensor:
        draws.append((first, n_steps, layer))
        return portable_keep_masks(seed, first, n_steps, layer, *args)  # type: ignore[arg-type]

    def train(on_device: bool) -> dict[str, np.ndarray]:
        model = MLP(spec, backend="torch", seed=8)
        with monkeypatch.context() as patch:
            patch.setattr(training, "masks_on_device", lambda device: on_device)
            patch.setattr(training, "DEVICE_MASK_STEPS", 3)
            patch.setattr(training, "portable_keep_masks", recording)
            fit(model, (x, y), epochs=2, batch_size=16, optimizer=SGD(0.1),
                steps_per_call=steps_per_call, train_accuracy=False)
        return model.variables

    host = train(False)
    assert not draws
    device = train(True)
    # 5 steps an epoch, the 5th of 6 rows: a new draw at a new batch size or past a group's end
    assert draws == [(first, 3, layer) for first in (0, 3, 4, 5, 8, 9) for layer in (0, 1)]
    for name, value in host.items():
        np.testing.assert_array_equal(device[name], value, err_msg=name)
