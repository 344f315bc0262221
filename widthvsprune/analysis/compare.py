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
from widthvsprune.sizes import SIZE_AXES
from widthvsprune.status import SearchStatus

COMPARISON_COLUMNS = [
    "contrast", "arm", "arm_tuning", "opponent", "opponent_tuning", "target_sparsity", "arm_nonzero_params",
    "opponent_params", "opponent_widths", "opponent_fill", "arm_test_accuracy", "opponent_test_accuracy", "delta",
    "delta_ci_low", "delta_ci_high", "ci_level", "p_value", "detectable", "n_arm", "n_opponent", "test_examples",
    "verdict", "size_axis", "arm_size", "opponent_size", "note",
    "above_params", "above_widths", "above_fill", "above_test_accuracy", "above_delta", "above_ci_low",
    "above_ci_high", "arm_diverged", "opponent_diverged", "seeds_needed", "test_examples_needed", "together_seeds",
    "together_test_examples", "arm_configuration", "opponent_configuration",
]
REQUIRED = ("arm", "target_sparsity", "seed", "test_accuracy", "test_examples", "nonzero_params", "total_params")
#: Verdicts besides a winning arm's name.
TIE, UNDERFILLED, MISSING, DIVERGED = "tie", "inconclusive-underfilled", "missing", "diverged"
#: The verdict of a size point where a model's evaluation failed though it trained (``broken_evaluation``).
UNRELIABLE = "unreliable"
NO_FIT = SearchStatus.NO_FIT.value
#: The ``role`` of a model that brackets an underfilled budget from above (runs.csv).
BRACKET = "bracket"
#: A contrast's tuning that stands for each arm's better configuration at each size point, tuned or as written,
#: judged on mean validation accuracy over the evaluation seeds (:func:`better_tuning`).
BEST = "best"
#: The order in which equal validation scores are decided: the searched configuration first.
TUNINGS = ("tuned", "untuned")
#: frontier.csv's columns as :func:`frontier` makes them (the reports add
#: :data:`widthvsprune.analysis.hypothesis.FRONTIER_COLUMNS`).
FRONTIER_COLUMNS = ["arm", "tuning", "pruning", "target_sparsity", "role", "widths", "mean", "std", "n", "ci_low",
                    "ci_high", *SIZE_AXES, "pareto"]


def _check(runs, size):
    missing = [c for c in REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"Expected a runs table with the columns {list(REQUIRED)}. Received: runs without {missing}")
    if size not in SIZE_AXES or size not in runs.columns:
        raise ValueError(f"Expected size to be one of {list(SIZE_AXES)} and a column of runs. Received: size={size!r}")


def validation_means(rows):
    """``{tuning: mean validation accuracy}`` of one arm's evaluated models at one size point (not those above an
    underfilled budget), in the order of :data:`TUNINGS`; empty without ``val_accuracy``."""
    evaluated = rows[~is_bracket(rows)]
    if "val_accuracy" not in evaluated.columns:
        return {}
    return {t: float(evaluated[evaluated.tuning == t].val_accuracy.mean()) for t in TUNINGS
            if t in set(evaluated.tuning)}


def better_tuning(rows):
    """The tuning (``"tuned"`` or ``"untuned"``) whose models score higher mean validation accuracy, of one arm's
    rows at one size point.

    Only the evaluated models count (not those above an underfilled budget);
    an equal score goes to the first of :data:`TUNINGS`, and a table
    without ``val_accuracy`` to the first tuning present. The test split is
    never used for this choice.
    """
    evaluated = rows[~is_bracket(rows)]
    present = [t for t in TUNINGS if t in set(evaluated.tuning)] or sorted(set(rows.tuning))
    if not present:
        return TUNINGS[0]
    means = validation_means(rows)
    scored = [t for t in present if not math.isnan(means.get(t, math.nan))]
    if len(present) == 1 or not scored:
        return present[0]
    return max(scored, key=lambda t: (means[t], -present.index(t)))


def select(runs, arm, tuning):
    """The rows of ``arm`` with ``tuning``; for :data:`BEST`, at each size point the rows of the
    :func:`better_tuning` (models above an underfilled budget included)."""
    if tuning != BEST:
        return arms.rows(runs, arm, tuning)
    rows = arms.rows(runs, arm)
    if rows.empty:
        return rows
    kept = [group[group.tuning == better_tuning(group)] for _, group in rows.groupby("target_sparsity", sort=False)]
    return pd.concat(kept)


