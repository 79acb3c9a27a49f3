"""Checkpoints: one little-endian tensor per variable, canonical names and layout
(``dense_{i}/weights`` (fan_in, fan_out), ``dense_{i}/bias`` (fan_out,)), and per optimizer slot
(``optimizer/dense_0/weights/m``), in a safetensors file whose ``__metadata__`` holds the JSON
manifest and its CRC-32 (``docs/checkpoint-format.md``). Every failure is a
:class:`~mlpcore.errors.CheckpointError` naming the file (and the variable)."""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import math
import mmap
import os
import re
import stat
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import safetensors
import safetensors.numpy

from mlpcore.errors import CheckpointError
from mlpcore.io.atomic import fsync, write_atomically
from mlpcore.losses import LOSSES
from mlpcore.optimizers import SGD, Adam, OptimizerState, state_problems
from mlpcore.spec import (
    DTYPES,
    DTypeName,
    MLPSpec,
    check_compute_dtype,
    check_dtype,
    master_dtype,
)
from mlpcore.version import __version__

if TYPE_CHECKING:
    from mlpcore.backend import Backend
    from mlpcore.model import MLP

__all__ = ["FORMAT", "FORMAT_VERSION", "MANIFEST_KEY", "SUPPORTED_FORMAT_VERSIONS", "Checkpoint",
           "VariableViews", "cast_variables", "check_fit", "listing", "load", "optimizer_state",
           "read_checkpoint", "read_safetensors", "save", "shape_text", "write_safetensors"]

FORMAT: Final = "mlpcore.checkpoint"
FORMAT_VERSION: Final = 2  # 2: per-variable crc32 or sha256; 1: sha256 only
SUPPORTED_FORMAT_VERSIONS: Final = (1, 2)
MANIFEST_KEY: Final = "mlpcore"
MANIFEST_CHECKSUM_KEY: Final = "mlpcore_manifest_crc32"
MAX_HEADER_BYTES: Final = 100_000_000  # safetensors' own limit
MAX_DEPTH: Final = 64  # of JSON nesting; an mlpcore header or manifest needs 4
MAX_NAME_LENGTH: Final = 1024
MAX_RANK: Final = 8
OPTIMIZER_PREFIX: Final = "optimizer/"
"""Optimizer slot ``dense_0/weights/m`` is the tensor ``optimizer/dense_0/weights/m``."""
_OPTIMIZERS: Final[dict[str, type[SGD] | type[Adam]]] = {"SGD": SGD, "Adam": Adam}

PathArg = str | os.PathLike[str]
FloatArray = npt.NDArray[np.floating]
Arrays = dict[str, npt.NDArray[Any]]
_DIGESTS: Final[dict[str, Callable[[Any], str]]] = {
    "crc32": lambda data: f"{zlib.crc32(data):08x}",  # detects corruption, not tampering
    "sha256": lambda data: hashlib.sha256(data).hexdigest(),
}
_DTYPES: Final = {"F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
                  "I16": "<i2", "I8": "i1", "U64": "<u8", "U32": "<u4", "U16": "<u2", "U8": "u1",
                  "BOOL": "?"}
_IMPORT_REFERENCE: Final = re.compile(r"^\s*[A-Za-z_][\w.]*\s*:\s*[A-Za-z_][\w.]*\s*$")
_PLAIN_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
_BAD_NAME: Final = re.compile(r"[\x00-\x1f\x7f]|^/|(^|/)\.\.(/|$)")


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: ``variables`` are exactly the manifest's, with the recorded shapes
    and checksums (writable copies, or read-only views of a memory map)."""

    path: Path
    manifest: dict[str, Any]
    spec: MLPSpec
    variables: dict[str, FloatArray]
    optimizer_state: OptimizerState | None = None
    """The optimizer's state, slots as stored (``None``: the file holds none)."""

    @property
    def dtype(self) -> DTypeName:
        return check_dtype(self.manifest["dtype"])

    @property
    def backend(self) -> str:
        """The name of the backend that wrote the checkpoint."""
        return str(self.manifest["backend"])


@runtime_checkable
class VariableViews(Protocol):
    """Optional extra of a :class:`~mlpcore.backend.BackendModel` that :func:`save` uses instead
    of copies, unless a subclass overrides ``read_variables`` alone (to convert a layout)."""

    def variable_views(self) -> dict[str, FloatArray]:
        """Read-only NumPy views of the model's own arrays, canonical layout, by name."""
        ...


