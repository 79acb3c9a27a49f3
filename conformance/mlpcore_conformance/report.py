"""The conformance report: measured errors per (op, dtype) and the checkpoint matrix.

``pytest --pyargs mlpcore_conformance --mlpcore-backend NAME --mlpcore-report PATH`` writes
``PATH.json`` (the data) and ``PATH.md`` (the same as Markdown). For every backend under test the
report gives, per op and dtype of the tolerance table, the number of comparisons with the float64
reference, the largest absolute and relative errors, the allowed tolerance, and *used*: the
largest fraction of the allowed error any comparison needed (a test fails above 1). With
``--mlpcore-matrix`` it adds the N×N matrix of checkpoints saved by one backend and loaded by
another. ``nox -s docs`` embeds the built-in backends' report in the docs site.
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlpcore_conformance.tolerances import Measurement, tolerance

__all__ = ["BackendResults", "ErrorStats", "render_markdown", "report_paths", "write_report"]

FORMAT = "mlpcore-conformance-report"
FORMAT_VERSION = 1
OUTCOMES = ("passed", "failed", "xfailed", "xpassed", "skipped", "error")


@dataclass
class ErrorStats:
    """Every comparison of one (op, dtype) on one backend, summarised."""

    comparisons: int = 0
    failed: int = 0
    max_abs: float = 0.0
    max_rel: float = 0.0
    used: float = 0.0
    worst: str = ""

    def add(self, m: Measurement) -> None:
        """Fold one measurement in."""
        self.comparisons += 1
        self.failed += 0 if m.passed else 1
        self.max_abs = _max(self.max_abs, m.max_abs)
        self.max_rel = _max(self.max_rel, m.max_rel)
        if m.used > self.used or (math.isnan(m.used) and not math.isnan(self.used)):
            self.used = m.used
            self.worst = m.what


def _max(a: float, b: float) -> float:
    if math.isnan(b):
        return a
    return max(a, b)


@dataclass
class BackendResults:
    """What one backend did in a run."""

    name: str
    origin: str
    framework_version: str
    capabilities: list[str]
    training_methods: list[str]
    outcomes: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    errors: dict[tuple[str, str], ErrorStats] = field(default_factory=dict)

    def add(self, m: Measurement) -> None:
        """Fold one measurement in."""
        self.errors.setdefault((m.op, m.dtype), ErrorStats()).add(m)

    def to_json(self) -> dict[str, Any]:
        """The JSON form."""
        rows = []
        for (op, dtype), stats in sorted(self.errors.items()):
            tol = tolerance(op, dtype)
            rows.append({
                "op": op, "dtype": dtype, "comparisons": stats.comparisons,
                "failed": stats.failed, "max_abs": _finite(stats.max_abs),
                "max_rel": _finite(stats.max_rel), "used": _finite(stats.used),
                "worst": stats.worst, "rtol": tol.rtol, "atol": tol.atol})
        return {"name": self.name, "origin": self.origin,
                "framework_version": self.framework_version,
                "capabilities": self.capabilities, "training_methods": self.training_methods,
                "outcomes": self.outcomes, "failures": self.failures,
                "seconds": round(self.seconds, 3), "errors": rows}


def _finite(value: float) -> float | str | None:
    """JSON has no NaN or infinity: write them as strings."""
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def report_paths(path: str | Path) -> tuple[Path, Path]:
    """``(PATH.json, PATH.md)``; a ``.json`` or ``.md`` suffix on ``path`` is dropped first."""
    base = Path(path)
    if base.suffix in (".json", ".md"):
        base = base.with_suffix("")
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".md")


def build_report(backends: Sequence[BackendResults], matrix_backends: Sequence[str],
                 matrix_cells: Sequence[Mapping[str, Any]], settings: Mapping[str, Any],
                 mlpcore_version: str) -> dict[str, Any]:
    """The JSON document."""
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "mlpcore_version": mlpcore_version,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "settings": dict(settings),
        "backends": [b.to_json() for b in backends],
        "matrix": {"backends": list(matrix_backends), "cells": [dict(c) for c in matrix_cells]},
    }


def write_report(path: str | Path, report: Mapping[str, Any]) -> tuple[Path, Path]:
    """Write ``report`` as JSON and Markdown; returns both paths."""
    json_path, md_path = report_paths(path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path


def _number(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if value == 0:
        return "0"
    return f"{value:.1e}"


def _used(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.2g}"


def _cell(cell: Mapping[str, Any] | None) -> str:
    if cell is None:
        return "not run"
    outcome = cell.get("outcome", "?")
    if outcome == "passed":
        dtypes = ", ".join(cell.get("dtypes", []))
        diff = cell.get("max_abs_output_diff")
        return f"✅ bit-exact ({dtypes}); outputs Δ ≤ {_number(diff)}"
    if outcome == "skipped":
        return "skipped"
    return f"❌ {outcome}"


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown."""
    settings = report.get("settings", {})
    lines = [
        f"mlpcore {report.get('mlpcore_version')} · Python {report.get('python')} · "
        f"{report.get('platform')} · Hypothesis max_examples {settings.get('max_examples')}"
        f"{' (derandomized)' if settings.get('derandomize') else ''}",
        "",
    ]
    backends = report.get("backends", [])
    matrix = report.get("matrix", {})
    cells = matrix.get("cells", [])
    if backends or cells:
        lines += ["| backend | framework | capabilities | passed | failed | xfailed | skipped | "
                  "test time |",
                  "|---|---|---|--:|--:|--:|--:|--:|"]
        rows = [(f"`{b['name']}`", b["framework_version"], ", ".join(b["capabilities"]) or "-",
                 b["outcomes"], f"{b['seconds']:.1f} s") for b in backends]
        if cells:  # one test per cell: with these rows the counts add up to pytest's
            counts = dict.fromkeys(OUTCOMES, 0)
            for cell in cells:
                counts[cell["outcome"]] += 1
            rows.append(("checkpoint matrix", "", "", counts, ""))
        for name, framework, capabilities, o, seconds in rows:
            lines.append(f"| {name} | {framework} | {capabilities} | {o['passed']} | "
                         f"{o['failed'] + o['error'] + o['xpassed']} | {o['xfailed']} | "
                         f"{o['skipped']} | {seconds} |")
        lines.append("")
    if backends:
        lines += ["Errors against the float64 reference, per op and dtype: the largest absolute "
                  "and relative error over all comparisons, the allowed tolerance, and *used*, "
                  "the largest fraction of the allowed error any comparison needed (a test fails "
                  "above 1).", ""]
    for b in backends:
        lines += [f"### `{b['name']}` ({b['framework_version']})", ""]
        if b["failures"]:
            lines += ["Failed: " + ", ".join(f"`{f}`" for f in b["failures"]), ""]
        if not b["errors"]:
            lines += ["No comparisons recorded.", ""]
            continue
        lines += ["| op | dtype | comparisons | max abs error | max rel error | allowed atol | "
                  "allowed rtol | used | worst case |",
                  "|---|---|--:|--:|--:|--:|--:|--:|---|"]
        for row in b["errors"]:
            flag = " ❌" if row["failed"] else ""
            lines.append(
                f"| `{row['op']}` | {row['dtype']} | {row['comparisons']} | "
                f"{_number(row['max_abs'])} | {_number(row['max_rel'])} | "
                f"{_number(row['atol'])} | {_number(row['rtol'])} | {_used(row['used'])}{flag} | "
                f"{row['worst']} |")
        lines.append("")
    names = matrix.get("backends", [])
    if names:
        by_pair = {(c["saver"], c["loader"]): c for c in cells}
        lines += ["### Checkpoint matrix", "",
                  "Row: the backend that saved the checkpoint; column: the backend that loaded "
                  "it. A cell passes when every variable loads bit-exact and the outputs agree "
                  "within the `forward` tolerance.", "",
                  "| saved by ↓ / loaded by → | " + " | ".join(f"`{n}`" for n in names) + " |",
                  "|---|" + "---|" * len(names)]
        for saver in names:
            row = [_cell(by_pair.get((saver, loader))) for loader in names]
            lines.append(f"| `{saver}` | " + " | ".join(row) + " |")
        lines.append("")
    return "\n".join(lines)
