"""Entry-point module of the TensorFlow backend. Imports no TensorFlow: listing stays cheap."""

from __future__ import annotations

from mlpcore.hookspecs import BackendEntry, FormatEntry, hookimpl


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


@hookimpl
def mlpcore_checkpoint_formats() -> list[FormatEntry]:
    common = {"framework": "tensorflow", "default_map": "mlpcore_tensorflow.formats:default_map",
              "install_hint": 'pip install "mlpcore[tensorflow-cpu]"'}
    return [
        FormatEntry(
            name="tf1-saver",
            description="TensorFlow name-based checkpoint (tf.compat.v1.train.Saver)",
            reader="mlpcore_tensorflow.interop:read_tf1",
            writer="mlpcore_tensorflow.interop:write_tf1",
            sniff="mlpcore_tensorflow.formats:sniff_tf1",
            export_names="mlpcore_tensorflow.formats:export_names_tf1",
            extensions=(".ckpt",),
            **common,
        ),
        FormatEntry(
            name="tf2-checkpoint",
            description="TensorFlow object-based checkpoint (tf.train.Checkpoint)",
            reader="mlpcore_tensorflow.interop:read_tf2",
            writer="mlpcore_tensorflow.interop:write_tf2",
            sniff="mlpcore_tensorflow.formats:sniff_tf2",
            export_names="mlpcore_tensorflow.formats:export_names_tf2",
            extensions=(".tf2",),
            **common,
        ),
    ]
