"""Comparison utilities: verdicts and frontiers from a runs table (pure: pandas, NumPy, SciPy).

:func:`compare` takes any DataFrame with ``runs.csv``'s columns, from a
widthvsprune study or from a user's own experiments, and returns the
comparison table with the verdicts; :func:`load_results` reads a study's
results folder into its three tables. ``widthvsprune report`` uses both.
"""

import dataclasses
import math

import pandas as pd

from widthvsprune import stats
from widthvsprune.measuring import SIZE_AXES

CONTRASTS = {
    ("tuned", "tuned"): "tuned vs tuned",
    ("untuned", "untuned"): "untuned vs untuned",
    ("tuned", "untuned"): "tuned pruned vs untuned narrow",
    ("untuned", "tuned"): "untuned pruned vs tuned narrow",
}
COMPARISON_COLUMNS = [
    "contrast", "pruned_tuning", "narrow_tuning", "target_sparsity", "pruned_nonzero_params", "narrow_params",
    "narrow_widths", "narrow_fill", "pruned_test_accuracy", "narrow_test_accuracy", "delta", "delta_ci_low",
    "delta_ci_high", "ci_level", "p_value", "detectable", "n_pruned", "n_narrow", "test_examples", "verdict",
    "size_axis", "pruned_size", "narrow_size", "note",
]
REQUIRED = ("arm", "target_sparsity", "seed", "test_accuracy", "test_examples", "nonzero_params", "total_params")
VERDICTS = ("pruned", "narrow", "tie", "inconclusive-underfilled", "no-narrow-fits", "missing")


def _check(runs, size):
    missing = [c for c in REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"Expected a runs table with the columns {list(REQUIRED)}. Received: runs without {missing}")
    if size not in SIZE_AXES or size not in runs.columns:
        raise ValueError(f"Expected size to be one of {list(SIZE_AXES)} and a column of runs. Received: size={size!r}")


