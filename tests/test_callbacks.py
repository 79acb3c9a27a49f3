"""Callbacks: the protocol and fit's calls, EarlyStopping, ModelCheckpoint, HistoryLogger and
read_history, and their refusals of bad arguments."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlpcore
from mlpcore import (
    MLP,
    SGD,
    Callback,
    EarlyStopping,
    EpochRecord,
    History,
    HistoryLogger,
    MLPSpec,
    ModelCheckpoint,
    TrainingRun,
    read_history,
)
from mlpcore.io import atomic

SPEC = MLPSpec((2, 8, 2), activation="relu")


def blobs(n: int, seed: int, spread: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    centres = np.array([[-1.5, -1.0], [1.5, 1.0]])
    return (centres[labels] + rng.normal(scale=spread, size=(n, 2))).astype(np.float32), labels


TRAIN, VALID = blobs(64, 0), blobs(32, 1, spread=2.5)


class Recorder(Callback):
    """Writes down every hook call."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def on_train_begin(self, run: TrainingRun) -> None:
        self.calls.append(("begin", run.epochs, run.steps_per_epoch, run.metrics))

    def on_steps_end(self, run: TrainingRun, steps_done: int, steps_in_epoch: int) -> None:
        self.calls.append(("steps", run.epoch, steps_done, steps_in_epoch))

    def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
        assert run.history.epochs[-1] is record
        self.calls.append(("epoch", record.epoch))

    def on_train_end(self, run: TrainingRun) -> None:
        self.calls.append(("end", len(run.history.epochs)))


def record(epoch: int, **values: float | None) -> EpochRecord:
    fields: dict[str, Any] = {"loss": 1.0, "train_accuracy": 0.5, "valid_accuracy": 0.5,
                              "valid_loss": 1.0, "seconds": 0.1, **values}
    return EpochRecord(epoch=epoch, **fields)


def run_for(model: MLP) -> TrainingRun:
    return TrainingRun(model, epochs=10, steps_per_epoch=1,
                       metrics=("loss", "train_accuracy", "valid_loss", "valid_accuracy"),
                       history=History())


def drive(callback: Callback, model: MLP, values: list[float], monitor: str = "valid_loss",
          ) -> TrainingRun:
    """Feed ``callback`` epochs whose ``monitor`` takes ``values``, the model's weights set to
    the epoch number, as fit would, until it asks to stop."""
    run = run_for(model)
    callback.on_train_begin(run)
    for epoch, value in enumerate(values, start=1):
        model.load_state_dict({k: np.full_like(v, epoch) for k, v in model.state_dict().items()})
        run.epoch = epoch
        run.history.epochs.append(record(epoch, **{monitor: value}))
        callback.on_epoch_end(run, run.history.epochs[-1])
        if run.stop_training:
            break
    callback.on_train_end(run)
    return run


def weights_epoch(model: MLP) -> float:
    return float(model.state_dict()["dense_0/weights"][0, 0])


def test_fit_calls_every_hook_in_order_and_keeps_progress_and_on_epoch() -> None:
    recorder, seen, progress = Recorder(), [], []
    history = mlpcore.fit(MLP(SPEC), TRAIN, epochs=2, batch_size=16, steps_per_call=3,
                          callbacks=[recorder], on_epoch=seen.append,
                          progress=lambda *args: progress.append(args))
    assert recorder.calls == [
        ("begin", 2, 4, ("loss", "train_accuracy")),
        ("steps", 1, 3, 4), ("steps", 1, 4, 4), ("epoch", 1),
        ("steps", 2, 3, 4), ("steps", 2, 4, 4), ("epoch", 2), ("end", 2)]
    assert seen == history.epochs
    assert progress == [(1, 3, 4), (1, 4, 4), (2, 3, 4), (2, 4, 4)]


def test_a_callback_stops_training_after_the_epoch_and_train_end_still_runs() -> None:
    class StopAtTwo(Recorder):
        def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
            super().on_epoch_end(run, record)
            run.stop_training = record.epoch == 2

    stopper, after = StopAtTwo(), Recorder()
    history = MLP(SPEC).fit(TRAIN, epochs=10, callbacks=[stopper, after])
    assert len(history.epochs) == 2
    assert after.calls[-2:] == [("epoch", 2), ("end", 2)]  # later callbacks see the epoch


