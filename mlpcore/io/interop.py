"""Checkpoint formats: mlpcore's own and foreign ones, found through plugins, read and written.

Formats are :class:`~mlpcore.hookspecs.FormatEntry` objects. Two are built in: ``"mlpcore"``
(safetensors + manifest, :mod:`mlpcore.io.checkpoint`) and ``"safetensors"`` (a plain safetensors
file, no manifest, validated by :mod:`mlpcore.io.safetensors_io`). Plugins in the ``mlpcore``
entry-point group add more through the optional ``mlpcore_checkpoint_formats`` hook (the torch
plugin adds ``"torch-state-dict"``, the TensorFlow plugin ``"tf1-saver"`` and
``"tf2-checkpoint"``). No framework is imported until a format's reader or writer is used.

Every foreign variable passes through one canonical form: names ``dense_{i}/weights``
(fan_in, fan_out) and ``dense_{i}/bias`` (fan_out,), NumPy arrays. Readers and writers convert
layouts at their own boundary; this module maps names (:mod:`mlpcore.io.namemap`).

Format plugins are the plugin modules backend discovery (:mod:`mlpcore.registry`) imported, so
``$MLPCORE_DISABLE_PLUGINS`` and its fault isolation hold here too; a plugin whose formats hook
fails is skipped and named in "unknown format" errors.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import numpy.typing as npt

from mlpcore.errors import CheckpointError
from mlpcore.hookspecs import FormatEntry

if TYPE_CHECKING:
    from mlpcore.backend import Backend
    from mlpcore.model import MLP

__all__ = [
    "BUILTIN_FORMATS",
    "convert",
    "detect_format",
    "export_checkpoint",
    "formats",
    "import_model",
    "import_variables",
    "read_variables",
]

PathArg = str | os.PathLike[str]
Arrays = dict[str, npt.NDArray[Any]]

BUILTIN_FORMATS: Final = (
    FormatEntry(
        name="mlpcore",
        description="mlpcore checkpoint: safetensors with a manifest (mlpcore.save)",
        reader="mlpcore.io.interop:read_mlpcore",
        sniff="mlpcore.io.interop:sniff_mlpcore",
        default_map="mlpcore.io.interop:canonical_map",
        export_names="mlpcore.io.interop:identity_names",
        extensions=(".safetensors",),
    ),
    FormatEntry(
        name="safetensors",
        description="plain safetensors file without an mlpcore manifest",
        reader="mlpcore.io.interop:read_safetensors",
        writer="mlpcore.io.interop:write_safetensors",
        sniff="mlpcore.io.interop:sniff_safetensors",
        default_map="mlpcore.io.interop:canonical_map",
        export_names="mlpcore.io.interop:identity_names",
        extensions=(".safetensors",),
    ),
)


@dataclass
class _Formats:
    entries: dict[str, FormatEntry]
    failures: list[str]


_lock = threading.Lock()
_cache: _Formats | None = None


def _discover() -> _Formats:
    """The built-in formats plus those the registry's plugins offer through
    ``mlpcore_checkpoint_formats``: the same plugins as backend discovery, so a disabled or broken
    plugin is skipped here too. A plugin whose hook fails is recorded, never fatal."""
    global _cache
    with _lock:
        if _cache is not None:
            return _cache
        from mlpcore.registry import plugin_modules

        entries = {entry.name: entry for entry in BUILTIN_FORMATS}
        failures: list[str] = []
        for label, module in plugin_modules():
            try:
                hook = getattr(module, "mlpcore_checkpoint_formats", None)
                if hook is None:
                    continue  # the hook is optional
                offered = hook()
                if not isinstance(offered, list | tuple) or not all(
                        isinstance(e, FormatEntry) for e in offered):
                    raise TypeError("mlpcore_checkpoint_formats() must return a list of "
                                    "FormatEntry")
            except Exception as error:  # a broken plugin is reported, never fatal
                failures.append(f"{label}: {type(error).__name__}: {error}")
                continue
            for entry in offered:
                if entry.name in entries:
                    failures.append(f"{label}: format {entry.name!r} is already provided")
                else:
                    entries[entry.name] = entry
        _cache = _Formats(entries, failures)
        return _cache


def formats() -> dict[str, FormatEntry]:
    """Every known format by name: the built-in ones first, then the plugins'."""
    return dict(_discover().entries)


def _resolve(reference: str, entry: FormatEntry) -> Callable[..., Any]:
    if entry.framework is not None:
        top = entry.framework.partition(".")[0]
        if importlib.util.find_spec(top) is None:
            hint = entry.install_hint or f"pip install {entry.framework}"
            raise CheckpointError(f"the {entry.name} format needs {entry.framework}, which is "
                                  f"not installed; install it with: {hint}")
    module, _, attribute = reference.partition(":")
    function: Callable[..., Any] = getattr(importlib.import_module(module), attribute)
    return function


