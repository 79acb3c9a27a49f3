"""Devices (``mlpcore/devices.py``, the optional ``Placement`` protocol): what a backend declares,
how an unusable device is refused, and an accelerator against the CPU (which needs a device other
than the CPU and skips, saying so, on a machine without). Checkpoints across devices are in
``test_checkpoints.py``."""

from __future__ import annotations

import pytest

import mlpcore
from mlpcore.backend import Backend
from mlpcore.devices import available_devices
from mlpcore_conformance import cases
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.tolerances import assert_close

SPEC = mlpcore.MLPSpec((5, 6, 6, 3), activation="tanh", dropout=0.25)


def test_devices_are_listed_cpu_first(backend: Backend, repro: Repro) -> None:
    repro("devices = mlpcore.devices.available_devices(backend)",
          "model = mlpcore.MLP(spec, backend=backend, device='cpu')", spec=SPEC)
    devices = available_devices(backend)
    assert devices and all(isinstance(d, str) and d for d in devices), (
        f"devices() must list device names, got {devices!r}")
    model = mlpcore.MLP(SPEC, backend=backend, device="cpu")
    assert model.device == devices[0], (
        f"device='cpu' gave {model.device!r}; the CPU must come first in devices(): {devices}")
    assert mlpcore.MLP(SPEC, backend=backend).device == devices[0], "the default is the CPU"


@pytest.mark.parametrize("device", ["gpu:4096", "no such device!", ""])
def test_unusable_device_is_refused_naming_the_available(backend: Backend, repro: Repro,
                                                         device: str) -> None:
    repro(f"mlpcore.MLP(spec, backend=backend, device={device!r})  # must raise DeviceError",
          spec=SPEC)
    with pytest.raises(mlpcore.DeviceError) as raised:
        mlpcore.MLP(SPEC, backend=backend, device=device)
    listed = available_devices(backend)
    assert all(name in str(raised.value) for name in listed), (
        f"the error must name the devices available ({listed}): {raised.value}")


def test_an_accelerator_matches_the_cpu(backend: Backend, repro: Repro) -> None:
    """On the backend's first device other than the CPU: the same outputs and training (within
    the float32 tolerances) as on the CPU; needs an accelerator."""
    devices = available_devices(backend)
    if len(devices) < 2:
        pytest.skip(f"needs an accelerator: backend {backend.name!r} can use only "
                    f"{', '.join(devices)} on this machine")
    accelerator = devices[1]
    x, labels = cases.normal(84, (40, 5), "float32"), cases.labels(85, 40, 3)
    snippet = repro("models = [mlpcore.MLP(spec, backend=backend, seed=3, device=d) "
                    "for d in ('cpu', accelerator)]",
                    "losses = [mlpcore.fit(m, (x, labels), epochs=2, batch_size=8).loss "
                    "for m in models]", spec=SPEC, accelerator=accelerator,
                    x=cases.code("normal", 84, (40, 5), "float32"),
                    labels=cases.code("labels", 85, 40, 3))
    models = [mlpcore.MLP(SPEC, backend=backend, seed=3, device=d) for d in ("cpu", accelerator)]
    assert_close(models[1].predict(x), models[0].predict(x), "forward", "float32",
                 what=f"outputs on {accelerator} vs the CPU", reproduce=snippet)
    losses = [mlpcore.fit(m, (x, labels), epochs=2, batch_size=8, train_accuracy=False).loss
              for m in models]
    assert_close(losses[1], losses[0], "training", "float32",
                 what=f"epoch losses on {accelerator} vs the CPU", reproduce=snippet)
