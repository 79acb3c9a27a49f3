"""Foreign checkpoint formats: torch state_dict, TF1 Saver, TF2 Checkpoint; name maps, finetuning,
conversion, the format hook."""

from __future__ import annotations

import contextlib
import errno
import os
import resource
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore.errors import CheckpointError
from mlpcore.io.checkpoint import load, save
from mlpcore.io.interop import (
    convert,
    detect_format,
    export_checkpoint,
    formats,
    import_model,
    import_variables,
    load_into,
)
from mlpcore.io.namemap import suggest_map
from mlpcore.model import MLP
from mlpcore.spec import MLPSpec

torch = pytest.importorskip("torch")
SPEC = MLPSpec(sizes=(6, 5, 3), activation="tanh")
X = np.random.default_rng(0).standard_normal((7, 6)).astype(np.float32)
BACKENDS = ["numpy", "torch", "tensorflow"]


def sequential() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))


def torch_outputs(net: torch.nn.Module) -> np.ndarray:
    with torch.no_grad():
        return net(torch.from_numpy(X)).numpy()  # type: ignore[no-any-return]


def assert_same_variables(a: MLP, b: MLP) -> None:
    assert list(a.variables) == list(b.variables)
    for name, value in a.variables.items():
        assert value.tobytes() == b.variables[name].tobytes(), name


def test_plugins_register_the_formats() -> None:
    assert {"mlpcore", "safetensors", "torch-state-dict", "tf1-saver",
            "tf2-checkpoint"} <= set(formats())


def test_a_disabled_plugin_offers_no_formats_and_is_never_imported() -> None:
    code = ("import sys; from mlpcore.io.interop import formats; names = sorted(formats()); "
            "print(names, 'mlpcore_torch.plugin' in sys.modules)")
    env = {**os.environ, "MLPCORE_DISABLE_PLUGINS": "torch"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                            text=True, check=True, timeout=120)
    assert "torch-state-dict" not in result.stdout and "tf1-saver" in result.stdout
    assert result.stdout.strip().endswith("False"), result.stdout


# --- torch ------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_dict_loads_into_every_backend(tmp_path: Path, backend: str) -> None:
    net = sequential()
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    assert detect_format(path).name == "torch-state-dict"
    model = import_model(path, backend, activation="tanh")
    assert model.spec.sizes == (6, 5, 3)
    np.testing.assert_array_equal(model.variables["dense_0/weights"],
                                  net[0].weight.detach().numpy().T)
    np.testing.assert_allclose(model.predict(X), torch_outputs(net), rtol=1e-5, atol=1e-6)


def test_export_to_state_dict_loads_into_nn_sequential(tmp_path: Path) -> None:
    model = MLP(SPEC, seed=4)
    path = export_checkpoint(model, tmp_path / "out.pt")
    net = sequential()
    net.load_state_dict(torch.load(path, weights_only=True))  # strict: names and shapes
    np.testing.assert_allclose(torch_outputs(net), model.predict(X), rtol=1e-5, atol=1e-6)


def test_custom_prefix_needs_a_map_and_the_error_suggests_it(tmp_path: Path) -> None:
    net = sequential()
    path = tmp_path / "custom.pt"
    torch.save({"fc1.weight": net[0].weight, "fc1.bias": net[0].bias,
                "head.weight": net[2].weight, "head.bias": net[2].bias}, path)
    with pytest.raises(CheckpointError) as info:
        import_variables(path)
    message = str(info.value)
    assert str(path) in message and "suggested name map" in message
    expected = {"fc1.weight": "dense_0/weights", "fc1.bias": "dense_0/bias",
                "head.weight": "dense_1/weights", "head.bias": "dense_1/bias"}
    for old, new in expected.items():
        assert f"--map '{old}={new}'" in message
    model = import_model(path, activation="tanh", name_map=expected)
    np.testing.assert_allclose(model.predict(X), torch_outputs(net), rtol=1e-5, atol=1e-6)


