"""Data-parallel runs for the suite: :func:`run_workers` starts ``N`` local workers through the
backend's own launcher (:meth:`mlpcore.distributed.ProcessGroup.launch`), each running this
module's ``main``: one :func:`train` run whose epoch losses and final variables every rank writes
to ``OUT/rank<r>.npz``.

``python -m mlpcore_conformance.workers BACKEND OUT [--epochs E] ...`` (see ``--help``).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

import mlpcore
from mlpcore.data import Rows
from mlpcore.distributed import DataParallel, ProcessGroup
from mlpcore.training import METRICS
from mlpcore_conformance import cases

SPEC = mlpcore.MLPSpec((6, 8, 8, 4), activation="relu", dropout=0.3)
N_ROWS, BATCH, SEED = 37, 8, 17
"""37 rows in batches of 8: the fifth batch has 5 rows, shared 2/3 by two workers (unequal
shards: the loss's weighting is checked), 1/1/1/2 by four."""


def data() -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    return cases.normal(71, (N_ROWS, SPEC.n_inputs), "float32"), \
        cases.one_hot(72, N_ROWS, SPEC.n_outputs)


class TakenRows(Rows):
    """:func:`data`'s inputs in steps of 1/64 as int16 :class:`Rows` (streamed by ``fit``, never
    read whole to be checked), recording the rows each ``take`` reads, its slices' too (by row
    of the whole)."""

    def __init__(self, values: npt.NDArray[Any] | None = None,
                 taken: list[npt.NDArray[np.int64]] | None = None, offset: int = 0) -> None:
        super().__init__(np.round(data()[0] * 64).astype(np.int16) if values is None else values,
                         divisor=64)
        self.taken = [] if taken is None else taken
        self.offset = offset

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return TakenRows(self.values[key], self.taken, self.offset + key.indices(len(self))[0])
        return super().__getitem__(key)

    def take(self, rows: npt.ArrayLike, dtype: npt.DTypeLike = np.float32) -> npt.NDArray[Any]:
        self.taken.append(self.offset + np.array(rows, dtype=np.int64).reshape(-1))
        return super().take(rows, dtype)


def run(backend: str, *, epochs: int, initial_epoch: int = 0, momentum: float = 0.5,
          start: str | None = None, checkpoint: str | os.PathLike[str] | None = None,
          data_parallel: DataParallel | bool | None = None, on_epoch: Any = None,
          inputs: TakenRows | None = None, method: str | None = None,
          compiled: bool = False) -> tuple[mlpcore.History, dict[str, npt.NDArray[Any]]]:
    """The suite's data-parallel case: dropout, L1 and L2, momentum, a short last batch; from
    the checkpoint ``start`` if given; after every epoch (rank 0 of) a ``ModelCheckpoint`` saves
    to ``checkpoint`` if given; streamed from ``inputs`` if given; ``method`` and ``compiled``
    as ``fit``'s; the training accuracy and a validation on the same rows measured every epoch.
    Returns the history and the final variables."""
    model = (mlpcore.MLP(SPEC, backend=backend, seed=SEED) if start is None
             else mlpcore.load(start, backend=backend))
    history = mlpcore.fit(model, (data()[0] if inputs is None else inputs, data()[1]),
                          optimizer=mlpcore.SGD(0.2, momentum=momentum),
                          regulariser=[mlpcore.L1(1e-3), mlpcore.L2(1e-2)], epochs=epochs,
                          initial_epoch=initial_epoch, batch_size=BATCH, steps_per_call=2,
                          seed=SEED, validation=data(), data_parallel=data_parallel,
                          on_epoch=on_epoch, method=method, compiled=compiled,
                          callbacks=[] if checkpoint is None else
                          [mlpcore.ModelCheckpoint(checkpoint, save_best_only=False)])
    return history, model.variables


def train(backend: str, **options: Any) -> tuple[list[float], dict[str, npt.NDArray[Any]]]:
    """:func:`run`'s epoch losses and final variables."""
    history, variables = run(backend, **options)
    return history.loss, variables


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mlpcore_conformance.workers")
    parser.add_argument("backend")
    parser.add_argument("out", type=Path, help="folder for rank<r>.npz")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--initial-epoch", type=int, default=0)
    parser.add_argument("--momentum", type=float, default=0.5)
    parser.add_argument("--start", help="checkpoint to start from")
    parser.add_argument("--checkpoint", help="rank 0 saves here after every epoch")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--method", help="fit's training method (default: the backend's)")
    parser.add_argument("--compiled", action="store_true", help="fit's compiled mode")
    parser.add_argument("--exit", metavar="RANK:EPOCH",
                        help="that rank exits with status 3 after that epoch (a dying worker)")
    parser.add_argument("--stall", metavar="RANK:EPOCH",
                        help="that rank stops responding after that epoch (a hung worker)")
    parser.add_argument("--die-saving", type=int, metavar="EPOCH",
                        help="rank 0 is killed while it writes the checkpoint of that epoch")
    parser.add_argument("--stream", action="store_true",
                        help="stream TakenRows; each rank writes the rows it read as 'taken'")
    args = parser.parse_args(argv)
    backend = mlpcore.get_backend(args.backend)
    assert isinstance(backend, ProcessGroup)
    world = backend.world(args.timeout)
    rank = 0 if world is None else world.rank
    epoch_done = 0

    def on_epoch(record: mlpcore.EpochRecord) -> None:
        nonlocal epoch_done
        epoch_done = record.epoch
        if args.exit and f"{rank}:{record.epoch}" == args.exit:
            os._exit(3)
        if args.stall and f"{rank}:{record.epoch}" == args.stall:
            time.sleep(3600)

    if args.die_saving is not None and rank == 0:
        from mlpcore.io import atomic

        synced = atomic.fsync

        def fsync(path: Path, flags: int = 0) -> None:
            synced(path, flags)
            if epoch_done == args.die_saving:  # its file written, not yet renamed
                os.kill(os.getpid(), signal.SIGKILL)
        atomic.fsync = fsync

    inputs = TakenRows() if args.stream else None
    history, variables = run(args.backend, epochs=args.epochs,
                              initial_epoch=args.initial_epoch, momentum=args.momentum,
                              start=args.start, checkpoint=args.checkpoint,
                              data_parallel=DataParallel(args.timeout), on_epoch=on_epoch,
                              inputs=inputs, method=args.method, compiled=args.compiled)
    arrays: dict[str, Any] = {name.replace("/", "."): value for name, value in variables.items()}
    if inputs is not None:
        arrays["taken"] = np.concatenate(inputs.taken)
    arrays.update({metric: np.array(getattr(history, metric)) for metric in METRICS})
    np.savez(args.out / f"rank{rank}.npz", **arrays)


