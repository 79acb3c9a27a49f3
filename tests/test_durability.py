"""Durable saves: SIGKILL in the middle of a save, saving over the file just loaded (memory-mapped
too), and a full disk during write or fsync."""

from __future__ import annotations

import errno
import os
import random
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import safetensors.numpy

from mlpcore.errors import CheckpointError
from mlpcore.io.atomic import TEMP_SUFFIX
from mlpcore.io.checkpoint import load, read_checkpoint, save
from mlpcore.model import MLP
from mlpcore.spec import MLPSpec

# about 1.2 M parameters (4.8 MB): a save takes long enough for a kill to land inside it
BIG = MLPSpec(sizes=(1000, 1000, 200), activation="relu")
SMALL = MLPSpec(sizes=(4, 8, 3), activation="tanh")
KILLS = 50


def same(model: MLP, other: MLP) -> bool:
    return all(np.array_equal(a, other.variables[n]) for n, a in model.variables.items())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkill_during_save_never_damages_the_checkpoint(tmp_path: Path) -> None:
    models = [MLP(BIG, seed=1), MLP(BIG, seed=2)]
    path = save(models[0], tmp_path / "m.safetensors")
    rng = random.Random(1234)
    caught_mid_save = 0
    for _ in range(KILLS):
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # child: save the two models in turn until killed
            os.close(read)
            try:
                os.write(write, b"go")
                turn = 1
                while True:
                    save(models[turn], path)
                    turn ^= 1
            finally:
                os._exit(1)
        os.close(write)
        os.read(read, 2)
        os.close(read)
        time.sleep(rng.uniform(0.0, 0.06))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        loaded = load(path)
        assert same(loaded, models[0]) or same(loaded, models[1])
        leftovers = [p for p in tmp_path.iterdir() if p.name != "m.safetensors"]
        for temp in leftovers:  # the temporary folder of the save that was killed
            assert temp.name.startswith(".m.safetensors.") and temp.name.endswith(TEMP_SUFFIX)
            caught_mid_save += 1
            for part in (p for p in temp.iterdir() if p.is_file()):
                if part.stat().st_size != path.stat().st_size:  # never taken for a checkpoint
                    with pytest.raises(CheckpointError):
                        read_checkpoint(part)
            shutil.rmtree(temp)
    assert caught_mid_save > 0, "no kill landed inside a save; the test proved nothing"


def test_save_over_the_file_just_loaded_from(tmp_path: Path) -> None:
    path = save(MLP(SMALL, seed=1), tmp_path / "m.safetensors")
    model = load(path)  # memory-mapped by default
    values = model.variables
    values["dense_0/bias"] += 1.0
    model.assign(values)
    save(model, path)
    np.testing.assert_array_equal(load(path).variables["dense_0/bias"], values["dense_0/bias"])


def test_memory_mapped_views_survive_saving_over_their_file(tmp_path: Path) -> None:
    first, second = MLP(SMALL, seed=1), MLP(SMALL, seed=2)
    path = save(first, tmp_path / "m.safetensors")
    mapped = read_checkpoint(path, mmap=True)
    assert not mapped.variables["dense_0/weights"].flags.writeable
    save(second, path)
    for name, value in first.variables.items():
        np.testing.assert_array_equal(mapped.variables[name], value)  # the old inode lives on
    assert same(load(path), second)
    assert same(MLP.from_variables(SMALL, mapped.variables), first)


def _full_disk(*args: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def _half_then_full(tensors: object, filename: object, metadata: object = None) -> None:
    data = safetensors.numpy.save(tensors, metadata=metadata)  # type: ignore[arg-type]
    Path(filename).write_bytes(data[: len(data) // 2])  # type: ignore[arg-type]
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_full_disk_propagates_and_keeps_the_original(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    path = save(MLP(SMALL, seed=1), tmp_path / "m.safetensors")
    original = path.read_bytes()
    if where == "write":
        monkeypatch.setattr(safetensors.numpy, "save_file", _half_then_full)
    else:
        monkeypatch.setattr(os, "fsync", _full_disk)
    with pytest.raises(CheckpointError, match="No space left") as info:
        save(MLP(SMALL, seed=2), path)
    monkeypatch.undo()
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.__cause__.errno == errno.ENOSPC
    assert str(path) in str(info.value)
    assert path.read_bytes() == original
    assert same(load(path), MLP(SMALL, seed=1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