def test_prefixed_sequential_names_follow_the_convention(tmp_path: Path) -> None:
    net = sequential()
    path = tmp_path / "prefixed.pt"
    torch.save({f"net.{k}": v for k, v in net.state_dict().items()}, path)
    assert set(import_variables(path)) == set(SPEC.variable_shapes())


class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (Path.touch, (str(self.marker),))  # type: ignore[return-value]


def test_a_code_running_pickle_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"0.weight": torch.zeros(5, 6), "payload": _Evil(marker)}, path)
    model = MLP(SPEC, seed=1)
    before = model.variables
    with pytest.raises(CheckpointError, match=r"weights_only=True") as info:
        import_variables(path)
    assert str(path) in str(info.value)
    with pytest.raises(CheckpointError):
        load_into(model, path, include=["dense_0/weights"], format="torch-state-dict")
    assert not marker.exists()
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])


@pytest.mark.parametrize("shape", [(10**4, 10**4), (10**6, 10**6)], ids=["1e8", "1e12"])
def test_a_stride_0_expansion_is_refused_before_it_is_materialised(
    tmp_path: Path, shape: tuple[int, int]
) -> None:
    path = tmp_path / "expanded.pt"
    one = torch.zeros(1)
    torch.save({"0.weight": one.expand(*shape), "0.bias": one.expand(shape[1])}, path)
    assert path.stat().st_size < 4096  # a small file declaring 10^8 or 10^12 elements
    with pytest.raises(CheckpointError, match="storage holds 4 bytes") as info:
        import_variables(path)
    assert str(path) in str(info.value) and "'0.weight'" in str(info.value)


