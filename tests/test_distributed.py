"""Data-parallel fit (mlpcore/distributed.py): argument checks in one process (torch), then
small runs of 2 local workers through each backend's launcher (torch's elastic launcher; the
TensorFlow backend's, which sets TF_CONFIG; 127.0.0.1, free ports, timeouts everywhere): a dead
or hung worker ends the run naming its rank, a dying rank 0 leaves the previous checkpoint whole,
and a run resumes on another number of workers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore.distributed import DataParallel, World, collective_failed, worker_failed
from mlpcore_conformance import workers

pytest.importorskip("torch.distributed")

SPEC = mlpcore.MLPSpec((6, 8, 4), activation="tanh", dropout=0.2)


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 6)).astype(np.float32), rng.integers(0, 4, 20)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("batch", [1, 5, 8, 64])
def test_ranks_share_every_row_of_a_batch_once(size: int, batch: int) -> None:
    rows = [World(rank, size).rows(batch) for rank in range(size)]
    assert [r.start for r in rows[1:]] == [r.stop for r in rows[:-1]]
    assert (rows[0].start, rows[-1].stop) == (0, batch)
    assert max(r.stop - r.start for r in rows) - min(r.stop - r.start for r in rows) <= 1


@pytest.mark.parametrize("size", [1, 2, 3])
@pytest.mark.parametrize("n, batch", [(0, 4), (10, 4), (37, 8), (3, 8), (16, 1)])
def test_positions_are_the_ranks_rows_of_each_batch(size: int, n: int, batch: int) -> None:
    positions = [World(rank, size).positions(n, batch) for rank in range(size)]
    assert np.array_equal(np.sort(np.concatenate(positions)), np.arange(n))
    for rank, mine in enumerate(positions):
        assert np.all(np.diff(mine) > 0)
        for start in range(0, n, batch):
            shard = World(rank, size).rows(min(batch, n - start))
            assert np.array_equal(mine[(mine >= start) & (mine < start + batch)] - start,
                                  np.arange(shard.start, shard.stop))


@pytest.mark.parametrize("rank, size", [(2, 2), (-1, 2), (0, 0)])
def test_world_refuses_a_rank_outside_it(rank: int, size: int) -> None:
    with pytest.raises(ValueError, match="rank must be in"):
        World(rank, size)


@pytest.mark.parametrize(("exitcode", "how"), [(3, "exited with status 3"),
                                              (-9, "was killed by signal SIGKILL"),
                                              (-200, "was killed by signal 200")])
def test_a_failed_worker_is_named_with_how_it_ended(exitcode: int, how: str) -> None:
    error = worker_failed(1, 4, exitcode)
    assert isinstance(error, mlpcore.DistributedError)
    assert str(error) == f"worker rank 1 of 4 {how}; the launcher stopped the others"


def test_a_failed_collective_names_the_rank_and_what_it_summed() -> None:
    error = collective_failed(World(2, 3), "step 6", TimeoutError("gloo timed out"))
    assert str(error) == ("rank 2 of 3: the all-reduce of step 6 failed, another worker exited "
                          "or timed out (TimeoutError: gloo timed out)")
    assert "(RuntimeError: last line)" in str(
        collective_failed(World(0, 2), "x", RuntimeError("a\nlast line"), "last line"))


@pytest.mark.parametrize("timeout", [0, -1.0, float("nan"), float("inf"), "10"])
def test_data_parallel_refuses_a_bad_timeout(timeout: object) -> None:
    with pytest.raises(ValueError, match="timeout must be"):
        DataParallel(timeout=timeout)  # type: ignore[arg-type]


def _fake_group(monkeypatch: pytest.MonkeyPatch, model: mlpcore.MLP, world: World) -> None:
    """The model's backend reports ``world`` (checks that fail before any collective)."""
    monkeypatch.setattr(type(model.backend), "world", lambda self, timeout: world)


def test_a_batch_the_workers_cannot_share_evenly_is_refused(
        monkeypatch: pytest.MonkeyPatch) -> None:
    model = mlpcore.MLP(SPEC, backend="torch", seed=1)
    _fake_group(monkeypatch, model, World(0, 2))
    with pytest.raises(ValueError, match="batch_size 7 is not a multiple of the 2 workers"):
        mlpcore.fit(model, _data(), batch_size=7, epochs=1)


def test_native_dropout_is_refused_with_several_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    model = mlpcore.MLP(SPEC, backend="torch", seed=1)
    _fake_group(monkeypatch, model, World(1, 2))
    with pytest.raises(ValueError, match=r"'native'.*'portable'"):
        mlpcore.fit(model, _data(), batch_size=8, epochs=1, dropout_mode="native")


def test_data_parallel_asked_for_outside_a_group_is_an_error() -> None:
    model = mlpcore.MLP(SPEC, backend="torch", seed=1)
    with pytest.raises(ValueError, match="not one of a group of workers"):
        mlpcore.fit(model, _data(), data_parallel=True, epochs=1)


