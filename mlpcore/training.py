"""Mini-batch training: ``fit`` shuffles (:func:`epoch_order`), batches (the last one may be
smaller) and hands the backend chunks of steps per call; see docs/contracts.md, "Training loop".
It keeps the optimizer's state on the model (``model.optimizer_state``), and a later ``fit`` with
an equal optimizer continues from it: its epochs, step numbers and slots.
:class:`Callback` is the protocol of the code ``fit`` runs at fixed points (mlpcore.callbacks).

Inputs in memory are bound to the backend once. Inputs that are :class:`~mlpcore.data.rows.Rows`
or memory-mapped arrays are streamed: each call's rows (a data-parallel worker's own rows of them)
are read (and scaled) into memory and bound (``Trainer.bind``) just before it, so memory holds
one chunk, never the whole set."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from mlpcore.backend import Capability, TrainingConfig
from mlpcore.data.rows import Rows, as_rows
from mlpcore.devices import resolve_device
from mlpcore.distributed import DataParallel, ProcessGroup, World
from mlpcore.dropout import DROPOUT_MODES, DropoutMode
from mlpcore.losses import LossName, check_loss
from mlpcore.optimizers import SGD, Adam, Optimizer, OptimizerState, kind, state_problems
from mlpcore.random import Purpose, stream
from mlpcore.regularisers import L1, L2, Regulariser
from mlpcore.validation import check_inputs, check_rows, check_targets

if TYPE_CHECKING:
    from mlpcore.model import MLP

__all__ = ["METRICS", "Callback", "EpochRecord", "History", "ProgressCallback", "TrainingRun",
           "fit"]


class LabelledData(Protocol):
    """Anything with ``images`` (N, D) and ``labels``, such as :class:`mlpcore.data.Dataset`."""

    @property
    def images(self) -> Any: ...

    @property
    def labels(self) -> Any: ...


Data = LabelledData | tuple[Any, Any]
ProgressCallback = Callable[[int, int, int], None]
"""Called as ``progress(epoch, steps_done, steps_in_epoch)`` after every chunk of steps."""


@dataclass(frozen=True)
class EpochRecord:
    """One epoch: mean objective over its steps, accuracies (``None`` when not measured)."""

    epoch: int
    loss: float
    train_accuracy: float | None
    valid_accuracy: float | None
    valid_loss: float | None
    seconds: float


@dataclass
class History:
    """What ``fit`` returns: one :class:`EpochRecord` per epoch."""

    epochs: list[EpochRecord] = field(default_factory=list)

    @property
    def loss(self) -> list[float]:
        return [e.loss for e in self.epochs]

    @property
    def train_accuracy(self) -> list[float | None]:
        return [e.train_accuracy for e in self.epochs]

    @property
    def valid_accuracy(self) -> list[float | None]:
        return [e.valid_accuracy for e in self.epochs]

    @property
    def valid_loss(self) -> list[float | None]:
        return [e.valid_loss for e in self.epochs]

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Draw the training curves into ``path`` (needs matplotlib); see
        :func:`mlpcore.plot.plot_history`."""
        from mlpcore.plot import plot_history

        return plot_history(self, path)


METRICS: tuple[str, ...] = ("loss", "train_accuracy", "valid_loss", "valid_accuracy")
"""The :class:`EpochRecord` fields a callback can monitor: accuracies higher, losses lower are
better."""


@dataclass
class TrainingRun:
    """What :class:`Callback` hooks see of a running :func:`fit`: the ``model`` being trained,
    the ``epochs`` and ``steps_per_epoch`` planned, which of :data:`METRICS` the epoch records
    hold (``metrics``: no ``valid_*`` without validation data, no ``train_accuracy`` with
    ``train_accuracy=False``), the ``history`` so far and the running ``epoch`` (from 1);
    ``world``, this process's place among data-parallel workers (rank 0 alone writes files).
    A hook sets ``stop_training = True`` to end training after the running epoch."""

    model: MLP
    epochs: int
    steps_per_epoch: int
    metrics: tuple[str, ...]
    history: History
    epoch: int = 0
    stop_training: bool = False
    world: World = field(default_factory=World)


