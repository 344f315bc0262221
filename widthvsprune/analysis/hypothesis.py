"""The over-parameterization hypothesis, answered from a study's measured size points (pure: NumPy, pandas).

Two questions, both asked of the arms' measured frontiers only (nothing is
extrapolated beyond the sizes a study trained):

- **How far can the baseline shrink?** The *tolerance frontier* of an arm is
  its smallest size whose accuracy stays within ``tolerance`` of the tuned
  baseline, as a claim with 95% confidence (:func:`tolerance_frontier`). The
  baseline's size over that size is the arm's *compression ratio*; the
  small-dense arm's ratio is how over-parameterized the baseline is (a dense
  model that much smaller, trained directly, does as well), the
  large-sparse arm's how far its trained weights compress.
- **At equal accuracy, who is smaller?** At accuracy levels both arms reach
  within their measured sizes, the nonzeros each needs, interpolated on the
  log-size axis, and their ratio with a bootstrap interval over seeds and
  test examples (:func:`iso_accuracy`).

:func:`answer` says both in words, every number read from the tables.

The rules, pinned by tests on hand-made frontiers:

- *Within tolerance* at one size point: the one-sided 95% upper confidence
  bound of the drop (tuned baseline's mean accuracy minus the point's) is
  below ``tolerance``. The bound counts the seeds' spread and the test set's
  error as the verdicts do (:func:`widthvsprune.analysis.stats.difference`).
- *The tolerance frontier*: the size points are tested from the largest down,
  and the first that is not within tolerance stops the walk; the frontier is
  the last point that passed. Testing in a fixed order keeps the chance of
  any false "within" claim at 5% without a correction, and a smaller point
  that happens to pass again below a failing one (accuracy is not always
  monotone in size) does not move the frontier: it is reported in the note.
- *Needed size at an accuracy level*: an arm's mean accuracies are first
  made non-decreasing in size (the isotonic fit, pool-adjacent-violators: a
  size that does worse than a smaller one is pooled with it, as more
  nonzeros are taken to never hurt and a dip to be noise), then read on the
  piecewise-linear curve through them against log size, where it first
  reaches the level. A level below the fitted accuracy of the arm's smallest
  model, or above its best, is outside its measured range: not comparable.
"""

import dataclasses
import math
from typing import Optional, Tuple

import numpy as np
import pandas as pd

from widthvsprune import arms
from widthvsprune.analysis import compare, stats
from widthvsprune.sizes import SIZE_AXES

CONFIDENCE = 0.95
REPLICATES = 2000
#: Statuses of a tolerance frontier.
REACHED, BEYOND, NOT_REACHED, NO_BASELINE = "reached", "beyond-smallest", "not-reached", "no-baseline"
#: Where an accuracy level lies against an arm's measured curve.
IN_RANGE, BELOW_RANGE, ABOVE_RANGE = "in-range", "below-smallest", "not-reached"

TOLERANCE_COLUMNS = [
    "arm", "arm_tuning", "size_axis", "status", "target_sparsity", "widths", "frontier_size", "baseline_size", "ratio",
    "accuracy", "baseline_accuracy", "drop", "drop_upper", "tolerance", "confidence", "points", "points_within",
    "stop", "note",
]
#: Why a walk stopped (``stop`` in tolerance.csv): the point lost too much, or the study could not tell.
LOSES, CANNOT_TELL = "loses", "cannot-tell"
#: The columns the reports add to frontier.csv (:func:`annotate`).
FRONTIER_COLUMNS = ["drop", "drop_upper", "within_tolerance", "tolerance_frontier"]
ISO_COLUMNS = [
    "contrast", "arm", "arm_tuning", "opponent", "opponent_tuning", "level", "below_baseline", "status", "arm_size",
    "opponent_size", "ratio", "ratio_ci_low", "ratio_ci_high", "ci_level", "replicates", "resampled", "size_axis",
    "note",
]


@dataclasses.dataclass(frozen=True)
class Point:
    """One measured size point of an arm.

    Attributes:
        target: the size point's target sparsity.
        sizes: ``{size axis: mean size over seeds}``.
        accuracies: test accuracy of each seed's model.
        test_examples: test examples each accuracy was measured on.
        widths: the models' widths, as text.
        role: ``"eval"``, or ``"bracket"`` for a narrow model above an
            underfilled budget.
        correct: ``(seeds, test examples)`` booleans, whether each model got
            each test example right, or ``None`` (records without
            ``predictions.npz``).
    """

    target: float
    sizes: dict
    accuracies: Tuple[float, ...]
    test_examples: int
    widths: str = ""
    role: str = "eval"
    correct: Optional[np.ndarray] = None

    @property
    def mean(self):
        return float(np.mean(self.accuracies))


