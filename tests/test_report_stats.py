"""The report's statistics: Wilson intervals, the exact McNemar test, seeds' mean and t interval."""

from __future__ import annotations

import math

import pytest

from mnistlab.report.stats import (
    binomial_two_sided,
    correctness,
    mcnemar,
    mean_std,
    t_interval,
    wilson,
)


def test_wilson_matches_the_textbook_values():
    low, high = wilson(50, 100)  # symmetric around 0.5
    assert (round(low, 4), round(high, 4)) == (0.4038, 0.5962)
    # 992 of 1,000: one image is 0.1 points; the interval is about +-0.6 points.
    low, high = wilson(992, 1000)
    assert (round(low * 100, 2), round(high * 100, 2)) == (98.43, 99.59)
    assert low < 0.992 < high


@pytest.mark.parametrize("n", [1, 10, 500, 10_000])
def test_wilson_stays_inside_0_1_and_contains_the_estimate(n):
    for correct in sorted({0, 1, n // 2, n - 1, n}):
        low, high = wilson(correct, n)
        assert 0.0 <= low <= correct / n <= high <= 1.0
    assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0


def test_wilson_narrows_with_more_images():
    widths = [wilson(round(0.99 * n), n) for n in (500, 1000, 10_000)]
    spans = [h - low for low, h in widths]
    assert spans[0] > spans[1] > spans[2]


def test_wilson_refuses_impossible_counts():
    with pytest.raises(ValueError):
        wilson(5, 0)
    with pytest.raises(ValueError):
        wilson(11, 10)


def test_exact_binomial_two_sided_by_hand():
    assert binomial_two_sided(0, 5) == pytest.approx(2 / 32)
    assert binomial_two_sided(1, 10) == pytest.approx(2 * 11 / 1024)
    assert binomial_two_sided(9, 10) == binomial_two_sided(1, 10)  # symmetric
    assert binomial_two_sided(5, 10) == 1.0  # capped: both tails meet
    assert binomial_two_sided(0, 0) == 1.0


def test_mcnemar_counts_only_discordant_images():
    a = [True] * 90 + [True] * 6 + [False] * 1 + [False] * 3
    b = [True] * 90 + [False] * 6 + [True] * 1 + [False] * 3
    test = mcnemar(a, b)
    assert (test.n, test.only_a, test.only_b) == (100, 6, 1)
    assert test.p == pytest.approx(2 * (1 + 7) / 2**7)  # 0.125
    assert not test.significant


def test_mcnemar_is_exact_for_ten_thousand_images():
    # 60 discordant images all favouring A: p = 2 / 2**60, far below any threshold.
    a = [True] * 10_000
    b = [True] * 9_940 + [False] * 60
    assert mcnemar(a, b).p == pytest.approx(2.0**-59)
    # Balanced disagreements of thousands of images: no overflow, p = 1.
    a = [True, False] * 5000
    b = [False, True] * 5000
    assert mcnemar(a, b).p == 1.0


def test_mcnemar_needs_the_same_images():
    with pytest.raises(ValueError, match="same images"):
        mcnemar([True, False], [True])


def test_correctness_reads_the_ledger_predictions():
    assert correctness({"test_labels": [1, 2, 3], "test_predictions": [1, 0, 3]}) == [
        True,
        False,
        True,
    ]
    for bad in (None, {}, {"test_labels": [1], "test_predictions": [1, 2]}, {"test_labels": []}):
        assert correctness(bad) is None


def test_mean_std_and_t_interval_of_seeds():
    mean, std, n = mean_std([0.990, 0.992, 0.994])
    assert (round(mean, 6), round(std, 6), n) == (0.992, 0.002, 3)
    low, high = t_interval([0.990, 0.992, 0.994])
    half = 4.303 * 0.002 / math.sqrt(3)
    assert low == pytest.approx(0.992 - half) and high == pytest.approx(0.992 + half)
    assert t_interval([0.99]) is None
    assert t_interval([0.999, 1.0])[1] == 1.0  # never past 100%


@pytest.mark.parametrize("r_target", [-0.9, 0.3, 0.9])
def test_log_fit_p_matches_the_closed_form_of_one_degree_of_freedom(r_target):
    # Three models: P(|T| >= t) with 1 degree of freedom is 1 - 2 atan(|t|) / pi.
    from mnistlab.report.runs import log_fit

    class B:
        def __init__(self, params, seconds):
            self.params, self.seconds = params, seconds

    fit = log_fit([B(10, 10), B(100, 10 ** (1 + r_target)), B(1000, 1000)])
    t = fit["r"] / math.sqrt(1 - fit["r"] ** 2)
    assert fit["p"] == pytest.approx(1 - 2 * math.atan(abs(t)) / math.pi, abs=1e-9)
    assert log_fit([B(10, 1), B(100, 10), B(1000, 100)])["p"] == 0.0  # a perfect line
    assert log_fit([B(10, 1), B(100, 10)]) is None  # two models: no correlation
