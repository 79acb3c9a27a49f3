"""Data-parallel training (``mlpcore/distributed.py``): two local workers, started by the backend's
own launcher, make the update sequence of one process with the same global batch, dropout,
penalties, momentum and an unequal last batch included (:mod:`mlpcore_conformance.workers`); so
does one process sharing each batch over two of its devices (``DataParallel(devices=...)``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlpcore.backend import Backend
from mlpcore.devices import available_devices, resolve_device
from mlpcore.distributed import DataParallel
from mlpcore.errors import DeviceError
from mlpcore_conformance import workers
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.tolerances import assert_close


@pytest.mark.mlpcore_requires("data_parallel")
def test_two_workers_make_the_updates_of_one_process(backend: Backend, repro: Repro,
                                                     tmp_path: Path) -> None:
    snippet = repro("from mlpcore_conformance import workers",
                    "workers.run_workers(backend.name, 2, out)  # each rank: out/rank<r>.npz",
                    "want = workers.run(backend.name, epochs=2, data_parallel=False)",
                    out=tmp_path)
    run = workers.run_workers(backend.name, 2, tmp_path)
    assert run.returncode == 0, f"the workers failed:\n{run.stdout}\nreproduce:\n{snippet}"
    history, variables = workers.run(backend.name, epochs=2, data_parallel=False)
    losses = history.loss
    ranks = [workers.results(tmp_path, rank) for rank in range(2)]
    for rank in range(2):  # each rank evaluates its share of the rows; all-reduced, all rows'
        got = workers.metrics(tmp_path, rank)
        for metric in ("train_accuracy", "valid_accuracy"):
            assert got[metric] == getattr(history, metric), (
                f"rank {rank}'s {metric} {got[metric]} is not one process's "
                f"{getattr(history, metric)}\nreproduce:\n{snippet}")
        assert_close(got["valid_loss"], history.valid_loss, "training", "float32",
                     what=f"rank {rank}'s valid_loss against 1 process", reproduce=snippet)
    for name, value in ranks[0][1].items():
        assert np.array_equal(ranks[1][1][name], value), (
            f"{name}: the workers' models differ after the same all-reduced updates\n"
            f"reproduce:\n{snippet}")
    assert_close(ranks[0][0], losses, "training", "float32",
                 what="epoch losses, 2 workers against 1 process", reproduce=snippet)
    for name, value in variables.items():
        assert_close(ranks[0][1][name], value, "training", "float32",
                     what=f"{name}, 2 workers against 1 process", reproduce=snippet)


def two_devices(backend: Backend) -> tuple[str, str] | None:
    """Two distinct devices of one kind the backend can use now, ``gpu:0`` and ``gpu:1`` or else
    ``cpu:0`` and ``cpu:1`` (its native names); ``None`` if it has neither pair."""
    for kind in ("gpu", "cpu"):
        try:
            first, second = (resolve_device(backend, f"{kind}:{i}") for i in (0, 1))
        except DeviceError:
            continue
        if first != second:
            return first, second
    return None


@pytest.mark.mlpcore_requires("local_data_parallel")
def test_two_devices_of_one_process_make_the_updates_of_one_device(backend: Backend,
                                                                   repro: Repro) -> None:
    devices = two_devices(backend)
    if devices is None:
        pytest.skip(f"backend {backend.name!r} has no two devices of one kind now (gpu:0 and "
                    f"gpu:1, or cpu:0 and cpu:1), only {', '.join(available_devices(backend))}; "
                    "see docs/distributed.md, 'Several devices in one process'")
    snippet = repro("from mlpcore_conformance import workers",
                    "got = workers.train(backend.name, epochs=2, "
                    "data_parallel=mlpcore.DataParallel(devices=devices))",
                    "want = workers.train(backend.name, epochs=2, data_parallel=False)",
                    devices=devices)
    losses, variables = workers.train(backend.name, epochs=2,
                                      data_parallel=DataParallel(devices=devices))
    want_losses, want = workers.train(backend.name, epochs=2, data_parallel=False)
    assert_close(losses, want_losses, "training", "float32",
                 what=f"epoch losses, devices {', '.join(devices)} against one",
                 reproduce=snippet)
    for name, value in want.items():
        assert_close(variables[name], value, "training", "float32",
                     what=f"{name}, devices {', '.join(devices)} against one", reproduce=snippet)