def test_a_structural_callback_needs_no_base_class() -> None:
    class Plain:
        def on_train_begin(self, run: TrainingRun) -> None: ...
        def on_steps_end(self, run: TrainingRun, done: int, total: int) -> None: ...
        def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
            run.stop_training = True
        def on_train_end(self, run: TrainingRun) -> None: ...

    assert len(MLP(SPEC).fit(TRAIN, epochs=5, callbacks=[Plain()]).epochs) == 1


@pytest.mark.parametrize(("callbacks", "match"), [
    ([print], r"callbacks\[0\] is not a callback: <built-in function print> lacks "
              "on_train_begin, on_steps_end, on_epoch_end, on_train_end"),
    ([EarlyStopping(), "early"], r"callbacks\[1\] is not a callback"),
    (EarlyStopping(), "callbacks must be a list of callbacks"),
    (None, "callbacks must be a list"),
])
def test_fit_refuses_what_is_not_a_callback_before_training(callbacks: Any, match: str) -> None:
    model = MLP(SPEC)
    before = model.state_dict()
    with pytest.raises(TypeError, match=match):
        model.fit(TRAIN, validation_data=VALID, callbacks=callbacks)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize("name", ["progress", "on_epoch"])
def test_fit_refuses_functions_that_are_not(name: str) -> None:
    with pytest.raises(TypeError, match=f"{name} must be a function"):
        mlpcore.fit(MLP(SPEC), TRAIN, **{name: "yes"})  # type: ignore[arg-type]


