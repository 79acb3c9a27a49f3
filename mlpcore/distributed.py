"""Contract: data-parallel training on a framework's own distributed engine (docs/distributed.md).

``N`` workers (ranks ``0..N-1``) share every global batch of ``B`` rows: rank ``r`` takes rows
``[r·B // N, (r+1)·B // N)`` of it (:meth:`World.rows`), computes the objective ``J_r`` (mean
over its ``b_r`` rows, plus the penalty) and its gradients, and the engine's all-reduce sums
``(b_r / B) · (J_r, ∇J_r)`` over the ranks. That sum is the one-process objective and gradient
over the ``B`` rows (penalties included: ``Σ b_r / B = 1``) even where the shards differ in size,
so every rank makes the update one process would make with batch ``B``. Dropout masks are the
portable ones drawn for the whole ``(B, width)`` batch, each rank using its rows' slice.

A backend declaring :attr:`~mlpcore.backend.Capability.DATA_PARALLEL` implements
:class:`ProcessGroup`; its trainer shards when :attr:`TrainingConfig.world
<mlpcore.backend.TrainingConfig.world>` has more than one rank. One declaring
:attr:`~mlpcore.backend.Capability.LOCAL_DATA_PARALLEL` shares each batch the same way over the
``N`` devices of :attr:`TrainingConfig.devices <mlpcore.backend.TrainingConfig.devices>`
(replicas of one process, replica ``r`` taking ``World(r, N).rows(B)``), and updates once.
"""

from __future__ import annotations

import math
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from mlpcore.errors import DistributedError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

__all__ = ["DEFAULT_TIMEOUT", "DataParallel", "ProcessGroup", "World", "collective_failed",
           "worker_failed"]

DEFAULT_TIMEOUT = 300.0
"""Seconds a worker waits for the others (a collective, the rendezvous) before failing."""


@dataclass(frozen=True)
class World:
    """This process's place among the workers: ``rank`` in ``0..size-1``."""

    rank: int = 0
    size: int = 1

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.size:
            raise ValueError(f"rank must be in 0..{self.size - 1}, got {self.rank}")

    def rows(self, batch: int) -> slice:
        """This rank's rows of a global batch of ``batch`` rows (empty when ``batch < size``)."""
        return slice(self.rank * batch // self.size, (self.rank + 1) * batch // self.size)

    def positions(self, n: int, batch: int) -> npt.NDArray[np.int64]:
        """The positions in ``n`` rows taken ``batch`` at a time (the last batch may be shorter)
        that are this rank's (:meth:`rows` of each batch), in order."""
        import numpy as np  # here: the CLI imports this module and starts without NumPy

        parts = [np.arange(mine.start, mine.stop) + start for start in range(0, n, batch)
                 for mine in [self.rows(min(batch, n - start))]]
        return np.concatenate(parts) if parts else np.empty(0, np.int64)


@dataclass(frozen=True)
class DataParallel:
    """``fit(..., data_parallel=DataParallel(timeout=60))``: train data-parallel (an error when no
    group of workers is found) and fail a collective after ``timeout`` seconds without the
    others, naming the rank that gave up, instead of hanging.

    ``DataParallel(devices=("gpu:0", "gpu:1"))``: train in this process, sharing every batch
    over these devices (at least two, distinct; portable or native names, as ``fit``'s
    ``device``), for a backend declaring ``local_data_parallel``."""

    timeout: float = DEFAULT_TIMEOUT
    devices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (isinstance(self.timeout, int | float) and math.isfinite(self.timeout)
                and self.timeout > 0):
            raise ValueError(f"timeout must be a finite number of seconds > 0, "
                             f"got {self.timeout!r}")
        devices = self.devices
        if isinstance(devices, str) or not isinstance(devices, Sequence) or not all(
                isinstance(d, str) for d in devices):
            raise TypeError(f"devices must be a sequence of device names such as "
                            f"('gpu:0', 'gpu:1'), got {devices!r}")
        if len(devices) == 1:
            raise ValueError(f"devices names one device, {devices[0]!r}: data-parallel training "
                             "needs at least two (one device: fit(..., device=...))")
        object.__setattr__(self, "devices", tuple(devices))


@runtime_checkable
class ProcessGroup(Protocol):
    """What a backend declaring ``DATA_PARALLEL`` offers besides its trainer's all-reduce."""

    def world(self, timeout: float) -> World | None:
        """The group this process is a worker of, joined if its launcher has started it but it
        has not joined yet (collectives fail after ``timeout`` s); ``None`` outside any group."""

    def all_sum(self, values: Sequence[float]) -> list[float]:
        """Each of ``values`` summed over the ranks (float64), a collective every rank calls
        with as many values (``fit`` sums its ranks' shares of an evaluation); a
        :class:`~mlpcore.errors.DistributedError` naming this rank when the others fail."""

    def launch(self, workers: int, command: Sequence[str], timeout: float) -> None:
        """Run ``command`` (a program and its arguments) in ``workers`` local processes through
        the engine's own launcher, as one group; return when all have exited with status 0, or
        raise :class:`~mlpcore.errors.DistributedError` naming the first rank that failed."""


def collective_failed(world: World, what: str, error: BaseException,
                      detail: str | None = None) -> DistributedError:
    """The error a rank raises when the all-reduce of ``what`` fails (``detail``: the engine's
    reason, default ``str(error)``)."""
    return DistributedError(f"rank {world.rank} of {world.size}: the all-reduce of {what} failed, "
                            f"another worker exited or timed out ({type(error).__name__}: "
                            f"{error if detail is None else detail})")


def worker_failed(rank: int, workers: int, exitcode: int) -> DistributedError:
    """The error a launcher raises when worker ``rank`` ends with ``exitcode`` (negative: the
    signal that killed it) and it has stopped the others."""
    try:
        how = (f"was killed by signal {signal.Signals(-exitcode).name}" if exitcode < 0
               else f"exited with status {exitcode}")
    except ValueError:  # a number no signal of this system has
        how = f"was killed by signal {-exitcode}"
    return DistributedError(f"worker rank {rank} of {workers} {how}; the launcher stopped the "
                            "others")
