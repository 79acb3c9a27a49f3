"""Data larger than memory: memory-mapped IDX and .npy files, :class:`mlpcore.data.Rows`, and
``fit``/``evaluate``/``predict`` reading them a block at a time (docs/user-guide.md)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import mlpcore
from mlpcore.data import Rows, load_idx_pair, load_npy, read_idx, write_idx
from mlpcore.data.rows import as_rows, memory_map_of
from mlpcore.errors import DataError, InvalidInputError

REPO = Path(__file__).resolve().parent.parent
SPEC = mlpcore.MLPSpec((12, 8, 3), activation="relu", dropout=0.25)


def images_and_labels(tmp_path: Path, n: int = 300) -> tuple[Path, Path]:
    rng = np.random.default_rng(4)
    write_idx(tmp_path / "images", rng.integers(0, 256, (n, 3, 4), dtype=np.uint8))
    write_idx(tmp_path / "labels", rng.integers(0, 3, n, dtype=np.uint8))
    return tmp_path / "images", tmp_path / "labels"


# --- mapping ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["u1", "i2", "f4", "f8"])
def test_read_idx_mmap_maps_raw_files_read_only(tmp_path: Path, dtype: str) -> None:
    array = (np.arange(60).reshape(5, 3, 4) - 7).astype(dtype)
    write_idx(tmp_path / "x", array)
    mapped = read_idx(tmp_path / "x", mmap=True)
    assert memory_map_of(mapped) is not None and not mapped.flags.writeable
    assert mapped.shape == array.shape
    np.testing.assert_array_equal(mapped, array)


def test_read_idx_mmap_of_gzip_reads_into_memory(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 12)
    write_idx(tmp_path / "x.gz", array, compress=True)
    result = read_idx(tmp_path / "x.gz", mmap=True)
    assert memory_map_of(result) is None
    np.testing.assert_array_equal(result, array)


def test_load_npy(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "x.npy", array)
    mapped = load_npy(tmp_path / "x.npy", mmap=True)
    assert memory_map_of(mapped) is not None
    np.testing.assert_array_equal(mapped, array)
    np.testing.assert_array_equal(load_npy(tmp_path / "x.npy"), array)


@pytest.mark.parametrize(("content", "fragment"), [
    (None, "no such .npy file"),
    (b"not numpy at all", "not a readable .npy file"),
    (b"", "not a readable .npy file"),
    ("truncated", "not a readable .npy file"),
    ("objects", "not a readable .npy file"),
])
@pytest.mark.parametrize("mmap", [False, True])
def test_load_npy_refuses_bad_files_naming_them(tmp_path: Path, content: Any, fragment: str,
                                                 mmap: bool) -> None:
    path = tmp_path / "bad.npy"
    if content == "truncated":
        np.save(path, np.zeros((100, 10), np.float32))
        path.write_bytes(path.read_bytes()[:-8])
    elif content == "objects":
        np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(DataError, match=fragment) as caught:
        load_npy(path, mmap=mmap)
    assert str(path) in str(caught.value)


# --- Rows -------------------------------------------------------------------------------------


def test_rows_take_divides_as_the_whole_conversion_does(tmp_path: Path) -> None:
    images, labels = images_and_labels(tmp_path)
    whole = load_idx_pair(images, labels)
    mapped = load_idx_pair(images, labels, mmap=True)
    rows = mapped.images
    assert isinstance(rows, Rows) and rows.shape == (300, 12) and rows.dtype == np.float32
    assert isinstance(whole.images, np.ndarray)
    np.testing.assert_array_equal(mapped.labels, whole.labels)
    picked = np.array([299, 0, 5, 5, 17])
    np.testing.assert_array_equal(rows.take(picked), whole.images[picked])  # bit for bit
    assert rows.take(picked, np.float64).dtype == np.float64
    np.testing.assert_array_equal(rows[picked], whole.images[picked])
    np.testing.assert_array_equal(np.asarray(rows), whole.images)
    view = rows[10:20]
    assert isinstance(view, Rows) and len(view) == 10 and memory_map_of(view.values) is not None
    np.testing.assert_array_equal(np.asarray(view), whole.images[10:20])
    with pytest.raises(IndexError, match=r"\[0, 300\)"):
        rows.take([300])


def test_rows_blocks_cover_every_row_once() -> None:
    rows = Rows(np.arange(50, dtype=np.float64).reshape(25, 2), divisor=2)
    assert rows.dtype == np.float64
    parts = list(rows.blocks(size=10))
    assert [p[0] for p in parts] == [slice(0, 10), slice(10, 20), slice(20, 25)]
    np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]),
                                  np.arange(50).reshape(25, 2) / 2)


def test_rows_refuse_what_is_not_a_real_matrix() -> None:
    with pytest.raises(InvalidInputError, match="shape \\(N, D\\)"):
        Rows(np.zeros(3))
    with pytest.raises(InvalidInputError, match="shape \\(N, D\\)"):
        Rows(np.zeros((3, 2), bool))


def test_only_memory_mapped_floating_arrays_are_streamed(tmp_path: Path) -> None:
    np.save(tmp_path / "f.npy", np.zeros((4, 3), np.float32))
    np.save(tmp_path / "u.npy", np.zeros((4, 3), np.uint8))
    assert isinstance(as_rows(load_npy(tmp_path / "f.npy", mmap=True)), Rows)
    assert as_rows(load_npy(tmp_path / "f.npy")) is None
    assert as_rows(load_npy(tmp_path / "u.npy", mmap=True)) is None  # refused as before


# --- training, evaluation and prediction ------------------------------------------------------


@pytest.mark.parametrize("steps_per_call", [None, 3])
def test_fit_on_mapped_rows_equals_fit_in_memory(tmp_path: Path,
                                                 steps_per_call: int | None) -> None:
    """Streamed chunk by chunk (dropout, momentum, a short last batch), the same weights and
    history bit for bit as the whole set in memory."""
    images, labels = images_and_labels(tmp_path)
    runs = []
    for mmap in (False, True):
        data = load_idx_pair(images, labels, mmap=mmap)
        model = mlpcore.MLP(SPEC, backend="numpy", seed=2)
        history = mlpcore.fit(model, data, optimizer=mlpcore.SGD(0.1, momentum=0.5), epochs=2,
                              batch_size=32, steps_per_call=steps_per_call, validation=data)
        runs.append((history, model.variables))
    (whole, whole_vars), (mapped, mapped_vars) = runs
    assert mapped.loss == whole.loss and mapped.train_accuracy == whole.train_accuracy
    assert mapped.valid_accuracy == whole.valid_accuracy
    for name, value in whole_vars.items():
        np.testing.assert_array_equal(mapped_vars[name], value)


def test_fit_streams_memory_mapped_npy(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    x, y = rng.random((90, 12), dtype=np.float32), rng.integers(0, 3, 90)
    np.save(tmp_path / "x.npy", x)
    a, b = (mlpcore.MLP(SPEC, backend="numpy", seed=5) for _ in range(2))
    mlpcore.fit(a, (x, y), epochs=1, batch_size=16)
    mlpcore.fit(b, (load_npy(tmp_path / "x.npy", mmap=True), y), epochs=1, batch_size=16)
    for name, value in a.variables.items():
        np.testing.assert_array_equal(b.variables[name], value)


def test_a_trainer_without_bind_trains_on_streamed_data_read_into_memory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A third-party Trainer written before ``bind`` keeps working: fit reads the mapped rows
    into memory once and trains as on an in-memory set, bit for bit."""
    rng = np.random.default_rng(3)
    x, y = rng.random((70, 12), dtype=np.float32), rng.integers(0, 3, 70)
    np.save(tmp_path / "x.npy", x)
    a, b = (mlpcore.MLP(SPEC, backend="numpy", seed=5) for _ in range(2))
    mlpcore.fit(a, (x, y), epochs=2, batch_size=16)

    class WithoutBind:  # the Trainer protocol as it was before bind
        def __init__(self, trainer: Any) -> None:
            self.run, self.optimizer_state = trainer.run, trainer.optimizer_state

    start = b.native.start_training
    monkeypatch.setattr(b.native, "start_training",
                        lambda config, xs, ys: WithoutBind(start(config, xs, ys)))
    mlpcore.fit(b, (load_npy(tmp_path / "x.npy", mmap=True), y), epochs=2, batch_size=16)
    for name, value in a.variables.items():
        np.testing.assert_array_equal(b.variables[name], value)


