"""The measured size points of an arm, and the names and columns the hypothesis tables share."""

import dataclasses
import itertools
from typing import Optional, Tuple

import numpy as np

from widthvsprune import arms
from widthvsprune.analysis import compare
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
    "stop", "note", "reference", "trained_baseline_accuracy", "reference_gain",
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
        arm, tuning: whose point it is.
        val_mean: the models' mean validation accuracy (NaN without it).
    """

    target: float
    sizes: dict
    accuracies: Tuple[float, ...]
    test_examples: int
    widths: str = ""
    role: str = "eval"
    correct: Optional[np.ndarray] = None
    arm: str = dataclasses.field(default="", compare=False)
    tuning: str = dataclasses.field(default="", compare=False)
    val_mean: float = dataclasses.field(default=float("nan"), compare=False)

    @property
    def mean(self):
        return float(np.mean(self.accuracies))


def points_of(runs, arm, tuning, correct=None):
    """The measured points of one arm and tuning in a runs table, smallest nonzeros first.

    Args:
        runs: a DataFrame with ``runs.csv``'s columns.
        arm, tuning: which rows (``tuning`` may be
            :data:`widthvsprune.analysis.compare.BEST`: at each size point the
            configuration better on validation).
        correct: ``{(key, seed): booleans}`` from the runs' ``predictions.npz``;
            a point gets them only when every one of its models has them.

    Returns:
        A list of :class:`Point`.
    """
    rows = compare.select(with_defaults(runs), arm, tuning)
    out = []
    for (target, role, widths), group in rows.groupby(["target_sparsity", "role", "widths"], sort=False):
        found = None
        if correct is not None and "key" in group:
            arrays = [correct.get((k, int(s))) for k, s in zip(group.key, group.seed)]
            if all(a is not None for a in arrays) and len({len(a) for a in arrays}) == 1:
                found = np.asarray(arrays, dtype=bool)
        sizes = {axis: float(group[axis].mean()) for axis in SIZE_AXES if axis in group}
        val = float(group.val_accuracy.mean()) if "val_accuracy" in group else float("nan")
        out.append(Point(float(target), sizes, tuple(float(a) for a in group.test_accuracy),
                         int(group.test_examples.min()), str(widths), str(role), found, arm,
                         "/".join(sorted(set(group.tuning))), val))
    return sorted(out, key=lambda p: (p.sizes.get("nonzero_params", 0.0), p.target))


def with_defaults(runs):
    runs = runs.copy()
    for column, default in (("tuning", "tuned"), ("role", "eval"), ("widths", "")):
        runs[column] = runs[column].fillna(default) if column in runs.columns else default
    return runs


# --------------------------------------------------------------------------
# The tolerance frontier.


def tuned_baseline(runs, correct=None):
    """The tuned baseline's :class:`Point` in a runs table (the first reference arm's), or ``None``."""
    references = [name for name in arms.names() if arms.get(name).reference and name in set(runs.arm)]
    found = [p for name in references for p in points_of(runs, name, "tuned", correct)]
    return found[0] if found else None


def reference_candidates(runs, correct=None):
    """Every configuration of the reference arms (the wide dense models) as a :class:`Point`, in a fixed order:
    the registered order of the arms, each tuned before untuned."""
    runs = with_defaults(runs)
    references = [name for name in arms.names() if arms.get(name).reference and name in set(runs.arm)]
    return [p for name in references for tuning in compare.TUNINGS for p in points_of(runs, name, tuning, correct)]


def best_of(points):
    """The point of highest mean validation accuracy (the first of equal ones; the first of all without
    validation scores), or ``None``."""
    if not points:
        return None
    scored = [(p.val_mean, -i) for i, p in enumerate(points) if not np.isnan(p.val_mean)]
    return points[-max(scored)[1]] if scored else points[0]


def reference_point(runs, correct=None):
    """The wide dense model every arm is measured against: the reference arms' configuration (the baseline tuned
    or as written, the dense fine-tuned control tuned or as written) of highest mean validation accuracy over the
    evaluation seeds, or ``None``.

    A baseline recipe that is too short is so replaced by the same model
    trained as long as the arms are, and the smaller models are not credited
    with what was only longer training.
    """
    return best_of(reference_candidates(runs, correct))


def trained_baseline(runs, correct=None):
    """The better configuration of the first reference arm alone (the baseline as trained), or ``None``."""
    candidates = reference_candidates(runs, correct)
    if not candidates:
        return None
    _, first = next(itertools.groupby(candidates, key=lambda p: p.arm))  # the first reference arm's points
    return best_of(list(first))
