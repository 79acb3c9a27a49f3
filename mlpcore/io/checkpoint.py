"""Checkpoint I/O: a model's named variables in a safetensors file with an mlpcore manifest.

The format is described in ``docs/checkpoint-format.md``. In short: one tensor per variable,
named canonically (``dense_{i}/weights`` of shape (fan_in, fan_out), ``dense_{i}/bias`` of shape
(fan_out,)), little-endian and C-ordered whatever backend wrote it, plus a JSON manifest stored
under the ``"mlpcore"`` key of the safetensors ``__metadata__`` map.

Guarantees:

- :func:`save` is atomic and durable (:mod:`mlpcore.io.atomic`): a temporary file in the target's
  directory, ``fsync``, ``os.replace``, directory ``fsync``. A failed or killed save leaves any
  previous file at the path untouched. It writes from the backend's own arrays where the
  backend allows (:class:`VariableViews`) and checksums on a worker thread while it writes.
- :func:`read_checkpoint` verifies everything before returning: the safetensors structure
  (validated by :mod:`mlpcore.io.safetensors_io` before any tensor byte is read), the manifest,
  the spec, the set of names, every dtype and shape, and every checksum
  (:mod:`mlpcore.io.checksums`).
- :func:`load` and :func:`load_into` are strict and all-or-nothing: every missing, unexpected or
  wrong-shaped variable is reported in one error, and no variable is assigned when any check fails.
  :func:`load_into` can also load a chosen subset (``include``, ``name_map``), for finetuning.
- Every failure is a :class:`~mlpcore.errors.CheckpointError` whose message names the file.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Protocol, TypeGuard, cast, runtime_checkable

import numpy as np
import numpy.typing as npt

from mlpcore.errors import CheckpointError
from mlpcore.io.atomic import atomic_write
from mlpcore.io.checksums import ALGORITHMS, ChecksumName, new_digest, placeholder, valid_hex
from mlpcore.io.safetensors_io import (
    open_regular,
    read_layout,
    read_tensors,
    write_container,
)
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
    "VariableViews",
    "load",
    "load_into",
    "read_checkpoint",
    "save",
]

FORMAT: Final = "mlpcore.checkpoint"
"""The value of the manifest's ``"format"`` field."""
FORMAT_VERSION: Final = 2
"""The format version :func:`save` writes (2: per-variable ``crc32`` or ``sha256``)."""
SUPPORTED_FORMAT_VERSIONS: Final = (1, 2)
"""The format versions :func:`read_checkpoint` reads (1: per-variable ``sha256`` only)."""
MANIFEST_KEY: Final = "mlpcore"
"""The ``__metadata__`` key whose value is the JSON manifest."""
MANIFEST_CHECKSUM_KEY: Final = "mlpcore_manifest_crc32"
"""The ``__metadata__`` key holding the CRC-32 of the manifest text (format version 2)."""

PathArg = str | os.PathLike[str]
FloatArray = npt.NDArray[np.floating]

_SAFETENSORS_DTYPES: Final = {"F32": "float32", "F64": "float64"}
_LITTLE_ENDIAN: Final[dict[str, np.dtype[np.floating]]] = {
    "float32": np.dtype("<f4"),
    "float64": np.dtype("<f8"),
}
_IMPORT_REFERENCE: Final = re.compile(r"^\s*[A-Za-z_][\w.]*\s*:\s*[A-Za-z_][\w.]*\s*$")
_PLAIN_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint file read and verified by :func:`read_checkpoint`.

    ``variables`` holds arrays in canonical layout and in the checkpoint's dtype: exactly the
    manifest's variables, with the recorded shapes, their bytes matching the recorded
    checksums. They are writable views of one buffer, or read-only views of a memory map when
    read with ``mmap=True``.
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


@runtime_checkable
class VariableViews(Protocol):
    """An optional extra of a :class:`~mlpcore.backend.BackendModel`: variables without a copy.

    :func:`save` uses ``variable_views()`` instead of ``read_variables()`` when the backend's
    model offers it (the NumPy backend does), so a save makes no full copy of the model. It does
    so only when ``variable_views`` is defined by the class that defines the ``read_variables``
    in effect, or by a subclass of it: a subclass that overrides ``read_variables`` alone (to
    convert a layout, say) inherits views that would bypass its conversion, so it is saved from
    ``read_variables()``.
    """

    def variable_views(self) -> dict[str, FloatArray]:
        """Read-only NumPy views of the model's own arrays, canonical layout, keyed by name.

        No copy is made, so the views change when the model's variables do: they are for a
        caller that reads them at once and keeps nothing (as :func:`save` does). A backend whose
        native layout or memory differs from the canonical one (a transposed weight, a device
        tensor) does not offer this.
        """
        ...


