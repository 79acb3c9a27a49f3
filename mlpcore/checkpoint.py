"""Checkpoint I/O: a model's named variables in a safetensors file with an mlpcore manifest.

The format is described in ``docs/checkpoint-format.md``. In short: one tensor per variable,
named canonically (``dense_{i}/weights`` of shape (fan_in, fan_out), ``dense_{i}/bias`` of shape
(fan_out,)), little-endian and C-ordered whatever backend wrote it, plus a JSON manifest stored
under the ``"mlpcore"`` key of the safetensors ``__metadata__`` map.

Guarantees:

- :func:`save` is atomic. The bytes go to a temporary file in the target's own directory, which is
  flushed, ``fsync``-ed and then renamed over the target with :func:`os.replace`. A failed save
  leaves any previous file at the path untouched and removes its temporary file.
- :func:`read_checkpoint` verifies everything before returning: the safetensors structure, the
  manifest, the spec, the set of names, every dtype and shape, and every SHA-256 checksum.
- :func:`load` and :func:`load_into` are strict and all-or-nothing: every missing, unexpected or
  wrong-shaped variable is reported in one error, and no variable is assigned when any check fails.
- Every failure is a :class:`~mlpcore.errors.CheckpointError` whose message names the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import numpy.typing as npt
import safetensors
import safetensors.numpy

from mlpcore.errors import CheckpointError
from mlpcore.spec import DTYPES, DTypeName, MLPSpec, check_dtype
from mlpcore.version import __version__

if TYPE_CHECKING:
    from mlpcore.backend import Backend
    from mlpcore.model import MLP

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST_KEY",
    "SUPPORTED_FORMAT_VERSIONS",
    "Checkpoint",
    "load",
    "load_into",
    "read_checkpoint",
    "save",
]

FORMAT: Final = "mlpcore.checkpoint"
"""The value of the manifest's ``"format"`` field."""
FORMAT_VERSION: Final = 1
"""The format version :func:`save` writes."""
SUPPORTED_FORMAT_VERSIONS: Final = (1,)
"""The format versions :func:`read_checkpoint` reads."""
MANIFEST_KEY: Final = "mlpcore"
"""The ``__metadata__`` key whose value is the JSON manifest."""

PathArg = str | os.PathLike[str]
FloatArray = npt.NDArray[np.floating]

_HEADER_LENGTH_BYTES: Final = 8
_SAFETENSORS_DTYPES: Final = {"F32": "float32", "F64": "float64"}
_LITTLE_ENDIAN: Final[dict[str, np.dtype[np.floating]]] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
}
_NEW_FILE_MODE: Final = 0o644