def save(model: MLP, path: PathArg, *, checksum: Literal["crc32", "sha256"] = "crc32") -> Path:
    """Write ``model``'s variables, its ``optimizer_state`` (if any) and manifest to ``path``,
    atomically; return the path.

    ``checksum`` per variable: ``"crc32"`` (fast; detects corruption, not tampering) or
    ``"sha256"``. On any failure the previous file is kept, no temporary file is left, and
    :class:`CheckpointError` names the path. Do not change the model's variables from another
    thread during a save.
    """
    if checksum not in _DIGESTS:
        raise ValueError(f"checksum must be one of {', '.join(_DIGESTS)}, got {checksum!r}")
    dtype, native = check_dtype(model.variable_dtype), model.native
    # views only from the class of the read_variables in effect or a subclass of it
    owners = [next((k for k in type(native).__mro__ if attribute in vars(k)), None)
              for attribute in ("variable_views", "read_variables")]
    source = native.variable_views() if isinstance(native, VariableViews) and owners[0] and (
        owners[1] is None or issubclass(owners[0], owners[1])) else model.variables
    state = model.optimizer_state
    little = "<f4" if dtype == "float32" else "<f8"
    tensors = {name: np.ascontiguousarray(value, dtype=little) for name, value in source.items()}
    slots = {} if state is None else {f"{OPTIMIZER_PREFIX}{name}": np.ascontiguousarray(
        value, dtype=little) for name, value in state.slots.items()}
    if state is not None and (problems := state_problems(state, model.spec.variable_shapes())):
        raise CheckpointError(f"cannot save {os.fspath(path)}: model.optimizer_state does not "
                              "fit the model: " + "; ".join(problems))
    blank = "x" * len(_DIGESTS[checksum](b""))  # as wide as a digest, never a valid one

    def entries(arrays: Mapping[str, npt.NDArray[Any]],
                digests: Mapping[str, str] | None) -> dict[str, Any]:
        return {name: {"shape": list(array.shape), "dtype": dtype,
                       checksum: digests[name] if digests else blank}
                for name, array in arrays.items()}

    def metadata(digests: Mapping[str, str] | None) -> dict[str, str]:
        manifest = {
            "format": FORMAT, "format_version": FORMAT_VERSION, "mlpcore_version": __version__,
            "backend": model.backend.name, "backend_version": model.backend.framework_version(),
            "dtype": dtype, "spec": model.spec.to_dict(), "loss": model.loss,
            "variables": entries(tensors, digests)}
        if state is not None:  # {"name": "Adam", "lr": …, "betas": […], "eps": …, "step": …}
            manifest["optimizer"] = {"name": type(state.optimizer).__name__, **{
                key: list(value) if isinstance(value, tuple) else value
                for key, value in vars(state.optimizer).items()}, "step": state.step,
                "epoch": state.epoch, "seed": state.seed, "slots": entries(slots, digests)}
        text = _json(manifest)
        return {MANIFEST_KEY: text,
                MANIFEST_CHECKSUM_KEY: _DIGESTS["crc32"](text.encode()) if digests else "x" * 8}

    # Checksums computed while safetensors writes and the data is synced (both release the GIL),
    # then put in the header: 400 MB took 0.53 s with them computed first, 0.34 s so, against
    # 0.34 s for save_file + fsync (the goal is 1.2x).
    everything = {**tensors, **slots}
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        digests = pool.submit(lambda: {n: _DIGESTS[checksum](a) for n, a in everything.items()})
        return write_safetensors(Path(os.fspath(path)), everything, metadata(None),
                                 final=lambda: metadata(digests.result()))


def _optimizer_state(entry: dict[str, Any], slots: Mapping[str, FloatArray]) -> OptimizerState:
    """The state of a manifest's ``optimizer`` entry (checked by :func:`_manifest`), its slots
    the tensors ``slots`` (by tensor name)."""
    config: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.items()
                              if k not in ("name", "step", "epoch", "seed", "slots")}
    return OptimizerState(_OPTIMIZERS[entry["name"]](**config), entry["step"],
                          {name.removeprefix(OPTIMIZER_PREFIX): slots[name]
                           for name in entry["slots"]}, entry["epoch"], entry.get("seed"))


