"""compare() and the frontier on hand-made tables, where no framework can be imported."""

import os
import subprocess
import sys

import pandas as pd
import pytest
from conftest import without_imports

from widthvsprune.analysis import compare, diagnostics


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
    assert outlier.startswith("pruned untuned sparsity=0.8: lost 12.0% against its baseline")


def test_a_good_schedule_gives_no_warning():
    assert diagnostics.schedule_warnings(pruned_rows((20, 20, 20), (0.5, 0.5, 0.5), (0.01, 0.02, 0.03))) == []


def test_an_output_layer_with_almost_no_weights_for_a_class_is_warned_about():
    warnings = diagnostics.schedule_warnings(pruned_rows((20, 20, 20), (0.5, 0.5, 0.5), (0.01, 0.02, 0.03), kept=1))
    assert len(warnings) == 3 and all("prune_output=False" in w for w in warnings)
