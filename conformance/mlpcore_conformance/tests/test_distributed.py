"""Data-parallel training (``mlpcore/distributed.py``): two local workers, started by the backend's
own launcher, make the update sequence of one process with the same global batch, dropout,
penalties, momentum and an unequal last batch included (:mod:`mlpcore_conformance.workers`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mlpcore.backend import Backend
from mlpcore_conformance import workers
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.tolerances import assert_close


@pytest.mark.mlpcore_requires("data_parallel")
def test_two_workers_make_the_updates_of_one_process(backend: Backend, repro: Repro,
                                                     tmp_path: Path) -> None:
    snippet = repro("from mlpcore_conformance import workers",
                    "workers.run_workers(backend.name, 2, out)  # each rank: out/rank<r>.npz",
                    "want = workers.train(backend.name, epochs=2, data_parallel=False)",
                    out=tmp_path)
    run = workers.run_workers(backend.name, 2, tmp_path)
    assert run.returncode == 0, f"the workers failed:\n{run.stdout}\nreproduce:\n{snippet}"
    losses, variables = workers.train(backend.name, epochs=2, data_parallel=False)
    ranks = [workers.results(tmp_path, rank) for rank in range(2)]
    for name, value in ranks[0][1].items():
        assert np.array_equal(ranks[1][1][name], value), (
            f"{name}: the workers' models differ after the same all-reduced updates\n"
            f"reproduce:\n{snippet}")
    assert_close(ranks[0][0], losses, "training", "float32",
                 what="epoch losses, 2 workers against 1 process", reproduce=snippet)
    for name, value in variables.items():
        assert_close(ranks[0][1][name], value, "training", "float32",
                     what=f"{name}, 2 workers against 1 process", reproduce=snippet)