def configurations(runs, arm):
    """``{target sparsity: tuning}`` of the configuration that stands for ``arm`` at each size point (:data:`BEST`),
    with the mean validation accuracy of each tuning: ``{target: (chosen, {tuning: mean})}``."""
    rows = arms.rows(runs, arm)
    out = {}
    for target, group in rows.groupby("target_sparsity", sort=True):
        out[float(target)] = (better_tuning(group), validation_means(group))
    return out


def all_contrasts(runs):
    """The registered arms' contrasts whose arm appears in ``runs`` (the headline first).

    A table with only tuned rows (or no ``tuning`` column) has no recipe to
    choose from, so a contrast of each arm's better configuration
    (:data:`BEST`) would repeat the tuned one: it is left out.
    """
    present = set(runs["arm"])
    tunings = set(runs["tuning"]) if "tuning" in runs.columns else {"tuned"}
    found = [c for name in arms.names() for c in arms.get(name).contrasts(None) if c.arm in present
             and (tunings != {"tuned"} or BEST not in (c.arm_tuning, c.opponent_tuning))]
    return sorted(found, key=lambda c: not c.headline)


def compare(runs, min_effect=0.01, size="nonzero_params", skipped=None, confidence=0.95, contrasts=None):
    """The comparison table: one row per contrast and size point, with its verdict.

    For every contrast (the headline, pruned against narrow with both arms
    tuned; its controls; an extra arm's), and every target sparsity with
    rows of its ``arm``, those rows and their ``opponent``'s are compared
    (:func:`widthvsprune.analysis.stats.difference`, Bonferroni across the
    contrast's size points; :func:`widthvsprune.analysis.stats.verdict`).

    Two cases change the plain verdict:

    - a model on either side ended at chance accuracy (``diverged``): the
      verdict is ``diverged``, as the difference would compare a failed
      recipe, not the method; ``delta`` and its interval are still given;
    - a model on either side was evaluated at chance although it trained
      (``broken_evaluation``): the verdict is ``unreliable``, whatever the
      cause, as its accuracy says nothing about its weights;
    - the opponent fills less than ``UNDERFILLED_BELOW`` of its budget and
      its smallest model above the budget was trained too (rows with
      ``role == "bracket"``): the verdict brackets the budget
      (:func:`widthvsprune.analysis.stats.bracket`); without that model, an
      arm's win is ``inconclusive-underfilled``.

    Args:
        runs: a DataFrame with ``runs.csv``'s columns. ``arm``,
            ``target_sparsity``, ``seed``, ``test_accuracy``,
            ``test_examples``, ``nonzero_params`` and ``total_params`` are
            required; ``tuning`` (default ``"tuned"``), ``budget`` (default:
            the arm's fewest nonzeros at the size point), ``widths``,
            ``diverged`` (default: not diverged), ``broken_evaluation``
            (default: not broken) and ``role`` (default
            ``"eval"``) are used when present. Rows of other arms are ignored.
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
    runs["diverged"] = diverged(runs)
    runs["broken_evaluation"] = flag(runs, "broken_evaluation")
    bracketing = is_bracket(runs)
    skipped = skipped or {}
    rows = []
    for contrast in all_contrasts(runs) if contrasts is None else contrasts:
        mine = select(runs, contrast.arm, contrast.arm_tuning)
        mine = mine[~bracketing[mine.index]]
        theirs = select(runs, contrast.opponent, contrast.opponent_tuning)
        above = theirs[bracketing[theirs.index]]
        theirs = theirs[~bracketing[theirs.index]]
        notes = {t: skip for (name, t), skip in skipped.items() if name == contrast.opponent}
        if mine.empty or (theirs.empty and not notes):
            continue
        targets = sorted(set(mine.target_sparsity))
        compared = [t for t in targets if not theirs[theirs.target_sparsity == t].empty]
        for target in targets:
            rows.append(_row(contrast, target, mine[mine.target_sparsity == target],
                             theirs[theirs.target_sparsity == target], above[above.target_sparsity == target],
                             len(compared), min_effect, size, notes.get(target), confidence))
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def diverged(runs):
    """Whether each row's model ended at chance accuracy: the ``diverged`` column, missing values as False."""
    return flag(runs, "diverged")


def flag(runs, column):
    """A boolean column of a runs table as bools (``True``, ``1``, ``"true"``), missing column or values as False."""
    if column not in runs.columns:
        return pd.Series(False, index=runs.index)
    return runs[column].map(lambda v: v is True or v == 1 or str(v).strip().lower() == "true").astype(bool)


