"""The ``mlpcore`` command line: happy paths on the embedded data, and one-line errors."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mlpcore.cli import main

EPOCH_LINE = re.compile(
    r"^Epoch: (\d{3}) \| AvgCost: (\d+\.\d{3}) \| Train/Valid ACC: (\d\.\d{3})/(\d\.\d{3})")
TEST_LINE = re.compile(r"^Test ACC: (\d\.\d{3})$", re.MULTILINE)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_backends_lists_numpy_as_ok(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "backends")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == ["NAME", "VERSION", "CONTRACT", "DEVICES", "PLUGIN", "STATUS"]
    numpy_row = next(r for r in rows if r.startswith("numpy "))
    assert numpy_row.split()[2:] == ["1", "cpu",
                                     f"mlpcore=={importlib.metadata.version('mlpcore')}", "ok"]


def test_train_prints_epoch_table_saves_and_evaluate_agrees(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    checkpoint = tmp_path / "mlp.safetensors"
    code, out, err = run(capsys, "train", "--epochs", "2", "--no-progress",
                         "--save", str(checkpoint))
    assert code == 0, err
    epochs = [EPOCH_LINE.match(line) for line in out.splitlines()]
    epochs = [m for m in epochs if m]
    assert [m.group(1) for m in epochs] == ["001", "002"]
    assert float(epochs[1].group(2)) < float(epochs[0].group(2))
    trained = TEST_LINE.search(out)
    assert trained and float(trained.group(1)) > 0.5
    assert checkpoint.is_file()

    code, out, err = run(capsys, "evaluate", str(checkpoint))
    assert code == 0, err
    evaluated = TEST_LINE.search(out)
    assert evaluated and evaluated.group(1) == trained.group(1)


def test_train_flags_reach_the_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    checkpoint = tmp_path / "relu.safetensors"
    code, out, err = run(capsys, "train", "--epochs", "1", "--no-progress", "--sizes",
                         "784,32,16,10", "--activation", "relu", "--dropout", "0.2", "--l2",
                         "1e-4", "--l1", "1e-5", "--lr", "0.05", "--momentum", "0.5",
                         "--batch-size", "128", "--seed", "7", "--dtype", "float64",
                         "--validation-size", "100", "--save", str(checkpoint))
    assert code == 0, err
    assert "784-32-16-10 relu, dropout 0.2" in out
    assert "float64" in out
    assert "4900 train, 100 valid" in out
    import mlpcore

    model = mlpcore.load(checkpoint)
    assert model.spec == mlpcore.MLPSpec((784, 32, 16, 10), "relu", 0.2)
    assert model.dtype == "float64"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "flags"), [(_Terminal, ()), (_Terminal, ("--no-progress",)),
                                               (io.StringIO, ())])
def test_train_draws_a_progress_bar_on_a_terminal_only(
        monkeypatch: pytest.MonkeyPatch, stream: type[io.StringIO], flags: tuple[str, ...]) -> None:
    """stdout and stderr on one stream, as on a terminal: each epoch's bar is cleared (carriage
    return, blanks, carriage return) just before that epoch's line."""
    screen = stream()
    monkeypatch.setattr(sys, "stdout", screen)
    monkeypatch.setattr(sys, "stderr", screen)
    assert main(["train", "--epochs", "2", "--sizes", "784,8,10", *flags]) == 0
    text = screen.getvalue()
    drawn = isinstance(screen, _Terminal) and not flags
    for epoch in ("001", "002"):
        assert (f"\rEpoch {epoch}:" in text) == drawn
        assert bool(re.search(rf"\r +\rEpoch: {epoch} \|", text)) == drawn
        assert re.search(rf"^Epoch: {epoch} \|", text.replace("\r", "\n"), re.MULTILINE)
    assert ("\r" in text) == drawn


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["train", "--sizes", "784,abc"], "--sizes"),
        (["train", "--sizes", "784"], "--sizes"),
        (["train", "--dropout", "1.5"], "--dropout"),
        (["train", "--dropout", "nan"], "--dropout"),
        (["train", "--lr", "0"], "--lr"),
        (["train", "--l2", "-1"], "--l2"),
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--batch-size", "x"], "--batch-size"),
        (["train", "--activation", "softplus"], "--activation"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_flag_values_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str],
                                          fragment: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err
    assert "Traceback" not in err


