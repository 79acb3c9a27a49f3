"""Entry-point module of the PyTorch backend. Imports no torch: listing stays cheap."""

from __future__ import annotations

from mlpcore.hookspecs import BackendEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [
        BackendEntry(
            name="torch",
            factory="mlpcore_torch.backend:TorchBackend",
            framework="torch",
            framework_distributions=("torch",),
            install_hint='pip install "mlpcore[torch]" (CPU-only machine: install the CPU build '
                         'of torch first, e.g. pip install torch==2.13.0)',
        )
    ]