def is_bracket(runs):
    """Whether each row is a model that brackets an underfilled budget from above (``role == "bracket"``)."""
    if "role" not in runs.columns:
        return pd.Series(False, index=runs.index)
    return runs["role"].astype(str).eq(BRACKET)


def _row(contrast, target, mine, theirs, above, comparisons, min_effect, size, skip, confidence):
    row = {c: math.nan for c in COMPARISON_COLUMNS}
    row.update(contrast=contrast.name, arm=contrast.arm, arm_tuning=contrast.arm_tuning, opponent=contrast.opponent,
               opponent_tuning=contrast.opponent_tuning, target_sparsity=target, size_axis=size, note="",
               opponent_widths="", above_widths="", n_arm=len(mine), n_opponent=len(theirs),
               arm_nonzero_params=int(mine.nonzero_params.min()), arm_configuration=_configuration(mine),
               opponent_configuration=_configuration(theirs),
               arm_test_accuracy=float(mine.test_accuracy.mean()), arm_size=float(mine[size].mean()),
               arm_diverged=int(mine.diverged.sum()), opponent_diverged=int(theirs.diverged.sum()))
    if theirs.empty:
        status = getattr(skip, "status", "")
        row.update(verdict=NO_FIT if status == NO_FIT else MISSING,
                   note=getattr(skip, "note", "") or f"no {contrast.opponent} model trained at this size point")
        return row
    budget = _budget(mine, theirs)
    fill = float(theirs.nonzero_params.max()) / budget
    n_test = int(min(mine.test_examples.min(), theirs.test_examples.min()))
    diff = stats.difference(mine.test_accuracy, theirs.test_accuracy, n_test, comparisons, confidence)
    names = (contrast.arm, contrast.opponent)
    winner = stats.verdict(diff, min_effect, fill, names=names)
    need = stats.needed(mine.test_accuracy, theirs.test_accuracy, n_test, min_effect, comparisons, confidence)
    row.update(
        opponent_params=int(theirs.nonzero_params.max()), opponent_fill=fill,
        opponent_widths=str(theirs.widths.iloc[0]) if "widths" in theirs else "",
        opponent_test_accuracy=float(theirs.test_accuracy.mean()), opponent_size=float(theirs[size].mean()),
        delta=diff.delta, delta_ci_low=diff.low, delta_ci_high=diff.high, ci_level=diff.level,
        p_value=diff.p_value, detectable=diff.detectable, test_examples=n_test,
        seeds_needed=math.nan if need.seeds is None else float(need.seeds),
        test_examples_needed=math.nan if need.test_examples is None else float(need.test_examples),
        together_seeds=float(need.together[0]) if need.together else math.nan,
        together_test_examples=float(need.together[1]) if need.together else math.nan,
    )
    notes = [] if diff.seed_spread else ["one seed per arm: the interval holds the test set's error only"]
    if "note" in theirs and isinstance(theirs.note.iloc[0], str) and theirs.note.iloc[0]:
        notes.append(theirs.note.iloc[0])
    if not above.empty:
        winner, reason = _bracketed(row, diff, mine, above, budget, comparisons, min_effect, confidence, names)
        notes.append(reason)
    broken = [f"{count} of {len(side)} {name}" for count, side, name in
              ((row["arm_diverged"], mine, f"{contrast.arm} model(s)"),
               (row["opponent_diverged"], theirs, f"{contrast.opponent} model(s)"),
               (int(above.diverged.sum()), above, f"{contrast.opponent} model(s) above the budget")) if count]
    if broken:
        winner = DIVERGED
        notes.insert(0, f"{' and '.join(broken)} ended at chance accuracy: the recipe failed, so this size point "
                        "says nothing about the method")
    unreliable = [f"{count} of {len(side)} {name}" for count, side, name in
                  ((int(mine.broken_evaluation.sum()), mine, f"{contrast.arm} model(s)"),
                   (int(theirs.broken_evaluation.sum()), theirs, f"{contrast.opponent} model(s)"),
                   (int(above.broken_evaluation.sum()), above, f"{contrast.opponent} model(s) above the budget"))
                  if count]
    if unreliable:
        winner = UNRELIABLE
        notes.insert(0, f"{' and '.join(unreliable)} evaluated at chance although they trained (a broken "
                        "evaluation): their accuracy says nothing about their weights, so no verdict stands here")
    row["verdict"] = winner
    row["note"] = "; ".join(notes)
    return row


def _configuration(rows):
    """The tuning of a side's rows (``"tuned"``, ``"untuned"``), ``""`` when it has none."""
    return "/".join(sorted(set(rows.tuning))) if len(rows) else ""


