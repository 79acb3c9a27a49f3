"""Ratios between two contenders timed in the same repeats, robust to a machine's slow phases.

The 2-core development machines go through slow phases that last minutes, in which every
contender runs 20-40 % slower. The ratio of two minima, ``min(a) / min(b)``, may then take ``a``'s
minimum from a fast phase and ``b``'s from a slow one. Contenders timed in the same repeat ran
seconds apart, so within a repeat both see the same phase; the **paired ratio** is the median over
repeats of ``a_r / b_r``. The benchmarks print both and judge their goals on the paired ratio.

A minimum is only comparable with another taken over the same kind of sample: the minimum of ten
single epochs lies below the minimum of five two-epoch means of the same epochs. A contender
timed epoch by epoch is therefore grouped into means of as many epochs as the others' repeats
take (:func:`run_means`) before minima are compared.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class PairedRatio:
    """``a / b`` over repeats ``r``: the median, smallest and largest of ``a_r / b_r``, and
    ``min(a) / min(b)``."""

    median: float
    low: float
    high: float
    of_minima: float
    repeats: int

    def describe(self) -> str:
        return (f"{self.median:.2f} (median of {self.repeats} paired repeats, range "
                f"{self.low:.2f}-{self.high:.2f}; ratio of minima {self.of_minima:.2f})")


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> PairedRatio:
    """The paired ratio of seconds ``a[r]`` and ``b[r]`` timed in the same repeat ``r``."""
    if len(a) != len(b) or not a:
        raise ValueError(f"paired_ratio needs the same, non-zero number of repeats for both "
                         f"contenders; got {len(a)} and {len(b)}")
    if min(b) <= 0.0 or min(a) <= 0.0:
        raise ValueError("paired_ratio needs positive times")
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return PairedRatio(statistics.median(ratios), min(ratios), max(ratios), min(a) / min(b),
                       len(ratios))


def run_means(seconds: Sequence[float], per_run: int) -> list[float]:
    """Means of consecutive groups of ``per_run`` values of ``seconds`` (per-epoch times), one per
    run of ``per_run`` epochs, so that their minimum compares with the minimum over repeats of a
    contender timed ``per_run`` epochs at a time. A last incomplete group is dropped."""
    if per_run < 1:
        raise ValueError(f"run_means needs per_run >= 1, got {per_run}")
    runs = len(seconds) // per_run
    if runs == 0:
        raise ValueError(f"run_means needs at least {per_run} values, got {len(seconds)}")
    return [statistics.fmean(seconds[i * per_run:(i + 1) * per_run]) for i in range(runs)]