def points_of(runs, arm, tuning, correct=None):
    """The measured points of one arm and tuning in a runs table, smallest nonzeros first.

    Args:
        runs: a DataFrame with ``runs.csv``'s columns.
        arm, tuning: which rows.
        correct: ``{(key, seed): booleans}`` from the runs' ``predictions.npz``;
            a point gets them only when every one of its models has them.

    Returns:
        A list of :class:`Point`.
    """
    rows = arms.rows(_with_defaults(runs), arm, tuning)
    out = []
    for (target, role, widths), group in rows.groupby(["target_sparsity", "role", "widths"], sort=False):
        found = None
        if correct is not None and "key" in group:
            arrays = [correct.get((k, int(s))) for k, s in zip(group.key, group.seed)]
            if all(a is not None for a in arrays) and len({len(a) for a in arrays}) == 1:
                found = np.asarray(arrays, dtype=bool)
        sizes = {axis: float(group[axis].mean()) for axis in SIZE_AXES if axis in group}
        out.append(Point(float(target), sizes, tuple(float(a) for a in group.test_accuracy),
                         int(group.test_examples.min()), str(widths), str(role), found))
    return sorted(out, key=lambda p: (p.sizes.get("nonzero_params", 0.0), p.target))


def _with_defaults(runs):
    runs = runs.copy()
    for column, default in (("tuning", "tuned"), ("role", "eval"), ("widths", "")):
        runs[column] = runs[column].fillna(default) if column in runs.columns else default
    return runs


# --------------------------------------------------------------------------
# The tolerance frontier.

@dataclasses.dataclass(frozen=True)
class Check:
    """One point tested against the tuned baseline.

    Attributes:
        point: the :class:`Point`.
        drop: the baseline's mean accuracy minus the point's.
        drop_upper: the one-sided upper confidence bound of ``drop``.
        within: ``drop_upper < tolerance``.
    """

    point: Point
    drop: float
    drop_upper: float
    within: bool


def check(point, baseline, tolerance, confidence=CONFIDENCE):
    """Whether ``point`` keeps ``baseline``'s accuracy within ``tolerance``, with ``confidence``.

    Args:
        point, baseline: :class:`Point` s (``baseline``: the tuned baseline).
        tolerance: the accuracy the point may lose, a fraction.
        confidence: of the one-sided bound.

    Returns:
        A :class:`Check`.

    Example:

    ```python
    wide = Point(0.0, {"nonzero_params": 1000}, (0.95, 0.95), 10_000)
    small = Point(0.9, {"nonzero_params": 100}, (0.948, 0.946), 10_000)
    check(small, wide, tolerance=0.01).within  # True: the drop is 0.3 points, its bound under 1
    ```
    """
    n_test = min(point.test_examples, baseline.test_examples)
    bound = stats.lower_bound(point.accuracies, baseline.accuracies, n_test, confidence)
    drop, upper = -bound.delta, -bound.low
    return Check(point, drop, upper, upper < tolerance)


@dataclasses.dataclass(frozen=True)
class Frontier:
    """An arm's tolerance frontier on one size axis.

    Attributes:
        status: ``reached`` (a point within tolerance, and the next smaller
            one not), ``beyond-smallest`` (every size tried is within: the
            frontier is at the smallest size tried or further, so ``ratio``
            is a lower bound), ``not-reached`` (not even the largest size
            tried is within) or ``no-baseline``.
        found: the :class:`Check` of the frontier point (``None`` unless
            reached or beyond).
        stopped: the :class:`Check` that stopped the walk (``None`` if none did).
        size, baseline_size: on the axis; ``ratio = baseline_size / size``.
        checks: every point's :class:`Check`, largest first.
        note: what decided it, in words.
        tolerance: the tolerance it was found for.
    """

    status: str
    axis: str
    found: Optional[Check]
    stopped: Optional[Check]
    size: float
    baseline_size: float
    ratio: float
    checks: Tuple[Check, ...]
    note: str
    tolerance: float = math.nan

    @property
    def stop(self):
        """Why the walk stopped: :data:`LOSES` (the point's mean drop is at least the tolerance),
        :data:`CANNOT_TELL` (it is under the tolerance, its bound is not), or ``""`` (nothing stopped it)."""
        if self.stopped is None:
            return ""
        return LOSES if self.stopped.drop >= self.tolerance else CANNOT_TELL


