"""Checkpoint format, atomic save, verified read and strict, all-or-nothing load."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import stat
import sys
import tempfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors
import safetensors.numpy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlpcore.errors import CheckpointError, MlpcoreError
from mlpcore.io import checkpoint
from mlpcore.io.checkpoint import Checkpoint, load, read_checkpoint, save
from mlpcore.io.interop import load_into
from mlpcore.model import MLP
from mlpcore.spec import MLPSpec

SPEC = MLPSpec(sizes=(4, 8, 3), activation="tanh")
X = np.linspace(-2.0, 2.0, 5 * 4).reshape(5, 4)


def make_model(dtype: str = "float32", seed: int = 7, spec: MLPSpec = SPEC) -> MLP:
    return MLP(spec, seed=seed, dtype=dtype)


def sha256(array: np.ndarray) -> str:
    return hashlib.sha256(
        np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    ).hexdigest()


def manifest_for(
    variables: dict[str, np.ndarray],
    spec: dict[str, Any] | None = None,
    dtype: str = "float32",
    **overrides: Any,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": "mlpcore.checkpoint",
        "format_version": 1,
        "mlpcore_version": "0.1.0",
        "backend": "numpy",
        "backend_version": np.__version__,
        "dtype": dtype,
        "spec": SPEC.to_dict() if spec is None else spec,
        "variables": {
            name: {"shape": list(value.shape), "dtype": dtype, "sha256": sha256(value)}
            for name, value in variables.items()
        },
    }
    manifest.update(overrides)
    return manifest


def write_raw(path: Path, variables: dict[str, np.ndarray], manifest: Any) -> Path:
    """Write a safetensors file with any tensors and any manifest text or JSON value."""
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    safetensors.numpy.save_file(variables, path, metadata={"mlpcore": text})
    return path


def payload_owner(data: bytes, offset: int) -> str:
    """The name of the tensor whose bytes include absolute file offset ``offset``."""
    header_length = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + header_length])
    relative = offset - 8 - header_length
    for name, entry in header.items():
        if name != "__metadata__":
            begin, end = entry["data_offsets"]
            if begin <= relative < end:
                return str(name)
    raise AssertionError(f"offset {offset} is in no tensor")


def assert_checkpoint_error(path: Path, *fragments: str) -> CheckpointError:
    with pytest.raises(CheckpointError) as info:
        read_checkpoint(path)
    message = str(info.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return info.value


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    return save(make_model(), tmp_path / "model.safetensors")


# --- round trip -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_exact(tmp_path: Path, dtype: str) -> None:
    model = make_model(dtype)
    values = model.variables
    special = np.array(
        [
            np.nan,
            -0.0,
            np.inf,
            -np.inf,
            np.finfo(dtype).smallest_subnormal,
            np.finfo(dtype).max,
            -1.5,
            0.1,
        ],
        dtype=dtype,
    )
    values["dense_0/bias"] = special
    model.assign(values)

    path = save(model, tmp_path / "m.safetensors")
    loaded = load(path)

    assert loaded.dtype == dtype
    assert loaded.spec == model.spec
    before, after = model.variables, loaded.variables
    assert list(after) == list(before)
    for name in before:
        assert after[name].dtype == np.dtype(dtype)
        assert after[name].shape == before[name].shape
        assert after[name].tobytes() == before[name].tobytes(), name


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_predictions_agree_after_load(tmp_path: Path, dtype: str) -> None:
    model = make_model(dtype)
    loaded = load(save(model, tmp_path / "m.safetensors"), backend="numpy")
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_load_accepts_a_backend_object_and_another_dtype(tmp_path: Path) -> None:
    model = make_model("float32")
    path = save(model, tmp_path / "m.safetensors")
    wide = load(path, backend=model.backend, dtype="float64")
    assert wide.dtype == "float64"
    for name, value in model.variables.items():
        np.testing.assert_array_equal(wide.variables[name], value.astype(np.float64))


def test_load_refuses_to_overflow_float64_into_float32(tmp_path: Path) -> None:
    model = make_model("float64")
    values = model.variables
    values["dense_1/weights"][0, 0] = 1e300
    model.assign(values)
    path = save(model, tmp_path / "big.safetensors")
    with pytest.raises(CheckpointError, match="dense_1/weights") as info:
        load(path, dtype="float32")
    assert str(path) in str(info.value)


def test_save_accepts_str_and_pathlike_and_returns_path(tmp_path: Path) -> None:
    model = make_model()
    as_str = save(model, str(tmp_path / "a.safetensors"))
    assert as_str == tmp_path / "a.safetensors"
    assert isinstance(as_str, Path)

    class Pathish(os.PathLike[str]):
        def __fspath__(self) -> str:
            return str(tmp_path / "b.safetensors")

    assert save(model, Pathish()) == tmp_path / "b.safetensors"
    assert read_checkpoint(as_str).variables.keys() == model.variables.keys()


def test_save_is_deterministic(tmp_path: Path) -> None:
    model = make_model()
    first = save(model, tmp_path / "1.safetensors").read_bytes()
    second = save(model, tmp_path / "2.safetensors").read_bytes()
    assert first == second


def test_overwriting_replaces_the_previous_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save(make_model(seed=1), path)
    newer = make_model(seed=2)
    save(newer, path)
    for name, value in load(path).variables.items():
        np.testing.assert_array_equal(value, newer.variables[name])
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permission bits")
def test_save_keeps_existing_permissions(tmp_path: Path) -> None:
    path = save(make_model(), tmp_path / "m.safetensors")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    path.chmod(0o600)
    save(make_model(seed=3), path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- manifest ---------------------------------------------------------------------------------


def test_manifest_contents_and_plain_safetensors_view(saved: Path) -> None:
    model = make_model()
    with safetensors.safe_open(str(saved), framework="np") as handle:
        metadata = handle.metadata()
    assert set(metadata) == {"mlpcore", "mlpcore_manifest_crc32"}
    manifest = json.loads(metadata["mlpcore"])
    assert metadata["mlpcore_manifest_crc32"] == f"{zlib.crc32(metadata['mlpcore'].encode()):08x}"

    assert manifest["format"] == "mlpcore.checkpoint"
    assert manifest["format_version"] == 2
    assert manifest["mlpcore_version"] == importlib.metadata.version("mlpcore")
    assert manifest["backend"] == model.backend.name == "numpy"
    assert manifest["backend_version"] == model.backend.framework_version()
    assert manifest["dtype"] == "float32"
    assert MLPSpec.from_dict(manifest["spec"]) == SPEC

    tensors = safetensors.numpy.load_file(saved)
    expected = model.variables
    assert set(tensors) == set(expected) == set(manifest["variables"])
    for name, value in expected.items():
        entry = manifest["variables"][name]
        assert tuple(entry["shape"]) == SPEC.variable_shapes()[name] == tensors[name].shape
        assert entry["dtype"] == "float32"
        assert "sha256" not in entry
        assert entry["crc32"] == f"{zlib.crc32(tensors[name].astype('<f4').tobytes()):08x}"
        np.testing.assert_array_equal(tensors[name], value)


def test_sha256_checksums_on_request(tmp_path: Path) -> None:
    model = make_model()
    path = save(model, tmp_path / "m.safetensors", checksum="sha256")
    manifest = read_checkpoint(path).manifest
    for name, value in model.variables.items():
        assert manifest["variables"][name] == {
            "shape": list(value.shape), "dtype": "float32", "sha256": sha256(value)}
    np.testing.assert_array_equal(load(path).predict(X), model.predict(X))


def test_format_version_1_files_still_load(tmp_path: Path) -> None:
    values = make_model().variables
    path = write_raw(tmp_path / "v1.safetensors", values, manifest_for(values))
    assert read_checkpoint(path).manifest["format_version"] == 1
    for name, value in load(path).variables.items():
        np.testing.assert_array_equal(value, values[name])


def test_format_version_1_requires_sha256(tmp_path: Path) -> None:
    values = make_model().variables
    manifest = manifest_for(values)
    entry = manifest["variables"]["dense_0/bias"]
    entry["crc32"] = f"{zlib.crc32(values['dense_0/bias'].tobytes()):08x}"
    del entry["sha256"]
    path = write_raw(tmp_path / "v1.safetensors", values, manifest)
    assert_checkpoint_error(path, "'dense_0/bias': must record exactly one checksum, one of "
                            "sha256 (format version 1)")


def test_read_checkpoint_returns_verified_writable_copies(saved: Path) -> None:
    result = read_checkpoint(saved)
    assert isinstance(result, Checkpoint)
    assert result.path == saved
    assert result.spec == SPEC
    assert result.dtype == "float32"
    assert result.backend == "numpy"
    assert result.manifest["format_version"] == checkpoint.FORMAT_VERSION
    for value in result.variables.values():
        assert value.flags.writeable and value.flags.c_contiguous
        value[...] = 0


def test_unknown_manifest_keys_are_ignored(tmp_path: Path) -> None:
    values = make_model().variables
    path = write_raw(tmp_path / "extra.safetensors", values, manifest_for(values, note="hi"))
    assert read_checkpoint(path).manifest["note"] == "hi"


# --- load_into --------------------------------------------------------------------------------


def test_load_into_replaces_every_variable(saved: Path) -> None:
    target = MLP(MLPSpec(sizes=(4, 8, 3), activation="relu", dropout=0.5), seed=99)
    load_into(target, saved)
    for name, value in make_model().variables.items():
        np.testing.assert_array_equal(target.variables[name], value)


def test_load_into_a_whole_checkpoint_takes_its_loss(tmp_path: Path) -> None:
    trained = make_model()
    trained.loss = "mse"
    path = save(trained, tmp_path / "m.safetensors")
    target = make_model(seed=5)
    load_into(target, path)
    assert target.loss == "mse"
    target.loss = "softmax_cross_entropy"
    load_into(target, path, include=["dense_0/bias"])  # a subset: the model's loss stays
    assert target.loss == "softmax_cross_entropy"


def test_load_into_casts_to_the_model_dtype(tmp_path: Path) -> None:
    path = save(make_model("float64"), tmp_path / "m.safetensors")
    target = make_model("float32", seed=5)
    load_into(target, path)
    for name, value in make_model("float64").variables.items():
        assert target.variables[name].dtype == np.float32
        np.testing.assert_array_equal(target.variables[name], value.astype(np.float32))


def test_load_into_reports_every_misfit_at_once_and_changes_nothing(tmp_path: Path) -> None:
    source = make_model().variables
    variables = {
        "dense_0/weights": np.ones((4, 5), np.float32),
        "dense_1/weights": source["dense_1/weights"],
        "extra/scale": np.ones((2,), np.float32),
    }
    path = write_raw(tmp_path / "misfit.safetensors", variables, manifest_for(variables))
    target = make_model(seed=11)
    before = target.variables

    with pytest.raises(CheckpointError) as info:
        load_into(target, path)

    message = str(info.value)
    assert str(path) in message
    assert "missing: dense_0/bias (8,)" in message
    assert "missing: dense_1/bias (3,)" in message
    assert "unexpected: extra/scale (2,)" in message
    assert "wrong shape: dense_0/weights is (4, 5) in the checkpoint, (4, 8)" in message
    assert "dense_1/weights" not in message
    after = target.variables
    assert after.keys() == before.keys()
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def test_load_into_other_architecture_lists_all_shapes(tmp_path: Path) -> None:
    path = save(make_model(spec=MLPSpec(sizes=(4, 6, 3, 2))), tmp_path / "deep.safetensors")
    target = make_model()
    before = target.variables
    with pytest.raises(CheckpointError) as info:
        load_into(target, path)
    message = str(info.value)
    assert str(path) in message
    for fragment in (
        "unexpected: dense_2/weights (3, 2)",
        "unexpected: dense_2/bias (2,)",
        "wrong shape: dense_0/weights",
        "wrong shape: dense_0/bias",
        "wrong shape: dense_1/weights is (6, 3)",
    ):
        assert fragment in message
    for name, value in target.variables.items():
        np.testing.assert_array_equal(value, before[name])


def test_load_into_leaves_model_unchanged_on_corrupt_file(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    data[-1] ^= 0x01
    saved.write_bytes(bytes(data))
    target = make_model(seed=3)
    before = target.variables
    with pytest.raises(CheckpointError, match="checksum"):
        load_into(target, saved)
    for name, value in target.variables.items():
        np.testing.assert_array_equal(value, before[name])


def test_load_rejects_variables_that_do_not_fit_their_own_spec(tmp_path: Path) -> None:
    variables = {"dense_0/weights": np.ones((4, 8), np.float32)}
    path = write_raw(tmp_path / "partial.safetensors", variables, manifest_for(variables))
    with pytest.raises(CheckpointError) as info:
        load(path)
    message = str(info.value)
    assert str(path) in message
    assert "missing: dense_0/bias" in message and "missing: dense_1/weights" in message


# --- atomic save ------------------------------------------------------------------------------


def _fail(*args: object, **kwargs: object) -> None:
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("step", ["fsync", "replace"])
def test_failed_save_keeps_previous_file_and_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    old = make_model(seed=1)
    path = save(old, tmp_path / "m.safetensors")
    original = path.read_bytes()

    monkeypatch.setattr(os, step, _fail)
    with pytest.raises(CheckpointError) as info:
        save(make_model(seed=2), path)
    monkeypatch.undo()

    assert str(path) in str(info.value)
    assert isinstance(info.value.__cause__, OSError)
    assert path.read_bytes() == original
    for name, value in load(path).variables.items():
        np.testing.assert_array_equal(value, old.variables[name])
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


def test_interrupted_save_propagates_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupt(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupt)
    with pytest.raises(KeyboardInterrupt):
        save(make_model(), tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []


def test_save_to_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(CheckpointError) as info:
        save(make_model(), missing / "m.safetensors")
    assert str(missing) in str(info.value)
    assert "does not exist" in str(info.value)


def test_save_below_a_file(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(CheckpointError, match="is not a directory") as info:
        save(make_model(), blocker / "m.safetensors")
    assert str(blocker) in str(info.value)


def test_save_onto_a_directory(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="directory") as info:
        save(make_model(), tmp_path)
    assert str(tmp_path) in str(info.value)


# --- unreadable and corrupt files -------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert_checkpoint_error(tmp_path / "nope.safetensors", "does not exist")
    with pytest.raises(CheckpointError):
        load(tmp_path / "nope.safetensors")


def test_directory(tmp_path: Path) -> None:
    assert_checkpoint_error(tmp_path, "directory")


@pytest.mark.parametrize("content", [b"", b"\x01\x02\x03\x04\x05"], ids=["empty", "5-bytes"])
def test_too_short(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(content)
    assert_checkpoint_error(path, "not a valid safetensors file", f"{len(content)} bytes")


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.3, 0.5, 0.9, 0.999])
def test_truncated(saved: Path, fraction: float) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: max(8, int(len(data) * fraction))])
    assert_checkpoint_error(saved, "truncated or corrupt")


def test_truncated_by_one_byte(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes()[:-1])
    assert_checkpoint_error(saved, "not a valid safetensors file")


def test_trailing_garbage(saved: Path) -> None:
    saved.write_bytes(saved.read_bytes() + b"\x00" * 3)
    assert_checkpoint_error(saved, "not a valid safetensors file")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_bytes(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.default_rng(seed).bytes(512))
    assert_checkpoint_error(path)


def test_huge_header_length_fails_before_reading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.safetensors"
    path.write_bytes((2**63).to_bytes(8, "little") + b'{"a": 1}')

    def refuse(*args: object) -> None:
        raise AssertionError("the file body should not have been read")

    monkeypatch.setattr(checkpoint.mmap, "mmap", refuse)
    assert_checkpoint_error(path, "header length", str(2**63))


def test_header_not_json(tmp_path: Path) -> None:
    path = tmp_path / "bad-header.safetensors"
    header = b"not json at all!"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    assert_checkpoint_error(path, "not a valid safetensors file")


def test_foreign_safetensors_file(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"embedding": np.zeros((2, 3), np.float32)}, path)
    assert_checkpoint_error(path, "safetensors file without an mlpcore manifest")


def test_foreign_safetensors_file_with_other_metadata(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    safetensors.numpy.save_file({"w": np.zeros((2,), np.float32)}, path, metadata={"x": "y"})
    assert_checkpoint_error(path, "without an mlpcore manifest")


def test_flipped_payload_bit_names_the_variable(saved: Path) -> None:
    data = bytearray(saved.read_bytes())
    offset = len(data) - 5
    owner = payload_owner(bytes(data), offset)
    data[offset] ^= 0x10
    saved.write_bytes(bytes(data))
    error = assert_checkpoint_error(saved, "checksum", repr(owner))
    others = set(SPEC.variable_shapes()) - {owner}
    assert not any(repr(name) in str(error) for name in others)


@pytest.mark.parametrize(
    ("manifest", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ({"format_version": 1}, "no 'format' field"),
        ({"format": "something.else", "format_version": 1}, "'something.else'"),
        ({"format": "mlpcore.checkpoint", "format_version": "1"}, "must be an integer"),
    ],
    ids=["not-json", "not-object", "no-format", "wrong-format", "version-not-int"],
)
def test_bad_manifest(tmp_path: Path, manifest: Any, fragment: str) -> None:
    values = make_model().variables
    path = write_raw(tmp_path / "bad.safetensors", values, manifest)
    assert_checkpoint_error(path, fragment)


@pytest.mark.parametrize("version", [0, 3, 99])
def test_unsupported_format_version(tmp_path: Path, version: int) -> None:
    values = make_model().variables
    path = write_raw(
        tmp_path / "future.safetensors", values, manifest_for(values, format_version=version)
    )
    assert_checkpoint_error(path, f"format_version {version}", "supported format versions: 1, 2")


def test_invalid_spec(tmp_path: Path) -> None:
    values = make_model().variables
    spec = {"sizes": [4, 0, 3], "activation": "tanh", "dropout": 0.0}
    path = write_raw(tmp_path / "spec.safetensors", values, manifest_for(values, spec=spec))
    assert_checkpoint_error(path, "invalid spec", "positive integers")


def test_invalid_manifest_fields_are_all_reported(tmp_path: Path) -> None:
    values = make_model().variables
    manifest = manifest_for(values, backend=3, dtype="float16")
    manifest["variables"]["dense_0/bias"]["sha256"] = "xyz"
    path = write_raw(tmp_path / "fields.safetensors", values, manifest)
    assert_checkpoint_error(
        path, "backend must be a string", "dtype must be one of", "'dense_0/bias': sha256"
    )


def test_tensor_names_differ_from_manifest(tmp_path: Path) -> None:
    values = make_model().variables
    manifest = manifest_for(values)
    manifest["variables"]["dense_9/bias"] = manifest["variables"].pop("dense_1/bias")
    path = write_raw(tmp_path / "names.safetensors", values, manifest)
    assert_checkpoint_error(
        path,
        "'dense_1/bias' is in the file but not in the manifest",
        "'dense_9/bias' is in the manifest but has no tensor",
    )


def test_tensor_dtype_differs_from_manifest(tmp_path: Path) -> None:
    values = make_model().variables
    manifest = manifest_for(values)
    values["dense_0/bias"] = values["dense_0/bias"].astype(np.float64)
    path = write_raw(tmp_path / "dtype.safetensors", values, manifest)
    assert_checkpoint_error(
        path, "'dense_0/bias' is float64 (8,) in the file", "manifest records float32 (8,)"
    )


def test_integer_tensor(tmp_path: Path) -> None:
    values = make_model().variables
    manifest = manifest_for(values)
    values["dense_1/bias"] = np.arange(3, dtype=np.int32)
    path = write_raw(tmp_path / "int.safetensors", values, manifest)
    assert_checkpoint_error(path, "'dense_1/bias' is int32")


def test_tensor_shape_differs_from_manifest(tmp_path: Path) -> None:
    values = make_model().variables
    manifest = manifest_for(values)
    values["dense_1/weights"] = np.ascontiguousarray(values["dense_1/weights"].T)
    path = write_raw(tmp_path / "shape.safetensors", values, manifest)
    assert_checkpoint_error(
        path, "'dense_1/weights' is float32 (3, 8) in the file", "manifest records float32 (8, 3)"
    )


def test_errors_are_mlpcore_and_value_errors(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    with pytest.raises(MlpcoreError):
        read_checkpoint(path)
    with pytest.raises(ValueError):
        read_checkpoint(path)


# --- properties -------------------------------------------------------------------------------

_VALID: dict[str, bytes] = {}


def valid_bytes() -> bytes:
    if "data" not in _VALID:
        with tempfile.TemporaryDirectory() as directory:
            _VALID["data"] = save(make_model(), Path(directory) / "m.safetensors").read_bytes()
    return _VALID["data"]


@settings(
    max_examples=40, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.data())
def test_any_truncation_is_a_checkpoint_error(data: st.DataObject) -> None:
    content = valid_bytes()
    length = data.draw(st.integers(min_value=0, max_value=len(content) - 1), label="length")
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "cut.safetensors"
        path.write_bytes(content[:length])
        with pytest.raises(CheckpointError) as info:
            read_checkpoint(path)
        assert str(path) in str(info.value)


@settings(max_examples=40, derandomize=True, deadline=None)
@given(st.data())
def test_any_payload_bit_flip_fails_that_variables_checksum(data: st.DataObject) -> None:
    content = bytearray(valid_bytes())
    start = 8 + int.from_bytes(content[:8], "little")
    offset = data.draw(st.integers(min_value=start, max_value=len(content) - 1), label="offset")
    bit = data.draw(st.integers(min_value=0, max_value=7), label="bit")
    content[offset] ^= 1 << bit
    owner = payload_owner(bytes(content), offset)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "flip.safetensors"
        path.write_bytes(bytes(content))
        with pytest.raises(CheckpointError, match="checksum") as info:
            read_checkpoint(path)
        assert str(path) in str(info.value) and repr(owner) in str(info.value)


# --- the save fast path: views instead of copies ------------------------------------------------

BIG = MLPSpec(sizes=(600, 500, 10), activation="relu")  # 1.2 MB


class _CopiesOnly:
    """A backend model that offers only the contract's ``read_variables`` (copies)."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self.spec, self.dtype = native.spec, native.dtype

    def read_variables(self) -> dict[str, np.ndarray]:
        return dict(self._native.read_variables())


