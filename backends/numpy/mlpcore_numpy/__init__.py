"""The NumPy backend of mlpcore: hand-written forward and backward passes, no autodiff."""

from mlpcore_numpy.backend import NumpyBackend

__all__ = ["NumpyBackend"]
