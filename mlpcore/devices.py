"""Devices: the portable spelling every backend accepts, and the check of a requested device.

``"cpu"``, ``"gpu"`` and ``"gpu:N"`` (and ``"cpu:N"``, the N-th CPU device of a backend that has
several, such as TensorFlow's logical CPUs) are parsed here, once, into a
:class:`Portable`; each backend maps it to its own name and accepts its native spellings as well
(torch ``"cuda:1"``, TensorFlow ``"/GPU:1"``). A backend that can use more than the CPU implements
:class:`Placement` besides :class:`~mlpcore.backend.Backend`; one that does not (a third-party
backend written before devices existed) runs on the CPU only. Imports only the standard library:
``mlpcore backends`` lists devices without NumPy.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

from mlpcore.errors import DeviceError

__all__ = ["CPU", "Placement", "Portable", "available_devices", "parse_portable",
           "resolve_device"]

CPU = "cpu"
"""The device of a backend without :class:`Placement`, and the default of every model."""
_PORTABLE = re.compile(r"(cpu|gpu)(?::(\d+))?")


@dataclass(frozen=True)
class Portable:
    """A portable device name, parsed: ``kind`` ``"cpu"`` or ``"gpu"``, ``index`` N >= 0."""

    kind: Literal["cpu", "gpu"]
    index: int = 0


def parse_portable(text: str) -> Portable | None:
    """``"cpu"``, ``"gpu"``, ``"gpu:N"``, ``"cpu:N"`` as a :class:`Portable`, else ``None``."""
    match = _PORTABLE.fullmatch(text)
    return None if match is None else Portable("cpu" if match[1] == "cpu" else "gpu",
                                               int(match[2] or 0))


@runtime_checkable
class Placement(Protocol):
    """Optional part of the backend contract: a backend whose models can live on a device other
    than the CPU. mlpcore calls its ``build(spec, variables, dtype, device=NAME)`` with a name
    :meth:`devices` lists other than the first (the CPU, the default: ``build`` without
    ``device``); the model keeps its variables and runs its passes and training there, the
    training set copied there once per training run."""

    def devices(self) -> list[str]:
        """The native names of the devices the backend can use now, its CPU first."""

    def device_name(self, device: str, portable: Portable | None) -> str:
        """The native name of ``device``; ``portable`` is its parse when it is a portable
        spelling, else ``None``. ``ValueError`` when ``device`` is no spelling of this backend
        (an unavailable device may get a name: :func:`resolve_device` checks availability)."""


def available_devices(backend: Any) -> list[str]:
    """What ``backend`` can use now: its :meth:`Placement.devices`, or ``["cpu"]``."""
    return list(backend.devices()) if isinstance(backend, Placement) else [CPU]


def resolve_device(backend: Any, device: str | None) -> str:
    """The native name of ``device`` on ``backend`` (``None``: its CPU; a name it lists as it is;
    another spelling through :meth:`Placement.device_name`); a
    :class:`~mlpcore.errors.DeviceError` naming the available devices if it is malformed or not
    available now."""
    available = available_devices(backend)
    if device is None:
        return available[0]
    name = getattr(backend, "name", repr(backend))
    listed = f"devices available to backend {name!r}: {', '.join(available)}"
    if not isinstance(device, str):
        raise DeviceError(f"device must be a string such as 'cpu' or 'gpu:0', got {device!r}; "
                          f"{listed}")
    text = device.strip()
    portable = parse_portable(text)
    if not isinstance(backend, Placement):
        if portable == Portable("cpu"):
            return CPU
        raise DeviceError(f"backend {name!r} runs on the CPU only (it has no devices() method, "
                          f"see docs/writing-a-backend.md), so it cannot use device {device!r}; "
                          f"{listed}")
    if text in available:
        return text
    try:
        native = backend.device_name(text, portable)
    except ValueError as error:
        raise DeviceError(f"device {device!r} is not a device name of backend {name!r} "
                          f"({error}); every backend takes 'cpu', 'gpu' or 'gpu:N'; "
                          f"{listed}") from None
    if native not in available:
        raise DeviceError(f"device {device!r} ({native}) is not available to backend {name!r} "
                          f"now; {listed}")
    return native
