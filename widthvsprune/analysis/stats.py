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
from typing import Optional, Tuple

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


def corrected_level(confidence, comparisons):
    """Bonferroni: each of ``comparisons`` intervals at ``1 - (1 - confidence) / comparisons``."""
    return 1 - (1 - confidence) / max(1, int(comparisons))


def _se_df(var_a, n_a, var_b, n_b, test):
    """Standard error and Welch-Satterthwaite degrees of freedom: seeds' spread (``var / n`` per arm, left out when
    ``var`` is ``None``) plus the test set's error ``test`` (taken as known)."""
    va = 0.0 if var_a is None else var_a / n_a
    vb = 0.0 if var_b is None else var_b / n_b
    se = math.sqrt(va + vb + test)
    denominator = (0.0 if var_a is None else va**2 / (n_a - 1)) + (0.0 if var_b is None else vb**2 / (n_b - 1))
    return se, (se**4 / denominator if denominator > 0 else math.inf)


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
    se, df = _se_df(a.var(ddof=1) if spread else None, a.size, b.var(ddof=1) if spread else None, b.size, test)
    level = corrected_level(confidence, comparisons)
    critical = float(_stats.t.ppf(0.5 + level / 2, df))
    p_value = float(2 * _stats.t.sf(abs(delta) / se, df))
    detectable = (critical + float(_stats.norm.ppf(POWER))) * se
    low, high = max(-1.0, delta - critical * se), min(1.0, delta + critical * se)  # accuracies differ by <= 1
    return Difference(delta, low, high, level, se, df, p_value, detectable, spread)


def detectable_with(arm, opponent, seeds, test_examples, comparisons=1, confidence=0.95):
    """The smallest detectable difference if both arms had ``seeds`` seeds and ``test_examples`` test examples.

    The seeds' spread is each arm's sample variance so far and the test
    set's error the binomial one at each arm's mean accuracy, as in
    :func:`difference`; ``math.inf`` for either count leaves its term out.

    Args:
        arm, opponent: test accuracies so far, one per seed (two or more each).
        seeds: seeds per arm, an integer >= 2 or ``math.inf``.
        test_examples: test examples, an integer >= 1 or ``math.inf``.

    Returns:
        ``(t_crit + z_0.8) * se``, a fraction.
    """
    a, b = np.asarray(arm, dtype=float), np.asarray(opponent, dtype=float)
    test = 0.0 if math.isinf(test_examples) else (binomial_variance(a.mean(), test_examples)
                                                  + binomial_variance(b.mean(), test_examples))
    if math.isinf(seeds):
        se, df = math.sqrt(test), math.inf
    else:
        se, df = _se_df(a.var(ddof=1), seeds, b.var(ddof=1), seeds, test)
    level = corrected_level(confidence, comparisons)
    return (float(_stats.t.ppf(0.5 + level / 2, df)) + float(_stats.norm.ppf(POWER))) * se


@dataclasses.dataclass(frozen=True)
class Needed:
    """What would bring one comparison's smallest detectable difference under a target.

    Attributes:
        seeds: seeds per arm with the same test set (their spread taken as
            the one measured so far); ``math.inf`` when no number of seeds
            would (the test set's own error is too large); ``None`` when
            unknown (one seed per arm: no spread measured yet).
        test_examples: test examples with the same seeds; ``math.inf`` when
            no test set would (the seeds' spread is too large); ``None``
            when unknown.
        seeds_floor: the detectable difference with infinitely many seeds
            (what the test set's error alone allows).
        examples_floor: the detectable difference with infinitely many test
            examples (what the seeds' spread alone allows).
        together: where neither count alone would do, the fewest seeds and
            test examples, both multiplied by the same whole factor, that
            would: ``(seeds, test_examples)``; ``None`` otherwise.
    """

    seeds: Optional[float]
    test_examples: Optional[float]
    seeds_floor: float = math.nan
    examples_floor: float = math.nan
    together: Optional[Tuple[float, float]] = None


def _smallest(resolves, start, limit):
    """The smallest integer ``n >= start`` with ``resolves(n)`` (doubling, then bisection), or ``math.inf``."""
    if resolves(start):
        return start
    low, high = start, start * 2
    while not resolves(high):
        if high > limit:
            return math.inf
        low, high = high, high * 2
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if resolves(middle) else (middle, high)
    return high


