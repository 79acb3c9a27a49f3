"""Backend discovery on pluggy; a broken plugin is reported, never fatal (see docs/hooks.md).

Listing imports no framework, nor NumPy: a backend's framework is imported when it is first used.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import os
import pkgutil
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_type_hints

import pluggy

from mlpcore import hookspecs
from mlpcore.errors import BackendLoadError, BackendNotFoundError
from mlpcore.hookspecs import BackendEntry
from mlpcore.version import CONTRACT_VERSION

if TYPE_CHECKING:
    from mlpcore.backend import Backend

__all__ = ["DEFAULT_BACKEND", "ENTRY_POINT_GROUP", "ENV_BACKEND", "ENV_DISABLE_PLUGINS",
           "SUPPORTED_CONTRACT_VERSIONS", "BackendStatus", "PluginStatus", "Registry",
           "backend_statuses", "call_hook", "default_backend_name", "get_backend",
           "list_backends", "plugin_statuses"]

ENTRY_POINT_GROUP = "mlpcore"
ENV_BACKEND = "MLPCORE_BACKEND"
ENV_DISABLE_PLUGINS = "MLPCORE_DISABLE_PLUGINS"
"""Comma-separated plugin names (entry-point names, or distribution names) never to load."""
DEFAULT_BACKEND = "numpy"
SUPPORTED_CONTRACT_VERSIONS = frozenset({CONTRACT_VERSION})
"""The backend contract versions this mlpcore can use; an entry declaring another is refused."""

Status = Literal["available", "ok", "not installed", "failed", "disabled"]
PluginState = Literal["ok", "failed", "disabled"]


@dataclass(frozen=True)
class BackendStatus:
    """One row of ``mlpcore backends``: a backend, or a problem of a failed or disabled plugin
    (then ``name`` is the plugin's label). The fields are described in docs/hooks.md."""

    name: str
    status: Status
    version: str
    plugin: str
    detail: str = ""
    distribution: str = ""
    distribution_version: str = ""
    contract_version: int | None = None


@dataclass(frozen=True)
class PluginStatus:
    """One entry point of the ``mlpcore`` group and what became of it (docs/hooks.md)."""

    name: str
    value: str
    distribution: str
    version: str
    status: PluginState
    detail: str = ""
    backends: tuple[str, ...] = ()


@dataclass
class _Plugin:
    """An entry point and what became of it. ``label``, its name in the PluginManager, is
    ``"<distribution> (<module>)"``, or the entry-point name without a distribution."""

    point: importlib.metadata.EntryPoint
    label: str
    distribution: str = ""
    version: str = ""
    status: PluginState = "ok"
    problems: list[BackendStatus] = field(default_factory=list)  # its rows in statuses()
    backends: list[str] = field(default_factory=list)

    def fail(self, reason: str, contract: int | None = None,
             status: PluginState = "failed") -> None:
        self.status = status
        self.problems.append(BackendStatus(self.label, status, "", self.label, reason,
                                           self.distribution, self.version, contract))


def _normalise(name: str) -> str:
    """A distribution or plugin name compared the PEP 503 way: lowercase, ``-_.`` runs as ``-``."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def _describe(error: BaseException) -> str:
    """``Type: message`` on one line (pluggy's messages span several)."""
    return f"{type(error).__name__}: {' '.join(str(error).split())}"


def _installed(entry: BackendEntry) -> bool:
    """Whether the framework's top-level package can be found, without importing it."""
    try:
        return entry.framework is None or \
            importlib.util.find_spec(entry.framework.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _version(distribution: str) -> str:
    with contextlib.suppress(importlib.metadata.PackageNotFoundError):
        return importlib.metadata.version(distribution)
    return ""


def _order(point: importlib.metadata.EntryPoint) -> tuple[bool, str, str]:
    """mlpcore's own entry points first, then by distribution and name: which of two plugins
    offering one backend name wins never depends on ``sys.path``."""
    distribution = _normalise(point.dist.name or "") if point.dist is not None else ""
    return distribution != "mlpcore", distribution, point.name


class Registry:
    """The plugins and backends of a set of entry points (default: the installed ``mlpcore``
    group; tests pass their own). Thread-safe; discovery runs once, on first use."""

    def __init__(self, entry_points: Iterable[importlib.metadata.EntryPoint] | None = None):
        self._given = None if entry_points is None else list(entry_points)
        self._lock = threading.RLock()
        self._manager: pluggy.PluginManager | None = None
        self._plugins: list[_Plugin] = []
        self._entries: dict[str, tuple[BackendEntry, _Plugin]] = {}
        self._unavailable: dict[str, str] = {}  # name -> why (plugin disabled, entry refused)
        self._failed: dict[str, str] = {}  # backend name -> why it failed to load
        self._backends: dict[str, Backend] = {}

    def _discover(self) -> pluggy.PluginManager:
        """Register every enabled plugin (pluggy checks its hookimpls against the hookspecs),
        then keep the entries their ``mlpcore_backends`` hooks offer."""
        with self._lock:
            if self._manager is not None:
                return self._manager
            self._manager = manager = pluggy.PluginManager(hookspecs.PROJECT)
            manager.add_hookspecs(hookspecs)
            disabled = {_normalise(part) for part in
                        os.environ.get(ENV_DISABLE_PLUGINS, "").split(",") if part.strip()}
            for point in self._given if self._given is not None else sorted(
                    importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=_order):
                dist = point.dist  # a broken distribution may lack a name
                plugin = (_Plugin(point, f"{dist.name} ({point.value})", dist.name,
                                  dist.version or "")
                          if dist is not None and dist.name else _Plugin(point, point.name))
                self._plugins.append(plugin)
                if {_normalise(point.name), _normalise(plugin.distribution)} & disabled:
                    manager.set_blocked(plugin.label)
                    plugin.fail(f"named in ${ENV_DISABLE_PLUGINS}", status="disabled")
                    self._unavailable.setdefault(point.name, (
                        f"mlpcore plugin {point.name!r} is disabled by ${ENV_DISABLE_PLUGINS}; "
                        "remove it from there to use it"))
                    continue
                try:  # a broken plugin is reported, never fatal
                    module = point.load()
                    manager.register(module, name=plugin.label)
                except Exception as error:
                    plugin.fail(_describe(error))
                    continue
                if not any(caller.spec for caller in manager.get_hookcallers(module) or []):
                    manager.unregister(module)
                    known = sorted(n for n, caller in vars(manager.hook).items() if caller.spec)
                    plugin.fail("the plugin module implements no mlpcore hook (expected at least "
                                f"one of {', '.join(known)}, marked with "
                                "mlpcore.hookspecs.hookimpl)")
            by_label = {p.label: p for p in self._plugins}
            for label, entries in self.call("mlpcore_backends"):
                self._add_entries(by_label[label], entries)
            return manager

    def _add_entries(self, plugin: _Plugin, entries: object) -> None:
        """Keep a plugin's valid entries; record a problem for each refused one."""
        if isinstance(entries, Exception):
            return plugin.fail(_describe(entries))
        if not isinstance(entries, list | tuple) or \
                not all(isinstance(e, BackendEntry) for e in entries):
            return plugin.fail("mlpcore_backends() must return a list of BackendEntry")
        supported = ", ".join(str(v) for v in sorted(SUPPORTED_CONTRACT_VERSIONS))
        for entry in entries:
            if entry.name in self._entries:
                plugin.fail(f"backend name {entry.name!r} is already provided by "
                            f"{self._entries[entry.name][1].label}", entry.contract_version)
            elif entry.contract_version not in SUPPORTED_CONTRACT_VERSIONS:
                reason = (f"backend {entry.name!r} implements contract version "
                          f"{entry.contract_version!r}; this mlpcore supports {supported}")
                plugin.fail(reason, entry.contract_version)
                self._unavailable.setdefault(entry.name, f"mlpcore backend {entry.name!r} was "
                                             f"found but refused: {reason} (plugin {plugin.label})")
            else:
                self._entries[entry.name] = (entry, plugin)
                plugin.backends.append(entry.name)

    def call(self, hook_name: str) -> list[tuple[str, object]]:
        """``(plugin label, its result or the exception it raised)`` for each registered plugin
        implementing ``hook_name``, in discovery order (why not ``pm.hook``: docs/hooks.md)."""
        with self._lock:
            caller = getattr(self._discover().hook, hook_name, None)
            impls = {impl.plugin_name: impl for impl in caller.get_hookimpls()} if caller else {}
            results: list[tuple[str, object]] = []
            for label in [p.label for p in self._plugins if p.label in impls]:
                try:
                    result: object = impls[label].function()
                except Exception as error:  # a broken plugin is reported, never fatal
                    result = error
                results.append((label, result))
            return results

    def names(self) -> list[str]:
        """Sorted names of the backends whose framework is installed. Imports no framework."""
        self._discover()
        return sorted(n for n, (e, _) in self._entries.items()
                      if _installed(e) and n not in self._failed)

    def statuses(self, load: bool = False) -> list[BackendStatus]:
        """A row per backend, then per problem of a failed or disabled plugin. ``load=True``
        loads each installed backend (importing its framework)."""
        self._discover()
        rows: list[BackendStatus] = []
        for name, (entry, plugin) in sorted(self._entries.items()):
            status: Status = "not installed"
            version, detail = "", entry.install_hint
            if _installed(entry):
                if load:
                    with contextlib.suppress(BackendLoadError):
                        self.get(name)
                detail = self._failed.get(name, "")
                status = "failed" if detail else "ok" if name in self._backends else "available"
                version = self._backends[name].framework_version() if status == "ok" else next(
                    (v for v in map(_version, entry.framework_distributions) if v), "")
            rows.append(BackendStatus(name, status, version, plugin.label, detail,
                                      plugin.distribution, plugin.version, entry.contract_version))
        return rows + [row for plugin in self._plugins for row in plugin.problems]

    def plugins(self) -> list[PluginStatus]:
        """One record per entry point, in discovery order. Imports no framework."""
        self._discover()
        return [PluginStatus(p.point.name, p.point.value, p.distribution, p.version, p.status,
                             "; ".join(row.detail for row in p.problems), tuple(p.backends))
                for p in self._plugins]

    def get(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (``None``: :func:`default_backend_name`), loaded once.

        Raises :class:`~mlpcore.errors.BackendNotFoundError` for an unknown, refused, disabled or
        not installed name (listing the installed backends and how to install the others), and
        :class:`~mlpcore.errors.BackendLoadError` when its plugin fails to build it."""
        name = default_backend_name() if name is None else name
        self._discover()
        with self._lock:
            if name in self._backends:
                return self._backends[name]
            if name not in self._entries:
                missing = "; ".join(f"{n} ({e.install_hint})" for n, (e, _)
                                    in sorted(self._entries.items()) if not _installed(e))
                raise BackendNotFoundError(
                    (f"{self._unavailable[name]}. " if name in self._unavailable else "")
                    + f"no mlpcore backend named {name!r}. "
                      f"Installed backends: {', '.join(self.names()) or 'none'}."
                    + (f" Known but not installed: {missing}." if missing else "")
                    + " A third-party backend is installed with pip as its own distribution; "
                      "run 'mlpcore backends' to see what was found.")
            entry, plugin = self._entries[name]
            if not _installed(entry):
                raise BackendNotFoundError(
                    f"mlpcore backend {name!r} needs {entry.framework}, which is not installed. "
                    f"Install it with: {entry.install_hint or f'pip install {entry.framework}'}. "
                    f"Installed backends: {', '.join(self.names()) or 'none'}.")
            failed = f"mlpcore backend {name!r} (from {plugin.label}) failed to load: "
            if name in self._failed:
                raise BackendLoadError(failed + self._failed[name])
            try:
                self._backends[name] = _load(entry)
            except Exception as error:
                self._failed[name] = _describe(error)
                raise BackendLoadError(failed + self._failed[name]) from error
            return self._backends[name]


def _load(entry: BackendEntry) -> Backend:
    """Call ``entry.factory``; check the object against the Backend protocol (its operations
    objects against theirs: ``dropout.apply``) and against the entry."""
    from mlpcore.backend import Backend  # imports NumPy: with the first backend, never by listing

    if not entry.factory.partition(":")[2]:
        raise ValueError(f"factory {entry.factory!r} must look like 'module:callable'")
    backend: Any = pkgutil.resolve_name(entry.factory)()
    missing = [name for name in _members(Backend) if not hasattr(backend, name)]
    for attribute, kind in get_type_hints(Backend).items():
        ops = getattr(backend, attribute, None)
        if Protocol in getattr(kind, "__mro__", ()) and ops is not None:
            missing += [f"{attribute}.{name}" for name in _members(kind)
                        if not callable(getattr(ops, name, None))]
    if missing:
        raise TypeError(f"{entry.factory} returned an object that does not implement the "
                        f"backend contract: it lacks {', '.join(missing)}")
    if backend.name != entry.name:
        raise ValueError(f"{entry.factory} returned backend {backend.name!r}, "
                         f"but the plugin registered it as {entry.name!r}")
    if backend.contract_version != entry.contract_version:
        raise ValueError(f"backend object states contract version "
                         f"{backend.contract_version!r}, its plugin {entry.contract_version}")
    return backend  # type: ignore[no-any-return]


def _members(protocol: type) -> list[str]:
    """The public attributes and methods a Protocol class declares (its own and its bases')."""
    names = [name for klass in reversed(protocol.__mro__)
             for name in [*getattr(klass, "__annotations__", {}), *vars(klass)]]
    return [name for name in dict.fromkeys(names) if not name.startswith("_")]


def default_backend_name() -> str:
    """``$MLPCORE_BACKEND`` if set and non-empty, else ``"numpy"``."""
    return os.environ.get(ENV_BACKEND, "").strip() or DEFAULT_BACKEND


# the process-wide registry of the installed plugins, its methods as functions (as the standard
# library's random module does with its Random)
_default_registry = Registry()
list_backends = _default_registry.names
get_backend = _default_registry.get
backend_statuses = _default_registry.statuses
plugin_statuses = _default_registry.plugins
call_hook = _default_registry.call
