"""Backend discovery on pluggy: find, list and load backends without breaking on a bad plugin.

Discovery reads the ``mlpcore`` entry-point group, imports each plugin module and asks it for its
:class:`~mlpcore.hookspecs.BackendEntry` list. Nothing here imports a framework, nor NumPy: a
backend's ``factory`` is imported the first time that backend is requested. Every failure on the
way (a plugin that does not import, a hook that raises, a duplicate name, a wrong contract
version, a factory that fails) is recorded against that plugin or backend and reported by
:func:`backend_statuses` and :func:`plugin_statuses`; the other backends keep working.

``$MLPCORE_DISABLE_PLUGINS`` (comma-separated entry-point or distribution names) switches plugins
off: a disabled plugin's module is never imported and it is listed as ``disabled``.

Hooks are optional to implement (pluggy's rule): a plugin implementing any hook of
:mod:`mlpcore.hookspecs` is a valid plugin, one implementing ``mlpcore_backends`` offers backends,
and a hookspec added in a later mlpcore leaves existing plugins working unchanged.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Literal

import pluggy

from mlpcore import hookspecs
from mlpcore.errors import BackendLoadError, BackendNotFoundError
from mlpcore.hookspecs import BackendEntry
from mlpcore.version import CONTRACT_VERSION

if TYPE_CHECKING:
    from mlpcore.backend import Backend

__all__ = [
    "DEFAULT_BACKEND",
    "ENTRY_POINT_GROUP",
    "ENV_BACKEND",
    "ENV_DISABLE_PLUGINS",
    "SUPPORTED_CONTRACT_VERSIONS",
    "BackendStatus",
    "PluginStatus",
    "Registry",
    "backend_statuses",
    "call_hook",
    "default_backend_name",
    "disabled_plugins",
    "get_backend",
    "list_backends",
    "plugin_modules",
    "plugin_statuses",
]

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
    """One row of ``mlpcore backends``.

    ``status`` is ``"available"`` (installed, not loaded yet), ``"ok"`` (loaded and working),
    ``"not installed"`` (``detail`` is the install command), ``"failed"`` (``detail`` is why) or
    ``"disabled"`` (switched off by ``$MLPCORE_DISABLE_PLUGINS``). A row for a failed or disabled
    *plugin* (it did not import, its hook failed, it offered a duplicate or unsupported backend,
    or it is disabled) has ``name == plugin``: ``"<distribution> (<module>)"`` for an installed
    distribution, else the entry-point name.

    ``version`` is the framework's version; ``distribution`` and ``distribution_version`` name
    the installed distribution that provides the plugin (empty when the entry point has none);
    ``contract_version`` is the contract version the backend's entry declares (``None`` on a
    plugin row that declares none).
    """

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
    """One discovered plugin: an entry point of the ``mlpcore`` group.

    ``name`` is the entry-point name and ``value`` its module (``mlpcore_numpy.plugin``);
    ``distribution``/``version`` the distribution that declares it (empty without one).
    ``status`` is ``"ok"`` (imported and registered; its hooks ran), ``"failed"`` (``detail`` is
    why: it did not load, or some of its entries were refused) or ``"disabled"``. ``backends``
    are the backend names it offered and the registry kept.
    """

    name: str
    value: str
    distribution: str
    version: str
    status: PluginState
    detail: str = ""
    backends: tuple[str, ...] = ()


@dataclass(frozen=True)
class _PluginFailure:
    plugin: str
    reason: str
    distribution: str = ""
    distribution_version: str = ""
    contract_version: int | None = None
    status: Literal["failed", "disabled"] = "failed"


@dataclass(frozen=True)
class _Origin:
    """Where a plugin comes from: its display name and its distribution."""

    label: str
    distribution: str
    version: str


def _normalise(name: str) -> str:
    """A distribution or plugin name compared the PEP 503 way: lowercase, ``-_.`` runs as ``-``."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def disabled_plugins() -> frozenset[str]:
    """The normalised names in ``$MLPCORE_DISABLE_PLUGINS`` (empty entries ignored)."""
    raw = os.environ.get(ENV_DISABLE_PLUGINS, "")
    return frozenset(_normalise(part) for part in raw.split(",") if part.strip())