def tolerance_frontier(points, baseline, tolerance, axis="nonzero_params", confidence=CONFIDENCE):
    """The smallest measured size of an arm that keeps the tuned baseline's accuracy within ``tolerance``.

    The points are tested from the largest size on ``axis`` down
    (:func:`check`); the first that fails stops the walk, and the frontier is
    the last one that passed (fixed-sequence testing: the 95% holds for the
    whole claim without a correction, and accuracy need not be monotone).

    Args:
        points: the arm's :class:`Point` s.
        baseline: the tuned baseline's :class:`Point`, or ``None``.
        tolerance: the accuracy a smaller model may lose, a fraction.
        axis: a size axis of :data:`widthvsprune.sizes.SIZE_AXES`.
        confidence: of each one-sided bound.

    Returns:
        A :class:`Frontier`.

    Example:

    ```python
    wide = Point(0.0, {"nonzero_params": 1000}, (0.95, 0.95), 10_000)
    arm = [Point(t, {"nonzero_params": n}, (a, a), 10_000) for t, n, a in [(0.5, 500, 0.95), (0.9, 100, 0.90)]]
    tolerance_frontier(arm, wide, 0.01).ratio  # 2.0: 500 keeps the accuracy, 100 does not
    ```
    """
    nan = math.nan
    if baseline is None:
        return Frontier(NO_BASELINE, axis, None, None, nan, nan, nan, (), "no tuned baseline trained", tolerance)
    base_size = baseline.sizes.get(axis, nan)
    ordered = sorted(points, key=lambda p: (-p.sizes.get(axis, nan), p.target))
    checks = tuple(check(p, baseline, tolerance, confidence) for p in ordered)
    if not checks:
        return Frontier(NOT_REACHED, axis, None, None, nan, base_size, nan, (), "no size point trained", tolerance)
    passed = 0
    while passed < len(checks) and checks[passed].within:
        passed += 1
    if passed == 0:
        first = checks[0]
        return Frontier(NOT_REACHED, axis, None, first, nan, base_size, nan, checks,
                        f"its largest size tried {_failure(first, tolerance)}", tolerance)
    last = checks[passed - 1]
    size = last.point.sizes.get(axis, nan)
    ratio = base_size / size if size else nan
    if passed == len(checks):
        return Frontier(BEYOND, axis, last, None, size, base_size, ratio, checks,
                        "every size tried is within tolerance: the frontier is at the smallest size tried or further, "
                        "and the ratio a lower bound", tolerance)
    stopped = checks[passed]
    note = f"the next smaller size tried ({_where(stopped.point)}) {_failure(stopped, tolerance)}"
    again = [c for c in checks[passed + 1:] if c.within]
    if again:
        note += (f"; a smaller size ({', '.join(_where(c.point) for c in again)}) is within tolerance again, but "
                 "the walk stops at the first size that is not")
    return Frontier(REACHED, axis, last, stopped, size, base_size, ratio, checks, note, tolerance)


def _where(point):
    return f"sparsity {point.target:g}" + (", above the budget" if point.role == compare.BRACKET else "")


def _failure(failed, tolerance):
    """Why a point is not within tolerance: it loses too much, or the study cannot tell."""
    upper = compare.points(failed.drop_upper)
    if failed.drop < tolerance:
        change = f"gains {compare.points(-failed.drop)}" if float(compare.points(failed.drop)) < 0 else \
            f"loses {compare.points(abs(failed.drop))}"
        return f"{change} points, but could lose up to {upper} (95% bound): the study cannot tell"
    return f"loses {compare.points(failed.drop)} points (95% bound {upper})"


# --------------------------------------------------------------------------
# Iso-accuracy.

