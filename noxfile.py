"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s bench``, ``nox -s conformance``,
``nox -s compat``, ``nox -s gpu``.

Virtual environments are made by uv, which hard-links every package from one cache: the seven
environments of the README's test command hold torch and TensorFlow once on disk, and each
conformance session installs only its own backend's framework.

No session installs an unpinned ``torch``: on a CPU machine that resolves to several GB of CUDA
packages. The CPU build is pinned by its local version label, so a machine without it (no
``--find-links`` folder or PyTorch CPU index) fails at once instead of downloading CUDA.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import nox
import nox.command

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True
nox.options.default_venv_backend = "uv"

PYTHON = "3.11"
TORCH_CPU = "torch==2.13.0+cpu"
TENSORFLOW = "tensorflow-cpu>=2.16,<2.22"  # the range of pyproject.toml
FRAMEWORKS = {"numpy": (), "torch": (TORCH_CPU,), "tensorflow": (TENSORFLOW,)}
"""What each built-in backend needs beyond mlpcore's own dependencies."""


def _pip_find_links() -> str:
    """pip's ``find-links`` setting (environment or configuration files), which uv does not read:
    on this kind of machine the CPU build of torch lies in such a folder."""
    if os.environ.get("PIP_FIND_LINKS"):
        return os.environ["PIP_FIND_LINKS"]
    found = subprocess.run([sys.executable, "-m", "pip", "config", "get", "global.find-links"],
                           capture_output=True, text=True, check=False)
    return found.stdout.strip() if found.returncode == 0 else ""


if "UV_FIND_LINKS" not in os.environ and (find_links := _pip_find_links()):
    os.environ["UV_FIND_LINKS"] = find_links


def install(session: nox.Session, backends: tuple[str, ...], *extras: str) -> None:
    """mlpcore (editable) with ``extras`` and the frameworks of ``backends``."""
    frameworks = [f for backend in backends for f in FRAMEWORKS[backend]]
    if frameworks:
        session.install(*frameworks)
    session.install("-e", f".[{','.join(extras)}]" if extras else ".")


def install_all(session: nox.Session, *extras: str) -> None:
    """mlpcore with every built-in backend's framework."""
    install(session, tuple(FRAMEWORKS), *extras)


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Unit tests for every backend, the CLI, and the textbook run on real data when installed;
    with matplotlib, so the pictures are drawn and checked."""
    install_all(session, "test", "plot")
    session.run("pytest", "-n", "auto", *session.posargs)  # one worker per core (pytest-xdist)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff (style and bugs) and mypy --strict (types)."""
    install(session, ("torch",), "lint", "test", "plot")  # mypy reads torch's, matplotlib's types
    session.run("ruff", "check", ".")
    session.run("mypy")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Speed goals: import time, and each backend against a hand-written loop of its framework
    (and Keras 3 ``fit``); data-parallel torch and TensorFlow, 2 workers against 1, reported
    without a goal.
    Every benchmark runs even when an earlier one reads FAIL; the session fails if any did.
    ``nox -s bench -- --quick`` runs the framework benchmarks on fewer rows. ``bench_gpu.py``
    skips here (CPU torch); ``nox -s gpu`` runs it on CUDA."""
    install_all(session)
    quick = ["--quick"] if "--quick" in session.posargs else []
    failed = []
    for script, args in (("bench_import.py", []), ("bench_numpy.py", []),
                         ("bench_torch.py", quick), ("bench_tensorflow.py", quick),
                         ("bench_checkpoint.py", []), ("bench_distributed.py", quick),
                         ("bench_gpu.py", [])):
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
    """The notebook's three ways on every backend; writes build/three-ways.md."""
    install_all(session)
    session.run("python", "scripts/three_ways.py", "--out", "build/three-ways.md",
                *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """The documentation site in build/site (``mkdocs build --strict``), with the reports it
    embeds generated first: the three ways (build/three-ways.md), d2l's weight-decay experiment
    with its picture (build/weight-decay.md) and the conformance report of the built-in backends
    (build/conformance/builtin.md)."""
    install_all(session, "docs", "test", "plot")
    session.run("python", "scripts/three_ways.py", "--out", "build/three-ways.md")
    session.run("python", "scripts/weight_decay.py", "--out", "build/weight-decay.md")
    session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider", "-q",
                "--mlpcore-backend", ",".join(FRAMEWORKS), "--mlpcore-report",
                "build/conformance/builtin")
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


