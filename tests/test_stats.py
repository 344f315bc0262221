"""Statistics and the verdict rules on constructed numbers: pure, no framework."""

import math

import pytest
import scipy.stats

from widthvsprune.analysis import stats


def test_t_interval_by_hand():
    s = stats.summary([0.90, 0.92, 0.94])
    # mean 0.92, sd 0.02, t(0.975, 2) = 4.302653, half = 4.302653 * 0.02 / sqrt(3)
    assert s["mean"] == pytest.approx(0.92)
    assert s["std"] == pytest.approx(0.02)
    assert s["ci_high"] - s["mean"] == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)


def test_an_interval_of_the_mean_stays_within_the_range_of_accuracies():
    s = stats.summary([0.732, 0.770, 0.504])  # three seeds far apart: the t interval alone reaches past 1
    assert s["mean"] + 4.302653 * s["std"] / math.sqrt(3) > 1 and s["ci_high"] == 1.0 and 0 < s["ci_low"] < s["mean"]


def test_single_seed_has_no_interval_of_the_mean():
    s = stats.summary([0.9])
    assert s["n"] == 1 and math.isnan(s["ci_low"])


def test_equal_means_with_zero_seed_spread_still_get_an_interval_of_nonzero_width():
    diff = stats.difference([0.9, 0.9, 0.9], [0.9, 0.9, 0.9], n_test=360)
    assert diff.delta == 0 and diff.low < 0 < diff.high
    # Only the test set's error is left: two binomial variances with p shrunk to (0.9 * 360 + 2) / 364.
    p = (0.9 * 360 + 2) / 364
    assert diff.se == pytest.approx(math.sqrt(2 * p * (1 - p) / 360))
    assert diff.high - diff.low == pytest.approx(2 * 1.959964 * diff.se, rel=1e-5)  # infinite df: normal
    assert stats.verdict(diff, min_effect=0.0) == "tie"
    # Even a perfect score on both sides leaves an interval.
    assert stats.difference([1.0, 1.0], [1.0, 1.0], n_test=100).se > 0


def test_a_one_image_difference_on_a_small_test_set_is_not_a_win():
    one_image = 1 / 360
    diff = stats.difference([0.9 + one_image] * 3, [0.9] * 3, n_test=360)
    assert stats.verdict(diff, min_effect=0.0) == "tie"


def test_seed_spread_and_the_test_set_add_up_with_welch_satterthwaite_degrees_of_freedom():
    a, b = [0.90, 0.92, 0.94], [0.80, 0.81, 0.82, 0.83]
    diff = stats.difference(a, b, n_test=10_000)
    va, vb = 0.0004 / 3, (0.0001 * 5 / 3) / 4
    test = stats.binomial_variance(0.92, 10_000) + stats.binomial_variance(0.815, 10_000)
    assert diff.se == pytest.approx(math.sqrt(va + vb + test))
    assert diff.df == pytest.approx((va + vb + test) ** 2 / (va**2 / 2 + vb**2 / 3))
    assert diff.seed_spread


def test_a_difference_below_min_effect_is_a_tie():
    diff = stats.difference([0.930, 0.931, 0.929], [0.920, 0.921, 0.919], n_test=1_000_000)
    assert diff.low > 0  # clearly not zero ...
    assert stats.verdict(diff, min_effect=0.005) == "pruned"
    assert stats.verdict(diff, min_effect=0.02) == "tie"  # ... but smaller than what matters
    assert stats.verdict(stats.difference([0.920] * 3, [0.950] * 3, n_test=10**6), min_effect=0.02) == "narrow"


def test_the_correction_across_size_points_turns_a_borderline_win_into_a_tie():
    a, b = [0.950, 0.958, 0.954], [0.940, 0.948, 0.944]
    alone = stats.difference(a, b, n_test=20_000, comparisons=1)
    corrected = stats.difference(a, b, n_test=20_000, comparisons=5)
    assert alone.level == 0.95 and corrected.level == pytest.approx(0.99)
    assert stats.verdict(alone, min_effect=0.005) == "pruned"
    assert stats.verdict(corrected, min_effect=0.005) == "tie"
    assert corrected.low < 0 < alone.low


def test_an_underfilled_narrow_model_makes_a_pruned_win_inconclusive_but_a_narrow_win_stands():
    pruned_better = stats.difference([0.95] * 3, [0.90] * 3, n_test=10_000)
    assert stats.verdict(pruned_better, 0.01, fill=0.95) == "pruned"
    assert stats.verdict(pruned_better, 0.01, fill=0.83) == "inconclusive-underfilled"
    narrow_better = stats.difference([0.90] * 3, [0.95] * 3, n_test=10_000)
    assert stats.verdict(narrow_better, 0.01, fill=0.83) == "narrow"


