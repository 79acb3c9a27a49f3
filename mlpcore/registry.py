"""Backend discovery on pluggy: find, list and load backends without breaking on a bad plugin.

Discovery reads the ``mlpcore`` entry-point group, imports each plugin module and asks it for its
:class:`~mlpcore.hookspecs.BackendEntry` list. Nothing here imports a framework: a backend's
``factory`` is imported the first time that backend is requested. Every failure on the way (a
plugin that does not import, a hook that raises, a duplicate name, a wrong contract version, a
factory that fails) is recorded against that plugin or backend and reported by
:func:`backend_statuses`; the other backends keep working.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import pluggy

from mlpcore import hookspecs
from mlpcore.backend import CONTRACT_VERSION, Backend
from mlpcore.errors import BackendLoadError, BackendNotFoundError
from mlpcore.hookspecs import BackendEntry

__all__ = [
    "DEFAULT_BACKEND",
    "ENTRY_POINT_GROUP",
    "ENV_BACKEND",
    "BackendStatus",
    "Registry",
    "backend_statuses",
    "default_backend_name",
    "get_backend",
    "list_backends",
]

ENTRY_POINT_GROUP = "mlpcore"
ENV_BACKEND = "MLPCORE_BACKEND"
DEFAULT_BACKEND = "numpy"
SUPPORTED_CONTRACT_VERSIONS = frozenset({CONTRACT_VERSION})

Status = Literal["available", "ok", "not installed", "failed"]


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``mlpcore backends``.

    ``status`` is ``"available"`` (installed, not loaded yet), ``"ok"`` (loaded and working),
    ``"not installed"`` (``detail`` is the install command) or ``"failed"`` (``detail`` is why).
    A row for a failed *plugin* (it did not import, its hook failed, or it offered a duplicate or
    unsupported backend) has ``name == plugin``: ``"<distribution> (<module>)"`` for an installed
    distribution, else the entry-point name.
    """

    name: str
    status: Status
    version: str
    plugin: str
    detail: str = ""


@dataclass(frozen=True)
class _PluginFailure:
    plugin: str
    reason: str


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _distribution_version(names: Iterable[str]) -> str:
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


