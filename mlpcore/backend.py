"""Contract: what a backend is.

A backend is an object satisfying :class:`Backend`. It offers the per-concept operations
(:class:`~mlpcore.activations.ActivationOps`, :class:`~mlpcore.losses.LossOps`,
:class:`~mlpcore.regularisers.RegulariserOps`, :class:`~mlpcore.dropout.DropoutOps`), which the
conformance suite compares against a float64 reference, and it builds :class:`BackendModel` objects:
the variables of one MLP held as the framework's own arrays.

The core validates every user input before it reaches a backend (shapes, dtypes, label ranges,
variable names and shapes), so a backend may assume well-formed arguments and the same bad input
raises the same error whatever the backend.

Arrays cross this boundary as NumPy arrays, in canonical layout (weights ``(fan_in, fan_out)``);
a backend whose native layout differs converts at its own boundary. Training is the exception that
keeps the hot loop native: :meth:`BackendModel.start_training` converts the training set once, and
:meth:`Trainer.run` then executes a whole chunk of SGD steps in one call, so a framework that pays
per call (a ``tf.function``) pays once per chunk rather than once per step.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ActivationOps
from mlpcore.dropout import DropoutMode, DropoutOps
from mlpcore.losses import LossName, LossOps
from mlpcore.optimizers import SGD
from mlpcore.regularisers import Regulariser, RegulariserOps
from mlpcore.spec import DTypeName, MLPSpec
from mlpcore.version import CONTRACT_VERSION

__all__ = [
    "CONTRACT_VERSION",
    "Backend",
    "BackendModel",
    "Capability",
    "Trainer",
    "TrainingConfig",
    "batch_blocks",
]

FloatArray = npt.NDArray[np.floating]
Targets = npt.NDArray[Any]


class Capability(StrEnum):
    """Optional abilities a backend declares; tests skip on these, never on backend names."""

    FLOAT64 = "float64"
    """Models can be built in float64 as well as float32."""
    GRADIENTS = "gradients"
    """:meth:`BackendModel.loss_and_gradients` is implemented."""
    NATIVE_DROPOUT = "native_dropout"
    """Dropout masks can come from the framework's own RNG (``dropout_mode="native"``)."""
    COMPILE = "compile"
    """``TrainingConfig.compiled=True`` compiles the whole training step (e.g. ``torch.compile``,
    XLA ``jit_compile``)."""


@dataclass(frozen=True)
class TrainingConfig:
    """Everything about a training run that stays fixed while it runs.

    ``seed`` keys the portable dropout masks: step ``s`` of the run uses
    ``portable_keep_mask(seed, s, layer, ...)`` after hidden layer ``layer``.
    ``method`` is one of the backend's :attr:`Backend.training_methods` (how gradients and updates
    are computed: ``"manual"`` backprop, ``"autodiff"`` with a hand-written update, or the
    framework's ``"optimizer"``), or ``None`` for the backend's default, its first method;
    ``fit`` has already checked it. ``compiled`` asks for the
    compiled step (only for backends with :attr:`Capability.COMPILE`).
    """

    loss: LossName
    optimizer: SGD
    regularisers: tuple[Regulariser, ...] = ()
    dropout_mode: DropoutMode = "portable"
    seed: int = 0
    method: str | None = None
    compiled: bool = False


@runtime_checkable
class Trainer(Protocol):
    """A training run bound to one model and one training set, holding optimiser state."""

    def run(self, order: npt.NDArray[np.int64], batch_size: int,
            first_step: int) -> npt.NDArray[np.float64]:
        """Run ``ceil(len(order) / batch_size)`` SGD steps and update the model's variables.

        Step ``j`` uses the training rows ``order[j * batch_size:(j + 1) * batch_size]`` (the last
        batch may be smaller) and is step number ``first_step + j`` of the run, which picks its
        dropout masks. Returns each step's objective (batch-mean loss + penalties), before the
        update, as float64 of shape (n_steps,).
        """
        ...


def batch_blocks(order: npt.NDArray[np.int64], batch_size: int,
                 first_step: int) -> list[tuple[npt.NDArray[np.int64], int]]:
    """The steps of one :meth:`Trainer.run` call as at most two rectangular blocks.

    ``(order[:full * B].reshape(full, B), first_step)`` for the ``full = len(order) // B`` whole
    batches, then ``(order[full * B:].reshape(1, r), first_step + full)`` for a short last batch
    of ``r`` rows, each block with the step number of its first row. A trainer that runs a
    ``(n_steps, batch)`` matrix of rows per framework call (one ``tf.function`` or ``jax.jit``
    program per block shape) calls this instead of splitting by hand. Empty ``order``: ``[]``.
    """
    order = np.asarray(order, dtype=np.int64)
    full, rest = divmod(len(order), batch_size)
    blocks: list[tuple[npt.NDArray[np.int64], int]] = []
    if full:
        blocks.append((order[:full * batch_size].reshape(full, batch_size), first_step))
    if rest:
        blocks.append((order[full * batch_size:].reshape(1, rest), first_step + full))
    return blocks


@runtime_checkable
class BackendModel(Protocol):
    """The variables of one MLP, held as the framework's arrays, and the passes over them."""

    spec: MLPSpec
    dtype: DTypeName

    def read_variables(self) -> dict[str, FloatArray]:
        """Copies of every variable as NumPy arrays in canonical layout, keyed by name."""
        ...

    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        """Replace every variable. ``values`` is complete, validated and already in ``dtype``.

        All-or-nothing: convert everything first, assign only when every conversion succeeded.
        """
        ...

    def forward(self, x: FloatArray) -> FloatArray:
        """Eval-mode outputs (logits) ``(N, n_outputs)`` for inputs ``(N, n_inputs)``."""
        ...

    def loss_and_gradients(
        self,
        x: FloatArray,
        targets: Targets,
        loss: LossName,
        regularisers: Sequence[Regulariser] = (),
        keep_masks: Sequence[npt.NDArray[np.bool_]] | None = None,
    ) -> tuple[float, dict[str, FloatArray]]:
        """The objective on one batch and its gradient for every variable, canonical layout.

        ``keep_masks`` gives one boolean mask per hidden layer for training-mode dropout at rate
        ``spec.dropout``; ``None`` means eval mode (no dropout).
        """
        ...

    def start_training(self, config: TrainingConfig, x: FloatArray, targets: Targets) -> Trainer:
        """Bind a training set (converted to native arrays once) and return a :class:`Trainer`."""
        ...


@runtime_checkable
class Backend(Protocol):
    """A backend: one framework's implementation of every contract."""

    name: str
    contract_version: int
    capabilities: frozenset[str]
    training_methods: tuple[str, ...]
    """The ways this backend can train, the default first: ``"manual"``, ``"autodiff"``,
    ``"optimizer"``. All of them compute the same SGD update."""
    activations: ActivationOps
    losses: LossOps
    regularisers: RegulariserOps
    dropout: DropoutOps

    def framework_version(self) -> str:
        """The version of the framework underneath, for reports and checkpoints."""
        ...

    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: DTypeName) -> BackendModel:
        """A model with these starting variables (complete, validated, canonical layout, dtype)."""
        ...