def _entry(name: str) -> FormatEntry:
    known = _discover()
    if name not in known.entries:
        failed = f"; plugins that failed: {'; '.join(known.failures)}" if known.failures else ""
        raise CheckpointError(f"unknown checkpoint format {name!r}; known formats: "
                              f"{', '.join(known.entries)}{failed}")
    return known.entries[name]


def detect_format(path: PathArg, *, writing: bool = False) -> FormatEntry:
    """The format of ``path``: by its contents when reading, else by its extension.

    Sniffers run in order (built-in formats first); when none recognises the file (or when
    ``writing``), the first format claiming the path's extension wins.
    """
    file = Path(os.fspath(path))
    known = _discover().entries
    if not writing:
        for entry in known.values():
            if entry.sniff is None:
                continue
            try:
                if _resolve(entry.sniff, entry)(file):
                    return entry
            except Exception:
                continue
        if not _exists(file):
            raise CheckpointError(f"checkpoint {file} does not exist")
    name = file.name.lower()
    for entry in known.values():
        if any(name.endswith(ext) for ext in entry.extensions):
            return entry
    raise CheckpointError(
        f"cannot tell the format of {file} from its {'name' if writing else 'contents or name'};"
        f" name it with format=... (--from/--to on the command line); known formats: "
        + ", ".join(f"{e.name} ({', '.join(e.extensions) or 'no extension'})"
                    for e in known.values()))


def _exists(file: Path) -> bool:
    return file.exists() or file.is_symlink() or Path(f"{file}.index").exists()


def _format_of(path: Path, format: str | None, writing: bool = False) -> FormatEntry:
    return _entry(format) if format is not None else detect_format(path, writing=writing)


def read_variables(path: PathArg, *, format: str | None = None) -> Arrays:
    """The variables of the checkpoint at ``path`` under their own names, canonical layout."""
    file = Path(os.fspath(path))
    entry = _format_of(file, format)
    if entry.reader is None:
        raise CheckpointError(f"the {entry.name} format cannot be read")
    result: Arrays = _resolve(entry.reader, entry)(file)
    return result


def default_map(entry: FormatEntry, names: list[str]) -> dict[str, str] | None:
    """The format's own source -> canonical map for ``names``, ``None`` when they do not fit."""
    if entry.default_map is None:
        return None
    result: dict[str, str] | None = _resolve(entry.default_map, entry)(names)
    return result


def import_variables(path: PathArg, *, format: str | None = None,
                     name_map: Mapping[str, str] | None = None) -> Arrays:
    """The variables of a whole MLP from ``path``, under canonical names.

    ``name_map`` (source name -> ``dense_i/weights`` / ``dense_i/bias``) is required when the
    file's names do not follow its format's convention; the error then suggests one.
    """
    from mlpcore.io.namemap import complete_model

    file = Path(os.fspath(path))
    entry = _format_of(file, format)
    source = read_variables(file, format=entry.name)
    default = None if name_map is not None else default_map(entry, list(source))
    return complete_model(file, source, name_map, default, f"{entry.name} ({entry.description})")


def import_model(path: PathArg, backend: str | Backend | None = None, *,
                 format: str | None = None, name_map: Mapping[str, str] | None = None,
                 activation: str | None = None, dtype: str | None = None) -> MLP:
    """A model on ``backend`` holding the variables of the checkpoint at ``path``, any format.

    An mlpcore checkpoint keeps its own spec (``activation`` overrides it when given). A foreign
    file records no activation, so ``activation`` is required; the sizes come from the shapes.
    ``dtype`` defaults to the file's (float32 or float64).
    """
    from mlpcore.io.checkpoint import _cast_all, load, read_checkpoint
    from mlpcore.io.namemap import spec_from
    from mlpcore.model import MLP
    from mlpcore.spec import check_dtype

    file = Path(os.fspath(path))
    entry = _format_of(file, format)
    if entry.name == "mlpcore" and name_map is None and activation is None:
        return load(file, backend, dtype=dtype)
    if activation is None:
        if entry.name != "mlpcore":
            raise CheckpointError(
                f"checkpoint {file} is in the {entry.name} format, which does not record the "
                "activation; pass activation='relu', 'sigmoid' or 'tanh' (--activation)")
        activation = read_checkpoint(file).spec.activation
    values = import_variables(file, format=entry.name, name_map=name_map)
    spec = spec_from(values, activation)
    kinds = {array.dtype for array in values.values()}
    model_dtype = check_dtype(dtype) if dtype is not None else (
        "float64" if kinds == {np.dtype("float64")} else "float32")
    cast = _cast_all(file, values, check_dtype(model_dtype))
    return MLP.from_variables(spec, cast, backend=backend, dtype=model_dtype)