def isotonic(values, weights=None):
    """The non-decreasing fit of ``values`` closest in weighted least squares (pool-adjacent-violators).

    Example:

    ```python
    isotonic([0.90, 0.94, 0.93, 0.97])  # [0.90, 0.935, 0.935, 0.97]
    ```
    """
    values = [float(v) for v in values]
    weights = [1.0] * len(values) if weights is None else [float(w) for w in weights]
    blocks = []  # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m1, w1, n1), (m2, w2, n2) = blocks[-2], blocks.pop()
            blocks[-1] = [(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2]
    return [m for m, _, n in blocks for _ in range(n)]


def size_at(sizes, accuracies, level):
    """The size at which an arm's curve first reaches ``level``, interpolated on the log-size axis.

    The curve is piecewise linear through the points ``(log size,
    accuracy)`` with the accuracies' isotonic fit (:func:`isotonic`), read
    going up in size: the first segment that reaches the level gives the
    size. Nothing is extrapolated.

    Args:
        sizes: the arm's sizes (any order; positive).
        accuracies: its mean accuracy at each size.
        level: an accuracy.

    Returns:
        ``(size, where)``: ``where`` is ``"in-range"``, ``"below-smallest"``
        (even the smallest model tried is more accurate: the size needed is
        below the measured range) or ``"not-reached"`` (no model tried
        reaches it); ``size`` is NaN unless in range.

    Example:

    ```python
    size_at([100, 1000], [0.80, 0.90], 0.85)  # (316.2..., "in-range"): halfway on the log axis
    ```
    """
    order = np.argsort(np.asarray(sizes, dtype=float), kind="stable")
    s = np.asarray(sizes, dtype=float)[order]
    a = np.asarray(isotonic(np.asarray(accuracies, dtype=float)[order]))
    if s.size == 0 or level > a.max():
        return math.nan, ABOVE_RANGE
    if level < a[0]:
        return math.nan, BELOW_RANGE
    i = int(np.argmax(a >= level))
    if i == 0 or a[i] == level:
        return float(s[i]), IN_RANGE
    share = (level - a[i - 1]) / (a[i] - a[i - 1])
    return float(math.exp(math.log(s[i - 1]) + share * (math.log(s[i]) - math.log(s[i - 1])))), IN_RANGE


def levels(top, tolerance, curves, limit=12):
    """The accuracy levels to compare: ``top`` (the tuned baseline's accuracy) minus whole multiples of
    ``tolerance``, the ``limit`` highest that at least one of ``curves`` (lists of mean accuracies, smallest size
    first) has in its measured range."""
    curves = [isotonic(c) for c in curves if len(c)]
    out = []
    lowest = min((c[0] for c in curves), default=math.nan)
    j = 0
    while len(out) < limit:
        level = round(top - j * tolerance, 10)
        if not level >= lowest:
            break
        if any(c[0] <= level <= c[-1] for c in curves):
            out.append(level)
        j += 1
    return out


def bootstrap_means(curves, replicates=REPLICATES, seed=0, chunk=250):
    """Resampled mean accuracies of every point of ``curves`` (lists of :class:`Point`).

    Each replicate draws the test examples with replacement (the same draw
    for every model: they share one test set) and, per point, its seeds with
    replacement. Without every model's per-example correctness (records
    without ``predictions.npz``), only the seeds are resampled.

    Returns:
        ``(means, resampled)``: one ``(replicates, points)`` array per curve,
        and ``"seeds and test examples"`` or ``"seeds only"``.
    """
    rng = np.random.default_rng(seed)
    flat = [p for curve in curves for p in curve]
    lengths = {p.correct.shape[1] for p in flat if p.correct is not None}
    examples = bool(flat) and all(p.correct is not None for p in flat) and len(lengths) == 1
    n = lengths.pop() if examples else 0
    means = [np.empty((replicates, len(curve))) for curve in curves]
    for start in range(0, replicates, chunk):
        r = min(chunk, replicates - start)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=r) / n if examples else None
        for out, curve in zip(means, curves):
            for j, point in enumerate(curve):
                k = len(point.accuracies)
                picks = rng.integers(0, k, size=(r, k))
                per_model = weights @ point.correct.T.astype(float) if examples else \
                    np.broadcast_to(np.asarray(point.accuracies, dtype=float), (r, k))
                out[start:start + r, j] = np.take_along_axis(per_model, picks, axis=1).mean(axis=1)
    return means, "seeds and test examples" if examples else "seeds only"