def compare(runs, min_effect=0.01, size="nonzero_params", notes=None, confidence=0.95):
    """The comparison table: one row per contrast and size point, with its verdict.

    For every pair of tunings present (tuned vs tuned is the headline;
    untuned vs untuned and the two mixed cases are the controls), and every
    target sparsity with pruned rows, the pruned and narrow rows of that size
    point are compared (:func:`widthvsprune.stats.difference`, Bonferroni
    across the contrast's size points; :func:`widthvsprune.stats.verdict`).

    Args:
        runs: a DataFrame with ``runs.csv``'s columns. ``arm``,
            ``target_sparsity``, ``seed``, ``test_accuracy``,
            ``test_examples``, ``nonzero_params`` and ``total_params`` are
            required; ``tuning`` (default ``"tuned"``), ``budget`` (default:
            the fewest pruned nonzeros at the size point) and ``widths`` are
            used when present. Other rows (the baseline) are ignored.
        min_effect: the smallest difference that can name a winner.
        size: the size column reported as ``pruned_size``/``narrow_size``.
        notes: ``target -> note`` for size points with no narrow arm
            (``no-narrow-fits: ...``).
        confidence: the family-wise confidence level.

    Returns:
        A DataFrame with :data:`COMPARISON_COLUMNS`.

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
    notes = notes or {}
    rows = []
    for (p_tuning, n_tuning), contrast in CONTRASTS.items():
        pruned_all = runs[(runs.arm == "pruned") & (runs.tuning == p_tuning)]
        narrow_all = runs[(runs.arm == "narrow") & (runs.tuning == n_tuning)]
        if pruned_all.empty or (narrow_all.empty and not notes):
            continue
        targets = sorted(set(pruned_all.target_sparsity))
        compared = [t for t in targets if not narrow_all[narrow_all.target_sparsity == t].empty]
        for target in targets:
            pruned = pruned_all[pruned_all.target_sparsity == target]
            narrow = narrow_all[narrow_all.target_sparsity == target]
            rows.append(_row(contrast, p_tuning, n_tuning, target, pruned, narrow, len(compared), min_effect, size,
                             notes.get(target, ""), confidence))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def _row(contrast, p_tuning, n_tuning, target, pruned, narrow, comparisons, min_effect, size, note, confidence):
    row = {c: math.nan for c in COMPARISON_COLUMNS}
    row.update(contrast=contrast, pruned_tuning=p_tuning, narrow_tuning=n_tuning, target_sparsity=target,
               size_axis=size, note="", narrow_widths="", n_pruned=len(pruned), n_narrow=len(narrow),
               pruned_nonzero_params=int(pruned.nonzero_params.min()),
               pruned_test_accuracy=float(pruned.test_accuracy.mean()), pruned_size=float(pruned[size].mean()))
    if narrow.empty:
        verdict = "no-narrow-fits" if note.startswith("no-narrow-fits") else "missing"
        row.update(verdict=verdict, note=note or "no narrow model trained at this size point")
        return row
    budget = float(narrow.budget.min()) if "budget" in narrow and narrow.budget.notna().any() \
        else float(pruned.nonzero_params.min())
    fill = float(narrow.total_params.max()) / budget
    n_test = int(min(pruned.test_examples.min(), narrow.test_examples.min()))
    diff = stats.difference(pruned.test_accuracy, narrow.test_accuracy, n_test, comparisons, confidence)
    row.update(
        narrow_params=int(narrow.total_params.max()), narrow_fill=fill,
        narrow_widths=str(narrow.widths.iloc[0]) if "widths" in narrow else "",
        narrow_test_accuracy=float(narrow.test_accuracy.mean()), narrow_size=float(narrow[size].mean()),
        delta=diff.delta, delta_ci_low=diff.low, delta_ci_high=diff.high, ci_level=diff.level,
        p_value=diff.p_value, detectable=diff.detectable, test_examples=n_test,
        verdict=stats.verdict(diff, min_effect, fill),
    )
    notes = [] if diff.seed_spread else ["one seed per arm: the interval holds the test set's error only"]
    if "note" in narrow and isinstance(narrow.note.iloc[0], str) and narrow.note.iloc[0]:
        notes.append(narrow.note.iloc[0])
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


def sentence(comparison, contrast="tuned vs tuned"):
    """The verdict of one contrast in words."""
    rows = comparison[comparison.contrast == contrast]
    counts = rows.verdict.value_counts().to_dict()
    compared = sum(counts.get(k, 0) for k in ("pruned", "narrow", "tie", "inconclusive-underfilled"))
    if not compared:
        return f"{contrast}: no size point has both arms trained yet"
    text = f"{contrast}: large-sparse beat small-dense at {counts.get('pruned', 0)} of {compared} sizes"
    extra = []
    if counts.get("narrow"):
        extra.append(f"small-dense won {counts['narrow']}")
    if counts.get("tie"):
        extra.append(f"{counts['tie']} tie{'s' if counts['tie'] > 1 else ''}")
    if counts.get("inconclusive-underfilled"):
        extra.append(f"{counts['inconclusive-underfilled']} inconclusive (narrow model under 90% of its budget)")
    if counts.get("no-narrow-fits"):
        extra.append(f"{counts['no-narrow-fits']} with no dense model small enough")
    return text + (f" ({', '.join(extra)})" if extra else "")


@dataclasses.dataclass(frozen=True)
class Results:
    """A study's tables: ``runs``, ``comparison`` and ``frontier`` DataFrames, and the ``study``."""

    study: object
    runs: pd.DataFrame
    comparison: pd.DataFrame
    frontier: pd.DataFrame


def load_results(folder, size="nonzero_params"):
    """A study's results folder as DataFrames, built from its run records (nothing is written).

    Args:
        folder: a study results folder (``results/<study>``).
        size: the size axis of ``comparison``'s size columns and ``frontier``'s Pareto flags.

    Returns:
        :class:`Results`.

    Example:

    ```python
    results = widthvsprune.load_results("results/quickstart")
    results.comparison.query("contrast == 'tuned vs tuned'")[["target_sparsity", "delta", "verdict"]]
    ```
    """
    from widthvsprune import report

    return report.tables(folder, size)[0]
