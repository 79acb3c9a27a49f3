"""Xfails files: the known failures a backend ships with, applied as strict xfails.

A file lists one test per line, as its id inside the suite *without* the backend parameter, with an
optional ``# reason``::

    # conformance_xfails.txt of mlpcore_mybackend
    test_activations.py::test_extremes[sigmoid-float32]   # our sigmoid(-1000) is 1e-45
    test_training.py::test_compiled_*                      # * and ? are wildcards

Test ids are what ``pytest --collect-only -q`` prints after the module, with the backend's own id
dropped from the brackets (``test_values[numpy-relu-float32]`` is ``test_values[relu-float32]``).
A leading path (``mlpcore_conformance/tests/``) is ignored. Each matching test is marked
``xfail(strict=True)``: if it passes, the run fails, so an entry cannot outlive its bug. An entry
that matches no collected test is stale and raises a :class:`StaleXfailWarning`.

A backend ships its file as ``conformance_xfails.txt`` in its top-level package (found with
:mod:`importlib.resources`); ``--mlpcore-xfails PATH`` adds more files.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["PACKAGE_FILE", "StaleXfailWarning", "XfailEntry", "package_xfails", "parse", "read"]

PACKAGE_FILE = "conformance_xfails.txt"
"""The name of the xfails file a backend's package may ship."""


class StaleXfailWarning(pytest.PytestWarning):
    """An xfails entry that matches no test of the suite: remove it (or fix its test id)."""


@dataclass(frozen=True)
class XfailEntry:
    """One line of an xfails file."""

    pattern: str
    reason: str
    source: str
    line: int

    @property
    def module(self) -> str:
        """The test module the entry names (``test_activations.py``), maybe a pattern."""
        return self.pattern.split("::", 1)[0]

    def matches(self, test_id: str) -> bool:
        """Whether ``test_id`` (``module.py::name[params]``) is this entry; ``*`` and ``?`` are
        wildcards, brackets are literal (they hold the test's parameters)."""
        return test_id == self.pattern or _glob(self.pattern).fullmatch(test_id) is not None

    def names_module(self, module: str) -> bool:
        """Whether the entry is about tests of ``module`` (``test_activations.py``)."""
        return _glob(self.module).fullmatch(module) is not None

    def describe(self) -> str:
        """``file:line: pattern``, for messages."""
        return f"{self.source}:{self.line}: {self.pattern}"


@functools.cache
def _glob(pattern: str) -> re.Pattern[str]:
    """``pattern`` with ``*`` and ``?`` as shell wildcards and everything else literal."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in pattern))


def _normalise(test_id: str) -> str:
    path, sep, rest = test_id.partition("::")
    return path.rsplit("/", 1)[-1] + sep + rest


def parse(text: str, source: str) -> list[XfailEntry]:
    """The entries of an xfails file's ``text``; ``source`` names it in messages."""
    entries = []
    for number, raw in enumerate(text.splitlines(), start=1):
        body, _, comment = raw.partition("#")
        pattern = body.strip()
        if pattern:
            entries.append(XfailEntry(_normalise(pattern), comment.strip() or "known failure",
                                      source, number))
    return entries


def read(path: str | Path) -> list[XfailEntry]:
    """The entries of the xfails file at ``path``."""
    file = Path(path)
    return parse(file.read_text(encoding="utf-8"), str(file))


def package_xfails(module_name: str) -> list[XfailEntry]:
    """The ``conformance_xfails.txt`` of the top-level package of ``module_name``, if any."""
    package = module_name.split(".", 1)[0]
    try:
        resource = importlib.resources.files(package).joinpath(PACKAGE_FILE)
        if not resource.is_file():
            return []
        text = resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, TypeError, OSError):
        return []
    return parse(text, f"{package}/{PACKAGE_FILE}")
