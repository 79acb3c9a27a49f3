"""Name maps (source name -> target name) between a foreign checkpoint's names and canonical
ones, ``dense_{i}/weights`` (fan_in, fan_out) and ``dense_{i}/bias`` (fan_out,). Errors report
every problem at once, with a map suggested from names and shapes (:func:`suggest_map`)."""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

from mlpcore.errors import CheckpointError
from mlpcore.io.checkpoint import listing, shape_text
from mlpcore.spec import MLPSpec, bias_name, weights_name

__all__ = ["CANONICAL", "canonical_map", "collisions", "complete_model", "format_map",
           "parse_map", "select", "spec_from", "suggest_map"]

CANONICAL: Final = re.compile(r"^dense_(0|[1-9][0-9]*)/(weights|bias)$")
"""A canonical variable name; group 1 is the layer index, group 2 the kind."""
_KIND_WORDS: Final = re.compile(r"weights?|kernel|bias(es)?|[wb](?=\W|_|\d|$)", re.IGNORECASE)


def parse_map(pairs: Collection[str]) -> dict[str, str]:
    """``["OLD=NEW", ...]`` (the CLI's ``--map``) as a dict; ``ValueError`` for a malformed one."""
    result: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new:
            raise ValueError(f"a name map entry must look like OLD=NEW, got {pair!r}")
        if old in result:
            raise ValueError(f"the name map gives {old!r} twice")
        result[old] = new
    return result


def canonical_map(names: list[str]) -> dict[str, str] | None:
    """The identity map when every name is canonical, else ``None``."""
    return {n: n for n in names} if all(CANONICAL.match(n) for n in names) else None


def suggest_map(shapes: Mapping[str, tuple[int, ...]]) -> dict[str, str]:
    """A plausible source -> canonical map from names and (canonical) shapes: 2-D tensors
    chained fan_out to fan_in, each with the most similarly named 1-D tensor of its fan_out."""
    def natural(name: str) -> list[Any]:
        return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]

    weights = sorted((n for n, s in shapes.items() if len(s) == 2), key=natural)
    vectors = sorted((n for n, s in shapes.items() if len(s) == 1), key=natural)
    produced = {shapes[n][1] for n in weights}
    chain = ([n for n in weights if shapes[n][0] not in produced] or weights)[:1]
    left = [n for n in weights if n not in chain]
    while chain and (following := [n for n in left if shapes[n][0] == shapes[chain[-1]][1]]):
        chain.append(following[0])
        left.remove(following[0])
    result: dict[str, str] = {}
    for layer, name in enumerate(chain):
        result[name] = weights_name(layer)
        candidates = [v for v in vectors if shapes[v] == (shapes[name][1],) and v not in result]
        if candidates:
            best = max(candidates, key=lambda v: difflib.SequenceMatcher(
                None, _KIND_WORDS.sub("", name), _KIND_WORDS.sub("", v)).ratio())
            result[best] = bias_name(layer)
    return result


def format_map(name_map: Mapping[str, str], shapes: Mapping[str, tuple[int, ...]] | None = None,
               ) -> str:
    """``name_map`` as a Python dict and as CLI flags, for an error message."""
    if not name_map:
        return "  (no suggestion: no 2-D tensor to start from)"
    width = max(len(k) for k in name_map) + 2
    lines = [f"    {old!r:<{width}}: {new!r}," + (f"  # {tuple(shapes[old])}" if shapes and old
                                                  in shapes else "")
             for old, new in name_map.items()]
    flags = " ".join(f"--map '{old}={new}'" for old, new in name_map.items())
    return "  name_map = {\n" + "\n".join(lines) + "\n  }\n  or on the command line:\n    " + flags


def collisions(name_map: Mapping[str, str]) -> list[str]:
    """A problem for each name that ``name_map`` gives to two sources."""
    seen: dict[str, str] = {}
    return [f"{seen[new]!r} and {old!r} are both mapped to {new!r}" for old, new in
            name_map.items() if seen.setdefault(new, old) != old]