def test_a_key_that_is_not_a_string_is_named_as_the_problem(tmp_path: Path) -> None:
    path = tmp_path / "int-keys.pt"
    torch.save({1: torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=r"the key 1 \(int\) is not a string"):
        import_variables(path)


def test_a_training_checkpoint_is_not_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "train.pt"
    torch.save({"model": sequential().state_dict(), "epoch": 3}, path)
    with pytest.raises(CheckpointError, match="not a flat state_dict"):
        import_variables(path)


# --- TensorFlow -------------------------------------------------------------------------------


def tf1_tutorial_checkpoint(prefix: Path, named: bool) -> dict[str, np.ndarray]:
    """A tutorial-style TF1 graph: explicit names weights_i/bias_i, or unnamed variables kept in
    dicts (names Variable, Variable_1, ...), plus a global step and Adam slots."""
    tf = pytest.importorskip("tensorflow")
    rng = np.random.default_rng(1)
    values = {"w0": rng.standard_normal((6, 5)).astype(np.float32),
              "w1": rng.standard_normal((5, 3)).astype(np.float32),
              "b0": rng.standard_normal(5).astype(np.float32),
              "b1": rng.standard_normal(3).astype(np.float32)}
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1
        if named:
            weights = {"w0": v1.Variable(values["w0"], name="weights_0"),
                       "w1": v1.Variable(values["w1"], name="weights_1")}
            biases = {"b0": v1.Variable(values["b0"], name="bias_0"),
                      "b1": v1.Variable(values["b1"], name="bias_1")}
        else:
            weights = {"hidden_layer": v1.Variable(values["w0"]), "out": v1.Variable(values["w1"])}
            biases = {"hidden_layer": v1.Variable(values["b0"]), "out": v1.Variable(values["b1"])}
        x = v1.placeholder(tf.float32, (None, 6))
        (w0, w1), (b0, b1) = weights.values(), biases.values()
        logits = tf.matmul(tf.tanh(tf.matmul(x, w0) + b0), w1) + b1
        step = v1.train.get_or_create_global_step()
        train = v1.train.AdamOptimizer(0.1).minimize(tf.reduce_sum(logits), global_step=step)
        del train
        saver = v1.train.Saver()
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            saver.save(session, str(prefix))
    return values


@pytest.mark.parametrize("backend", BACKENDS)
def test_tf1_saver_with_tutorial_names_loads_into_every_backend(
    tmp_path: Path, backend: str
) -> None:
    values = tf1_tutorial_checkpoint(tmp_path / "model.ckpt", named=True)
    assert detect_format(tmp_path / "model.ckpt").name == "tf1-saver"
    assert detect_format(tmp_path).name == "tf1-saver"  # the folder, through its state file
    model = import_model(tmp_path / "model.ckpt", backend, activation="tanh")
    np.testing.assert_array_equal(model.variables["dense_0/weights"], values["w0"])
    np.testing.assert_array_equal(model.variables["dense_1/bias"], values["b1"])


def test_tf1_saver_with_unnamed_dict_variables_gets_a_suggested_map(tmp_path: Path) -> None:
    values = tf1_tutorial_checkpoint(tmp_path / "model.ckpt", named=False)
    with pytest.raises(CheckpointError) as info:
        import_variables(tmp_path / "model.ckpt")
    message = str(info.value)
    suggested = {"Variable": "dense_0/weights", "Variable_1": "dense_1/weights",
                 "Variable_2": "dense_0/bias", "Variable_3": "dense_1/bias"}
    for old, new in suggested.items():
        assert f"--map '{old}={new}'" in message, message
    assert "Adam" not in message and "global_step" not in message
    imported = import_variables(tmp_path / "model.ckpt", name_map=suggested)
    np.testing.assert_array_equal(imported["dense_0/bias"], values["b0"])
    np.testing.assert_array_equal(imported["dense_1/weights"], values["w1"])


def test_tf2_checkpoint_round_trip_and_native_restore(tmp_path: Path) -> None:
    tf = pytest.importorskip("tensorflow")
    model = MLP(SPEC, seed=8)
    prefix = export_checkpoint(model, tmp_path / "model.tf2")
    assert detect_format(prefix).name == "tf2-checkpoint"
    back = import_model(prefix, "numpy", activation="tanh")
    assert_same_variables(back, model)
    root = tf.train.Checkpoint()
    root.dense_0 = tf.Module()
    root.dense_0.weights = tf.Variable(tf.zeros((6, 5)))
    root.read(str(prefix)).expect_partial()
    np.testing.assert_array_equal(root.dense_0.weights.numpy(), model.variables["dense_0/weights"])


def assert_a_failed_export_keeps_the_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, fail: Callable[[], None],
    match: str,
) -> None:
    """Export to ``tmp_path / name``, make the next export fail by ``fail()`` and check that it
    raises ``CheckpointError`` matching ``match``, leaves the folder as it was, and that the first
    checkpoint still loads."""
    old = MLP(SPEC, seed=1)
    prefix = export_checkpoint(old, tmp_path / name)
    before = sorted(p.name for p in tmp_path.iterdir())
    fail()
    with pytest.raises(CheckpointError, match=match):
        export_checkpoint(MLP(SPEC, seed=2), prefix)
    # a first save to a new prefix that fails leaves nothing behind
    with pytest.raises(CheckpointError, match=match):
        export_checkpoint(MLP(SPEC, seed=2), tmp_path / f"fresh{Path(name).suffix}")
    monkeypatch.undo()
    assert_same_variables(import_model(prefix, "numpy", activation="tanh"), old)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize("suffix", [".ckpt", ".tf2"])
def test_a_failed_tensorflow_save_leaves_the_previous_checkpoint_loadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, suffix: str
) -> None:
    pytest.importorskip("tensorflow")
    real_replace = os.replace

    def replace_failing_on_the_index(source: object, target: object) -> None:
        if str(target).endswith(".index"):
            raise OSError(28, "No space left on device")
        real_replace(source, target)  # type: ignore[arg-type]

    assert_a_failed_export_keeps_the_previous(
        tmp_path, monkeypatch, f"model{suffix}",
        lambda: monkeypatch.setattr(os, "replace", replace_failing_on_the_index),
        r"cannot save checkpoint .*No space left")