def _origin(entry_point: importlib.metadata.EntryPoint) -> _Origin:
    dist = entry_point.dist
    if dist is None:
        return _Origin(entry_point.name, "", "")
    name = dist.name  # from METADATA; a broken distribution may lack it
    if not name:
        return _Origin(entry_point.name, "", "")
    return _Origin(f"{name} ({entry_point.value})", name, dist.version or "")


class _PluginError(Exception):
    """A plugin that imported but is not a valid plugin; reported with its message alone."""


def _describe(error: BaseException) -> str:
    """``Type: message`` on one line (pluggy's messages span several)."""
    text = " ".join(str(error).split())
    return text if isinstance(error, _PluginError) else f"{type(error).__name__}: {text}"


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
        self._origins: dict[str, _Origin] = {}
        self._plugins: list[PluginStatus] = []
        self._disabled_names: set[str] = set()
        self._failures: list[_PluginFailure] = []
        self._backend_failures: dict[str, str] = {}
        self._rejected: dict[str, str] = {}
        self._backends: dict[str, Backend] = {}
        self._modules: list[tuple[str, ModuleType]] = []
        self._manager = pluggy.PluginManager(hookspecs.PROJECT)

    def _entry_points(self) -> list[importlib.metadata.EntryPoint]:
        """The given entry points in their order, else the installed ones: mlpcore's own first,
        then by distribution and entry-point name, so that which of two plugins offering the
        same backend name wins never depends on ``sys.path`` order, and a third-party plugin
        cannot displace a built-in backend."""
        if self._given_entry_points is not None:
            return self._given_entry_points

        def order(point: importlib.metadata.EntryPoint) -> tuple[bool, str, str]:
            distribution = _normalise(point.dist.name or "") if point.dist is not None else ""
            return distribution != "mlpcore", distribution, point.name

        return sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=order)

    def _discover(self) -> None:
        with self._lock:
            if self._discovered:
                return
            disabled = disabled_plugins()
            manager = self._manager
            manager.add_hookspecs(hookspecs)
            for entry_point in self._entry_points():
                origin = _origin(entry_point)
                if {_normalise(entry_point.name), _normalise(origin.distribution)} & disabled:
                    self._disabled_names.add(entry_point.name)
                    self._record_plugin(entry_point, origin, "disabled",
                                        f"named in ${ENV_DISABLE_PLUGINS}")
                    continue
                try:
                    module, entries = self._call_plugin(manager, entry_point)
                except Exception as error:  # a broken plugin is reported, never fatal
                    self._record_plugin(entry_point, origin, "failed", _describe(error))
                    continue
                self._modules.append((origin.label, module))
                kept, problems = self._add_entries(origin, entries)
                self._failures.extend(problems)
                self._plugins.append(PluginStatus(
                    entry_point.name, entry_point.value, origin.distribution, origin.version,
                    "failed" if problems else "ok", "; ".join(p.reason for p in problems), kept))
            self._discovered = True

    @staticmethod
    def _call_plugin(manager: pluggy.PluginManager,
                     entry_point: importlib.metadata.EntryPoint) -> tuple[ModuleType, object]:
        """Import and register one plugin: its module and the result of its
        ``mlpcore_backends`` hook, or ``[]`` when it implements only other hooks. Raises
        whatever the plugin raises."""
        module = entry_point.load()
        manager.register(module, name=f"{entry_point.name}:{entry_point.value}")
        implemented = manager.get_hookcallers(module) or []
        own = [impl for impl in manager.hook.mlpcore_backends.get_hookimpls()
               if impl.plugin is module]
        if own:
            return module, own[0].function()
        if any(caller.name in _known_hooks() for caller in implemented):
            # a plugin for other hooks only (e.g. checkpoint formats): no backends
            return module, []
        raise _PluginError("the plugin module implements no mlpcore hook (expected at least one "
                          f"of {', '.join(sorted(_known_hooks()))}, marked with "
                          "mlpcore.hookspecs.hookimpl)")

    def _record_plugin(self, entry_point: importlib.metadata.EntryPoint, origin: _Origin,
                       status: Literal["failed", "disabled"], detail: str) -> None:
        """A plugin that offers nothing: it failed before its entries, or is disabled."""
        self._plugins.append(PluginStatus(entry_point.name, entry_point.value,
                                          origin.distribution, origin.version, status, detail))
        self._failures.append(_PluginFailure(origin.label, detail, origin.distribution,
                                             origin.version, status=status))

    def _add_entries(self, origin: _Origin,
                     entries: object) -> tuple[tuple[str, ...], list[_PluginFailure]]:
        """Keep the valid entries of one plugin: the names kept, and one failure per entry
        refused (or one for a result that is not a list of entries)."""
        plugin_name = origin.label
        if not isinstance(entries, list | tuple) or \
                not all(isinstance(e, BackendEntry) for e in entries):
            return (), [_PluginFailure(
                plugin_name, "mlpcore_backends() must return a list of BackendEntry",
                origin.distribution, origin.version)]
        kept: list[str] = []
        problems: list[_PluginFailure] = []
        for entry in entries:
            if entry.name in self._entries:
                other = self._entries[entry.name][1]
                problems.append(_PluginFailure(
                    plugin_name, f"backend name {entry.name!r} is already provided by {other}",
                    origin.distribution, origin.version, entry.contract_version))
            elif entry.contract_version not in SUPPORTED_CONTRACT_VERSIONS:
                supported = ", ".join(str(v) for v in sorted(SUPPORTED_CONTRACT_VERSIONS))
                reason = (f"backend {entry.name!r} implements contract version "
                          f"{entry.contract_version!r}; this mlpcore supports {supported}")
                problems.append(_PluginFailure(plugin_name, reason, origin.distribution,
                                               origin.version, entry.contract_version))
                self._rejected.setdefault(entry.name, f"{reason} (plugin {plugin_name})")
            else:
                self._entries[entry.name] = (entry, plugin_name)
                self._origins[entry.name] = origin
                kept.append(entry.name)
        return tuple(kept), problems

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
        """A row per backend and per failed or disabled plugin. ``load=True`` loads each
        installed backend (importing its framework)."""
        self._discover()
        rows: list[BackendStatus] = []
        for name, (entry, plugin) in sorted(self._entries.items()):
            origin = self._origins[name]
            version = _distribution_version(entry.framework_distributions)

            def row(status: Status, version: str, detail: str = "",
                    _name: str = name, _plugin: str = plugin, _origin: _Origin = origin,
                    _entry: BackendEntry = entry) -> BackendStatus:
                return BackendStatus(_name, status, version, _plugin, detail,
                                     _origin.distribution, _origin.version,
                                     _entry.contract_version)

            if not self._installed(entry):
                rows.append(row("not installed", "", entry.install_hint))
                continue
            if load and name not in self._backend_failures:
                with contextlib.suppress(BackendLoadError):
                    self.get(name)
            if name in self._backend_failures:
                rows.append(row("failed", version, self._backend_failures[name]))
            elif name in self._backends:
                rows.append(row("ok", self._backends[name].framework_version()))
            else:
                rows.append(row("available", version))
        rows.extend(BackendStatus(f.plugin, f.status, "", f.plugin, f.reason, f.distribution,
                                  f.distribution_version, f.contract_version)
                    for f in self._failures)
        return rows

    def plugin_modules(self) -> list[tuple[str, ModuleType]]:
        """``(label, module)`` of every plugin that was imported and registered, in discovery
        order: not the disabled ones, not those that failed to import or to answer
        ``mlpcore_backends``. Other hooks (checkpoint formats) are asked of these modules, so
        ``$MLPCORE_DISABLE_PLUGINS`` and fault isolation apply to every hook alike."""
        self._discover()
        return list(self._modules)

    def call(self, hook_name: str) -> list[tuple[str, object]]:
        """``(plugin label, result)`` per loaded plugin implementing ``hook_name``, in discovery
        order; ``result`` is what the hook returned, or the exception it raised. Each hookimpl
        is called on its own, so one that raises never keeps another from answering."""
        self._discover()
        caller = getattr(self._manager.hook, hook_name, None)
        impls = {id(impl.plugin): impl for impl in caller.get_hookimpls()} if caller else {}
        results: list[tuple[str, object]] = []
        for label, module in self._modules:
            impl = impls.get(id(module))
            if impl is None:
                continue
            try:
                result: object = impl.function()
            except Exception as error:  # a broken plugin is reported, never fatal
                result = error
            results.append((label, result))
        return results

    def plugins(self) -> list[PluginStatus]:
        """One record per entry point of the group, in discovery order. Imports no framework."""
        self._discover()
        return list(self._plugins)

    def get(self, name: str | None = None) -> Backend:
        """The backend called ``name`` (default: :func:`default_backend_name`), loaded once."""
        name = default_backend_name() if name is None else name
        self._discover()
        with self._lock:
            if name in self._backends:
                return self._backends[name]
            if name not in self._entries:
                message = self._not_found_message(name)
                if name in self._disabled_names:
                    message = (f"mlpcore plugin {name!r} is disabled by "
                               f"${ENV_DISABLE_PLUGINS}; remove it from there to use it. "
                               f"{message}")
                elif name in self._rejected:
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
        missing = _missing_members(backend)
        if missing:
            raise TypeError(f"{entry.factory} returned an object that does not implement the "
                            f"backend contract: it lacks {', '.join(missing)}")
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


