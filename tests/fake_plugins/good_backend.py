"""The fake good backend: the NumPy backend under another name."""

from mlpcore_numpy.backend import NumpyBackend


class FakeBackend(NumpyBackend):
    name = "fakegood"