def export_checkpoint(model: MLP, path: PathArg, *, format: str | None = None,
                      name_map: Mapping[str, str] | None = None) -> Path:
    """Write ``model``'s variables to ``path`` in ``format`` (by default, from the extension).

    ``name_map`` maps canonical names to the names stored (all of them must be mapped); without
    it the format's own convention is used. Returns the path.
    """
    from mlpcore.io.checkpoint import save

    file = Path(os.fspath(path))
    entry = _format_of(file, format, writing=True)
    if entry.name == "mlpcore":
        if name_map is not None:
            raise CheckpointError(f"cannot save {file}: an mlpcore checkpoint always uses "
                                  "canonical names, so it takes no name map")
        return save(model, file)
    if entry.writer is None:
        raise CheckpointError(f"cannot save {file}: the {entry.name} format cannot be written")
    variables = model.variables
    names = dict(name_map) if name_map is not None else (
        _resolve(entry.export_names, entry)(list(variables)) if entry.export_names
        else {n: n for n in variables})
    missing = [n for n in variables if n not in names]
    unknown = [n for n in names if n not in variables]
    if missing or unknown:
        raise CheckpointError(
            f"cannot save {file}: the export name map must map every canonical variable"
            + (f"; not mapped: {', '.join(missing)}" if missing else "")
            + (f"; not variables of the model: {', '.join(unknown)}" if unknown else ""))
    if len(set(names.values())) != len(names):
        raise CheckpointError(f"cannot save {file}: the export name map gives one name twice")
    _resolve(entry.writer, entry)(file, {names[n]: variables[n] for n in variables})
    return file


def convert(source: PathArg, target: PathArg, *, source_format: str | None = None,
            target_format: str | None = None, name_map: Mapping[str, str] | None = None,
            export_map: Mapping[str, str] | None = None, activation: str | None = None) -> Path:
    """Convert the checkpoint ``source`` to ``target``, each format by contents or extension.

    ``name_map`` maps the source's names to canonical ones (as for :func:`import_variables`),
    ``export_map`` canonical names to the target's. Writing an mlpcore checkpoint from a
    foreign file needs ``activation`` (the foreign file does not record it).
    """
    src = Path(os.fspath(source))
    entry = _format_of(src, source_format)
    dst_entry = _format_of(Path(os.fspath(target)), target_format, writing=True)
    if activation is None and dst_entry.name != "mlpcore":
        activation = "relu"  # not stored by the target format, only needed to build the model
    model = import_model(src, "numpy", format=entry.name, name_map=name_map,
                         activation=activation)
    return export_checkpoint(model, target, format=dst_entry.name, name_map=export_map)


# --- the built-in formats ---------------------------------------------------------------------


def read_mlpcore(path: Path) -> Arrays:
    """Reader of the ``mlpcore`` format: the verified variables of :func:`read_checkpoint`."""
    from mlpcore.io.checkpoint import read_checkpoint

    return dict(read_checkpoint(path, mmap=True).variables)


def sniff_mlpcore(path: Path) -> bool:
    """A safetensors file whose ``__metadata__`` has the ``"mlpcore"`` manifest key."""
    keys = _metadata_keys(path)
    return keys is not None and "mlpcore" in keys


def sniff_safetensors(path: Path) -> bool:
    """A safetensors file without an mlpcore manifest."""
    keys = _metadata_keys(path)
    return keys is not None and "mlpcore" not in keys


def _metadata_keys(path: Path) -> set[str] | None:
    from mlpcore.io.safetensors_io import open_regular, read_layout, sniff

    if not path.is_file() or path.is_symlink() or not sniff(path):
        return None
    try:
        with open_regular(path) as stream:
            return set(read_layout(stream, path).metadata)
    except CheckpointError:
        return None


def read_safetensors(path: Path) -> Arrays:
    """Reader of plain safetensors: every tensor, validated, as writable float arrays."""
    from mlpcore.io.safetensors_io import open_regular, read_layout, read_tensors

    with open_regular(path) as stream:
        layout = read_layout(stream, path)
        return read_tensors(stream, layout)


def write_safetensors(path: Path, variables: Mapping[str, npt.NDArray[Any]]) -> None:
    """Writer of plain safetensors, atomic (:func:`mlpcore.io.atomic.atomic_write`)."""
    from mlpcore.io.atomic import atomic_write
    from mlpcore.io.safetensors_io import write_container

    arrays = {name: np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
              for name, a in variables.items()}
    atomic_write(path, lambda stream: write_container(stream, arrays))


def canonical_map(names: list[str]) -> dict[str, str] | None:
    """The identity map when every name is canonical, else ``None``."""
    from mlpcore.io.namemap import CANONICAL

    return {n: n for n in names} if all(CANONICAL.match(n) for n in names) else None


def identity_names(names: list[str]) -> dict[str, str]:
    """Store canonical names as they are."""
    return {n: n for n in names}
