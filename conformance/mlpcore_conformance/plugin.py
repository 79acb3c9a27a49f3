"""The pytest plugin of the conformance suite, registered under the ``pytest11`` entry point.

Because pytest loads ``pytest11`` plugins in *every* run, this module is inert unless asked: it
imports only pytest and the standard library, adds its options and marker, and does nothing else
until ``--mlpcore-backend`` / ``$MLPCORE_CONFORMANCE_BACKEND`` or ``--mlpcore-matrix`` is given.
Then it resolves the backends (a framework is imported at that point) and registers a
:class:`~mlpcore_conformance.session.ConformanceSession`, which applies xfails and capability
skips, records measured errors, and writes the report. Its hooks touch only the suite's own tests.

Options (see ``docs/conformance.md``)::

    --mlpcore-backend SPEC   backend(s) under test: a registered name, "module:factory", "all",
                             or a comma-separated list; default $MLPCORE_CONFORMANCE_BACKEND
    --mlpcore-device DEVICE  where the models under test live (default: the CPU)
    --mlpcore-matrix         also run the cross-backend checkpoint matrix
    --mlpcore-examples N     Hypothesis examples per property test
    --mlpcore-xfails PATH    extra xfails file (repeatable)
    --mlpcore-report PATH    write PATH.json and PATH.md

PYTEST_DONT_REWRITE: imported before pytest starts by ``mlpcore conformance`` (see the package).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from mlpcore_conformance.runner import ENV_BACKEND

if TYPE_CHECKING:
    from mlpcore_conformance.session import ConformanceSession

__all__ = [
    "ENV_BACKEND",
    "SESSION_KEY",
    "backend_spec",
    "pytest_addoption",
    "pytest_configure",
]


SESSION_KEY: pytest.StashKey[ConformanceSession] = pytest.StashKey()
"""Where the active session lives in ``config.stash``; absent when the plugin is inert."""

_OPTIONS = ("mlpcore_matrix", "mlpcore_examples", "mlpcore_xfails", "mlpcore_report",
            "mlpcore_device")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--mlpcore-*`` options; they do nothing unless the suite is asked for."""
    group = parser.getgroup("mlpcore", "mlpcore conformance suite (pytest --pyargs "
                                       "mlpcore_conformance)")
    group.addoption(
        "--mlpcore-backend", dest="mlpcore_backend", default=None, metavar="SPEC",
        help="backend(s) under test: a name registered in the 'mlpcore' entry-point group "
             "(resolved by mlpcore.get_backend), 'package.module:factory' (a callable returning "
             "the backend), 'all' (every installed backend) or a comma-separated list. "
             f"Default: ${ENV_BACKEND}.")
    group.addoption(
        "--mlpcore-device", dest="mlpcore_device", default=None, metavar="DEVICE",
        help="the device the suite's models are built on and trained on: 'cpu' (default), "
             "'gpu', 'gpu:N' or the backend's own name (torch 'cuda:0', TensorFlow '/GPU:0'); "
             "a backend that cannot use it now has those tests skipped, saying why. The ops "
             "objects take NumPy arrays and are not placed.")
    group.addoption(
        "--mlpcore-matrix", dest="mlpcore_matrix", action="store_true", default=False,
        help="run the cross-backend checkpoint matrix: saved by A, loaded by B, for every ordered "
             "pair of the listed backends (of every installed backend when fewer than two are "
             "listed). Without --mlpcore-backend only the matrix runs.")
    group.addoption(
        "--mlpcore-examples", dest="mlpcore_examples", type=_positive, default=None,
        metavar="N", help="Hypothesis examples per property test (default: 20)")
    group.addoption(
        "--mlpcore-xfails", dest="mlpcore_xfails", action="append", default=None, metavar="PATH",
        help="an xfails file applied to every backend under test, in addition to the "
             "conformance_xfails.txt a backend's package ships (repeatable)")
    group.addoption(
        "--mlpcore-report", dest="mlpcore_report", default=None, metavar="PATH",
        help="write the conformance report to PATH.json and PATH.md")


def backend_spec(config: pytest.Config) -> str | None:
    """The ``--mlpcore-backend`` value, else ``$MLPCORE_CONFORMANCE_BACKEND``, else ``None``."""
    option = config.getoption("mlpcore_backend", default=None)
    value = option if option is not None else os.environ.get(ENV_BACKEND, "")
    return value.strip() or None


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker; start a conformance session only when a backend or the matrix is
    asked for."""
    config.addinivalue_line(
        "markers", "mlpcore_requires(*capabilities): a conformance test that needs these backend "
                   "capabilities (mlpcore.Capability values); skipped on backends without them")
    spec = backend_spec(config)
    matrix = bool(config.getoption("mlpcore_matrix", default=False))
    if spec is None and not matrix:
        given = [f"--{name.replace('_', '-')}" for name in _OPTIONS[1:]
                 if config.getoption(name, default=None)]
        if given:
            raise pytest.UsageError(
                f"{', '.join(given)} need(s) a backend under test: add --mlpcore-backend NAME "
                f"(or set {ENV_BACKEND})")
        return
    from mlpcore_conformance.session import ConformanceSession

    session = ConformanceSession.start(config, spec, matrix)
    config.stash[SESSION_KEY] = session
    config.pluginmanager.register(session, "mlpcore-conformance-session")
