"""Entry-point module of the NumPy backend; registered like any third-party plugin."""

from __future__ import annotations

from mlpcore.hookspecs import BackendEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [BackendEntry("numpy", "mlpcore_numpy.backend:NumpyBackend", framework="numpy",
                         framework_distributions=("numpy",), install_hint="pip install mlpcore")]