def save(model: MLP, path: PathArg, *, checksum: ChecksumName = "crc32") -> Path:
    """Write ``model``'s variables and manifest to ``path`` atomically and return the path.

    ``checksum`` is the per-variable checksum recorded in the manifest: ``"crc32"`` (fast,
    detects corruption, not tampering) or ``"sha256"`` (cryptographic, ~3x slower); see
    :mod:`mlpcore.io.checksums`. The file is either the complete new checkpoint or, if anything
    fails, whatever was there before; no temporary file is left behind. An existing file's
    permission bits are kept, a new file gets mode 0644. Raises :class:`CheckpointError` naming
    the path if the parent directory does not exist, the path is a directory or a symbolic
    link, or writing fails (the ``OSError`` is the cause).

    The variables are written straight from the backend's own arrays when its model offers
    :class:`VariableViews` (otherwise from the copies ``read_variables()`` returns), and their
    checksums are computed on a worker thread while they are written; the header, written first
    with placeholder checksums of the same width, is rewritten in place with the real ones
    before the file is flushed, ``fsync``-ed and renamed into place. Do not change the model's
    variables from another thread during a save: the file could then hold a mixture of old and
    new values (with copies as much as with views), and with views its checksums may fail.
    """
    if checksum not in ALGORITHMS:
        raise ValueError(f"checksum must be one of {', '.join(ALGORITHMS)}, got {checksum!r}")
    target = Path(os.fspath(path))
    dtype = check_dtype(model.dtype)
    layout = _LITTLE_ENDIAN[dtype]
    native = model.native
    source = native.variable_views() if _has_own_views(native) else model.variables
    tensors = {name: np.ascontiguousarray(value, dtype=layout) for name, value in source.items()}
    digests = {name: new_digest(checksum) for name in tensors}
    manifest: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mlpcore_version": __version__,
        "backend": model.backend.name,
        "backend_version": model.backend.framework_version(),
        "dtype": dtype,
        "spec": model.spec.to_dict(),
        "variables": {name: {"shape": list(array.shape), "dtype": dtype,
                             checksum: placeholder(checksum)}
                      for name, array in tensors.items()},
    }
    unfinished = {MANIFEST_KEY: _manifest_text(manifest),
                  MANIFEST_CHECKSUM_KEY: placeholder("crc32")}

    def final_metadata() -> dict[str, str]:
        for name, digest in digests.items():
            manifest["variables"][name][checksum] = digest.hexdigest()
        text = _manifest_text(manifest)
        return {MANIFEST_KEY: text, MANIFEST_CHECKSUM_KEY: _text_crc(text)}

    return atomic_write(target, lambda stream: write_container(
        stream, tensors, unfinished, digests=digests, final_metadata=final_metadata))


def _has_own_views(native: object) -> TypeGuard[VariableViews]:
    """Whether ``native`` offers views that agree with its ``read_variables`` (see above)."""
    if not isinstance(native, VariableViews):
        return False
    views = _defined_by(type(native), "variable_views")
    reads = _defined_by(type(native), "read_variables")
    return views is not None and (reads is None or issubclass(views, reads))


def _defined_by(cls: type, attribute: str) -> type | None:
    """The class of ``cls.__mro__`` whose own namespace defines ``attribute``."""
    return next((klass for klass in cls.__mro__ if attribute in vars(klass)), None)


def _manifest_text(manifest: dict[str, Any]) -> str:
    return json.dumps(manifest, allow_nan=False, separators=(",", ":"))


def read_checkpoint(path: PathArg, *, mmap: bool = False) -> Checkpoint:
    """Read and verify the checkpoint at ``path``.

    Checks, in order: the path is a regular file, not a symbolic link; the safetensors header is
    well formed and accounts for every byte of the file (see :mod:`mlpcore.io.safetensors_io`;
    nothing is allocated for the data before this passes); it carries an mlpcore manifest of a
    supported format version with a valid spec, naming no importable object; the tensors are
    exactly the manifest's variables, each with the recorded dtype, shape and checksum. Any
    failure raises :class:`CheckpointError` naming the file and, for consistency problems,
    listing every problem found.

    With ``mmap=True`` the variables are read-only views of a memory map of the file (no copy
    is made here; the map stays valid if the file is later replaced).

    Whether the variables fit a spec (their own or a model's) is checked by :func:`load` and
    :func:`load_into`, which report every misfit together.
    """
    file = Path(os.fspath(path))
    with open_regular(file) as stream:
        layout = read_layout(stream, file)
        manifest = _manifest_from_metadata(file, layout.metadata)
        spec = _check_manifest(file, manifest)
        _check_manifest_checksum(file, manifest, layout.metadata)
        problems = _layout_problems(manifest, layout.tensors)
        if problems:
            raise _problems_error(file, "is damaged or inconsistent", problems)
        recorded: dict[str, dict[str, Any]] = manifest["variables"]
        digests = {name: new_digest(_algorithm(entry)) for name, entry in recorded.items()}
        arrays = read_tensors(stream, layout, digests, use_mmap=mmap)
    for name, entry in recorded.items():
        algorithm = _algorithm(entry)
        found = digests[name].hexdigest()
        if found != entry[algorithm]:
            problems.append(
                f"variable {name!r} fails its checksum ({algorithm} of the data is {found}, the "
                f"manifest records {entry[algorithm]}): the tensor data is corrupt")
    if problems:
        raise _problems_error(file, "is damaged or inconsistent", problems)
    variables = {name: cast(FloatArray, arrays[name]) for name in recorded}
    return Checkpoint(path=file, manifest=manifest, spec=spec, variables=variables)


