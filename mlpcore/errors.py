"""The exceptions mlpcore raises.

Errors about backends, data, model inputs and checkpoints derive from :class:`MlpcoreError` and
also from the built-in class a Python programmer would expect (``ValueError`` for bad values,
``LookupError`` for unknown names), so ``except ValueError`` keeps working for code that does not
know about mlpcore. An invalid argument to a constructor or function (a negative learning rate, a
dropout rate of 1.5) raises a plain ``ValueError`` naming the argument.
"""

from __future__ import annotations

__all__ = [
    "BackendLoadError",
    "BackendNotFoundError",
    "CheckpointError",
    "DataError",
    "InvalidInputError",
    "MlpcoreError",
]


class MlpcoreError(Exception):
    """Base class of every error raised by mlpcore on purpose."""


class BackendNotFoundError(MlpcoreError, LookupError):
    """No installed backend has the requested name, or its framework is not installed."""


class BackendLoadError(MlpcoreError, RuntimeError):
    """A backend plugin was found but failed to load or to build its backend object."""


class InvalidInputError(MlpcoreError, ValueError):
    """Data handed to a model has the wrong shape, dtype or values."""


class CheckpointError(MlpcoreError, ValueError):
    """A checkpoint cannot be read or written, or does not fit the model; names the file."""


class DataError(MlpcoreError, ValueError):
    """A dataset file is missing, truncated or malformed. The message names the file."""
