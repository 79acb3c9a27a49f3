"""The callbacks mlpcore ships, on the :class:`~mlpcore.training.Callback` protocol: stop early,
keep the best checkpoint, log the history (CSV or JSON lines) and read such a log back.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np

from mlpcore.errors import DataError
from mlpcore.io.checkpoint import save
from mlpcore.optimizers import OptimizerState
from mlpcore.training import METRICS, Callback, EpochRecord, History, TrainingRun
from mlpcore.validation import check_output_path

__all__ = ["Callback", "EarlyStopping", "HistoryLogger", "ModelCheckpoint", "TrainingRun",
           "read_history"]

PathArg = str | os.PathLike[str]


class _Monitoring(Callback):
    """The best value of the ``monitor`` field so far: better means lower for a loss, higher for
    an accuracy, by more than ``min_delta``; NaN is never better."""

    def __init__(self, monitor: str, min_delta: float = 0.0) -> None:
        who = type(self).__name__
        if monitor not in METRICS:
            raise ValueError(f"{who} monitor must be one of {', '.join(METRICS)}, "
                             f"got {monitor!r}")
        if (isinstance(min_delta, bool) or not isinstance(min_delta, int | float | np.floating)
                or not math.isfinite(min_delta) or min_delta < 0):
            raise ValueError(f"{who} min_delta must be a finite number >= 0, got {min_delta!r}")
        self.monitor, self.min_delta = monitor, float(min_delta)
        self.best: float | None = None
        self.best_epoch: int | None = None

    def _check(self, run: TrainingRun) -> None:
        """Refuse a run whose records lack the monitored field; forget an earlier run's best."""
        if self.monitor not in run.metrics:
            needs = ("validation data (fit(..., validation=...))" if "valid" in self.monitor
                     else "train_accuracy=True")
            raise ValueError(f"{type(self).__name__} monitors {self.monitor!r}, which this run "
                             f"does not measure: it needs {needs}")
        self.best, self.best_epoch = None, None

    def _improved(self, record: EpochRecord) -> bool:
        """Whether ``record`` is the best so far (then it becomes :attr:`best`)."""
        value = float(getattr(record, self.monitor))
        if math.isnan(value):
            return False
        if self.best is not None:
            gain = self.best - value if "loss" in self.monitor else value - self.best
            if not gain > self.min_delta:
                return False
        self.best, self.best_epoch = value, record.epoch
        return True


class EarlyStopping(_Monitoring):
    """Stop training when ``monitor`` has not improved (by more than ``min_delta``) for
    ``patience`` epochs in a row (0 and 1 both stop at the first such epoch), as Keras's and
    Lightning's ``EarlyStopping``. With ``restore_best_weights`` the model ends with the weights
    of its best epoch, whether training stopped early or ran all its epochs, and with that
    epoch's ``optimizer_state`` (slots, update count, epochs done), so that a save or a further
    ``fit`` goes on from the best epoch as if training had stopped there. After ``fit``:
    :attr:`best`, :attr:`best_epoch` and :attr:`stopped_epoch` (``None`` if it did not stop)."""

    def __init__(self, monitor: str = "valid_loss", patience: int = 0, min_delta: float = 0.0,
                 restore_best_weights: bool = True) -> None:
        super().__init__(monitor, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int | np.integer) \
                or patience < 0:
            raise ValueError(f"EarlyStopping patience must be an integer >= 0, got {patience!r}")
        self.patience, self.restore_best_weights = int(patience), bool(restore_best_weights)
        self.stopped_epoch: int | None = None
        self._wait = 0
        self._weights: dict[str, Any] | None = None
        self._state: OptimizerState | None = None

    def on_train_begin(self, run: TrainingRun) -> None:
        self._check(run)
        self.stopped_epoch, self._wait, self._weights, self._state = None, 0, None, None

    def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
        if self._improved(record):
            self._wait = 0
            if self.restore_best_weights:
                self._weights = run.model.state_dict()
                state = run.model.optimizer_state
                self._state = None if state is None else dataclasses.replace(
                    state, slots={name: np.array(v) for name, v in state.slots.items()})
            return
        self._wait += 1
        if self._wait >= self.patience:
            run.stop_training = True
            self.stopped_epoch = record.epoch

    def on_train_end(self, run: TrainingRun) -> None:
        if self._weights is not None and self.best_epoch != run.history.epochs[-1].epoch:
            run.model.load_state_dict(self._weights)
            run.model.optimizer_state = self._state
        self._weights, self._state = None, None


class ModelCheckpoint(_Monitoring):
    """Save the model to ``path`` (:func:`mlpcore.save`: atomic, the old file kept if a save
    fails) after each epoch whose ``monitor`` is the best so far, or after every epoch without
    ``save_best_only``; among data-parallel workers, rank 0 alone writes. After ``fit``:
    :attr:`best`, :attr:`best_epoch`, :attr:`saved_epoch`. A failed save raises its
    :class:`~mlpcore.errors.CheckpointError` and ends training."""

    def __init__(self, path: PathArg, monitor: str = "valid_loss",
                 save_best_only: bool = True) -> None:
        super().__init__(monitor)
        self.path = check_output_path(path, "ModelCheckpoint path")
        self.save_best_only = bool(save_best_only)
        self.saved_epoch: int | None = None

    def on_train_begin(self, run: TrainingRun) -> None:
        if self.save_best_only:
            self._check(run)
        self.saved_epoch = None

    def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
        if not self.save_best_only or self._improved(record):
            if run.world.rank == 0:  # data-parallel: rank 0 alone writes (docs/distributed.md)
                save(run.model, self.path)
            self.saved_epoch = record.epoch


