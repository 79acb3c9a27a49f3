"""The pluggy hooks of a plugin: a module named by an entry point of the ``mlpcore`` group
(``mybackend = "mlpcore_mybackend.plugin"``) that imports no framework at module level.

:func:`mlpcore_backends` describes its backends and :func:`mlpcore_checkpoint_formats` (optional)
its checkpoint formats; what they name is imported only when first used. See docs/hooks.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from mlpcore.version import CONTRACT_VERSION

__all__ = ["PROJECT", "BackendEntry", "FormatEntry", "hookimpl", "hookspec", "mlpcore_backends",
           "mlpcore_checkpoint_formats"]

PROJECT = "mlpcore"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@dataclass(frozen=True)
class BackendEntry:
    """A plugin's description of one backend, available without importing its framework:
    ``factory`` (``"module:callable"``) returns the :class:`~mlpcore.backend.Backend`. The fields
    are described in docs/hooks.md."""

    name: str
    factory: str
    framework: str | None = None
    framework_distributions: tuple[str, ...] = ()
    install_hint: str = ""
    contract_version: int = CONTRACT_VERSION


@hookspec
def mlpcore_backends() -> list[BackendEntry]:  # type: ignore[empty-body]
    """Describe the backends this plugin provides.

    Called once per process, when backends are first listed or requested. Must not import a
    framework. Return a list of :class:`BackendEntry`; names must be unique across plugins (a
    duplicate is reported as failed and skipped; mlpcore's own plugins come first).
    """


@dataclass(frozen=True)
class FormatEntry:
    """A plugin's description of one checkpoint format, available without importing a framework:
    ``reader``, ``writer``, ``sniff``, ``default_map`` and ``export_names`` are
    ``"module:callable"`` strings, imported only when used. The fields and the callables'
    signatures are described in docs/hooks.md."""

    name: str
    description: str
    reader: str | None = None
    writer: str | None = None
    sniff: str | None = None
    default_map: str | None = None
    export_names: str | None = None
    extensions: tuple[str, ...] = ()
    framework: str | None = None
    install_hint: str = ""


@hookspec
def mlpcore_checkpoint_formats() -> list[FormatEntry]:  # type: ignore[empty-body]
    """Describe the checkpoint formats this plugin reads and writes (optional hook).

    Called once per process, the first time a format is needed (``mlpcore convert``,
    ``mlpcore inspect``, reading a foreign checkpoint). Must not import a framework. Format names
    must be unique across plugins (a duplicate is skipped and reported).
    """
