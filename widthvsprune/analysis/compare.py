"""Comparison utilities: verdicts and frontiers from a runs table (pure: pandas, NumPy, SciPy).

:func:`compare` takes any DataFrame with ``runs.csv``'s columns, from a
widthvsprune study or from a user's own experiments, and returns the
comparison table with the verdicts. The contrasts come from the arms
(:meth:`widthvsprune.arms.base.Arm.contrasts`): the headline, pruned against
narrow with both tuned, its controls (the other three pairs of tunings), and
those of any extra arm a study has.
"""

import math

import pandas as pd

from widthvsprune import arms
from widthvsprune.analysis import stats
from widthvsprune.plan.status import SearchStatus
from widthvsprune.sizes import SIZE_AXES

COMPARISON_COLUMNS = [
    "contrast", "arm", "arm_tuning", "opponent", "opponent_tuning", "target_sparsity", "arm_nonzero_params",
    "opponent_params", "opponent_widths", "opponent_fill", "arm_test_accuracy", "opponent_test_accuracy", "delta",
    "delta_ci_low", "delta_ci_high", "ci_level", "p_value", "detectable", "n_arm", "n_opponent", "test_examples",
    "verdict", "size_axis", "arm_size", "opponent_size", "note",
]
REQUIRED = ("arm", "target_sparsity", "seed", "test_accuracy", "test_examples", "nonzero_params", "total_params")
#: Verdicts besides a winning arm's name.
TIE, UNDERFILLED, MISSING = "tie", "inconclusive-underfilled", "missing"
NO_FIT = SearchStatus.NO_FIT.value


def _check(runs, size):
    missing = [c for c in REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"Expected a runs table with the columns {list(REQUIRED)}. Received: runs without {missing}")
    if size not in SIZE_AXES or size not in runs.columns:
        raise ValueError(f"Expected size to be one of {list(SIZE_AXES)} and a column of runs. Received: size={size!r}")


def all_contrasts(runs):
    """The registered arms' contrasts whose arm appears in ``runs`` (the headline first)."""
    present = set(runs["arm"])
    found = [c for name in arms.names() for c in arms.get(name).contrasts(None) if c.arm in present]
    return sorted(found, key=lambda c: not c.headline)


def compare(runs, min_effect=0.01, size="nonzero_params", skipped=None, confidence=0.95, contrasts=None):
    """The comparison table: one row per contrast and size point, with its verdict.

    For every contrast (the headline, pruned against narrow with both arms
    tuned; its controls; an extra arm's), and every target sparsity with
    rows of its ``arm``, those rows and their ``opponent``'s are compared
    (:func:`widthvsprune.analysis.stats.difference`, Bonferroni across the
    contrast's size points; :func:`widthvsprune.analysis.stats.verdict`).

    Args:
        runs: a DataFrame with ``runs.csv``'s columns. ``arm``,
            ``target_sparsity``, ``seed``, ``test_accuracy``,
            ``test_examples``, ``nonzero_params`` and ``total_params`` are
            required; ``tuning`` (default ``"tuned"``), ``budget`` (default:
            the arm's fewest nonzeros at the size point) and ``widths`` are
            used when present. Rows of other arms are ignored.
        min_effect: the smallest difference that can name a winner.
        size: the size column reported as ``arm_size`` / ``opponent_size``.
        skipped: ``{(arm, target): Skip}`` for size points where an arm has no
            model (:attr:`widthvsprune.plan.planner.Plan.skipped`).
        confidence: the family-wise confidence level.
        contrasts: the :class:`~widthvsprune.arms.base.Contrast` s to make;
            ``None``: every registered one whose arm is in ``runs``.

    Returns:
        A DataFrame with :data:`COMPARISON_COLUMNS`; ``delta`` is the arm's
        mean test accuracy minus its opponent's, a fraction.

    Example:

    ```python
    runs = pd.DataFrame({
        "arm": ["pruned"] * 3 + ["narrow"] * 3, "target_sparsity": 0.9, "seed": [0, 1, 2] * 2,
        "test_accuracy": [0.95, 0.96, 0.94, 0.90, 0.91, 0.92], "test_examples": 10_000,
        "nonzero_params": [1000, 1001, 1000, 990, 990, 990], "total_params": [9000] * 3 + [990] * 3,
    })
    compare(runs)[["delta", "delta_ci_low", "verdict"]]  # 0.04, 0.0179, "pruned"
    ```
    """
    _check(runs, size)
    runs = runs.copy()
    if "tuning" not in runs.columns:
        runs["tuning"] = "tuned"
    skipped = skipped or {}
    rows = []
    for contrast in all_contrasts(runs) if contrasts is None else contrasts:
        mine = arms.rows(runs, contrast.arm, contrast.arm_tuning)
        theirs = arms.rows(runs, contrast.opponent, contrast.opponent_tuning)
        notes = {t: skip for (name, t), skip in skipped.items() if name == contrast.opponent}
        if mine.empty or (theirs.empty and not notes):
            continue
        targets = sorted(set(mine.target_sparsity))
        compared = [t for t in targets if not theirs[theirs.target_sparsity == t].empty]
        for target in targets:
            rows.append(_row(contrast, target, mine[mine.target_sparsity == target],
                             theirs[theirs.target_sparsity == target], len(compared), min_effect, size,
                             notes.get(target), confidence))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _row(contrast, target, mine, theirs, comparisons, min_effect, size, skip, confidence):
    row = {c: math.nan for c in COMPARISON_COLUMNS}
    row.update(contrast=contrast.name, arm=contrast.arm, arm_tuning=contrast.arm_tuning, opponent=contrast.opponent,
               opponent_tuning=contrast.opponent_tuning, target_sparsity=target, size_axis=size, note="",
               opponent_widths="", n_arm=len(mine), n_opponent=len(theirs),
               arm_nonzero_params=int(mine.nonzero_params.min()),
               arm_test_accuracy=float(mine.test_accuracy.mean()), arm_size=float(mine[size].mean()))
    if theirs.empty:
        status = getattr(skip, "status", "")
        row.update(verdict=NO_FIT if status == NO_FIT else MISSING,
                   note=getattr(skip, "note", "") or f"no {contrast.opponent} model trained at this size point")
        return row
    budget = float(theirs.budget.min()) if "budget" in theirs and theirs.budget.notna().any() \
        else float(mine.nonzero_params.min())
    fill = float(theirs.nonzero_params.max()) / budget
    n_test = int(min(mine.test_examples.min(), theirs.test_examples.min()))
    diff = stats.difference(mine.test_accuracy, theirs.test_accuracy, n_test, comparisons, confidence)
    winner = stats.verdict(diff, min_effect, fill, names=(contrast.arm, contrast.opponent))
    row.update(
        opponent_params=int(theirs.nonzero_params.max()), opponent_fill=fill,
        opponent_widths=str(theirs.widths.iloc[0]) if "widths" in theirs else "",
        opponent_test_accuracy=float(theirs.test_accuracy.mean()), opponent_size=float(theirs[size].mean()),
        delta=diff.delta, delta_ci_low=diff.low, delta_ci_high=diff.high, ci_level=diff.level,
        p_value=diff.p_value, detectable=diff.detectable, test_examples=n_test,
        verdict=winner,
    )
    notes = [] if diff.seed_spread else ["one seed per arm: the interval holds the test set's error only"]
    if "note" in theirs and isinstance(theirs.note.iloc[0], str) and theirs.note.iloc[0]:
        notes.append(theirs.note.iloc[0])
    row["note"] = "; ".join(notes)
    return row