def load(path: PathArg, backend: str | Backend | None = None, *, dtype: str | None = None,
         mmap: bool = True) -> MLP:
    """Build a model from the checkpoint at ``path``.

    The model has the checkpoint's spec and variables, on ``backend`` (the default backend when
    ``None``) and in ``dtype`` (the checkpoint's dtype when ``None``). Values are cast to the model
    dtype; a float64 value too large for float32 raises :class:`CheckpointError` rather than
    becoming infinite. Variables that do not fit the checkpoint's own spec are all reported in
    one :class:`CheckpointError`. With ``mmap=True`` (the default) the file is memory-mapped, so
    the only full copy of the data is the backend's own arrays.
    """
    from mlpcore.model import MLP

    checkpoint = read_checkpoint(path, mmap=mmap)
    _check_fit(checkpoint, checkpoint.spec, "its own spec")
    model_dtype = check_dtype(dtype) if dtype is not None else checkpoint.dtype
    values = _cast_all(checkpoint.path, checkpoint.variables, model_dtype)
    return MLP.from_variables(checkpoint.spec, values, backend=backend, dtype=model_dtype)


def load_into(model: MLP, path: PathArg, *, include: Collection[str] | None = None,
              name_map: Mapping[str, str] | None = None, format: str | None = None) -> None:
    """Replace variables of ``model`` with the checkpoint's, all or nothing.

    Without ``include`` and ``name_map`` every variable is replaced: the checkpoint's variables
    must have exactly the names and shapes of ``model.spec.variable_shapes()`` (its activation
    and dropout rate are not compared). Every missing, unexpected and wrong-shaped variable is
    listed in one :class:`CheckpointError` naming the file.

    For finetuning, load a subset: ``name_map`` (checkpoint name -> model variable name) takes
    exactly the mapped variables, under their new names; ``include`` (model variable names)
    keeps only those. The model's other variables keep their values. Every chosen variable must
    exist in both and have the same shape; every problem is listed, naming the variable and both
    shapes. ``path`` may be in any installed format (``format`` overrides detection, see
    :mod:`mlpcore.io.interop`). Values are cast to the model's dtype. On any error nothing is
    assigned.
    """
    file = Path(os.fspath(path))
    whole = include is None and name_map is None
    if whole and format in (None, "mlpcore") and _is_mlpcore(file, format):
        checkpoint = read_checkpoint(file, mmap=True)
        _check_fit(checkpoint, model.spec, "the model")
        model.assign(_cast_all(file, checkpoint.variables, check_dtype(model.dtype)))
        return
    from mlpcore.io.interop import default_map, detect_format, formats, read_variables
    from mlpcore.io.namemap import select

    entry = formats()[format] if format in formats() else detect_format(file)
    source = read_variables(file, format=entry.name)
    expected = model.spec.variable_shapes()
    chosen = select(file, source, expected, include=include, name_map=name_map,
                    default=default_map(entry, list(source)) if name_map is None else None)
    missing = [name for name in expected if name not in chosen]
    if whole and missing:
        raise CheckpointError(f"checkpoint {file} does not fit the model "
                              f"{_describe(model.spec)}: missing {', '.join(missing)}; pass "
                              "include=[...] or a name_map to load only some variables")
    values = model.variables
    values.update(_cast_all(file, chosen, check_dtype(model.dtype)))
    model.assign(values)


def _is_mlpcore(file: Path, format: str | None) -> bool:
    if format == "mlpcore":
        return True
    from mlpcore.io.interop import detect_format

    try:
        return detect_format(file).name == "mlpcore"
    except CheckpointError:
        return True  # let read_checkpoint explain what is wrong with the file


def _text_crc(text: str) -> str:
    digest = new_digest("crc32")
    digest.update(text.encode("utf-8"))
    return cast(str, digest.hexdigest())


