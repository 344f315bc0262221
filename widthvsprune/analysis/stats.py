"""Statistics over seeds and test examples (pure: NumPy and SciPy, no framework).

The verdict at one size point compares the mean test accuracy of the pruned
models with that of their size-matched narrow opponents (``delta`` = pruned
minus narrow). Its interval accounts for two sources of error:

- the spread over seeds: each arm's sample variance over its seeds, divided
  by its number of seeds (unknown with one seed, then left out and said);
- the finite test set: each arm's accuracy is measured on ``n`` test
  examples, a binomial sample whose variance does not shrink with more
  seeds; it is taken as ``p(1 - p) / n`` per arm with ``p`` shrunk towards
  1/2 (two successes and two failures added, Agresti and Coull), so the
  interval never has zero width. Counting the arms as independent is
  conservative, as both are tested on the same examples.

The critical value is Student's t with Welch-Satterthwaite degrees of
freedom (the test-set term counts as known), at a level corrected across the
study's size points by Bonferroni (each of ``m`` intervals at ``1 - 0.05/m``,
so all of them hold together with probability at least 95%), cut to [-1, 1],
the range of a difference of accuracies (a few seeds far apart give a t
interval wider than that). A side wins only when the corrected interval
excludes zero and the difference is at least the study's ``min_effect``.
"""

import dataclasses
import math

import numpy as np
from scipy import stats as _stats

from widthvsprune.families.budgets import UNDERFILLED_BELOW

POWER = 0.8  # for the smallest detectable difference


def summary(values, confidence=0.95):
    """Mean, sample std, n and a Student's t interval of the mean, cut to [0, 1] (an accuracy's range).

    With one value the interval is that value's point (std and half-width NaN).

    Returns:
        A dict ``mean, std, n, ci_low, ci_high``.
    """
    values = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = int(values.size)
    if n == 0:
        nan = float("nan")
        return {"mean": nan, "std": nan, "n": 0, "ci_low": nan, "ci_high": nan}
    mean = float(values.mean())
    if n == 1:
        return {"mean": mean, "std": float("nan"), "n": 1, "ci_low": float("nan"), "ci_high": float("nan")}
    std = float(values.std(ddof=1))
    half = float(_stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "ci_low": max(0.0, mean - half), "ci_high": min(1.0, mean + half)}


def binomial_variance(accuracy, n):
    """Binomial variance of an accuracy measured on ``n`` examples, ``p`` shrunk by two successes and two failures."""
    p = (accuracy * n + 2) / (n + 4)
    return p * (1 - p) / n


@dataclasses.dataclass(frozen=True)
class Difference:
    """``mean(pruned) - mean(narrow)`` with its corrected interval.

    Attributes:
        delta: the difference of mean test accuracies.
        low, high: the interval at ``level``, within [-1, 1] (the range of a
            difference of accuracies; few seeds with a large spread can give
            a wider t interval).
        level: the interval's confidence level (corrected for ``comparisons``).
        se: the standard error of ``delta``.
        df: degrees of freedom of the critical value (``inf`` with one seed per arm).
        p_value: two-sided, for ``delta != 0``, not corrected.
        detectable: the smallest difference this comparison would detect with
            80% power at the corrected level: ``(t_crit + z_0.8) * se``.
        seed_spread: whether the seeds' spread is in ``se`` (two seeds or more per arm).
    """

    delta: float
    low: float
    high: float
    level: float
    se: float
    df: float
    p_value: float
    detectable: float
    seed_spread: bool


def difference(pruned, narrow, n_test, comparisons=1, confidence=0.95):
    """The difference of two arms' accuracies at one size point, with its interval.

    Args:
        pruned, narrow: test accuracies, one per seed.
        n_test: test examples each accuracy was measured on.
        comparisons: size points compared in the study (Bonferroni).
        confidence: the family-wise confidence level.

    Returns:
        A :class:`Difference`.
    """
    a = np.asarray(pruned, dtype=float)
    b = np.asarray(narrow, dtype=float)
    delta = float(a.mean() - b.mean())
    test = binomial_variance(a.mean(), n_test) + binomial_variance(b.mean(), n_test)
    spread = a.size >= 2 and b.size >= 2
    va = a.var(ddof=1) / a.size if spread else 0.0
    vb = b.var(ddof=1) / b.size if spread else 0.0
    se = math.sqrt(va + vb + test)
    denominator = (va**2 / (a.size - 1) + vb**2 / (b.size - 1)) if spread else 0.0
    df = se**4 / denominator if denominator > 0 else math.inf
    level = 1 - (1 - confidence) / max(1, int(comparisons))
    critical = float(_stats.t.ppf(0.5 + level / 2, df))
    p_value = float(2 * _stats.t.sf(abs(delta) / se, df))
    detectable = (critical + float(_stats.norm.ppf(POWER))) * se
    low, high = max(-1.0, delta - critical * se), min(1.0, delta + critical * se)  # accuracies differ by <= 1
    return Difference(delta, low, high, level, se, df, p_value, detectable, spread)


def verdict(diff, min_effect, fill=1.0, underfilled_below=UNDERFILLED_BELOW, names=("pruned", "narrow")):
    """Who wins at one size point: one of ``names`` (arm, opponent), ``"tie"`` or ``"inconclusive-underfilled"``.

    A side wins only when the interval excludes zero and ``|delta|`` is at
    least ``min_effect``. A win over an opponent that fills less than
    ``underfilled_below`` of its budget is ``inconclusive-underfilled`` (the
    opponent had fewer parameters to work with); the opponent's win with
    fewer parameters stands.
    """
    if diff.low > 0 and diff.delta >= min_effect:
        return "inconclusive-underfilled" if fill < underfilled_below else names[0]
    if diff.high < 0 and -diff.delta >= min_effect:
        return names[1]
    return "tie"


def at_chance(accuracy, num_classes, n):
    """Whether an accuracy measured on ``n`` examples is no better than guessing among ``num_classes``.

    Within three standard errors of ``1 / num_classes`` (a model that guesses
    scores that fraction; its spread on ``n`` examples is binomial).
    """
    chance = 1.0 / num_classes
    return bool(accuracy <= chance + 3.0 * math.sqrt(chance * (1.0 - chance) / max(1, n)))


def pareto_flags(sizes, scores):
    """True for each point that no other point beats: smaller-or-equal and more accurate,
    or smaller and at least as accurate."""
    sizes = np.asarray(sizes, dtype=float)
    scores = np.asarray(scores, dtype=float)
    flags = []
    for i in range(sizes.size):
        dominated = np.any(
            ((sizes <= sizes[i]) & (scores > scores[i])) | ((sizes < sizes[i]) & (scores >= scores[i]))
        )
        flags.append(not bool(dominated))
    return flags
