"""Devices and mixed precision in the core and the built-in backends, on the CPU.

The CUDA, MPS and TensorFlow GPU code paths cannot run here; what is checked is everything a CPU
can check: parsing and resolving names (each backend's own spellings included), the refusal
messages, a backend without ``devices()``, the core handing a non-CPU device to ``build`` (through
a NumPy backend that pretends to have one), ``fit`` / ``to`` / ``load`` moving models, and the
mixed-precision rules (float32 masters, loss scaling's training method, dtypes refused).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

import mlpcore
from mlpcore.backend import supported_dtypes
from mlpcore.devices import Portable, available_devices, parse_portable, resolve_device
from mlpcore_numpy.backend import NumpyBackend, NumpyModel

SPEC = mlpcore.MLPSpec((4, 5, 3), activation="relu")
X = np.random.default_rng(0).normal(size=(12, 4)).astype(np.float32)
Y = np.arange(12) % 3


class TwoDevices(NumpyBackend):
    """The NumPy backend claiming a second device, ``fake:0``, to see what the core asks."""

    name = "two_devices"
    built_on: ClassVar[list[str | None]] = []

    def devices(self) -> list[str]:
        return ["cpu", "fake:0"]

    def device_name(self, device: str, portable: Portable | None) -> str:
        if portable is not None and portable.kind == "gpu":
            return f"fake:{portable.index}"
        return super().device_name(device, portable)

    def build(self, spec: mlpcore.MLPSpec, variables: Mapping[str, Any], dtype: Any,
              device: str | None = None) -> NumpyModel:
        self.built_on.append(device)
        return super().build(spec, variables, dtype, device)


class NoDevices:
    """A backend of the documented Protocols only: the NumPy backend's members, no devices()."""

    def __init__(self) -> None:
        inner = NumpyBackend()
        self.name, self.contract_version = "no_devices", inner.contract_version
        self.capabilities, self.training_methods = inner.capabilities, inner.training_methods
        self.activations, self.losses = inner.activations, inner.losses
        self.regularisers, self.dropout = inner.regularisers, inner.dropout
        self.framework_version, self.build = inner.framework_version, inner.build


@pytest.mark.parametrize(("text", "parsed"), [
    ("cpu", Portable("cpu")), ("cpu:0", Portable("cpu")), ("gpu", Portable("gpu")),
    ("gpu:3", Portable("gpu", 3)), ("cuda:0", None), ("GPU", None), ("gpu:", None),
    ("gpu:-1", None), (" gpu", None)])
def test_portable_names_are_parsed_once_in_the_core(text: str, parsed: Portable | None) -> None:
    assert parse_portable(text) == parsed


def test_a_backend_without_devices_runs_on_the_cpu_only() -> None:
    backend = NoDevices()
    assert available_devices(backend) == ["cpu"]
    assert resolve_device(backend, None) == resolve_device(backend, "cpu:0") == "cpu"
    model = mlpcore.MLP(SPEC, backend=backend, device="cpu")  # type: ignore[arg-type]
    assert model.device == "cpu"
    with pytest.raises(mlpcore.DeviceError, match=r"runs on the CPU only.*available.*: cpu"):
        mlpcore.MLP(SPEC, backend=backend, device="gpu")  # type: ignore[arg-type]


@pytest.mark.parametrize(("device", "message"), [
    ("gpu:1", r"device 'gpu:1' \(fake:1\) is not available to backend 'two_devices' now; "
              r"devices available to backend 'two_devices': cpu, fake:0"),
    ("cuda", r"device 'cuda' is not a device name of backend 'two_devices'"),
    (7, r"device must be a string")])
def test_an_unusable_device_is_a_device_error_listing_the_available(device: Any,
                                                                     message: str) -> None:
    with pytest.raises(mlpcore.DeviceError, match=message) as raised:
        mlpcore.MLP(SPEC, backend=TwoDevices(), device=device)
    assert isinstance(raised.value, ValueError)


def test_the_core_passes_device_to_build_off_the_cpu_and_moves_models(tmp_path: Path) -> None:
    backend = TwoDevices()
    backend.built_on.clear()
    model = mlpcore.MLP(SPEC, backend=backend, seed=3)
    assert model.device == "cpu" and backend.built_on == [None]  # CPU: build as it always was
    start = model.variables
    moved = model.to(device="gpu")
    assert moved is not model and moved.device == "fake:0" and model.device == "cpu"
    assert backend.built_on[-1] == "fake:0"
    for name, value in start.items():
        np.testing.assert_array_equal(moved.variables[name], value)
    assert moved.to().device == "fake:0"  # same backend: the device is kept
    assert moved.to("numpy").device == "cpu"  # another backend: its CPU
    mlpcore.fit(model, (X, Y), epochs=1, batch_size=4, device="fake:0")  # moves it in place
    assert model.device == "fake:0"
    path = mlpcore.save(model, tmp_path / "m.safetensors")
    assert mlpcore.load(path, backend=backend, device="gpu:0").device == "fake:0"
    assert mlpcore.MLP.from_variables(SPEC, model.variables, backend=backend,
                                      device="cpu").device == "cpu"
    assert "device='fake:0'" in repr(model)


