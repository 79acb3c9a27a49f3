"""What is TensorFlow's own in data-parallel training (mlpcore_tensorflow/distributed.py): the
TF_CONFIG cluster read as a rank, joined only before the process's first op, and a bounded wait
for workers that never start. Each case runs in a fresh process (a TF_CONFIG cluster is joined
once per process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("tensorflow")


def _config(index: int, kind: str = "worker", **cluster: list[str]) -> str:
    jobs = cluster or {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    return json.dumps({"cluster": jobs, "task": {"type": kind, "index": index}})


def _python(code: str, tf_config: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False,
                          env={**os.environ, "TF_CONFIG": tf_config, **env})


@pytest.mark.parametrize("index, kind, cluster, rank, size", [
    (1, "worker", {"worker": ["a:1", "b:1", "c:1"]}, 1, 3),
    (0, "chief", {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, 0, 3),
    (1, "worker", {"chief": ["a:1"], "worker": ["b:1", "c:1"]}, 2, 3)])
def test_tf_config_gives_the_rank_chief_first(monkeypatch: pytest.MonkeyPatch, index: int,
                                              kind: str, cluster: dict[str, list[str]],
                                              rank: int, size: int) -> None:
    from mlpcore.distributed import World
    from mlpcore_tensorflow.distributed import cluster as read

    monkeypatch.setenv("TF_CONFIG", _config(index, kind, **cluster))
    assert read() == World(rank, size)


@pytest.mark.parametrize("config", ['{"cluster": {"worker": ["a:1"]}}', "not json",
                                    _config(0, "ps"), _config(5)])
def test_a_bad_tf_config_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch,
                                              config: str) -> None:
    from mlpcore.errors import DistributedError
    from mlpcore_tensorflow.distributed import cluster

    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(DistributedError, match="TF_CONFIG is not a cluster"):
        cluster()


def test_a_process_that_ran_tensorflow_first_cannot_join_and_fit_says_so() -> None:
    code = ("import numpy as np, tensorflow as tf, mlpcore\n"
            "tf.constant(1.0)\n"
            "model = mlpcore.MLP(mlpcore.MLPSpec((4, 3)), backend='tensorflow', seed=1)\n"
            "mlpcore.fit(model, (np.ones((8, 4), np.float32), np.zeros(8, int)), epochs=1)\n")
    run = _python(code, _config(1))
    assert run.returncode == 1
    assert ("mlpcore.errors.DistributedError: rank 1 of 2: TensorFlow ran an op in this process "
            "before mlpcore's tensorflow backend was loaded") in run.stderr
    assert "call mlpcore.get_backend('tensorflow') first" in run.stderr


def test_a_worker_whose_peers_never_start_exits_after_the_join_timeout() -> None:
    """TensorFlow waits for them in C++ holding the interpreter: faulthandler's watchdog ends
    the process, with its traceback (the launcher names the rank)."""
    run = _python("import mlpcore; mlpcore.get_backend('tensorflow')", _config(1),
                  MLPCORE_JOIN_TIMEOUT="3")
    assert run.returncode == 1
    assert "Timeout (0:00:03)!" in run.stderr
    assert "mlpcore_tensorflow/distributed.py" in run.stderr and "in join" in run.stderr


def test_a_bad_join_timeout_is_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from mlpcore.errors import DistributedError
    from mlpcore_tensorflow import distributed

    monkeypatch.setenv("TF_CONFIG", _config(1))
    monkeypatch.setenv("MLPCORE_JOIN_TIMEOUT", "soon")
    monkeypatch.setattr(distributed, "_joined", {})
    distributed.join()  # as the backend object does: the timeout from the variable
    with pytest.raises(DistributedError, match="MLPCORE_JOIN_TIMEOUT must be a number of "
                                               "seconds, got 'soon'"):
        distributed.world(10.0)