def write_safetensors(target: Path, tensors: Mapping[str, npt.NDArray[Any]],
                      metadata: dict[str, str] | None = None, *,
                      final: Callable[[], dict[str, str]] | None = None) -> Path:
    """Write a safetensors file with safetensors' own serializer, atomically. ``final()``, as
    long as ``metadata`` when serialized, replaces it in key order once the data is written
    (safetensors writes metadata from a hash map, in any order)."""
    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.items()}

    def write(folder: Path) -> list[tuple[Path, Path]]:
        file = folder / target.name
        safetensors.numpy.save_file(arrays, file, metadata=metadata)
        if metadata and final:
            fsync(file)  # while final() is computed; then only the header is left to sync
            text = _json(dict(sorted(final().items()))).encode()
            with open(file, "r+b") as stream:
                header = stream.read(int.from_bytes(stream.read(8), "little"))
                start = header.find(b'"__metadata__":') + 15  # its two keys in either order
                if header[start:start + len(text)] not in (_json(order).encode() for order in (
                        metadata, dict(reversed(metadata.items())))) or start < 15:
                    raise CheckpointError(f"cannot save {target}: unexpected safetensors header")
                stream.seek(8 + start)
                stream.write(text)
        return [(file, target)]

    return write_atomically(target, write, errors=(safetensors.SafetensorError,))


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def read_safetensors(path: Path) -> tuple[dict[str, str], Arrays]:
    """``__metadata__`` and the tensors of the safetensors file at ``path``, as read-only views
    of a memory map (which outlives the file's replacement), once the header passes the checks
    of docs/checkpoint-format.md ("Verified read"); no data is read before. The map, not
    ``safe_open``, because the backend's copy is then the only one: 400 MB into the NumPy
    backend took 0.29 s so, 0.56 s through ``safe_open``'s copy; ``load_file`` alone 0.26 s."""
    if path.is_symlink():
        raise CheckpointError(f"checkpoint {path} is a symbolic link (to {os.readlink(path)}); "
                              "mlpcore does not follow links to checkpoints: pass the real path")
    if not path.exists() or path.is_dir():
        raise CheckpointError(f"checkpoint {path} is a directory, not a file" if path.exists()
                              else f"checkpoint file {path} does not exist")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                     | getattr(os, "O_NONBLOCK", 0))
    except OSError as err:
        raise CheckpointError(f"cannot read checkpoint {path}: {err}") from err
    with os.fdopen(fd, "rb", buffering=0) as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise CheckpointError(f"checkpoint {path} is not a regular file")
        size, head = os.fstat(fd).st_size, stream.read(9)
        length = int.from_bytes(head[:8], "little")
        invalid = f"checkpoint {path} is not a valid safetensors file"
        if head[8:9] != b"{" and head[:1] == b"\x80":
            raise CheckpointError(f"checkpoint {path} is a Python pickle, not a safetensors file; "
                                  "mlpcore never unpickles a checkpoint (a pickle can run code)")
        if head[8:9] != b"{" and head[:4] == b"PK\x03\x04":
            raise CheckpointError(f"checkpoint {path} is a zip archive (a torch.save file?), not "
                                  "a safetensors file; import it with format='torch-state-dict'")
        if size < 8:
            raise CheckpointError(f"{invalid}: it has {size} bytes, fewer than the 8-byte header "
                                  "length field")
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise CheckpointError(
                f"{invalid} (truncated or corrupt): its header length field says {length} "
                f"bytes, but {size - 8} bytes follow it and at most {MAX_HEADER_BYTES} are allowed")
        stream.seek(8)
        try:
            header = _parse_json(stream.read(length).decode("utf-8"), f"{invalid}: its header")
        except UnicodeDecodeError as err:
            raise CheckpointError(f"{invalid}: its header is not UTF-8 ({err})") from err
        if not isinstance(header, dict):
            raise CheckpointError(f"{invalid}: its header is a JSON {type(header).__name__}, "
                                  "not an object")
        metadata = header.pop("__metadata__", {})
        if not isinstance(metadata, dict) or not all(isinstance(v, str)
                                                     for v in metadata.values()):
            raise CheckpointError(f"{invalid}: __metadata__ must map strings to strings")
        entries = {name: _entry(path, name, entry) for name, entry in header.items()}
        position, previous, data = 0, "the start of the data", size - 8 - length
        for name, (_, _, begin, end) in sorted(entries.items(), key=lambda item: item[1][2:]):
            if begin != position:
                problem = f"overlaps {previous}" if begin < position else \
                    f"leaves a gap of {begin - position} bytes after {previous}"
                raise CheckpointError(f"checkpoint {path}: tensor {name!r} (bytes {begin}-{end} "
                                      f"of the data) {problem}")
            position, previous = end, f"tensor {name!r}"
        if position != data:
            extra = f": {data - position} bytes follow the last tensor (appended data?)"
            raise CheckpointError(f"{invalid} (truncated or corrupt): its tensors need "
                                  f"{position} bytes of data but the file holds {data}"
                                  + (extra if position < data else ""))
        buffer = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
    return metadata, {name: np.frombuffer(buffer, _DTYPES[dtype], math.prod(shape),
                                          8 + length + begin).reshape(shape)
                      for name, (dtype, shape, begin, _) in entries.items()}