@dataclasses.dataclass(frozen=True)
class Iso:
    """Two arms at one accuracy level.

    Attributes:
        level: the accuracy level.
        arm_where, opponent_where: where the level lies against each arm's
            measured curve (:func:`size_at`); comparable when both are ``in-range``.
        arm_size, opponent_size: the sizes each needs (NaN outside its range).
        ratio: ``arm_size / opponent_size``.
        low, high: its bootstrap percentile interval at the confidence asked
            for (0 or ``inf`` where more than the tail's share of the
            resamples leave an arm's measured range on that side).
        unresolved: share of resamples in which an arm left its measured range.
    """

    level: float
    arm_where: str
    opponent_where: str
    arm_size: float
    opponent_size: float
    ratio: float = math.nan
    low: float = math.nan
    high: float = math.nan
    unresolved: float = math.nan

    @property
    def comparable(self):
        return self.arm_where == IN_RANGE and self.opponent_where == IN_RANGE


def iso_accuracy(arm_points, opponent_points, at, replicates=REPLICATES, seed=0, confidence=CONFIDENCE,
                 axis="nonzero_params"):
    """The sizes two arms need to reach each accuracy level of ``at``, and their ratio with a bootstrap interval.

    Args:
        arm_points, opponent_points: :class:`Point` s of the two arms.
        at: accuracy levels.
        replicates, seed: of the bootstrap (:func:`bootstrap_means`).
        confidence: of the percentile interval of the ratio.
        axis: the size axis.

    Returns:
        ``(rows, resampled)``: one :class:`Iso` per level, and what the
        bootstrap resampled.

    Example:

    ```python
    rows, _ = iso_accuracy(pruned_points, narrow_points, [0.95, 0.94])
    rows[0].ratio  # pruned's nonzeros over narrow's at 95% accuracy
    ```
    """
    curves = [sorted(arm_points, key=lambda p: p.sizes[axis]), sorted(opponent_points, key=lambda p: p.sizes[axis])]
    sizes = [np.asarray([p.sizes[axis] for p in c], dtype=float) for c in curves]
    means, resampled = bootstrap_means(curves, replicates, seed)
    means = [np.asarray([isotonic(row) for row in m]).reshape(m.shape) for m in means]
    tail = (1 - confidence) / 2
    rows = []
    for level in at:
        (arm_size, arm_where), (opponent_size, opponent_where) = [
            size_at(s, [p.mean for p in c], level) for s, c in zip(sizes, curves)]
        if arm_where != IN_RANGE or opponent_where != IN_RANGE:
            rows.append(Iso(level, arm_where, opponent_where, arm_size, opponent_size))
            continue
        mine, theirs = (log_sizes_needed(s, m, level) for s, m in zip(sizes, means))
        with np.errstate(invalid="ignore"):
            logs = mine - theirs  # inf - inf (both beyond the same end) is NaN: that resample says nothing
        finite = logs[~np.isnan(logs)]
        low = float(np.exp(np.quantile(finite, tail, method="lower"))) if finite.size else math.nan
        high = float(np.exp(np.quantile(finite, 1 - tail, method="higher"))) if finite.size else math.nan
        rows.append(Iso(level, arm_where, opponent_where, arm_size, opponent_size, arm_size / opponent_size, low,
                        high, float(np.mean(~np.isfinite(logs)))))
    return rows, resampled


def log_sizes_needed(sizes, accuracies, level):
    """:func:`size_at` for many curves at once: the log of the size needed, per row of ``accuracies``.

    Args:
        sizes: the points' sizes, ascending.
        accuracies: ``(curves, points)`` mean accuracies, already made
            non-decreasing (:func:`isotonic`) row by row.
        level: an accuracy.

    Returns:
        One value per curve: the log size, ``-inf`` below the measured range,
        ``inf`` where the curve never reaches the level.
    """
    a = np.asarray(accuracies, dtype=float)
    logs = np.log(np.asarray(sizes, dtype=float))
    reached = a >= level
    i = np.argmax(reached, axis=1)
    rows = np.arange(a.shape[0])
    previous = np.maximum(i - 1, 0)
    a_low, a_high = a[rows, previous], a[rows, i]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(a_high > a_low, (level - a_low) / (a_high - a_low), 1.0)
    out = np.where(i == 0, logs[i], logs[previous] + share * (logs[i] - logs[previous]))
    out = np.where(reached.any(axis=1), out, math.inf)
    return np.where(a[:, 0] > level, -math.inf, out)


# --------------------------------------------------------------------------
# Tables.

def tuned_baseline(runs, correct=None):
    """The tuned baseline's :class:`Point` in a runs table (the reference arm's), or ``None``."""
    references = [name for name in arms.names() if arms.get(name).reference and name in set(runs.arm)]
    found = [p for name in references for p in points_of(runs, name, "tuned", correct)]
    return found[0] if found else None