def test_evaluate_and_predict_read_rows_in_blocks(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("mlpcore.data.rows.BLOCK_ROWS", 7)  # blocks of 56 rows: 6 of them
    images, labels = images_and_labels(tmp_path)
    whole, mapped = load_idx_pair(images, labels), load_idx_pair(images, labels, mmap=True)
    model = mlpcore.MLP(SPEC, backend="numpy", seed=3)
    np.testing.assert_array_equal(model.predict(mapped.images), model.predict(whole.images))
    got = model.evaluate(mapped.images, mapped.labels)
    want = model.evaluate(whole.images, whole.labels)
    assert got.accuracy == want.accuracy
    assert got.loss == pytest.approx(want.loss, rel=1e-6)


def test_non_finite_and_misshapen_mapped_inputs_are_refused(tmp_path: Path) -> None:
    x = np.zeros((40, 12), np.float32)
    x[33, 4] = np.nan
    np.save(tmp_path / "x.npy", x)
    mapped, y = load_npy(tmp_path / "x.npy", mmap=True), np.zeros(40, np.int64)
    model = mlpcore.MLP(SPEC, backend="numpy")
    before = model.variables
    with pytest.raises(InvalidInputError, match=r"training inputs contain NaN.*first at row 33"):
        mlpcore.fit(model, (mapped, y), epochs=1)
    with pytest.raises(InvalidInputError, match="first at row 33"):
        model.evaluate(mapped, y)
    for name, value in before.items():
        np.testing.assert_array_equal(model.variables[name], value)
    with pytest.raises(InvalidInputError, match="width 12, but the model expects 5"):
        mlpcore.fit(mlpcore.MLP(mlpcore.MLPSpec((5, 3))), (mapped, y), epochs=1)
    with pytest.raises(InvalidInputError, match="labels have 32 rows but the inputs have 33"):
        mlpcore.fit(model, (mapped[:33], y[:33][1:]), epochs=1)


# --- memory -----------------------------------------------------------------------------------

ROWS, WIDTH = 500_000, 784
"""A 392 MB uint8 image file: written sparse (a few real rows, the rest a hole), so it is quick."""
BUDGET_MB = 200

CHILD = """
import json, sys
import mlpcore
from mlpcore.data import load_idx_pair

def kb(field):  # this process image's resident size now (VmRSS) or at its peak (VmHWM)
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith(field + ":"))

data = load_idx_pair(sys.argv[1], sys.argv[2], mmap=True)
model = mlpcore.MLP(mlpcore.MLPSpec((784, 8, 10)), backend="numpy")
before = kb("VmRSS")
history = mlpcore.fit(model, (data.images[::4], data.labels[::4]), epochs=1, batch_size=500)
print(json.dumps({"before_kb": before, "peak_kb": kb("VmHWM"),
                  "loss": history.loss[0], "accuracy": history.train_accuracy[0]}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux's /proc")
def test_training_from_a_file_larger_than_the_memory_budget(tmp_path: Path) -> None:
    """An epoch and its training accuracy from a 392 MB IDX file, in a process whose peak
    resident size (VmHWM, the file's mapped pages included) stays under 200 MB. Not
    ``ru_maxrss``: Linux carries it over ``exec`` from the forking process, so a child of a
    large pytest worker would report the worker's peak.

    It trains on every 4th image (a view of the map: the rows lie 3,136 bytes apart, so every
    page of the file is read) to stay quick. Without releasing the map's pages the peak is
    about 500 MB."""
    images, labels = tmp_path / "images", tmp_path / "labels"
    header = bytes([0, 0, 8, 3]) + b"".join(s.to_bytes(4, "big") for s in (ROWS, 28, 28))
    rng = np.random.default_rng(0)
    with images.open("wb") as file:
        file.write(header)
        for at in range(0, ROWS, 50_000):  # one real row in every 50,000, the rest zeros
            file.seek(len(header) + at * WIDTH)
            file.write(rng.integers(0, 256, WIDTH, dtype=np.uint8).tobytes())
        file.truncate(len(header) + ROWS * WIDTH)
    write_idx(labels, rng.integers(0, 10, ROWS, dtype=np.uint8))
    assert images.stat().st_size > 1.8 * BUDGET_MB * 2**20
    done = subprocess.run([sys.executable, "-c", CHILD, str(images), str(labels)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={**os.environ, "OPENBLAS_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    peak_mb = result["peak_kb"] / 1024
    assert peak_mb < BUDGET_MB, (
        f"peak RSS {peak_mb:.0f} MB (before fit {result['before_kb'] / 1024:.0f} MB) for a "
        f"{images.stat().st_size / 2**20:.0f} MB file: {result}")
    assert np.isfinite(result["loss"]) and 0 <= result["accuracy"] <= 1