def test_the_detectable_difference_shrinks_with_more_test_examples():
    small = stats.difference([0.9, 0.91], [0.9, 0.91], n_test=360)
    large = stats.difference([0.9, 0.91], [0.9, 0.91], n_test=100_000)
    assert large.detectable < small.detectable
    assert small.detectable == pytest.approx((small.high - small.delta) / small.se * small.se
                                             + 0.841621 * small.se, rel=1e-4)


def test_pareto_flags():
    sizes = [10, 20, 30, 20]
    scores = [0.5, 0.7, 0.6, 0.65]
    assert stats.pareto_flags(sizes, scores) == [True, True, False, False]


def test_an_interval_wider_than_the_range_of_accuracies_is_cut_to_it():
    # MNIST-1D at 95% sparsity: three pruned models near chance, three narrow ones far apart (Welch df near 2)
    diff = stats.difference([0.269, 0.242, 0.270], [0.732, 0.770, 0.504], n_test=1000, comparisons=4)
    assert diff.delta == pytest.approx(-0.408333, abs=1e-6)
    half = scipy.stats.t.ppf(0.5 + diff.level / 2, diff.df) * diff.se
    assert diff.delta - half < -1.0 and diff.low == -1.0  # the t interval alone reaches below -1
    assert -1.0 < diff.high < 1.0 and stats.verdict(diff, 0.01) == "tie"


def test_what_would_resolve_a_difference_is_the_fewest_seeds_or_test_examples_that_bring_it_under_the_target():
    arm, opponent = [0.950, 0.955, 0.945], [0.940, 0.946, 0.950]
    need = stats.needed(arm, opponent, n_test=100_000, target=0.01, comparisons=4)
    assert stats.difference(arm, opponent, 100_000, 4).detectable > 0.01  # three seeds do not resolve a point
    k = need.seeds
    assert stats.detectable_with(arm, opponent, k, 100_000, 4) < 0.01 <= stats.detectable_with(arm, opponent, k - 1,
                                                                                               100_000, 4)
    assert math.isinf(need.test_examples)  # the seeds' spread alone is too large, however large the test set
    assert need.examples_floor >= 0.01 and need.together is None


def test_with_a_small_test_set_more_seeds_alone_cannot_resolve_a_point():
    need = stats.needed([0.95, 0.951, 0.949], [0.94, 0.941, 0.939], n_test=360, target=0.01)
    assert math.isinf(need.seeds) and need.seeds_floor >= 0.01
    n = need.test_examples
    assert stats.detectable_with([0.95, 0.951, 0.949], [0.94, 0.941, 0.939], 3, n, 1) < 0.01
    assert stats.detectable_with([0.95, 0.951, 0.949], [0.94, 0.941, 0.939], 3, n - 1, 1) >= 0.01


def test_where_neither_alone_would_do_both_together_are_given_and_with_one_seed_nothing_is_guessed():
    need = stats.needed([0.95, 0.93, 0.96], [0.94, 0.92, 0.97], n_test=360, target=0.01, comparisons=4)
    assert math.isinf(need.seeds) and math.isinf(need.test_examples)
    seeds, examples = need.together
    assert stats.detectable_with([0.95, 0.93, 0.96], [0.94, 0.92, 0.97], seeds, examples, 4) < 0.01
    assert stats.needed([0.95], [0.94], n_test=360, target=0.01) == stats.Needed(None, None)


def test_the_lower_bound_is_one_sided():
    bound = stats.lower_bound([0.90, 0.91, 0.92], [0.93, 0.94, 0.95], n_test=10_000, confidence=0.95)
    two_sided = stats.difference([0.90, 0.91, 0.92], [0.93, 0.94, 0.95], n_test=10_000, confidence=0.90)
    assert bound.low == two_sided.low and bound.level == pytest.approx(0.90)


@pytest.mark.parametrize("below,above,expected", [
    ("tie", "pruned", "pruned"),  # beats even the larger narrow model: pruned wins
    ("narrow", "narrow", "narrow"),  # the smaller narrow model beats it: narrow wins
    ("narrow", "tie", "narrow"),
    ("tie", "tie", "tie"),  # tied with both
    ("pruned", "tie", "inconclusive-underfilled"),  # beats only the smaller one
    ("pruned", "narrow", "inconclusive-underfilled"),
    ("tie", "narrow", "inconclusive-underfilled"),  # ties the smaller one, loses to the larger one
    ("narrow", "pruned", "inconclusive-underfilled"),  # the brackets disagree
])
def test_an_underfilled_budget_is_bracketed_by_the_narrow_models_within_and_above_it(below, above, expected):
    verdict, reason = stats.bracket(below, above)
    assert verdict == expected and reason
