"""The exceptions mlpcore raises on purpose (docs/contracts.md, "Errors").

Each also derives from the built-in class a Python programmer would expect, so ``except
ValueError`` keeps working; an invalid argument raises a plain ``ValueError`` naming it.
"""

__all__ = ["BackendLoadError", "BackendNotFoundError", "CheckpointError", "DataError",
           "DeviceError", "DistributedError", "InvalidInputError", "MissingDependencyError",
           "MlpcoreError"]


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


class MissingDependencyError(MlpcoreError, ImportError):
    """An optional package a feature needs is not installed; names the extra to install."""


class DistributedError(MlpcoreError, RuntimeError):
    """A data-parallel run failed: a worker exited, or the others waited past the timeout.
    The message names the rank."""


class DeviceError(MlpcoreError, ValueError):
    """A device name is malformed or names a device the backend cannot use now; the message
    lists the devices it can use."""
