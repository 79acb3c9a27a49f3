"""Shared fixtures and the Hypothesis profiles of the mlpcore test suite.

Profiles: ``ci`` (derandomized, so a CI run is reproducible) is used when ``$CI`` is set, ``dev``
otherwise; ``$HYPOTHESIS_PROFILE`` overrides both.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from mlpcore.registry import ENV_BACKEND, ENV_DISABLE_PLUGINS

settings.register_profile("ci", derandomize=True, deadline=None, max_examples=50,
                          print_blob=True)
settings.register_profile("dev", derandomize=False, deadline=None, max_examples=30)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE")
                      or ("ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(scope="session")
def numpy_backend():  # type: ignore[no-untyped-def]
    """The NumPy backend object, built directly (not through the registry)."""
    from mlpcore_numpy.backend import NumpyBackend

    return NumpyBackend()


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed NumPy generator, so every test is deterministic."""
    return np.random.default_rng(20240601)


@contextlib.contextmanager
def _strict_numerics() -> Iterator[None]:
    # Every warning is an error; NumPy's overflow, invalid-operation and divide-by-zero flags
    # raise. Underflow stays at NumPy's default (ignored): exp(-1000) rounding to 0 is the
    # correctly rounded result, not a numerical problem.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


@pytest.fixture
def strict_numerics() -> Callable[[], AbstractContextManager[None]]:
    """``with strict_numerics(): ...`` turns warnings and floating-point errors into errors."""
    return _strict_numerics


@pytest.fixture
def fake_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make tests/fake_plugins importable with no backend or plugin chosen by the environment,
    and forget its modules after the test."""
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent))
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    monkeypatch.delenv(ENV_DISABLE_PLUGINS, raising=False)
    yield
    for module in [m for m in sys.modules if m == "fake_plugins" or m.startswith("fake_plugins.")]:
        del sys.modules[module]
