"""Entry-point module of the PyTorch backend. Imports no torch: listing stays cheap."""

from __future__ import annotations

from mlpcore.hookspecs import BackendEntry, FormatEntry, hookimpl


@hookimpl
def mlpcore_backends() -> list[BackendEntry]:
    return [BackendEntry("torch", "mlpcore_torch.backend:TorchBackend", framework="torch",
                         framework_distributions=("torch",),
                         install_hint='pip install "mlpcore[torch]" (CPU-only machine: install '
                                      'the CPU build of torch first, e.g. pip install '
                                      'torch==2.13.0)')]


@hookimpl
def mlpcore_checkpoint_formats() -> list[FormatEntry]:
    return [FormatEntry(
        "torch-state-dict",
        "PyTorch state_dict saved by torch.save (nn.Sequential / nn.Linear names)",
        reader="mlpcore_torch.interop:read_state_dict",
        writer="mlpcore_torch.interop:write_state_dict", sniff="mlpcore_torch.formats:sniff",
        default_map="mlpcore_torch.formats:default_map",
        export_names="mlpcore_torch.formats:export_names", extensions=(".pt", ".pth", ".bin"),
        framework="torch", install_hint="pip install torch==2.13.0 (the CPU build)")]
