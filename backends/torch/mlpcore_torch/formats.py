"""The torch ``state_dict`` checkpoint format, as far as it can be told without importing torch.

A ``torch.save`` file is a zip archive holding ``<name>/data.pkl`` (or, from torch < 1.6, a bare
pickle). An MLP's ``state_dict`` names its layers the ``nn.Sequential`` way: ``0.weight``,
``0.bias``, ``2.weight``, ... (the activation modules between the ``nn.Linear`` layers hold no
variables), optionally under a common prefix (``net.0.weight``). ``Linear.weight`` is
``(out_features, in_features)``; :mod:`mlpcore_torch.interop` transposes it at the boundary.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Final

__all__ = ["default_map", "export_names", "sniff"]

_SEQUENTIAL: Final = re.compile(r"^(?P<prefix>(?:.*\.)?)(?P<index>\d+)\.(?P<kind>weight|bias)$")


def sniff(path: Path) -> bool:
    """A regular file that is a ``torch.save`` zip archive or a bare pickle."""
    if not path.is_file() or path.is_symlink():
        return False
    with open(path, "rb") as stream:
        magic = stream.read(4)
    if magic[:2] in (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05"):
        return True
    if magic != b"PK\x03\x04":
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("data.pkl") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def default_map(names: list[str]) -> dict[str, str] | None:
    """``[prefix]K.weight`` / ``[prefix]K.bias`` -> ``dense_i/...``, ``i`` the rank of ``K``.

    ``None`` unless every name follows the pattern under one prefix and every layer has both.
    """
    found: dict[str, tuple[str, int, str]] = {}
    for name in names:
        match = _SEQUENTIAL.match(name)
        if match is None:
            return None
        found[name] = (match["prefix"], int(match["index"]), match["kind"])
    if len({prefix for prefix, _, _ in found.values()}) != 1:
        return None
    indices = sorted({index for _, index, _ in found.values()})
    if len(found) != 2 * len(indices):
        return None
    rank = {index: layer for layer, index in enumerate(indices)}
    kinds = {"weight": "weights", "bias": "bias"}
    return {name: f"dense_{rank[index]}/{kinds[kind]}" for name, (_, index, kind) in found.items()}


def export_names(canonical: list[str]) -> dict[str, str]:
    """``dense_i/weights`` -> ``{2i}.weight``: the names of ``nn.Sequential(Linear, act, ...)``."""
    result: dict[str, str] = {}
    for name in canonical:
        layer, _, kind = name.partition("/")
        index = 2 * int(layer.removeprefix("dense_"))
        result[name] = f"{index}.{'weight' if kind == 'weights' else 'bias'}"
    return result
