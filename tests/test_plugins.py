"""Third-party plugins installed as real distributions: broken ones never break mlpcore.

Each test writes installed distributions the way pip leaves them, a ``<name>-<version>.dist-info``
folder with ``METADATA`` and ``entry_points.txt`` next to the plugin's modules, into a temporary
folder put on ``sys.path`` (or on ``PYTHONPATH`` of a subprocess). ``importlib.metadata`` then
finds them exactly as it finds an installed plugin: nothing here hands the registry its entry
points.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from mlpcore import BackendLoadError, BackendNotFoundError
from mlpcore.registry import (
    ENV_BACKEND,
    ENV_DISABLE_PLUGINS,
    SUPPORTED_CONTRACT_VERSIONS,
    BackendStatus,
    Registry,
    plugin_statuses,
)

MLPCORE_VERSION = importlib.metadata.version("mlpcore")


@dataclass(eq=False)
class Distribution:
    """An installed distribution: metadata, ``mlpcore`` entry points and module sources."""

    name: str
    version: str
    entry_points: dict[str, str]
    modules: dict[str, str] = field(default_factory=dict)

    def install(self, site: Path) -> None:
        """Write it into ``site`` as pip would (modules at the top, a ``.dist-info`` folder)."""
        info = site / f"{self.name.replace('-', '_')}-{self.version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {self.name}\nVersion: {self.version}\n",
            encoding="utf-8")
        lines = ["[mlpcore]", *(f"{k} = {v}" for k, v in self.entry_points.items())]
        (info / "entry_points.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
        for module, source in self.modules.items():
            path = site.joinpath(*module.split(".")).with_suffix(".py")
            path.parent.mkdir(parents=True, exist_ok=True)
            for parent in path.relative_to(site).parents:
                if parent != Path("."):
                    (site / parent / "__init__.py").touch()
            path.write_text(textwrap.dedent(source), encoding="utf-8")


def _plugin(name: str, factory: str, extra: str = "") -> str:
    """Source of a plugin module offering one backend ``name`` made by ``factory``."""
    return f"""
        from mlpcore.hookspecs import BackendEntry, hookimpl


        @hookimpl
        def mlpcore_backends():
            return [BackendEntry(name={name!r}, factory={factory!r}{extra})]
        """


NUMPY_UNDER_ANOTHER_NAME = """
    from mlpcore_numpy.backend import NumpyBackend


    class Backend(NumpyBackend):
        name = {name!r}
    """

GOOD = Distribution("mlpcore-thirdgood", "1.2.3", {"thirdgood": "thirdgood_plugin.plugin"}, {
    "thirdgood_plugin.plugin": _plugin("thirdgood", "thirdgood_plugin.backend:Backend"),
    "thirdgood_plugin.backend": NUMPY_UNDER_ANOTHER_NAME.format(name="thirdgood"),
})
IMPORT_ERROR = Distribution("mlpcore-importerror", "0.1", {"importerror": "importerror_plugin"}, {
    "importerror_plugin": "import surely_not_an_installed_module_xyz\n",
})
MISSING_METHOD = Distribution("mlpcore-nobuild", "0.2", {"nobuild": "nobuild_plugin.plugin"}, {
    "nobuild_plugin.plugin": _plugin("nobuild", "nobuild_plugin.backend:Backend"),
    "nobuild_plugin.backend": """
        from mlpcore_numpy.backend import NumpyBackend


        class Dropout:
            pass  # forgot apply


        class Backend:
            name = "nobuild"
            contract_version = 1
            capabilities = frozenset()
            training_methods = ("manual",)

            def __init__(self):
                reference = NumpyBackend()
                self.activations = reference.activations
                self.losses = reference.losses
                self.regularisers = reference.regularisers
                self.dropout = Dropout()

            def framework_version(self):
                return "0"
            # forgot build()
        """,
})
FUTURE = Distribution("mlpcore-future", "9.0", {"future": "future_plugin.plugin"}, {
    "future_plugin.plugin": _plugin("future", "future_plugin.backend:Backend",
                                    ", contract_version=2"),
    "future_plugin.backend": NUMPY_UNDER_ANOTHER_NAME.format(name="future"),
})
DUPLICATE = Distribution("mlpcore-aaa-duplicate", "0.3", {"numpy": "duplicate_plugin.plugin"}, {
    # sorts before "mlpcore" and sits first on sys.path; it still must not displace numpy
    "duplicate_plugin.plugin": _plugin("numpy", "duplicate_plugin.backend:Backend"),
    "duplicate_plugin.backend": NUMPY_UNDER_ANOTHER_NAME.format(name="numpy"),
})
BAD_SIGNATURE = Distribution("mlpcore-badsig", "0.4", {"badsig": "badsig_plugin"}, {
    "badsig_plugin": """
        from mlpcore.hookspecs import hookimpl


        @hookimpl
        def mlpcore_backends(an_argument_the_spec_does_not_have):
            return []
        """,
})
RAISES_ON_IMPORT = Distribution("mlpcore-explodes", "0.5", {"explodes": "explodes_plugin"}, {
    "explodes_plugin": "raise RuntimeError('this plugin must never be imported')\n",
})
BROKEN = [IMPORT_ERROR, MISSING_METHOD, FUTURE, DUPLICATE, BAD_SIGNATURE, RAISES_ON_IMPORT]

PLUGIN_PACKAGES = ("thirdgood_plugin", "importerror_plugin", "nobuild_plugin", "future_plugin",
                   "duplicate_plugin", "badsig_plugin", "explodes_plugin")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A site folder on ``sys.path`` (first), forgotten with its modules after the test."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    monkeypatch.delenv(ENV_DISABLE_PLUGINS, raising=False)
    yield folder
    for module in [m for m in sys.modules if m.split(".")[0] in PLUGIN_PACKAGES]:
        del sys.modules[module]


def install(site: Path, *distributions: Distribution) -> None:
    for distribution in distributions:
        distribution.install(site)


def rows_by_name(registry: Registry, load: bool = False) -> dict[str, BackendStatus]:
    rows = registry.statuses(load=load)
    return {r.name: r for r in rows}


def test_a_real_third_party_distribution_is_found_through_its_entry_point(site: Path) -> None:
    install(site, GOOD)
    registry = Registry()
    assert "thirdgood" in registry.names() and "numpy" in registry.names()
    row = rows_by_name(registry)["thirdgood"]
    assert (row.status, row.distribution, row.distribution_version, row.contract_version) == \
        ("available", "mlpcore-thirdgood", "1.2.3", 1)
    assert row.plugin == "mlpcore-thirdgood (thirdgood_plugin.plugin)"
    assert "thirdgood_plugin.backend" not in sys.modules  # listing imports no backend module
    backend = registry.get("thirdgood")
    assert backend.name == "thirdgood" and "thirdgood_plugin.backend" in sys.modules
    plugin = next(p for p in registry.plugins() if p.name == "thirdgood")
    assert (plugin.value, plugin.distribution, plugin.version, plugin.status, plugin.backends) == \
        ("thirdgood_plugin.plugin", "mlpcore-thirdgood", "1.2.3", "ok", ("thirdgood",))


def test_broken_distributions_are_reported_and_the_others_keep_working(site: Path) -> None:
    install(site, GOOD, *BROKEN)
    registry = Registry()
    rows = rows_by_name(registry)
    failures = {
        IMPORT_ERROR: "ModuleNotFoundError: No module named 'surely_not_an_installed_module_xyz'",
        FUTURE: "backend 'future' implements contract version 2; this mlpcore supports 1",
        DUPLICATE: "backend name 'numpy' is already provided by mlpcore (mlpcore_numpy.plugin)",
        BAD_SIGNATURE: "an_argument_the_spec_does_not_have",
        RAISES_ON_IMPORT: "RuntimeError: this plugin must never be imported",
    }
    for distribution, reason in failures.items():
        value = next(iter(distribution.entry_points.values()))
        row = rows[f"{distribution.name} ({value})"]
        assert row.status == "failed", row
        assert reason in row.detail, (distribution.name, row.detail)
        assert (row.distribution, row.distribution_version) == \
            (distribution.name, distribution.version)
    assert rows[f"{FUTURE.name} (future_plugin.plugin)"].contract_version == 2
    # the duplicate did not displace the built-in numpy backend, though it comes first on sys.path
    assert registry.get("numpy").__module__ == "mlpcore_numpy.backend"
    assert "duplicate_plugin.plugin" in sys.modules  # it was imported, and refused
    assert "duplicate_plugin.backend" not in sys.modules
    # every working backend still works, side by side with the broken plugins
    assert registry.get("thirdgood").name == "thirdgood"
    assert {"numpy", "thirdgood", "nobuild"} <= set(registry.names())
    assert "future" not in registry.names()


def test_a_backend_missing_a_contract_method_fails_when_loaded(site: Path) -> None:
    install(site, GOOD, MISSING_METHOD)
    registry = Registry()
    assert rows_by_name(registry)["nobuild"].status == "available"  # not loaded yet
    with pytest.raises(BackendLoadError) as info:
        registry.get("nobuild")
    message = str(info.value)
    assert "does not implement the backend contract" in message
    assert "build" in message and "dropout.apply" in message
    assert "mlpcore-nobuild (nobuild_plugin.plugin)" in message
    rows = rows_by_name(registry, load=False)
    assert rows["nobuild"].status == "failed" and "dropout.apply" in rows["nobuild"].detail
    assert "nobuild" not in registry.names()
    assert registry.get("thirdgood").name == "thirdgood"


def test_a_wrong_contract_version_is_refused_saying_what_is_supported(site: Path) -> None:
    install(site, FUTURE)
    registry = Registry()
    with pytest.raises(BackendNotFoundError) as info:
        registry.get("future")
    message = str(info.value)
    supported = ", ".join(str(v) for v in sorted(SUPPORTED_CONTRACT_VERSIONS))
    assert "'future' was found but refused" in message
    assert f"implements contract version 2; this mlpcore supports {supported}" in message
    assert "mlpcore-future (future_plugin.plugin)" in message
    assert "future_plugin.backend" not in sys.modules  # refused before its factory is imported
    plugin = next(p for p in registry.plugins() if p.name == "future")
    assert (plugin.status, plugin.backends, plugin.version) == ("failed", (), "9.0")
    assert "contract version 2" in plugin.detail


def test_disabled_plugins_are_never_imported(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(site, GOOD, RAISES_ON_IMPORT)
    # by entry-point name, and by distribution name in any spelling (PEP 503 normalisation)
    monkeypatch.setenv(ENV_DISABLE_PLUGINS, " explodes , MLPCORE_thirdGood,")
    registry = Registry()
    rows = rows_by_name(registry)
    for label in ("mlpcore-explodes (explodes_plugin)",
                  "mlpcore-thirdgood (thirdgood_plugin.plugin)"):
        assert rows[label].status == "disabled", rows[label]
        assert ENV_DISABLE_PLUGINS in rows[label].detail
    assert "explodes_plugin" not in sys.modules and "thirdgood_plugin" not in sys.modules
    assert "thirdgood" not in registry.names() and "numpy" in registry.names()
    statuses = {p.name: p.status for p in registry.plugins()}
    assert statuses["explodes"] == statuses["thirdgood"] == "disabled"
    assert statuses["numpy"] == "ok"
    with pytest.raises(BackendNotFoundError, match="'thirdgood' is disabled by"):
        registry.get("thirdgood")


def test_disabling_a_built_in_backend(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(site, GOOD)
    monkeypatch.setenv(ENV_DISABLE_PLUGINS, "numpy")
    registry = Registry()
    assert "numpy" not in registry.names()
    assert registry.get("thirdgood").name == "thirdgood"  # its own module imports mlpcore_numpy


def _run(code: str, site: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items()
                   if k not in (ENV_BACKEND, ENV_DISABLE_PLUGINS)}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(site), *filter(None, [os.environ.get("PYTHONPATH")])])
    environment.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=environment, cwd=site, timeout=120, check=False)


def test_import_mlpcore_and_training_survive_every_broken_plugin(site: Path) -> None:
    """A fresh interpreter with every broken distribution installed: ``import mlpcore``, the
    default registry, the CLI's listing and a training run on numpy all work."""
    install(site, GOOD, *BROKEN)
    code = textwrap.dedent("""
        import json, sys
        import numpy as np
        import mlpcore
        names = mlpcore.list_backends()
        spec = mlpcore.MLPSpec((3, 4, 2))
        x = np.ones((6, 3), np.float32); y = np.array([0, 1] * 3)
        history = mlpcore.fit(mlpcore.MLP(spec, backend="numpy"), (x, y), epochs=1)
        rows = {r.name: [r.status, r.detail] for r in mlpcore.backend_statuses()}
        print(json.dumps({"names": names, "loss": history.loss, "rows": rows}))
    """)
    result = _run(code, site)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"numpy", "thirdgood"} <= set(report["names"])
    assert np.isfinite(report["loss"][0])
    failed = [name for name, (status, _) in report["rows"].items() if status == "failed"]
    assert len(failed) == 5, report["rows"]


