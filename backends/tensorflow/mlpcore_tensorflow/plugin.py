"""Entry-point module of the TensorFlow backend. Imports no TensorFlow: listing stays cheap."""

from __future__ import annotations

from mlpcore.hookspecs import BackendEntry, FormatEntry, hookimpl

INSTALL = 'pip install "mlpcore[tensorflow]" (or "mlpcore[tensorflow-cpu]")'


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    distributions = ("tensorflow", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos")
    return [BackendEntry("tensorflow", "mlpcore_tensorflow.backend:TensorflowBackend",
                         framework="tensorflow", framework_distributions=distributions,
                         install_hint=INSTALL)]


@hookimpl
def mlpcore_checkpoint_formats() -> list[FormatEntry]:
    def tf(version: str, description: str, extension: str) -> FormatEntry:
        module = "mlpcore_tensorflow"
        return FormatEntry(
            f"{version}-{'saver' if version == 'tf1' else 'checkpoint'}", description,
            reader=f"{module}.interop:read_{version}", writer=f"{module}.interop:write_{version}",
            sniff=f"{module}.formats:sniff_{version}", default_map=f"{module}.formats:default_map",
            export_names=f"{module}.formats:export_names_{version}", extensions=(extension,),
            framework="tensorflow", install_hint='pip install "mlpcore[tensorflow-cpu]"')

    return [tf("tf1", "TensorFlow name-based checkpoint (tf.compat.v1.train.Saver)", ".ckpt"),
            tf("tf2", "TensorFlow object-based checkpoint (tf.train.Checkpoint)", ".tf2")]