def needed(arm, opponent, n_test, target, comparisons=1, confidence=0.95):
    """How many seeds per arm, or test examples, would make differences of ``target`` detectable.

    Each count is varied alone, the other kept as it is, with the
    standard-error formula of :func:`difference` (the seeds' spread taken as
    measured so far); the detectable difference is ``(t_crit + z_0.8) * se``
    at the corrected level.

    Args:
        arm, opponent: test accuracies so far, one per seed.
        n_test: test examples each accuracy was measured on.
        target: the difference to make detectable (a study's ``min_effect``).
        comparisons, confidence: as for :func:`difference`.

    Returns:
        A :class:`Needed`.

    Example:

    ```python
    needed([0.95, 0.93, 0.96], [0.94, 0.95, 0.92], n_test=360, target=0.01)  # Needed(seeds=..., test_examples=...)
    ```
    """
    a, b = np.asarray(arm, dtype=float), np.asarray(opponent, dtype=float)
    if a.size < 2 or b.size < 2:
        return Needed(None, None)
    n_seeds = int(min(a.size, b.size))

    def at(seeds, examples):
        return detectable_with(a, b, seeds, examples, comparisons, confidence)

    seeds_floor, examples_floor = at(math.inf, n_test), at(n_seeds, math.inf)
    seeds = math.inf if seeds_floor >= target else _smallest(lambda k: at(k, n_test) < target, n_seeds, 10**7)
    examples = math.inf if examples_floor >= target else _smallest(lambda n: at(n_seeds, n) < target, int(n_test),
                                                                   10**12)
    together = None
    if math.isinf(seeds) and math.isinf(examples):
        factor = _smallest(lambda m: at(n_seeds * m, int(n_test) * m) < target, 1, 10**6)
        together = (n_seeds * factor, int(n_test) * factor) if math.isfinite(factor) else (math.inf, math.inf)
    return Needed(seeds, examples, seeds_floor, examples_floor, together)


def lower_bound(arm, reference, n_test, confidence=0.95):
    """A one-sided lower confidence bound of ``mean(arm) - mean(reference)``, with the error of :func:`difference`.

    Returns:
        A :class:`Difference` whose ``low`` is the bound at ``confidence``
        (its two-sided interval is at ``2 * confidence - 1``).
    """
    return difference(arm, reference, n_test, 1, 2 * confidence - 1)


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


def bracket(below, above, names=("pruned", "narrow")):
    """The verdict against an opponent that cannot fill its budget, from the two opponents that bracket it.

    When the family's widths step too coarsely for the largest opponent
    within the budget to fill it (less than ``UNDERFILLED_BELOW``), the
    smallest opponent above the budget is trained too. ``below`` and
    ``above`` are the plain verdicts (:func:`verdict` with a full budget)
    against the smaller and the larger opponent:

    - the arm beats the larger opponent (more parameters than its own
      budget): the arm wins;
    - the smaller opponent (fewer parameters) beats the arm: the opponent wins;
    - tied with both: a tie;
    - anything else (the arm beats only the smaller one, or only the larger
      one beats the arm): inconclusive, with the reason.

    Args:
        below, above: verdicts, each one of ``names`` or ``"tie"``.
        names: ``(arm, opponent)``.

    Returns:
        ``(verdict, reason)``: ``verdict`` is one of ``names``, ``"tie"`` or
        ``"inconclusive-underfilled"``; ``reason`` says which bracket decided.
    """
    arm, opponent = names
    if above == arm and below == opponent:
        return "inconclusive-underfilled", (f"the smaller {opponent} model beat {arm} but the larger one lost to it: "
                                            "the two brackets disagree")
    if above == arm:
        return arm, f"{arm} beat even the {opponent} model above the budget"
    if below == opponent:
        return opponent, f"the {opponent} model within the budget, with fewer parameters, beat {arm}"
    if below == "tie" and above == "tie":
        return "tie", f"tied with both the {opponent} model within the budget and the one above it"
    if below == arm:
        return "inconclusive-underfilled", (f"{arm} beat the {opponent} model within the budget (fewer parameters) "
                                            "but not the one above it")
    return "inconclusive-underfilled", (f"{arm} tied with the {opponent} model within the budget and lost to the one "
                                        "above it: at the budget itself the study cannot tell")


def at_chance(accuracy, num_classes, n):
    """Whether an accuracy measured on ``n`` examples is no better than guessing among ``num_classes``.

    Within three standard errors of ``1 / num_classes`` (a model that guesses
    scores that fraction; its spread on ``n`` examples is binomial).
    """
    chance = 1.0 / num_classes
    return bool(accuracy <= chance + 3.0 * math.sqrt(chance * (1.0 - chance) / max(1, n)))


#: How far from chance to 1 a model's training accuracy must be for an evaluation at chance to count as broken.
TRAINED_FRACTION = 0.5


def broken_evaluation(train_accuracy, accuracy, num_classes, n):
    """Whether a model's evaluation failed rather than its training: at chance on ``n`` examples
    (:func:`at_chance`) while its training accuracy is at least :data:`TRAINED_FRACTION` of the way from chance
    to 1.

    Such a model learned, but what it is evaluated with does not match its
    weights (batch normalization's moving statistics, say): comparing it says
    nothing about its weights.
    """
    if train_accuracy is None or accuracy is None or not math.isfinite(float(train_accuracy)):
        return False
    chance = 1.0 / num_classes
    trained = float(train_accuracy) >= chance + TRAINED_FRACTION * (1.0 - chance)
    return bool(trained and at_chance(accuracy, num_classes, n))


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
