"""What the answer stands on: a dense reference trained as long as the arms, no headline arm under its own recipe,
schedules that prune gradually, and advice the dataset can follow."""

import io

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study

from widthvsprune import Pruning, Recipe, Study, Tuning, arms, run_study
from widthvsprune.analysis import compare, diagnostics
from widthvsprune.analysis.hypothesis import reference_point, trained_baseline
from widthvsprune.pruning import schedules


@pytest.fixture(scope="module")
def weak(tmp_path_factory):
    """A real study whose baseline recipe is too short (1 epoch at a small learning rate) and whose searches may
    only choose learning rates far under every recipe's (so each search chooses worse than its recipe); the
    pruning frequency is left unset."""
    out = tmp_path_factory.mktemp("results")
    study = tiny_study(
        "weak", sparsities=(0.5,), seeds=(0, 1),
        baseline=Recipe(epochs=1, batch_size=64, learning_rate=3e-3),
        finetune=Recipe(epochs=6, batch_size=64, learning_rate=3e-3),
        pruning=Pruning(end_fraction=0.5),
        tuning=Tuning(oracle="random", trials=2, controls=True, learning_rate_min=1e-6, learning_rate_max=2e-6),
        engine="jax")
    stream = io.StringIO()
    result = run_study(study, out, stream=stream, workers=1)
    assert not result.failed
    root = out / study.name
    return study, root, pd.read_csv(root / "runs.csv"), stream.getvalue()


def test_an_under_trained_baseline_is_said_first_and_the_longer_trained_reference_is_used(weak):
    study, root, runs, text = weak
    reference = reference_point(runs)
    assert reference.arm == "dense_finetuned"  # the baseline trained as long as the arms
    trained = trained_baseline(runs)
    assert trained.arm == "baseline"
    assert reference.mean - trained.mean > study.tolerance
    answer = (root / "report.md").read_text().split("\n\n")[1]
    assert answer.startswith("The baseline recipe is under-trained: the wide dense model trained as long as the arms")
    assert f"{100 * (reference.mean - trained.mean):.1f} points above the baseline's" in answer
    tolerance = pd.read_csv(root / "tolerance.csv")
    assert set(tolerance.reference) == {f"dense_finetuned {reference.tuning}"}
    assert np.allclose(tolerance.baseline_accuracy, reference.mean)
    assert "\nThe baseline recipe is under-trained" in text  # the console's answer too, after the progress lines


def test_the_dense_reference_trains_as_long_as_the_pruned_arm_from_the_same_baselines(weak):
    study, root, runs, _ = weak
    dense = runs[runs.arm == "dense_finetuned"]
    pruned = runs[runs.arm == "pruned"]
    assert sorted(dense.tuning) == ["tuned", "tuned", "untuned", "untuned"]
    assert set(dense.steps) == set(pruned.steps)
    assert (dense.sparsity == 0).all() and (dense.nonzero_params == dense.total_params).all()
    base = runs[runs.arm == "baseline"].total_params.iloc[0]
    assert (dense.total_params == base).all()


def test_a_search_that_chose_worse_than_its_recipe_is_not_what_the_headline_compares(weak):
    study, root, runs, _ = weak
    chosen = compare.configurations(runs, "narrow")[0.5]
    assert chosen[1]["untuned"] > chosen[1]["tuned"]  # the forced search scored under the recipe on validation
    assert chosen[0] == "untuned"
    comparison = pd.read_csv(root / "comparison.csv")
    head = comparison[comparison.contrast == arms.headline(study).name].iloc[0]
    assert head.opponent_configuration == "untuned"
    narrow = runs[(runs.arm == "narrow") & (runs.tuning == "untuned")]
    assert head.opponent_test_accuracy == pytest.approx(narrow.test_accuracy.mean())
    report = (root / "report.md").read_text()
    warning = next(line for line in report.splitlines() if line.startswith("- narrow sparsity=0.5: the search's"))
    assert f"{chosen[1]['tuned']:.4f}" in warning and f"{chosen[1]['untuned']:.4f}" in warning
    assert "narrow used" in report and "recipe" in report


def test_a_study_that_sets_no_frequency_updates_masks_at_least_ten_times(weak):
    study, root, runs, text = weak
    assert study.pruning.frequency is None
    pruned = runs[runs.arm == "pruned"]
    assert (pruned.mask_updates >= 10).all()
    assert "warning: pruning.frequency" not in text