def frontier(runs, size="nonzero_params"):
    """One row per arm, tuning and size point: mean test accuracy over seeds with its interval, mean sizes, and
    ``pareto`` (no other row is both smaller and more accurate)."""
    runs = runs.copy()
    if "tuning" not in runs.columns:
        runs["tuning"] = "tuned"
    for column in ("pruning", "widths"):
        runs[column] = runs[column].fillna("") if column in runs.columns else ""
    rows = []
    keys = ["arm", "tuning", "pruning", "target_sparsity", "widths"]
    for point, group in runs.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, point))
        row.update(stats.summary(group.test_accuracy))
        for column in SIZE_AXES:
            if column in group:
                row[column] = float(group[column].mean())
        rows.append(row)
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame = frame.sort_values(["arm", "tuning", "target_sparsity"], kind="stable").reset_index(drop=True)
        frame["pareto"] = stats.pareto_flags(frame[size], frame["mean"])
    return frame


def tally(comparison):
    """Counts of verdicts per contrast: ``{contrast: {verdict: count}}``."""
    return {contrast: group.verdict.value_counts().to_dict() for contrast, group in comparison.groupby(
        "contrast", sort=False)}


def sentence(comparison, contrast=None):
    """The verdict of one contrast (the first, the headline, by default) in words."""
    if comparison.empty:
        return f"{contrast or 'the comparison'}: no size point has both arms trained yet"
    contrast = contrast or comparison.contrast.iloc[0]
    rows = comparison[comparison.contrast == contrast]
    if rows.empty:
        return f"{contrast}: no size point has both arms trained yet"
    arm, opponent = arms.get(rows.arm.iloc[0]), arms.get(rows.opponent.iloc[0])
    counts = rows.verdict.value_counts().to_dict()
    compared = sum(counts.get(k, 0) for k in (arm.name, opponent.name, TIE, UNDERFILLED))
    if not compared:
        return f"{contrast}: no size point has both arms trained yet"
    text = f"{contrast}: {arm.title} beat {opponent.title} at {counts.get(arm.name, 0)} of {compared} sizes"
    extra = []
    if counts.get(opponent.name):
        extra.append(f"{opponent.title} won {counts[opponent.name]}")
    if counts.get(TIE):
        extra.append(f"{counts[TIE]} tie{'s' if counts[TIE] > 1 else ''}")
    if counts.get(UNDERFILLED):
        extra.append(f"{counts[UNDERFILLED]} inconclusive ({opponent.title} model under "
                     f"{stats.UNDERFILLED_BELOW:.0%} of its budget)")
    if counts.get(NO_FIT):
        extra.append(f"{counts[NO_FIT]} with no dense model small enough")
    return text + (f" ({', '.join(extra)})" if extra else "")