@pytest.mark.parametrize("spec", [SPEC, BIG], ids=["small", "big"])
@pytest.mark.parametrize("checksum", ["crc32", "sha256"])
def test_views_and_copies_give_the_same_file(tmp_path: Path, spec: MLPSpec,
                                             checksum: Any) -> None:
    model = make_model(spec=spec)
    assert isinstance(model.native, checkpoint.VariableViews)
    viewed = save(model, tmp_path / "views.safetensors", checksum=checksum)
    model.native = _CopiesOnly(model.native)  # type: ignore[assignment]
    assert not isinstance(model.native, checkpoint.VariableViews)
    copied = save(model, tmp_path / "copies.safetensors", checksum=checksum)
    assert viewed.read_bytes() == copied.read_bytes()
    data = read_checkpoint(viewed).variables
    for name, value in model.variables.items():
        np.testing.assert_array_equal(data[name], value)
        digest = hashlib.sha256(value.tobytes()).hexdigest() if checksum == "sha256" else \
            f"{zlib.crc32(value.tobytes()):08x}"
        assert read_checkpoint(viewed).manifest["variables"][name][checksum] == digest


def test_a_subclass_that_overrides_read_variables_alone_is_saved_from_it(
        tmp_path: Path) -> None:
    from mlpcore_numpy.backend import NumpyModel

    class Shifted(NumpyModel):
        def read_variables(self) -> dict[str, np.ndarray]:
            return {name: value + 1 for name, value in super().read_variables().items()}

    class ShiftedWithViews(Shifted):
        def variable_views(self) -> dict[str, np.ndarray]:
            return {name: value + 1 for name, value in super().variable_views().items()}

    model = make_model()
    plain = model.variables
    for cls in (Shifted, ShiftedWithViews):
        model.native = cls(SPEC, plain, "float32")
        data = read_checkpoint(save(model, tmp_path / f"{cls.__name__}.safetensors")).variables
        for name, value in plain.items():
            np.testing.assert_array_equal(data[name], value + 1)