def _entry(path: Path, name: str, entry: Any) -> tuple[str, tuple[int, ...], int, int]:
    """One header entry (dtype code, shape, data offsets), checked."""
    where = f"checkpoint {path}: tensor {name!r:.{MAX_NAME_LENGTH + 10}}"
    if not 0 < len(name) <= MAX_NAME_LENGTH or _BAD_NAME.search(name):
        raise CheckpointError(f"{where}: a name must have 1 to {MAX_NAME_LENGTH} characters, no "
                              "NUL or other control character, no '..' segment, no leading '/'")
    if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
        raise CheckpointError(f"{where} must have exactly the keys dtype, shape and "
                              f"data_offsets, got {entry!r:.200}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in _DTYPES:
        raise CheckpointError(f"{where} has unknown or unsupported dtype {dtype!r:.40} "
                              f"(known: {', '.join(_DTYPES)})")
    if not _counts(shape, 0, MAX_RANK):
        raise CheckpointError(f"{where} has an invalid shape {shape!r:.200}: expected at most "
                              f"{MAX_RANK} non-negative integers")
    if not _counts(offsets, 2, 2):
        raise CheckpointError(f"{where} has invalid data_offsets {offsets!r:.200}: expected "
                              "[BEGIN, END], non-negative integers")
    begin, end = offsets
    if end < begin:
        raise CheckpointError(f"{where} has data_offsets [{begin}, {end}]: END < BEGIN")
    needed = math.prod(shape) * np.dtype(_DTYPES[dtype]).itemsize
    if needed != end - begin:
        raise CheckpointError(f"{where} is {dtype} {tuple(shape)}, which needs {needed} bytes, "
                              f"but its data_offsets [{begin}, {end}] hold {end - begin}")
    return dtype, tuple(shape), begin, end


def _counts(value: Any, least: int, most: int) -> bool:
    """Whether ``value`` is a list of ``least`` to ``most`` integers in [0, 2**63)."""
    return isinstance(value, list) and least <= len(value) <= most and all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**63 for v in value)


def read_checkpoint(path: PathArg, *, mmap: bool = False) -> Checkpoint:
    """Read and verify the checkpoint at ``path``: variables as writable copies, or (``mmap``)
    the read-only views of :func:`read_safetensors`; every problem is listed in one
    :class:`CheckpointError`. Fit to a spec: :func:`check_fit`."""
    file = Path(os.fspath(path))
    metadata, tensors = read_safetensors(file)
    manifest, spec = _manifest(file, metadata)
    optimizer = manifest.get("optimizer")
    recorded: dict[str, dict[str, Any]] = {**manifest["variables"],
                                           **(optimizer["slots"] if optimizer else {})}
    problems = [f"tensor {name!r} is in the file but not in the manifest"
                for name in tensors if name not in recorded]
    problems += [f"variable {name!r} is in the manifest but has no tensor in the file"
                 for name in recorded if name not in tensors]
    for name, entry in recorded.items():
        if (dtype := entry.get("dtype")) != manifest["dtype"]:
            problems.append(f"variable {name!r} has dtype {dtype} but the checkpoint dtype is "
                            f"{manifest['dtype']}")
        if name in tensors and (tensors[name].dtype.name, list(tensors[name].shape)) != (
                dtype, entry["shape"]):
            problems.append(f"tensor {name!r} is {tensors[name].dtype.name} "
                            f"{shape_text(tensors[name].shape)} in the file, but the manifest "
                            f"records {dtype} {shape_text(entry['shape'])}")
    for name, entry in recorded.items() if not problems else ():
        algorithm = next(a for a in _DIGESTS if a in entry)
        if (found := _DIGESTS[algorithm](tensors[name])) != entry[algorithm]:
            problems.append(f"variable {name!r} fails its checksum ({algorithm} of the data is "
                            f"{found}, the manifest records {entry[algorithm]}): the tensor "
                            "data is corrupt")
    if problems:
        raise CheckpointError(listing(f"checkpoint {file} is damaged or inconsistent", problems))
    arrays = {name: tensors[name] if mmap else np.array(tensors[name]) for name in recorded}
    state = None if optimizer is None else _optimizer_state(optimizer, arrays)
    if state is not None and (problems := state_problems(state, spec.variable_shapes())):
        raise CheckpointError(listing(f"checkpoint {file} holds an optimizer state that does not "
                                      "fit its spec", problems))
    return Checkpoint(file, manifest, spec, {name: arrays[name] for name in manifest["variables"]},
                      state)