@runtime_checkable
class Callback(Protocol):
    """Code :func:`fit` runs at fixed points, Keras's and Lightning's ``Callback``. Implement all
    four hooks, or subclass this class, whose hooks do nothing, and override some. ``fit`` calls
    each callback in list order:

    - ``on_train_begin(run)``: once, after the arguments are checked, before the first step;
    - ``on_steps_end(run, steps_done, steps_in_epoch)``: after each call to the backend (a chunk
      of ``steps_per_call`` steps) of epoch ``run.epoch``;
    - ``on_epoch_end(run, record)``: after each epoch, with its :class:`EpochRecord`, already the
      last of ``run.history``; setting ``run.stop_training`` here ends training after it;
    - ``on_train_end(run)``: once, after the last epoch, unless training raised.
    """

    def on_train_begin(self, run: TrainingRun) -> None:
        return None

    def on_steps_end(self, run: TrainingRun, steps_done: int, steps_in_epoch: int) -> None:
        return None

    def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
        return None

    def on_train_end(self, run: TrainingRun) -> None:
        return None


@dataclass(frozen=True)
class _Functions(Callback):
    """``fit``'s ``progress`` and ``on_epoch`` functions as a callback."""

    progress: ProgressCallback | None
    on_epoch: Callable[[EpochRecord], None] | None

    def on_steps_end(self, run: TrainingRun, steps_done: int, steps_in_epoch: int) -> None:
        if self.progress is not None:
            self.progress(run.epoch, steps_done, steps_in_epoch)

    def on_epoch_end(self, run: TrainingRun, record: EpochRecord) -> None:
        if self.on_epoch is not None:
            self.on_epoch(record)


def _callbacks(callbacks: Sequence[Callback], progress: ProgressCallback | None,
               on_epoch: Callable[[EpochRecord], None] | None) -> list[Callback]:
    """``callbacks`` after the ``progress`` and ``on_epoch`` functions, each checked."""
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Sequence):
        raise TypeError(f"callbacks must be a list of callbacks, got {callbacks!r}")
    for name, function in (("progress", progress), ("on_epoch", on_epoch)):
        if function is not None and not callable(function):
            raise TypeError(f"{name} must be a function or None, got {function!r}")
    for i, callback in enumerate(callbacks):
        if not isinstance(callback, Callback):
            hooks = ", ".join(h for h in ("on_train_begin", "on_steps_end", "on_epoch_end",
                                          "on_train_end") if not hasattr(callback, h))
            raise TypeError(f"callbacks[{i}] is not a callback: {callback!r} lacks {hooks} "
                            "(subclass mlpcore.Callback)")
    return [_Functions(progress, on_epoch), *callbacks]


def _checked(data: Data, what: str, model: MLP, loss: LossName) -> tuple[Any, Any]:
    """``data`` as (inputs, targets) checked for ``model``; errors name ``what``. Inputs that are
    :class:`Rows` or memory-mapped come back as :class:`Rows` (read once here to check them if
    floating), others as an array; targets always as an array."""
    if isinstance(data, tuple) and len(data) != 2:
        raise ValueError(f"{what} data must be (inputs, labels) or a Dataset")
    x, y = data if isinstance(data, tuple) else (data.images, data.labels)
    dtype = model.variable_dtype
    rows = as_rows(x)
    if rows is not None:
        x = check_rows(rows, model.spec.n_inputs, dtype, what=f"{what} inputs", finite=True)
    else:
        x = check_inputs(x, model.spec.n_inputs, dtype, what=f"{what} inputs", finite=True)
    return x, check_targets(y, x.shape[0], model.spec.n_outputs, loss, dtype,
                            what=f"{what} labels")


STREAM_ROWS = 8192
"""Rows a backend call gets when ``fit`` streams :class:`Rows` and ``steps_per_call`` is not
given: ``STREAM_ROWS // batch_size`` steps (at least one) a call."""