BUILTIN_BACKENDS = ("numpy", "torch", "tensorflow")
"""The backends ``nox -s conformance`` checks, one session each."""


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS")
"""Thread-pool sizes of NumPy's BLAS, torch (OpenMP) and TensorFlow, shared out by
:func:`_in_parallel` between the sessions running at once."""


def _in_parallel(session: nox.Session, names: list[str]) -> None:
    """Run the nox sessions ``names``, each in its own process and venv, up to ``$NOX_JOBS``
    (default: the number of cores) at a time, with this session's extra arguments and the
    cores shared out between the framework thread pools of those running (a variable already set
    is kept); print each one's log as it ends, then a table of outcomes and times; fail if any
    failed. Logs are kept in ``build/nox/<session>.log``."""
    logs = Path("build/nox")
    logs.mkdir(parents=True, exist_ok=True)
    posargs = ["--", *session.posargs] if session.posargs else []
    cores = os.cpu_count() or 1
    jobs = max(1, min(len(names), int(os.environ.get("NOX_JOBS", cores))))
    threads = str(max(1, cores // jobs))
    env = {**{name: threads for name in THREAD_VARIABLES}, **os.environ}
    session.log(f"{len(names)} sessions, {jobs} at a time, {threads} thread(s) a pool")
    started = time.perf_counter()
    waiting, running, results = list(names), {}, []
    while waiting or running:
        while waiting and len(running) < jobs:
            name = waiting.pop(0)
            log = (logs / f"{re.sub(r'[^A-Za-z0-9_.+-]+', '-', name).strip('-')}.log").open("w")
            command = [sys.executable, "-m", "nox", "--no-color", "-s", name, *posargs]
            running[name] = (subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                              env=env), log)
        for name, (process, log) in list(running.items()):
            if process.poll() is None:
                continue
            log.close()
            del running[name]
            results.append((name, process.returncode, time.perf_counter() - started))
            session.log(f"---- {name}: exit status {process.returncode} ----")
            print(Path(log.name).read_text(), flush=True)
        time.sleep(0.5)
    for name, status, seconds in results:
        session.log(f"{'ok' if status == 0 else 'FAILED':6} {seconds:7.1f} s  {name}")
    failed = [name for name, status, _ in results if status != 0]
    if failed:
        session.error(f"failed: {', '.join(failed)} (logs in {logs})")


@nox.session(python=False)
def conformance(session: nox.Session) -> None:
    """The conformance suite against every built-in backend and the checkpoint matrix, the four
    sessions in parallel (``conformance_backend`` per backend, ``conformance_matrix``): each in
    its own process and venv, each backend's venv with only its framework. Extra arguments go to
    every pytest. Reports in ``build/conformance/<backend>.{json,md}`` and ``matrix.{json,md}``.
    """
    _in_parallel(session, [f"conformance_backend(backend='{b}')"
                           for b in ("tensorflow", "torch", "numpy")] + ["conformance_matrix"])


@nox.session(python=PYTHON)
@nox.parametrize("backend", BUILTIN_BACKENDS)
def conformance_backend(session: nox.Session, backend: str) -> None:
    """The conformance suite against one built-in backend, in a venv with only its framework;
    the report goes to ``build/conformance/<backend>.{json,md}``. Extra arguments go to pytest.
    """
    install(session, (backend,), "test")
    session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                "--mlpcore-backend", backend, "--mlpcore-report",
                f"build/conformance/{backend}", *session.posargs)


@nox.session(python=PYTHON)
def conformance_matrix(session: nox.Session) -> None:
    """Checkpoints saved by each installed backend and loaded by each (N×N, the diagonal too)."""
    install_all(session, "test")
    session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                "--mlpcore-matrix", "--mlpcore-report", "build/conformance/matrix",
                *session.posargs)


COMPAT = {
    "torch": ("torch==2.13.0+cpu",),
    "tensorflow": ("tensorflow-cpu==2.16.1", "tensorflow-cpu==2.21.0"),
}
"""The oldest and the newest release of each framework that installs here on Python 3.11, and
passes: the range ``pyproject.toml`` declares (docs/conformance.md, "Framework versions"). Torch
is the pinned CPU build only: no other CPU build lies in pip's ``find-links`` folder, and an
unpinned or PyPI torch pulls several GB of CUDA packages. TensorFlow comes from the registry."""


