"""Mode metrics on small hand-made sets, where every value can be counted by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ganforge.metrics import mode_coverage, stacked_mode_coverage

CENTRES = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])  # three modes, sigma 1: "high quality" within 3


def test_mode_coverage_counts_by_hand() -> None:
    samples = np.array(
        [[0.5, 0.0]] * 25  # mode 0: 25 good samples
        + [[10.0, 2.9]] * 20  # mode 1: 20 good samples (2.9 < 3 sigma)
        + [[0.0, 13.5]] * 5  # near mode 2 but 3.5 away: not high quality
        + [[5.0, 5.0]] * 50  # between modes: nearest is mode 0 at 7.07, not high quality
    )
    coverage = mode_coverage(samples, CENTRES, sigma=1.0, min_count=20)
    assert coverage.counts == (25, 20, 0)
    assert coverage.modes_covered == 2  # 25 >= 20 and 20 >= 20; mode 2 has none
    assert coverage.high_quality == pytest.approx(45 / 100)
    p = np.array([25, 20]) / 45  # reverse KL of the high-quality histogram to uniform over 3 modes
    assert coverage.reverse_kl == pytest.approx(float(np.sum(p * np.log(p * 3))))


def test_uniform_coverage_has_zero_kl_and_nothing_gives_infinity() -> None:
    uniform = mode_coverage(np.repeat(CENTRES, 30, axis=0), CENTRES, sigma=1.0)
    assert (
        uniform.modes_covered == 3
        and uniform.reverse_kl == pytest.approx(0.0)
        and uniform.high_quality == 1.0
    )
    nothing = mode_coverage(np.array([[50.0, 50.0]]), CENTRES, sigma=1.0)
    assert nothing.modes_covered == 0 and math.isinf(nothing.reverse_kl)


def test_stacked_modes_by_hand() -> None:
    digits = np.array([[1, 2, 3], [1, 2, 3], [0, 0, 7], [9, 9, 9]])  # modes 123, 123, 7, 999
    covered, kl = stacked_mode_coverage(digits)
    assert covered == 3
    p = np.array([0.5, 0.25, 0.25])
    assert kl == pytest.approx(float(np.sum(p * np.log(p * 1000))))
    every_mode = np.array([[m // 100, m // 10 % 10, m % 10] for m in range(1000)])
    assert stacked_mode_coverage(every_mode) == (1000, pytest.approx(0.0))