def test_a_tensorflow_bundle_is_synced_before_it_replaces_the_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorflow")

    def full_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    assert_a_failed_export_keeps_the_previous(
        tmp_path, monkeypatch, "model.ckpt", lambda: monkeypatch.setattr(os, "fsync", full_disk),
        r"cannot save checkpoint .*No space left")


def test_a_tensorflow_write_error_is_a_checkpoint_error_and_keeps_the_previous(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tf = pytest.importorskip("tensorflow")

    def full_disk(self: object, prefix: str) -> str:
        raise tf.errors.ResourceExhaustedError(None, None, f"{prefix}: No space left on device")

    assert_a_failed_export_keeps_the_previous(
        tmp_path, monkeypatch, "model.tf2",
        lambda: monkeypatch.setattr(tf.train.Checkpoint, "write", full_disk),
        r"cannot save checkpoint .*\.tf2: ResourceExhaustedError")


def test_a_tensorflow_save_works_where_no_hard_link_can_be_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("tensorflow")
    prefix = export_checkpoint(MLP(SPEC, seed=1), tmp_path / "model.ckpt")

    def no_hard_links(*args: object, **kwargs: object) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_hard_links)
    new = MLP(SPEC, seed=2)
    assert export_checkpoint(new, prefix) == prefix
    monkeypatch.undo()
    assert_same_variables(import_model(prefix, "numpy", activation="tanh"), new)


EXPORTS = [("m.safetensors", None), ("m.safetensors", "safetensors"), ("m.pt", None),
           ("m.ckpt", None), ("m.tf2", None)]


@contextlib.contextmanager
def full_disk(limit: int = 4096) -> Iterator[None]:
    """Writes past ``limit`` bytes of a file fail (EFBIG, SIGXFSZ ignored), as writes on a full
    disk fail (ENOSPC): every writer takes the same error path, in its own code."""
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def assert_one_line_naming(error: CheckpointError, target: Path) -> None:
    message = str(error)
    assert message.startswith(f"cannot save checkpoint {target}: ") and "\n" not in message
    assert ".tmp" not in message, message  # names the target, not a temporary file


@pytest.mark.parametrize(("name", "format"), EXPORTS)
def test_an_export_to_a_full_disk_is_one_error_naming_the_target_and_leaves_nothing(
    tmp_path: Path, name: str, format: str | None
) -> None:
    if name.endswith((".ckpt", ".tf2")):
        pytest.importorskip("tensorflow")
    big = MLPSpec(sizes=(64, 32, 3), activation="tanh")  # 8 KB of data, past the limit
    old = MLP(big, seed=1)
    target = export_checkpoint(old, tmp_path / name, format=format)
    before = sorted(p.name for p in tmp_path.iterdir())
    with full_disk(), pytest.raises(CheckpointError) as info:
        export_checkpoint(MLP(big, seed=2), target, format=format)
    assert_one_line_naming(info.value, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert_same_variables(import_model(target, "numpy", format=format, activation="tanh"), old)


@pytest.mark.parametrize(("name", "format"), EXPORTS)
def test_an_export_to_a_read_only_folder_is_one_error_naming_the_target_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, format: str | None
) -> None:
    if name.endswith((".ckpt", ".tf2")):
        pytest.importorskip("tensorflow")
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: refuse as the kernel would
        def refuse(*args: object, dir: str, **kwargs: object) -> None:
            raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/.x.tmp")

        monkeypatch.setattr(tempfile, "mkdtemp", refuse)
        monkeypatch.setattr(tempfile, "mkstemp", refuse)
    try:
        with pytest.raises(CheckpointError, match="Permission denied") as info:
            export_checkpoint(MLP(SPEC), folder / name, format=format)
    finally:
        folder.chmod(0o755)
    assert_one_line_naming(info.value, folder / name)
    assert list(folder.iterdir()) == []


