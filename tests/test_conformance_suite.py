"""The conformance suite can fail: it catches each deliberately broken backend with the expected
test, passes the NumPy backend, and its plugin machinery (skips, xfails, matrix, report, options)
does what ``docs/conformance.md`` says.

The broken backends live in ``tests/broken_backends/`` and are named to the suite as
``broken_backends.<module>:Backend``. One subprocess runs the whole suite against the NumPy backend
and every broken one (few Hypothesis examples: every breakage has an explicit test); the other
tests run small selections of the suite in-process with ``pytester``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlpcore_conformance.plugin import ENV_BACKEND
from mlpcore_conformance.tolerances import tolerance_table_markdown

pytest_plugins = ("pytester",)

TESTS = Path(__file__).resolve().parent
DOCS = TESTS.parent / "docs"
BROKEN: dict[str, tuple[set[str], set[str]]] = {
    # module: (tests that must fail, the only modules allowed to fail)
    "dropout_without_rescale": (
        {"test_dropout.py::test_mean_is_preserved",
         "test_dropout.py::test_apply_with_a_mask_matches_reference"},
        {"test_dropout.py"}),
    "sigmoid_off": (
        {"test_activations.py::test_values_match_reference",
         "test_activations.py::test_extremes_are_finite_exact_and_silent"},
        {"test_activations.py"}),
    "relu_derivative_at_zero": (
        {"test_activations.py::test_relu_derivative_at_zero_is_zero"},
        {"test_activations.py"}),
    "naive_softmax": (
        {"test_losses.py::test_huge_logits_stay_finite"},
        {"test_losses.py"}),
    "weights_not_transposed": (
        {"test_checkpoints.py::test_round_trip_is_bit_exact",
         "test_initialisers.py::test_initial_variables_equal_the_reference"},
        # everything that reads the variables back sees the scrambled matrices
        {"test_checkpoints.py", "test_initialisers.py", "test_mlp.py", "test_training.py"}),
    "partial_write": (
        {"test_checkpoints.py::test_failed_write_changes_nothing"},
        {"test_checkpoints.py"}),
    "one_hot_only": (  # raises instead of returning: the failures must still reproduce
        {"test_losses.py::test_huge_logits_stay_finite",
         "test_losses.py::test_integer_labels_equal_their_one_hot_rows"},
        {"test_losses.py"}),
}


def _spec(module: str) -> str:
    return f"broken_backends.{module}:Backend"


def _env() -> dict[str, str]:
    """No backend from the environment; derandomized Hypothesis (``CI``), so every run of this
    file draws the same examples; ``tests/`` importable for ``broken_backends``."""
    env = {k: v for k, v in os.environ.items() if k != ENV_BACKEND}
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CI"] = "1"
    return env


@pytest.fixture(scope="module")
def whole_suite(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    """One run of the whole suite against numpy and every broken backend: (output, report)."""
    where = tmp_path_factory.mktemp("whole-suite")
    backends = ",".join(["numpy", *(_spec(m) for m in BROKEN)])
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "mlpcore_conformance", "-p",
         "no:cacheprovider", "-q", "--tb=short", "--mlpcore-backend", backends,
         "--mlpcore-examples", "5", "--mlpcore-report", str(where / "report")],
        cwd=where, env=_env(), capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 1, f"expected failures (exit 1):\n{proc.stdout}\n{proc.stderr}"
    report = json.loads((where / "report.json").read_text(encoding="utf-8"))
    return proc.stdout, report


def _backend(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(b for b in report["backends"] if b["name"] == name)


def _failed_tests(entry: dict[str, Any]) -> set[str]:
    return {f"{Path(node.split('::')[0]).name}::{node.split('::')[1].split('[')[0]}"
            if "::" in node else node for node in entry["failures"]}


def test_the_numpy_backend_passes_the_whole_suite(whole_suite: tuple[str, dict[str, Any]]
                                                  ) -> None:
    _, report = whole_suite
    numpy_results = _backend(report, "numpy")
    outcomes = numpy_results["outcomes"]
    assert outcomes["failed"] == outcomes["error"] == outcomes["xpassed"] == 0, numpy_results
    assert outcomes["passed"] > 150
    ops = {(row["op"], row["dtype"]) for row in numpy_results["errors"]}
    assert {op for op, _ in ops} >= {"activation", "activation_derivative", "loss",
                                     "loss_gradient", "regulariser", "regulariser_gradient",
                                     "dropout", "forward", "gradients", "training",
                                     "finite_differences"}
    assert all(row["used"] <= 1 for row in numpy_results["errors"])


def test_the_report_counts_what_pytest_counts(whole_suite: tuple[str, dict[str, Any]]) -> None:
    """The report's outcomes, summed over its backends and matrix cells, are pytest's own."""
    output, report = whole_suite
    said = pytest.RunResult.parse_summary_nouns(output.splitlines())
    counted = dict.fromkeys(("passed", "failed", "skipped", "xfailed", "xpassed", "errors"), 0)
    for entry in report["backends"]:
        for outcome, n in entry["outcomes"].items():
            counted["errors" if outcome == "error" else outcome] += n
    for cell in report["matrix"]["cells"]:
        counted[cell["outcome"]] += 1
    assert {k: v for k, v in counted.items() if v} == \
        {k: v for k, v in said.items() if k in counted}, output.splitlines()[-1]


@pytest.mark.parametrize("module", sorted(BROKEN))
def test_each_breakage_is_caught_by_the_expected_test(whole_suite: tuple[str, dict[str, Any]],
                                                      module: str) -> None:
    _, report = whole_suite
    expected, allowed_modules = BROKEN[module]
    failed = _failed_tests(_backend(report, f"broken_{module}"))
    assert expected <= failed, f"{module}: expected {sorted(expected)} to fail; failed: {failed}"
    stray = {test for test in failed if test.split("::")[0] not in allowed_modules}
    assert not stray, f"{module} also failed tests of unrelated concepts: {sorted(stray)}"


def test_the_capability_free_backend_only_skips(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(TESTS)
    result = pytester.runpytest(
        "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider", "-rs",
        "--mlpcore-backend", "broken_backends.no_capabilities:Backend",
        "--mlpcore-examples", "2", "-k", "test_mlp or test_surface or test_training")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["passed"] > 10, result.stdout.str()
    output = result.stdout.str()
    assert "does not declare capability 'float64'" in output
    assert "does not declare capability 'gradients'" in output
    assert "does not declare capability 'compile'" in output


def _reproduction(output: str, headline: str) -> str:
    """The reproduce snippet of the first failure whose message contains ``headline``."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if headline in line)
    begin = next(i for i in range(start, len(lines)) if lines[i].strip() == "E   reproduce:")
    snippet = []
    for line in lines[begin + 1:]:
        if not line.startswith("E       "):
            break
        snippet.append(line[len("E       "):])
    return "\n".join(snippet)