def load(path: PathArg, backend: str | Backend | None = None, *, dtype: str | None = None,
         mmap: bool = True, device: str | None = None) -> MLP:
    """A model with the checkpoint's spec and variables, on ``backend`` and ``device`` (default:
    the CPU), in ``dtype`` (default: the checkpoint's; bfloat16 and float16 keep float32
    masters; :func:`cast_variables`), and its ``optimizer_state`` if the file holds one (the next
    ``fit`` with that optimizer continues it). Every misfit to its own spec is reported together.
    With ``mmap`` the backend's own arrays are the only full copy."""
    from mlpcore.model import MLP

    checkpoint = read_checkpoint(path, mmap=mmap)
    check_fit(checkpoint, checkpoint.spec, "its own spec")
    model_dtype = check_compute_dtype(dtype) if dtype is not None else checkpoint.dtype
    master = master_dtype(model_dtype)
    values = cast_variables(checkpoint.path, checkpoint.variables, master)
    model = MLP.from_variables(checkpoint.spec, values, backend=backend, dtype=model_dtype,
                               device=device)
    model.loss = checkpoint.manifest.get("loss", model.loss)  # optional: older files lack it
    model.optimizer_state = optimizer_state(checkpoint, master)
    return model


def optimizer_state(checkpoint: Checkpoint, dtype: DTypeName) -> OptimizerState | None:
    """The checkpoint's optimizer state (``None`` if it holds none), its slots copied and cast to
    ``dtype`` (a model's master dtype), as :func:`load` gives a model."""
    state = checkpoint.optimizer_state
    if state is None:
        return None
    slots = {name: np.array(value) for name, value in state.slots.items()}
    return OptimizerState(state.optimizer, state.step,
                          cast_variables(checkpoint.path, slots, dtype), state.epoch, state.seed)


def check_fit(checkpoint: Checkpoint, spec: MLPSpec, target: str) -> None:
    """Refuse a checkpoint whose variables are not exactly ``spec``'s, listing every missing,
    unexpected and wrong-shaped one (``target`` names ``spec`` in the message)."""
    expected = spec.variable_shapes()
    found = {name: tuple(array.shape) for name, array in checkpoint.variables.items()}
    lines = [f"missing: {n} {shape_text(s)}" for n, s in expected.items() if n not in found]
    lines += [f"unexpected: {n} {shape_text(s)}" for n, s in found.items() if n not in expected]
    lines += [f"wrong shape: {n} is {shape_text(found[n])} in the checkpoint, {shape_text(s)} in "
              f"{target}" for n, s in expected.items() if found.get(n, s) != s]
    if lines:
        raise CheckpointError(listing(f"checkpoint {checkpoint.path} does not fit {target} with "
                                      f"sizes {shape_text(spec.sizes)}", lines))


