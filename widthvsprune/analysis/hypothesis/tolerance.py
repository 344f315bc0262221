"""How far each arm shrinks within tolerance of the wide dense reference: the tolerance frontier and its table."""

import dataclasses
import math
from typing import Optional, Tuple

import pandas as pd

from widthvsprune import arms
from widthvsprune.analysis import compare, stats
from widthvsprune.analysis.hypothesis.points import (
    BEYOND,
    CANNOT_TELL,
    CONFIDENCE,
    LOSES,
    NO_BASELINE,
    NOT_REACHED,
    REACHED,
    TOLERANCE_COLUMNS,
    Point,
    points_of,
    reference_point,
    trained_baseline,
    with_defaults,
)
from widthvsprune.sizes import SIZE_AXES


@dataclasses.dataclass(frozen=True)
class Check:
    """One point tested against the wide dense reference.

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
        point, baseline: :class:`Point` s (``baseline``: the wide dense reference, :func:`reference_point`).
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
    """The smallest measured size of an arm that keeps the wide dense reference's accuracy within ``tolerance``.

    The points are tested from the largest size on ``axis`` down
    (:func:`check`); the first that fails stops the walk, and the frontier is
    the last one that passed (fixed-sequence testing: the 95% holds for the
    whole claim without a correction, and accuracy need not be monotone).

    Args:
        points: the arm's :class:`Point` s.
        baseline: the reference's :class:`Point` (:func:`reference_point`), or ``None``.
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


def tolerance_table(runs, tolerance, correct=None, confidence=CONFIDENCE):
    """``tolerance.csv``: every arm's tolerance frontier on every size axis (:data:`TOLERANCE_COLUMNS`).

    Args:
        runs: a DataFrame with ``runs.csv``'s columns.
        tolerance: the accuracy a smaller model may lose against the wide dense reference.
        correct: ``{(key, seed): booleans}``, as for :func:`points_of`.
        confidence: of each one-sided bound.
    """
    runs = with_defaults(runs)
    baseline, trained = reference_point(runs, correct), trained_baseline(runs, correct)
    rows = []
    for name in [n for n in arms.names() if n in set(runs.arm) and not arms.get(n).reference]:
        present = [t for t in compare.TUNINGS if t in set(arms.rows(runs, name).tuning)]
        for tuning in present + ([compare.BEST] if len(present) > 1 else []):  # one tuning: it is the best
            points = points_of(runs, name, tuning, correct)
            for axis in [a for a in SIZE_AXES if a in runs.columns]:
                rows.append(_tolerance_row(name, tuning, axis, tolerance_frontier(points, baseline, tolerance, axis,
                                                                                  confidence),
                                           baseline, tolerance, confidence, trained))
    return pd.DataFrame(rows, columns=TOLERANCE_COLUMNS)


def reference_name(point):
    """A reference :class:`Point`'s arm and tuning in words (``"dense_finetuned untuned"``)."""
    return f"{point.arm} {point.tuning}".strip() if point is not None else ""


def _tolerance_row(arm, tuning, axis, frontier, baseline, tolerance, confidence, trained=None):
    found = frontier.found
    trained_mean = trained.mean if trained is not None else math.nan
    return {"reference": reference_name(baseline), "trained_baseline_accuracy": trained_mean,
            "reference_gain": (baseline.mean - trained_mean) if baseline is not None else math.nan,
            "arm": arm, "arm_tuning": tuning, "size_axis": axis, "status": frontier.status,
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
    runs = with_defaults(runs)
    baseline = reference_point(runs)
    if baseline is None or frontier.empty:
        return frontier
    for (name, tuning), group in frontier.groupby(["arm", "tuning"], sort=False):
        points = {(p.target, p.role, p.widths): p for p in points_of(runs, name, tuning)}
        chosen = tolerance_frontier(list(points.values()), baseline, tolerance, axis, confidence).found
        for i, row in group.iterrows():
            point = points.get((float(row.target_sparsity), str(row.role), str(row.widths)))
            if point is None:
                continue
            if point == baseline and name == baseline.arm and point.tuning == baseline.tuning:  # the reference
                frontier.loc[i, "drop"], frontier.loc[i, "within_tolerance"] = 0.0, True
                continue
            found = check(point, baseline, tolerance, confidence)
            frontier.loc[i, ["drop", "drop_upper"]] = [found.drop, found.drop_upper]
            frontier.loc[i, "within_tolerance"] = found.within
            frontier.loc[i, "tolerance_frontier"] = bool(
                chosen is not None and not arms.get(name).reference and chosen.point == point)
    return frontier