def complete_model(file: Path, source: Mapping[str, Any], name_map: Mapping[str, str] | None,
                   convention: str) -> dict[str, Any]:
    """The variables of a whole MLP, canonical names, from ``source`` through ``name_map``
    (``None``: the names do not follow the format's ``convention``)."""
    if name_map is None:
        raise _suggestion_error(file, f"checkpoint {file}: its variable names do not follow the "
                                f"{convention} convention; pass a name map (source name -> "
                                "dense_i/weights or dense_i/bias)", source)
    problems = [f"{old!r} is not in the file" for old in name_map if old not in source]
    problems += [f"{old!r} -> {new!r}: {new!r} is not a canonical name (dense_i/weights or "
                 "dense_i/bias)" for old, new in name_map.items() if not CANONICAL.match(new)]
    problems += collisions(name_map)
    values = {new: source[old] for old, new in name_map.items() if old in source}
    problems = problems or _model_problems(values)
    if problems:
        raise _suggestion_error(file, listing(f"checkpoint {file}: the name map does not give a "
                                              "whole MLP", problems), source)
    return values


def _model_problems(values: Mapping[str, Any]) -> list[str]:
    """What keeps ``values`` (canonical names) from being a whole MLP, whose layer ``i`` has
    weights (d_i, d_{i+1}) and bias (d_{i+1},)."""
    layers = 1 + max((int(m[1]) for n in values if (m := CANONICAL.match(n))), default=-1)
    names = [name for i in range(layers) for name in (weights_name(i), bias_name(i))]
    shapes = {name: np.shape(values[name]) for name in names if name in values}
    problems = [f"missing {name}" for name in names if name not in values] or [
        f"{name} has shape {shape_text(shapes[name])}, expected 2-D" for name in names[::2]
        if len(shapes[name]) != 2]
    if problems or not layers:
        return problems or ["no variable is mapped"]
    d = _sizes(values)
    expected: dict[str, tuple[int, ...]] = {weights_name(i): (d[i], d[i + 1])
                                            for i in range(layers)}
    expected |= {bias_name(i): (d[i + 1],) for i in range(layers)}
    return [f"{name} has shape {shape_text(shapes[name])}, expected {shape_text(shape)}"
            for name, shape in expected.items() if shapes[name] != shape]


def _sizes(values: Mapping[str, Any]) -> tuple[int, ...]:
    """``(d_0, ..., d_L)`` of the weights of ``values``."""
    layers = sum(1 for name in values if name.endswith("/weights"))
    return (int(np.shape(values[weights_name(0)])[0]),
            *(int(np.shape(values[weights_name(i)])[1]) for i in range(layers)))


def _suggestion_error(file: Path, text: str, source: Mapping[str, Any]) -> CheckpointError:
    shapes = {name: tuple(array.shape) for name, array in source.items()}
    listing = "\n".join(f"    {name} {shape_text(shape)}" for name, shape in shapes.items())
    return CheckpointError(
        f"{text}\n  the file holds:\n{listing}\n  suggested name map (from names and shapes; "
        f"check it):\n{format_map(suggest_map(shapes), shapes)}")


def spec_from(values: Mapping[str, Any], activation: str) -> MLPSpec:
    """The spec whose variables ``values`` (a whole MLP, canonical names) are."""
    return MLPSpec(sizes=_sizes(values), activation=activation)  # type: ignore[arg-type]


def select(file: Path, source: Mapping[str, Any], expected: Mapping[str, tuple[int, ...]], *,
           include: Collection[str] | None, name_map: Mapping[str, str] | None,
           default: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The subset of ``source`` to load into a model of variable shapes ``expected``: the
    ``name_map``-ped tensors (default: ``default`` or the names as they are), then only those
    ``include`` names; every problem is reported together, naming both shapes."""
    renamed = dict(name_map if name_map is not None else
                   default if default is not None else {n: n for n in source})
    problems = [f"{old!r} is not in the checkpoint" for old in renamed
                if old not in source and name_map is not None]
    problems += collisions(renamed)
    by_target = {new: old for old, new in renamed.items() if old in source}
    chosen: dict[str, Any] = {}
    for target in include if include is not None else list(by_target):
        old = by_target.get(target)
        if target not in expected:
            problems.append(f"{target!r} is not a variable of the model (it has "
                            f"{', '.join(expected)})")
        elif old is None:
            problems.append(f"{target!r} is not in the checkpoint")
        elif tuple(source[old].shape) != expected[target]:
            label = f"checkpoint {old!r}" if old != target else "the checkpoint"
            problems.append(f"variable {target!r}: {label} has shape "
                            f"{shape_text(source[old].shape)}, the model expects "
                            f"{shape_text(expected[target])}")
        else:
            chosen[target] = source[old]
    if problems or not chosen:
        raise CheckpointError(listing(f"cannot load {file} into the model; nothing was assigned",
                                      problems or ["nothing was selected (empty include list or "
                                                   "name map)"]))
    return chosen