def tolerance_table(runs, tolerance, correct=None, confidence=CONFIDENCE):
    """``tolerance.csv``: every arm's tolerance frontier on every size axis (:data:`TOLERANCE_COLUMNS`).

    Args:
        runs: a DataFrame with ``runs.csv``'s columns.
        tolerance: the accuracy a smaller model may lose against the tuned baseline.
        correct: ``{(key, seed): booleans}``, as for :func:`points_of`.
        confidence: of each one-sided bound.
    """
    runs = _with_defaults(runs)
    baseline = tuned_baseline(runs, correct)
    rows = []
    for name in [n for n in arms.names() if n in set(runs.arm) and not arms.get(n).reference]:
        for tuning in [t for t in ("tuned", "untuned") if t in set(arms.rows(runs, name).tuning)]:
            points = points_of(runs, name, tuning, correct)
            for axis in [a for a in SIZE_AXES if a in runs.columns]:
                rows.append(_tolerance_row(name, tuning, axis, tolerance_frontier(points, baseline, tolerance, axis,
                                                                                  confidence),
                                           baseline, tolerance, confidence))
    return pd.DataFrame(rows, columns=TOLERANCE_COLUMNS)


def _tolerance_row(arm, tuning, axis, frontier, baseline, tolerance, confidence):
    found = frontier.found
    return {"arm": arm, "arm_tuning": tuning, "size_axis": axis, "status": frontier.status,
            "target_sparsity": found.point.target if found else math.nan,
            "widths": found.point.widths if found else "", "frontier_size": frontier.size,
            "baseline_size": frontier.baseline_size, "ratio": frontier.ratio,
            "accuracy": found.point.mean if found else math.nan,
            "baseline_accuracy": baseline.mean if baseline else math.nan,
            "drop": found.drop if found else math.nan, "drop_upper": found.drop_upper if found else math.nan,
            "tolerance": tolerance, "confidence": confidence, "points": len(frontier.checks),
            "points_within": sum(c.within for c in frontier.checks), "stop": frontier.stop, "note": frontier.note}


def annotate(frontier, runs, tolerance, axis="nonzero_params", confidence=CONFIDENCE):
    """``frontier.csv``'s tolerance columns: ``drop``, ``drop_upper``, ``within_tolerance`` and
    ``tolerance_frontier`` (the point that is its arm and tuning's frontier on ``axis``)."""
    frontier = frontier.copy()
    for column in ("drop", "drop_upper"):
        frontier[column] = math.nan
    frontier["within_tolerance"] = False
    frontier["tolerance_frontier"] = False
    runs = _with_defaults(runs)
    baseline = tuned_baseline(runs)
    if baseline is None or frontier.empty:
        return frontier
    for (name, tuning), group in frontier.groupby(["arm", "tuning"], sort=False):
        points = {(p.target, p.role, p.widths): p for p in points_of(runs, name, tuning)}
        chosen = tolerance_frontier(list(points.values()), baseline, tolerance, axis, confidence).found
        for i, row in group.iterrows():
            point = points.get((float(row.target_sparsity), str(row.role), str(row.widths)))
            if point is None:
                continue
            if point == baseline:  # the reference itself
                frontier.loc[i, "drop"], frontier.loc[i, "within_tolerance"] = 0.0, True
                continue
            found = check(point, baseline, tolerance, confidence)
            frontier.loc[i, ["drop", "drop_upper"]] = [found.drop, found.drop_upper]
            frontier.loc[i, "within_tolerance"] = found.within
            frontier.loc[i, "tolerance_frontier"] = bool(
                chosen is not None and not arms.get(name).reference and chosen.point == point)
    return frontier