def test_a_backend_without_the_capability_refuses_data_parallel() -> None:
    model = mlpcore.MLP(SPEC, backend="numpy", seed=1)
    with pytest.raises(ValueError, match="'numpy' has no data-parallel training"):
        mlpcore.fit(model, _data(), data_parallel=DataParallel(), epochs=1)
    mlpcore.fit(model, _data(), epochs=1)  # None: one process, no error


def test_data_parallel_of_another_type_is_refused() -> None:
    model = mlpcore.MLP(SPEC, backend="torch", seed=1)
    with pytest.raises(TypeError, match="data_parallel must be"):
        mlpcore.fit(model, _data(), data_parallel="yes", epochs=1)  # type: ignore[arg-type]


@pytest.mark.parametrize("initial_epoch", [-1, 3, 4, 1.0, True])
def test_initial_epoch_must_be_before_epochs(initial_epoch: object) -> None:
    model = mlpcore.MLP(SPEC, backend="torch", seed=1)
    with pytest.raises(ValueError, match="initial_epoch must be"):
        mlpcore.fit(model, _data(), epochs=3, initial_epoch=initial_epoch)  # type: ignore[arg-type]


def test_fit_from_initial_epoch_continues_the_update_sequence(tmp_path: Path) -> None:
    """Two epochs, a checkpoint, two more from it (the run's seed given: a loaded model does not
    know it): the four epochs of one run, bit for bit."""
    whole = mlpcore.MLP(SPEC, backend="torch", seed=1)
    mlpcore.fit(whole, _data(), epochs=4, batch_size=8)
    first = mlpcore.MLP(SPEC, backend="torch", seed=1)
    path = tmp_path / "run.safetensors"
    mlpcore.fit(first, _data(), epochs=2, batch_size=8,
                callbacks=[mlpcore.ModelCheckpoint(path, save_best_only=False)])
    resumed = mlpcore.load(path, backend="torch")
    history = mlpcore.fit(resumed, _data(), epochs=4, initial_epoch=2, batch_size=8, seed=1)
    assert [e.epoch for e in history.epochs] == [3, 4]
    for name, value in whole.variables.items():
        np.testing.assert_array_equal(resumed.variables[name], value)


# --- two workers ------------------------------------------------------------------------------

STALL_TIMEOUT = {"torch": "2", "tensorflow": "10"}
"""--timeout of the hung-worker run: TensorFlow's first collective waits for both ranks to trace
their step function, seconds apart under load."""


@pytest.fixture(params=["torch", "tensorflow"])
def name(request: pytest.FixtureRequest) -> str:
    """The backend whose launcher and all-reduce run the workers."""
    backend: str = request.param
    pytest.importorskip(backend)
    return backend

def _ok(run: subprocess.CompletedProcess[str]) -> None:
    assert run.returncode == 0, run.stdout


@pytest.mark.parametrize("name, options", [
    (name, options) for name in ("torch", "tensorflow")
    for options in (("--method", "optimizer"), ("--method", "manual"))] + [
    ("tensorflow", ("--compiled",))])  # torch.compile: minutes on this CPU, left to the suite
def test_every_method_makes_the_updates_of_one_process(name: str, options: tuple[str, ...],
                                                       tmp_path: Path) -> None:
    """The framework's optimizer, backprop by hand and TensorFlow's XLA-compiled gradients on 2
    workers, against one process (the conformance test runs the default method)."""
    pytest.importorskip(name)
    _ok(workers.run_workers(name, 2, tmp_path, *options))
    method = options[1] if options[0] == "--method" else None
    want_losses, want = workers.train(name, epochs=2, method=method,
                                      compiled="--compiled" in options, data_parallel=False)
    losses, got = workers.results(tmp_path, 0)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    for variable, value in want.items():
        np.testing.assert_allclose(got[variable], value, rtol=1e-5, atol=1e-6)


def test_a_worker_that_exits_ends_the_run_naming_its_rank(name: str, tmp_path: Path) -> None:
    run = workers.run_workers(name, 2, tmp_path, "--epochs", "3", "--exit", "1:1")
    assert run.returncode != 0
    assert "DistributedError: worker rank 1 of 2 exited with status 3" in run.stdout
    assert not list(tmp_path.glob("rank*.npz"))


def test_a_hung_worker_times_out_instead_of_hanging(name: str, tmp_path: Path) -> None:
    """Rank 1 stops answering; rank 0's all-reduce gives up after --timeout (our error names
    its rank and step), and the launcher ends the run with rank 0's failure. TensorFlow's
    collective runtime now and then aborts rank 0 itself when the timeout fires (SIGABRT, seen
    in 2 of about 20 runs here), before mlpcore's error: the run still ends, within the
    timeout, naming rank 0."""
    run = workers.run_workers(name, 2, tmp_path, "--epochs", "3", "--stall", "1:1",
                              "--timeout", STALL_TIMEOUT[name], timeout=90)
    assert run.returncode != 0
    if name == "tensorflow" and "worker rank 0 of 2 was killed by signal SIGABRT" in run.stdout:
        return
    assert "rank 0 of 2: the all-reduce of its step 6 failed" in run.stdout
    assert "DistributedError: worker rank 0 of 2 exited with status 1" in run.stdout


