"""Fixtures of the conformance suite: the backend under test, reproductions, the matrix pairs.

Every test that takes ``backend`` runs once per backend under test (its id leads the test's
parameters: ``test_values[numpy-relu-float32]``). Without a backend under test every test skips,
all with one reason that says how to name one, repeated once at the end of the run. The
checkpoint matrix test takes ``checkpoint_pair`` and is deselected without ``--mlpcore-matrix``.
"""

from __future__ import annotations

import pytest

import mlpcore
from mlpcore.backend import Backend
from mlpcore.devices import resolve_device
from mlpcore_conformance.plugin import ENV_BACKEND, SESSION_KEY
from mlpcore_conformance.repro import Repro
from mlpcore_conformance.session import ConformanceSession


def _no_backend_reason() -> str:
    try:
        installed = ", ".join(mlpcore.list_backends()) or "none"
    except Exception as error:  # listing must not turn a skip into an error
        installed = f"unknown ({error})"
    return (f"no backend under test: add --mlpcore-backend NAME or set ${ENV_BACKEND} "
            f"(installed: {installed})")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> None:
    """Say once, at the end, why the suite skipped everything."""
    if config.stash.get(SESSION_KEY, None) is None:
        terminalreporter.write_line(
            "mlpcore conformance: " + _no_backend_reason() + "; e.g. 'pytest --pyargs "
            "mlpcore_conformance --mlpcore-backend numpy' or 'mlpcore conformance --backend "
            "numpy'", yellow=True)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize ``backend`` over the backends under test, ``checkpoint_pair`` over the
    matrix."""
    session = metafunc.config.stash.get(SESSION_KEY, None)
    if session is None:
        return
    if "backend" in metafunc.fixturenames and session.under_test:
        metafunc.parametrize("backend", list(session.under_test), indirect=True,
                             scope="session")
    if "checkpoint_pair" in metafunc.fixturenames and session.matrix_enabled:
        pairs = session.matrix_pairs()
        metafunc.parametrize("checkpoint_pair", pairs, indirect=True, scope="session",
                             ids=[f"{saver}-to-{loader}" for saver, loader in pairs])


@pytest.fixture(scope="session")
def conformance(request: pytest.FixtureRequest) -> ConformanceSession:
    """The active conformance session (skips the test when there is none)."""
    session = request.config.stash.get(SESSION_KEY, None)
    if session is None:
        pytest.skip(_no_backend_reason())
    return session


@pytest.fixture(scope="session")
def backend(request: pytest.FixtureRequest, conformance: ConformanceSession) -> Backend:
    """The backend under test."""
    name = getattr(request, "param", None)
    if name is None:
        pytest.skip(_no_backend_reason())
    return conformance.backend(name).backend


@pytest.fixture(scope="session")
def device(backend: Backend, conformance: ConformanceSession) -> str:
    """The backend's name of ``--mlpcore-device`` (default: its CPU); skips the test when the
    backend cannot use that device now, saying which devices it has."""
    try:
        return resolve_device(backend, conformance.device)
    except mlpcore.DeviceError as error:
        pytest.skip(f"--mlpcore-device {conformance.device}: {error}")


@pytest.fixture(scope="session")
def repro(backend: Backend, conformance: ConformanceSession) -> Repro:
    """Reproduction snippets that start by getting the backend under test."""
    return conformance.repro(backend.name)


@pytest.fixture(scope="session")
def checkpoint_pair(request: pytest.FixtureRequest,
                    conformance: ConformanceSession) -> tuple[Backend, Backend]:
    """(saving backend, loading backend) of one cell of the checkpoint matrix."""
    saver, loader = request.param
    return conformance.backend(saver).backend, conformance.backend(loader).backend
