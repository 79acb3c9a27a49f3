"""Optimizers (mlpcore/optimizers.py) and resumable training: SGD with momentum and Nesterov, Adam,
their checks, the optimizer state that fit keeps on the model, and its checkpoint round trip.
The per-step maths against the float64 reference is the conformance suite's (test_training.py)."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.numpy

import mlpcore
from mlpcore import MLP, SGD, Adam, CheckpointError, MLPSpec, OptimizerState
from mlpcore.io.checkpoint import MANIFEST_KEY, read_checkpoint
from mlpcore.optimizers import adam_factors, slot_names, state_problems
from mlpcore.training import fit
from mlpcore_conformance.tolerances import assert_close

SPEC = MLPSpec((6, 8, 3), activation="tanh", dropout=0.2)
ALL_WAYS = [(b, m) for b in ("numpy", "torch", "tensorflow")
            for m in mlpcore.get_backend(b).training_methods]
OPTIMIZERS = [Adam(0.01), SGD(0.1, momentum=0.9, nesterov=True), SGD(0.2, momentum=0.5),
              SGD(0.1)]


def data(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(4)
    return rng.standard_normal((n, 6)).astype(np.float32), rng.integers(0, 3, n)


def train(model: MLP, optimizer: Any, epochs: int, method: str | None = None) -> list[float]:
    return fit(model, data(), optimizer=optimizer, epochs=epochs, batch_size=16, method=method,
               train_accuracy=False).loss


# --- the optimizer objects ------------------------------------------------------------------

@pytest.mark.parametrize(("make", "fragment"), [
    (lambda: SGD(-0.1), "SGD lr"),
    (lambda: SGD(0.1, momentum=1.0), "SGD momentum"),
    (lambda: SGD(0.1, nesterov=True), "nesterov=True needs a momentum"),
    (lambda: Adam(0.0), "Adam lr"),
    (lambda: Adam(float("nan")), "Adam lr"),
    (lambda: Adam(betas=(1.0, 0.999)), r"Adam betas\[0\]"),
    (lambda: Adam(betas=(0.9, -0.1)), r"Adam betas\[1\]"),
    (lambda: Adam(betas=(0.9,)), "Adam betas must be a pair"),  # type: ignore[arg-type]
    (lambda: Adam(eps=0.0), "Adam eps"),
    (lambda: Adam(lr=True), "Adam lr"),
])
def test_bad_optimizer_arguments_are_refused_by_name(make: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        make()


def test_sgd_nesterov_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="nesterov"):
        SGD(0.1, momentum=0.9, nesterov=1)  # type: ignore[arg-type]


def test_slot_names_and_adam_factors() -> None:
    names = ["dense_0/weights", "dense_0/bias"]
    assert slot_names(Adam(), names) == ["dense_0/weights/m", "dense_0/weights/v",
                                         "dense_0/bias/m", "dense_0/bias/v"]
    assert slot_names(SGD(0.1, momentum=0.9), names) == ["dense_0/weights/velocity",
                                                         "dense_0/bias/velocity"]
    assert slot_names(SGD(0.1), names) == []
    step_size, root = adam_factors(Adam(0.1, betas=(0.5, 0.75)), 2)
    assert step_size == pytest.approx(0.1 / 0.75) and root == pytest.approx(np.sqrt(1 - 0.5625))


def test_state_problems_lists_every_misfit() -> None:
    shapes = SPEC.variable_shapes()
    good = {f"{name}/velocity": np.zeros(shape) for name, shape in shapes.items()}
    assert state_problems(OptimizerState(SGD(0.1, momentum=0.9), 3, good), shapes) == []
    bad = dict(good)
    del bad["dense_0/bias/velocity"]
    bad["dense_1/weights/velocity"] = np.zeros((2, 2))
    bad["dense_9/bias/m"] = np.zeros(3)
    problems = state_problems(OptimizerState(SGD(0.1, momentum=0.9), -1, bad), shapes)
    assert len(problems) == 4 and "missing optimizer slot 'dense_0/bias/velocity'" in problems[0]
    assert "unexpected optimizer slot 'dense_9/bias/m'" in problems[1]
    assert "'dense_1/weights/velocity' has shape (2, 2), expected (8, 3)" in problems[2]
    assert "step must be an integer >= 0, got -1" in problems[3]


def test_fit_refuses_what_is_not_an_optimizer() -> None:
    with pytest.raises(TypeError, match=r"optimizer must be mlpcore\.SGD or mlpcore\.Adam"):
        fit(MLP(SPEC, backend="numpy"), data(), optimizer="adam")  # type: ignore[arg-type]


# --- fit keeps and continues the state ----------------------------------------------------------

def test_fit_keeps_the_state_and_continues_with_an_equal_optimizer() -> None:
    model = MLP(SPEC, backend="numpy", seed=3)
    assert model.optimizer_state is None
    train(model, Adam(0.01), 2)
    state = model.optimizer_state
    assert state is not None and (state.step, state.epoch, state.seed) == (8, 2, 3)
    assert sorted(state.slots) == sorted(slot_names(Adam(), list(SPEC.variable_shapes())))
    history = fit(model, data(), optimizer=Adam(0.01), epochs=1, batch_size=16)
    assert [e.epoch for e in history.epochs] == [3]
    assert model.optimizer_state is not None and model.optimizer_state.step == 12
    # another optimizer starts afresh: epoch 1, step 0, zero slots
    history = fit(model, data(), optimizer=SGD(0.1, momentum=0.9), epochs=1, batch_size=16)
    assert [e.epoch for e in history.epochs] == [1]
    assert model.optimizer_state is not None and model.optimizer_state.step == 4


def test_a_state_that_does_not_fit_the_model_is_refused() -> None:
    model = MLP(SPEC, backend="numpy")
    model.optimizer_state = OptimizerState(Adam(), 3, {"dense_0/weights/m": np.zeros((6, 8))})
    with pytest.raises(ValueError, match=r"model\.optimizer_state does not fit the model: "
                                         r"missing optimizer slot 'dense_0/weights/v'"):
        fit(model, data(), optimizer=Adam())
    with pytest.raises(CheckpointError, match="optimizer_state does not fit"):
        mlpcore.save(model, "never-written.safetensors")
    assert not Path("never-written.safetensors").exists()


@pytest.mark.parametrize(("backend", "method"), ALL_WAYS)
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=repr)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_four_epochs_saved_loaded_and_four_more_are_eight_straight(
        tmp_path: Path, backend: str, method: str, optimizer: Any, dtype: str) -> None:
    """Bit for bit on one backend and method, in both precisions, Keras's SGD included (its slot
    is ``-lr·v``, which no ``v`` of the same precision reproduces exactly: the trainer continues
    from the ``v`` it reports, see mlpcore_tensorflow.training)."""
    straight = MLP(SPEC, backend=backend, seed=3, dtype=dtype)
    want = train(straight, optimizer, 8, method)
    first = MLP(SPEC, backend=backend, seed=3, dtype=dtype)
    got = train(first, optimizer, 4, method)
    path = mlpcore.save(first, tmp_path / "half.safetensors")
    resumed = mlpcore.load(path, backend=backend)
    got += train(resumed, optimizer, 4, method)
    assert got == want
    for name, value in straight.variables.items():
        assert resumed.variables[name].dtype == value.dtype == np.dtype(dtype)
        assert np.array_equal(resumed.variables[name], value), name


@pytest.mark.parametrize("optimizer", [Adam(0.01), SGD(0.1, momentum=0.9, nesterov=True)],
                         ids=repr)
def test_a_run_resumed_on_another_backend_agrees_within_the_tolerance_table(
        tmp_path: Path, optimizer: Any) -> None:
    straight = MLP(SPEC, backend="numpy", seed=3)
    want = train(straight, optimizer, 8)
    first = MLP(SPEC, backend="torch", seed=3)
    got = train(first, optimizer, 4)
    path = mlpcore.save(first, tmp_path / "torch.safetensors")
    for backend in ("tensorflow", "numpy"):
        resumed = mlpcore.load(path, backend=backend)
        losses = got + train(resumed, optimizer, 4)
        assert_close(losses, want, "training", "float32", what=f"epoch losses on {backend}")
        for name, value in straight.variables.items():
            assert_close(resumed.variables[name], value, "training", "float32",
                         what=f"{name} on {backend}")


# --- the checkpoint ------------------------------------------------------------------------------

def test_the_checkpoint_holds_the_state_by_name(tmp_path: Path) -> None:
    model = MLP(SPEC, backend="numpy", seed=3)
    train(model, Adam(0.01, betas=(0.8, 0.99)), 1)
    path = mlpcore.save(model, tmp_path / "m.safetensors")
    checkpoint = read_checkpoint(path)
    entry = checkpoint.manifest["optimizer"]
    assert {k: v for k, v in entry.items() if k != "slots"} == {
        "name": "Adam", "lr": 0.01, "betas": [0.8, 0.99], "eps": 1e-8, "step": 4, "epoch": 1,
        "seed": 3}
    assert sorted(entry["slots"]) == sorted(
        f"optimizer/{n}" for n in slot_names(Adam(), list(SPEC.variable_shapes())))
    state = checkpoint.optimizer_state
    assert state is not None and state.optimizer == Adam(0.01, betas=(0.8, 0.99))
    assert model.optimizer_state is not None
    for name, value in model.optimizer_state.slots.items():
        assert np.array_equal(state.slots[name], value)
    tensors = safetensors.numpy.load_file(path)
    assert "optimizer/dense_0/weights/m" in tensors


def test_a_checkpoint_without_state_loads_without_state(tmp_path: Path) -> None:
    path = mlpcore.save(MLP(SPEC, backend="numpy"), tmp_path / "m.safetensors")
    assert "optimizer" not in read_checkpoint(path).manifest
    assert mlpcore.load(path, backend="torch").optimizer_state is None


def test_load_casts_the_state_to_the_model_dtype(tmp_path: Path) -> None:
    model = MLP(SPEC, backend="numpy", seed=3)
    train(model, SGD(0.1, momentum=0.9), 1)
    loaded = mlpcore.load(mlpcore.save(model, tmp_path / "m.safetensors"), dtype="float64")
    assert loaded.optimizer_state is not None
    assert {v.dtype for v in loaded.optimizer_state.slots.values()} == {np.dtype("float64")}


def test_load_into_takes_the_whole_checkpoints_state_and_drops_a_stale_one(
        tmp_path: Path) -> None:
    """load_into of a whole mlpcore checkpoint sets the state as load does (the run continues
    bit for bit); a subset, or a file without state, leaves no state; a failed load changes
    nothing."""
    from mlpcore.io.interop import load_into

    saved = MLP(SPEC, backend="numpy", seed=3)
    train(saved, SGD(0.1, momentum=0.9), 2)
    path = mlpcore.save(saved, tmp_path / "m.safetensors")
    target = MLP(SPEC, backend="torch", seed=8)
    train(target, Adam(0.01), 1)  # a state of its own, which the load replaces
    load_into(target, path)
    state = target.optimizer_state
    assert state is not None and (state.optimizer, state.step, state.epoch) == (
        SGD(0.1, momentum=0.9), 8, 2)
    loaded = mlpcore.load(path, backend="torch")
    history = fit(target, data(), optimizer=SGD(0.1, momentum=0.9), epochs=2, batch_size=16)
    assert [e.epoch for e in history.epochs] == [3, 4]
    assert history.loss == train(loaded, SGD(0.1, momentum=0.9), 2)
    for name, value in loaded.variables.items():
        assert np.array_equal(target.variables[name], value), name
    wide = MLP(SPEC, backend="numpy", seed=8, dtype="float64")
    load_into(wide, path)
    assert wide.optimizer_state is not None
    assert {v.dtype for v in wide.optimizer_state.slots.values()} == {np.dtype("float64")}

    before = target.optimizer_state
    with pytest.raises(CheckpointError):
        load_into(target, tmp_path / "missing.safetensors")
    assert target.optimizer_state is before
    load_into(target, path, include=["dense_0/bias"])
    assert target.optimizer_state is None
    train(target, Adam(0.01), 1)
    load_into(target, mlpcore.save(MLP(SPEC, backend="numpy"), tmp_path / "plain.safetensors"))
    assert target.optimizer_state is None


def _rewrite(path: Path, edit: Any, drop: str | None = None) -> None:
    """Edit the manifest (keeping its checksum right) and maybe drop a tensor."""
    with safetensors.safe_open(path, "np") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys() if k != drop}  # noqa: SIM118
    manifest = json.loads(metadata[MANIFEST_KEY])
    edit(manifest)
    text = json.dumps(manifest, separators=(",", ":"))

    metadata = {MANIFEST_KEY: text, "mlpcore_manifest_crc32": f"{zlib.crc32(text.encode()):08x}"}
    safetensors.numpy.save_file(tensors, path, metadata=metadata)


@pytest.mark.parametrize(("edit", "drop", "fragment"), [
    (lambda m: m["optimizer"].update(name="RMSprop"), None, "name must be one of SGD, Adam"),
    (lambda m: m["optimizer"].update(betas=[1.5, 0.9]), None, r"invalid Adam: Adam betas\[0\]"),
    (lambda m: m["optimizer"].update(step=-2), None, "step must be an integer >= 0"),
    (lambda m: m["optimizer"]["slots"].pop("optimizer/dense_0/bias/v"), None,
     "tensor 'optimizer/dense_0/bias/v' is in the file but not in the manifest"),
    (lambda m: None, "optimizer/dense_0/bias/v",
     "'optimizer/dense_0/bias/v' is in the manifest but has no tensor in the file"),
])
def test_a_bad_optimizer_entry_is_refused_with_the_file_named(
        tmp_path: Path, edit: Any, drop: str | None, fragment: str) -> None:
    model = MLP(SPEC, backend="numpy", seed=3)
    train(model, Adam(0.01), 1)
    path = mlpcore.save(model, tmp_path / "m.safetensors")
    _rewrite(path, edit, drop)
    with pytest.raises(CheckpointError, match=fragment) as raised:
        mlpcore.load(path)
    assert str(path) in str(raised.value)


def test_a_slot_of_the_wrong_shape_is_refused(tmp_path: Path) -> None:
    model = MLP(SPEC, backend="numpy", seed=3)
    train(model, SGD(0.1, momentum=0.5), 1)
    path = mlpcore.save(model, tmp_path / "m.safetensors")
    with safetensors.safe_open(path, "np") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    manifest = json.loads(metadata[MANIFEST_KEY])
    name = "optimizer/dense_0/bias/velocity"
    tensors[name] = np.zeros(5, np.float32)

    manifest["optimizer"]["slots"][name].update(shape=[5], crc32=f"{zlib.crc32(tensors[name]):08x}")
    text = json.dumps(manifest, separators=(",", ":"))
    safetensors.numpy.save_file(tensors, path, metadata={
        MANIFEST_KEY: text, "mlpcore_manifest_crc32": f"{zlib.crc32(text.encode()):08x}"})
    with pytest.raises(CheckpointError, match=r"optimizer slot 'dense_0/bias/velocity' has shape "
                                              r"\(5,\), expected \(8,\)"):
        mlpcore.load(path)


def test_a_backend_without_the_optimizers_capability() -> None:
    """Its trainers know neither Adam, Nesterov nor states: fit refuses those, still continues
    plain SGD (no slots), and starts momentum afresh."""
    from mlpcore_numpy.backend import NumpyBackend

    class Plain(NumpyBackend):
        capabilities = NumpyBackend.capabilities - {mlpcore.Capability.OPTIMIZERS}

    model = MLP(SPEC, backend=Plain())
    for optimizer in (Adam(), SGD(0.1, momentum=0.9, nesterov=True)):
        with pytest.raises(ValueError, match="no 'optimizers' capability"):
            fit(model, data(), optimizer=optimizer)
    train(model, SGD(0.1), 1)
    assert model.optimizer_state == OptimizerState(SGD(0.1), 4, {}, 1, 0)
    assert [e.epoch for e in fit(model, data(), optimizer=SGD(0.1), epochs=1).epochs] == [2]
    train(model, SGD(0.1, momentum=0.9), 1)
    assert model.optimizer_state is None
    slots = {f"{n}/velocity": np.zeros(s, np.float32) for n, s in SPEC.variable_shapes().items()}
    model.optimizer_state = OptimizerState(SGD(0.1, momentum=0.9), 4, slots, 1)
    with pytest.raises(ValueError, match="cannot resume an optimizer's slots"):
        fit(model, data(), optimizer=SGD(0.1, momentum=0.9))


def test_model_to_carries_the_optimizer_state() -> None:
    model = MLP(SPEC, backend="numpy", seed=3)
    train(model, Adam(0.01), 2)
    moved = model.to("torch")
    assert model.optimizer_state is not None and moved.optimizer_state is not None
    assert moved.optimizer_state.step == 8 and moved.optimizer_state.epoch == 2
    for name, value in model.optimizer_state.slots.items():
        assert np.array_equal(moved.optimizer_state.slots[name], value)
        assert moved.optimizer_state.slots[name] is not value
    straight = MLP(SPEC, backend="numpy", seed=3)
    want = train(straight, Adam(0.01), 3)
    assert_close(train(moved, Adam(0.01), 1), want[2:], "training", "float32", what="epoch 3")
