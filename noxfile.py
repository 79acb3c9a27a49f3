"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``.

No session installs an unpinned ``torch``: on a CPU machine that resolves to several GB of CUDA
packages. Backends that need torch pin the CPU build explicitly.
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit tests, the CLI, and the textbook run on real data when it is installed."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (style and bugs) and mypy --strict (types)."""
    session.install("-e", ".[lint,test]")
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed goals: import time, and the NumPy backend against a hand-written NumPy loop."""
    session.install("-e", ".")
    session.run("python", "benchmarks/bench_import.py")
    session.run("python", "benchmarks/bench_numpy.py", *session.posargs)