def _budget(mine, theirs):
    if "budget" in theirs and theirs.budget.notna().any():
        return float(theirs.budget.min())
    return float(mine.nonzero_params.min())


def _bracketed(row, within, mine, above, budget, comparisons, min_effect, confidence, names):
    """The bracketing verdict (:func:`stats.bracket`) and its reason; fills the ``above_*`` columns of ``row``."""
    n_test = int(min(mine.test_examples.min(), above.test_examples.min()))
    beyond = stats.difference(mine.test_accuracy, above.test_accuracy, n_test, comparisons, confidence)
    row.update(above_params=int(above.nonzero_params.max()), above_widths=str(above.widths.iloc[0])
               if "widths" in above else "", above_fill=float(above.nonzero_params.max()) / budget,
               above_test_accuracy=float(above.test_accuracy.mean()), above_delta=beyond.delta,
               above_ci_low=beyond.low, above_ci_high=beyond.high)
    winner, reason = stats.bracket(stats.verdict(within, min_effect, names=names),
                                   stats.verdict(beyond, min_effect, names=names), names)
    sizes = (f"{row['opponent_params']:,} parameters, {row['opponent_fill']:.0%} of the budget; "
             f"{row['above_params']:,}, {row['above_fill']:.0%}")
    return winner, f"bracketed ({sizes}): {reason}"


def frontier(runs, size="nonzero_params"):
    """One row per arm, tuning and size point: mean test accuracy over seeds with its interval, mean sizes, and
    ``pareto`` (no other row is both smaller and more accurate).

    A narrow model that brackets an underfilled budget from above (``role``
    ``bracket``) is a row of its own beside the size point's other one.
    """
    runs = runs.copy()
    if "tuning" not in runs.columns:
        runs["tuning"] = "tuned"
    for column in ("pruning", "widths"):
        runs[column] = runs[column].fillna("") if column in runs.columns else ""
    runs["role"] = runs["role"].fillna("eval") if "role" in runs.columns else "eval"
    rows = []
    keys = ["arm", "tuning", "pruning", "target_sparsity", "role", "widths"]
    for point, group in runs.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, point))
        row.update(stats.summary(group.test_accuracy))
        for column in SIZE_AXES:
            if column in group:
                row[column] = float(group[column].mean())
        rows.append(row)
    frame = pd.DataFrame(rows, columns=[c for c in FRONTIER_COLUMNS if c != "pareto" and (
        c not in SIZE_AXES or c in runs.columns)])
    if not frame.empty:
        frame = frame.sort_values(["arm", "tuning", "target_sparsity", size], kind="stable").reset_index(drop=True)
        frame["pareto"] = stats.pareto_flags(frame[size], frame["mean"])
    return frame


def tally(comparison):
    """Counts of verdicts per contrast: ``{contrast: {verdict: count}}``."""
    return {contrast: group.verdict.value_counts().to_dict() for contrast, group in comparison.groupby(
        "contrast", sort=False)}


def points(value):
    """A fraction as percentage points in text: ``0.0437`` -> ``"4.4"``."""
    return f"{100 * value:.1f}"


def _count(n):
    return f"{n:,.0f}" if math.isfinite(n) else "no number of"


def points_range(values, unit=" points"):
    """Fractions as a range of points in text: ``[0.044, 0.093]`` -> ``"4.4 to 9.3 points"``."""
    low, high = min(values), max(values)
    return f"{points(low)}{unit}" if points(low) == points(high) else f"{points(low)} to {points(high)}{unit}"


def effect_words(value):
    """A difference as points in words: ``0.01`` -> ``"1 point"``."""
    text = f"{round(100 * value, 6):g}"
    return f"{text} point{'' if text == '1' else 's'}"