def test_rank_0_killed_while_saving_leaves_the_last_checkpoint_whole(name: str,
                                                                     tmp_path: Path) -> None:
    path = tmp_path / "run.safetensors"
    run = workers.run_workers(name, 2, tmp_path, "--epochs", "3", "--die-saving", "2",
                              "--checkpoint", str(path))
    assert "worker rank 0 of 2 was killed by signal SIGKILL" in run.stdout
    _, after_one = workers.train(name, epochs=1, data_parallel=False)
    saved = mlpcore.load(path, backend="numpy").variables  # epoch 1's, complete and verified
    for name, value in after_one.items():
        np.testing.assert_allclose(saved[name], value, rtol=1e-5, atol=1e-6)
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [path.name]


def test_a_run_resumes_on_another_number_of_workers(name: str, tmp_path: Path) -> None:
    """Epochs 1-2 on 2 workers (rank 0 writes the checkpoint), 3 in one process, 4 on 2 workers
    again (every rank loads it): the update sequence of 4 epochs in one process."""
    path, again = tmp_path / "run.safetensors", tmp_path / "again"
    _ok(workers.run_workers(name, 2, tmp_path, "--momentum", "0", "--epochs", "2",
                            "--checkpoint", str(path)))
    losses, _ = workers.train(name, epochs=3, initial_epoch=2, momentum=0.0, start=str(path),
                              checkpoint=path, data_parallel=False)
    again.mkdir()
    _ok(workers.run_workers(name, 2, again, "--momentum", "0", "--epochs", "4",
                            "--initial-epoch", "3", "--start", str(path)))
    want_losses, want = workers.train(name, epochs=4, momentum=0.0, data_parallel=False)
    got_losses = [*workers.results(tmp_path, 0)[0], *losses, *workers.results(again, 0)[0]]
    np.testing.assert_allclose(got_losses, want_losses, rtol=1e-5)
    for rank in range(2):
        for name, value in workers.results(again, rank)[1].items():
            np.testing.assert_allclose(value, want[name], rtol=1e-5, atol=1e-6)


def test_streamed_workers_read_only_their_rows_and_match_one_process(name: str,
                                                                    tmp_path: Path) -> None:
    """Streamed rows: each rank reads its shard of every batch and evaluates its share of the
    rows, so the two ranks together read every row twice an epoch, as one process does (a rank
    reading the whole chunk, or evaluating every row, would read more)."""
    _ok(workers.run_workers(name, 2, tmp_path, "--stream"))
    one = workers.TakenRows()
    want_losses, want = workers.train(name, epochs=2, data_parallel=False, inputs=one)
    taken = [np.load(tmp_path / f"rank{rank}.npz")["taken"] for rank in range(2)]
    assert 0 < len(taken[1]) < len(taken[0]) + len(taken[1]) == 2 * 2 * workers.N_ROWS
    np.testing.assert_array_equal(np.sort(np.concatenate(taken)),
                                  np.sort(np.concatenate(one.taken)))
    losses, variables = workers.results(tmp_path, 0)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-5)
    for variable, value in want.items():
        np.testing.assert_allclose(variables[variable], value, rtol=1e-5, atol=1e-6)


# --- mlpcore train --workers --------------------------------------------------------------------

def _train(tmp_path: Path, *extra: str, backend: str = "torch",
           ) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mlpcore.cli", "train", "--backend", backend, "--epochs", "1",
               "--sizes", "784,16,10", "--dropout", "0.25", "--no-progress", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False,
                          cwd=tmp_path)


def test_train_with_workers_prints_once_and_matches_one_process(name: str,
                                                                tmp_path: Path) -> None:
    two = _train(tmp_path, "--workers", "2", "--timeout", "60", "--save", "two.safetensors",
                 backend=name)
    assert two.returncode == 0, two.stderr
    one = _train(tmp_path, "--save", "one.safetensors", backend=name)
    table = [line.split("|")[:3] for line in two.stdout.splitlines() if line.startswith("Epoch")]
    assert table == [line.split("|")[:3] for line in one.stdout.splitlines()
                     if line.startswith("Epoch")]
    assert len(table) == 1 and two.stdout.count("Test ACC") == 1  # rank 0 alone prints
    for name, value in mlpcore.load(tmp_path / "one.safetensors").variables.items():
        np.testing.assert_allclose(mlpcore.load(tmp_path / "two.safetensors").variables[name],
                                   value, rtol=1e-4, atol=1e-6)


def test_train_with_workers_refuses_an_uneven_batch_naming_the_option(tmp_path: Path) -> None:
    run = _train(tmp_path, "--workers", "2", "--batch-size", "63", "--timeout", "60")
    assert run.returncode == 1
    assert run.stderr.strip() == ("mlpcore: error: --batch-size 63 is not a multiple of "
                                  "--workers 2: each worker takes batch size / workers rows of "
                                  "every batch")


def test_train_with_workers_on_a_backend_without_the_capability(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "mlpcore.cli", "train", "--backend", "numpy",
                          "--workers", "2", "--epochs", "1"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == 1
    assert run.stderr.strip() == ("mlpcore: error: --workers: backend 'numpy' has no "
                                  "data-parallel training (capability 'data_parallel')")
