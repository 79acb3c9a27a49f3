"""The benchmarks' paired ratio (benchmarks/bench_stats.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from bench_stats import paired_ratio, run_means


def test_a_slow_phase_moves_the_ratio_of_minima_but_not_the_paired_ratio() -> None:
    # a takes 1.05x b's time, except in repeat 1, where a fast phase ended between b and a
    b = [1.0, 0.7, 1.0, 1.2]
    a = [1.05 * t for t in b]
    a[1] = 1.05
    ratio = paired_ratio(a, b)
    assert ratio.median == pytest.approx(1.05)
    assert ratio.of_minima == pytest.approx(1.05 / 0.7)
    assert (ratio.low, ratio.high) == pytest.approx((1.05, 1.5))
    assert ratio.repeats == 4
    assert "1.05 (median of 4 paired repeats" in ratio.describe()


def test_paired_ratio_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    assert paired_ratio([1.0, 2.0], [1.0, 1.0]).median == pytest.approx(1.5)


@pytest.mark.parametrize(("a", "b"), [([1.0], [1.0, 2.0]), ([], []), ([1.0], [0.0])])
def test_paired_ratio_refuses_unpaired_or_empty_or_non_positive_times(
        a: list[float], b: list[float]) -> None:
    with pytest.raises(ValueError, match="paired_ratio"):
        paired_ratio(a, b)


def test_run_means_groups_consecutive_epochs_and_their_minimum_is_not_below_the_single_minimum(
) -> None:
    seconds = [2.0, 3.0, 2.2, 2.4, 4.0, 2.1, 2.5]
    means = run_means(seconds, 2)
    assert means == pytest.approx([2.5, 2.3, 3.05])  # the seventh epoch is an incomplete run
    assert min(means) > min(seconds)
    assert run_means(seconds, 1) == pytest.approx(seconds)


@pytest.mark.parametrize(("seconds", "per_run"), [([1.0], 2), ([], 1), ([1.0, 2.0], 0)])
def test_run_means_refuses_too_few_values_or_a_non_positive_group(seconds: list[float],
                                                                  per_run: int) -> None:
    with pytest.raises(ValueError, match="run_means needs"):
        run_means(seconds, per_run)