def resolution(rows, min_effect, ties=False, available=None):
    """What a contrast's comparisons can resolve, and what would resolve ``min_effect``, in words.

    Args:
        rows: one contrast's rows of the comparison table.
        min_effect: the difference the study means to resolve.
        ties: whether some of the rows are ties (the clause then says what a tie means here).
        available: the examples the dataset has in all, when known: advice asking for more test examples than
            that says so.

    Returns:
        A clause such as ``"with 3 seeds and 360 test examples the study resolves differences of 4.4 to 9.3
        points (80% power, corrected), so a tie only says that the difference is smaller than that; resolving 1
        point at every size would take 26 seeds per arm (with these test examples) or 4,900 test examples (with
        these seeds)"``, or ``""`` when nothing was compared.
    """
    rows = rows[rows.detectable.notna()]
    if rows.empty:
        return ""
    seeds = int(min(rows.n_arm.min(), rows.n_opponent.min()))
    examples = int(rows.test_examples.min())
    text = (f"with {seeds} seed{'s' if seeds != 1 else ''} and {examples:,} test examples the study resolves "
            f"differences of {points_range(rows.detectable)} (80% power, corrected)")
    short = rows[rows.detectable >= min_effect]
    goal = effect_words(min_effect)
    if short.empty:
        return text + f", under min_effect ({goal})"
    if ties:
        text += ", so a tie only says that the difference is smaller than that"
    where = "at every size" if len(short) == len(rows) else \
        f"at {', '.join(f'{t:.0%}' for t in short.target_sparsity)} sparsity"
    if short.seeds_needed.isna().any():
        return text + (f"; with one seed per arm the seeds' spread is unknown: train more seeds before asking what "
                       f"would resolve {goal}")
    more_seeds, more_examples = float(short.seeds_needed.max()), float(short.test_examples_needed.max())
    if math.isinf(more_seeds) and math.isinf(more_examples):
        both = short[short.together_seeds.notna()]
        k, n = float(both.together_seeds.max()), float(both.together_test_examples.max())
        if math.isinf(k):
            return text + f"; no affordable number of seeds and test examples would resolve {goal} {where}"
        return text + (f"; resolving {goal} {where} would take more seeds and more test examples together (neither "
                       f"alone would do), for example {_count(k)} seeds per arm and {_count(n)} test examples"
                       + _beyond(n, available))
    options = []
    if math.isfinite(more_seeds):
        options.append(f"{_count(more_seeds)} seeds per arm (with these test examples)")
    if math.isfinite(more_examples):
        options.append(f"{_count(more_examples)} test examples (with these seeds{_beyond(more_examples, available)})")
    limits = []
    if math.isinf(more_seeds):
        limits.append("more seeds alone would not, the test set's own error being too large")
    if math.isinf(more_examples):
        limits.append("more test examples alone would not, the seeds' spread being too large")
    return text + f"; resolving {goal} {where} would take {' or '.join(options)}" + \
        (f" ({'; '.join(limits)})" if limits else "")


def _beyond(needed, available):
    """A clause saying that ``needed`` test examples are more than the dataset has (``""`` when they are not)."""
    if available is None or not math.isfinite(needed) or needed <= available:
        return ""
    return f"; more than the {available:,} examples this dataset has in all, so it would take a larger dataset"


def sentence(comparison, contrast=None, min_effect=0.01, available=None):
    """The verdict of one contrast (the first, the headline, by default) in words.

    Wins, losses and ties over the size points, then, in the same sentence,
    what the study can resolve and what would make it resolve ``min_effect``
    (:func:`resolution`; ``available``: the examples the dataset has in all, when known).
    """
    if comparison.empty:
        return f"{contrast or 'the comparison'}: no size point has both arms trained yet"
    contrast = contrast or comparison.contrast.iloc[0]
    rows = comparison[comparison.contrast == contrast]
    if rows.empty:
        return f"{contrast}: no size point has both arms trained yet"
    arm, opponent = arms.get(rows.arm.iloc[0]), arms.get(rows.opponent.iloc[0])
    counts = rows.verdict.value_counts().to_dict()
    compared = sum(counts.get(k, 0) for k in (arm.name, opponent.name, TIE, UNDERFILLED, DIVERGED, UNRELIABLE))
    if not compared:
        return f"{contrast}: no size point has both arms trained yet"
    ties = counts.get(TIE, 0)
    text = (f"{contrast}: {arm.title} won at {counts.get(arm.name, 0)} of {compared} sizes, {opponent.title} at "
            f"{counts.get(opponent.name, 0)}, {ties} tie{'' if ties == 1 else 's'}")
    extra = []
    if counts.get(UNDERFILLED):
        extra.append(f"{counts[UNDERFILLED]} inconclusive ({opponent.title} model under "
                     f"{stats.UNDERFILLED_BELOW:.0%} of its budget)")
    if counts.get(DIVERGED):
        extra.append(f"{counts[DIVERGED]} with a diverged model (at chance accuracy)")
    if counts.get(UNRELIABLE):
        extra.append(f"{counts[UNRELIABLE]} unreliable (a model evaluated at chance although it trained)")
    if counts.get(NO_FIT):
        extra.append(f"{counts[NO_FIT]} with no dense model small enough")
    text += "".join(f", {e}" for e in extra)
    clause = resolution(rows, min_effect, ties > 0, available)
    return text + (f"; {clause}" if clause else "")
