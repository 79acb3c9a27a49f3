"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``.

No session installs an unpinned ``torch``: on a CPU machine that resolves to several GB of CUDA
packages. Backends that need torch pin the CPU build explicitly.
"""

from __future__ import annotations

import nox

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
    """Speed goals: import time, and each backend against a hand-written loop of its framework."""
    install_all(session)
    session.run("python", "benchmarks/bench_import.py")
    session.run("python", "benchmarks/bench_numpy.py", *session.posargs)


@nox.session(python=PYTHON)
def three_ways(session: nox.Session) -> None:
    """The notebook's three ways on every backend; writes docs/three-ways.md."""
    install_all(session)
    session.run("python", "scripts/three_ways.py", "--out", "docs/three-ways.md",
                *session.posargs)
