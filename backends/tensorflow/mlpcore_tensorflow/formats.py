"""TensorFlow checkpoint formats, as far as they can be told without importing TensorFlow.

A checkpoint is a prefix ``P`` naming ``P.index`` (a LevelDB-style table ending with the magic
number ``0xdb4775248b80fb57``) and ``P.data-00000-of-00001``; a path may be ``P``, ``P.index``
or a folder whose ``checkpoint`` state file names ``P``. ``tf1-saver`` (``Saver``) stores one
entry per variable name; ``tf2-checkpoint`` (``tf.train.Checkpoint``) entries by object path and
a ``_CHECKPOINTABLE_OBJECT_GRAPH`` entry, whose key appears literally in the index.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Final

__all__ = ["default_map", "export_names_tf1", "export_names_tf2", "prefix_of", "sniff_tf1",
           "sniff_tf2"]

TABLE_MAGIC: Final = (0xDB4775248B80FB57).to_bytes(8, "little")
OBJECT_GRAPH_KEY: Final = b"_CHECKPOINTABLE_OBJECT_GRAPH"
_TUTORIAL: Final = re.compile(r"^(?P<kind>weights|bias)_(?P<index>\d+)$")
_CANONICAL: Final = re.compile(r"^dense_(?P<index>\d+)/(?P<kind>weights|bias)$")
_STATE_LINE: Final = re.compile(r'^model_checkpoint_path:\s*"(?P<path>[^"]+)"\s*$', re.MULTILINE)


def prefix_of(path: Path) -> Path | None:
    """The checkpoint prefix ``path`` stands for, or ``None`` when it names no TF checkpoint."""
    if path.is_dir():
        state = path / "checkpoint"
        if not state.is_file():
            return None
        match = _STATE_LINE.search(state.read_text(encoding="utf-8", errors="replace"))
        if match is None:
            return None
        prefix = Path(match["path"])
        return prefix if prefix.is_absolute() else path / prefix
    if path.name.endswith(".index"):
        return path.with_name(path.name[: -len(".index")])
    return path if Path(f"{path}.index").is_file() else None


def _sniff(path: Path, object_graph: bool) -> bool:
    """A TensorFlow bundle with (``tf.train.Checkpoint``) or without an object graph (Saver)."""
    prefix = prefix_of(path)
    index = Path(f"{prefix}.index")
    if prefix is None or not index.is_file() or index.is_symlink() \
            or index.stat().st_size > 1 << 30:
        return False
    data = index.read_bytes()
    return data.endswith(TABLE_MAGIC) and (OBJECT_GRAPH_KEY in data) == object_graph


sniff_tf1 = functools.partial(_sniff, object_graph=False)
sniff_tf2 = functools.partial(_sniff, object_graph=True)


def default_map(names: list[str]) -> dict[str, str] | None:
    """``weights_i`` / ``bias_i`` (the tutorial's names) or canonical names, else ``None``."""
    matches = [_TUTORIAL.match(name) or _CANONICAL.match(name) for name in names]
    return {m.string: f"dense_{int(m['index'])}/{m['kind']}" for m in matches if m} if all(
        matches) else None


def export_names_tf1(canonical: list[str]) -> dict[str, str]:
    """``dense_i/weights`` -> ``weights_i``, ``dense_i/bias`` -> ``bias_i`` (the tutorial's)."""
    return {name: f"{kind}_{layer}" for name in canonical
            for layer, kind in [name.removeprefix("dense_").split("/")]}


def export_names_tf2(canonical: list[str]) -> dict[str, str]:
    """Canonical names as object paths: ``checkpoint.dense_0.weights``."""
    return {name: name for name in canonical}