def test_the_automatic_frequency_gives_its_updates_whatever_the_length():
    for examples, epochs, end in ((1437, 2, 0.75), (3600, 56, 0.5), (300, 8, 0.5), (100, 1, 1.0)):
        steps = schedules.schedule_steps(examples, 32, epochs, None, 0, end)
        span = steps.end_step - steps.begin_step
        assert schedules.mask_updates(steps) == min(span, schedules.AUTO_UPDATES) or \
            schedules.mask_updates(steps) >= schedules.AUTO_UPDATES
        assert steps.frequency == schedules.auto_frequency(span)
    explicit = schedules.schedule_steps(1437, 32, 2, 100, 0, 0.75)
    assert explicit.frequency == 67 and schedules.mask_updates(explicit) == 1  # a set frequency is respected


def test_a_schedule_with_few_updates_is_named_before_training():
    study = Study(dataset="digits", family="mlp", finetune=Recipe(epochs=2), pruning=Pruning(frequency=100))
    notes = arms.get("pruned").notes(study, 1437)
    assert len(notes) == 1
    assert notes[0].startswith("warning: pruning.frequency=100 updates the pruned recipe's masks 1 time(s)")
    assert arms.get("pruned").notes(Study(dataset="digits", family="mlp", finetune=Recipe(epochs=2)), 1437) == []


def _rows(arm, tuning, val, target=0.5, role="eval", seeds=(0, 1)):
    return [{"arm": arm, "tuning": tuning, "target_sparsity": target, "seed": s, "val_accuracy": val,
             "test_accuracy": val, "test_examples": 100, "nonzero_params": 10, "total_params": 10, "role": role}
            for s in seeds]


def test_the_better_configuration_is_chosen_on_validation_ties_going_to_the_search():
    runs = pd.DataFrame(_rows("narrow", "tuned", 0.8) + _rows("narrow", "untuned", 0.9)
                        + _rows("narrow", "untuned", 0.2, role="bracket")
                        + _rows("narrow", "tuned", 0.7, target=0.9) + _rows("narrow", "untuned", 0.7, target=0.9))
    assert compare.configurations(runs, "narrow") == {0.5: ("untuned", {"tuned": 0.8, "untuned": 0.9}),
                                                      0.9: ("tuned", {"tuned": 0.7, "untuned": 0.7})}
    best = compare.select(runs, "narrow", compare.BEST)
    assert set(best[best.target_sparsity == 0.5].tuning) == {"untuned"}
    assert (best.role == "bracket").sum() == 2  # the bracket models follow the chosen configuration
    assert set(best[best.target_sparsity == 0.9].tuning) == {"tuned"}
    assert len(diagnostics.tuning_warnings(runs)) == 1


def test_the_reference_is_the_best_wide_dense_configuration_on_validation():
    runs = pd.DataFrame(_rows("baseline", "tuned", 0.6, 0.0) + _rows("baseline", "untuned", 0.7, 0.0)
                        + _rows("dense_finetuned", "tuned", 0.65, 0.0) + _rows("dense_finetuned", "untuned", 0.9, 0.0))
    assert (reference_point(runs).arm, reference_point(runs).tuning) == ("dense_finetuned", "untuned")
    assert (trained_baseline(runs).arm, trained_baseline(runs).tuning) == ("baseline", "untuned")


def test_each_search_chooses_the_best_mean_of_its_best_trials_trained_again_on_a_second_seed(weak):
    import json

    study, root, runs, _ = weak
    assert study.tuning.rescored == 2 and study.rescore_seed not in (*study.seeds, study.search_seed)
    results = [json.loads(p.read_text()) for p in sorted(root.glob("runs/*/search/result.json"))]
    searched = [r for r in results if r.get("rescored")]
    assert len(searched) == 4  # baseline, dense reference, and the pruned and narrow searches of the size point
    for result in searched:
        means = [sum(entry["scores"]) / 2 for entry in result["rescored"]]
        best = result["rescored"][means.index(max(means))]
        assert result["values"] == best["values"] and result["val_accuracy"] == pytest.approx(max(means))
        assert result["trials"] == study.tuning.trials + len(result["rescored"])
    saved = sorted(root.glob("runs/*/search/rescore.json"))
    assert len(saved) == 4 and all(json.loads(p.read_text())["seed"] == study.rescore_seed for p in saved)


def test_the_choice_among_rescored_trials_is_the_best_mean_ties_to_the_first():
    from widthvsprune.run import rescoring

    ranked = [{"trial": "3", "values": {"a": 3}, "score": 0.92}, {"trial": "0", "values": {"a": 0}, "score": 0.90},
              {"trial": "1", "values": {"a": 1}, "score": 0.50}]
    assert rescoring.choose(ranked, {"3": 0.84, "0": 0.91}) == (ranked[1], pytest.approx(0.905))
    assert rescoring.choose(ranked, {"3": 0.88, "0": 0.90})[0] is ranked[0]  # 0.90 each: the first on its seed
    assert rescoring.choose(ranked, {"3": float("nan"), "0": 0.2})[0] is ranked[1]  # a failed model scores 0
    assert rescoring.choose(ranked, {}) == (ranked[0], 0.92)
