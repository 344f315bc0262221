"""At equal accuracy, the nonzeros each arm needs: the isotonic curve read on the log-size axis, bootstrapped."""

import dataclasses
import functools
import math

import numpy as np
import pandas as pd

from widthvsprune.analysis.hypothesis.points import (
    ABOVE_RANGE,
    BELOW_RANGE,
    CONFIDENCE,
    IN_RANGE,
    ISO_COLUMNS,
    REPLICATES,
    points_of,
    reference_point,
    with_defaults,
)


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
    """The accuracy levels to compare: ``top`` (the wide dense reference's accuracy) minus whole multiples of
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
    for every model: they share one test set; the same draws for every call
    with the same ``seed``, :func:`example_counts`) and, per point, its seeds
    with replacement. Without every model's per-example correctness (records
    without ``predictions.npz``), only the seeds are resampled.

    Returns:
        ``(means, resampled)``: one ``(replicates, points)`` array per curve,
        and ``"seeds and test examples"`` or ``"seeds only"``.
    """
    rng = np.random.default_rng([seed, 2])  # the seeds' draws; the examples' are example_counts's
    flat = [p for curve in curves for p in curve]
    lengths = {p.correct.shape[1] for p in flat if p.correct is not None}
    examples = bool(flat) and all(p.correct is not None for p in flat) and len(lengths) == 1
    n = lengths.pop() if examples else 0
    counts = example_counts(n, replicates, seed, chunk) if examples else None
    means = [np.empty((replicates, len(curve))) for curve in curves]
    for c, start in enumerate(range(0, replicates, chunk)):
        r = min(chunk, replicates - start)
        for out, curve in zip(means, curves):
            for j, point in enumerate(curve):
                k = len(point.accuracies)
                picks = rng.integers(0, k, size=(r, k))
                per_model = counts[c] @ point.correct.T.astype(float) / n if examples else \
                    np.broadcast_to(np.asarray(point.accuracies, dtype=float), (r, k))
                out[start:start + r, j] = np.take_along_axis(per_model, picks, axis=1).mean(axis=1)
    return means, "seeds and test examples" if examples else "seeds only"


@functools.lru_cache(maxsize=2)
def example_counts(n, replicates, seed, chunk):
    """How often each of ``n`` test examples is drawn in each bootstrap replicate, chunk by chunk.

    One multinomial draw per replicate, from its own stream of ``seed``; kept
    for the next call (every contrast and size point of a study shares the
    test set), since drawing is most of a report's bootstrap time on a large
    test set.
    """
    rng = np.random.default_rng([seed, 1])
    dtype = np.uint16 if n < 2 ** 16 else np.uint32
    return tuple(rng.multinomial(n, np.full(n, 1.0 / n), size=min(chunk, replicates - start)).astype(dtype)
                 for start in range(0, replicates, chunk))


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


def iso_table(runs, contrasts, tolerance, correct=None, replicates=REPLICATES, seed=0, confidence=CONFIDENCE):
    """``iso_accuracy.csv``: per contrast, the nonzeros each arm needs at each accuracy level (:data:`ISO_COLUMNS`).

    The levels are the wide dense reference's accuracy minus whole multiples of
    ``tolerance``, where at least one of the two arms has them in its
    measured range (:func:`levels`).
    """
    runs = with_defaults(runs)
    baseline = reference_point(runs, correct)
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