def test_a_failure_names_op_dtype_errors_tolerance_and_reproduces(
        whole_suite: tuple[str, dict[str, Any]]) -> None:
    output, _ = whole_suite
    headline = "activation (float32): sigmoid value disagrees with the reference"
    assert headline in output
    block = output[output.index(headline):][:2000]
    for phrase in ("max abs error 1.000e-03", "max rel error",
                   "allowed: |got - want| <= atol 1.0e-06 + rtol 1.0e-06·|want| "
                   "(tolerances.toml [activation.float32])", "reproduce:"):
        assert phrase in block, f"{phrase!r} missing from:\n{block}"
    assert re.search(r"pytest '?/\S+/test_activations\.py::test_values_match_reference\["
                     r"broken_sigmoid_off-sigmoid-float32\]'? --mlpcore-backend "
                     r"broken_backends\.sigmoid_off:Backend", output)
    snippet = _reproduction(output, headline)
    assert "from broken_backends.sigmoid_off import Backend" in snippet
    namespace: dict[str, Any] = {}
    sys.path.insert(0, str(TESTS))
    try:
        exec(compile(snippet, "<reproduce>", "exec"), namespace)
    finally:
        sys.path.remove(str(TESTS))
    error = np.abs(namespace["got"] - namespace["want"])
    assert np.isclose(error.max(), 1e-3, rtol=1e-3), snippet