def iso_table(runs, contrasts, tolerance, correct=None, replicates=REPLICATES, seed=0, confidence=CONFIDENCE):
    """``iso_accuracy.csv``: per contrast, the nonzeros each arm needs at each accuracy level (:data:`ISO_COLUMNS`).

    The levels are the tuned baseline's accuracy minus whole multiples of
    ``tolerance``, where at least one of the two arms has them in its
    measured range (:func:`levels`).
    """
    runs = _with_defaults(runs)
    baseline = tuned_baseline(runs, correct)
    rows = []
    if baseline is None:
        return pd.DataFrame(rows, columns=ISO_COLUMNS)
    for contrast in contrasts:
        mine = points_of(runs, contrast.arm, contrast.arm_tuning, correct)
        theirs = points_of(runs, contrast.opponent, contrast.opponent_tuning, correct)
        if not mine or not theirs:
            continue
        at = levels(baseline.mean, tolerance, [[p.mean for p in c] for c in (mine, theirs)])
        found, resampled = iso_accuracy(mine, theirs, at, replicates, seed, confidence)
        for iso in found:
            rows.append({"contrast": contrast.name, "arm": contrast.arm, "arm_tuning": contrast.arm_tuning,
                         "opponent": contrast.opponent, "opponent_tuning": contrast.opponent_tuning,
                         "level": iso.level, "below_baseline": baseline.mean - iso.level,
                         "status": "comparable" if iso.comparable else "not comparable",
                         "arm_size": iso.arm_size, "opponent_size": iso.opponent_size, "ratio": iso.ratio,
                         "ratio_ci_low": iso.low, "ratio_ci_high": iso.high, "ci_level": confidence,
                         "replicates": replicates, "resampled": resampled, "size_axis": "nonzero_params",
                         "note": _iso_note(iso, contrast)})
    return pd.DataFrame(rows, columns=ISO_COLUMNS)


_WHERE = {BELOW_RANGE: "is more accurate than this even at its smallest size tried",
          ABOVE_RANGE: "never reaches this accuracy at the sizes tried"}


def _iso_note(iso, contrast):
    if not iso.comparable:
        return "; ".join(f"{name} {_WHERE[where]}" for name, where in
                         ((contrast.arm, iso.arm_where), (contrast.opponent, iso.opponent_where)) if where != IN_RANGE)
    if iso.unresolved > 0:
        return (f"in {iso.unresolved:.1%} of the resamples an arm left its measured range at this level (an open "
                "end of the interval is 0 or inf)")
    return ""


# --------------------------------------------------------------------------
# The answer in words.

def percent(fraction):
    """A share as text: ``0.2`` -> ``"20%"``, ``0.018`` -> ``"1.8%"``."""
    value = 100 * fraction
    return f"{value:.0f}%" if value >= 9.5 else f"{value:.1f}%"


def _ratio(value):
    return "inf" if math.isinf(value) else "0" if value == 0 else f"{value:.2f}x"


def tolerance_words(tolerance):
    """``0.01`` -> ``"1 point"``."""
    return compare.effect_words(tolerance)


def reach(row):
    """How far down one arm keeps the baseline's accuracy, in words, from its ``tolerance.csv`` row: the end of
    "keeps its accuracy within 1 point ..."."""
    if row is None or row.status == NO_BASELINE:
        return "(no tuned baseline to compare with)"
    share = percent(row.frontier_size / row.baseline_size) if math.isfinite(row.frontier_size) else ""
    if row.status == REACHED:
        undecided = " (below that the study cannot tell)" if row.stop == CANNOT_TELL else ""
        return f"down to {share} of its parameters{undecided}"
    if row.status == BEYOND:
        return f"down to {share} of its parameters, the smallest size tried, and maybe further"
    return f"at no size tried ({row.note})"


def _equal_sizes(rows, arm, opponent):
    """The headline's verdicts over the size points, as phrases of consecutive equal verdicts."""
    phrases, ties = [], []
    rows = rows.sort_values("target_sparsity")
    groups = []
    for _, row in rows.iterrows():
        if groups and groups[-1][0] == row.verdict:
            groups[-1][1].append(row)
        else:
            groups.append((row.verdict, [row]))
    for verdict, group in groups:
        where = ", ".join(f"{r.target_sparsity:.0%}" for r in group[:-1])
        where = f"{where} and {group[-1].target_sparsity:.0%}" if where else f"{group[-1].target_sparsity:.0%}"
        span = f"{group[0].target_sparsity:.0%} to {group[-1].target_sparsity:.0%}" if len(group) > 2 else where
        if verdict == compare.TIE:
            ties += group
            phrases.append(f"the two tie at {span} sparsity")
        elif verdict in (arm.name, opponent.name):
            winner = arm if verdict == arm.name else opponent
            by = " and ".join(compare.points(abs(r.delta)) for r in group)
            phrases.append(f"at {where} sparsity {winner.title} is ahead by {by} points")
        elif verdict == compare.DIVERGED:
            phrases.append(f"at {where} sparsity a model ended at chance accuracy, so the study cannot tell")
        elif verdict == compare.UNDERFILLED:
            phrases.append(f"at {where} sparsity the study cannot tell ({opponent.title} models could not fill "
                           "the budget)")
        else:
            phrases.append(f"at {where} sparsity there is no {opponent.title} model to compare")
    return phrases, ties


