"""Checkpoint formats (:class:`~mlpcore.hookspecs.FormatEntry`): read, written, loaded, converted.

Built in: ``"mlpcore"`` and plain ``"safetensors"``; plugins add more through the
``mlpcore_checkpoint_formats`` hook (a failing one is named in "unknown format" errors). A
format's framework is imported only when its reader or writer runs; names are mapped here.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

import numpy as np
import numpy.typing as npt

from mlpcore.errors import CheckpointError
from mlpcore.hookspecs import FormatEntry
from mlpcore.io import checkpoint as ckpt
from mlpcore.io.namemap import collisions, complete_model, select, spec_from
from mlpcore.registry import call_hook
from mlpcore.spec import check_dtype

if TYPE_CHECKING:
    from mlpcore.backend import Backend
    from mlpcore.model import MLP

__all__ = ["BUILTIN_FORMATS", "convert", "default_map", "detect_format", "export_checkpoint",
           "formats", "import_model", "import_variables", "load_into", "read_variables"]

PathArg = str | os.PathLike[str]
Arrays = dict[str, npt.NDArray[Any]]
_HERE: Final = "mlpcore.io.interop"
_CANONICAL_MAP: Final = "mlpcore.io.namemap:canonical_map"

BUILTIN_FORMATS: Final = (
    FormatEntry(name="mlpcore", description="mlpcore checkpoint: safetensors with a manifest "
                "(mlpcore.save)", reader=f"{_HERE}:read_mlpcore", sniff=f"{_HERE}:sniff_mlpcore",
                default_map=_CANONICAL_MAP, extensions=(".safetensors",)),
    FormatEntry(name="safetensors", description="plain safetensors file without an mlpcore "
                "manifest", reader=f"{_HERE}:read_plain", sniff=f"{_HERE}:sniff_plain",
                writer="mlpcore.io.checkpoint:write_safetensors", default_map=_CANONICAL_MAP,
                extensions=(".safetensors",)),
)


@functools.cache
def _discover() -> tuple[dict[str, FormatEntry], tuple[str, ...]]:
    """The formats by name (built-in first) and the plugins' failures, found once."""
    entries = {entry.name: entry for entry in BUILTIN_FORMATS}
    failures: list[str] = []
    for label, offered in call_hook("mlpcore_checkpoint_formats"):
        if isinstance(offered, Exception):
            failures.append(f"{label}: {type(offered).__name__}: {offered}")
        elif not isinstance(offered, list | tuple) or not all(
                isinstance(e, FormatEntry) for e in offered):
            failures.append(f"{label}: mlpcore_checkpoint_formats() must return a list of "
                            "FormatEntry")
        else:  # the first plugin to offer a name keeps it
            failures += [f"{label}: format {e.name!r} is already provided" for e in offered
                         if entries.setdefault(e.name, e) is not e]
    return entries, tuple(failures)


def formats() -> dict[str, FormatEntry]:
    """Every known format by name: the built-in ones first, then the plugins'."""
    return dict(_discover()[0])


def _resolve(reference: str, entry: FormatEntry) -> Callable[..., Any]:
    """``entry``'s callable ``"module:attribute"``, once its framework is found installed."""
    if entry.framework and importlib.util.find_spec(entry.framework.partition(".")[0]) is None:
        raise CheckpointError(f"the {entry.name} format needs {entry.framework}, which is not "
                              "installed; install it with: "
                              f"{entry.install_hint or f'pip install {entry.framework}'}")
    module, _, attribute = reference.partition(":")
    return cast("Callable[..., Any]", getattr(importlib.import_module(module), attribute))


def detect_format(path: PathArg, *, writing: bool = False,
                  format: str | None = None) -> FormatEntry:
    """The format named ``format``, else that of ``path``: by its contents when reading
    (sniffers in order, built-in first), else by the first format claiming its extension."""
    file = Path(os.fspath(path))
    known, failures = _discover()
    if format is not None and format not in known:
        failed = f"; plugins that failed: {'; '.join(failures)}" if failures else ""
        raise CheckpointError(f"unknown checkpoint format {format!r}; known formats: "
                              f"{', '.join(known)}{failed}")
    if format is not None:
        return known[format]
    for entry in known.values() if not writing else ():
        with contextlib.suppress(Exception):  # a sniffer that fails does not recognise the file
            if entry.sniff is not None and _resolve(entry.sniff, entry)(file):
                return entry
    if not (writing or file.exists() or file.is_symlink() or Path(f"{file}.index").exists()):
        raise CheckpointError(f"checkpoint {file} does not exist")
    for entry in known.values():
        if file.name.lower().endswith(entry.extensions or ("\0",)):
            return entry
    raise CheckpointError(
        f"cannot tell the format of {file} from its {'name' if writing else 'contents or name'};"
        f" name it with format=... (--from/--to on the command line); known formats: "
        + ", ".join(f"{e.name} ({', '.join(e.extensions) or 'no extension'})"
                    for e in known.values()))


