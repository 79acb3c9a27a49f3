"""TensorFlow checkpoints (``tf1-saver``, ``tf2-checkpoint``, docs/interop.md), read with
``tf.train.load_checkpoint`` (CRC32C-checked; weights already ``(fan_in, fan_out)``; training
bookkeeping left out) and written atomically (:func:`mlpcore.io.atomic.write_atomically`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import tensorflow as tf

from mlpcore.errors import CheckpointError
from mlpcore.io.atomic import write_atomically
from mlpcore_tensorflow.formats import prefix_of

__all__ = ["read_tf1", "read_tf2", "write_tf1", "write_tf2"]

VALUE_SUFFIX: Final = "/.ATTRIBUTES/VARIABLE_VALUE"
_TF1_BOOKKEEPING: Final = re.compile(
    r"^(global_step|beta[12]_power(_\d+)?)$|/(Adam(_\d+)?|Momentum|RMSProp(_\d+)?|Adagrad|"
    r"Ftrl(_\d+)?|ExponentialMovingAverage)$")
_FLOATS: Final = {tf.float32: np.float32, tf.float64: np.float64}


def _reader(path: Path) -> Any:
    prefix = prefix_of(path)
    if prefix is None:
        raise CheckpointError(f"checkpoint {path} is not a TensorFlow checkpoint (no "
                              f"{path}.index file, and no 'checkpoint' state file in it)")
    try:
        return tf.train.load_checkpoint(str(prefix))
    except Exception as error:  # DataLossError, NotFoundError, ...
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise CheckpointError(f"checkpoint {path} cannot be read by TensorFlow: "
                              f"{type(error).__name__}: {first}") from error


def _tensors(path: Path, reader: Any, names: Mapping[str, str]) -> dict[str, npt.NDArray[Any]]:
    dtypes = reader.get_variable_to_dtype_map()
    result: dict[str, npt.NDArray[Any]] = {}
    for stored, name in names.items():
        if dtypes[stored] not in _FLOATS:
            raise CheckpointError(f"checkpoint {path}: variable {name!r} has dtype "
                                  f"{dtypes[stored].name}; mlpcore reads float32 and float64")
        try:
            value = reader.get_tensor(stored)
        except Exception as error:
            raise CheckpointError(f"checkpoint {path}: variable {name!r} cannot be read: "
                                  f"{type(error).__name__}") from error
        result[name] = np.ascontiguousarray(value)
    return result


def read_tf1(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The variables of a ``tf.compat.v1.train.Saver`` checkpoint, by variable name."""
    reader = _reader(path)
    names = sorted(n for n in reader.get_variable_to_shape_map()
                   if not _TF1_BOOKKEEPING.search(n))
    return _tensors(path, reader, {n: n for n in names})


def read_tf2(path: Path) -> dict[str, npt.NDArray[Any]]:
    """The variables of a ``tf.train.Checkpoint`` checkpoint, by object path."""
    reader = _reader(path)
    names = {key: key.removesuffix(VALUE_SUFFIX) for key in sorted(
        reader.get_variable_to_shape_map()) if key.endswith(VALUE_SUFFIX)}
    return _tensors(path, reader, {key: name for key, name in names.items()
                                   if ".OPTIMIZER_SLOT" not in key and name != "save_counter"
                                   and not name.startswith("optimizer/")})


def _write(path: Path, save: Callable[[str], Any]) -> None:
    """``save(prefix)`` writes a bundle; it replaces prefix ``path``'s, data file first."""
    def write(folder: Path) -> list[tuple[Path, Path]]:
        index = Path(f"{save(str(folder / 'ckpt'))}.index")
        data = sorted(folder.glob("ckpt.data-*"))
        if not index.is_file() or not data:
            raise CheckpointError(f"cannot save checkpoint {path}: TensorFlow wrote no bundle")
        return [(file, path.with_name(path.name + file.name[len("ckpt"):])) for file in data] \
            + [(index, Path(f"{path}.index"))]

    write_atomically(path, write, errors=(tf.errors.OpError,))


def write_tf1(path: Path, variables: Mapping[str, npt.NDArray[Any]]) -> None:
    """Save ``variables`` under exactly their names with ``tf.compat.v1.train.Saver``."""
    graph = tf.Graph()
    with graph.as_default():
        held = {name: tf.compat.v1.Variable(np.asarray(value), name=f"v{i}")
                for i, (name, value) in enumerate(variables.items())}
        saver = tf.compat.v1.train.Saver(var_list=held)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.variables_initializer(list(held.values())))

            def save(prefix: str) -> str:
                return str(saver.save(session, prefix, write_meta_graph=False, write_state=False))

            _write(path, save)


def write_tf2(path: Path, variables: Mapping[str, npt.NDArray[Any]]) -> None:
    """Save ``variables`` with ``tf.train.Checkpoint``, one object per segment of each name."""
    root = tf.train.Checkpoint()
    for name, value in variables.items():
        *parents, leaf = name.split("/")
        node: Any = root
        for part in parents:
            if getattr(node, part, None) is None:
                setattr(node, part, tf.Module())
            node = getattr(node, part)
        setattr(node, leaf, tf.Variable(np.asarray(value)))
    _write(path, lambda prefix: root.write(prefix))