def test_builtin_backends_map_their_own_and_the_portable_spellings() -> None:
    torch_backend = mlpcore.get_backend("torch")
    assert torch_backend.device_name("cuda", None) == "cuda:0"  # type: ignore[attr-defined]
    assert torch_backend.device_name("cuda:2", None) == "cuda:2"  # type: ignore[attr-defined]
    assert torch_backend.device_name("mps", None) == "mps"  # type: ignore[attr-defined]
    assert torch_backend.device_name("gpu:1", Portable("gpu", 1)) in (  # type: ignore[attr-defined]
        "cuda:1", "mps")
    assert available_devices(torch_backend)[0] == "cpu"
    tf_backend = mlpcore.get_backend("tensorflow")
    for spelling in ("/GPU:1", "/device:GPU:1", "gpu:1"):
        assert tf_backend.device_name(spelling, None) == "/GPU:1"  # type: ignore[attr-defined]
    assert tf_backend.device_name("cpu", Portable("cpu")) == "/CPU:0"  # type: ignore[attr-defined]
    assert available_devices(tf_backend)[0] == "/CPU:0"
    with pytest.raises(mlpcore.DeviceError, match="not a device name of backend 'torch'"):
        mlpcore.MLP(SPEC, backend="torch", device="warp-drive")
    if len(available_devices(tf_backend)) == 1:  # no GPU here
        with pytest.raises(mlpcore.DeviceError, match=r"\(/GPU:0\) is not available"):
            mlpcore.MLP(SPEC, backend="tensorflow", device="gpu")


def test_numpy_declares_float32_and_float64_only() -> None:
    assert supported_dtypes(mlpcore.get_backend("numpy")) == ("float32", "float64")
    with pytest.raises(ValueError, match="does not support dtype 'bfloat16'; it supports "
                                         "float32, float64"):
        mlpcore.MLP(SPEC, backend="numpy", dtype="bfloat16")


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_keeps_float32_masters(backend: str, dtype: str, tmp_path: Path) -> None:
    model = mlpcore.MLP(SPEC, backend=backend, seed=2, dtype=dtype)
    assert model.variable_dtype == "float32" and model.dtype == dtype
    history = mlpcore.fit(model, (X, Y), epochs=3, batch_size=4, optimizer=mlpcore.SGD(0.2))
    assert history.loss[-1] < history.loss[0]
    assert all(v.dtype == np.float32 for v in model.variables.values())
    assert model.predict(X).dtype == np.float32
    path = mlpcore.save(model, tmp_path / "m.safetensors")
    assert mlpcore.read_checkpoint(path).dtype == "float32"
    loaded = mlpcore.load(path, backend=backend, dtype=dtype)
    for name, value in model.variables.items():
        np.testing.assert_array_equal(loaded.variables[name], value)


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_float16_trains_with_the_optimizer_and_its_loss_scaler(backend: str) -> None:
    model = mlpcore.MLP(SPEC, backend=backend, dtype="float16")
    with pytest.raises(ValueError, match="method='optimizer'"):
        mlpcore.fit(model, (X, Y), epochs=1, method="autodiff")
    mlpcore.fit(model, (X, Y), epochs=1, method="optimizer")


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
@pytest.mark.parametrize("dtype", ["bfloat16", "float16"])
def test_mixed_precision_refuses_the_manual_method(backend: str, dtype: str) -> None:
    model = mlpcore.MLP(SPEC, backend=backend, dtype=dtype)
    with pytest.raises(ValueError, match=f"backprop computes in the model's float32 variables; "
                                         f"{dtype} trains with 'autodiff' or 'optimizer'"):
        mlpcore.fit(model, (X, Y), epochs=1, method="manual")


def test_cli_device_and_mixed_dtype(capsys: pytest.CaptureFixture[str]) -> None:
    from mlpcore.cli import main

    args = ["train", "--backend", "torch", "--epochs", "1", "--no-progress", "--sizes", "784,8,10"]
    assert main([*args, "--device", "gpu:9"]) == 1
    assert "mlpcore: error: device 'gpu:9'" in capsys.readouterr().err
    assert main([*args, "--device", "cpu", "--dtype", "bfloat16"]) == 0
    assert "backend torch 2.13.0+cpu, bfloat16" in capsys.readouterr().out.replace(
        mlpcore.get_backend("torch").framework_version(), "2.13.0+cpu")
