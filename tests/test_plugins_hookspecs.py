"""Hookspecs evolve without breaking plugins: every hook is optional to implement.

A plugin written against an older ``mlpcore.hookspecs`` implements only the hooks that existed
then; when the spec module gains a hook, that plugin must keep working, and a plugin written
against a newer mlpcore (implementing a hook this one does not know) must load too. These tests
add a hookspec to the real spec module (undone after each test) and load real plugin modules.
"""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint
from pathlib import Path

import pluggy
import pytest

from mlpcore import hookspecs
from mlpcore.hookspecs import BackendEntry, hookimpl, hookspec
from mlpcore.registry import ENV_DISABLE_PLUGINS, Registry

TESTS = Path(__file__).resolve().parent
OLD_PLUGIN = EntryPoint(name="good", value="fake_plugins.good", group="mlpcore")
"""A plugin implementing ``mlpcore_backends`` only, as written before any other hook existed."""


def _added_later(model_name: str, options: dict[str, str]) -> list[str]:  # pragma: no cover
    """A hook a later mlpcore might add: called with arguments no existing plugin knows."""
    return []


pytestmark = pytest.mark.usefixtures("fake_plugins")


@pytest.fixture
def newer_spec(monkeypatch: pytest.MonkeyPatch) -> str:
    """``mlpcore.hookspecs`` with one more hookspec, as a later release would have it."""
    name = "mlpcore_added_later"
    monkeypatch.setattr(hookspecs, name, hookspec(_added_later), raising=False)
    return name


def _module(name: str, **functions: object) -> EntryPoint:
    """A plugin module ``name`` in ``sys.modules`` with these functions, and its entry point."""
    module = types.ModuleType(name)
    for attribute, function in functions.items():
        setattr(module, attribute, function)
    sys.modules[name] = module
    return EntryPoint(name=name, value=name, group="mlpcore")


def test_an_old_plugin_keeps_working_when_a_hookspec_is_added(newer_spec: str) -> None:
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    import fake_plugins.good as old

    manager.register(old)  # pluggy validates every hookimpl against the specs: no error
    manager.check_pending()  # and nothing it implements is unknown
    assert getattr(manager.hook, newer_spec).spec is not None
    # calling the new hook, which the old plugin does not implement, just gets no results
    assert getattr(manager.hook, newer_spec)(model_name="m", options={}) == []
    assert [e.name for e in manager.hook.mlpcore_backends()[0]] == ["fakegood"]

    registry = Registry(entry_points=[OLD_PLUGIN])
    assert registry.names() == ["fakegood"]
    assert registry.get("fakegood").name == "fakegood"
    assert [(p.name, p.status, p.backends) for p in registry.plugins()] == \
        [("good", "ok", ("fakegood",))]


def test_a_plugin_implementing_the_new_hook_too_is_called_for_both(newer_spec: str) -> None:
    @hookimpl
    def mlpcore_backends() -> list[BackendEntry]:
        return [BackendEntry(name="fakenew", factory="fake_plugins.good_backend:FakeBackend")]

    @hookimpl
    def mlpcore_added_later(model_name: str) -> list[str]:  # a subset of the spec's arguments
        return [f"seen {model_name}"]

    point = _module("plugin_for_newer_mlpcore", mlpcore_backends=mlpcore_backends,
                    mlpcore_added_later=mlpcore_added_later)
    try:
        registry = Registry(entry_points=[OLD_PLUGIN, point])
        assert registry.names() == ["fakegood", "fakenew"]
        manager = pluggy.PluginManager(hookspecs.PROJECT)
        manager.add_hookspecs(hookspecs)
        manager.register(sys.modules[point.value])
        assert getattr(manager.hook, newer_spec)(model_name="m", options={}) == [["seen m"]]
    finally:
        del sys.modules[point.value]


def test_a_plugin_for_a_hook_this_mlpcore_does_not_know_still_loads() -> None:
    """The forward direction: a plugin written for a newer mlpcore, on this one."""

    @hookimpl
    def mlpcore_backends() -> list[BackendEntry]:
        return [BackendEntry(name="fakefromfuture",
                             factory="fake_plugins.good_backend:FakeBackend")]

    @hookimpl
    def mlpcore_hook_from_a_later_release(anything: object) -> None:  # pragma: no cover
        raise AssertionError("never called: this mlpcore has no such hook")

    point = _module("plugin_from_the_future", mlpcore_backends=mlpcore_backends,
                    mlpcore_hook_from_a_later_release=mlpcore_hook_from_a_later_release)
    try:
        registry = Registry(entry_points=[point])
        assert registry.names() == ["fakefromfuture"]
        assert [p.status for p in registry.plugins()] == ["ok"]
    finally:
        del sys.modules[point.value]


