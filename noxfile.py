"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``, ``nox -s conformance``.

No session installs an unpinned ``torch``: on a CPU machine that resolves to several GB of CUDA
packages. Backends that need torch pin the CPU build explicitly.
"""

from __future__ import annotations

import nox
import nox.command

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
TORCH_CPU = "torch==2.13.0"
"""The CPU build, found locally; installed before anything that depends on torch."""
FRAMEWORKS = (TORCH_CPU,)
EXTRAS = "tensorflow-cpu"


def install_all(session: nox.Session, *extras: str) -> None:
    """mlpcore with every built-in backend's framework, torch pinned to its CPU build."""
    session.install(*FRAMEWORKS)
    session.install("-e", f".[{','.join((EXTRAS, *extras))}]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit tests for every backend, the CLI, and the textbook run on real data when installed."""
    install_all(session, "test")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (style and bugs) and mypy --strict (types)."""
    install_all(session, "lint", "test")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed goals: import time, and each backend against a hand-written loop of its framework
    (and Keras 3 ``fit``). Every benchmark runs even when an earlier one reads FAIL; the session
    fails if any did. ``nox -s bench -- --quick`` runs the framework benchmarks on fewer rows."""
    install_all(session)
    quick = ["--quick"] if "--quick" in session.posargs else []
    failed = []
    for script, args in (("bench_import.py", []), ("bench_numpy.py", []),
                         ("bench_torch.py", quick), ("bench_tensorflow.py", quick),
                         ("bench_checkpoint.py", [])):
        try:
            session.run("python", f"benchmarks/{script}", *args)
        except nox.command.CommandFailed:
            failed.append(script)
    if failed:
        session.error(f"benchmark goal(s) missed: {', '.join(failed)}")


@nox.session(python=PYTHON)
def fuzz(session: nox.Session) -> None:
    """Hypothesis byte mutations of valid checkpoints: each loads identically or is refused.

    ``nox -s fuzz -- --examples 5000`` sets the number of mutated files (default 2000).
    """
    install_all(session, "test")
    args = session.posargs or ["--examples", "2000"]
    session.run("python", "tests/test_hostile_fuzz.py", *args)


@nox.session(python=PYTHON)
def three_ways(session: nox.Session) -> None:
    """The notebook's three ways on every backend; writes docs/three-ways.md."""
    install_all(session)
    session.run("python", "scripts/three_ways.py", "--out", "docs/three-ways.md",
                *session.posargs)


BUILTIN_BACKENDS = ("numpy", "torch", "tensorflow")
"""The backends ``nox -s conformance`` checks, one session each."""


@nox.session(python=PYTHON)
@nox.parametrize("backend", BUILTIN_BACKENDS)
def conformance(session: nox.Session, backend: str) -> None:
    """The conformance suite against one built-in backend, then (once) the checkpoint matrix.

    ``nox -s conformance`` runs every backend's session and ``conformance_matrix``; the report of
    each goes to ``build/conformance/<backend>.{json,md}``. Extra arguments go to pytest.
    """
    install_all(session, "test")
    session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                "--mlpcore-backend", backend, "--mlpcore-report",
                f"build/conformance/{backend}", *session.posargs)
    session.notify("conformance_matrix")


@nox.session(python=PYTHON)
def conformance_matrix(session: nox.Session) -> None:
    """Checkpoints saved by each installed backend and loaded by each (N×N, the diagonal too)."""
    install_all(session, "test")
    session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                "--mlpcore-matrix", "--mlpcore-report", "build/conformance/matrix",
                *session.posargs)


JAX_PLUGIN = "./examples/mlpcore-jax"
"""A third-party backend plugin, its own distribution; nothing in mlpcore names it."""


@nox.session(python=PYTHON)
def jax(session: nox.Session) -> None:
    """The example JAX plugin, installed like any third-party backend and found only through its
    entry point: its own unit tests and mypy, then the conformance suite against it, including
    the checkpoint matrix with every built-in backend (report in ``build/conformance/jax``)."""
    install_all(session, "test", "lint")
    session.install(JAX_PLUGIN)  # not editable: the installed distribution is what is tested
    session.run("mlpcore", "backends")
    session.run("pytest", f"{JAX_PLUGIN}/tests")
    session.run("mypy", "--config-file", f"{JAX_PLUGIN}/pyproject.toml", "-p", "mlpcore_jax")
    session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                "--mlpcore-backend", "jax", "--mlpcore-matrix", "--mlpcore-report",
                "build/conformance/jax", *session.posargs)