def test_numpy_views_are_read_only_and_not_copies() -> None:
    model = make_model()
    views = model.native.variable_views()  # type: ignore[attr-defined]
    assert all(not view.flags.writeable for view in views.values())
    values = model.variables
    values["dense_0/bias"] += 1.0
    model.assign(values)
    np.testing.assert_array_equal(views["dense_0/bias"], values["dense_0/bias"])


def test_save_from_views_makes_no_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = make_model(spec=BIG)

    def no_copies() -> None:
        raise AssertionError("save copied the variables")

    monkeypatch.setattr(model.native, "read_variables", no_copies)
    save(model, tmp_path / "m.safetensors")
    monkeypatch.undo()
    assert read_checkpoint(tmp_path / "m.safetensors").spec == BIG


def half_then_full(tensors: Any, filename: Any, metadata: Any = None) -> None:
    """``safetensors.numpy.save_file`` on a disk that fills up half way through the file."""
    data = safetensors.numpy.save(tensors, metadata=metadata)
    Path(filename).write_bytes(data[: len(data) // 2])
    raise OSError(28, "No space left on device")


@pytest.mark.parametrize("spec", [SPEC, BIG], ids=["small", "big"])
def test_a_failed_write_leaves_the_previous_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: MLPSpec
) -> None:
    path = save(make_model(seed=1, spec=spec), tmp_path / "m.safetensors")
    original = path.read_bytes()
    monkeypatch.setattr(safetensors.numpy, "save_file", half_then_full)
    with pytest.raises(CheckpointError, match="No space left"):
        save(make_model(seed=2, spec=spec), path)
    monkeypatch.undo()
    assert path.read_bytes() == original
    assert sorted(os.listdir(tmp_path)) == ["m.safetensors"]


def test_a_failing_checksum_fails_the_save_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(data: Any) -> str:
        raise MemoryError("digest failed")

    monkeypatch.setitem(checkpoint._DIGESTS, "crc32", broken)  # computed while the data is written
    with pytest.raises(MemoryError, match="digest failed"):
        save(make_model(spec=BIG), tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []
