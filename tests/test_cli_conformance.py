"""``mlpcore conformance``: runs the conformance suite with pytest, passing options through."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlpcore.cli import main

TESTS = Path(__file__).resolve().parent
ENV = "MLPCORE_CONFORMANCE_BACKEND"


@pytest.fixture
def pytest_calls(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Replace ``pytest.main`` with a recorder that returns 0."""
    calls: list[list[str]] = []

    def fake_main(args: list[str]) -> int:
        calls.append(list(args))
        return 0

    monkeypatch.setattr(pytest, "main", fake_main)
    return calls


def test_options_and_extra_arguments_reach_pytest(pytest_calls: list[list[str]]) -> None:
    code = main(["conformance", "--backend", "torch", "--matrix", "--examples", "9",
                 "--xfails", "known.txt", "--report", "out/report", "-x", "-k",
                 "relu and float32", "--", "--tb=line"])
    assert code == 0
    assert pytest_calls == [[
        "--pyargs", "mlpcore_conformance", "--mlpcore-backend", "torch", "--mlpcore-matrix",
        "--mlpcore-examples", "9", "--mlpcore-xfails", "known.txt", "--mlpcore-report",
        "out/report", "-x", "-k", "relu and float32", "--tb=line"]]


def test_the_environment_variable_is_enough(pytest_calls: list[list[str]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV, "numpy")
    assert main(["conformance", "-q"]) == 0
    assert pytest_calls == [["--pyargs", "mlpcore_conformance", "-q"]]


def test_pytest_exit_status_is_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pytest, "main", lambda args: pytest.ExitCode.TESTS_FAILED)
    assert main(["conformance", "--backend", "numpy"]) == 1


def test_no_backend_is_a_usage_error(capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch,
                                     pytest_calls: list[list[str]]) -> None:
    monkeypatch.delenv(ENV, raising=False)
    assert main(["conformance"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("mlpcore: error: name the backend to check with --backend NAME")
    assert "numpy" in err and not pytest_calls


def test_other_commands_still_refuse_unknown_arguments(capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["backends", "-k", "x"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: -k x" in capsys.readouterr().err


def _cli(cwd: Path, *args: str, path: tuple[Path, ...] = (),
         **environ: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != ENV} | environ
    env["PYTHONPATH"] = os.pathsep.join([*map(str, path), str(TESTS), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "mlpcore.cli", "conformance", *args,
                           "-q", "-p", "no:cacheprovider"], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_it_runs_the_suite_and_fails_a_broken_backend(tmp_path: Path) -> None:
    good = _cli(tmp_path, "--backend", "numpy", "-k", "test_surface")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "19 passed" in good.stdout
    bad = _cli(tmp_path, "--backend", "broken_backends.sigmoid_off:Backend", "--examples", "3",
               "-k", "test_values_match_reference and sigmoid")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "2 failed" in bad.stdout and "sigmoid value disagrees" in bad.stdout


def _as_if_installed_from_a_wheel(where: Path) -> Path:
    """A distribution whose RECORD lists mlpcore's packages and which has a pytest11 entry point,
    as a regular (not editable) install of mlpcore has: pytest then marks mlpcore and
    mlpcore_conformance for assertion rewriting in every run."""
    info = where / "as_installed-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: as-installed\nVersion: 0\n",
                                   encoding="utf-8")
    (info / "entry_points.txt").write_text("[pytest11]\nas_installed = as_installed_plugin\n",
                                           encoding="utf-8")
    (info / "RECORD").write_text("mlpcore/__init__.py,,\nmlpcore_conformance/__init__.py,,\n"
                                 "as_installed_plugin.py,,\n", encoding="utf-8")
    (where / "as_installed_plugin.py").write_text("", encoding="utf-8")
    return where


@pytest.mark.parametrize("autoload", ["on", "off"])
def test_a_run_prints_no_assert_rewrite_warning(tmp_path: Path, autoload: str) -> None:
    """The command imports mlpcore and mlpcore_conformance before pytest starts, so pytest
    cannot rewrite them; they declare that they need no rewriting, so it does not warn."""
    site = _as_if_installed_from_a_wheel(tmp_path / "site")
    environ = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"} if autoload == "off" else {}
    run = _cli(tmp_path, "--backend", "numpy", "-k", "test_framework_version", path=(site,),
               **environ)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    assert "AssertRewriteWarning" not in run.stdout + run.stderr, run.stdout + run.stderr
