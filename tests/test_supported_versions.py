"""The framework ranges ``pyproject.toml`` declares are the ones ``nox -s compat`` tests: from the
oldest release in ``noxfile.COMPAT`` to the newest, by minor version (docs/conformance.md)."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXTRAS = {"torch": ("torch", "torch"), "tensorflow": ("tensorflow", "tensorflow"),
          "tensorflow-cpu": ("tensorflow", "tensorflow-cpu")}
"""Extra of pyproject.toml -> (its backend in COMPAT, the distribution it names: tensorflow is
the same release as the tensorflow-cpu that is tested)."""


def compat_releases() -> dict[str, tuple[str, ...]]:
    """``COMPAT`` of noxfile.py, read without importing nox."""
    tree = ast.parse((ROOT / "noxfile.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == \
                ["COMPAT"]:
            value: dict[str, tuple[str, ...]] = ast.literal_eval(node.value)
            return value
    raise AssertionError("noxfile.py defines no COMPAT")


def minor(version: str) -> tuple[int, int]:
    major, minor_, *_ = re.split(r"[.+]", version)
    return int(major), int(minor_)


def test_each_extra_spans_exactly_the_tested_releases() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))[
        "project"]["optional-dependencies"]
    releases = compat_releases()
    for extra, (backend, distribution) in EXTRAS.items():
        tested = sorted(minor(r.split("==")[1]) for r in releases[backend])
        oldest, newest = tested[0], tested[-1]
        want = f"{distribution}>={oldest[0]}.{oldest[1]},<{newest[0]}.{newest[1] + 1}"
        assert extras[extra] == [want], (
            f"pyproject.toml's extra {extra!r} is {extras[extra]}, but nox -s compat tests "
            f"{', '.join(releases[backend])}: declare {want!r}, or test what it claims")