def test_a_failure_where_the_backend_raised_reproduces_the_error(
        whole_suite: tuple[str, dict[str, Any]]) -> None:
    """The one-hot-only loss raises on integer labels: no comparison runs, yet the failure
    shows Python (the test's last snippet) that raises the same error."""
    output, _ = whole_suite
    header = "test_huge_logits_stay_finite[broken_one_hot_only-float32]"
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if header in line and line.startswith("_"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith(("_", "=")))
    failure = lines[start:end]
    assert any(line.startswith("E   ValueError: operands could not be broadcast together with "
                               "shapes (6,) (6,3)") for line in failure), "\n".join(failure)
    python = failure[failure.index("in Python, the test's last call:") + 1:]
    assert "from broken_backends.one_hot_only import Backend" in python
    sys.path.insert(0, str(TESTS))
    try:
        with pytest.raises(ValueError, match=r"could not be broadcast together with shapes "
                                             r"\(6,\) \(6,3\)"):
            exec(compile("\n".join(python), "<reproduce>", "exec"), {})
    finally:
        sys.path.remove(str(TESTS))


def test_without_a_backend_every_test_skips_with_one_reason(pytester: pytest.Pytester,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    result = pytester.runpytest("--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                                "-rs")
    outcomes = result.parseoutcomes()
    assert set(outcomes) == {"skipped"}, outcomes
    reasons = {line.split(": ", 1)[1] for line in result.stdout.lines
               if line.startswith("SKIPPED")}
    assert len(reasons) == 1, reasons
    reason = reasons.pop()
    assert reason.startswith("no backend under test: add --mlpcore-backend NAME or set "
                             f"${ENV_BACKEND} (installed: ") and "numpy" in reason
    result.stdout.fnmatch_lines(["mlpcore conformance: no backend under test*--mlpcore-backend "
                                 "numpy*"])


def test_the_plugin_is_inert_without_a_backend(pytester: pytest.Pytester,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    pytester.makepyfile(test_plain="""
        import sys

        def test_nothing_of_the_suite_is_loaded():
            assert "mlpcore_conformance.plugin" in sys.modules  # pytest11 loads it everywhere
            for name in ("mlpcore", "mlpcore_conformance.session", "mlpcore_conformance.tests",
                         "torch", "tensorflow"):
                assert name not in sys.modules, name
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "mlpcore conformance" not in result.stdout.str()
    assert "--mlpcore-backend" in pytester.runpytest_subprocess("--help").stdout.str()


def test_the_environment_variable_names_the_backend(pytester: pytest.Pytester,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_BACKEND, "numpy")
    monkeypatch.setenv("CI", "1")
    result = pytester.runpytest("--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                                "-k", "test_surface", "--mlpcore-examples", "7")
    result.assert_outcomes(passed=19)
    assert "mlpcore conformance: backend numpy (numpy)" in result.stdout.str()
    assert "max_examples=7, derandomized" in result.stdout.str()


@pytest.mark.parametrize(("spec", "message"), [
    ("no_such_backend", "no mlpcore backend named 'no_such_backend'"),
    ("broken_backends.no_such_module:Backend", "cannot import broken_backends.no_such_module"),
    ("broken_backends.sigmoid_off:NoSuchFactory", "has no 'NoSuchFactory'"),
])
def test_an_unknown_backend_is_a_usage_error(pytester: pytest.Pytester, spec: str,
                                             message: str) -> None:
    pytester.syspathinsert(TESTS)
    result = pytester.runpytest("--pyargs", "mlpcore_conformance", "--mlpcore-backend", spec)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert message in result.stderr.str()


def test_suite_options_without_a_backend_are_a_usage_error(pytester: pytest.Pytester,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    monkeypatch.delenv(ENV_BACKEND, raising=False)
    result = pytester.runpytest("--pyargs", "mlpcore_conformance", "--mlpcore-report", "x")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--mlpcore-report need(s) a backend under test" in result.stderr.str()


def test_xfails_are_strict_and_stale_entries_warn(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(TESTS)
    xfails = pytester.makefile(".txt", xfails="""
        # the sigmoid is off by 1e-3: a known failure
        test_activations.py::test_values_match_reference[sigmoid-float32]  # off by 1e-3
        mlpcore_conformance/tests/test_activations.py::test_values_match_reference[relu-float32]
        test_activations.py::test_no_such_test
    """)
    result = pytester.runpytest(
        "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider", "-rxX",
        "--mlpcore-backend", _spec("sigmoid_off"), "--mlpcore-xfails", str(xfails),
        "--mlpcore-examples", "3", "-k", "test_values_match_reference and float32")
    result.assert_outcomes(passed=1, failed=1, xfailed=1, warnings=1)
    output = result.stdout.str()
    assert "[XPASS(strict)]" in output and "relu-float32" in output
    assert "off by 1e-3" in output
    assert "StaleXfailWarning" in output and "test_no_such_test" in output


def test_a_backend_package_ships_its_xfails_file(pytester: pytest.Pytester) -> None:
    pytester.syspathinsert(TESTS)
    pytester.syspathinsert()
    package = pytester.mkpydir("shipped_backend")
    (package / "__init__.py").write_text(
        "from broken_backends.sigmoid_off import Backend as _Broken\n\n\n"
        "class Backend(_Broken):\n    name = 'shipped'\n", encoding="utf-8")
    (package / "conformance_xfails.txt").write_text(
        "test_activations.py::test_values_match_reference[sigmoid-*]  # fixed in 2.0\n"
        "test_activations.py::test_extremes_are_finite_exact_and_silent[sigmoid-*]\n"
        "test_activations.py::test_derivatives_match_reference[sigmoid-*]\n",
        encoding="utf-8")
    result = pytester.runpytest(
        "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
        "--mlpcore-backend", "shipped_backend:Backend", "--mlpcore-examples", "3",
        "-k", "test_activations")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes["xfailed"] == 6, outcomes


def test_the_report_has_errors_per_op_and_the_checkpoint_matrix(pytester: pytest.Pytester,
                                                                 tmp_path: Path) -> None:
    pytester.syspathinsert(TESTS)
    result = pytester.runpytest(
        "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
        "--mlpcore-backend", f"numpy,{_spec('weights_not_transposed')}", "--mlpcore-matrix",
        "--mlpcore-report", str(tmp_path / "report"),
        "-k", "test_saved_by_one_backend_loaded_by_another or test_forward_matches_reference",
        "--mlpcore-examples", "3")
    result.assert_outcomes(passed=5, failed=3)
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    cells = {(c["saver"], c["loader"]): c["outcome"] for c in report["matrix"]["cells"]}
    broken = "broken_weights_not_transposed"
    assert cells == {("numpy", "numpy"): "passed", ("numpy", broken): "failed",
                     (broken, "numpy"): "failed", (broken, broken): "failed"}
    numpy_rows = {(r["op"], r["dtype"]): r for r in _backend(report, "numpy")["errors"]}
    assert set(numpy_rows) == {("forward", "float32"), ("forward", "float64")}
    row = numpy_rows[("forward", "float32")]
    assert row["comparisons"] == 3 and row["rtol"] == 1e-4 and row["atol"] == 1e-5
    assert 0 <= row["max_abs"] <= row["atol"] + 1e-3
    markdown = (tmp_path / "report.md").read_text(encoding="utf-8")
    assert "| `forward` | float32 | 3 |" in markdown
    assert "| saved by ↓ / loaded by → | `numpy` | `broken_weights_not_transposed` |" in markdown
    assert "✅ bit-exact" in markdown and "❌ failed" in markdown
    assert "| checkpoint matrix |  |  | 1 | 3 | 0 | 0 |  |" in markdown  # pytest's 5 = 4 + 1


def test_the_docs_state_the_tolerance_table() -> None:
    assert tolerance_table_markdown() in (DOCS / "conformance.md").read_text(encoding="utf-8")
