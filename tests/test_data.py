"""Tests of mlpcore.data: the IDX reader, dataset search and loading, and the embedded subset."""

from __future__ import annotations

import gzip
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mlpcore.data import (
    Dataset,
    Splits,
    datasets,
    embedded_data_dir,
    find_data_dir,
    find_idx_file,
    load_dataset,
    load_idx_pair,
    read_idx,
    write_idx,
)
from mlpcore.errors import DataError

REPO = Path(__file__).resolve().parent.parent
NAMES = datasets.FILE_NAMES
TYPE_CODES = {"u1": 0x08, "i1": 0x09, "i2": 0x0B, "i4": 0x0C, "f4": 0x0D, "f8": 0x0E}
real_data = pytest.mark.skipif(
    not datasets.DEBIAN_FASHION_MNIST.is_dir(),
    reason=f"{datasets.DEBIAN_FASHION_MNIST} is absent (apt-get install dataset-fashion-mnist)")


def idx_bytes(array: npt.NDArray[Any]) -> bytes:
    """IDX encoding of ``array``, written independently of :func:`mlpcore.data.write_idx`."""
    code = TYPE_CODES[array.dtype.str[1:]]
    header = struct.pack(">BBBB", 0, 0, code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def put(path: Path, content: bytes, *, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


def make_dir(directory: Path, n_train: int = 20, n_test: int = 6, *, compress: bool = True,
             rows: int = 2, cols: int = 3) -> Path:
    """A dataset directory whose image i has every pixel equal to i and label i % 10."""
    directory.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if compress else ""
    for split, n in (("train", n_train), ("test", n_test)):
        images = np.repeat(np.arange(n, dtype=np.uint8), rows * cols).reshape(n, rows, cols)
        labels = (np.arange(n) % 10).astype(np.uint8)
        put(directory / (NAMES[f"{split}_images"] + suffix), idx_bytes(images), compress=compress)
        put(directory / (NAMES[f"{split}_labels"] + suffix), idx_bytes(labels), compress=compress)
    return directory


@pytest.fixture
def no_search(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No $MLPCORE_DATA and no Debian directory: the search finds nothing."""
    monkeypatch.delenv(datasets.DATA_ENV_VAR, raising=False)
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "no-debian")


# --- read_idx ---------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [">u1", ">i1", ">i2", "<i2", ">i4", ">f4", "<f4", ">f8"])
@pytest.mark.parametrize("compress", [False, True])
def test_read_idx_round_trip(tmp_path: Path, dtype: str, compress: bool) -> None:
    array = (np.arange(24).reshape(2, 3, 4) * 3 - 20).astype(dtype)
    if dtype.endswith("u1"):
        array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4) * 10
    path = put(tmp_path / "data", idx_bytes(array), compress=compress)
    result = read_idx(path)
    assert result.shape == (2, 3, 4)
    assert result.dtype == np.dtype(dtype).newbyteorder("=")
    assert result.dtype.isnative
    assert result.flags.writeable
    np.testing.assert_array_equal(result, array)


def test_read_idx_one_dimension_and_empty(tmp_path: Path) -> None:
    labels = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    np.testing.assert_array_equal(read_idx(put(tmp_path / "l", idx_bytes(labels))), labels)
    empty = np.zeros((0, 28, 28), dtype=np.uint8)
    assert read_idx(put(tmp_path / "e", idx_bytes(empty))).shape == (0, 28, 28)


def test_gzip_detected_by_magic_not_extension(tmp_path: Path) -> None:
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    gz_without_suffix = put(tmp_path / "images.idx", idx_bytes(array), compress=True)
    raw_with_suffix = put(tmp_path / "images.idx.gz", idx_bytes(array))
    np.testing.assert_array_equal(read_idx(gz_without_suffix), array)
    np.testing.assert_array_equal(read_idx(raw_with_suffix), array)


def test_mnist_magic_numbers(tmp_path: Path) -> None:
    images = idx_bytes(np.zeros((2, 28, 28), dtype=np.uint8))
    labels = idx_bytes(np.zeros(2, dtype=np.uint8))
    assert images[:4] == (0x00000803).to_bytes(4, "big")
    assert labels[:4] == (0x00000801).to_bytes(4, "big")
    assert read_idx(put(tmp_path / "i", images)).shape == (2, 28, 28)


@settings(max_examples=40, deadline=None)
@given(array=hnp.arrays(
    dtype=st.sampled_from([np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=5)),
    compress=st.booleans())
def test_write_idx_read_idx_round_trip(array: npt.NDArray[Any], compress: bool) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "x"
        write_idx(path, array, compress=compress)
        if not compress:
            assert path.read_bytes() == idx_bytes(array)
        result = read_idx(path)
    assert result.dtype == array.dtype
    assert result.shape == array.shape
    np.testing.assert_array_equal(result, array)


def test_write_idx_gzip_is_reproducible(tmp_path: Path) -> None:
    array = np.arange(100, dtype=np.uint8).reshape(10, 10)
    write_idx(tmp_path / "a", array, compress=True)
    write_idx(tmp_path / "b", array, compress=True)
    content = (tmp_path / "a").read_bytes()
    assert content == (tmp_path / "b").read_bytes()
    assert content[:2] == b"\x1f\x8b"
    assert content[4:8] == b"\x00\x00\x00\x00"


@pytest.mark.parametrize("array", [np.zeros(3, dtype=np.int64), np.zeros(3, dtype=bool),
                                   np.array(5, dtype=np.uint8)])
def test_write_idx_rejects_what_idx_cannot_hold(tmp_path: Path, array: npt.NDArray[Any]) -> None:
    with pytest.raises(ValueError, match="IDX cannot hold"):
        write_idx(tmp_path / "x", array)


# --- read_idx errors: every one a DataError naming the file -----------------------------------


def assert_data_error(path: Path, *fragments: str) -> DataError:
    """Read in memory and memory-mapped, ``path`` is refused with the same DataError."""
    messages = []
    for mmap in (False, True):
        with pytest.raises(DataError) as caught:
            read_idx(path, mmap=mmap)
        messages.append(str(caught.value))
        assert isinstance(caught.value, ValueError)
    message = messages[0]
    assert messages[1] == message
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return caught.value


def test_missing_file(tmp_path: Path) -> None:
    error = assert_data_error(tmp_path / "nope-idx3-ubyte.gz", "no such IDX file")
    assert isinstance(error.__cause__, FileNotFoundError)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    assert_data_error(tmp_path, "cannot read")


@pytest.mark.parametrize("compress", [False, True])
def test_wrong_magic_number(tmp_path: Path, compress: bool) -> None:
    content = b"\x89PNG\r\n\x1a\n" + bytes(100)
    assert_data_error(put(tmp_path / "picture", content, compress=compress),
                      "magic number 0x89504E47", "expected 0x0000TTNN")


@pytest.mark.parametrize("header", [b"\x00\x00\x07\x01", b"\x00\x00\x08\x00", b"\x00\x01\x08\x01"])
def test_bad_type_code_or_dimensions(tmp_path: Path, header: bytes) -> None:
    found = f"0x{int.from_bytes(header, 'big'):08X}"
    assert_data_error(put(tmp_path / "bad", header + bytes(8)), found, "expected")


@pytest.mark.parametrize("content", [b"", b"\x00\x00\x08",
                                     b"\x00\x00\x08\x03" + struct.pack(">2I", 2, 28)])
@pytest.mark.parametrize("compress", [False, True])
def test_truncated_header(tmp_path: Path, content: bytes, compress: bool) -> None:
    assert_data_error(put(tmp_path / "short", content, compress=compress),
                      "truncated IDX header")


@pytest.mark.parametrize("compress", [False, True])
def test_truncated_data(tmp_path: Path, compress: bool) -> None:
    content = idx_bytes(np.zeros((10, 28, 28), dtype=np.uint8))[:-100]
    assert_data_error(put(tmp_path / "cut", content, compress=compress),
                      "truncated IDX data", "7840 bytes", "has 7740")


def test_truncated_data_of_wide_values(tmp_path: Path) -> None:
    content = idx_bytes(np.zeros(5, dtype=">f8"))[:-1]
    assert_data_error(put(tmp_path / "cut", content), "truncated IDX data", "40 bytes", "has 39")


def test_header_is_not_trusted_for_allocation(tmp_path: Path) -> None:
    header = b"\x00\x00\x0e\x03" + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1)
    assert_data_error(put(tmp_path / "huge", header + bytes(16)), "truncated IDX data")


@pytest.mark.parametrize("compress", [False, True])
def test_trailing_bytes(tmp_path: Path, compress: bool) -> None:
    content = idx_bytes(np.zeros(4, dtype=np.uint8)) + b"extra"
    assert_data_error(put(tmp_path / "long", content, compress=compress),
                      "trailing bytes", "4 bytes", "has 9")


def test_corrupt_gzip_streams(tmp_path: Path) -> None:
    good = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    garbage = good[:10] + bytes(b ^ 0xFF for b in good[10:])
    crc = bytearray(good)
    crc[-8] ^= 0xFF
    for name, content in [("garbage", garbage), ("cut", good[: len(good) // 2]),
                          ("crc", bytes(crc)), ("magic-only", b"\x1f\x8b")]:
        error = assert_data_error(put(tmp_path / name, content), "corrupt gzip stream")
        assert error.__cause__ is not None



GOOD_GZIP = gzip.compress(idx_bytes(np.arange(60, dtype=np.uint8).reshape(3, 4, 5)))


@settings(max_examples=300, deadline=None)
@given(cut=st.integers(0, len(GOOD_GZIP)), flips=st.lists(
    st.tuples(st.integers(0, len(GOOD_GZIP) - 1), st.integers(1, 255)), max_size=4),
    tail=st.binary(max_size=8))
def test_damaged_files_only_ever_raise_data_error(cut: int, flips: list[tuple[int, int]],
                                                   tail: bytes) -> None:
    content = bytearray(GOOD_GZIP)
    for position, mask in flips:
        content[position] ^= mask
    with tempfile.TemporaryDirectory() as scratch:
        for candidate in (bytes(content[:cut]) + tail, gzip.decompress(GOOD_GZIP)[:cut] + tail):
            path = put(Path(scratch) / "damaged", candidate)
            for mmap in (False, True):
                try:
                    read_idx(path, mmap=mmap)
                except DataError as err:
                    assert str(path) in str(err)


# --- Dataset and load_idx_pair ----------------------------------------------------------------


def test_load_idx_pair_scales_and_flattens(tmp_path: Path) -> None:
    pixels = np.array([[[0, 51], [102, 255]], [[255, 0], [0, 0]], [[1, 2], [3, 4]]],
                      dtype=np.uint8)
    images = put(tmp_path / "images.gz", idx_bytes(pixels), compress=True)
    labels = put(tmp_path / "labels", idx_bytes(np.array([7, 0, 9], dtype=np.uint8)))
    data = load_idx_pair(images, labels, source="three images")
    assert data.images.dtype == np.float32 and data.images.shape == (3, 4)
    assert data.labels.dtype == np.int64 and data.labels.shape == (3,)
    assert data.source == "three images" and len(data) == 3
    np.testing.assert_array_equal(data.images[0], np.array([0, 0.2, 0.4, 1.0], dtype=np.float32))
    np.testing.assert_array_equal(data.images, pixels.reshape(3, 4).astype(np.float32) / 255)
    assert data.images.min() >= 0.0 and data.images.max() == 1.0
    np.testing.assert_array_equal(data.labels, [7, 0, 9])
    assert str(images) in load_idx_pair(images, labels).source


def test_dataset_is_frozen(tmp_path: Path) -> None:
    data = load_idx_pair(make_dir(tmp_path) / (NAMES["train_images"] + ".gz"),
                         tmp_path / (NAMES["train_labels"] + ".gz"))
    with pytest.raises(AttributeError):
        data.source = "elsewhere"  # type: ignore[misc]
    assert "float32(20, 6)" in repr(data)


def test_count_mismatch_names_both_files(tmp_path: Path) -> None:
    images = put(tmp_path / "images", idx_bytes(np.zeros((3, 2, 2), dtype=np.uint8)))
    labels = put(tmp_path / "labels", idx_bytes(np.zeros(4, dtype=np.uint8)))
    with pytest.raises(DataError, match="3 images") as caught:
        load_idx_pair(images, labels)
    assert str(images) in str(caught.value) and str(labels) in str(caught.value)


@pytest.mark.parametrize(("pixels", "labels", "bad"), [
    (np.zeros((2, 2, 2), dtype=">f4"), np.zeros(2, dtype=np.uint8), "images"),
    (np.zeros(2, dtype=np.uint8), np.zeros(2, dtype=np.uint8), "images"),
    (np.zeros((0, 2, 2), dtype=np.uint8), np.zeros(0, dtype=np.uint8), "images"),
    (np.zeros((2, 0, 2), dtype=np.uint8), np.zeros(2, dtype=np.uint8), "images"),
    (np.zeros((2, 2, 2), dtype=np.uint8), np.zeros((2, 1), dtype=np.uint8), "labels"),
    (np.zeros((2, 2, 2), dtype=np.uint8), np.zeros(2, dtype=">f4"), "labels"),
    (np.zeros((2, 2, 2), dtype=np.uint8), np.array([1, -1], dtype=np.int8), "labels"),
])
def test_load_idx_pair_rejects_wrong_contents(tmp_path: Path, pixels: npt.NDArray[Any],
                                              labels: npt.NDArray[Any], bad: str) -> None:
    paths = {"images": put(tmp_path / "images", idx_bytes(pixels)),
             "labels": put(tmp_path / "labels", idx_bytes(labels))}
    with pytest.raises(DataError) as caught:
        load_idx_pair(paths["images"], paths["labels"])
    assert str(paths[bad]) in str(caught.value)


def test_dataset_checks_its_arrays() -> None:
    ok_images, ok_labels = np.zeros((2, 4), dtype=np.float32), np.zeros(2, dtype=np.int64)
    Dataset(ok_images, ok_labels, source="ok")
    cases: list[tuple[npt.NDArray[Any], npt.NDArray[Any]]] = [
        (ok_images.astype(np.float64), ok_labels),
        (ok_images.reshape(2, 2, 2), ok_labels),
        (ok_images, ok_labels.astype(np.int32)),
        (ok_images, np.zeros(3, dtype=np.int64)),
    ]
    for images, labels in cases:
        with pytest.raises(DataError, match="somewhere"):
            Dataset(images, labels, source="somewhere")


# --- find_data_dir and find_idx_file ----------------------------------------------------------


def test_search_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    explicit, from_env, debian = (tmp_path / name for name in ("explicit", "env", "debian"))
    for directory in (explicit, from_env, debian):
        directory.mkdir()
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", debian)
    monkeypatch.setenv("MLPCORE_DATA", str(from_env))
    assert find_data_dir(explicit) == explicit
    assert find_data_dir(str(explicit)) == explicit
    assert find_data_dir() == from_env
    monkeypatch.setenv("MLPCORE_DATA", "")
    assert find_data_dir() == debian
    monkeypatch.delenv("MLPCORE_DATA")
    assert find_data_dir() == debian
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "not-installed")
    assert find_data_dir() is None


def test_missing_explicit_dir_never_falls_back(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("MLPCORE_DATA", str(tmp_path))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path)
    missing = tmp_path / "typo"
    with pytest.raises(DataError, match="does not exist") as caught:
        find_data_dir(missing)
    assert str(missing) in str(caught.value)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(missing)
    with pytest.raises(DataError, match="empty"):
        find_data_dir("")


def test_missing_env_dir_never_falls_back(monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    missing = tmp_path / "typo"
    monkeypatch.setenv("MLPCORE_DATA", str(missing))
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path)
    with pytest.raises(DataError, match=r"\$MLPCORE_DATA") as caught:
        find_data_dir()
    assert str(missing) in str(caught.value)
    with pytest.raises(DataError):
        load_dataset()


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = put(tmp_path / "file", b"")
    with pytest.raises(DataError, match="not a directory") as caught:
        find_data_dir(path)
    assert str(path) in str(caught.value)


def test_find_idx_file(tmp_path: Path) -> None:
    name = NAMES["train_images"]
    with pytest.raises(DataError) as caught:
        find_idx_file(tmp_path, name)
    message = str(caught.value)
    assert str(tmp_path) in message and f"'{name}'" in message and f"'{name}.gz'" in message
    put(tmp_path / f"{name}.gz", b"")
    assert find_idx_file(tmp_path, name) == tmp_path / f"{name}.gz"
    put(tmp_path / name, b"")
    assert find_idx_file(tmp_path, name) == tmp_path / name


def test_load_dataset_missing_file_names_directory(tmp_path: Path) -> None:
    make_dir(tmp_path)
    (tmp_path / (NAMES["test_labels"] + ".gz")).unlink()
    with pytest.raises(DataError, match=NAMES["test_labels"]) as caught:
        load_dataset(tmp_path)
    assert str(tmp_path) in str(caught.value)


# --- load_dataset ---------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, True])
def test_validation_split_takes_the_last_images(tmp_path: Path, compress: bool) -> None:
    splits = load_dataset(make_dir(tmp_path, n_train=20, compress=compress), validation_size=3)
    assert isinstance(splits, Splits) and splits.source == str(tmp_path)
    assert splits.valid is not None
    assert len(splits.train) == 17 and len(splits.valid) == 3 and len(splits.test) == 6
    np.testing.assert_array_equal(splits.train.images[:, 0] * 255, np.arange(17))
    np.testing.assert_array_equal(splits.valid.images[:, 0] * 255, [17, 18, 19])
    np.testing.assert_array_equal(splits.valid.labels, [7, 8, 9])
    np.testing.assert_array_equal(splits.test.images[:, 0] * 255, np.arange(6))
    assert splits.train.images.shape[1] == splits.test.images.shape[1] == 6
    assert "[17:20]" in splits.valid.source and "[0:17]" in splits.train.source


def test_default_validation_size_is_ten_percent_up_to_5000(tmp_path: Path) -> None:
    splits = load_dataset(make_dir(tmp_path / "small", n_train=50))
    assert splits.valid is not None and len(splits.valid) == 5 and len(splits.train) == 45
    big = load_dataset(make_dir(tmp_path / "big", n_train=60_000, rows=1, cols=1))
    assert big.valid is not None and len(big.valid) == 5000 and len(big.train) == 55_000


def test_validation_size_zero_gives_no_validation_set(tmp_path: Path) -> None:
    splits = load_dataset(make_dir(tmp_path), validation_size=0)
    assert splits.valid is None and len(splits.train) == 20


@pytest.mark.parametrize("size", [-1, 20, 21, 2.5, True, "3"])
def test_bad_validation_size(tmp_path: Path, size: Any) -> None:
    with pytest.raises(ValueError, match="validation_size") as caught:
        load_dataset(make_dir(tmp_path), validation_size=size)
    assert not isinstance(caught.value, DataError)


def test_numpy_integer_validation_size(tmp_path: Path) -> None:
    splits = load_dataset(make_dir(tmp_path), validation_size=np.int64(4))
    assert splits.valid is not None and len(splits.valid) == 4


def test_train_and_test_image_sizes_must_match(tmp_path: Path) -> None:
    make_dir(tmp_path)
    test_images = tmp_path / (NAMES["test_images"] + ".gz")
    put(test_images, idx_bytes(np.zeros((6, 2, 2), dtype=np.uint8)), compress=True)
    with pytest.raises(DataError, match="pixels per image") as caught:
        load_dataset(tmp_path)
    assert str(test_images) in str(caught.value)


def test_path_and_embedded_are_exclusive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not both"):
        load_dataset(tmp_path, embedded=True)


def test_load_dataset_uses_env_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLPCORE_DATA", str(make_dir(tmp_path / "env", n_train=30)))
    splits = load_dataset(validation_size=0)
    assert len(splits.train) == 30 and splits.source == str(tmp_path / "env")


@pytest.mark.usefixtures("no_search")
def test_nothing_found_means_embedded() -> None:
    assert find_data_dir() is None
    splits = load_dataset()
    assert "embedded" in splits.source
    assert len(splits.train) + (len(splits.valid) if splits.valid else 0) == 5000


# --- the embedded subset ----------------------------------------------------------------------


def test_embedded_dataset() -> None:
    splits = load_dataset(embedded=True)
    assert splits.valid is not None
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (4500, 500, 1000)
    for part in (splits.train, splits.valid, splits.test):
        assert part.images.dtype == np.float32 and part.images.shape[1] == 784
        assert part.labels.dtype == np.int64
        assert part.images.min() >= 0.0 and part.images.max() <= 1.0
        assert set(np.unique(part.labels)) == set(range(10))
    assert splits.train.images.max() == 1.0
    all_train = np.concatenate([splits.train.labels, splits.valid.labels])
    np.testing.assert_array_equal(np.bincount(all_train), [500] * 10)
    np.testing.assert_array_equal(np.bincount(splits.test.labels), [100] * 10)
    assert "embedded" in splits.source


def test_embedded_files_and_notices() -> None:
    directory = embedded_data_dir()
    assert directory.is_dir()
    for name in NAMES.values():
        path = directory / f"{name}.gz"
        assert path.read_bytes()[:2] == b"\x1f\x8b"
    total = sum((directory / f"{name}.gz").stat().st_size for name in NAMES.values())
    assert total < 4_000_000
    licence = (directory / "LICENSE").read_text(encoding="utf-8")
    assert "Zalando SE" in licence and "Permission is hereby granted" in licence
    assert "make_embedded_dataset.py" in (directory / "README.md").read_text(encoding="utf-8")


def test_embedded_validation_size() -> None:
    splits = load_dataset(embedded=True, validation_size=1000)
    assert splits.valid is not None and len(splits.valid) == 1000 and len(splits.train) == 4000
    assert load_dataset(embedded=True, validation_size=0).valid is None


# --- the real Fashion-MNIST, when Debian's package is installed -------------------------------


@real_data
def test_debian_fashion_mnist() -> None:
    splits = load_dataset(datasets.DEBIAN_FASHION_MNIST)
    assert splits.valid is not None
    assert (len(splits.train), len(splits.valid), len(splits.test)) == (55_000, 5_000, 10_000)
    assert splits.train.images.shape == (55_000, 784)
    assert splits.train.images.dtype == np.float32 and splits.train.labels.dtype == np.int64
    assert splits.train.images.min() == 0.0 and splits.train.images.max() == 1.0
    assert set(np.unique(splits.test.labels)) == set(range(10))
    assert splits.source == str(datasets.DEBIAN_FASHION_MNIST)


@real_data
def test_embedded_subset_is_reproducible(tmp_path: Path) -> None:
    script = REPO / "scripts" / "make_embedded_dataset.py"
    subprocess.run([sys.executable, str(script), "--source", str(datasets.DEBIAN_FASHION_MNIST),
                    "--out", str(tmp_path)], check=True, capture_output=True)
    for name in NAMES.values():
        made = (tmp_path / f"{name}.gz").read_bytes()
        assert made == (embedded_data_dir() / f"{name}.gz").read_bytes(), name
