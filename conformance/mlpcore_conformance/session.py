"""The active conformance run: backends under test, xfails, skips, measurements and the report.

Created by :mod:`mlpcore_conformance.plugin` only when the suite is asked for, and registered as a
pytest plugin for that run. Every hook below looks only at the suite's own test items (those of
``mlpcore_conformance.tests``), so running the suite together with other tests leaves them alone.
"""

from __future__ import annotations

import importlib
import os
import shlex
import warnings
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import mlpcore

# "import a.b as b", not "from a import b": in pytest runs nested in one process (pytester) the
# latter can pick up a module left on the package by an earlier run, whose state (the tolerance
# listeners) the tests no longer see
import mlpcore_conformance.strategies as strategies
import mlpcore_conformance.tolerances as tolerances
import mlpcore_conformance.xfails as xfails
from mlpcore.backend import Backend
from mlpcore.errors import BackendLoadError, BackendNotFoundError
from mlpcore_conformance.report import BackendResults, build_report, write_report
from mlpcore_conformance.repro import Repro, Snippet, setup_lines

__all__ = [
    "SUITE_MODULE_PREFIX",
    "ConformanceSession",
    "ResolvedBackend",
    "is_suite_item",
    "neutral_id",
    "resolve",
]

SUITE_MODULE_PREFIX = "mlpcore_conformance.tests."
MATRIX_PROPERTY = "mlpcore_matrix_cell"
"""``item.user_properties`` key under which a matrix test leaves its cell's details."""


@dataclass(frozen=True)
class ResolvedBackend:
    """A backend under test, the text it was named by, and whether that named a factory."""

    origin: str
    backend: Backend
    from_factory: bool = False

    @property
    def name(self) -> str:
        """The backend's own name (its test id)."""
        return str(self.backend.name)

    def setup(self, variable: str = "backend") -> tuple[str, ...]:
        """Code getting this backend the way the user named it, into ``variable``."""
        return setup_lines(self.origin, self.from_factory, variable)


def _load_factory(origin: str) -> ResolvedBackend:
    """``module:attribute``: the attribute is the backend object, or a callable returning it."""
    module_name, _, attribute = origin.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise pytest.UsageError(
            f"--mlpcore-backend {origin}: cannot import {module_name}: {error}") from error
    if not hasattr(module, attribute):
        raise pytest.UsageError(f"--mlpcore-backend {origin}: {module_name} has no {attribute!r}")
    target = getattr(module, attribute)
    is_backend = hasattr(target, "activations") and not isinstance(target, type)
    call = callable(target) and not is_backend
    try:
        backend = target() if call else target
    except Exception as error:
        raise pytest.UsageError(
            f"--mlpcore-backend {origin}: calling {attribute}() failed: "
            f"{type(error).__name__}: {error}") from error
    if not isinstance(getattr(backend, "name", None), str):
        raise pytest.UsageError(
            f"--mlpcore-backend {origin}: {attribute} did not give an mlpcore backend (an object "
            f"with a str 'name'), got {type(backend).__name__}")
    return ResolvedBackend(origin, backend, from_factory=call)


def _load_name(name: str) -> Backend:
    try:
        return mlpcore.get_backend(name)
    except (BackendNotFoundError, BackendLoadError) as error:
        raise pytest.UsageError(f"--mlpcore-backend {name}: {error}") from error


def resolve(spec: str) -> list[ResolvedBackend]:
    """The backends named by ``spec``: names, ``module:factory`` references and ``all``,
    comma-separated. Raises ``pytest.UsageError`` explaining any that cannot be loaded."""
    resolved: dict[str, ResolvedBackend] = {}
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part == "all":
            entries = [ResolvedBackend(n, _load_name(n)) for n in mlpcore.list_backends()]
        elif ":" in part:
            entries = [_load_factory(part)]
        else:
            entries = [ResolvedBackend(part, _load_name(part))]
        for entry in entries:
            other = resolved.get(entry.name)
            if other is not None and other.backend is not entry.backend:
                raise pytest.UsageError(
                    f"--mlpcore-backend: {other.origin} and {entry.origin} are both called "
                    f"{entry.name!r}")
            resolved.setdefault(entry.name, entry)
    if not resolved:
        raise pytest.UsageError(f"--mlpcore-backend {spec!r} names no backend")
    return list(resolved.values())