def test_a_plugin_implementing_only_another_hook_is_valid_and_offers_no_backend() -> None:
    """Hooks are optional: a checkpoint-formats-only plugin is not a failed backend plugin."""

    @hookimpl
    def mlpcore_checkpoint_formats() -> list[object]:
        return []

    point = _module("formats_only_plugin", mlpcore_checkpoint_formats=mlpcore_checkpoint_formats)
    try:
        registry = Registry(entry_points=[OLD_PLUGIN, point])
        assert registry.names() == ["fakegood"]
        assert [r.status for r in registry.statuses()] == ["available"]  # no failure row
        plugin = registry.plugins()[1]
        assert (plugin.name, plugin.status, plugin.backends) == ("formats_only_plugin", "ok", ())
    finally:
        del sys.modules[point.value]


def test_a_hookimpl_with_arguments_the_spec_lacks_is_a_failed_plugin(newer_spec: str) -> None:
    @hookimpl
    def mlpcore_added_later(model_name: str, not_in_the_spec: int) -> list[str]:
        return []  # pragma: no cover

    point = _module("plugin_with_a_bad_hook", mlpcore_added_later=mlpcore_added_later)
    try:
        registry = Registry(entry_points=[OLD_PLUGIN, point])
        rows = {r.name: r for r in registry.statuses()}
        assert rows["plugin_with_a_bad_hook"].status == "failed"
        assert "not_in_the_spec" in rows["plugin_with_a_bad_hook"].detail
        assert registry.get("fakegood").name == "fakegood"
    finally:
        del sys.modules[point.value]


def test_call_hook_calls_each_plugin_on_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """One plugin's raising hookimpl is returned as its result; the others still answer; a
    plugin that failed to import or is disabled is not called."""

    @hookimpl
    def mlpcore_checkpoint_formats() -> list[object]:
        raise RuntimeError("formats exploded")

    @hookimpl
    def mlpcore_checkpoint_formats_ok() -> list[object]:
        return ["a format"]

    raises = _module("formats_raise", mlpcore_checkpoint_formats=mlpcore_checkpoint_formats)
    answers = _module("formats_answer", mlpcore_checkpoint_formats=hookimpl(
        specname="mlpcore_checkpoint_formats")(mlpcore_checkpoint_formats_ok))
    disabled = _module("formats_disabled", mlpcore_checkpoint_formats=mlpcore_checkpoint_formats)
    missing = EntryPoint(name="formats_missing", value="surely_no_such_module_formats",
                         group="mlpcore")
    monkeypatch.setenv(ENV_DISABLE_PLUGINS, "formats_disabled")
    try:
        registry = Registry(entry_points=[OLD_PLUGIN, raises, missing, answers, disabled])
        results = registry.call("mlpcore_checkpoint_formats")
        assert [label for label, _ in results] == ["formats_raise", "formats_answer"]
        assert isinstance(results[0][1], RuntimeError) and "exploded" in str(results[0][1])
        assert results[1][1] == ["a format"]
        assert registry.call("mlpcore_no_such_hook") == []
        backends = registry.call("mlpcore_backends")
        assert [label for label, _ in backends] == ["good"]
    finally:
        for point in (raises, answers, disabled):
            del sys.modules[point.value]


def test_hook_order_options_do_not_change_discovery_order() -> None:
    """``trylast``/``tryfirst`` reorder pluggy's own hook call; discovery order still decides which
    of two plugins offering one backend name wins."""

    @hookimpl(trylast=True)
    def mlpcore_backends() -> list[BackendEntry]:
        return [BackendEntry(name="fakegood", factory="fake_plugins.good_backend:FakeBackend")]

    point = _module("plugin_pushing_to_the_front", mlpcore_backends=mlpcore_backends)
    try:
        registry = Registry(entry_points=[OLD_PLUGIN, point])
        assert [label for label, _ in registry.call("mlpcore_backends")] == \
            ["good", "plugin_pushing_to_the_front"]
        rows = {r.name: r for r in registry.statuses()}
        assert rows["fakegood"].plugin == "good"
        assert "already provided by good" in rows["plugin_pushing_to_the_front"].detail
    finally:
        del sys.modules[point.value]
