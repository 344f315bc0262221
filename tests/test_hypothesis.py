"""The over-parameterization answer on hand-made frontiers: tolerance frontiers, iso-accuracy, the sentence (pure)."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from widthvsprune import arms
from widthvsprune.analysis import compare, hypothesis, stats
from widthvsprune.analysis.hypothesis import Point

N = 100_000  # test examples: large enough that the seeds' spread decides
HEADLINE = next(c for c in arms.get("narrow").contrasts(None) if c.headline)


def point(target, nonzeros, accuracies, n=N, **extra):
    return Point(target, {"nonzero_params": nonzeros, "total_params": 1000.0, **extra}, tuple(accuracies), n)


BASELINE = point(0.0, 1000, [0.950, 0.951, 0.949])


def arm_points(accuracies, sizes=(500, 200, 100)):
    return [point(t, s, [a - 0.001, a, a + 0.001]) for t, s, a in zip((0.5, 0.8, 0.9), sizes, accuracies)]


def test_the_tolerance_frontier_is_the_last_size_within_tolerance_walking_down_from_the_largest():
    frontier = hypothesis.tolerance_frontier(arm_points([0.948, 0.945, 0.90]), BASELINE, tolerance=0.01)
    assert frontier.status == hypothesis.REACHED
    assert frontier.found.point.target == 0.8 and frontier.size == 200 and frontier.ratio == pytest.approx(5.0)
    assert frontier.stopped.point.target == 0.9 and "loses 5.0 points" in frontier.note
    assert frontier.stop == hypothesis.LOSES
    assert [c.within for c in frontier.checks] == [True, True, False]
    # The claim is a one-sided 95% bound of the drop, with the seeds' spread and the test set's error.
    found = frontier.found
    bound = stats.difference(found.point.accuracies, BASELINE.accuracies, N, confidence=0.90)  # two-sided 90%
    assert found.drop == pytest.approx(0.005) and found.drop_upper == pytest.approx(-bound.low)
    assert found.drop_upper - found.drop == pytest.approx(scipy.stats.t.ppf(0.95, bound.df) * bound.se)


def test_a_tie_everywhere_reaches_beyond_the_smallest_size_tried():
    frontier = hypothesis.tolerance_frontier(arm_points([0.95, 0.95, 0.95]), BASELINE, tolerance=0.01)
    assert frontier.status == hypothesis.BEYOND and frontier.ratio == pytest.approx(10.0)
    assert "lower bound" in frontier.note and frontier.stopped is None and frontier.stop == ""


def test_an_arm_that_never_reaches_the_tolerance_is_not_reached_and_says_how_much_it_loses():
    frontier = hypothesis.tolerance_frontier(arm_points([0.92, 0.91, 0.90]), BASELINE, tolerance=0.01)
    assert frontier.status == hypothesis.NOT_REACHED and math.isnan(frontier.ratio) and frontier.found is None
    assert frontier.note.startswith("its largest size tried loses 3.0 points")


def test_an_arm_too_noisy_to_tell_is_not_reached_and_says_the_study_cannot_tell():
    noisy = [point(0.5, 500, [0.90, 0.99, 0.96]), point(0.8, 200, [0.9, 0.9, 0.9])]
    frontier = hypothesis.tolerance_frontier(noisy, BASELINE, tolerance=0.01)
    assert frontier.status == hypothesis.NOT_REACHED and "the study cannot tell" in frontier.note
    assert frontier.stop == hypothesis.CANNOT_TELL


def test_a_smaller_size_within_tolerance_again_below_a_failing_one_does_not_move_the_frontier():
    frontier = hypothesis.tolerance_frontier(arm_points([0.948, 0.90, 0.949]), BASELINE, tolerance=0.01)
    assert frontier.status == hypothesis.REACHED and frontier.found.point.target == 0.5
    assert frontier.ratio == pytest.approx(2.0)
    assert "(sparsity 0.9) is within tolerance again" in frontier.note


def test_the_walk_follows_the_size_axis_asked_for():
    points = [point(0.5, 500, [0.95] * 3, sparse_bytes=900.0), point(0.8, 200, [0.95] * 3, sparse_bytes=400.0)]
    base = point(0.0, 1000, [0.95] * 3, sparse_bytes=4000.0)
    frontier = hypothesis.tolerance_frontier(points, base, 0.01, axis="sparse_bytes")
    assert frontier.size == 400 and frontier.ratio == pytest.approx(10.0)
    dense = hypothesis.tolerance_frontier(points, base, 0.01, axis="total_params")  # every size the same
    assert dense.ratio == pytest.approx(1.0)


def test_without_a_tuned_baseline_there_is_no_frontier():
    assert hypothesis.tolerance_frontier(arm_points([0.95] * 3), None, 0.01).status == hypothesis.NO_BASELINE


def test_the_size_needed_is_interpolated_on_the_log_size_axis():
    size, where = hypothesis.size_at([100, 1000], [0.80, 0.90], 0.85)
    assert where == hypothesis.IN_RANGE and size == pytest.approx(math.sqrt(100 * 1000))
    assert hypothesis.size_at([1000, 100], [0.90, 0.80], 0.90) == (1000.0, hypothesis.IN_RANGE)  # any order


def test_an_accuracy_level_outside_an_arms_measured_range_is_never_extrapolated():
    assert hypothesis.size_at([100, 1000], [0.80, 0.90], 0.95)[1] == hypothesis.ABOVE_RANGE
    assert hypothesis.size_at([100, 1000], [0.80, 0.90], 0.75)[1] == hypothesis.BELOW_RANGE
    assert math.isnan(hypothesis.size_at([100, 1000], [0.80, 0.90], 0.75)[0])


def test_non_monotone_accuracy_is_made_non_decreasing_before_it_is_read():
    assert hypothesis.isotonic([0.90, 0.94, 0.93, 0.97]) == pytest.approx([0.90, 0.935, 0.935, 0.97])
    assert hypothesis.isotonic([0.5, 0.4, 0.3]) == pytest.approx([0.4, 0.4, 0.4])
    # A dip at 400 is pooled with 200: the level 0.935 is reached on the way from 100 to the pooled 200.
    size, where = hypothesis.size_at([100, 200, 400, 800], [0.90, 0.94, 0.93, 0.97], 0.935)
    assert where == hypothesis.IN_RANGE and size == pytest.approx(200.0)
    many = hypothesis.log_sizes_needed([100, 200, 400, 800], np.array([[0.90, 0.935, 0.935, 0.97]]), 0.92)
    assert math.exp(many[0]) == pytest.approx(hypothesis.size_at([100, 200, 400, 800],
                                                                 [0.90, 0.94, 0.93, 0.97], 0.92)[0])


def curve(accuracies, sizes, n=1000, seed=0):
    """Points with per-example correctness whose accuracies are exactly ``accuracies`` (three seeds each)."""
    rng = np.random.default_rng(seed)
    out = []
    for target, size, a in zip((0.5, 0.8, 0.9, 0.95), sizes, accuracies):
        correct = np.zeros((3, n), dtype=bool)
        for s in range(3):
            correct[s, rng.permutation(n)[:round(a * n)]] = True
        out.append(Point(target, {"nonzero_params": float(size)}, tuple(correct.mean(axis=1)), n, correct=correct))
    return out


def test_two_arms_tied_everywhere_need_the_same_nonzeros_at_every_level():
    pruned = curve([0.95, 0.93, 0.90, 0.85], [800, 400, 200, 100], seed=1)
    narrow = curve([0.95, 0.93, 0.90, 0.85], [800, 400, 200, 100], seed=2)
    rows, resampled = hypothesis.iso_accuracy(pruned, narrow, [0.94, 0.91, 0.87], replicates=400)
    assert resampled == "seeds and test examples"
    for row in rows:
        assert row.comparable and row.ratio == pytest.approx(1.0) and row.low < 1 < row.high


def test_an_arm_that_needs_half_the_nonzeros_has_a_ratio_of_one_half_with_an_interval():
    pruned = curve([0.95, 0.93, 0.90, 0.85], [400, 200, 100, 50])
    narrow = curve([0.95, 0.93, 0.90, 0.85], [800, 400, 200, 100], seed=3)
    [row], _ = hypothesis.iso_accuracy(pruned, narrow, [0.915], replicates=400)
    assert row.ratio == pytest.approx(0.5) and row.low < 0.5 < row.high < 1


def test_a_level_one_arm_never_reaches_is_not_comparable():
    pruned = curve([0.95, 0.93, 0.90, 0.85], [800, 400, 200, 100])
    narrow = curve([0.93, 0.92, 0.91, 0.90], [800, 400, 200, 100])
    rows, _ = hypothesis.iso_accuracy(pruned, narrow, [0.94, 0.86], replicates=100)
    assert [r.comparable for r in rows] == [False, False]
    assert rows[0].opponent_where == hypothesis.ABOVE_RANGE and rows[1].opponent_where == hypothesis.BELOW_RANGE
    assert math.isnan(rows[0].ratio)


def test_without_per_example_correctness_only_the_seeds_are_resampled():
    pruned = [Point(p.target, p.sizes, p.accuracies, p.test_examples) for p in curve([0.95, 0.9, 0.85, 0.8],
                                                                                     [800, 400, 200, 100])]
    means, resampled = hypothesis.bootstrap_means([pruned], replicates=50)
    assert resampled == "seeds only" and means[0].shape == (50, 4)
    again, _ = hypothesis.bootstrap_means([pruned], replicates=50)
    assert np.array_equal(means[0], again[0])  # seeded


def test_levels_step_down_from_the_baseline_by_the_tolerance_within_the_arms_ranges():
    assert hypothesis.levels(0.95, 0.01, [[0.90, 0.93, 0.955], [0.925, 0.94]]) == pytest.approx(
        [0.95, 0.94, 0.93, 0.92, 0.91, 0.90])
    assert len(hypothesis.levels(0.99, 0.001, [[0.5, 0.99]], limit=5)) == 5


def runs_table(baseline, narrow, pruned, n=10_000):
    """A runs table: three seeds per point; ``narrow``/``pruned``: ``[(target, nonzeros, accuracy), ...]``."""
    rows = [dict(arm="baseline", tuning="tuned", target_sparsity=0.0, seed=s, test_accuracy=baseline + d,
                 test_examples=n, nonzero_params=1000, total_params=1000, widths="100")
            for s, d in enumerate((-0.001, 0.0, 0.001))]
    for arm, points in (("narrow", narrow), ("pruned", pruned)):
        for target, nonzeros, accuracy in points:
            rows += [dict(arm=arm, tuning="tuned", target_sparsity=target, seed=s, test_accuracy=accuracy + d,
                          test_examples=n, nonzero_params=nonzeros, budget=nonzeros, widths=f"w{nonzeros}",
                          total_params=nonzeros if arm == "narrow" else 1000) for s, d in enumerate((-0.001, 0.0,
                                                                                                     0.001))]
    return pd.DataFrame(rows)


def example_tables():
    """The example of the answer: small-dense keeps the baseline within 1 point down to 20%, large-sparse to 10%; at
    equal nonzeros a tie down to 80%, and small-dense ahead at 90% by 12 points."""
    runs = runs_table(0.95, [(0.5, 500, 0.949), (0.8, 200, 0.948), (0.9, 100, 0.90)],
                      [(0.5, 500, 0.949), (0.8, 200, 0.947), (0.9, 100, 0.946)])
    runs.loc[(runs.arm == "pruned") & (runs.target_sparsity == 0.9), "test_accuracy"] -= 0.166  # 78%: 12 points
    runs.loc[(runs.arm == "pruned") & (runs.target_sparsity == 0.9), "nonzero_params"] = 100
    return runs


def test_the_tolerance_table_has_one_row_per_arm_tuning_and_size_axis():
    table = hypothesis.tolerance_table(runs_table(0.95, [(0.5, 500, 0.949), (0.8, 200, 0.948), (0.9, 100, 0.90)],
                                                  [(0.5, 500, 0.95), (0.8, 200, 0.95), (0.9, 100, 0.95)]), 0.01)
    assert list(table.columns) == hypothesis.TOLERANCE_COLUMNS
    by_arm = table[table.size_axis == "nonzero_params"].set_index("arm")
    assert by_arm.loc["narrow", "status"] == "reached" and by_arm.loc["narrow", "ratio"] == pytest.approx(5.0)
    assert by_arm.loc["pruned", "status"] == "beyond-smallest" and by_arm.loc["pruned", "ratio"] == pytest.approx(10)
    assert set(table.size_axis) == {"nonzero_params", "total_params"}


def test_the_answer_says_how_far_each_arm_keeps_the_baseline_and_who_is_ahead_at_equal_nonzeros():
    runs = example_tables()
    contrast = HEADLINE
    comparison = compare.compare(runs, contrasts=[contrast])
    tolerance = hypothesis.tolerance_table(runs, 0.01)
    iso = hypothesis.iso_table(runs, [contrast], 0.01, replicates=200)
    text = hypothesis.answer(tolerance, comparison, iso, contrast, 0.01)
    assert text.startswith("The baseline (1,000 nonzeros) is over-parameterized about 5.0x: small-dense models keep "
                           "its accuracy within 1 point down to 20% of its parameters, large-sparse ones down to 20% "
                           "of its parameters.")
    delta = comparison.set_index("target_sparsity").loc[0.9, "delta"]
    assert "At equal nonzeros the two tie at 50% and 80% sparsity; at 90% sparsity small-dense is ahead by " \
           f"{compare.points(-delta)} points" in text
    assert compare.points(-delta) == "12.0"


def test_the_answer_says_when_the_study_cannot_tell():
    runs = runs_table(0.95, [(0.5, 500, 0.95)], [(0.5, 500, 0.95)], n=300)
    contrast = HEADLINE
    comparison = compare.compare(runs, contrasts=[contrast])
    tolerance = hypothesis.tolerance_table(runs, 0.01)
    text = hypothesis.answer(tolerance, comparison, None, contrast, 0.01)
    assert text.startswith("The study cannot tell whether the baseline (1,000 nonzeros) is over-parameterized")
    assert "the study resolves only differences of" in text