def cast_variables(file: Path, variables: Mapping[str, npt.NDArray[Any]],
                   dtype: DTypeName) -> dict[str, FloatArray]:
    """``variables`` in ``dtype``; a value too large for it is refused, naming ``file``."""
    with np.errstate(over="ignore"):
        values = {name: array if array.dtype == np.dtype(dtype) else array.astype(dtype)
                  for name, array in variables.items()}
    overflowed = [name for name, value in values.items() if value is not variables[name]
                  and np.any(np.isfinite(variables[name]) & ~np.isfinite(value))]
    if overflowed:
        raise CheckpointError(f"checkpoint {file}: values of {', '.join(overflowed)} are too large "
                              f"for {dtype} and would become infinite")
    return values


def shape_text(shape: tuple[int, ...] | list[int]) -> str:
    """``(4, 3)``, ``(3,)``: a shape as Python writes a tuple."""
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _manifest(file: Path, metadata: dict[str, str]) -> tuple[dict[str, Any], MLPSpec]:
    """The manifest of ``metadata`` and its spec, checked; all invalid fields listed at once."""
    text, here = metadata.get(MANIFEST_KEY), f"checkpoint {file}:"
    if text is None:
        raise CheckpointError(f"{file} is a safetensors file without an mlpcore manifest (not "
                              "written by mlpcore.save): import it with format='safetensors'")
    manifest = _parse_json(text, f"{here} the mlpcore manifest")
    fields: dict[str, Any] = manifest if isinstance(manifest, dict) else {}
    version, missing = fields.get("format_version"), [
        key for key in ("format", "format_version") if key not in fields]
    reference = next((v for v, _ in _nodes(fields) if isinstance(v, str)
                      and _IMPORT_REFERENCE.match(v)), None)
    problem = (
        f"{here} the mlpcore manifest must be a JSON object, got {type(manifest).__name__}"
        if not isinstance(manifest, dict)
        else f"{here} the manifest names an importable object {reference!r} (module:callable); "
        "mlpcore never imports or calls anything a file names, and refuses such a manifest"
        if reference is not None
        else f"{here} the mlpcore manifest has no {missing[0]!r} field" if missing
        else f"{here} manifest format is {fields['format']!r}, expected {FORMAT!r}"
        if fields["format"] != FORMAT
        else f"{here} manifest format_version must be an integer, got {version!r}"
        if isinstance(version, bool) or not isinstance(version, int)
        else f"checkpoint {file} has format_version {version}, which mlpcore {__version__} cannot "
        f"read; supported format versions: {', '.join(map(str, SUPPORTED_FORMAT_VERSIONS))}"
        + (" (written by a newer mlpcore? upgrade mlpcore)" if version > FORMAT_VERSION else "")
        if version not in SUPPORTED_FORMAT_VERSIONS else None)
    if problem:
        raise CheckpointError(problem)
    problems = [f"{key} must be a string, got {fields.get(key)!r}"
                for key in ("mlpcore_version", "backend", "backend_version")
                if not isinstance(fields.get(key), str)]
    if isinstance(fields.get("backend"), str) and not _PLAIN_NAME.match(fields["backend"]):
        problems.append(f"backend must be a plain backend name, got {fields['backend']!r:.80}")
    if fields.get("dtype") not in DTYPES:
        problems.append(f"dtype must be one of {', '.join(DTYPES)}, got {fields.get('dtype')!r}")
    spec: MLPSpec | None = None
    try:
        spec = MLPSpec.from_dict(fields.get("spec"))
    except (ValueError, TypeError) as err:
        problems.append(f"invalid spec: {err}")
    variables = fields.get("variables")
    if not isinstance(variables, dict):
        problems.append(f"variables must be a JSON object, got {type(variables).__name__}")
    allowed = ("sha256",) if version == 1 else tuple(_DIGESTS)
    for name, entry in variables.items() if isinstance(variables, dict) else ():
        problems += _entry_problems(f"variable {name!r}:", entry, allowed, version)
    if "loss" in fields and fields["loss"] not in LOSSES:
        problems.append(f"loss must be one of {', '.join(LOSSES)}, got {fields['loss']!r:.80}")
    if "optimizer" in fields:
        problems += [f"optimizer: {p}" for p in _optimizer_problems(fields["optimizer"],
                                                                    allowed, version)]
    if problems or spec is None:
        raise CheckpointError(listing(f"checkpoint {file} has an invalid manifest", problems))
    recorded, found = metadata.get(MANIFEST_CHECKSUM_KEY), _DIGESTS["crc32"](text.encode())
    if recorded != found and not (version == 1 and recorded is None):
        raise CheckpointError(
            f"{here} the manifest fails its checksum (crc32 of the manifest text is {found}, "
            f"{MANIFEST_CHECKSUM_KEY} records {recorded!r}): the header is corrupt")
    return fields, spec