def test_convert_through_every_format_is_bit_exact(tmp_path: Path) -> None:
    model = MLP(SPEC, seed=5)
    start = save(model, tmp_path / "start.safetensors")
    convert(start, tmp_path / "a.pt")
    convert(tmp_path / "a.pt", tmp_path / "b.ckpt")
    convert(tmp_path / "b.ckpt", tmp_path / "c.tf2")
    convert(tmp_path / "c.tf2", tmp_path / "d.safetensors", target_format="safetensors")
    end = convert(tmp_path / "d.safetensors", tmp_path / "end.safetensors", activation="tanh")
    assert_same_variables(load(end), model)
    assert load(end).spec == SPEC


# --- finetuning -------------------------------------------------------------------------------


def test_finetune_loads_the_hidden_layer_into_a_model_with_a_new_head(tmp_path: Path) -> None:
    old = MLP(SPEC, seed=1)
    path = save(old, tmp_path / "old.safetensors")
    new = MLP(MLPSpec(sizes=(6, 5, 10), activation="tanh"), seed=2)
    head = new.variables["dense_1/weights"]
    load_into(new, path, include=["dense_0/weights", "dense_0/bias"])
    for name in ("dense_0/weights", "dense_0/bias"):
        np.testing.assert_array_equal(new.variables[name], old.variables[name])
    np.testing.assert_array_equal(new.variables["dense_1/weights"], head)


def test_finetune_from_a_state_dict_with_a_name_map(tmp_path: Path) -> None:
    net = sequential()
    path = tmp_path / "net.pt"
    torch.save(net.state_dict(), path)
    new = MLP(MLPSpec(sizes=(6, 5, 2), activation="tanh"), seed=2)
    load_into(new, path, name_map={"0.weight": "dense_0/weights", "0.bias": "dense_0/bias"})
    np.testing.assert_array_equal(new.variables["dense_0/weights"],
                                  net[0].weight.detach().numpy().T)


def test_weights_into_the_bias_names_the_variable_and_both_shapes(tmp_path: Path) -> None:
    values = tf1_tutorial_checkpoint(tmp_path / "model.ckpt", named=True)
    del values
    model = MLP(SPEC, seed=3)
    before = model.variables
    with pytest.raises(CheckpointError) as info:
        load_into(model, tmp_path / "model.ckpt",
                  name_map={"bias_0": "dense_0/bias", "weights_0": "dense_1/bias"})
    message = str(info.value)
    assert "'dense_1/bias'" in message and "'weights_0'" in message
    assert "(6, 5)" in message and "(3,)" in message and "nothing was assigned" in message
    for name, value in model.variables.items():
        np.testing.assert_array_equal(value, before[name])


def test_finetune_reports_every_problem(tmp_path: Path) -> None:
    path = save(MLP(SPEC), tmp_path / "m.safetensors")
    model = MLP(MLPSpec(sizes=(6, 4, 3), activation="tanh"))
    with pytest.raises(CheckpointError) as info:
        load_into(model, path, include=["dense_0/weights", "dense_7/bias", "dense_1/bias"])
    message = str(info.value)
    assert "'dense_0/weights': the checkpoint has shape (6, 5), the model expects (6, 4)" in message
    assert "'dense_7/bias' is not a variable of the model" in message


def test_suggest_map_chains_by_shape_not_by_name() -> None:
    shapes = {"z.w": (5, 3), "a.w": (6, 5), "z.b": (3,), "a.b": (5,), "step": ()}
    assert suggest_map(shapes) == {"a.w": "dense_0/weights", "a.b": "dense_0/bias",
                                   "z.w": "dense_1/weights", "z.b": "dense_1/bias"}


def test_unknown_format_and_undetectable_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(CheckpointError, match="cannot tell the format") as info:
        import_variables(path)
    assert str(path) in str(info.value)
    with pytest.raises(CheckpointError, match="unknown checkpoint format 'onnx'"):
        import_variables(path, format="onnx")
    assert mlpcore.CheckpointError is CheckpointError
