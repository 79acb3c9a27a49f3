"""Versions: the installed mlpcore's and the backend contract's (light: imports no NumPy)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mlpcore")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

CONTRACT_VERSION = 1
"""The version of the backend contract (:mod:`mlpcore.backend`) that a backend states."""
