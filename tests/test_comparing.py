"""compare() and the frontier on hand-made tables, where no framework can be imported."""

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import without_imports

from widthvsprune.analysis import compare, diagnostics, stats


def hand_made():
    """Three seeds per arm at two size points, tuned arms only, as a user's own experiments might give."""
    rows = []
    for target, pruned, narrow, nonzeros, narrow_params in [(0.5, [0.95, 0.96, 0.94], [0.90, 0.91, 0.92], 1000, 990),
                                                            (0.9, [0.80, 0.81, 0.79], [0.80, 0.80, 0.81], 200, 150)]:
        for seed, (p, n) in enumerate(zip(pruned, narrow)):
            rows.append(dict(arm="pruned", target_sparsity=target, seed=seed, test_accuracy=p, test_examples=10_000,
                             nonzero_params=nonzeros + seed, total_params=2000))
            rows.append(dict(arm="narrow", target_sparsity=target, seed=seed, test_accuracy=n, test_examples=10_000,
                             nonzero_params=narrow_params, total_params=narrow_params, budget=nonzeros,
                             widths="10x5"))
    rows.append(dict(arm="baseline", target_sparsity=0.0, seed=0, test_accuracy=0.97, test_examples=10_000,
                     nonzero_params=2000, total_params=2000))
    return pd.DataFrame(rows)


def test_compare_gives_the_documented_table():
    table = compare.compare(hand_made(), min_effect=0.01)
    assert list(table.columns) == compare.COMPARISON_COLUMNS
    assert list(table.contrast) == ["tuned vs tuned"] * 2
    first, second = table.iloc[0], table.iloc[1]
    assert first.delta == pytest.approx(0.04) and first.ci_level == pytest.approx(0.975)  # 2 size points
    assert first.delta_ci_low > 0 and first.verdict == "pruned"
    assert (first.arm, first.opponent) == ("pruned", "narrow")
    assert first.arm_nonzero_params == 1000 and first.opponent_params == 990 and first.opponent_fill == 0.99
    assert second.opponent_fill == 0.75 and second.verdict == "tie"
    assert (first.n_arm, first.n_opponent, first.test_examples) == (3, 3, 10_000)


def test_compare_refuses_a_table_without_the_columns_it_needs():
    with pytest.raises(ValueError, match=r"Expected a runs table with the columns .* without \['test_examples'\]"):
        compare.compare(hand_made().drop(columns="test_examples"))


def test_frontier_flags_the_pareto_points():
    frontier = compare.frontier(hand_made())
    assert set(frontier.arm) == {"baseline", "pruned", "narrow"}
    assert frontier.pareto.any() and len(frontier) == 5