class Registry:
    """The backends offered by a set of entry points.

    ``entry_points`` defaults to the installed ``mlpcore`` group; tests pass their own.
    Thread-safe; discovery runs once, on first use.
    """

    def __init__(self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None):
        self._given_entry_points = None if entry_points is None else list(entry_points)
        self._lock = threading.RLock()
        self._discovered = False
        self._entries: dict[str, tuple[BackendEntry, str]] = {}
        self._failures: list[_PluginFailure] = []
        self._backend_failures: dict[str, str] = {}
        self._rejected: dict[str, str] = {}
        self._backends: dict[str, Backend] = {}

    def _entry_points(self) -> list[importlib.metadata.EntryPoint]:
        if self._given_entry_points is not None:
            return self._given_entry_points
        return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))

    def _discover(self) -> None:
        with self._lock:
            if self._discovered:
                return
            manager = pluggy.PluginManager(hookspecs.PROJECT)
            manager.add_hookspecs(hookspecs)
            for entry_point in self._entry_points():
                plugin_name = entry_point.name
                if entry_point.dist is not None:
                    plugin_name = f"{entry_point.dist.name} ({entry_point.value})"
                try:
                    module = entry_point.load()
                    manager.register(module, name=f"{entry_point.name}:{entry_point.value}")
                    implementations = manager.hook.mlpcore_backends.get_hookimpls()
                    impl = next(i for i in implementations if i.plugin is module)
                    entries = impl.function()
                except StopIteration:
                    self._failures.append(_PluginFailure(
                        plugin_name, "the plugin module implements no mlpcore_backends hook"))
                    continue
                except Exception as error:  # a broken plugin is reported, never fatal
                    self._failures.append(_PluginFailure(plugin_name, _describe(error)))
                    continue
                self._add_entries(plugin_name, entries)
            self._discovered = True

    def _add_entries(self, plugin_name: str, entries: object) -> None:
        if not isinstance(entries, list | tuple) or \
                not all(isinstance(e, BackendEntry) for e in entries):
            self._failures.append(_PluginFailure(
                plugin_name, "mlpcore_backends() must return a list of BackendEntry"))
            return
        for entry in entries:
            if entry.name in self._entries:
                other = self._entries[entry.name][1]
                self._failures.append(_PluginFailure(
                    plugin_name, f"backend name {entry.name!r} is already provided by {other}"))
            elif entry.contract_version not in SUPPORTED_CONTRACT_VERSIONS:
                supported = ", ".join(str(v) for v in sorted(SUPPORTED_CONTRACT_VERSIONS))
                reason = (f"backend {entry.name!r} implements contract version "
                          f"{entry.contract_version}; this mlpcore supports {supported}")
                self._failures.append(_PluginFailure(plugin_name, reason))
                self._rejected.setdefault(entry.name, f"{reason} (plugin {plugin_name})")
            else:
                self._entries[entry.name] = (entry, plugin_name)

    @staticmethod
    def _installed(entry: BackendEntry) -> bool:
        """Whether the framework's top-level package can be found, without importing it."""
        if entry.framework is None:
            return True
        top_level = entry.framework.partition(".")[0]
        try:
            return importlib.util.find_spec(top_level) is not None
        except (ImportError, ValueError):
            return False

    def names(self) -> list[str]:
        """Sorted names of the backends whose framework is installed. Imports no framework."""
        self._discover()
        return sorted(n for n, (e, _) in self._entries.items()
                      if self._installed(e) and n not in self._backend_failures)

    def statuses(self, load: bool = False) -> list[BackendStatus]:
        """A row per backend and per failed plugin. ``load=True`` loads each installed backend."""
        self._discover()
        rows: list[BackendStatus] = []
        for name, (entry, plugin) in sorted(self._entries.items()):
            version = _distribution_version(entry.framework_distributions)
            if not self._installed(entry):
                rows.append(BackendStatus(name, "not installed", "", plugin, entry.install_hint))
                continue
            if load and name not in self._backend_failures:
                with contextlib.suppress(BackendLoadError):
                    self.get(name)
            if name in self._backend_failures:
                rows.append(BackendStatus(name, "failed", version, plugin,
                                          self._backend_failures[name]))
            elif name in self._backends:
                rows.append(BackendStatus(name, "ok", self._backends[name].framework_version(),
                                          plugin))
            else:
                rows.append(BackendStatus(name, "available", version, plugin))
        rows.extend(BackendStatus(f.plugin, "failed", "", f.plugin, f.reason)
                    for f in self._failures)
        return rows

    def get(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (default: :func:`default_backend_name`), loaded once."""
        name = default_backend_name() if name is None else name
        self._discover()
        with self._lock:
            if name in self._backends:
                return self._backends[name]
            if name not in self._entries:
                message = self._not_found_message(name)
                if name in self._rejected:
                    message = (f"mlpcore backend {name!r} was found but refused: "
                               f"{self._rejected[name]}. {message}")
                raise BackendNotFoundError(message)
            entry, plugin = self._entries[name]
            if not self._installed(entry):
                hint = entry.install_hint or f"pip install {entry.framework}"
                raise BackendNotFoundError(
                    f"mlpcore backend {name!r} needs {entry.framework}, which is not installed. "
                    f"Install it with: {hint}. "
                    f"Installed backends: {', '.join(self.names()) or 'none'}.")
            if name in self._backend_failures:
                raise BackendLoadError(
                    f"mlpcore backend {name!r} (from {plugin}) failed to load: "
                    f"{self._backend_failures[name]}")
            try:
                backend = self._load(entry)
            except Exception as error:
                self._backend_failures[name] = _describe(error)
                raise BackendLoadError(
                    f"mlpcore backend {name!r} (from {plugin}) failed to load: "
                    f"{_describe(error)}") from error
            self._backends[name] = backend
            return backend

    @staticmethod
    def _load(entry: BackendEntry) -> Backend:
        module_name, _, attribute = entry.factory.partition(":")
        if not attribute:
            raise ValueError(f"factory {entry.factory!r} must look like 'module:callable'")
        factory = getattr(importlib.import_module(module_name), attribute)
        backend = factory()
        missing = [a for a in ("name", "capabilities", "training_methods", "activations",
                               "losses", "regularisers", "dropout", "framework_version", "build")
                   if not hasattr(backend, a)]
        if missing:
            raise TypeError(f"{entry.factory} returned an object without {', '.join(missing)}")
        if backend.name != entry.name:
            raise ValueError(f"{entry.factory} returned backend {backend.name!r}, "
                             f"but the plugin registered it as {entry.name!r}")
        if getattr(backend, "contract_version", None) != entry.contract_version:
            raise ValueError(
                f"backend object states contract version "
                f"{getattr(backend, 'contract_version', None)!r}, its plugin "
                f"{entry.contract_version}")
        return backend  # type: ignore[no-any-return]

    def _not_found_message(self, name: str) -> str:
        installed = self.names()
        missing = [f"{n} ({e.install_hint})" for n, (e, _) in sorted(self._entries.items())
                   if not self._installed(e)]
        message = (f"no mlpcore backend named {name!r}. "
                   f"Installed backends: {', '.join(installed) or 'none'}.")
        if missing:
            message += f" Known but not installed: {'; '.join(missing)}."
        return message + (" A third-party backend is installed with pip as its own distribution;"
                          " run 'mlpcore backends' to see what was found.")


_default_registry = Registry()


def default_backend_name() -> str:
    """``$MLPCORE_BACKEND`` if set and non-empty, else ``"numpy"``."""
    return os.environ.get(ENV_BACKEND, "").strip() or DEFAULT_BACKEND


def list_backends() -> list[str]:
    """Sorted names of the installed backends. Imports no framework."""
    return _default_registry.names()


def get_backend(name: str | None = None) -> Backend:
    """The backend called ``name``; ``None`` means ``$MLPCORE_BACKEND`` or ``"numpy"``.

    Raises :class:`~mlpcore.errors.BackendNotFoundError` for an unknown or not-installed name
    (the message lists the installed backends and the install command) and
    :class:`~mlpcore.errors.BackendLoadError` when the backend's plugin fails to build it.
    """
    return _default_registry.get(name)


def backend_statuses(load: bool = False) -> list[BackendStatus]:
    """Every discovered backend and failed plugin, as shown by ``mlpcore backends``."""
    return _default_registry.statuses(load=load)