def answer(tolerance, comparison, iso, contrast, tolerance_value, axis="nonzero_params"):
    """The study's answer to the over-parameterization question, in words, every number read from the tables.

    Args:
        tolerance: ``tolerance.csv`` (:func:`tolerance_table`).
        comparison: ``comparison.csv``.
        iso: ``iso_accuracy.csv`` (:func:`iso_table`).
        contrast: the headline :class:`~widthvsprune.arms.base.Contrast`.
        tolerance_value: the study's ``tolerance``.
        axis: the size axis of the tolerance frontiers.

    Returns:
        A paragraph of two or three sentences: how far each arm keeps the
        baseline's accuracy (and so how over-parameterized the baseline is),
        who is ahead at equal nonzeros, and the iso-accuracy ratio.
    """
    arm, opponent = arms.get(contrast.arm), arms.get(contrast.opponent)

    def row_of(name, tuning):
        found = tolerance[(tolerance.arm == name) & (tolerance.arm_tuning == tuning) & (tolerance.size_axis == axis)]
        return found.iloc[0] if len(found) else None

    dense, sparse = row_of(opponent.name, contrast.opponent_tuning), row_of(arm.name, contrast.arm_tuning)
    within = f"keep its accuracy within {tolerance_words(tolerance_value)}"
    sentences = []
    if dense is None or dense.status == NO_BASELINE:
        sentences.append("Without a tuned baseline the study cannot say how over-parameterized it is.")
    else:
        size = f"{dense.baseline_size:,.0f} {'nonzeros' if axis == 'nonzero_params' else axis}"
        if dense.status in (REACHED, BEYOND):
            bound = dense.status == BEYOND or dense.stop == CANNOT_TELL
            factor = f"{'at least' if bound else 'about'} {dense.ratio:.1f}x"
            sentences.append(f"The baseline ({size}) is over-parameterized {factor}: {opponent.title} models "
                             f"{within} {reach(dense)}, {arm.title} ones {reach(sparse)}.")
        else:
            opening = "The study cannot tell whether the baseline" if dense.stop == CANNOT_TELL else \
                "The study does not show the baseline"
            sentences.append(f"{opening} ({size}) is over-parameterized: {opponent.title} models {within} "
                             f"{reach(dense)}; {arm.title} ones {reach(sparse)}.")
    rows = comparison[comparison.contrast == contrast.name]
    if len(rows):
        phrases, ties = _equal_sizes(rows, arm, opponent)
        text = f"At equal nonzeros {'; '.join(phrases)}"
        if ties:
            text += (f" (there the study resolves only differences of "
                     f"{compare.points_range([r.detectable for r in ties])})")
        sentences.append(text + ".")
    if iso is not None and len(iso):
        headline = iso[(iso.contrast == contrast.name) & (iso.status == "comparable")]
        if len(headline):
            target = headline.iloc[(headline.below_baseline - tolerance_value).abs().argsort().iloc[0]]
            interval = f"{_ratio(target.ratio_ci_low)} to {_ratio(target.ratio_ci_high)}"
            text = (f"At {_percent_accuracy(target.level)} accuracy ({compare.effect_words(target.below_baseline)} "
                    f"under the baseline) {arm.title} needs {_ratio(target.ratio)} the nonzeros of {opponent.title} "
                    f"({target.arm_size:,.0f} against {target.opponent_size:,.0f})")
            if target.ratio_ci_low <= 1 <= target.ratio_ci_high:
                text += (f", but its {target.ci_level:.0%} bootstrap interval ({interval}) holds 1: the study cannot "
                         "tell")
            else:
                text += f", {target.ci_level:.0%} bootstrap interval {interval}"
            sentences.append(text + ".")
        elif len(iso[iso.contrast == contrast.name]):
            sentences.append(f"No accuracy level is reached by both within their measured sizes, so {arm.title} and "
                             f"{opponent.title} cannot be compared at equal accuracy.")
    return " ".join(sentences)


def _percent_accuracy(level):
    return f"{100 * level:.1f}%"
