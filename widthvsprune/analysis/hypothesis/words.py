"""The answer in words, every number read from the hypothesis tables."""

import math

from widthvsprune import arms
from widthvsprune.analysis import compare
from widthvsprune.analysis.hypothesis.points import BEYOND, CANNOT_TELL, NO_BASELINE, REACHED


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
        elif verdict == compare.UNRELIABLE:
            phrases.append(f"at {where} sparsity a model was evaluated at chance although it trained, so the study "
                           "cannot tell")
        elif verdict == compare.UNDERFILLED:
            phrases.append(f"at {where} sparsity the study cannot tell ({opponent.title} models could not fill "
                           "the budget)")
        else:
            phrases.append(f"at {where} sparsity there is no {opponent.title} model to compare")
    return phrases, ties


def under_trained(row, tolerance_value, pretrained=False):
    """The answer's first sentence when the reference trained as long as the arms beats the baseline as trained by
    more than the tolerance (read from a ``tolerance.csv`` row), else ``""``; ``pretrained``: the baseline is the
    user's trained model (:attr:`Study.pretrained`), not a recipe the study trained."""
    if row is None or "reference_gain" not in row or not isinstance(row.reference, str):
        return ""
    name = row.reference.split(" ")[0]
    if not name or name == arms.names()[0] or not row.reference_gain > tolerance_value:
        return ""
    which, fix = ("trained model", "train it longer") if pretrained else \
        ("baseline recipe", "train the baseline longer")
    return (f"The {which} is under-trained: the wide dense model trained as long as the arms "
            f"({arms.get(name).title}) reaches {_percent_accuracy(row.baseline_accuracy)} test accuracy, "
            f"{compare.points(row.reference_gain)} points above the baseline's "
            f"{_percent_accuracy(row.trained_baseline_accuracy)}, so every size below is measured against it; "
            f"{fix} before reading what follows as over-parameterization.")


def answer(tolerance, comparison, iso, contrast, tolerance_value, axis="nonzero_params", pretrained=False):
    """The study's answer to the over-parameterization question, in words, every number read from the tables.

    Args:
        tolerance: ``tolerance.csv`` (:func:`tolerance_table`).
        comparison: ``comparison.csv``.
        iso: ``iso_accuracy.csv`` (:func:`iso_table`).
        contrast: the headline :class:`~widthvsprune.arms.base.Contrast`.
        tolerance_value: the study's ``tolerance``.
        axis: the size axis of the tolerance frontiers.
        pretrained: the baseline is the user's trained model (:attr:`Study.pretrained`).

    Returns:
        A paragraph of two or three sentences: how far each arm keeps the
        baseline's accuracy (and so how over-parameterized the baseline is),
        who is ahead at equal nonzeros, and the iso-accuracy ratio.
    """
    arm, opponent = arms.get(contrast.arm), arms.get(contrast.opponent)

    def row_of(name, tuning):
        found = arms.rows(tolerance, name, tuning, "arm_tuning")
        if found.empty and tuning == compare.BEST:  # an arm of one tuning has no separate best row
            found = arms.rows(tolerance, name)
        found = found[found.size_axis == axis]
        return found.iloc[0] if len(found) else None

    dense, sparse = row_of(opponent.name, contrast.opponent_tuning), row_of(arm.name, contrast.arm_tuning)
    within = f"keep its accuracy within {tolerance_words(tolerance_value)}"
    sentences = []
    undertrained = under_trained(dense if dense is not None else sparse, tolerance_value, pretrained)
    if undertrained:
        sentences.append(undertrained)
    if dense is None or dense.status == NO_BASELINE:
        sentences.append("Without a tuned baseline the study cannot say how over-parameterized it is.")
    else:
        size = f"{dense.baseline_size:,.0f} {'nonzeros' if axis == 'nonzero_params' else axis}"
        if undertrained:
            size += ", fine-tuned as long as the arms"
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
