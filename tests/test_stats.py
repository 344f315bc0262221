"""Statistics and the verdict rule on hand-written numbers: pure, no TensorFlow."""

import math

import pytest

from widthvsprune import stats


def test_t_interval_by_hand():
    s = stats.summary([0.90, 0.92, 0.94])
    # mean 0.92, sd 0.02, t(0.975, 2) = 4.302653, half = 4.302653 * 0.02 / sqrt(3)
    assert s["mean"] == pytest.approx(0.92)
    assert s["std"] == pytest.approx(0.02)
    assert s["ci_high"] - s["mean"] == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)


def test_single_seed_has_no_interval():
    s = stats.summary([0.9])
    assert s["n"] == 1 and math.isnan(s["ci_low"])


def test_verdict_pruned_when_interval_excludes_zero():
    verdict, delta, low, high = stats.verdict([0.95, 0.96, 0.955], [0.90, 0.91, 0.905])
    assert verdict == "pruned" and delta == pytest.approx(0.05) and low > 0


def test_verdict_narrow_when_interval_is_below_zero():
    assert stats.verdict([0.80, 0.81, 0.805], [0.90, 0.91, 0.905])[0] == "narrow"


def test_verdict_tie_when_interval_straddles_zero():
    verdict, delta, low, high = stats.verdict([0.90, 0.95, 0.85], [0.91, 0.89, 0.90])
    assert verdict == "tie" and low < 0 < high


def test_verdict_with_one_seed_uses_the_margin():
    assert stats.verdict([0.903], [0.900], tie_margin=0.005)[0] == "tie"
    assert stats.verdict([0.91], [0.90], tie_margin=0.005)[0] == "pruned"
    assert stats.verdict([0.89], [0.90], tie_margin=0.005)[0] == "narrow"


def test_welch_interval_matches_a_worked_example():
    a, b = [1.0, 2.0, 3.0, 4.0], [2.0, 4.0, 6.0]
    low, high = stats.welch_interval(a, b)
    # var(a)/4 = (5/3)/4, var(b)/3 = 4/3: se = sqrt(1.75) = 1.322876;
    # Welch df = 1.75**2 / ((5/12)**2/3 + (4/3)**2/2) = 3.234719; t(0.975, df) = 3.055713
    assert (low + high) / 2 == pytest.approx(-1.5)
    assert high - low == pytest.approx(2 * 1.322876 * 3.055713, rel=1e-5)


def test_pareto_flags():
    sizes = [10, 20, 30, 20]
    scores = [0.5, 0.7, 0.6, 0.65]
    assert stats.pareto_flags(sizes, scores) == [True, True, False, False]