LogFormat = Literal["csv", "jsonl"]
_SUFFIXES: dict[str, LogFormat] = {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(EpochRecord))
"""A log's columns (CSV) or keys (JSON lines): the :class:`EpochRecord` fields, in order."""


def _format(path: Path, format: LogFormat | None, what: str) -> LogFormat:
    if format is None:
        if path.suffix.lower() not in _SUFFIXES:
            raise ValueError(f"{what} {str(path)!r}: cannot tell the format from the suffix "
                             f"{path.suffix!r}; use .csv, .jsonl or .ndjson, or give format=")
        return _SUFFIXES[path.suffix.lower()]
    if format not in ("csv", "jsonl"):
        raise ValueError(f"format must be 'csv' or 'jsonl', got {format!r}")
    return format


class HistoryLogger(Callback):
    """Write each epoch's :class:`EpochRecord` to ``path`` as soon as the epoch ends: CSV (a
    header, then one row per epoch; an unmeasured value is empty) or JSON lines (one object per
    epoch; unmeasured is ``null``), by ``format`` or the suffix (.csv, .jsonl, .ndjson). The
    file is replaced when training begins (by rank 0 alone among data-parallel workers);
    :func:`read_history` reads it back."""

    def __init__(self, path: PathArg, format: LogFormat | None = None) -> None:
        self.path = check_output_path(path, "HistoryLogger path")
        self.format = _format(self.path, format, "HistoryLogger path")

    def on_train_begin(self, run: TrainingRun) -> None:
        if run.world.rank != 0:  # data-parallel: rank 0 alone writes
            return
        with self.path.open("w", encoding="utf-8", newline="") as file:
            if self.format == "csv":
                csv.writer(file).writerow(FIELDS)

    def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
        if run.world.rank != 0:
            return
        values = dataclasses.asdict(record)
        with self.path.open("a", encoding="utf-8", newline="") as file:
            if self.format == "csv":
                csv.writer(file).writerow(  # None is written as an empty cell
                    [v if v is None or isinstance(v, int) else float(v) for v in values.values()])
            else:
                file.write(json.dumps(values) + "\n")


def _record(values: dict[str, Any], where: str) -> EpochRecord:
    """An :class:`EpochRecord` from one log entry, every field checked; errors name ``where``."""
    if set(values) != set(FIELDS):
        raise DataError(f"{where}: expected the fields {', '.join(FIELDS)}, got "
                        f"{', '.join(map(str, values))}")
    epoch = values["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 1:
        raise DataError(f"{where}: epoch must be an integer >= 1, got {epoch!r}")
    for name in FIELDS[1:]:
        value = values[name]
        optional = name not in ("loss", "seconds")
        if not (value is None and optional) and (
                isinstance(value, bool) or not isinstance(value, int | float)):
            raise DataError(f"{where}: {name} must be a number{' or empty' if optional else ''}"
                            f", got {value!r}")
    numbers: dict[str, Any] = {n: v if v is None else float(v) for n, v in values.items()}
    return EpochRecord(**{**numbers, "epoch": epoch})


def _csv_value(text: str) -> int | float | str | None:
    for kind in (int, float):
        with contextlib.suppress(ValueError):
            return kind(text)
    return text or None


def read_history(path: PathArg, format: LogFormat | None = None) -> History:
    """The :class:`History` of a :class:`HistoryLogger` file; a malformed file is a
    :class:`~mlpcore.errors.DataError` naming it and the line."""
    file = Path(os.fspath(path))
    kind = _format(file, format, "history log")
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"cannot read history log {file}: {error}") from error
    at = f"history log {file}, line"
    entries: list[tuple[int, dict[str, Any]]] = []
    if kind == "csv":
        rows = list(csv.reader(text.splitlines()))
        if not rows or tuple(rows[0]) != FIELDS:
            raise DataError(f"{at} 1: expected the header {','.join(FIELDS)}")
        for number, row in enumerate(rows[1:], start=2):
            if len(row) != len(FIELDS):
                raise DataError(f"{at} {number}: expected {len(FIELDS)} values, got {len(row)}")
            entries.append((number, {f: _csv_value(v) for f, v in zip(FIELDS, row, strict=True)}))
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                values = json.loads(line)
            except (json.JSONDecodeError, RecursionError) as error:
                raise DataError(f"{at} {number}: not JSON ({error})") from None
            if not isinstance(values, dict):
                raise DataError(f"{at} {number}: expected a JSON object")
            entries.append((number, values))
    return History([_record(values, f"{at} {number}") for number, values in entries])