def _positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def epoch_order(seed: int, epoch: int, n_rows: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The order in which epoch ``epoch`` visits the ``n_rows`` training rows."""
    return stream(seed, Purpose.SHUFFLE, epoch).permutation(n_rows).astype(np.int64)


def replica_devices(backend: Any, devices: Sequence[str]) -> tuple[str, ...]:
    """The native names on ``backend`` of the ``devices`` that ``DataParallel(devices=...)``
    shares each batch over: a ``ValueError`` for a backend without ``local_data_parallel`` or a
    device named twice, a :class:`~mlpcore.errors.DeviceError` listing the available devices for
    one the backend cannot use now."""
    if Capability.LOCAL_DATA_PARALLEL not in backend.capabilities:
        raise ValueError(f"data_parallel: backend {backend.name!r} cannot share a batch over "
                         "several devices of one process (capability 'local_data_parallel'); "
                         "start one worker per device instead (docs/distributed.md)")
    native = tuple(resolve_device(backend, d) for d in devices)
    if len(set(native)) < len(native):
        raise ValueError(f"data_parallel: devices {', '.join(devices)} name the same device "
                         f"more than once ({', '.join(native)})")
    return native


def _world(model: MLP, data_parallel: DataParallel | bool | None) -> World:
    """The workers ``fit`` trains with: one process unless ``data_parallel`` asks for a group
    (error if none is found) or is ``None`` and the backend finds one; one process with
    ``DataParallel(devices=...)`` (an error inside a group of several)."""
    if data_parallel is not None and not isinstance(data_parallel, bool | DataParallel):
        raise TypeError(f"data_parallel must be None, True, False or mlpcore.DataParallel(...), "
                        f"got {data_parallel!r}")
    backend = model.backend
    if isinstance(data_parallel, DataParallel) and data_parallel.devices and not (
            Capability.DATA_PARALLEL in backend.capabilities and isinstance(backend,
                                                                            ProcessGroup)):
        return World()
    if data_parallel is False or (data_parallel is None and
                                  Capability.DATA_PARALLEL not in backend.capabilities):
        return World()
    if Capability.DATA_PARALLEL not in backend.capabilities or not isinstance(backend,
                                                                              ProcessGroup):
        raise ValueError(f"data_parallel: backend {backend.name!r} has no data-parallel "
                         "training (capability 'data_parallel')")
    settings = data_parallel if isinstance(data_parallel, DataParallel) else DataParallel()
    world = backend.world(settings.timeout)
    if settings.devices:
        if world is not None and world.size > 1:
            raise ValueError(f"data_parallel: devices= shares each batch over this process's "
                             f"devices, but this process is rank {world.rank} of {world.size} "
                             "workers; train with one or the other (docs/distributed.md)")
        return World()
    if world is None and data_parallel is not None:
        raise ValueError("data_parallel: this process is not one of a group of workers; start "
                         "them with 'mlpcore train --workers N' or the framework's launcher "
                         "(docs/distributed.md)")
    return World() if world is None else world


def _evaluate(model: MLP, x: Any, y: Any, loss: LossName, world: World) -> tuple[float, float]:
    """``model.evaluate(x, y, loss)``'s mean loss and accuracy; with several ranks each
    evaluates its :meth:`World.rows` of the rows and the backend's ``all_sum`` adds up their
    ``(loss · rows, correct rows)``: the accuracy is one process's, the loss its mean rounded
    differently."""
    if world.size == 1:
        result = model.evaluate(x, y, loss)
        return result.loss, result.accuracy
    mine = world.rows(len(x))
    n = mine.stop - mine.start
    part = model.evaluate(x[mine], y[mine], loss) if n else None
    assert isinstance(model.backend, ProcessGroup)
    total, correct = model.backend.all_sum(
        [0.0, 0.0] if part is None else [part.loss * n, round(part.accuracy * n)])
    return total / len(x), correct / len(x)


def starting_state(model: MLP, optimizer: Optimizer) -> OptimizerState | None:
    """The state ``fit`` continues from: ``model.optimizer_state`` if its optimizer equals
    ``optimizer`` (checked to fit the model, slots cast to its dtype), else ``None``: a fresh
    start at epoch 0, step 0."""
    state = model.optimizer_state
    if state is None or state.optimizer != optimizer:
        return None
    problems = state_problems(state, model.spec.variable_shapes())
    if problems:
        raise ValueError("model.optimizer_state does not fit the model: " + "; ".join(problems))
    if state.slots and Capability.OPTIMIZERS not in model.backend.capabilities:
        raise ValueError(f"backend {model.backend.name!r} cannot resume an optimizer's slots "
                         "(no 'optimizers' capability); set model.optimizer_state = None to "
                         "start afresh")
    return replace(state, slots={name: np.asarray(value, model.variable_dtype)
                                 for name, value in state.slots.items()})


def _state_after(trainer: Any, optimizer: Optimizer, epoch: int, step: int,
                 seed: int) -> OptimizerState | None:
    """The trainer's state at the end of ``epoch`` (``None``: a backend without the
    ``optimizers`` capability, where only slot-free SGD can be resumed)."""
    if trainer is not None:
        state: OptimizerState = trainer.optimizer_state()
        return replace(state, epoch=epoch, seed=seed)
    return OptimizerState(optimizer, step, epoch=epoch, seed=seed) \
        if kind(optimizer) == "sgd" else None


def fit(model: MLP, train: Data, *, loss: str | None = None,
        optimizer: Optimizer | None = None,
        regulariser: Regulariser | Sequence[Regulariser] | None = None,
        epochs: int = 10, batch_size: int = 64, validation: Data | None = None,
        seed: int | None = None, dropout_mode: DropoutMode = "portable",
        method: str | None = None, compiled: bool = False, steps_per_call: int | None = None,
        train_accuracy: bool = True, progress: ProgressCallback | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        callbacks: Sequence[Callback] = (), data_parallel: DataParallel | bool | None = None,
        initial_epoch: int = 0, device: str | None = None) -> History:
    """Train ``model`` in place with mini-batch ``optimizer`` steps and return its
    :class:`History`; ``model.optimizer_state`` holds where the optimizer stands afterwards.

    ``train`` and ``validation`` are ``(inputs, labels)`` pairs or have ``images`` and ``labels``.
    ``loss`` (default: the model's) becomes the model's :attr:`~mlpcore.MLP.loss`. ``seed``
    keys the shuffling and the portable dropout masks (default: the resumed state's, else the
    model's). With ``model.optimizer_state`` of an equal optimizer (a former ``fit``, or
    ``mlpcore.load``) the run continues it: ``epochs`` more epochs (``run.epoch`` and the records
    count on), step numbers and slots (:func:`starting_state`). With ``initial_epoch`` > 0,
    epochs ``initial_epoch + 1 … epochs`` run, Keras's way: a run resumed from a checkpoint
    continues its update sequence (a resumed state must have done ``initial_epoch`` epochs).
    ``callbacks`` run at fixed points (:class:`Callback`). ``data_parallel``:
    docs/distributed.md. ``device`` moves the model there first, in place (it stays there); the
    training set is copied to the model's device once (docs/devices.md). Every argument is
    described in docs/user-guide.md, "Training" and "Training methods".
    """
    loss_name = check_loss(model.loss if loss is None else loss)
    hooks = _callbacks(callbacks, progress, on_epoch)
    optimizer = SGD() if optimizer is None else optimizer
    if not isinstance(optimizer, SGD | Adam):
        raise TypeError(f"optimizer must be mlpcore.SGD or mlpcore.Adam, got {optimizer!r}")
    optimizers = Capability.OPTIMIZERS in model.backend.capabilities
    if not optimizers and (isinstance(optimizer, Adam) or optimizer.nesterov):
        raise ValueError(f"backend {model.backend.name!r} trains with SGD and plain momentum "
                         f"only (no 'optimizers' capability), not optimizer={optimizer!r}")
    given = () if regulariser is None else regulariser
    items = list(given) if isinstance(given, Sequence) and not isinstance(given, str) else [given]
    regularisers = tuple(r for r in items if isinstance(r, L1 | L2))
    if len(regularisers) != len(items):
        raise TypeError("regulariser must be mlpcore.L1(λ), mlpcore.L2(λ), a list of them or "
                        f"None, got {regulariser!r}")
    epochs = _positive_int(epochs, "epochs")
    if isinstance(initial_epoch, bool) or not isinstance(initial_epoch, int | np.integer) or not (
            0 <= initial_epoch < epochs):
        raise ValueError(f"initial_epoch must be an integer in [0, epochs={epochs}), "
                         f"got {initial_epoch!r}")
    batch_size = _positive_int(batch_size, "batch_size")
    if dropout_mode not in DROPOUT_MODES:
        raise ValueError(f"dropout_mode must be one of {', '.join(DROPOUT_MODES)}, "
                         f"got {dropout_mode!r}")
    if dropout_mode == "native" and Capability.NATIVE_DROPOUT not in model.backend.capabilities:
        raise ValueError(f"backend {model.backend.name!r} has no native dropout")
    state = starting_state(model, optimizer)
    if seed is None:
        seed = model.seed if state is None or state.seed is None else state.seed
    methods = tuple(model.backend.training_methods)
    if method is not None and method not in methods:
        raise ValueError(f"backend {model.backend.name!r} trains with method "
                         f"{', '.join(map(repr, methods))}, not {method!r}")
    if compiled and Capability.COMPILE not in model.backend.capabilities:
        raise ValueError(f"backend {model.backend.name!r} has no compiled training mode")
    replicas = (replica_devices(model.backend, data_parallel.devices)
                if isinstance(data_parallel, DataParallel) and data_parallel.devices else ())
    world = _world(model, data_parallel)
    if world.size > 1 and batch_size % world.size:
        raise ValueError(f"batch_size {batch_size} is not a multiple of the {world.size} "
                         f"workers: each worker takes batch_size / workers rows of every batch")
    if replicas and batch_size % len(replicas):
        raise ValueError(f"batch_size {batch_size} is not a multiple of the {len(replicas)} "
                         f"devices of data_parallel: each takes batch_size / devices rows of "
                         "every batch")
    if (world.size > 1 or replicas) and dropout_mode == "native":
        raise ValueError(f"dropout_mode 'native' draws each {'device' if replicas else 'worker'}"
                         "'s masks from its own RNG; data-parallel training takes 'portable' "
                         "masks")
    if device is not None:
        model._place(device)
    x, y = _checked(train, "training", model, loss_name)
    valid = None if validation is None else _checked(validation, "validation", model, loss_name)
    n_steps = math.ceil(x.shape[0] / batch_size)
    streamed = isinstance(x, Rows)
    chunk = (_positive_int(steps_per_call, "steps_per_call") if steps_per_call is not None
             else max(1, STREAM_ROWS // batch_size) if streamed else n_steps)
    config = TrainingConfig(loss=loss_name, optimizer=optimizer, regularisers=regularisers,
                            dropout_mode=dropout_mode, seed=seed, method=method, compiled=compiled,
                            world=world, devices=replicas)
    if initial_epoch and state is not None and state.epoch != initial_epoch:
        raise ValueError(f"initial_epoch {initial_epoch} differs from the {state.epoch} epochs of "
                         "model.optimizer_state, which this run continues")
    first_epoch = int(initial_epoch) if initial_epoch else state.epoch if state else 0
    last_epoch = epochs if initial_epoch else first_epoch + epochs
    first_step = state.step if state else first_epoch * n_steps
    history = History()
    measured = {"loss": True, "train_accuracy": train_accuracy,
                "valid_loss": valid is not None, "valid_accuracy": valid is not None}
    run = TrainingRun(model, epochs, n_steps, tuple(m for m in METRICS if measured[m]), history,
                      world=world)
    for hook in hooks:
        hook.on_train_begin(run)
    model.loss = loss_name
    bound = (x.take([], model.variable_dtype), y[:0]) if streamed else (x, y)

    def start(xs: Any, ys: Any) -> Any:
        native = model.native
        return (native.start_training(config, xs, ys, state) if state and optimizers
                else native.start_training(config, xs, ys))

    trainer = start(*bound)
    if streamed and not callable(getattr(trainer, "bind", None)):  # a Trainer older than bind
        x, streamed = x.take(np.arange(len(x)), model.variable_dtype), False
        trainer = start(x, y)
    for epoch in range(first_epoch, last_epoch):
        run.epoch = epoch + 1
        started = time.perf_counter()
        order = epoch_order(seed, epoch, x.shape[0])
        losses: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        for first in range(0, n_steps, chunk):
            rows = order[first * batch_size:(first + chunk) * batch_size]
            if streamed:  # this rank's rows of the chunk alone, in memory, in the model's dtype
                mine = world.positions(len(rows), batch_size)
                trainer.bind(x.take(rows[mine], model.variable_dtype), y[rows[mine]])
                rows = np.zeros(len(rows), np.int64)  # other ranks' positions: never read
                rows[mine] = np.arange(len(mine))
            losses.append(trainer.run(rows, batch_size,
                                      first_step + (epoch - first_epoch) * n_steps + first))
            for hook in hooks:
                hook.on_steps_end(run, min(first + chunk, n_steps), n_steps)
        epoch_loss = float(np.mean(np.concatenate(losses)))
        train_acc = _evaluate(model, x, y, loss_name, world)[1] if train_accuracy else None
        valid_eval = _evaluate(model, valid[0], valid[1], loss_name, world) if valid else None
        record = EpochRecord(epoch=epoch + 1, loss=epoch_loss, train_accuracy=train_acc,
                             valid_accuracy=None if valid_eval is None else valid_eval[1],
                             valid_loss=None if valid_eval is None else valid_eval[0],
                             seconds=time.perf_counter() - started)
        history.epochs.append(record)
        model.optimizer_state = _state_after(
            trainer if optimizers else None, optimizer, epoch + 1,
            first_step + (epoch + 1 - first_epoch) * n_steps, seed)
        for hook in hooks:
            hook.on_epoch_end(run, record)
        if run.stop_training:
            break
    for hook in hooks:
        hook.on_train_end(run)
    return history