_deserialize = cast(Callable[[bytes], list[tuple[str, dict[str, Any]]]], safetensors.deserialize)


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read and verified by :func:`read_checkpoint`.

    ``variables`` holds writable arrays in canonical layout and in the checkpoint's dtype: exactly
    the manifest's variables, with the recorded shapes, their bytes matching the recorded
    checksums.
    """

    path: Path
    manifest: dict[str, Any]
    spec: MLPSpec
    variables: dict[str, FloatArray]

    @property
    def dtype(self) -> DTypeName:
        """The dtype every variable is stored in."""
        return cast(DTypeName, self.manifest["dtype"])

    @property
    def backend(self) -> str:
        """The name of the backend that wrote the checkpoint."""
        return cast(str, self.manifest["backend"])


def save(model: MLP, path: PathArg) -> Path:
    """Write ``model``'s variables and manifest to ``path`` atomically and return the path.

    The file is either the complete new checkpoint or, if anything fails, whatever was there
    before; no temporary file is left behind. An existing file's permission bits are kept, a new
    file gets mode 0644. Raises :class:`CheckpointError` naming the path if the parent directory
    does not exist, the path is a directory, or writing fails (the ``OSError`` is the cause).
    """
    target = Path(os.fspath(path))
    directory = target.parent
    if not directory.is_dir():
        problem = "is not a directory" if directory.exists() else "does not exist"
        raise CheckpointError(f"cannot save checkpoint {target}: {directory} {problem}")
    if target.is_dir():
        raise CheckpointError(f"cannot save checkpoint {target}: it is a directory")

    data = _serialise(model)
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = _NEW_FILE_MODE

    try:
        fd, temp_name = tempfile.mkstemp(dir=directory, prefix=f".{target.name}.", suffix=".tmp")
    except OSError as err:
        raise CheckpointError(f"cannot save checkpoint {target}: {err}") from err
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp_name, mode)
        os.replace(temp_name, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        if isinstance(err, OSError):
            raise CheckpointError(f"cannot save checkpoint {target}: {err}") from err
        raise
    _fsync_directory(directory)
    return target


def read_checkpoint(path: PathArg) -> Checkpoint:
    """Read and verify the checkpoint at ``path``.

    Checks, in order: the file exists and is a regular file; its header length fits inside it
    (checked before anything else is read, so a corrupt length allocates nothing); safetensors
    can parse it; it carries an mlpcore manifest of a supported format version with a valid spec;
    the tensors are exactly the manifest's variables, each with the recorded dtype, shape and
    SHA-256 checksum. Any failure raises :class:`CheckpointError` naming the file and, for
    consistency problems, listing every problem found.

    Whether the variables fit a spec (their own or a model's) is checked by :func:`load` and
    :func:`load_into`, which report every misfit together.
    """
    file = Path(os.fspath(path))
    data = _read_bytes(file)
    try:
        entries = _deserialize(data)
    except Exception as err:  # the Rust binding raises SafetensorError and assorted built-ins
        raise CheckpointError(
            f"checkpoint {file} is not a valid safetensors file (truncated or corrupt): {err}"
        ) from err

    manifest = _manifest_from_header(file, data)
    spec = _check_manifest(file, manifest)
    variables = _check_tensors(file, manifest, entries)
    return Checkpoint(path=file, manifest=manifest, spec=spec, variables=variables)


def load(path: PathArg, backend: str | Backend | None = None, *, dtype: str | None = None) -> MLP:
    """Build a model from the checkpoint at ``path``.

    The model has the checkpoint's spec and variables, on ``backend`` (the default backend when
    ``None``) and in ``dtype`` (the checkpoint's dtype when ``None``). Values are cast to the model
    dtype; a float64 value too large for float32 raises :class:`CheckpointError` rather than
    becoming infinite. Variables that do not fit the checkpoint's own spec are all reported in
    one :class:`CheckpointError`.
    """
    from mlpcore.model import MLP

    checkpoint = read_checkpoint(path)
    _check_fit(checkpoint, checkpoint.spec, "its own spec")
    model_dtype = check_dtype(dtype) if dtype is not None else checkpoint.dtype
    values = _cast_all(checkpoint, model_dtype)
    model = MLP(checkpoint.spec, backend=backend, dtype=model_dtype)
    model.assign(values)
    return model


def load_into(model: MLP, path: PathArg) -> None:
    """Replace every variable of ``model`` with the checkpoint's, all or nothing.

    The checkpoint's variables must have exactly the names and shapes of
    ``model.spec.variable_shapes()``; its activation and dropout rate are not compared. Every
    missing, unexpected and wrong-shaped variable is listed in one :class:`CheckpointError` naming
    the file, and the model is left unchanged. Values are cast to the model's dtype.
    """
    checkpoint = read_checkpoint(path)
    _check_fit(checkpoint, model.spec, "the model")
    model.assign(_cast_all(checkpoint, check_dtype(model.dtype)))


def _serialise(model: MLP) -> bytes:
    dtype = check_dtype(model.dtype)
    layout = _LITTLE_ENDIAN[dtype]
    tensors = {
        name: np.ascontiguousarray(value, dtype=layout) for name, value in model.variables.items()
    }
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mlpcore_version": __version__,
        "backend": model.backend.name,
        "backend_version": model.backend.framework_version(),
        "dtype": dtype,
        "spec": model.spec.to_dict(),
        "variables": {
            name: {
                "shape": list(array.shape),
                "dtype": dtype,
                "sha256": hashlib.sha256(array.tobytes(order="C")).hexdigest(),
            }
            for name, array in tensors.items()
        },
    }
    text = json.dumps(manifest, allow_nan=False, separators=(",", ":"))
    return safetensors.numpy.save(tensors, metadata={MANIFEST_KEY: text})


def _fsync_directory(directory: Path) -> None:
    flag = getattr(os, "O_DIRECTORY", None)
    if flag is None:
        return
    try:
        fd = os.open(directory, os.O_RDONLY | flag)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _read_bytes(file: Path) -> bytes:
    if not file.exists():
        raise CheckpointError(f"checkpoint file {file} does not exist")
    if file.is_dir():
        raise CheckpointError(f"checkpoint {file} is a directory, not a file")
    try:
        with open(file, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size
            prefix = stream.read(_HEADER_LENGTH_BYTES)
            if len(prefix) < _HEADER_LENGTH_BYTES:
                raise CheckpointError(
                    f"checkpoint {file} is not a valid safetensors file: it has {size} bytes, "
                    f"fewer than the {_HEADER_LENGTH_BYTES}-byte header length field"
                )
            _check_header_length(file, int.from_bytes(prefix, "little"), size)
            stream.seek(0)
            data = stream.read()
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {file}: {err}") from err
    _check_header_length(file, int.from_bytes(data[:_HEADER_LENGTH_BYTES], "little"), len(data))
    return data


def _check_header_length(file: Path, header_length: int, size: int) -> None:
    available = size - _HEADER_LENGTH_BYTES
    if header_length > available:
        raise CheckpointError(
            f"checkpoint {file} is not a valid safetensors file (truncated or corrupt): its "
            f"header length field says {header_length} bytes but only {available} bytes follow it"
        )


def _manifest_from_header(file: Path, data: bytes) -> dict[str, Any]:
    end = _HEADER_LENGTH_BYTES + int.from_bytes(data[:_HEADER_LENGTH_BYTES], "little")
    try:
        header = json.loads(data[_HEADER_LENGTH_BYTES:end])
    except ValueError as err:
        raise CheckpointError(f"checkpoint {file} has an unreadable header: {err}") from err
    metadata = header.get("__metadata__") if isinstance(header, dict) else None
    text = metadata.get(MANIFEST_KEY) if isinstance(metadata, dict) else None
    if text is None:
        raise CheckpointError(
            f"{file} is a safetensors file without an mlpcore manifest (no {MANIFEST_KEY!r} key "
            "in its __metadata__), so it was not written by mlpcore.save"
        )
    if not isinstance(text, str):
        raise CheckpointError(f"checkpoint {file}: the mlpcore manifest is not a string")
    try:
        manifest = json.loads(text)
    except ValueError as err:
        raise CheckpointError(
            f"checkpoint {file}: the mlpcore manifest is not valid JSON: {err}"
        ) from err
    if not isinstance(manifest, dict):
        raise CheckpointError(
            f"checkpoint {file}: the mlpcore manifest must be a JSON object, "
            f"got {type(manifest).__name__}"
        )
    return manifest


def _check_manifest(file: Path, manifest: dict[str, Any]) -> MLPSpec:
    for key in ("format", "format_version"):
        if key not in manifest:
            raise CheckpointError(f"checkpoint {file}: the mlpcore manifest has no {key!r} field")
    if manifest.get("format") != FORMAT:
        raise CheckpointError(
            f"checkpoint {file}: manifest format is {manifest.get('format')!r}, expected {FORMAT!r}"
        )
    version = manifest.get("format_version")
    if isinstance(version, bool) or not isinstance(version, int):
        raise CheckpointError(
            f"checkpoint {file}: manifest format_version must be an integer, got {version!r}"
        )
    if version not in SUPPORTED_FORMAT_VERSIONS:
        supported = ", ".join(str(v) for v in SUPPORTED_FORMAT_VERSIONS)
        hint = " (written by a newer mlpcore? upgrade mlpcore)" if version > FORMAT_VERSION else ""
        raise CheckpointError(
            f"checkpoint {file} has format_version {version}, which mlpcore "
            f"{__version__} cannot read; supported format versions: {supported}{hint}"
        )

    problems: list[str] = []
    for key in ("mlpcore_version", "backend", "backend_version"):
        if not isinstance(manifest.get(key), str):
            problems.append(f"{key} must be a string, got {manifest.get(key)!r}")
    if manifest.get("dtype") not in DTYPES:
        problems.append(f"dtype must be one of {', '.join(DTYPES)}, got {manifest.get('dtype')!r}")
    spec: MLPSpec | None = None
    try:
        spec = MLPSpec.from_dict(manifest.get("spec"))
    except (ValueError, TypeError) as err:
        problems.append(f"invalid spec: {err}")
    variables = manifest.get("variables")
    if not isinstance(variables, dict):
        problems.append(f"variables must be a JSON object, got {type(variables).__name__}")
    else:
        for name, entry in variables.items():
            problems += [f"variable {name!r}: {p}" for p in _entry_problems(entry)]
    if problems or spec is None:
        raise _problems_error(file, "has an invalid manifest", problems)
    return spec


def _entry_problems(entry: Any) -> list[str]:
    if not isinstance(entry, dict):
        return [f"entry must be a JSON object, got {type(entry).__name__}"]
    problems: list[str] = []
    shape = entry.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        problems.append(f"shape must be a list of non-negative integers, got {shape!r}")
    if entry.get("dtype") not in DTYPES:
        problems.append(f"dtype must be one of {', '.join(DTYPES)}, got {entry.get('dtype')!r}")
    digest = entry.get("sha256")
    if not (isinstance(digest, str) and len(digest) == 64 and _is_lower_hex(digest)):
        problems.append(f"sha256 must be 64 lowercase hex digits, got {digest!r}")
    return problems


def _is_lower_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _check_tensors(
    file: Path,
    manifest: dict[str, Any],
    entries: list[tuple[str, dict[str, Any]]],
) -> dict[str, FloatArray]:
    recorded: dict[str, dict[str, Any]] = manifest["variables"]
    dtype: str = manifest["dtype"]
    tensors = dict(entries)
    problems: list[str] = []

    problems += [
        f"tensor {name!r} is in the file but not in the manifest"
        for name in tensors
        if name not in recorded
    ]
    problems += [
        f"variable {name!r} is in the manifest but has no tensor in the file"
        for name in recorded
        if name not in tensors
    ]

    variables: dict[str, FloatArray] = {}
    for name, entry in recorded.items():
        shape = tuple(entry["shape"])
        if entry["dtype"] != dtype:
            problems.append(
                f"variable {name!r} has dtype {entry['dtype']} but the checkpoint dtype is {dtype}"
            )
        tensor = tensors.get(name)
        if tensor is None:
            continue
        tensor_dtype = _SAFETENSORS_DTYPES.get(tensor["dtype"], tensor["dtype"])
        tensor_shape = tuple(tensor["shape"])
        if tensor_dtype != entry["dtype"] or tensor_shape != shape:
            problems.append(
                f"tensor {name!r} is {tensor_dtype} {_shape(tensor_shape)} in the file, "
                f"but the manifest records {entry['dtype']} {_shape(shape)}"
            )
            continue
        raw = bytes(tensor["data"])
        digest = hashlib.sha256(raw).hexdigest()
        if digest != entry["sha256"]:
            problems.append(
                f"variable {name!r} fails its checksum (sha256 of the data is {digest}, the "
                f"manifest records {entry['sha256']}): the tensor data is corrupt"
            )
            continue
        variables[name] = (
            np.frombuffer(raw, dtype=_LITTLE_ENDIAN[tensor_dtype])
            .reshape(tensor_shape)
            .astype(tensor_dtype, copy=True)
        )

    if problems:
        raise _problems_error(file, "is damaged or inconsistent", problems)
    return variables


def _check_fit(checkpoint: Checkpoint, spec: MLPSpec, target: str) -> None:
    expected = spec.variable_shapes()
    found = {name: tuple(array.shape) for name, array in checkpoint.variables.items()}
    missing = [name for name in expected if name not in found]
    unexpected = [name for name in found if name not in expected]
    wrong_shape = [name for name in expected if name in found and found[name] != expected[name]]
    if not (missing or unexpected or wrong_shape):
        return
    lines = [f"checkpoint {checkpoint.path} does not fit {target} {_describe(spec)}:"]
    lines += [f"  - missing: {name} {_shape(expected[name])}" for name in missing]
    lines += [f"  - unexpected: {name} {_shape(found[name])}" for name in unexpected]
    lines += [
        f"  - wrong shape: {name} is {_shape(found[name])} in the checkpoint, "
        f"{_shape(expected[name])} in {target}"
        for name in wrong_shape
    ]
    raise CheckpointError("\n".join(lines))


def _cast_all(checkpoint: Checkpoint, dtype: DTypeName) -> dict[str, FloatArray]:
    values: dict[str, FloatArray] = {}
    overflowed: list[str] = []
    for name, array in checkpoint.variables.items():
        with np.errstate(over="ignore"):
            cast_array = array.astype(dtype)
        if np.any(np.isfinite(array) & ~np.isfinite(cast_array)):
            overflowed.append(name)
        values[name] = cast_array
    if overflowed:
        raise CheckpointError(
            f"checkpoint {checkpoint.path}: values of {', '.join(overflowed)} are too large for "
            f"{dtype} and would become infinite"
        )
    return values


def _problems_error(file: Path, summary: str, problems: list[str]) -> CheckpointError:
    lines = [f"checkpoint {file} {summary}:"] + [f"  - {problem}" for problem in problems]
    return CheckpointError("\n".join(lines))


def _describe(spec: MLPSpec) -> str:
    return f"with sizes {_shape(spec.sizes)}"


def _shape(shape: tuple[int, ...] | list[int]) -> str:
    return "(" + ", ".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"
