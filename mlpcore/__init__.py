"""mlpcore: a multilayer perceptron with one contract and interchangeable framework backends.

``import mlpcore`` imports the registry only (pluggy, the standard library), so listing backends
starts quickly; every other public name and submodule is imported on first use (NumPy with it),
and a backend's framework when that backend is first requested.

PYTEST_DONT_REWRITE: ``mlpcore conformance`` imports this package before pytest starts, and it
has no asserts to rewrite, so pytest need not warn that it cannot.
"""

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

from mlpcore.errors import (
    BackendLoadError,
    BackendNotFoundError,
    CheckpointError,
    DataError,
    DeviceError,
    DistributedError,
    InvalidInputError,
    MissingDependencyError,
    MlpcoreError,
)
from mlpcore.registry import backend_statuses, get_backend, list_backends
from mlpcore.version import CONTRACT_VERSION, __version__

if TYPE_CHECKING:
    from mlpcore.backend import Backend, Capability
    from mlpcore.callbacks import EarlyStopping, HistoryLogger, ModelCheckpoint, read_history
    from mlpcore.distributed import DataParallel
    from mlpcore.initialisers import (
        GlorotUniform,
        Normal,
        TruncatedNormal,
        Zeros,
        initial_variables,
    )
    from mlpcore.io.checkpoint import load, read_checkpoint, save
    from mlpcore.io.interop import load_into
    from mlpcore.model import MLP, Evaluation
    from mlpcore.optimizers import SGD, Adam, OptimizerState
    from mlpcore.regularisers import L1, L2
    from mlpcore.spec import MLPSpec
    from mlpcore.training import Callback, EpochRecord, History, TrainingRun, fit

_LAZY = {
    "Backend": "backend", "Capability": "backend", "DataParallel": "distributed",
    "EarlyStopping": "callbacks", "HistoryLogger": "callbacks", "ModelCheckpoint": "callbacks",
    "read_history": "callbacks",
    "load": "io.checkpoint", "load_into": "io.interop", "read_checkpoint": "io.checkpoint",
    "save": "io.checkpoint",
    "GlorotUniform": "initialisers", "Normal": "initialisers",
    "TruncatedNormal": "initialisers", "Zeros": "initialisers",
    "initial_variables": "initialisers",
    "MLP": "model", "Evaluation": "model",
    "SGD": "optimizers", "Adam": "optimizers", "OptimizerState": "optimizers",
    "L1": "regularisers", "L2": "regularisers",
    "MLPSpec": "spec",
    "Callback": "training", "EpochRecord": "training", "History": "training",
    "TrainingRun": "training", "fit": "training",
}
"""Public names imported from their module (``mlpcore.<module>``) on first use."""


def __getattr__(name: str) -> Any:
    """A public name of :data:`_LAZY`, or a submodule, imported on first use."""
    module = _LAZY.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f"mlpcore.{module}"), name)
        globals()[name] = value  # later lookups skip this function
        return value
    if (name.isidentifier() and not name.startswith("_")
            and importlib.util.find_spec(f"mlpcore.{name}") is not None):
        return importlib.import_module(f"mlpcore.{name}")
    raise AttributeError(f"module 'mlpcore' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "CONTRACT_VERSION", "L1", "L2", "MLP", "SGD", "Adam", "Backend", "BackendLoadError",
    "BackendNotFoundError", "Callback", "Capability", "CheckpointError", "DataError",
    "DataParallel", "DeviceError", "DistributedError", "EarlyStopping", "EpochRecord",
    "Evaluation", "GlorotUniform", "History", "HistoryLogger", "InvalidInputError", "MLPSpec",
    "MissingDependencyError", "MlpcoreError", "ModelCheckpoint", "Normal", "OptimizerState",
    "TrainingRun", "TruncatedNormal", "Zeros", "__version__", "backend_statuses", "fit",
    "get_backend", "initial_variables", "list_backends", "load", "load_into", "read_checkpoint",
    "read_history", "save",
]