def _manifest_from_metadata(file: Path, metadata: dict[str, str]) -> dict[str, Any]:
    text = metadata.get(MANIFEST_KEY)
    if text is None:
        raise CheckpointError(
            f"{file} is a safetensors file without an mlpcore manifest (no {MANIFEST_KEY!r} key "
            "in its __metadata__), so it was not written by mlpcore.save; import it with "
            "format='safetensors' and a name map")
    try:
        manifest = json.loads(text, parse_constant=_refuse_constant)
    except ValueError as err:
        raise CheckpointError(
            f"checkpoint {file}: the mlpcore manifest is not valid JSON: {err}"
        ) from err
    if not isinstance(manifest, dict):
        raise CheckpointError(
            f"checkpoint {file}: the mlpcore manifest must be a JSON object, "
            f"got {type(manifest).__name__}"
        )
    reference = _find_import_reference(manifest)
    if reference is not None:
        raise CheckpointError(
            f"checkpoint {file}: the manifest names an importable object {reference!r} "
            "(module:callable); mlpcore never imports or calls anything a file names, and "
            "refuses such a manifest")
    return manifest


def _check_manifest_checksum(file: Path, manifest: dict[str, Any],
                             metadata: dict[str, str]) -> None:
    recorded = metadata.get(MANIFEST_CHECKSUM_KEY)
    if manifest["format_version"] == 1 and recorded is None:
        return  # version 1 had no manifest checksum
    found = _text_crc(metadata[MANIFEST_KEY])
    if recorded != found:
        raise CheckpointError(
            f"checkpoint {file}: the manifest fails its checksum (crc32 of the manifest text is "
            f"{found}, {MANIFEST_CHECKSUM_KEY} records {recorded!r}): the header is corrupt")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _find_import_reference(value: Any) -> str | None:
    if isinstance(value, str):
        return value if _IMPORT_REFERENCE.match(value) else None
    children = value.values() if isinstance(value, dict) else value if isinstance(
        value, list) else ()
    for child in children:
        found = _find_import_reference(child)
        if found is not None:
            return found
    return None


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
    backend = manifest.get("backend")
    if isinstance(backend, str) and not _PLAIN_NAME.match(backend):
        problems.append(f"backend must be a plain backend name, got {backend!r:.80}")
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
            problems += [f"variable {name!r}: {p}" for p in _entry_problems(entry, version)]
    if problems or spec is None:
        raise _problems_error(file, "has an invalid manifest", problems)
    return spec


def _entry_problems(entry: Any, version: int) -> list[str]:
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
    allowed = ("sha256",) if version == 1 else ALGORITHMS
    present = [a for a in ALGORITHMS if a in entry]
    if len(present) != 1 or present[0] not in allowed:
        problems.append(f"must record exactly one checksum, one of {', '.join(allowed)} "
                        f"(format version {version}), got {present or 'none'}")
    elif not valid_hex(present[0], entry[present[0]]):
        digits = 8 if present[0] == "crc32" else 64
        problems.append(f"{present[0]} must be {digits} lowercase hex digits, "
                        f"got {entry[present[0]]!r}")
    return problems


def _algorithm(entry: dict[str, Any]) -> str:
    return next(a for a in ALGORITHMS if a in entry)


def _layout_problems(manifest: dict[str, Any], tensors: Mapping[str, Any]) -> list[str]:
    recorded: dict[str, dict[str, Any]] = manifest["variables"]
    dtype: str = manifest["dtype"]
    problems = [f"tensor {name!r} is in the file but not in the manifest"
                for name in tensors if name not in recorded]
    problems += [f"variable {name!r} is in the manifest but has no tensor in the file"
                 for name in recorded if name not in tensors]
    for name, entry in recorded.items():
        shape = tuple(entry["shape"])
        if entry["dtype"] != dtype:
            problems.append(
                f"variable {name!r} has dtype {entry['dtype']} but the checkpoint dtype is {dtype}"
            )
        tensor = tensors.get(name)
        if tensor is None:
            continue
        tensor_dtype = _SAFETENSORS_DTYPES.get(tensor.dtype, tensor.dtype)
        if tensor_dtype != entry["dtype"] or tensor.shape != shape:
            problems.append(
                f"tensor {name!r} is {tensor_dtype} {_shape(tensor.shape)} in the file, "
                f"but the manifest records {entry['dtype']} {_shape(shape)}"
            )
    return problems


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


def _cast_all(file: Path, variables: Mapping[str, FloatArray],
              dtype: DTypeName) -> dict[str, FloatArray]:
    values: dict[str, FloatArray] = {}
    overflowed: list[str] = []
    for name, array in variables.items():
        if array.dtype == np.dtype(dtype):
            values[name] = array
            continue
        with np.errstate(over="ignore"):
            cast_array = array.astype(dtype)
        if np.any(np.isfinite(array) & ~np.isfinite(cast_array)):
            overflowed.append(name)
        values[name] = cast_array
    if overflowed:
        raise CheckpointError(
            f"checkpoint {file}: values of {', '.join(overflowed)} are too large for "
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
