"""Backend discovery: fault-isolated plugin loading, statuses, errors, defaults, laziness."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import numpy as np
import pytest

import mlpcore
from mlpcore import MLP, BackendLoadError, BackendNotFoundError, MlpcoreError, MLPSpec, fit
from mlpcore.registry import ENV_BACKEND, BackendStatus, Registry, default_backend_name

TESTS = Path(__file__).resolve().parent


def ep(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group="mlpcore")


NUMPY = ep("numpy", "mlpcore_numpy.plugin")
GOOD = ep("good", "fake_plugins.good")
BROKEN = [
    ep("import_error", "fake_plugins.import_error"),
    ep("hook_raises", "fake_plugins.hook_raises"),
    ep("garbage", "fake_plugins.garbage"),
    ep("no_hook", "fake_plugins.no_hook"),
    ep("duplicate", "fake_plugins.duplicate"),
    ep("wrong_version", "fake_plugins.wrong_version"),
    ep("not_installed", "fake_plugins.not_installed"),
    ep("factory_raises", "fake_plugins.factory_raises"),
    ep("missing_module", "fake_plugins.surely_no_such_module"),
]


pytestmark = pytest.mark.usefixtures("fake_plugins")


@pytest.fixture
def registry() -> Registry:
    # good plugins first, so that the duplicate is the one reported
    return Registry(entry_points=[NUMPY, GOOD, *BROKEN])


def rows_by_name(registry: Registry, load: bool = False) -> dict[str, BackendStatus]:
    rows = registry.statuses(load=load)
    names = [r.name for r in rows]
    assert len(names) == len(set(names)), names
    return {r.name: r for r in rows}


def test_broken_plugins_do_not_break_listing(registry: Registry) -> None:
    # fakefuture (wrong contract) and fakemissing (framework absent) are not listed;
    # fakebroken and fakemisnamed are listed until a load attempt shows they fail
    assert registry.names() == ["fakebroken", "fakegood", "fakemisnamed", "numpy"]
    assert registry.get("numpy").name == "numpy"
    assert registry.get("fakegood").name == "fakegood"


def test_listing_imports_no_backend_module(registry: Registry) -> None:
    registry.names()
    registry.statuses()
    assert "fake_plugins.good" in sys.modules
    assert "fake_plugins.good_backend" not in sys.modules
    registry.get("fakegood")
    assert "fake_plugins.good_backend" in sys.modules


def test_statuses_report_each_failure_with_its_reason(registry: Registry) -> None:
    rows = rows_by_name(registry)
    assert rows["numpy"].status == "available"
    assert rows["numpy"].version == np.__version__
    assert rows["fakegood"].status == "available"
    assert rows["fakegood"].plugin == "good"
    expected_failures = {
        "import_error": "ImportError: fake plugin needs surely_missing_dependency",
        "hook_raises": "RuntimeError: the hook of this fake plugin exploded",
        "garbage": "must return a list of BackendEntry",
        "no_hook": "implements no mlpcore hook",
        "duplicate": "'fakegood' is already provided by good",
        "wrong_version": "contract version 999",
        "missing_module": "ModuleNotFoundError",
    }
    for plugin, reason in expected_failures.items():
        assert rows[plugin].status == "failed", plugin
        assert reason in rows[plugin].detail, (plugin, rows[plugin].detail)
    assert rows["fakemissing"].status == "not installed"
    assert rows["fakemissing"].detail == "pip install mlpcore-surely-not-installed"
    assert rows["fakemissing"].plugin == "not_installed"


def test_factory_failures_are_reported_after_loading(registry: Registry) -> None:
    with pytest.raises(BackendLoadError, match="factory of this fake backend exploded") as info:
        registry.get("fakebroken")
    assert isinstance(info.value, MlpcoreError) and isinstance(info.value, RuntimeError)
    assert "fakebroken" in str(info.value) and "factory_raises" in str(info.value)
    # the failure is remembered: asked again, the same error, without retrying the factory
    with pytest.raises(BackendLoadError, match="exploded"):
        registry.get("fakebroken")
    rows = rows_by_name(registry)
    assert rows["fakebroken"].status == "failed"
    assert "RuntimeError: the factory of this fake backend exploded" in rows["fakebroken"].detail
    assert "fakebroken" not in registry.names()
    assert registry.get("fakegood").name == "fakegood"  # the others keep working


def test_statuses_with_load_loads_every_installed_backend(registry: Registry) -> None:
    rows = rows_by_name(registry, load=True)
    assert rows["numpy"].status == "ok" and rows["numpy"].version == np.__version__
    assert rows["fakegood"].status == "ok"
    assert rows["fakebroken"].status == "failed"
    # a factory returning a backend under another name than its entry is refused
    assert rows["fakemisnamed"].status == "failed"
    assert "'fakegood'" in rows["fakemisnamed"].detail
    assert "'fakemisnamed'" in rows["fakemisnamed"].detail
    assert rows["fakemissing"].status == "not installed"
    assert registry.names() == ["fakegood", "numpy"]


def test_unknown_name_lists_installed_backends_and_how_to_install(registry: Registry) -> None:
    with pytest.raises(BackendNotFoundError) as info:
        registry.get("tensorflw")
    error = info.value
    assert isinstance(error, LookupError) and isinstance(error, MlpcoreError)
    message = str(error)
    assert "'tensorflw'" in message
    assert "fakegood" in message and "numpy" in message
    assert "install" in message
    assert "pip install mlpcore-surely-not-installed" in message  # known but not installed


def test_not_installed_backend_gives_the_install_hint(registry: Registry) -> None:
    with pytest.raises(BackendNotFoundError) as info:
        registry.get("fakemissing")
    message = str(info.value)
    assert "surely_not_installed_pkg" in message
    assert "pip install mlpcore-surely-not-installed" in message
    assert "surely_not_installed_pkg" not in sys.modules


def test_a_backend_is_loaded_once(registry: Registry) -> None:
    assert registry.get("fakegood") is registry.get("fakegood")


def test_environment_sets_the_default_only(registry: Registry,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_backend_name() == "numpy"
    assert registry.get().name == "numpy"
    monkeypatch.setenv(ENV_BACKEND, "fakegood")
    assert default_backend_name() == "fakegood"
    assert registry.get().name == "fakegood"
    assert registry.get(None).name == "fakegood"
    assert registry.get("numpy").name == "numpy"  # an explicit name wins
    monkeypatch.setenv(ENV_BACKEND, "  ")
    assert default_backend_name() == "numpy"


def test_environment_default_through_the_public_api(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = MLPSpec(sizes=(3, 2))
    monkeypatch.setenv(ENV_BACKEND, "surely_no_such_backend")
    with pytest.raises(BackendNotFoundError, match="surely_no_such_backend"):
        MLP(spec)
    assert MLP(spec, backend="numpy").backend.name == "numpy"
    assert mlpcore.get_backend("numpy").name == "numpy"
    monkeypatch.setenv(ENV_BACKEND, "numpy")
    assert MLP(spec).backend.name == "numpy"


def test_backends_side_by_side_in_one_process(registry: Registry) -> None:
    spec = MLPSpec(sizes=(4, 5, 3), activation="relu", dropout=0.2)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(20, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=20)
    a = MLP(spec, backend=registry.get("numpy"), seed=5)
    b = MLP(spec, backend=registry.get("fakegood"), seed=5)
    assert (a.backend.name, b.backend.name) == ("numpy", "fakegood")
    # same seed, same starting weights on both backends
    for name, value in a.variables.items():
        np.testing.assert_array_equal(value, b.variables[name])
    # training one does not touch the other; portable dropout gives the same run on both
    fit(a, (x, y), epochs=2, batch_size=8)
    assert not np.array_equal(a.variables["dense_0/weights"], b.variables["dense_0/weights"])
    fit(b, (x, y), epochs=2, batch_size=8)
    np.testing.assert_array_equal(a.predict(x), b.predict(x))
    assert type(a.native) is type(b.native)
    assert a.native is not b.native


def test_default_registry_lists_the_numpy_entry_point() -> None:
    assert "numpy" in mlpcore.list_backends()
    rows = {r.name: r for r in mlpcore.backend_statuses()}
    assert rows["numpy"].status in {"available", "ok"}
    assert mlpcore.get_backend("numpy").name == "numpy"


def test_import_and_listing_import_no_framework_nor_numpy() -> None:
    code = (
        "import json, sys\n"
        "import mlpcore\n"
        "names = mlpcore.list_backends()\n"
        "rows = [(r.name, r.status) for r in mlpcore.backend_statuses()]\n"
        "heavy = sorted(m for m in sys.modules\n"
        "               if m.split('.')[0] in {'torch', 'tensorflow', 'jax', 'jaxlib', 'keras',\n"
        "                                      'numpy', 'safetensors'})\n"
        "print(json.dumps({'names': names, 'rows': rows, 'heavy': heavy}))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != ENV_BACKEND}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=env, cwd=TESTS.parent, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    assert "numpy" in report["names"]
    assert ["numpy", "available"] in report["rows"]
