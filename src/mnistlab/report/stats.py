"""The few statistics a lab report needs, in plain Python (no scipy).

    wilson(correct, n)            95% Wilson score interval of an accuracy judged on n images
    mcnemar(a_right, b_right)     exact McNemar test on paired per-image correctness
    mean_std(values)              mean, sample standard deviation (None for n < 2), n
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

Z95 = 1.959963984540054  # two-sided 95% normal quantile
ALPHA = 0.05  # "significant" means p < ALPHA

# Two-sided 95% quantiles of Student's t for 1..30 degrees of freedom; beyond, the normal's.
T95 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval (as fractions) for `correct` successes out of `n`.

    Unlike the normal approximation it stays inside [0, 1] and is sensible near 100%, which
    is where MNIST accuracies live (Brown, Cai and DasGupta 2001 recommend it)."""
    if n <= 0:
        raise ValueError("an interval needs at least one image")
    if not 0 <= correct <= n:
        raise ValueError(f"correct must be in [0, {n}], got {correct}")
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # Exact ends: at p = 0 or 1 the interval must include the observed value.
    low = 0.0 if correct == 0 else max(0.0, centre - half)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def accuracy_interval(accuracy: float, n: int) -> tuple[float, float] | None:
    """Wilson interval for an accuracy recorded as a fraction of n images; None when the
    record is impossible (outside [0, 1]: a damaged or hand-edited result)."""
    if not 0.0 <= accuracy <= 1.0 or n <= 0:
        return None
    return wilson(round(accuracy * n), n)


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p-value of k or fewer (or as extreme) successes in n fair coin flips."""
    if n == 0:
        return 1.0
    k = min(k, n - k)
    # comb(n, 0), then each term from the last: comb(n, i + 1) = comb(n, i) * (n - i) / (i + 1)
    term = tail = 1
    for i in range(k):
        term = term * (n - i) // (i + 1)
        tail += term
    # Integers all the way: exact even for n in the thousands (the float only at the end).
    return min(1.0, 2 * tail / 2**n)


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
    return McNemar(
        len(a_right), only_a, only_b, binomial_two_sided(min(only_a, only_b), only_a + only_b)
    )


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
    t = T95[n - 2] if n - 1 <= len(T95) else Z95
    half = t * std / math.sqrt(n)
    return max(0.0, mean - half), min(1.0, mean + half)  # accuracies: never past 0% or 100%


# ---------------------------------------------------------------- rank correlation
EXACT_UP_TO = 8  # exact permutation p-values up to this many points (8! = 40,320 orderings)


@dataclass(frozen=True)
class Spearman:
    rho: float  # Spearman's rank correlation, in [-1, 1]
    p: float  # two-sided p-value under "no association"
    n: int
    exact: bool  # p from every ordering of the ranks (else Student's t approximation)


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing the mean of the ranks they span."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def _pearson(xs: Sequence[float], ys: Sequence[float]) -> float:
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    return max(-1.0, min(1.0, sxy / math.sqrt(sxx * syy)))


def spearman(xs: Sequence[float], ys: Sequence[float]) -> Spearman | None:
    """Spearman's rho of paired values and its two-sided p-value: exact (every ordering of
    the ranks counted) for up to EXACT_UP_TO points, else Student's t with n - 2 degrees of
    freedom (what scipy.stats.spearmanr uses). None with fewer than 3 points, or when either
    side is constant (no ranking to correlate)."""
    if len(xs) != len(ys):
        raise ValueError(f"spearman needs pairs: {len(xs)} x values, {len(ys)} y values")
    n = len(xs)
    if n < 3 or len(set(xs)) < 2 or len(set(ys)) < 2:
        return None
    rx, ry = ranks(xs), ranks(ys)
    rho = _pearson(rx, ry)
    if n <= EXACT_UP_TO:
        import itertools

        mx = statistics.fmean(rx)
        cx = [x - mx for x in rx]
        sxx = sum(c * c for c in cx)
        syy = sum((y - statistics.fmean(ry)) ** 2 for y in ry)
        scale = math.sqrt(sxx * syy)
        target = abs(rho) * scale - 1e-9  # the covariance as extreme as the one observed
        extreme = total = 0
        for perm in itertools.permutations(ry):
            total += 1
            if abs(sum(c * y for c, y in zip(cx, perm, strict=True))) >= target:
                extreme += 1
        return Spearman(rho, extreme / total, n, exact=True)
    if abs(rho) >= 1.0:
        return Spearman(rho, 0.0, n, exact=False)
    df = n - 2
    t = rho * math.sqrt(df / (1 - rho * rho))
    return Spearman(rho, student_t_two_sided(t, df), n, exact=False)


def p_text(p: float, alpha: float = ALPHA) -> str:
    """'p=0.41', 'p=0.0031', 'p<0.001': enough digits that the text agrees with p < alpha."""
    if p < 0.001 and alpha > 0.001:
        return "p<0.001"
    text = f"{p:.2g}"
    # "p=0.05" beside "not significant" reads as a contradiction: show the digits that decide.
    if (float(text) < alpha) != (p < alpha) or float(text) == alpha:
        text = f"{p:.4g}"
    return f"p={text}"


def pearson_p(r: float, n: int) -> float:
    """Two-sided p-value of Pearson's r over n pairs (t test with n - 2 degrees of freedom)."""
    if n < 3:
        raise ValueError(f"a correlation's p-value needs at least 3 pairs, got {n}")
    if abs(r) >= 1.0:
        return 0.0
    return student_t_two_sided(r * math.sqrt((n - 2) / (1 - r * r)), n - 2)


def student_t_two_sided(t: float, df: int) -> float:
    """P(|T| >= |t|) for Student's t with `df` degrees of freedom: I_x(df/2, 1/2), x = df/(df+t²)."""
    return min(1.0, max(0.0, _betainc(df / 2, 0.5, df / (df + t * t))))


def _betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction
    (Numerical Recipes, betacf), accurate to ~1e-12 for the arguments used here."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x > (a + 1) / (a + b + 2):  # the fraction converges fast on this side only
        return 1.0 - _betainc(b, a, 1.0 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        for num in (
            m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
            -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1)),
        ):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-14:
            break
    return math.exp(log_front) * h / a