def _param(item: pytest.Item, name: str) -> Any:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get(name)


def is_suite_item(item: pytest.Item) -> bool:
    """Whether ``item`` is a test of the conformance suite."""
    module = getattr(item, "module", None)
    return module is not None and module.__name__.startswith(SUITE_MODULE_PREFIX)


def neutral_id(item: pytest.Item, backend_name: str | None) -> str:
    """The item's id for xfails files: ``module.py::name[params]`` without the backend id."""
    name = item.name
    if backend_name is not None and "[" in name:
        base, _, params = name.partition("[")
        params = params[:-1]
        if params == backend_name:
            name = base
        elif params.startswith(backend_name + "-"):
            name = f"{base}[{params[len(backend_name) + 1:]}]"
    return f"{item.path.name}::{name}"


class ConformanceSession:
    """One run of the suite; a pytest plugin for the duration of the run."""

    def __init__(self, config: pytest.Config, under_test: list[ResolvedBackend],
                 matrix: list[ResolvedBackend] | None):
        self.config = config
        self.under_test = {entry.name: entry for entry in under_test}
        self.matrix = {entry.name: entry for entry in matrix or []}
        self.matrix_enabled = matrix is not None
        self.examples = config.getoption("mlpcore_examples", default=None) \
            or strategies.DEFAULT_EXAMPLES
        self.derandomize = bool(os.environ.get("CI"))
        self.report_path: str | None = config.getoption("mlpcore_report", default=None)
        self.device: str | None = config.getoption("mlpcore_device", default=None)
        """``--mlpcore-device``: where the models under test live (``None``: the CPU)."""
        self.extra_xfails: list[xfails.XfailEntry] = []
        for path in config.getoption("mlpcore_xfails", default=None) or []:
            try:
                self.extra_xfails += xfails.read(path)
            except OSError as error:
                raise pytest.UsageError(f"--mlpcore-xfails {path}: {error}") from error
        self.results = {
            name: BackendResults(
                name=name, origin=entry.origin,
                framework_version=_framework_version(entry.backend),
                capabilities=sorted(str(c) for c in getattr(entry.backend, "capabilities", ())),
                training_methods=[str(m) for m in getattr(entry.backend, "training_methods", ())])
            for name, entry in self.under_test.items()}
        self.matrix_cells: dict[tuple[str, str], dict[str, Any]] = {}
        self.stale: list[xfails.XfailEntry] = []
        self.item_backend: dict[str, str] = {}
        self.item_pair: dict[str, tuple[str, str]] = {}
        self.written: tuple[Path, Path] | None = None
        self.last_snippet: Snippet | None = None
        """The last reproduction snippet the running test made."""

    @classmethod
    def start(cls, config: pytest.Config, spec: str | None, matrix: bool) -> ConformanceSession:
        """Resolve the backends and configure Hypothesis for this run."""
        under_test = resolve(spec) if spec is not None else []
        matrix_backends: list[ResolvedBackend] | None = None
        if matrix:
            if len(under_test) >= 2:
                matrix_backends = under_test
            else:
                try:
                    matrix_backends = resolve("all")
                except pytest.UsageError as error:
                    raise pytest.UsageError(
                        f"--mlpcore-matrix pairs every installed backend, but one cannot be "
                        f"loaded ({error}); name the backends to pair with --mlpcore-backend a,b"
                    ) from error
                known = {entry.name for entry in matrix_backends}
                matrix_backends += [e for e in under_test if e.name not in known]
        session = cls(config, under_test, matrix_backends)
        strategies.configure(max_examples=session.examples, derandomize=session.derandomize)
        return session

    # ------------------------------------------------------------------------ what tests use

    def backend(self, name: str) -> ResolvedBackend:
        """The backend under test (or in the matrix) called ``name``."""
        return self.under_test.get(name) or self.matrix[name]

    def repro(self, *names: str) -> Repro:
        """Snippets that start by getting these backends (one: ``backend``; two: ``saver`` and
        ``loader``), each noted as the running test's last."""
        variables = ("backend",) if len(names) == 1 else ("saver", "loader")
        setup = [line for name, variable in zip(names, variables, strict=True)
                 for line in self.backend(name).setup(variable)]
        return Repro(tuple(setup), note=self._note)

    def _note(self, snippet: Snippet) -> None:
        self.last_snippet = snippet

    def matrix_pairs(self) -> list[tuple[str, str]]:
        """Every ordered pair (saver, loader) of the matrix, the diagonal included."""
        return [(saver, loader) for saver in self.matrix for loader in self.matrix]

    def xfails_for(self, name: str) -> list[xfails.XfailEntry]:
        """The backend's shipped xfails plus the ``--mlpcore-xfails`` files."""
        module = type(self.under_test[name].backend).__module__
        return xfails.package_xfails(module) + self.extra_xfails

    # ----------------------------------------------------------------------------- the hooks

    def pytest_report_header(self, config: pytest.Config) -> list[str]:
        lines = []
        for name, entry in self.under_test.items():
            caps = ", ".join(sorted(str(c) for c in entry.backend.capabilities)) or "none"
            lines.append(f"mlpcore conformance: backend {name} ({entry.origin}), "
                         f"{_framework_version(entry.backend)}; capabilities: {caps}")
        if self.device is not None:
            lines.append(f"mlpcore conformance: device {self.device}")
        if self.matrix_enabled:
            lines.append(f"mlpcore conformance: checkpoint matrix over {', '.join(self.matrix)}")
        lines.append(f"mlpcore conformance: hypothesis max_examples={self.examples}"
                     f"{', derandomized' if self.derandomize else ''}")
        return lines

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config: pytest.Config,
                                      items: list[pytest.Item]) -> None:
        """Apply xfails (before ``-k``/``-m`` deselect anything, so staleness is judged on the
        whole suite) and deselect what was not asked for (:meth:`_asked_for`)."""
        suite = [item for item in items if is_suite_item(item)]
        for item in suite:
            name = _param(item, "backend")
            if name is not None:
                self.item_backend[item.nodeid] = name
            pair = _param(item, "checkpoint_pair")
            if pair is not None:
                self.item_pair[item.nodeid] = (str(pair[0]), str(pair[1]))
        collected_modules = {item.path.name for item in suite}
        for name in self.under_test:
            entries = self.xfails_for(name)
            used: set[xfails.XfailEntry] = set()
            for item in suite:
                if _param(item, "backend") != name:
                    continue
                test_id = neutral_id(item, name)
                for entry in entries:
                    if entry.matches(test_id):
                        used.add(entry)
                        item.add_marker(pytest.mark.xfail(
                            strict=True, reason=f"{entry.reason} ({entry.describe()})"))
                        break
            for entry in entries:
                if entry in used or entry in self.stale:
                    continue
                if any(entry.names_module(module) for module in collected_modules):
                    self.stale.append(entry)
                    warnings.warn(xfails.StaleXfailWarning(
                        f"stale xfails entry {entry.describe()} matches no test of the "
                        f"conformance suite for backend {name!r}; remove it"), stacklevel=1)
        keep = [item for item in items if self._asked_for(item)]
        if len(keep) < len(items):
            config.hook.pytest_deselected(
                items=[item for item in items if not self._asked_for(item)])
            items[:] = keep

    def _asked_for(self, item: pytest.Item) -> bool:
        """The matrix test runs only with the matrix, the others only with a backend under test;
        what is not asked for is deselected, not skipped, so the report counts what pytest does."""
        if not is_suite_item(item):
            return True
        if "checkpoint_pair" in getattr(item, "fixturenames", ()):
            return self.matrix_enabled
        return bool(self.under_test)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        """Skip on capabilities the backend does not declare: float64, bfloat16 or float16 for a
        ``dtype`` parameter of that name, and whatever ``@pytest.mark.mlpcore_requires(...)``
        names."""
        if not is_suite_item(item):
            return
        names = []
        name = _param(item, "backend")
        if name is not None:
            names.append(name)
        pair = _param(item, "checkpoint_pair")
        if pair is not None:
            names += list(pair)
        needed: list[str] = []
        if _param(item, "dtype") in ("float64", "bfloat16", "float16"):
            needed.append(str(_param(item, "dtype")))
        for marker in item.iter_markers("mlpcore_requires"):
            needed += [str(c) for c in marker.args]
        for backend_name in names:
            capabilities = {str(c) for c in self.backend(backend_name).backend.capabilities}
            missing = [c for c in needed if c not in capabilities]
            if missing:
                pytest.skip(f"backend {backend_name!r} does not declare capability "
                            f"{', '.join(map(repr, missing))}")

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        """Record every tolerance comparison of the test against its backend."""
        self.last_snippet = None
        name = _param(item, "backend") if is_suite_item(item) else None
        if name is None or name not in self.results:
            return (yield)
        with tolerances.recording(self.results[name].add):
            return (yield)

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item,
                                  call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
        """Add a ``reproduce`` section to failures: the pytest command for this one test and,
        unless the failure message shows it already, the test's last snippet (so a test whose
        backend raised still shows the Python that raises)."""
        report = yield
        if is_suite_item(item) and report.failed:
            text = self._command(item)
            snippet = self.last_snippet if report.when == "call" else None
            if snippet is not None and call.excinfo is not None:
                python = str(snippet)
                if " ".join(python.split()) not in " ".join(str(call.excinfo.value).split()):
                    text += "\nin Python, the test's last call:\n" + python
            report.sections.append(("mlpcore conformance: reproduce", text))
        return report

    def _command(self, item: pytest.Item) -> str:
        node = str(item.path) + "::" + item.nodeid.split("::", 1)[1]
        args = ["pytest", node]
        names = [n for n in [_param(item, "backend")] if n]
        pair = _param(item, "checkpoint_pair")
        if pair is not None:
            args += ["--mlpcore-matrix"]
            names = sorted(set(pair)) if pair[0] != pair[1] else [pair[0]]
        if names:
            args += ["--mlpcore-backend", ",".join(self.backend(n).origin for n in names)]
        return shlex.join(args)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Count outcomes and test time per backend; fill the matrix cells."""
        outcome = _outcome(report)
        name = self.item_backend.get(report.nodeid)
        if name is not None:
            self.results[name].seconds += report.duration
            if outcome is not None:
                self.results[name].outcomes[outcome] += 1
                if outcome in ("failed", "error", "xpassed"):
                    path, _, test = report.nodeid.partition("::")
                    self.results[name].failures.append(f"{path.rsplit('/', 1)[-1]}::{test}")
        pair = self.item_pair.get(report.nodeid)
        if pair is not None and outcome is not None:
            cell = dict(report.user_properties).get(MATRIX_PROPERTY)
            entry = dict(cell) if isinstance(cell, dict) else {}
            entry.update(saver=pair[0], loader=pair[1], outcome=outcome)
            self.matrix_cells[pair] = entry

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        """Write the report when asked for."""
        if self.report_path is None:
            return
        report = build_report(
            list(self.results.values()), list(self.matrix) if self.matrix_enabled else [],
            list(self.matrix_cells.values()),
            {"max_examples": self.examples, "derandomize": self.derandomize},
            mlpcore.__version__)
        self.written = write_report(self.report_path, report)

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if self.written is not None:
            terminalreporter.write_line(
                f"mlpcore conformance report: {self.written[0]} and {self.written[1]}")


def _framework_version(backend: Any) -> str:
    try:
        return str(backend.framework_version())
    except Exception as error:  # a broken backend still gets a report
        return f"unknown ({type(error).__name__})"


def _outcome(report: pytest.TestReport) -> str | None:
    """The test's outcome, from the one phase report that decides it (else ``None``)."""
    xfailed = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfailed else "passed"
        if report.skipped:
            return "xfailed" if xfailed else "skipped"
        return "failed"
    if report.when == "setup" and not report.passed:
        if report.skipped:
            return "xfailed" if xfailed else "skipped"
        return "error"
    if report.when == "teardown" and report.failed:
        return "error"
    return None

