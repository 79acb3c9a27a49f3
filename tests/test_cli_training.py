"""``mlpcore train --early-stopping --checkpoint-best --log --plot`` and ``mlpcore plot``."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlpcore
from mlpcore.cli import main

SMALL = ["--sizes", "784,16,10", "--no-progress"]
VALID_LINE = re.compile(r"^Epoch: (\d{3}) \| .*Train/Valid ACC: \d\.\d{3}/(\d\.\d{3})",
                        re.MULTILINE)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_early_stopping_best_checkpoint_log_and_plot(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    best, log, picture = tmp_path / "best.safetensors", tmp_path / "h.jsonl", tmp_path / "c.png"
    code, out, err = run(capsys, "train", *SMALL, "--lr", "2", "--epochs", "40",
                         "--early-stopping", "1", "--checkpoint-best", str(best),
                         "--log", str(log), "--plot", str(picture))
    assert code == 0, err
    history = mlpcore.read_history(log)
    epochs = len(history.epochs)
    assert epochs == len(VALID_LINE.findall(out)) < 40  # stopped early
    best_epoch = 1 + int(np.argmin(history.valid_loss))  # type: ignore[arg-type]
    assert f"Early stopping: valid_loss did not improve for 1 epoch(s) after epoch {best_epoch}" \
        in out
    assert f"Best checkpoint: {best} (epoch {best_epoch}, valid_loss " in out
    assert f"History log: {log}\nTraining curves: {picture}\n" in out
    assert picture.read_bytes()[:4] == b"\x89PNG"
    # the restored weights are the best epoch's, as the checkpoint holds them
    data = mlpcore.data.load_dataset(embedded=True)
    restored = mlpcore.load(best).evaluate(data.valid.images, data.valid.labels)
    assert restored.loss == pytest.approx(history.valid_loss[best_epoch - 1], rel=1e-6)

    code, out, err = run(capsys, "plot", str(log), "-o", str(tmp_path / "again.svg"))
    assert (code, out) == (0, f"Training curves of {epochs} epochs: {tmp_path / 'again.svg'}\n")


def test_log_as_csv_without_other_options(capsys: pytest.CaptureFixture[str],
                                          tmp_path: Path) -> None:
    log = tmp_path / "h.csv"
    code, out, err = run(capsys, "train", *SMALL, "--epochs", "2", "--log", str(log))
    assert code == 0, err
    assert len(mlpcore.read_history(log).epochs) == 2
    assert "Early stopping" not in out and "Best checkpoint" not in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--early-stopping", "2", "--validation-size", "0"],
     "--early-stopping: the validation loss is watched, so --validation-size must be greater "
     "than 0"),
    (["--checkpoint-best", "m.safetensors", "--early-stopping", "1", "--validation-size", "0"],
     "--early-stopping and --checkpoint-best: the validation loss"),
    (["--plot", "missing/c.png"], "--plot path 'missing/c.png': folder 'missing' does not exist"),
    (["--plot", "c.txt"], "--plot path 'c.txt': matplotlib cannot write '.txt' files"),
    (["--log", "missing/h.jsonl"],
     "--log: HistoryLogger path 'missing/h.jsonl': folder 'missing' does not exist"),
    (["--log", "h.log"], "--log: HistoryLogger path 'h.log': cannot tell the format"),
    (["--checkpoint-best", "missing/m.safetensors"],
     "--checkpoint-best: ModelCheckpoint path 'missing/m.safetensors': folder 'missing'"),
    (["--optimizer", "adam", "--momentum", "0.9"],
     "--momentum: an SGD option; --optimizer adam takes --lr"),
    (["--optimizer", "adam", "--momentum", "0", "--nesterov"], "--momentum and --nesterov: an"),
    (["--nesterov"], "--nesterov needs --momentum greater than 0"),
    (["--nesterov", "--momentum", "0"], "--nesterov needs --momentum greater than 0"),
])
def test_bad_options_fail_before_training(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                          message: str) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run(capsys, "train", *SMALL, *argv)
    assert (code, out) == (1, "")  # not even the data line: nothing was trained
    assert err == f"mlpcore: error: {message}" + err.split(message, 1)[1]
    assert err.count("\n") == 1 and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "optimizer"), [
    ([], mlpcore.SGD(0.1)),
    (["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.5", "--nesterov"],
     mlpcore.SGD(0.05, momentum=0.5, nesterov=True)),
    (["--optimizer", "adam"], mlpcore.Adam(0.001)),
    (["--optimizer", "adam", "--lr", "0.01"], mlpcore.Adam(0.01)),
])
def test_the_optimizer_options_train_with_that_optimizer(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str],
        optimizer: Any) -> None:
    """The saved checkpoint's optimizer state is the optimizer the options name; with the same
    seed, the run is fit's with that optimizer."""
    path = tmp_path / "m.safetensors"
    code, _, err = run(capsys, "train", *SMALL, "--epochs", "1", "--seed", "5",
                         "--save", str(path), *argv)
    assert code == 0, err
    state = mlpcore.load(path).optimizer_state
    assert state is not None and state.optimizer == optimizer and state.epoch == 1
    data = mlpcore.data.load_dataset(embedded=True)
    model = mlpcore.MLP(mlpcore.MLPSpec((784, 16, 10), activation="sigmoid"), seed=5)
    mlpcore.fit(model, data.train, optimizer=optimizer, epochs=1, seed=5,
                validation=data.valid, train_accuracy=False)
    assert all(np.array_equal(mlpcore.load(path).variables[name], value)
               for name, value in model.variables.items())


@pytest.mark.parametrize(("argv", "line"), [
    ([], "Optimizer: SGD(lr=0.1, momentum=0.0, nesterov=False)"),
    (["--optimizer", "adam", "--lr", "0.01"],
     "Optimizer: Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08)"),
])
def test_train_names_its_optimizer_after_the_model(capsys: pytest.CaptureFixture[str],
                                                   argv: list[str], line: str) -> None:
    code, out, err = run(capsys, "train", *SMALL, "--epochs", "1", *argv)
    assert code == 0, err
    assert out.splitlines()[1].startswith("Model: ") and out.splitlines()[2] == line


def test_an_unknown_optimizer_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--optimizer", "rmsprop"])
    assert exit_info.value.code == 2
    assert "--optimizer: invalid choice: 'rmsprop' (choose from 'sgd', 'adam')" in \
        capsys.readouterr().err


def test_negative_patience_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--early-stopping", "-1"])
    assert exit_info.value.code == 2
    assert "--early-stopping: expected an integer in [0, inf), got '-1'" in capsys.readouterr().err


def test_plot_without_matplotlib_says_what_to_install(capsys: pytest.CaptureFixture[str],
                                                      tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, out, err = run(capsys, "train", *SMALL, "--plot", str(tmp_path / "c.png"))
    assert (code, out) == (1, "")
    assert err == ("mlpcore: error: drawing training curves needs matplotlib, an optional extra: "
                   "pip install 'mlpcore[plot]' (or pip install matplotlib)\n")


@pytest.mark.parametrize(("text", "message"), [
    (None, "cannot read history log"),
    ("{}\n", "line 1: expected the fields"),
])
def test_plot_command_errors_name_the_log(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                          text: str | None, message: str) -> None:
    log = tmp_path / "h.jsonl"
    if text is not None:
        log.write_text(text)
    code, _, err = run(capsys, "plot", str(log), "-o", str(tmp_path / "c.png"))
    assert code == 1 and err.startswith("mlpcore: error: ") and message in err
    assert str(log) in err and not (tmp_path / "c.png").exists()
