"""``mlpcore conformance``: the conformance suite run by pytest, from the ``mlpcore`` command.

:func:`add_parser` adds the subcommand to the ``mlpcore`` command line and :func:`run` turns its
options into ``pytest --pyargs mlpcore_conformance --mlpcore-*`` arguments. Imports only the
standard library until it runs (pytest then).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any

__all__ = ["ENV_BACKEND", "add_parser", "run"]

ENV_BACKEND = "MLPCORE_CONFORMANCE_BACKEND"
"""Environment variable naming the backend(s) under test when ``--mlpcore-backend`` is absent."""

USAGE_ERROR = 2
RUN_ERROR = 1


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def add_parser(commands: Any) -> None:
    """Add ``conformance`` to the subcommands of the ``mlpcore`` parser."""
    conformance = commands.add_parser(
        "conformance", allow_abbrev=False,
        help="check a backend against the contracts (runs the conformance suite with pytest)",
        description="Run the conformance suite, 'pytest --pyargs mlpcore_conformance', against a "
                    "backend. Any other argument goes to pytest (e.g. -x, -k sigmoid, -q); "
                    "arguments after '--' go to pytest as they are. The exit status is "
                    "pytest's: 0 when every test passed.")
    conformance.add_argument(
        "--backend", default=None,
        help="backend(s) under test: a registered name, 'package.module:factory', 'all', or a "
             f"comma-separated list (default: ${ENV_BACKEND})")
    conformance.add_argument("--device", default=None,
                             help="build and train the suite's models on this device: 'cpu' "
                                  "(default), 'gpu', 'gpu:N' or the backend's own name")
    conformance.add_argument("--matrix", action="store_true",
                             help="also run the cross-backend checkpoint matrix")
    conformance.add_argument("--examples", type=_positive, default=None, metavar="N",
                             help="Hypothesis examples per property test")
    conformance.add_argument("--xfails", action="append", default=None, metavar="PATH",
                             help="an extra xfails file (repeatable)")
    conformance.add_argument("--report", default=None, metavar="PATH",
                             help="write the report to PATH.json and PATH.md")


def run(args: argparse.Namespace, pytest_args: list[str]) -> int:
    """Run the suite as ``args`` ask, passing ``pytest_args`` on; pytest's exit status."""
    missing = [name for name in ("pytest", "hypothesis") if importlib.util.find_spec(name) is None]
    if missing:
        print(f"mlpcore: error: the conformance suite needs {' and '.join(missing)}; install "
              "it with: pip install 'mlpcore[test]'", file=sys.stderr)
        return RUN_ERROR
    if not (args.backend or os.environ.get(ENV_BACKEND, "").strip() or args.matrix):
        from mlpcore.registry import list_backends

        print("mlpcore: error: name the backend to check with --backend NAME (or set "
              f"${ENV_BACKEND}); installed backends: {', '.join(list_backends()) or 'none'}",
              file=sys.stderr)
        return USAGE_ERROR
    argv = ["--pyargs", "mlpcore_conformance"]
    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        argv = ["-p", "mlpcore_conformance.plugin", *argv]
    if args.backend:
        argv += ["--mlpcore-backend", args.backend]
    if args.device:
        argv += ["--mlpcore-device", args.device]
    if args.matrix:
        argv.append("--mlpcore-matrix")
    if args.examples is not None:
        argv += ["--mlpcore-examples", str(args.examples)]
    for path in args.xfails or []:
        argv += ["--mlpcore-xfails", path]
    if args.report:
        argv += ["--mlpcore-report", args.report]
    import pytest

    return int(pytest.main([*argv, *[a for a in pytest_args if a != "--"]]))