def read_variables(path: PathArg, *, format: str | None = None) -> Arrays:
    """The variables of the checkpoint at ``path`` under their own names, canonical layout."""
    file = Path(os.fspath(path))
    entry = detect_format(file, format=format)
    if entry.reader is None:
        raise CheckpointError(f"the {entry.name} format cannot be read")
    return cast(Arrays, _resolve(entry.reader, entry)(file))


def default_map(entry: FormatEntry, names: list[str]) -> dict[str, str] | None:
    """The format's own source -> canonical map for ``names``, ``None`` when they do not fit."""
    return None if entry.default_map is None else cast(
        "dict[str, str] | None", _resolve(entry.default_map, entry)(names))


def import_variables(path: PathArg, *, format: str | None = None,
                     name_map: Mapping[str, str] | None = None) -> Arrays:
    """The variables of a whole MLP from ``path``, canonical names; ``name_map`` (source ->
    canonical) is needed when the names do not follow the format's convention."""
    file = Path(os.fspath(path))
    entry = detect_format(file, format=format)
    source = read_variables(file, format=entry.name)
    return complete_model(file, source, default_map(entry, list(source)) if name_map is None
                          else name_map, f"{entry.name} ({entry.description})")


def import_model(path: PathArg, backend: str | Backend | None = None, *,
                 format: str | None = None, name_map: Mapping[str, str] | None = None,
                 activation: str | None = None, dtype: str | None = None) -> MLP:
    """A model on ``backend`` with the variables of ``path``, any format. A foreign file records
    no activation: ``activation`` is required (for an mlpcore file it overrides the spec's).
    ``dtype`` defaults to float64 if every variable is, else float32."""
    from mlpcore.model import MLP

    file = Path(os.fspath(path))
    entry = detect_format(file, format=format)
    if entry.name == "mlpcore" and name_map is None and activation is None:
        return ckpt.load(file, backend, dtype=dtype)
    if activation is None and entry.name != "mlpcore":
        raise CheckpointError(
            f"checkpoint {file} is in the {entry.name} format, which does not record the "
            "activation; pass activation='relu', 'sigmoid' or 'tanh' (--activation)")
    if activation is None:
        activation = ckpt.read_checkpoint(file).spec.activation
    values = import_variables(file, format=entry.name, name_map=name_map)
    wide = {array.dtype for array in values.values()} == {np.dtype("float64")}
    model_dtype = check_dtype(dtype or ("float64" if wide else "float32"))
    return MLP.from_variables(spec_from(values, activation),
                              ckpt.cast_variables(file, values, model_dtype), backend=backend,
                              dtype=model_dtype)