def _entry_problems(where: str, entry: Any, allowed: tuple[str, ...], version: Any) -> list[str]:
    """What is wrong with one tensor's manifest entry (shape and one checksum)."""
    if not isinstance(entry, dict):
        return [f"{where} entry must be a JSON object, got {type(entry).__name__}"]
    problems, present = [], [a for a in _DIGESTS if a in entry]
    if not _counts(entry.get("shape"), 0, MAX_RANK):
        problems.append(f"{where} shape must be a list of non-negative integers, got "
                        f"{entry.get('shape')!r}")
    if len(present) != 1 or present[0] not in allowed:
        problems.append(f"{where} must record exactly one checksum, one of "
                        f"{', '.join(allowed)} (format version {version}), got "
                        f"{present or 'none'}")
    elif not (isinstance(digest := entry[present[0]], str) and re.fullmatch(
            f"[0-9a-f]{{{len(_DIGESTS[present[0]](b''))}}}", digest)):
        problems.append(f"{where} {present[0]} must be {len(_DIGESTS[present[0]](b''))} "
                        f"lowercase hex digits, got {digest!r}")
    return problems


def _optimizer_problems(entry: Any, allowed: tuple[str, ...], version: Any) -> list[str]:
    """What is wrong with the manifest's ``optimizer`` entry: ``name`` ``"SGD"`` or ``"Adam"``
    with that optimizer's valid fields, ``step`` and ``epoch`` integers >= 0, ``slots`` tensor
    entries named ``optimizer/…``."""
    if not isinstance(entry, dict):
        return [f"must be a JSON object, got {type(entry).__name__}"]
    problems = [f"{key} must be an integer >= 0, got {entry.get(key)!r}"
                for key in ("step", "epoch") if not _counts([entry.get(key)], 1, 1)]
    if entry.get("seed") is not None and not _counts([entry["seed"]], 1, 1):
        problems.append(f"seed must be null or an integer >= 0, got {entry['seed']!r}")
    name, slots = entry.get("name"), entry.get("slots")
    if name not in _OPTIMIZERS:
        problems.append(f"name must be one of {', '.join(_OPTIMIZERS)}, got {name!r}")
    else:
        try:
            _optimizer_state({**entry, "slots": {}}, {})
        except (TypeError, ValueError) as err:
            problems.append(f"invalid {name}: {err}")
    if not isinstance(slots, dict):
        return [*problems, f"slots must be a JSON object, got {type(slots).__name__}"]
    for slot, value in slots.items():
        if not slot.startswith(OPTIMIZER_PREFIX):
            problems.append(f"slot {slot!r} must be named {OPTIMIZER_PREFIX}…")
        problems += _entry_problems(f"slot {slot!r}:", value, allowed, version)
    return problems


def listing(head: str, problems: list[str]) -> str:
    """``head:`` then one ``  - problem`` line per problem: how every error lists problems."""
    return "\n".join([f"{head}:", *(f"  - {problem}" for problem in problems)])


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object's pairs as a dict; ``ValueError`` for a repeated key (found in O(n))."""
    result = dict(pairs)
    if len(result) < len(pairs):
        repeated = Counter(key for key, _ in pairs).most_common(1)[0][0]
        raise ValueError(f"it has the key {repeated!r} more than once")
    return result


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str, what: str) -> Any:
    """``text`` as JSON; refused (``what`` names it) when invalid, with a duplicate key at any
    level, NaN or Infinity, or nested more than :data:`MAX_DEPTH` deep."""
    try:
        value = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
        if max(depth for _, depth in _nodes(value)) <= MAX_DEPTH:
            return value
    except RecursionError:
        pass
    except ValueError as err:
        raise CheckpointError(f"{what} is not valid JSON: {err}") from err
    raise CheckpointError(f"{what} nests deeper than {MAX_DEPTH} levels")


def _nodes(value: Any) -> Iterator[tuple[Any, int]]:
    """Every value within the JSON ``value``, with its depth, without recursion."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        yield item, depth
        children = item.values() if isinstance(item, dict) else item if isinstance(
            item, list) else ()
        stack.extend((child, depth + 1) for child in children)