@pytest.mark.parametrize(("make", "match"), [
    (lambda: EarlyStopping(monitor="val_loss"), "EarlyStopping monitor must be one of loss, "
                                                "train_accuracy, valid_loss, valid_accuracy, "
                                                "got 'val_loss'"),
    (lambda: EarlyStopping(patience=-1), "EarlyStopping patience must be an integer >= 0, got -1"),
    (lambda: EarlyStopping(patience=1.5), "patience"),
    (lambda: EarlyStopping(patience=True), "patience"),
    (lambda: EarlyStopping(min_delta=-0.1), "EarlyStopping min_delta must be"),
    (lambda: EarlyStopping(min_delta=float("nan")), "min_delta"),
    (lambda: ModelCheckpoint("m.safetensors", monitor="accuracy"), "ModelCheckpoint monitor"),
    (lambda: ModelCheckpoint("no-such-folder/m.safetensors"),
     "ModelCheckpoint path 'no-such-folder/m.safetensors': folder 'no-such-folder' does not "
     "exist"),
    (lambda: ModelCheckpoint("."), "ModelCheckpoint path '.' is a folder"),
    (lambda: HistoryLogger("no-such-folder/h.jsonl"), "HistoryLogger path 'no-such-folder/h.jsonl'"
                                                      ": folder 'no-such-folder' does not exist"),
    (lambda: HistoryLogger("history.txt"), "HistoryLogger path 'history.txt': cannot tell the "
                                           "format from the suffix '.txt'"),
    (lambda: HistoryLogger("history.txt", format="xml"), "format must be 'csv' or 'jsonl'"),
])
def test_bad_arguments_are_refused_naming_them(make: Any, match: str, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(("callback", "needs"), [
    (EarlyStopping(), "validation data"),
    (EarlyStopping(monitor="valid_accuracy"), "validation data"),
    (EarlyStopping(monitor="train_accuracy"), "train_accuracy=True"),
])
def test_a_monitor_the_run_does_not_measure_is_refused_before_training(
        callback: Callback, needs: str) -> None:
    model = MLP(SPEC)
    before = model.state_dict()
    with pytest.raises(ValueError, match=f"EarlyStopping monitors .* it needs {needs}"):
        model.fit(TRAIN, callbacks=[callback], train_accuracy=False)
    assert all(np.array_equal(before[k], v) for k, v in model.state_dict().items())


@pytest.mark.parametrize(("patience", "values", "stopped", "best"), [
    (0, [3.0, 2.0, 2.5, 1.0], 3, 2),      # stops at the first epoch without improvement
    (1, [3.0, 2.0, 2.5, 1.0], 3, 2),
    (2, [3.0, 2.0, 2.5, 1.0, 1.5, 1.2], 6, 4),
    (2, [3.0, 2.0, 2.5, 2.1, 0.5], 4, 2),
    (5, [3.0, 2.0, 1.0], None, 3),        # ran out of epochs first
    (1, [3.0, float("nan"), 2.0], 2, 1),  # NaN never improves
])
def test_early_stopping_patience(patience: int, values: list[float], stopped: int | None,
                                 best: int) -> None:
    model = MLP(SPEC)
    stopping = EarlyStopping(patience=patience)
    run = drive(stopping, model, values)
    assert (stopping.stopped_epoch, stopping.best_epoch, stopping.best) == (
        stopped, best, values[best - 1])
    assert run.stop_training is (stopped is not None)
    assert weights_epoch(model) == best  # restored, whether or not it stopped


def test_early_stopping_min_delta_and_accuracies_rising() -> None:
    stopping = EarlyStopping(monitor="valid_accuracy", patience=1, min_delta=0.05)
    model = MLP(SPEC)
    drive(stopping, model, [0.5, 0.6, 0.64, 0.7], monitor="valid_accuracy")
    assert (stopping.best_epoch, stopping.stopped_epoch) == (2, 3)  # +0.04 is not enough
    assert weights_epoch(model) == 2


def test_early_stopping_without_restoring_keeps_the_last_weights_and_resets_per_run() -> None:
    stopping, model = EarlyStopping(patience=0, restore_best_weights=False), MLP(SPEC)
    drive(stopping, model, [1.0, 2.0])
    assert weights_epoch(model) == 2
    drive(stopping, model, [5.0, 4.0, 3.0])  # a second fit starts afresh
    assert (stopping.best, stopping.best_epoch, stopping.stopped_epoch) == (3.0, 3, None)


def test_early_stopping_in_fit_restores_the_best_epoch() -> None:
    model = MLP(SPEC, seed=3)
    stopping = EarlyStopping(patience=2)
    snapshots: list[dict[str, np.ndarray]] = []

    class Snapshot(Callback):
        def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
            snapshots.append(run.model.state_dict())

    history = model.fit(TRAIN, validation_data=VALID, epochs=200, optimizer=SGD(0.5),
                        callbacks=[Snapshot(), stopping])
    assert stopping.stopped_epoch == len(history.epochs) < 200
    assert stopping.best_epoch == 1 + int(np.argmin(history.valid_loss))  # type: ignore[arg-type]
    best = snapshots[stopping.best_epoch - 1]
    assert all(np.array_equal(best[k], v) for k, v in model.state_dict().items())
    assert model.evaluate(*VALID).loss == stopping.best


def test_early_stopping_restores_the_best_epochs_optimizer_state_too(tmp_path: Path) -> None:
    """After restoring, the model is the best epoch's in full: a save holds what
    ModelCheckpoint wrote at that epoch (variables and optimizer state), and a further fit goes
    on from the epoch after it."""
    model, best = MLP(SPEC, seed=3), tmp_path / "best.safetensors"
    stopping = EarlyStopping(patience=2)
    history = model.fit(TRAIN, validation_data=VALID, epochs=200,
                        optimizer=SGD(0.5, momentum=0.9), callbacks=[ModelCheckpoint(best),
                                                                     stopping])
    assert stopping.best_epoch is not None and stopping.best_epoch < len(history.epochs)
    state = model.optimizer_state
    assert state is not None and (state.epoch, state.step) == (stopping.best_epoch,
                                                               stopping.best_epoch * 1)
    saved = mlpcore.load(mlpcore.save(model, tmp_path / "after.safetensors"))
    kept = mlpcore.load(best)
    assert kept.optimizer_state is not None and saved.optimizer_state is not None
    assert all(np.array_equal(kept.variables[k], v) for k, v in saved.variables.items())
    assert kept.optimizer_state.slots.keys() == saved.optimizer_state.slots.keys()
    assert all(np.array_equal(kept.optimizer_state.slots[k], v)
               for k, v in saved.optimizer_state.slots.items())
    assert (kept.optimizer_state.step, kept.optimizer_state.epoch) == (state.step, state.epoch)
    more = model.fit(TRAIN, validation_data=VALID, epochs=1,
                     optimizer=SGD(0.5, momentum=0.9))
    assert [e.epoch for e in more.epochs] == [stopping.best_epoch + 1]


def test_model_checkpoint_keeps_the_best_epoch(tmp_path: Path) -> None:
    path = tmp_path / "best.safetensors"
    checkpoint, model = ModelCheckpoint(path), MLP(SPEC)
    drive(checkpoint, model, [3.0, 2.0, 2.5, 1.0, 1.5])
    assert (checkpoint.saved_epoch, checkpoint.best_epoch) == (4, 4)
    assert weights_epoch(mlpcore.load(path)) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.safetensors"]


def test_model_checkpoint_every_epoch(tmp_path: Path) -> None:
    checkpoint, model = ModelCheckpoint(tmp_path / "last.safetensors", save_best_only=False),\
        MLP(SPEC)
    drive(checkpoint, model, [3.0, 2.0, 2.5])
    assert checkpoint.saved_epoch == 3 and weights_epoch(mlpcore.load(checkpoint.path)) == 3


def test_model_checkpoint_in_fit_saves_the_model_of_the_best_epoch(tmp_path: Path) -> None:
    model = MLP(SPEC, seed=3)
    checkpoint = ModelCheckpoint(tmp_path / "best.safetensors", monitor="valid_accuracy")
    history = model.fit(TRAIN, validation_data=VALID, epochs=6, optimizer=SGD(0.5),
                        callbacks=[checkpoint])
    accuracies = history.valid_accuracy
    assert checkpoint.best_epoch == 1 + accuracies.index(max(accuracies))  # type: ignore[type-var]
    assert mlpcore.load(checkpoint.path).evaluate(*VALID).accuracy == max(accuracies)  # type: ignore[type-var]


def test_a_failed_checkpoint_save_leaves_the_previous_best_whole(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "best.safetensors"
    checkpoint, model = ModelCheckpoint(path), MLP(SPEC)
    run = run_for(model)
    checkpoint.on_train_begin(run)
    checkpoint.on_epoch_end(run, record(1, valid_loss=2.0))
    saved, before = path.read_bytes(), model.state_dict()
    model.load_state_dict({k: v + 1 for k, v in before.items()})

    def full_disk(path: Path, flags: int = 0) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "fsync", full_disk)
    with pytest.raises(mlpcore.CheckpointError, match=f"cannot save checkpoint {path}: "
                                                      "No space left on device"):
        checkpoint.on_epoch_end(run, record(2, valid_loss=1.0))
    assert path.read_bytes() == saved
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.safetensors"]  # no temporary
    assert all(np.array_equal(before[k], v) for k, v in mlpcore.load(path).state_dict().items())


def test_a_failed_checkpoint_save_ends_fit_with_its_error(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(path: Path, flags: int = 0) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic, "fsync", full_disk)
    later = Recorder()
    with pytest.raises(mlpcore.CheckpointError, match="No space left"):
        MLP(SPEC).fit(TRAIN, validation_data=VALID, epochs=3,
                      callbacks=[ModelCheckpoint(tmp_path / "m.safetensors"), later])
    assert later.calls[-1] == ("steps", 1, 1, 1) and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["history.csv", "history.jsonl", "history.ndjson"])
