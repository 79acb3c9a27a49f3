"""Mini-batch SGD: ``fit`` shuffles (:func:`epoch_order`), batches (the last one may be smaller)
and hands the backend chunks of steps per call; see docs/contracts.md, "Training loop"."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mlpcore.backend import Capability, TrainingConfig
from mlpcore.dropout import DROPOUT_MODES, DropoutMode
from mlpcore.losses import LossName, check_loss
from mlpcore.model import MLP
from mlpcore.optimizers import SGD
from mlpcore.random import Purpose, stream
from mlpcore.regularisers import L1, L2, Regulariser
from mlpcore.validation import check_inputs, check_targets

__all__ = ["EpochRecord", "History", "ProgressCallback", "fit"]


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


def _checked(data: Data, what: str, model: MLP, loss: LossName) -> tuple[Any, Any]:
    """``data`` as (inputs, targets) arrays checked for ``model``; errors name ``what``."""
    if isinstance(data, tuple) and len(data) != 2:
        raise ValueError(f"{what} data must be (inputs, labels) or a Dataset")
    x, y = data if isinstance(data, tuple) else (data.images, data.labels)
    x = check_inputs(x, model.spec.n_inputs, model.dtype, what=f"{what} inputs", finite=True)
    return x, check_targets(y, x.shape[0], model.spec.n_outputs, loss, model.dtype,
                            what=f"{what} labels")


def _positive_int(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


def epoch_order(seed: int, epoch: int, n_rows: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The order in which epoch ``epoch`` visits the ``n_rows`` training rows."""
    return stream(seed, Purpose.SHUFFLE, epoch).permutation(n_rows).astype(np.int64)


def fit(model: MLP, train: Data, *, loss: str = "softmax_cross_entropy",
        optimizer: SGD | None = None,
        regulariser: Regulariser | Sequence[Regulariser] | None = None,
        epochs: int = 10, batch_size: int = 64, validation: Data | None = None,
        seed: int | None = None, dropout_mode: DropoutMode = "portable",
        method: str | None = None, compiled: bool = False, steps_per_call: int | None = None,
        train_accuracy: bool = True, progress: ProgressCallback | None = None,
        on_epoch: Callable[[EpochRecord], None] | None = None) -> History:
    """Train ``model`` in place with mini-batch SGD and return its :class:`History`.

    ``train`` and ``validation`` are ``(inputs, labels)`` pairs or have ``images`` and ``labels``.
    ``seed`` (default: the model's) keys the shuffling and the portable dropout masks. Every
    argument is described in docs/user-guide.md, "Training" and "Training methods".
    """
    loss_name = check_loss(loss)
    optimizer = SGD() if optimizer is None else optimizer
    if not isinstance(optimizer, SGD):
        raise TypeError(f"optimizer must be an mlpcore.SGD, got {optimizer!r}")
    given = () if regulariser is None else regulariser
    items = list(given) if isinstance(given, Sequence) and not isinstance(given, str) else [given]
    regularisers = tuple(r for r in items if isinstance(r, L1 | L2))
    if len(regularisers) != len(items):
        raise TypeError("regulariser must be mlpcore.L1(λ), mlpcore.L2(λ), a list of them or "
                        f"None, got {regulariser!r}")
    epochs = _positive_int(epochs, "epochs")
    batch_size = _positive_int(batch_size, "batch_size")
    if dropout_mode not in DROPOUT_MODES:
        raise ValueError(f"dropout_mode must be one of {', '.join(DROPOUT_MODES)}, "
                         f"got {dropout_mode!r}")
    if dropout_mode == "native" and Capability.NATIVE_DROPOUT not in model.backend.capabilities:
        raise ValueError(f"backend {model.backend.name!r} has no native dropout")
    seed = model.seed if seed is None else seed
    methods = tuple(model.backend.training_methods)
    method = methods[0] if method is None else method
    if method not in methods:
        raise ValueError(f"backend {model.backend.name!r} trains with method "
                         f"{', '.join(map(repr, methods))}, not {method!r}")
    if compiled and Capability.COMPILE not in model.backend.capabilities:
        raise ValueError(f"backend {model.backend.name!r} has no compiled training mode")
    x, y = _checked(train, "training", model, loss_name)
    valid = None if validation is None else _checked(validation, "validation", model, loss_name)
    n_steps = math.ceil(x.shape[0] / batch_size)
    chunk = n_steps if steps_per_call is None else _positive_int(steps_per_call, "steps_per_call")
    config = TrainingConfig(loss=loss_name, optimizer=optimizer, regularisers=regularisers,
                            dropout_mode=dropout_mode, seed=seed, method=method, compiled=compiled)
    trainer = model.native.start_training(config, x, y)
    history = History()
    for epoch in range(epochs):
        started = time.perf_counter()
        order = epoch_order(seed, epoch, x.shape[0])
        losses: list[np.ndarray[Any, np.dtype[np.float64]]] = []
        for first in range(0, n_steps, chunk):
            rows = order[first * batch_size:(first + chunk) * batch_size]
            losses.append(trainer.run(rows, batch_size, epoch * n_steps + first))
            if progress is not None:
                progress(epoch + 1, min(first + chunk, n_steps), n_steps)
        epoch_loss = float(np.mean(np.concatenate(losses)))
        train_acc = model.evaluate(x, y, loss_name).accuracy if train_accuracy else None
        valid_eval = model.evaluate(valid[0], valid[1], loss_name) if valid else None
        record = EpochRecord(epoch=epoch + 1, loss=epoch_loss, train_accuracy=train_acc,
                             valid_accuracy=None if valid_eval is None else valid_eval.accuracy,
                             valid_loss=None if valid_eval is None else valid_eval.loss,
                             seconds=time.perf_counter() - started)
        history.epochs.append(record)
        if on_epoch is not None:
            on_epoch(record)
    return history
