"""``mlpcore convert`` and ``mlpcore inspect``: conversions by contents or extension, name maps,
and one-line errors with a non-zero exit and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import safetensors
import safetensors.numpy

from mlpcore.cli import main
from mlpcore.errors import CheckpointError
from mlpcore.io.checkpoint import load, save
from mlpcore.model import MLP
from mlpcore.spec import MLPSpec

torch = pytest.importorskip("torch")
SPEC = MLPSpec(sizes=(4, 3, 2), activation="relu")


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_convert_to_torch_and_back(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    model = MLP(SPEC, seed=2)
    src = save(model, tmp_path / "m.safetensors")
    code, out, err = run(capsys, "convert", str(src), str(tmp_path / "m.pt"))
    assert code == 0, err
    assert "m.pt" in out
    state = torch.load(tmp_path / "m.pt", weights_only=True)
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    assert tuple(state["0.weight"].shape) == (3, 4)
    code, _, err = run(capsys, "convert", str(tmp_path / "m.pt"), str(tmp_path / "b.safetensors"),
                       "--activation", "relu")
    assert code == 0, err
    for name, value in load(tmp_path / "b.safetensors").variables.items():
        np.testing.assert_array_equal(value, model.variables[name])


def test_convert_with_a_map(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    torch.manual_seed(0)
    state = {"enc.weight": torch.randn(3, 4), "enc.bias": torch.randn(3),
             "dec.weight": torch.randn(2, 3), "dec.bias": torch.randn(2)}
    torch.save(state, tmp_path / "custom.pt")
    argv = ["convert", str(tmp_path / "custom.pt"), str(tmp_path / "c.safetensors"),
            "--activation", "relu"]
    code, out, err = run(capsys, *argv)
    assert code == 1 and out == ""
    assert err.startswith("mlpcore: error: ") and "Traceback" not in err
    assert "--map 'enc.weight=dense_0/weights'" in err
    maps = ["--map", "enc.weight=dense_0/weights", "--map", "enc.bias=dense_0/bias",
            "--map", "dec.weight=dense_1/weights", "--map", "dec.bias=dense_1/bias"]
    code, _, err = run(capsys, *argv, *maps)
    assert code == 0, err
    np.testing.assert_array_equal(load(tmp_path / "c.safetensors").variables["dense_1/weights"],
                                  state["dec.weight"].numpy().T)


def test_convert_with_an_export_map(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    src = save(MLP(SPEC), tmp_path / "m.safetensors")
    names = ["dense_0/weights=h1.weight", "dense_0/bias=h1.bias", "dense_1/weights=o.weight",
             "dense_1/bias=o.bias"]
    argv = ["convert", str(src), str(tmp_path / "x.pt")]
    for pair in names:
        argv += ["--export-map", pair]
    code, _, err = run(capsys, *argv)
    assert code == 0, err
    assert set(torch.load(tmp_path / "x.pt", weights_only=True)) == {
        "h1.weight", "h1.bias", "o.weight", "o.bias"}


def test_inspect_prints_names_shapes_dtypes_and_manifest(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = save(MLP(SPEC), tmp_path / "m.safetensors")
    code, out, err = run(capsys, "inspect", str(path))
    assert code == 0, err
    lines = out.splitlines()
    assert "mlpcore" in lines[0]
    assert lines[1].split() == ["NAME", "SHAPE", "DTYPE"]
    assert lines[2].split() == ["dense_0/weights", "(4,", "3)", "float32"]
    assert lines[3].split() == ["dense_0/bias", "(3,)", "float32"]
    manifest = json.loads(out[out.index("{"):])
    assert manifest["spec"]["sizes"] == [4, 3, 2]


def test_inspect_a_foreign_file_suggests_a_map(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    torch.save({"a.weight": torch.zeros(3, 4), "a.bias": torch.zeros(3)}, tmp_path / "x.pt")
    code, out, _ = run(capsys, "inspect", str(tmp_path / "x.pt"))
    assert code == 0
    assert "torch-state-dict" in out and "a.weight  (4, 3)" in out
    assert "canonical layout, weights (fan_in, fan_out)" in out  # the file holds (3, 4)
    assert "'a.weight': 'dense_0/weights'" in out


DEEP = b'{"x": ' + b"[" * 2000 + b"]" * 2000 + b"}"  # nested beyond Python's recursion limit


def test_inspect_refuses_what_load_refuses(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    path = save(MLP(SPEC), tmp_path / "m.safetensors")
    tensors = safetensors.numpy.load_file(path)
    with safetensors.safe_open(str(path), framework="numpy") as handle:
        manifest = json.loads(handle.metadata()["mlpcore"])
    manifest["spec"]["sizes"] = [4, 3, 5]  # a valid spec the variables do not fit
    text = json.dumps(manifest)
    safetensors.numpy.save_file(tensors, path, metadata={
        "mlpcore": text, "mlpcore_manifest_crc32": f"{zlib.crc32(text.encode()):08x}"})
    with pytest.raises(CheckpointError, match="does not fit its own spec"):
        load(path)
    code, out, err = run(capsys, "inspect", str(path))
    assert code == 1 and out == ""
    assert err.startswith("mlpcore: error: ") and "does not fit its own spec" in err


@pytest.mark.parametrize("content", [b"", b"\x00" * 7, b"garbage" * 10,
                                     len(DEEP).to_bytes(8, "little") + DEEP],
                         ids=["empty", "zeros", "garbage", "nested-2000-deep"])
def test_broken_files_give_one_line_and_exit_1(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.safetensors"
    path.write_bytes(content)
    for argv in (["inspect", str(path)], ["convert", str(path), str(tmp_path / "o.pt")]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == ""
        assert err.startswith("mlpcore: error: ") and str(path) in err
        assert "Traceback" not in err
    assert not (tmp_path / "o.pt").exists()


def test_a_flipped_bit_in_a_state_dict_is_refused_not_laundered(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    weight = torch.arange(12, dtype=torch.float32).reshape(3, 4) + 0.5
    torch.save({"0.weight": weight, "0.bias": torch.ones(3)}, tmp_path / "m.pt")
    data = bytearray((tmp_path / "m.pt").read_bytes())
    data[data.index(weight.numpy().tobytes()) + 5] ^= 0x10  # one bit of the stored tensor
    (tmp_path / "m.pt").write_bytes(bytes(data))
    for argv in (["convert", str(tmp_path / "m.pt"), str(tmp_path / "o.safetensors"),
                  "--activation", "relu"], ["inspect", str(tmp_path / "m.pt")]):
        code, out, err = run(capsys, *argv)
        assert code == 1 and out == "", out
        assert "CRC-32" in err and str(tmp_path / "m.pt") in err and "Traceback" not in err
    assert not (tmp_path / "o.safetensors").exists()


def test_bad_map_entry_and_unknown_format(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    src = save(MLP(SPEC), tmp_path / "m.safetensors")
    code, _, err = run(capsys, "convert", str(src), str(tmp_path / "o.pt"), "--map", "nonsense")
    assert code == 1 and "OLD=NEW" in err
    code, _, err = run(capsys, "convert", str(src), str(tmp_path / "o.xyz"))
    assert code == 1 and "cannot tell the format" in err
    code, _, err = run(capsys, "convert", str(src), str(tmp_path / "o"), "--to", "onnx")
    assert code == 1 and "unknown checkpoint format 'onnx'" in err


def test_the_installed_command_reports_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "missing.pt"
    result = subprocess.run([sys.executable, "-m", "mlpcore.cli", "inspect", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("mlpcore: error:") and "Traceback" not in result.stderr
    assert str(path) in result.stderr