def _members(protocol: type) -> list[str]:
    """The attributes and methods a Protocol class declares (its own and its bases')."""
    names: list[str] = []
    for klass in reversed(protocol.__mro__):
        if klass is object or klass.__name__ in ("Protocol", "Generic"):
            continue
        for name in [*getattr(klass, "__annotations__", {}), *vars(klass)]:
            if not name.startswith("_") and name not in names:
                names.append(name)
    return names


def _missing_members(backend: object) -> list[str]:
    """What ``backend`` lacks of :class:`~mlpcore.backend.Backend` and of its operations objects
    (:class:`~mlpcore.activations.ActivationOps` and the others), as ``name`` or
    ``activations.derivative``."""
    from mlpcore.activations import ActivationOps
    from mlpcore.backend import Backend
    from mlpcore.dropout import DropoutOps
    from mlpcore.losses import LossOps
    from mlpcore.regularisers import RegulariserOps

    missing = [name for name in _members(Backend) if not hasattr(backend, name)]
    for attribute, protocol in (("activations", ActivationOps), ("losses", LossOps),
                                ("regularisers", RegulariserOps), ("dropout", DropoutOps)):
        ops = getattr(backend, attribute, None)
        if ops is not None:
            missing += [f"{attribute}.{name}" for name in _members(protocol)
                        if not callable(getattr(ops, name, None))]
    return missing


def _known_hooks() -> frozenset[str]:
    """The hooks :mod:`mlpcore.hookspecs` defines: its functions marked with ``hookspec``."""
    marker = f"{hookspecs.PROJECT}_spec"
    return frozenset(name for name, value in vars(hookspecs).items()
                     if callable(value) and hasattr(value, marker))


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
    """Every discovered backend and failed or disabled plugin, as shown by ``mlpcore backends``."""
    return _default_registry.statuses(load=load)


def plugin_modules() -> list[tuple[str, ModuleType]]:
    """The imported plugin modules of the installed ``mlpcore`` group (see
    :meth:`Registry.plugin_modules`)."""
    return _default_registry.plugin_modules()


def call_hook(hook_name: str) -> list[tuple[str, object]]:
    """Call ``hook_name`` of every loaded, enabled plugin of the installed ``mlpcore`` group, each
    on its own: ``(plugin label, return value or the exception raised)`` in discovery order."""
    return _default_registry.call(hook_name)


def plugin_statuses() -> list[PluginStatus]:
    """Every entry point of the ``mlpcore`` group: its distribution, status and backends."""
    return _default_registry.plugins()