def test_compare_runs_where_tensorflow_cannot_be_imported(tmp_path):
    code = ("import sys\nsys.path.insert(0, sys.argv[1])\nimport test_comparing\nimport widthvsprune\n"
            "table = widthvsprune.compare(test_comparing.hand_made())\n"
            "print(list(table.verdict))\n"
            "assert not {'tensorflow', 'tf_keras', 'keras'} & {m.split('.')[0] for m in sys.modules}\n")
    env = without_imports(tmp_path, ("tensorflow", "tf_keras", "keras", "jax"))
    result = subprocess.run([sys.executable, "-c", code, os.path.dirname(__file__)], capture_output=True, text=True,
                            env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['pruned', 'tie']"


def pruned_rows(updates, recovery, drops, kept=10):
    return pd.DataFrame([dict(arm="pruned", tuning="untuned", target_sparsity=t, seed=0, mask_updates=u,
                              recovery_fraction=r, accuracy_drop=d, output_kept_per_class_min=kept)
                         for t, u, r, d in zip((0.5, 0.8, 0.9), updates, recovery, drops)])


def test_a_schedule_with_two_mask_updates_and_little_recovery_is_warned_about_with_the_fix():
    runs = pruned_rows(updates=(20, 2, 20), recovery=(0.5, 0.03, 0.5), drops=(0.01, 0.12, 0.03))
    warnings = diagnostics.schedule_warnings(runs)
    [schedule] = [w for w in warnings if "masks changed" in w]
    assert schedule.startswith("pruned untuned sparsity=0.8: masks changed 2 time(s) and 3% of the fine-tune")
    assert "lower pruning.frequency" in schedule and "pruning.end_fraction" in schedule
    [outlier] = [w for w in warnings if "neighbouring" in w]
    assert outlier.startswith("pruned untuned sparsity=0.8: lost 12.0 points against its baseline")
    assert "neighbouring sizes (1.0, 3.0 points)" in outlier and "%" not in outlier
    assert schedule.endswith("(drop against its baseline: +12.0 points)")


def test_a_good_schedule_gives_no_warning():
    assert diagnostics.schedule_warnings(pruned_rows((20, 20, 20), (0.5, 0.5, 0.5), (0.01, 0.02, 0.03))) == []


def test_an_output_layer_with_almost_no_weights_for_a_class_is_warned_about():
    warnings = diagnostics.schedule_warnings(pruned_rows((20, 20, 20), (0.5, 0.5, 0.5), (0.01, 0.02, 0.03), kept=1))
    assert len(warnings) == 3 and all("prune_output=False" in w for w in warnings)


def digits_rows(arm, target, accuracies, diverged=None, **extra):
    """Rows of a runs table measured on scikit-learn's digits (360 test images, 10 classes)."""
    return [dict(arm=arm, target_sparsity=target, seed=seed, test_accuracy=a, test_examples=360,
                 nonzero_params=extra.get("nonzero_params", 1000), total_params=extra.get("total_params", 1000),
                 **({} if diverged is None else {"diverged": diverged}),
                 **{k: v for k, v in extra.items() if k not in ("nonzero_params", "total_params")})
            for seed, a in enumerate(accuracies)]


def test_a_recipe_at_learning_rate_50_ends_at_chance_and_its_size_point_says_diverged_not_tie():
    # An MLP trained on digits at learning rate 50 gives 9% test accuracy: every class guessed alike.
    runs = pd.DataFrame(digits_rows("pruned", 0.5, [0.0917, 0.1028], diverged=True)
                        + digits_rows("narrow", 0.5, [0.0833, 0.1028], diverged=True, budget=1000)
                        + digits_rows("pruned", 0.9, [0.90, 0.91], diverged=False)
                        + digits_rows("narrow", 0.9, [0.89, 0.92], diverged=False, budget=1000))
    table = compare.compare(runs).set_index("target_sparsity")
    assert table.loc[0.5, "verdict"] == "diverged" and table.loc[0.9, "verdict"] == "tie"
    assert table.loc[0.5, "note"].startswith("2 of 2 pruned model(s) and 2 of 2 narrow model(s) ended at chance")
    assert (table.loc[0.5, "arm_diverged"], table.loc[0.5, "opponent_diverged"]) == (2, 2)
    assert stats.at_chance(0.09, 10, 360) and not stats.at_chance(0.20, 10, 360)
    [warning] = [w for w in diagnostics.divergence_warnings(runs) if w.startswith("pruned")]
    assert "2 of 2 model(s) ended at chance accuracy (test accuracy 9.2%, 10.3%)" in warning
    assert "diverged" in compare.sentence(compare.compare(runs))


def test_a_runs_table_without_the_diverged_column_counts_no_model_as_diverged():
    runs = pd.DataFrame(digits_rows("pruned", 0.5, [0.09, 0.10]) + digits_rows("narrow", 0.5, [0.09, 0.10]))
    assert compare.compare(runs).verdict.iloc[0] == "tie" and diagnostics.divergence_warnings(runs) == []


def test_a_record_written_before_diverged_existed_gets_it_from_its_accuracy_and_output_layer():
    from widthvsprune.analysis import tables

    record = {"test_accuracy": 0.0917, "test_examples": 360, "layers": [{"bias_params": 64}, {"bias_params": 10}]}
    assert tables.diverged(record) and not tables.diverged({**record, "test_accuracy": 0.5})
    assert tables.diverged({**record, "diverged": False}) is False


def bracketed(pruned, within, above):
    """The seed CNN at 80% sparsity: a 4,100-nonzero budget, 2 filters (3,410) within it, 3 (5,110) above it."""
    return pd.DataFrame(
        [dict(arm="pruned", target_sparsity=0.8, seed=s, test_accuracy=a, test_examples=10_000,
              nonzero_params=4100, total_params=20410, widths="12") for s, a in enumerate(pruned)]
        + [dict(arm="narrow", target_sparsity=0.8, seed=s, test_accuracy=a, test_examples=10_000,
                nonzero_params=3410, total_params=3410, budget=4100, widths="2", role="eval")
           for s, a in enumerate(within)]
        + [dict(arm="narrow", target_sparsity=0.8, seed=s, test_accuracy=a, test_examples=10_000,
                nonzero_params=5110, total_params=5110, budget=4100, widths="3", role="bracket")
           for s, a in enumerate(above)])


@pytest.mark.parametrize("pruned,within,above,verdict", [
    ([0.95, 0.951, 0.949], [0.90, 0.901, 0.899], [0.92, 0.921, 0.919], "pruned"),
    ([0.90, 0.901, 0.899], [0.95, 0.951, 0.949], [0.96, 0.961, 0.959], "narrow"),
    ([0.95, 0.951, 0.949], [0.90, 0.901, 0.899], [0.95, 0.951, 0.949], "inconclusive-underfilled"),
    ([0.95, 0.951, 0.949], [0.95, 0.951, 0.949], [0.95, 0.951, 0.949], "tie"),
])
def test_the_seed_cnn_at_80_percent_is_judged_between_the_narrow_models_within_and_above_its_budget(
        pruned, within, above, verdict):
    [row] = compare.compare(bracketed(pruned, within, above)).itertuples()
    assert row.verdict == verdict
    assert (row.opponent_params, row.above_params, row.opponent_widths, row.above_widths) == (3410, 5110, "2", "3")
    assert row.opponent_fill == pytest.approx(3410 / 4100) and row.above_fill == pytest.approx(5110 / 4100)
    assert row.above_delta == pytest.approx(np.mean(pruned) - np.mean(above))
    assert "bracketed (3,410 parameters, 83% of the budget; 5,110, 125%)" in row.note
    assert row.n_opponent == 3  # the models above the budget are not the size point's opponents


def test_without_the_model_above_the_budget_a_win_over_an_underfilled_one_stays_inconclusive():
    runs = bracketed([0.95, 0.951, 0.949], [0.90, 0.901, 0.899], [])
    [row] = compare.compare(runs).itertuples()
    assert row.verdict == "inconclusive-underfilled" and np.isnan(row.above_params)


def test_the_sentence_gives_wins_losses_ties_and_what_would_resolve_min_effect():
    text = compare.sentence(compare.compare(hand_made()), min_effect=0.01)
    assert text.startswith("tuned vs tuned: large-sparse won at 1 of 2 sizes, small-dense at 0, 1 tie; with 3 seeds "
                           "and 10,000 test examples the study resolves differences of")
    assert "(80% power, corrected)" in text
    rows = compare.compare(hand_made())
    assert f"differences of {compare.points(rows.detectable.min())} to {compare.points(rows.detectable.max())} " \
           "points" in text