@nox.session(python=False)
def compat(session: nox.Session) -> None:
    """Every release of :data:`COMPAT`, in parallel (``compat_release``, one venv each)."""
    _in_parallel(session, [f"compat_release(backend='{backend}', requirement='{requirement}')"
                           for backend, requirements in COMPAT.items()
                           for requirement in requirements])


@nox.session(python=PYTHON)
@nox.parametrize(("backend", "requirement"),
                 [(b, r) for b, requirements in COMPAT.items() for r in requirements])
def compat_release(session: nox.Session, backend: str, requirement: str) -> None:
    """One framework release, alone in its venv: the conformance suite against its backend,
    then that backend's unit tests. Reports in ``build/compat/<requirement>.{json,md}``."""
    session.install(requirement)
    session.install("-e", ".[test]")
    session.run("python", "-c", f"import mlpcore; b = mlpcore.get_backend({backend!r}); "
                "print(b.name, b.framework_version())")
    session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider", "-q",
                "--mlpcore-backend", backend, "--mlpcore-report",
                f"build/compat/{requirement.replace('==', '-')}", *session.posargs)
    session.run("pytest", "-p", "no:cacheprovider", "-q", f"tests/test_{backend}_backend.py",
                *session.posargs)


JAX_PLUGIN = "./examples/mlpcore-jax"
"""A third-party backend plugin, its own distribution; nothing in mlpcore names it."""


@nox.session(python=PYTHON)
def jax(session: nox.Session) -> None:
    """The example JAX plugin, installed like any third-party backend and found only through its
    entry point: its own unit tests and mypy, then the conformance suite against it, including
    the checkpoint matrix with every built-in backend (report in ``build/conformance/jax``)."""
    install_all(session, "test", "lint", "plot")  # mypy follows mlpcore into plot.py
    session.install(JAX_PLUGIN)  # not editable: the installed distribution is what is tested
    session.run("mlpcore", "backends")
    session.run("pytest", f"{JAX_PLUGIN}/tests")
    session.run("mypy", "--config-file", f"{JAX_PLUGIN}/pyproject.toml", "-p", "mlpcore_jax")
    session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                "--mlpcore-backend", "jax", "--mlpcore-matrix", "--mlpcore-report",
                "build/conformance/jax", *session.posargs)


TORCH_CUDA = "torch==2.13.0"
"""PyPI's Linux wheel of this version, the CUDA build (with its nvidia-* packages)."""
JAX_CUDA = "jax[cuda12]"


@nox.session(python=PYTHON)
def gpu(session: nox.Session) -> None:
    """The conformance suite on CUDA for torch and the JAX example (``--mlpcore-device gpu``,
    reports in ``build/conformance/{torch,jax}-cuda``), then ``benchmarks/bench_gpu.py``.

    On a machine without an NVIDIA GPU (``nvidia-smi -L`` lists none) the session is *skipped*,
    saying why, before it installs anything: nox reports it as skipped, not as passed. Where a
    GPU is listed but the installed frameworks cannot use it, the session fails.
    """
    try:
        listed = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True,
                                check=False).stdout.strip()
    except OSError:
        listed = ""
    if not listed:
        session.skip("no NVIDIA GPU found (nvidia-smi -L lists none): the CUDA conformance "
                     "runs and the GPU benchmark need one; nothing was run")
    session.log(f"GPUs: {listed}")
    session.install(TORCH_CUDA, JAX_CUDA)
    session.install("-e", ".[test]")
    session.install(JAX_PLUGIN)
    session.run("python", "-c", "import torch, jax, sys; "
                "sys.exit(0 if torch.cuda.is_available() and jax.devices('gpu') else "
                "'torch or jax cannot use the GPU that nvidia-smi lists')")
    for backend in ("torch", "jax"):
        session.run("pytest", "--pyargs", "mlpcore_conformance", "-p", "no:cacheprovider",
                    "--mlpcore-backend", backend, "--mlpcore-device", "gpu",
                    "--mlpcore-report", f"build/conformance/{backend}-cuda", *session.posargs)
    session.run("python", "benchmarks/bench_gpu.py")
