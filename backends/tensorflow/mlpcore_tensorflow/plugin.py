"""Entry-point module of the TensorFlow backend. Imports no TensorFlow: listing stays cheap."""

from __future__ import annotations

from mlpcore.hookspecs import BackendEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [
        BackendEntry(
            name="tensorflow",
            factory="mlpcore_tensorflow.backend:TensorflowBackend",
            framework="tensorflow",
            framework_distributions=("tensorflow", "tensorflow-cpu", "tensorflow-intel",
                                     "tensorflow-macos"),
            install_hint='pip install "mlpcore[tensorflow]" (or "mlpcore[tensorflow-cpu]")',
        )
    ]