def load_into(model: MLP, path: PathArg, *, include: Collection[str] | None = None,
              name_map: Mapping[str, str] | None = None, format: str | None = None) -> None:
    """Replace ``model``'s variables with the checkpoint's (any format), all or nothing: all of
    them, or (finetuning) exactly those ``name_map`` maps (checkpoint name -> model name) and
    ``include`` names. Every misfit is listed in one :class:`CheckpointError` naming the file.

    ``model.optimizer_state`` follows the variables: loading a whole mlpcore checkpoint sets it
    (and ``model.loss``, where the file records one) to the file's, as
    :func:`~mlpcore.io.checkpoint.load` does (``None`` if the file holds none), so a ``fit`` with
    that optimizer continues the saved run; any other load sets it to ``None`` (no state fits a
    mix of old and loaded variables): the next ``fit`` starts afresh."""
    file = Path(os.fspath(path))
    whole = include is None and name_map is None
    try:
        entry = detect_format(file, format=format)
    except CheckpointError:
        if format is not None or not whole:
            raise
        entry = BUILTIN_FORMATS[0]  # let read_checkpoint explain what is wrong with the file
    dtype = check_dtype(model.variable_dtype)
    if entry.name == "mlpcore" and whole:
        checkpoint = ckpt.read_checkpoint(file, mmap=True)
        ckpt.check_fit(checkpoint, model.spec, "the model")
        state = ckpt.optimizer_state(checkpoint, dtype)
        model.assign(ckpt.cast_variables(file, checkpoint.variables, dtype))
        model.optimizer_state = state
        model.loss = checkpoint.manifest.get("loss", model.loss)  # optional: older files lack it
        return
    source = read_variables(file, format=entry.name)
    expected = model.spec.variable_shapes()
    chosen = select(file, source, expected, include=include, name_map=name_map,
                    default=default_map(entry, list(source)) if name_map is None else None)
    if whole and (missing := [name for name in expected if name not in chosen]):
        raise CheckpointError(f"checkpoint {file} does not fit the model with sizes "
                              f"{ckpt.shape_text(model.spec.sizes)}: missing {', '.join(missing)}; "
                              "pass include=[...] or a name_map to load only some variables")
    model.assign({**model.variables, **ckpt.cast_variables(file, chosen, dtype)})
    model.optimizer_state = None


def export_checkpoint(model: MLP, path: PathArg, *, format: str | None = None,
                      name_map: Mapping[str, str] | None = None) -> Path:
    """Write ``model``'s variables to ``path`` in ``format`` (default: by the extension);
    ``name_map`` maps every canonical name to the stored one (default: the format's own)."""
    file = Path(os.fspath(path))
    entry = detect_format(file, writing=True, format=format)
    if entry.name == "mlpcore" and name_map is not None:
        raise CheckpointError(f"cannot save {file}: an mlpcore checkpoint always uses "
                              "canonical names, so it takes no name map")
    if entry.name == "mlpcore":
        return ckpt.save(model, file)
    if entry.writer is None:
        raise CheckpointError(f"cannot save {file}: the {entry.name} format cannot be written")
    variables = model.variables
    names = dict(name_map) if name_map is not None else (
        _resolve(entry.export_names, entry)(list(variables)) if entry.export_names
        else {n: n for n in variables})
    problems = [f"{n!r} is not mapped" for n in variables if n not in names]
    problems += [f"{n!r} is not a variable of the model" for n in names if n not in variables]
    if problems := problems + collisions(names):
        raise CheckpointError(ckpt.listing(f"cannot save {file}: the export name map must map "
                                           "every canonical variable to its own name", problems))
    _resolve(entry.writer, entry)(file, {names[n]: variables[n] for n in variables})
    return file


def convert(source: PathArg, target: PathArg, *, source_format: str | None = None,
            target_format: str | None = None, name_map: Mapping[str, str] | None = None,
            export_map: Mapping[str, str] | None = None, activation: str | None = None) -> Path:
    """Convert ``source`` to ``target`` (formats by contents or extension); ``name_map``:
    source -> canonical, ``export_map``: canonical -> target; an mlpcore target from a foreign
    file needs ``activation``."""
    entry = detect_format(source, format=source_format)
    target_entry = detect_format(target, writing=True, format=target_format)
    if activation is None and target_entry.name != "mlpcore":
        activation = "relu"  # not stored by the target format, only needed to build the model
    model = import_model(source, "numpy", format=entry.name, name_map=name_map,
                         activation=activation)
    return export_checkpoint(model, target, format=target_entry.name, name_map=export_map)


# --- the built-in formats' readers and sniffers (a sniffer that raises says no) ---------------


def read_mlpcore(path: Path) -> Arrays:
    """The verified variables of :func:`~mlpcore.io.checkpoint.read_checkpoint`."""
    return dict(ckpt.read_checkpoint(path, mmap=True).variables)


def read_plain(path: Path) -> Arrays:
    """Copies of every tensor of a plain safetensors file, its header checked first."""
    return {name: np.array(array) for name, array in ckpt.read_safetensors(path)[1].items()}


def sniff_mlpcore(path: Path) -> bool:
    return ckpt.MANIFEST_KEY in ckpt.read_safetensors(path)[0]


def sniff_plain(path: Path) -> bool:
    return ckpt.MANIFEST_KEY not in ckpt.read_safetensors(path)[0]
