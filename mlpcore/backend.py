"""Contract: what a backend is (:class:`Backend`), the models it builds (:class:`BackendModel`)
and the training runs they start (:class:`Trainer`). NumPy arrays in canonical layout cross this
boundary, already validated by the core; see docs/contracts.md.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from mlpcore.activations import ActivationOps
from mlpcore.distributed import World
from mlpcore.dropout import DropoutMode, DropoutOps
from mlpcore.losses import LossName, LossOps
from mlpcore.optimizers import Optimizer, OptimizerState
from mlpcore.regularisers import Regulariser, RegulariserOps
from mlpcore.spec import ComputeDType, MLPSpec
from mlpcore.version import CONTRACT_VERSION

__all__ = ["CONTRACT_VERSION", "Backend", "BackendModel", "Capability", "Trainer",
           "TrainingConfig", "batch_blocks", "supported_dtypes"]

FloatArray = npt.NDArray[np.floating]
Targets = npt.NDArray[Any]


class Capability(StrEnum):
    """Optional abilities a backend declares; tests skip on these, never on backend names."""

    FLOAT64 = "float64"  # models in float64 as well as float32
    BFLOAT16 = "bfloat16"  # mixed precision: float32 variables, passes in bfloat16
    FLOAT16 = "float16"  # mixed precision in float16, training with loss scaling
    GRADIENTS = "gradients"  # BackendModel.loss_and_gradients is implemented
    NATIVE_DROPOUT = "native_dropout"  # masks from the framework's RNG (dropout_mode="native")
    COMPILE = "compile"  # TrainingConfig.compiled=True compiles the whole training step
    DATA_PARALLEL = "data_parallel"  # the backend is a mlpcore.distributed.ProcessGroup
    LOCAL_DATA_PARALLEL = "local_data_parallel"  # TrainingConfig.devices: one process, N devices
    OPTIMIZERS = "optimizers"  # Nesterov and Adam; trainers start from and report their state


@dataclass(frozen=True)
class TrainingConfig:
    """Everything fixed during a training run. ``seed`` keys the portable dropout masks (step
    ``s`` uses ``portable_keep_mask(seed, s, layer, ...)``); ``method`` is one of
    :attr:`Backend.training_methods`, ``None`` for the first; ``compiled`` needs ``COMPILE``;
    ``world`` of more than one rank needs ``DATA_PARALLEL`` (see :mod:`mlpcore.distributed`);
    ``devices``, the native names of two or more distinct devices that each step's batch is
    shared over in this process (``world`` then has one rank; empty: the model's device alone),
    needs ``LOCAL_DATA_PARALLEL``."""

    loss: LossName
    optimizer: Optimizer
    regularisers: tuple[Regulariser, ...] = ()
    dropout_mode: DropoutMode = "portable"
    seed: int = 0
    method: str | None = None
    compiled: bool = False
    world: World = field(default_factory=World)
    devices: tuple[str, ...] = ()


@runtime_checkable
class Trainer(Protocol):
    """A training run bound to one model and one training set, holding the optimizer state."""

    def run(self, order: npt.NDArray[np.int64], batch_size: int,
            first_step: int) -> npt.NDArray[np.float64]:
        """Run ``ceil(len(order) / batch_size)`` SGD steps, step ``j`` on the rows
        ``order[j * batch_size:(j + 1) * batch_size]`` numbered ``first_step + j``; each step's
        objective (loss + penalties) before its update, float64 (n_steps,).

        With ``Capability.OPTIMIZERS`` a trainer also has ``optimizer_state() ->
        OptimizerState``: the updates made and copies of the optimizer's slots (not part of this
        Protocol, so a backend without the capability need not define it)."""

    def bind(self, x: FloatArray, targets: Targets) -> None:
        """Replace the training set by ``x`` (M, d_0) and ``targets`` (M,) or (M, K), any
        M >= 0, in the form :meth:`BackendModel.start_training` gets them (the model's dtype,
        C-contiguous): later :meth:`run` calls index these rows. Optimiser state carries on.
        This is how ``fit`` streams data that is not held in memory, a chunk of rows a call."""


def batch_blocks(order: npt.NDArray[np.int64], batch_size: int,
                 first_step: int) -> list[tuple[npt.NDArray[np.int64], int]]:
    """One :meth:`Trainer.run` call's rows as at most two ``(rows (n_steps, batch), first step
    number)`` blocks: the whole batches, then a short last batch (1, r). Empty ``order``: ``[]``."""
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
    dtype: ComputeDType
    """The model's dtype; NumPy arrays cross the boundary in ``master_dtype(dtype)`` (float32
    for the mixed-precision bfloat16 and float16), and so do variables."""

    def read_variables(self) -> dict[str, FloatArray]:
        """Copies of every variable as NumPy arrays in canonical layout, keyed by name."""

    def write_variables(self, values: Mapping[str, FloatArray]) -> None:
        """Replace every variable (``values`` complete, validated, in the master dtype);
        all-or-nothing."""

    def forward(self, x: FloatArray) -> FloatArray:
        """Eval-mode logits ``(N, n_outputs)`` for inputs ``(N, n_inputs)``."""

    def loss_and_gradients(
        self, x: FloatArray, targets: Targets, loss: LossName,
        regularisers: Sequence[Regulariser] = (),
        keep_masks: Sequence[npt.NDArray[np.bool_]] | None = None,
    ) -> tuple[float, dict[str, FloatArray]]:
        """The objective on one batch and every variable's gradient (canonical layout);
        ``keep_masks``: one bool mask per hidden layer, ``None`` for eval mode."""

    def start_training(self, config: TrainingConfig, x: FloatArray, targets: Targets,
                       state: OptimizerState | None = None) -> Trainer:
        """Bind a training set (converted to native arrays once) and return a :class:`Trainer`
        whose optimizer starts from ``state`` (``OPTIMIZERS`` only; checked by the core to fit
        the model and ``config.optimizer``), else from zero slots and step 0."""


@runtime_checkable
class Backend(Protocol):
    """A backend: one framework's implementation of every contract."""

    name: str
    contract_version: int
    capabilities: frozenset[str]
    training_methods: tuple[str, ...]
    """Default first: ``"manual"``, ``"autodiff"``, ``"optimizer"``; all the same update."""
    activations: ActivationOps
    losses: LossOps
    regularisers: RegulariserOps
    dropout: DropoutOps

    def framework_version(self) -> str:
        """The version of the framework underneath, for reports and checkpoints."""

    def build(self, spec: MLPSpec, variables: Mapping[str, FloatArray],
              dtype: ComputeDType) -> BackendModel:
        """A model with these starting variables (complete, validated, canonical layout, in
        ``master_dtype(dtype)``) computing in ``dtype``; a backend with devices
        (:class:`mlpcore.devices.Placement`) takes ``device=`` too."""


def supported_dtypes(backend: Backend) -> tuple[ComputeDType, ...]:
    """The model dtypes ``backend`` supports: float32, and float64, bfloat16 and float16 where
    it declares the capability of that name."""
    declared = {str(c) for c in backend.capabilities}
    return ("float32", *(d for d in ("float64", "bfloat16", "float16") if d in declared))