def test_missing_data_directory_is_one_clear_error(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    code, _, err = run(capsys, "train", "--data", str(missing), "--no-progress")
    assert code == 1
    assert err.startswith("mlpcore: error:") and str(missing) in err
    assert len(err.strip().splitlines()) == 1


def test_width_mismatch_names_the_widths(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "--sizes", "100,10", "--epochs", "1", "--no-progress")
    assert code == 1
    assert "784" in err and "100" in err


def test_bad_test_split_is_refused_before_training(capsys: pytest.CaptureFixture[str],
                                                   tmp_path: Path) -> None:
    from mlpcore.data import write_idx
    from mlpcore.data.datasets import FILE_NAMES

    for split, labels in (("train", np.arange(20) % 10), ("test", np.array([1, 2, 12]))):
        write_idx(tmp_path / FILE_NAMES[f"{split}_images"],
                  np.zeros((len(labels), 2, 3), dtype=np.uint8))
        write_idx(tmp_path / FILE_NAMES[f"{split}_labels"], labels.astype(np.uint8))
    checkpoint = tmp_path / "mlp.safetensors"
    code, out, err = run(capsys, "train", "--data", str(tmp_path), "--sizes", "6,4,10",
                         "--validation-size", "0", "--no-progress", "--save", str(checkpoint))
    assert code == 1
    assert "test labels" in err and FILE_NAMES["test_images"] in err and "12" in err
    assert "Epoch" not in out and not checkpoint.exists()


def test_unknown_backend_lists_installed(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "train", "--backend", "nope", "--no-progress")
    assert code == 1
    assert "'nope'" in err and "numpy" in err


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"\xff" * 64])
def test_bad_checkpoint_is_one_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                           content: bytes) -> None:
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(content)
    code, _, err = run(capsys, "evaluate", str(bad))
    assert code == 1
    assert err.startswith("mlpcore: error:") and str(bad) in err
    assert "Traceback" not in err


def test_missing_checkpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "evaluate", str(tmp_path / "absent.safetensors"))
    assert code == 1
    assert "absent.safetensors" in err


def test_console_script_runs_without_traceback(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("mlpcore")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "mlpcore.cli"]
    ok = subprocess.run([*command, "--help"], capture_output=True, text=True, check=False)
    assert ok.returncode == 0 and "train" in ok.stdout
    bad = subprocess.run([*command, "evaluate", str(tmp_path / "x.safetensors")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr and "x.safetensors" in bad.stderr


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="tensorflow is not installed")
@pytest.mark.parametrize("level", [None, "1", "0"])
def test_tensorflow_native_log_stays_off_the_terminal(level: str | None) -> None:
    """Quiet unless asked for with level 0; a 1 inherited from a process that imported
    TensorFlow (which sets it) is no such request."""
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update({} if level is None else {"TF_CPP_MIN_LOG_LEVEL": level})
    run = subprocess.run([sys.executable, "-m", "mlpcore.cli", "train", "--backend", "tensorflow",
                          "--epochs", "1", "--sizes", "784,8,10", "--no-progress"],
                         capture_output=True, text=True, check=False, env=env)
    assert run.returncode == 0 and "Test ACC" in run.stdout
    assert (run.stderr == "") == (level != "0"), run.stderr


def test_the_command_needs_no_test_tools() -> None:
    """`pip install .` brings no pytest or hypothesis: every command but `conformance` works
    without them, and `conformance` says what to install."""
    code = ("import sys\n"
            "sys.modules.update(pytest=None, hypothesis=None)  # importing them now fails\n"
            "from mlpcore.cli import main\n"
            "assert main(['train', '--epochs', '1', '--sizes', '784,4,10', '--no-progress']) == 0\n"
            "assert main(['conformance', '--backend', 'numpy']) == 1\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 0, run.stderr
    assert "Test ACC" in run.stdout and "pip install 'mlpcore[test]'" in run.stderr


def test_a_closed_pipe_ends_the_command_quietly(tmp_path: Path) -> None:
    """``mlpcore inspect x | head -1``: no 'Broken pipe' error when the reader stops early."""
    import mlpcore

    checkpoint = tmp_path / "x.safetensors"  # 600 variables: more output than a pipe holds
    mlpcore.save(mlpcore.MLP(mlpcore.MLPSpec((2,) * 301)), checkpoint)
    run = subprocess.run(f"'{sys.executable}' -m mlpcore.cli inspect '{checkpoint}' | head -c 1",
                         shell=True, capture_output=True, text=True, check=False)
    assert run.stdout and run.stderr == ""


def test_inspect_refuses_an_unknown_format_naming_the_known_ones(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import mlpcore

    checkpoint = mlpcore.save(mlpcore.MLP(mlpcore.MLPSpec((2, 3, 2))), tmp_path / "x.safetensors")
    code, out, err = run(capsys, "inspect", str(checkpoint), "--format", "onnx")
    assert (code, out) == (1, "")
    assert err.startswith("mlpcore: error: unknown checkpoint format 'onnx'; known formats: ")
    assert "mlpcore" in err and "torch-state-dict" in err
