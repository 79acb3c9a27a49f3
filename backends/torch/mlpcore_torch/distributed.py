"""Data-parallel training on torch.distributed (:mod:`mlpcore.distributed`): gloo on CPU, NCCL
for CUDA tensors, workers started by torchrun or :func:`launch` (torch's elastic launcher, what
torchrun runs), and one all-reduce of the objective and gradients per step."""

from __future__ import annotations

import atexit
import os
import uuid
from collections.abc import Sequence
from datetime import timedelta

import torch
import torch.distributed as dist

from mlpcore.distributed import World, collective_failed, worker_failed
from mlpcore.errors import DistributedError

LAUNCHER_VARIABLES = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun (and :func:`launch`) set for each worker: ``init_method="env://"``."""


def world(timeout: float) -> World | None:
    """The default process group, initialised from torchrun's variables if it is not yet (gloo,
    plus NCCL for CUDA tensors where CUDA is there); ``None`` when there is neither."""
    if not dist.is_available():
        return None
    if not dist.is_initialized():
        if not all(name in os.environ for name in LAUNCHER_VARIABLES):
            return None
        engine = "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"
        try:
            dist.init_process_group(engine, timeout=timedelta(seconds=timeout))
        except Exception as error:
            raise DistributedError(f"rank {os.environ['RANK']}: cannot join the group of "
                                   f"{os.environ['WORLD_SIZE']} workers at "
                                   f"{os.environ['MASTER_ADDR']}:{os.environ['MASTER_PORT']} "
                                   f"within {timeout:g} s: {error}") from error
        atexit.register(_leave)
    return World(dist.get_rank(), dist.get_world_size())


def _leave() -> None:
    """Leave the group this module joined, before the interpreter exits (a group left to the
    exit can abort the process: 'terminate called without an active exception')."""
    if dist.is_initialized():
        dist.destroy_process_group()


def all_sum(values: Sequence[float]) -> list[float]:
    """Each value summed over the ranks: one ``all_reduce`` of a CPU float64 tensor (gloo)."""
    summed = torch.tensor(list(values), dtype=torch.float64)
    _all_reduce(summed, "an evaluation")
    return [float(v) for v in summed.tolist()]


def _all_reduce(tensor: torch.Tensor, what: str) -> None:
    """``dist.all_reduce(tensor)``; a failure is a :class:`DistributedError` naming ``what``."""
    try:
        dist.all_reduce(tensor)
    except Exception as error:
        raise collective_failed(World(dist.get_rank(), dist.get_world_size()), what,
                                error) from error


class GradientSum:
    """``Σ_ranks share_r · (objective_r, gradients_r)`` by one ``all_reduce`` of one flat buffer
    (held between steps) per step; the sums are views into the buffer."""

    def __init__(self, params: Sequence[torch.Tensor]):
        sizes = [1] + [p.numel() for p in params]
        self._flat = params[0].new_zeros(sum(sizes))
        parts = torch.split(self._flat, sizes)
        self._value = parts[0].view(())
        self._grads = tuple(part.view(p.shape) for part, p in zip(parts[1:], params, strict=True))
        self._step = 0

    def __call__(self, value: torch.Tensor, grads: Sequence[torch.Tensor],
                 share: float) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        with torch.no_grad():
            if share == 0.0:  # no rows here: the mean over none is NaN, contribute nothing
                self._flat.zero_()
            else:
                self._value.copy_(value)
                for out, grad in zip(self._grads, grads, strict=True):
                    out.copy_(grad)
                self._flat.mul_(share)
            self._step += 1
            _all_reduce(self._flat, f"its step {self._step}")
        return self._value.clone(), self._grads


def launch(workers: int, command: Sequence[str], timeout: float) -> None:
    """``command`` in ``workers`` local processes by torch's elastic launcher, as torchrun
    ``--standalone`` (a c10d rendezvous on 127.0.0.1 and a free port, no restarts, one OpenMP
    thread per worker unless ``$OMP_NUM_THREADS`` says otherwise)."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=workers,
                          run_id=str(uuid.uuid4()), rdzv_backend="c10d",
                          rdzv_endpoint="127.0.0.1:0", rdzv_timeout=int(max(timeout, 1)),
                          rdzv_configs={"is_host": True, "timeout": int(max(timeout, 1))},
                          max_restarts=0, monitor_interval=0.1)
    threads = os.environ.get("OMP_NUM_THREADS")
    if threads is None and workers > 1:  # as torchrun: one thread each unless the user says
        os.environ["OMP_NUM_THREADS"] = "1"
    try:
        elastic_launch(config, command[0])(*command[1:])
    except ChildFailedError as error:
        rank, failure = error.get_first_failure()
        raise worker_failed(rank, workers, failure.exitcode) from error
    finally:
        if threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