def run_workers(backend: str, workers: int, out: Path, *args: str,
                timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
    """:func:`main` in ``workers`` processes through the backend's launcher, itself in a child
    process killed (with its workers: a process group of their own) after ``timeout`` s."""
    launch = ("import sys, mlpcore; mlpcore.get_backend(sys.argv[1]).launch(int(sys.argv[2]), "
              "[sys.executable, '-m', 'mlpcore_conformance.workers', *sys.argv[3:]], 60.0)")
    command = [sys.executable, "-c", launch, backend, str(workers), backend, str(out), *args]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True)
    try:
        output, _ = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        output, _ = child.communicate()
        raise AssertionError(f"{workers} workers did not finish within {timeout:g} s:\n"
                             f"{output}") from None
    return subprocess.CompletedProcess(command, child.returncode, output)


def results(out: Path, rank: int) -> tuple[list[float], dict[str, npt.NDArray[Any]]]:
    """The epoch losses and final variables rank ``rank`` of :func:`main` wrote."""
    with np.load(out / f"rank{rank}.npz") as saved:
        return list(saved["loss"]), {name.replace(".", "/"): saved[name] for name in saved.files
                                     if name not in (*METRICS, "taken")}


def metrics(out: Path, rank: int) -> dict[str, list[float]]:
    """The history (``METRICS`` per epoch) rank ``rank`` of :func:`main` wrote."""
    with np.load(out / f"rank{rank}.npz") as saved:
        return {metric: list(saved[metric]) for metric in METRICS}


if __name__ == "__main__":
    main()