def test_history_logger_writes_each_epoch_and_reads_back(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    lines_after_epoch: list[int] = []

    class Count(Callback):
        def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
            lines_after_epoch.append(len(path.read_text().splitlines()))

    path.write_text("old contents\n")
    history = MLP(SPEC).fit(TRAIN, epochs=3, callbacks=[HistoryLogger(path), Count()],
                            train_accuracy=False)
    header = 1 if name.endswith(".csv") else 0
    assert lines_after_epoch == [header + 1, header + 2, header + 3]  # written as it goes
    assert read_history(path) == history
    assert read_history(path).valid_accuracy == [None, None, None]
    text = path.read_text()
    if header:
        assert text.splitlines()[0] == "epoch,loss,train_accuracy,valid_accuracy,valid_loss,seconds"
        assert text.splitlines()[1].startswith("1,") and ",,,," in text.splitlines()[1]
    else:
        assert json.loads(text.splitlines()[0])["valid_loss"] is None


def test_history_logger_format_argument_wins_over_the_suffix(tmp_path: Path) -> None:
    path = tmp_path / "log.txt"
    history = MLP(SPEC).fit(TRAIN, validation_data=VALID, epochs=2,
                            callbacks=[HistoryLogger(path, format="csv")])
    assert path.read_text().startswith("epoch,")
    assert read_history(path, format="csv") == history
    with pytest.raises(ValueError, match="cannot tell the format"):
        read_history(path)


def test_nan_loss_round_trips(tmp_path: Path) -> None:
    history = History([record(1, loss=float("nan"))])
    for name in ("h.csv", "h.jsonl"):
        logger, run = HistoryLogger(tmp_path / name), run_for(MLP(SPEC))
        logger.on_train_begin(run)
        logger.on_epoch_end(run, history.epochs[0])
        assert np.isnan(read_history(logger.path).loss[0])


@pytest.mark.parametrize(("name", "text", "match"), [
    ("h.jsonl", '{"epoch": 1}\n', r"line 1: expected the fields epoch, loss"),
    ("h.jsonl", "[1, 2]\n", "line 1: expected a JSON object"),
    ("h.jsonl", "{nope\n", "line 1: not JSON"),
    ("h.jsonl", "[" * 100_000 + "\n", "line 1: not JSON"),
    ("h.jsonl", json.dumps({"epoch": 0, "loss": 1, "train_accuracy": None,
                            "valid_accuracy": None, "valid_loss": None, "seconds": 1}),
     "line 1: epoch must be an integer >= 1, got 0"),
    ("h.jsonl", '\n' + json.dumps({"epoch": 1, "loss": "x", "train_accuracy": None,
                                   "valid_accuracy": None, "valid_loss": None, "seconds": 1}),
     "line 2: loss must be a number, got 'x'"),
    ("h.jsonl", json.dumps({"epoch": 1, "loss": 1, "train_accuracy": True,
                            "valid_accuracy": None, "valid_loss": None, "seconds": 1}),
     "line 1: train_accuracy must be a number or empty, got True"),
    ("h.csv", "", "line 1: expected the header epoch,loss"),
    ("h.csv", "epoch,loss\n1,2\n", "line 1: expected the header"),
    ("h.csv", "epoch,loss,train_accuracy,valid_accuracy,valid_loss,seconds\n1,2\n",
     "line 2: expected 6 values, got 2"),
    ("h.csv", "epoch,loss,train_accuracy,valid_accuracy,valid_loss,seconds\n1,,,,,1\n",
     "line 2: loss must be a number, got None"),
    ("h.csv", "epoch,loss,train_accuracy,valid_accuracy,valid_loss,seconds\n1.5,1,,,,1\n",
     "line 2: epoch must be an integer"),
])
def test_read_history_refuses_malformed_logs_naming_file_and_line(
        tmp_path: Path, name: str, text: str, match: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(mlpcore.DataError, match=f"history log {path}, {match}"):
        read_history(path)


def test_read_history_of_a_missing_or_binary_file(tmp_path: Path) -> None:
    with pytest.raises(mlpcore.DataError, match=r"cannot read history log .*missing\.jsonl"):
        read_history(tmp_path / "missing.jsonl")
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(mlpcore.DataError, match="cannot read history log"):
        read_history(tmp_path / "b.csv")
