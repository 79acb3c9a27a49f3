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
    """A plugin's description of one backend, available without importing its framework.

    ``factory`` is ``"module:callable"``; calling it with no arguments returns the
    :class:`~mlpcore.backend.Backend`. ``framework`` is the import name of the framework the backend
    needs (``None`` for none); when it cannot be found the backend is listed as not installed with
    ``install_hint``. ``framework_distributions`` are the distribution names whose installed version
    is reported (the first one installed wins).
    """

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
    """A plugin's description of one checkpoint format, available without importing a framework.

    Every callable is named as ``"module:callable"`` and imported only when needed:

    - ``reader(path: Path) -> dict[str, numpy.ndarray]``: the file's variables under their own
      names, 2-D weights already in the canonical ``(fan_in, fan_out)`` layout; raises
      :class:`~mlpcore.errors.CheckpointError` naming the file for anything it refuses.
    - ``writer(path: Path, variables: Mapping[str, numpy.ndarray]) -> None``: write the
      variables (final names, canonical layout) so that a failed write leaves any previous file
      intact.
    - ``sniff(path: Path) -> bool``: whether the file's contents are in this format. Must be
      cheap and must not import the framework.
    - ``default_map(names: list[str]) -> dict[str, str] | None``: the format's naming
      convention, source name -> canonical ``dense_{i}/weights`` / ``dense_{i}/bias``; ``None``
      when the names do not follow it.
    - ``export_names(canonical: list[str]) -> dict[str, str]``: canonical name -> the name the
      writer stores, when the user gives no map.

    ``extensions`` (lowercase, with the dot) pick the format of a path that does not exist yet
    or that no ``sniff`` recognises. ``framework`` is the import name the reader and writer
    need, checked with ``importlib.util.find_spec``; ``install_hint`` is shown when it is
    missing.
    """

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
