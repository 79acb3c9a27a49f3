"""mlpcore: a multilayer perceptron with one contract and interchangeable framework backends.

Importing this package imports NumPy, pluggy and safetensors only; a backend's framework is
imported the first time that backend is requested.
"""

from typing import TYPE_CHECKING, Any

from mlpcore.backend import CONTRACT_VERSION, Backend, Capability
from mlpcore.errors import (
    BackendLoadError,
    BackendNotFoundError,
    CheckpointError,
    DataError,
    InvalidInputError,
    MlpcoreError,
)
from mlpcore.initialisers import GlorotUniform, Normal, TruncatedNormal, Zeros, initial_variables
from mlpcore.model import MLP, Evaluation
from mlpcore.optimizers import SGD
from mlpcore.registry import backend_statuses, get_backend, list_backends
from mlpcore.regularisers import L1, L2
from mlpcore.spec import MLPSpec
from mlpcore.training import EpochRecord, History, fit
from mlpcore.version import __version__

if TYPE_CHECKING:
    from mlpcore.checkpoint import load, load_into, read_checkpoint, save

_LAZY = {"load", "load_into", "read_checkpoint", "save"}


def __getattr__(name: str) -> Any:
    """Checkpoint functions load safetensors on first use, keeping ``import mlpcore`` quick."""
    if name in _LAZY:
        from mlpcore import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module 'mlpcore' has no attribute {name!r}")


__all__ = [
    "CONTRACT_VERSION",
    "L1",
    "L2",
    "MLP",
    "SGD",
    "Backend",
    "BackendLoadError",
    "BackendNotFoundError",
    "Capability",
    "CheckpointError",
    "DataError",
    "EpochRecord",
    "Evaluation",
    "GlorotUniform",
    "History",
    "InvalidInputError",
    "MLPSpec",
    "MlpcoreError",
    "Normal",
    "TruncatedNormal",
    "Zeros",
    "__version__",
    "backend_statuses",
    "fit",
    "get_backend",
    "initial_variables",
    "list_backends",
    "load",
    "load_into",
    "read_checkpoint",
    "save",
]
