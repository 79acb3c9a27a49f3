"""The torch ``state_dict`` format, as far as it can be told without importing torch.

A ``torch.save`` file is a zip archive holding ``<name>/data.pkl`` (before torch 1.6, a bare
pickle). An MLP's ``state_dict`` names its layers the ``nn.Sequential`` way: ``0.weight``,
``0.bias``, ``2.weight``, ... (activations hold no variables), maybe under a prefix (``net.``).
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
    """``[prefix]K.weight`` / ``[prefix]K.bias`` -> ``dense_i/...``, ``i`` the rank of ``K``;
    ``None`` unless every name follows the pattern under one prefix and every layer has both."""
    matches = [_SEQUENTIAL.match(name) for name in names]
    if not all(matches) or len({m["prefix"] for m in matches if m}) > 1:
        return None
    indices = sorted({int(m["index"]) for m in matches if m})
    if len(names) != 2 * len(indices):
        return None
    return {m.string: f"dense_{indices.index(int(m['index']))}/"
            f"{'weights' if m['kind'] == 'weight' else 'bias'}" for m in matches if m}


def export_names(canonical: list[str]) -> dict[str, str]:
    """``dense_i/weights`` -> ``{2i}.weight``: the names of ``nn.Sequential(Linear, act, ...)``."""
    return {name: f"{2 * int(name.split('/')[0].removeprefix('dense_'))}."
            f"{'weight' if name.endswith('/weights') else 'bias'}" for name in canonical}
