"""The over-parameterization hypothesis, answered from a study's measured size points (pure: NumPy, pandas).

Modules: :mod:`.points` (the measured points), :mod:`.tolerance` (the tolerance frontier), :mod:`.iso` (the
iso-accuracy comparison) and :mod:`.words` (the answer in words).

Two questions, both asked of the arms' measured frontiers only (nothing is
extrapolated beyond the sizes a study trained):

- **How far can the baseline shrink?** The *tolerance frontier* of an arm is
  its smallest size whose accuracy stays within ``tolerance`` of the wide
  dense reference, as a claim with 95% confidence (:func:`tolerance_frontier`).
  The reference (:func:`reference_point`) is the best on validation of the
  baseline and the dense fine-tuned control (the baseline trained as long as
  the arms), each tuned or as written, so that a baseline recipe that is too
  short does not read as over-parameterization. The
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
  bound of the drop (the reference's mean accuracy minus the point's) is
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


from widthvsprune.analysis.hypothesis.iso import (
    Iso,
    bootstrap_means,
    iso_accuracy,
    iso_table,
    isotonic,
    levels,
    log_sizes_needed,
    size_at,
)
from widthvsprune.analysis.hypothesis.points import (
    ABOVE_RANGE,
    BELOW_RANGE,
    BEYOND,
    CANNOT_TELL,
    CONFIDENCE,
    FRONTIER_COLUMNS,
    IN_RANGE,
    ISO_COLUMNS,
    LOSES,
    NO_BASELINE,
    NOT_REACHED,
    REACHED,
    REPLICATES,
    TOLERANCE_COLUMNS,
    Point,
    points_of,
    reference_point,
    trained_baseline,
    tuned_baseline,
)
from widthvsprune.analysis.hypothesis.tolerance import (
    Check,
    Frontier,
    annotate,
    check,
    tolerance_frontier,
    tolerance_table,
)
from widthvsprune.analysis.hypothesis.words import answer, percent, reach, tolerance_words

__all__ = [
    "ABOVE_RANGE", "BELOW_RANGE", "BEYOND", "CANNOT_TELL", "CONFIDENCE", "FRONTIER_COLUMNS", "IN_RANGE",
    "ISO_COLUMNS", "LOSES", "NO_BASELINE", "NOT_REACHED", "REACHED", "REPLICATES", "TOLERANCE_COLUMNS", "Check",
    "Frontier", "Iso", "Point", "annotate", "answer", "bootstrap_means", "check", "iso_accuracy", "iso_table",
    "isotonic", "levels", "log_sizes_needed", "percent", "points_of", "reach", "reference_point", "size_at",
    "tolerance_frontier", "tolerance_table", "tolerance_words", "trained_baseline", "tuned_baseline",
]