def test_mlpcore_backends_shows_distribution_version_contract_and_errors(site: Path) -> None:
    install(site, GOOD, IMPORT_ERROR, MISSING_METHOD, FUTURE, RAISES_ON_IMPORT)
    code = "import sys, mlpcore.cli; sys.exit(mlpcore.cli.main(['backends']))"
    # torch and tensorflow switched off too, so that loading every backend imports no framework
    disabled = {ENV_DISABLE_PLUGINS: "explodes,torch,tensorflow"}
    result = _run(code, site, **disabled)
    assert result.returncode == 0, result.stderr
    header, *lines = result.stdout.splitlines()
    assert header.split() == ["NAME", "VERSION", "CONTRACT", "DEVICES", "PLUGIN", "STATUS"]
    by_start = {line.split()[0]: line for line in lines}
    # thirdgood has no devices(): a backend of the documented Protocols runs on the CPU
    assert by_start["thirdgood"].split()[2:] == ["1", "cpu", "mlpcore-thirdgood==1.2.3", "ok"]
    assert by_start["numpy"].split()[2:] == ["1", "cpu", f"mlpcore=={MLPCORE_VERSION}", "ok"]
    nobuild = by_start["nobuild"]
    assert "mlpcore-nobuild==0.2" in nobuild and "failed: TypeError:" in nobuild
    assert "lacks build, dropout.apply" in nobuild
    importerror = by_start["mlpcore-importerror"]
    assert "mlpcore-importerror==0.1" in importerror
    assert "failed: ModuleNotFoundError: No module named 'surely_not_an_installed_module_xyz'" \
        in importerror
    future = by_start["mlpcore-future"]
    assert "mlpcore-future==9.0" in future and future.split()[3] == "2"
    assert "this mlpcore supports 1" in future
    assert "disabled" in by_start["mlpcore-explodes"]
    assert "never be imported" not in result.stdout

    plugins = _run("import sys, mlpcore.cli; sys.exit(mlpcore.cli.main(['backends', "
                   "'--plugins']))", site, **disabled)
    assert plugins.returncode == 0, plugins.stderr
    table = {line.split()[0]: line.split() for line in plugins.stdout.splitlines()[1:]}
    assert table["thirdgood"][1:4] == ["thirdgood_plugin.plugin", "mlpcore-thirdgood==1.2.3",
                                       "thirdgood"]
    assert table["thirdgood"][4] == "ok"
    assert table["explodes"][1:5] == ["explodes_plugin", "mlpcore-explodes==0.5", "-",
                                      "disabled:"]
    assert table["importerror"][3:5] == ["-", "failed:"]
    assert table["torch"][4] == "disabled:"


def test_default_registry_is_the_installed_one() -> None:
    """The process-wide registry reads the installed entry points (nothing given)."""
    rows = {p.name: p for p in plugin_statuses()}
    assert rows["numpy"].status == "ok" and rows["numpy"].distribution == "mlpcore"
    assert rows["numpy"].value == "mlpcore_numpy.plugin"
