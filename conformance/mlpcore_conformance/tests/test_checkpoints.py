"""Checkpoints (``mlpcore/io/checkpoint.py``): bit-exact round trips, across devices (from the
``--mlpcore-device`` device to the CPU and back), every ordered pair of backends (with
``--mlpcore-matrix``), strict loads, and nothing changed by a failed load.

A failed write is provoked at the backend boundary by handing ``write_variables`` one value that
cannot be converted to a float (a string array): the contract says a backend converts everything
first and assigns only when every conversion succeeded, so the model must be unchanged, whichever
variable was the bad one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore.backend import Backend, Capability
from mlpcore.spec import DTypeName
from mlpcore_conformance import cases, reference
from mlpcore_conformance.repro import Repro, Snippet
from mlpcore_conformance.session import MATRIX_PROPERTY, ConformanceSession
from mlpcore_conformance.strategies import DTYPES
from mlpcore_conformance.tolerances import assert_bit_identical, assert_close, measure

SPEC = mlpcore.MLPSpec((5, 6, 6, 3), activation="tanh")
"""Has a square layer, where a transposed matrix keeps its shape."""


def _values(dtype: str, seed: int = 81) -> dict[str, np.ndarray]:
    values = cases.variables(SPEC, seed, dtype)
    special = cases.special_values(dtype)
    first = values["dense_1/bias"]
    first[:] = special[:first.size]
    return values


def _model(backend: Backend, dtype: str, values: dict[str, np.ndarray]) -> mlpcore.MLP:
    model = mlpcore.MLP(SPEC, backend=backend, dtype=dtype)
    model.assign(values)
    return model


def _with_model(repro: Repro, dtype: str, values: dict[str, np.ndarray], *lines: str,
                backend: str = "backend") -> Snippet:
    """A snippet making :func:`_model` on ``backend``, then running ``lines``."""
    return repro(f"model = mlpcore.MLP(spec, backend={backend}, dtype=dtype)",
                 "model.assign(values)", *lines, spec=SPEC, dtype=dtype, values=values)


def _snapshot(model: mlpcore.MLP, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
    return model.variables, model.predict(x)


def _assert_unchanged(model: mlpcore.MLP, x: np.ndarray,
                      before: tuple[dict[str, np.ndarray], np.ndarray], what: str,
                      reproduce: object = None) -> None:
    variables, outputs = before
    now = model.variables
    for name, value in variables.items():
        assert_bit_identical(now[name], value, f"{name} after {what}", reproduce)
    assert_bit_identical(model.predict(x), outputs, f"outputs after {what}", reproduce)


@pytest.mark.parametrize("dtype", DTYPES)
def test_round_trip_is_bit_exact(backend: Backend, repro: Repro, tmp_path: Path,
                                 dtype: str) -> None:
    values = _values(dtype)
    snippet = _with_model(repro, dtype, values, "mlpcore.save(model, 'model.safetensors')",
                          "stored = mlpcore.read_checkpoint('model.safetensors').variables",
                          "loaded = mlpcore.load('model.safetensors', backend=backend)")
    model = _model(backend, dtype, values)
    x = cases.normal(82, (7, 5), dtype)
    path = mlpcore.save(model, tmp_path / "model.safetensors")
    checkpoint = mlpcore.read_checkpoint(path)
    assert checkpoint.backend == backend.name, f"manifest names backend {checkpoint.backend!r}"
    assert checkpoint.dtype == dtype
    for name, value in values.items():
        assert_bit_identical(checkpoint.variables[name], value,
                             f"{name} as saved (canonical (fan_in, fan_out) layout)", snippet)
    loaded = mlpcore.load(path, backend=backend)
    assert loaded.dtype == dtype and loaded.spec == SPEC
    for name, value in values.items():
        assert_bit_identical(loaded.variables[name], value, f"{name} after save and load",
                             snippet)
    assert_close(loaded.predict(x), model.predict(x), "forward", dtype,
                 what="outputs of the loaded model vs the saved one", reproduce=snippet)
    into = mlpcore.MLP(SPEC, backend=backend, dtype=dtype, seed=1)
    mlpcore.load_into(into, path)
    for name, value in values.items():
        assert_bit_identical(into.variables[name], value, f"{name} after load_into", snippet)


def test_checkpoint_from_device_loads_on_the_cpu_bit_exact_and_back(
        backend: Backend, repro: Repro, device: str, tmp_path: Path) -> None:
    values = _values("float32", seed=83)
    snippet = repro("model = mlpcore.MLP(spec, backend=backend, device=device)",
                    "model.assign(values)", "mlpcore.save(model, 'd.safetensors')",
                    "on_cpu = mlpcore.load('d.safetensors', backend=backend, device='cpu')",
                    "mlpcore.save(on_cpu, 'cpu.safetensors')",
                    "back = mlpcore.load('cpu.safetensors', backend=backend, device=device)",
                    spec=SPEC, values=values, device=device)
    model = mlpcore.MLP(SPEC, backend=backend, device=device)
    model.assign(values)
    on_cpu = mlpcore.load(mlpcore.save(model, tmp_path / "d.safetensors"), backend=backend,
                          device="cpu")
    back = mlpcore.load(mlpcore.save(on_cpu, tmp_path / "cpu.safetensors"), backend=backend,
                        device=device)
    assert back.device == model.device, f"loaded on {back.device!r}, asked for {device!r}"
    for what, loaded in (("on the CPU", on_cpu), (f"back on {device}", back)):
        for name, value in values.items():
            assert_bit_identical(loaded.variables[name], value, f"{name} {what}", snippet)
    moved = model.to(device="cpu")
    for name, value in values.items():
        assert_bit_identical(moved.variables[name], value, f"{name} after model.to(device='cpu')",
                             snippet)


def test_saved_by_one_backend_loaded_by_another(checkpoint_pair: tuple[Backend, Backend],
                                                conformance: ConformanceSession,
                                                request: pytest.FixtureRequest,
                                                tmp_path: Path) -> None:
    saver, loader = checkpoint_pair
    repro = conformance.repro(saver.name, loader.name)
    request.node.user_properties.append(("mlpcore_matrix_pair", (saver.name, loader.name)))
    dtypes = ["float32"]
    if all(Capability.FLOAT64 in b.capabilities for b in checkpoint_pair):
        dtypes.append("float64")
    worst = 0.0
    for dtype in dtypes:
        values = _values(dtype, seed=91)
        values["dense_1/bias"][:] = cases.normal(92, (6,), dtype)  # finite outputs to compare
        _with_model(repro, dtype, values, "mlpcore.save(model, 'model.safetensors')",
                    "loaded = mlpcore.load('model.safetensors', backend=loader)",
                    backend="saver")
        model = _model(saver, dtype, values)
        path = mlpcore.save(model, tmp_path / f"{saver.name}-{dtype}.safetensors")
        loaded = mlpcore.load(path, backend=loader)
        assert loaded.backend is loader and loaded.dtype == dtype
        for name, value in values.items():
            assert_bit_identical(loaded.variables[name], value,
                                 f"{name} saved by {saver.name!r}, loaded by {loader.name!r}")
        x = cases.normal(93, (8, 5), dtype)
        saved_outputs = model.predict(x)
        loaded_outputs = loaded.predict(x)
        context = f"saved by {saver.name!r} ({dtype}), loaded by {loader.name!r}"
        assert_close(loaded_outputs, saved_outputs, "forward", dtype,
                     what=f"outputs, {context}")
        assert_close(loaded_outputs, reference.forward(SPEC, values, x), "forward", dtype,
                     what=f"outputs vs reference, {context}")
        worst = max(worst, measure(loaded_outputs, saved_outputs, "forward", dtype).max_abs)
    request.node.user_properties.append(
        (MATRIX_PROPERTY, {"dtypes": dtypes, "max_abs_output_diff": worst}))


@pytest.mark.parametrize("dtype", DTYPES)
def test_strict_load_reports_every_problem_and_changes_nothing(backend: Backend, repro: Repro,
                                                               tmp_path: Path,
                                                               dtype: str) -> None:
    values = _values(dtype)
    _with_model(repro, dtype, values)
    model = _model(backend, dtype, values)
    x = cases.normal(83, (4, 5), dtype)
    before = _snapshot(model, x)
    expected = {
        "wrong width": ((5, 7, 6, 3), ["wrong shape: dense_0/weights",
                                       "wrong shape: dense_0/bias",
                                       "wrong shape: dense_1/weights"]),
        "fewer layers": ((5, 6, 3), ["missing: dense_2/weights", "missing: dense_2/bias",
                                     "wrong shape: dense_1/weights"]),
        "more layers": ((5, 6, 6, 3, 3), ["unexpected: dense_3/weights",
                                          "unexpected: dense_3/bias"]),
    }
    for label, (sizes, phrases) in expected.items():
        name = f"{label.replace(' ', '-')}.safetensors"
        snippet = _with_model(
            repro, dtype, values,
            f"mlpcore.save(mlpcore.MLP(MLPSpec({sizes}), backend=backend, dtype=dtype), {name!r})",
            f"mlpcore.load_into(model, {name!r})  # must raise, naming every problem")
        path = mlpcore.save(mlpcore.MLP(mlpcore.MLPSpec(sizes), backend=backend, dtype=dtype),
                            tmp_path / name)
        with pytest.raises(mlpcore.CheckpointError) as error:
            mlpcore.load_into(model, path)
        message = str(error.value)
        missing = [p for p in [str(path), *phrases] if p not in message]
        assert not missing, (f"load_into a checkpoint with {label}: the error lacks {missing}:"
                             f"\n{message}")
        _assert_unchanged(model, x, before, f"a failed load ({label})", snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_corrupt_checkpoint_changes_nothing(backend: Backend, repro: Repro, tmp_path: Path,
                                            dtype: str) -> None:
    values = _values(dtype)
    snippet = _with_model(
        repro, dtype, values,
        "path = mlpcore.save(mlpcore.MLP(spec, backend=backend, dtype=dtype, seed=2), "
        "'corrupt.safetensors')",
        "data = bytearray(path.read_bytes())", "data[-1] ^= 0xFF",
        "path.write_bytes(bytes(data))",
        "mlpcore.load_into(model, path)  # must raise CheckpointError (checksum)")
    model = _model(backend, dtype, values)
    x = cases.normal(84, (4, 5), dtype)
    before = _snapshot(model, x)
    path = mlpcore.save(mlpcore.MLP(SPEC, backend=backend, dtype=dtype, seed=2),
                        tmp_path / "corrupt.safetensors")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(mlpcore.CheckpointError, match="checksum"):
        mlpcore.load_into(model, path)
    _assert_unchanged(model, x, before, "loading a corrupt checkpoint", snippet)


@pytest.mark.parametrize("dtype", DTYPES)
def test_failed_write_changes_nothing(backend: Backend, repro: Repro, dtype: DTypeName) -> None:
    values = _values(dtype)
    repro("model = backend.build(spec, values, dtype)", spec=SPEC, values=values, dtype=dtype)
    model = backend.build(SPEC, values, dtype)
    x = cases.normal(85, (4, 5), dtype)
    outputs = model.forward(x)
    replacement = cases.variables(SPEC, 86, dtype)
    for bad in SPEC.variable_shapes():
        new = dict(replacement)
        new[bad] = np.full(new[bad].shape, "not a number")
        snippet = repro("model = backend.build(spec, values, dtype)",
                        "new = cases.variables(spec, 86, dtype)",
                        f"new[{bad!r}] = np.full(new[{bad!r}].shape, 'not a number')",
                        "model.write_variables(new)  # must raise and change nothing",
                        "print(model.read_variables())",
                        spec=SPEC, values=values, dtype=dtype)
        try:
            model.write_variables(new)
        except Exception:
            pass
        else:
            raise AssertionError(f"write_variables accepted a string array for {bad!r}; "
                                 f"converting it to {dtype} must fail\nreproduce:\n{snippet}")
        now = model.read_variables()
        changed = [name for name, value in values.items()
                   if now[name].tobytes() != value.tobytes()]
        assert not changed, (
            f"write_variables failed on {bad!r} but had already assigned {changed}; it must "
            f"convert every value first and assign only when all conversions succeeded\n"
            f"reproduce:\n{snippet}")
        assert_bit_identical(model.forward(x), outputs, f"outputs after a failed write ({bad})",
                             snippet)
