"""The statistics a lab report needs, computed by scipy.

    wilson(correct, n)            95% Wilson score interval of an accuracy judged on n images
    mcnemar(a_right, b_right)     exact McNemar test on paired per-image correctness
    two_proportions(a, b, n_a, n_b)  unpaired test of two accuracies (different test runs)
    friedman(blocks)              does a factor matter across the levels of another? (a grid)
    t_interval(values)            95% t interval of a mean accuracy over repeated seeds
    spearman(xs, ys)              rank correlation and its two-sided p-value (a search's trends)

An accuracy of 99.2% on 1,000 images is 992 right answers: one image is 0.1 points, and the
95% interval is about 98.4-99.6%. Two models judged on the same images are compared on the
images where exactly one of them is right (McNemar): those discordant pairs carry all the
evidence, and under "no difference" each is equally likely to go either way.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

ALPHA = 0.05  # "significant" means p < ALPHA
EXACT_UP_TO = 8  # exact permutation p-values for a rank correlation up to this many points


def wilson(correct: int, n: int) -> tuple[float, float]:
    """95% Wilson score interval (as fractions) for `correct` successes out of `n`: it stays
    inside [0, 1] and is sensible near 100%, where MNIST accuracies live (Brown, Cai and
    DasGupta 2001 recommend it)."""
    if n <= 0:
        raise ValueError("an interval needs at least one image")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be in [0, {n}], got {correct}")
    ci = stats.binomtest(correct, n).proportion_ci(0.95, method="wilson")
    return max(0.0, ci.low), min(1.0, ci.high)


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float] | None:
    """Wilson interval for an accuracy recorded as a fraction of n images; None when the
    record is impossible (outside [0, 1]: a damaged or hand-edited result)."""
    if not 0.0 <= accuracy <= 1.0 or n <= 0:
        return None
    return wilson(round(accuracy * n), n)


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n fair coin flips."""
    return 1.0 if n == 0 else float(stats.binomtest(k, n, 0.5).pvalue)


@dataclass(frozen=True)
class McNemar:
    """Paired comparison of classifiers A and B on the same n images."""

    n: int  # images both were judged on
    only_a: int  # A right, B wrong
    only_b: int  # B right, A wrong
    p: float  # exact two-sided p-value

    @property
    def significant(self) -> bool:
        return self.p < ALPHA


def mcnemar(a_right: Sequence[bool], b_right: Sequence[bool]) -> McNemar:
    """Exact McNemar test: a_right[i] / b_right[i] say whether A / B got image i right."""
    if len(a_right) != len(b_right):
        raise ValueError(
            f"paired test needs the same images: {len(a_right)} vs {len(b_right)} answers"
        )
    only_a = sum(1 for a, b in zip(a_right, b_right, strict=True) if a and not b)
    only_b = sum(1 for a, b in zip(a_right, b_right, strict=True) if b and not a)
    return McNemar(len(a_right), only_a, only_b, binomial_two_sided(only_a, only_a + only_b))


@dataclass(frozen=True)
class Test:
    """A test's statistic and two-sided p-value."""

    statistic: float
    p: float

    @property
    def significant(self) -> bool:
        return self.p < ALPHA


def two_proportions(acc_a: float, acc_b: float, n_a: int, n_b: int) -> Test:
    """Unpaired test of two accuracies on n_a and n_b images (Pearson's chi-square on the 2x2
    table, the two-proportion z test squared): for runs whose per-image answers cannot be
    paired, such as ours against a number printed in the user's report."""
    right_a, right_b = round(acc_a * n_a), round(acc_b * n_b)
    table = [[right_a, n_a - right_a], [right_b, n_b - right_b]]
    if min(right_a + right_b, n_a + n_b - right_a - right_b) == 0:
        return Test(0.0, 1.0)  # both all right (or all wrong): nothing to tell apart
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    return Test(float(chi2), float(p))


def friedman(blocks: Sequence[Sequence[float]]) -> Test | None:
    """Friedman's test that a factor's levels (the columns) differ, each row a block (a level
    of the other factor): the rank-based test of a grid without repeats, which one wild cell
    (a run that collapsed) cannot dominate; with two levels, the sign test it reduces to.
    None with fewer than 2 blocks or 2 levels."""
    if len(blocks) < 2 or len(blocks[0]) < 2:
        return None
    if len(blocks[0]) == 2:
        wins = sum(b > a for a, b in blocks)
        return Test(wins, binomial_two_sided(wins, sum(a != b for a, b in blocks)))
    columns = list(zip(*blocks, strict=True))
    with np.errstate(invalid="ignore", divide="ignore"):  # every block all tied: 0 / 0
        result = stats.friedmanchisquare(*columns)
    if not math.isfinite(result.pvalue):  # every block ranks the levels alike, all tied
        return Test(0.0, 1.0)
    return Test(float(result.statistic), float(result.pvalue))


def correctness(predictions: dict | None) -> list[bool] | None:
    """Per-image right/wrong from a ledger record's "predictions"; None if absent or malformed."""
    if not isinstance(predictions, dict):
        return None
    labels, predicted = predictions.get("test_labels"), predictions.get("test_predictions")
    if not isinstance(labels, list) or not isinstance(predicted, list):
        return None
    if len(labels) != len(predicted) or not labels:
        return None
    return [a == b for a, b in zip(labels, predicted, strict=True)]


def mean_std(values: Sequence[float]) -> tuple[float | None, float | None, int]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None, None, 0
    std = statistics.stdev(values) if len(values) > 1 else None
    return statistics.fmean(values), std, len(values)


def t_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95% interval of the mean over repeated runs (Student's t); None with fewer than 2."""
    mean, std, n = mean_std(values)
    if mean is None or std is None:
        return None
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return max(0.0, mean - half), min(1.0, mean + half)  # accuracies: never past 0% or 100%


@dataclass(frozen=True)
class Spearman:
    rho: float  # Spearman's rank correlation, in [-1, 1]
    p: float  # two-sided p-value under "no association"
    n: int
    exact: bool  # p from every ordering of the ranks (else Student's t approximation)


def spearman(xs: Sequence[float], ys: Sequence[float]) -> Spearman | None:
    """Spearman's rho and its two-sided p-value: exact (every ordering of the ranks) for up
    to EXACT_UP_TO points, else Student's t with n - 2 degrees of freedom. None with fewer
    than 3 points, or when either side is constant (no ranking to correlate)."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs pairs: {len(xs)} x values, {len(ys)} y values")
    n = len(xs)
    if n < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    exact = n <= EXACT_UP_TO
    result = stats.spearmanr(xs, ys)  # p from Student's t with n - 2 degrees of freedom
    rho = max(-1.0, min(1.0, round(float(result.statistic), 12)))
    p = 0.0 if abs(rho) >= 1.0 else float(result.pvalue)
    if exact:
        test = stats.permutation_test(
            (list(xs),),
            lambda x: stats.spearmanr(x, ys).statistic,
            permutation_type="pairings",
            n_resamples=math.inf,
        )
        p = float(test.pvalue)
    return Spearman(rho, p, n, exact=exact)


def p_text(p: float, alpha: float = ALPHA) -> str:
    """'p=0.41', 'p=0.0031', 'p<0.001': enough digits that the text agrees with p < alpha."""
    if p < 0.001 and alpha > 0.001:
        return "p<0.001"
    text = f"{p:.2g}"
    # "p=0.05" beside "not significant" reads as a contradiction: show the digits that decide.
    if (float(text) < alpha) != (p < alpha) or float(text) == alpha:
        text = f"{p:.4g}"
    return f"p={text}"
