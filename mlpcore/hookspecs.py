"""The pluggy hooks a backend plugin implements.

A plugin is a module named by an entry point in the ``mlpcore`` group::

    [project.entry-points.mlpcore]
    mybackend = "mlpcore_mybackend.plugin"

The module must import cheaply: no framework at module level. It implements
:func:`mlpcore_backends` with the :data:`hookimpl` marker, describing its backends; the framework is
imported only when a user first asks for one of them by name.
"""

from __future__ import annotations

from dataclasses import dataclass

import pluggy

from mlpcore.backend import CONTRACT_VERSION

__all__ = ["PROJECT", "BackendEntry", "hookimpl", "hookspec", "mlpcore_backends"]

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
    duplicate is reported as failed and skipped).
    """
