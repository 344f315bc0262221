"""The study runner end to end on a tiny study: records, CSVs, resuming."""

import io
import json
import math
import re

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study, without_imports

from widthvsprune import Recipe, Tuning, arms, keys, run_study, sizes, store
from widthvsprune.plan import planner
from widthvsprune.store.records import read_run

REQUIRED = ["study", "arm", "family", "dataset", "widths", "seed", "target_sparsity", "sparsity",
            "total_params", "nonzero_params", "test_accuracy", "val_accuracy", "epochs", "train_seconds"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    study = tiny_study(tuning=Tuning(oracle="random", trials=2, controls=True))
    stream = io.StringIO()
    result = run_study(study, out, stream=stream, workers=1)
    return study, out, result, stream.getvalue()


def records(root):
    return {p: json.loads(p.read_text()) for p in sorted(root.glob("runs/*/seed-*/record.json"))}


def test_runs_csv_has_one_row_per_trained_model(finished):
    study, out, result, text = finished
    root = out / study.name
    runs = pd.read_csv(root / "runs.csv")
    assert set(REQUIRED) <= set(runs.columns)
    for tuning in ("tuned", "untuned"):  # the tuned arms and the controls
        rows = runs[runs.tuning == tuning]
        assert (rows.arm == "baseline").sum() == len(study.seeds)
        assert (rows.arm == "pruned").sum() == len(study.seeds) * len(study.sparsities)
        assert (rows.arm == "narrow").sum() == len(study.seeds) * len(study.sparsities)
        assert sorted(rows[rows.arm == "baseline"].seed) == sorted(study.seeds)
    assert not result.failed
    assert re.search(rf"^runs\.csv: +{re.escape(str(root / 'runs.csv'))} \(\d+ models\)$", text, re.M)


def test_every_arm_is_searched_with_the_same_number_of_trials(finished):
    study, out, _, text = finished
    root = out / study.name
    survey = planning_survey(study, root)
    trials = {(s.arm, s.target): survey.searches[s.key]["trials"] for s in survey.plan.searches if s.trials}
    trainings = study.tuning.trainings  # its trials, and its best ones trained again on a second seed
    assert trials.pop(("baseline", 0.0)) == trainings
    assert trials.pop(("dense_finetuned", 0.0)) == trainings
    assert trials == {(arm, t): trainings for arm in ("pruned", "narrow") for t in study.sparsities}
    runs = pd.read_csv(root / "runs.csv")
    tuned = runs[runs.tuning == "tuned"]
    assert set(tuned.search_trials) == {study.tuning.trainings}
    assert (runs[runs.tuning == "untuned"].search_trials == 0).all()
    assert "Search compute per arm" in text and "Verdicts by tuning" in text


def test_no_search_trains_with_an_evaluation_seed(finished):
    study, out, _, _ = finished
    root = out / study.name
    survey = planning_survey(study, root)
    assert study.search_seed not in study.seeds
    assert {r["seed"] for r in survey.searches.values() if r.get("trials")} == {study.search_seed}
    for search in survey.plan.searches:
        if search.trials:
            assert json.loads((root / "runs" / search.key / "config.json").read_text())["search"]["seed"] == \
                study.search_seed
    # The pruned searches fine-tune baselines trained at the search seed (the tuned one and the recipe's), never an
    # evaluated one.
    helpers = [r for r in survey.plan.runs if r.role == "search"]
    assert sorted(r.tuning for r in helpers) == ["tuned", "untuned"]
    assert all(r.seed == study.search_seed and survey.states[r.id].done for r in helpers)
    assert all(set(s.needs) == {r.id for r in helpers} for s in survey.plan.searches if s.arm == "pruned")
    assert set(pd.read_csv(root / "runs.csv").seed) == set(study.seeds)


def test_a_pruned_model_and_its_narrow_opponent_take_the_same_optimizer_steps(finished):
    study, out, _, _ = finished
    runs = pd.read_csv(out / study.name / "runs.csv")
    assert set(runs[runs.arm == "pruned"].steps) == set(runs[runs.arm == "narrow"].steps)
    assert len(set(runs[runs.arm != "baseline"].steps)) == 1


def planning_survey(study, root):
    from widthvsprune.store import results

    return results.survey(study, root)


def test_pruned_rows_reach_their_target_sparsity(finished):
    study, out, _, _ = finished
    runs = pd.read_csv(out / study.name / "runs.csv")
    pruned = runs[runs.arm == "pruned"]
    assert np.all(np.abs(pruned.sparsity - pruned.target_sparsity) <= 0.005)
    assert np.all(pruned.total_params == runs[runs.arm == "baseline"].total_params.iloc[0])


def test_narrow_rows_fit_their_budget(finished):
    study, out, _, _ = finished
    runs = pd.read_csv(out / study.name / "runs.csv")
    narrow = runs[runs.arm == "narrow"]
    assert np.all(narrow.total_params <= narrow.budget)
    assert np.all((narrow.total_params >= 0.9 * narrow.budget) | narrow.note.notna())
    assert np.all(narrow.total_params == narrow.nonzero_params)
    for target in study.sparsities:
        pruned = runs[(runs.arm == "pruned") & (runs.target_sparsity == target)]
        budget = narrow[narrow.target_sparsity == target].budget
        assert set(budget) == {pruned.nonzero_params.min()}


def test_comparison_has_one_row_per_contrast_and_sparsity(finished):
    study, out, _, text = finished
    comparison = pd.read_csv(out / study.name / "comparison.csv")
    assert list(comparison.contrast) == [c.name for c in arms.contrasts(study) for _ in study.sparsities]
    assert list(comparison.target_sparsity) == list(study.sparsities) * 5  # the headline and its 2x2 of tunings
    # Two epochs leave some of the tiny models at chance accuracy: their size points say so ("diverged").
    assert set(comparison.verdict) <= {"pruned", "narrow", "tie", "inconclusive-underfilled", "diverged"}
    assert np.allclose(comparison.delta, comparison.arm_test_accuracy - comparison.opponent_test_accuracy)
    assert np.all(comparison.n_arm == len(study.seeds)) and np.all(comparison.n_opponent == len(study.seeds))
    assert np.allclose(comparison.ci_level, 1 - 0.05 / len(study.sparsities))
    assert "best vs best: large-sparse won at" in text


def test_frontier_and_figures_are_written(finished):
    study, out, _, _ = finished
    root = out / study.name
    frontier = pd.read_csv(root / "frontier.csv")
    assert {"arm", "tuning", "mean", "std", "n", "ci_low", "ci_high", "pareto", "sparse_bytes"} <= set(frontier.columns)
    assert frontier.pareto.any()
    for name in ("frontier.png", "frontier.svg", "report.md"):
        assert (root / name).stat().st_size > 0
    assert (root / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_record_counts_equal_a_recount_of_the_saved_weights(finished):
    study, out, _, _ = finished
    for path, record in records(out / study.name).items():
        weights = store.read_weights(path.parent / "weights.npz")
        assert record["total_params"] == sum(int(w.size) for w in weights)
        if record["arm"] == "pruned":
            assert record["nonzero_params"] == sum(int(np.count_nonzero(w)) for w in weights)
        else:  # dense models count every parameter
            assert record["nonzero_params"] == record["total_params"]
        kernels = [w for w in weights if w.ndim > 1]
        if record["arm"] == "pruned":
            zeros = sum(w.size - np.count_nonzero(w) for w in kernels)
            assert math.isclose(record["sparsity"], zeros / sum(w.size for w in kernels), abs_tol=1e-9)
            assert record["sparse_bytes"] == sizes.sparse_bytes(
                [sizes.LayerWeights("l", k, b) for k, b in zip(weights[::2], weights[1::2])])


def test_each_run_folder_holds_its_config_history_and_record(finished):
    study, out, _, _ = finished
    for path, record in records(out / study.name).items():
        config = json.loads((path.parent / "config.json").read_text())
        assert config["arm"] == record["arm"] and config["seed"] == record["seed"]
        history = pd.read_csv(path.parent / "history.csv")
        assert len(history) >= 1 and "val_accuracy" in history
        key = path.parent.parent.name
        assert record["key"] == key


def test_second_run_trains_nothing(finished):
    study, out, _, _ = finished
    before = {p: p.stat().st_mtime_ns for p in records(out / study.name)}
    stream = io.StringIO()
    result = run_study(study, out, stream=stream, workers=2)
    assert result.trained == 0
    assert {p: p.stat().st_mtime_ns for p in records(out / study.name)} == before
    assert result.workers == 1  # a finished study starts no helper process


def pruned_folder(study, root, target, seed):
    run = next(r for r in planner.plan(study).runs_of("pruned", target) if r.seed == seed)
    return store.seed_dir(root, run.key, seed)


def retrain_after(study, out, damage):
    """Damages one run's files, runs the study again; returns (result, output, mtimes of the others)."""
    root = out / study.name
    folder = pruned_folder(study, root, 0.9, 1)
    damage(folder)
    others = {p: p.stat().st_mtime_ns for p in root.glob("runs/*/seed-*/record.json") if p.parent != folder}
    stream = io.StringIO()
    result = run_study(study, out, stream=stream, workers=1)
    assert records_ok(folder)
    assert {p: p.stat().st_mtime_ns for p in others} == others  # nothing else was retrained
    return result, stream.getvalue()


def records_ok(folder):
    return read_run(folder).status == "ok"


def test_deleting_one_record_retrains_exactly_that_run(finished):
    study, out, _, _ = finished
    result, _ = retrain_after(study, out, lambda folder: store.record_json(folder).unlink())
    assert result.trained == 1


def test_a_truncated_weights_file_is_retrained_and_nothing_else(finished):
    study, out, _, _ = finished

    def truncate(folder):
        path = store.weights_npz(folder)
        path.write_bytes(path.read_bytes()[:100])

    result, output = retrain_after(study, out, truncate)
    assert result.trained == 1
    assert "pruned untuned sparsity=0.9 seed=1 (uniform): weights.npz does not match its checksum" in output


def test_a_truncated_record_is_retrained_and_nothing_else(finished):
    study, out, _, _ = finished

    def truncate(folder):
        path = store.record_json(folder)
        path.write_text(path.read_text()[:50])

    result, output = retrain_after(study, out, truncate)
    assert result.trained == 1
    assert "pruned untuned sparsity=0.9 seed=1 (uniform): record.json is unreadable" in output


def test_run_keys_are_stable_and_ignore_the_seed():
    def key(study, arm, target=0.0):
        return next(r.key for r in planner.plan(study).runs if r.arm == arm and r.target == target)

    study = tiny_study(tuning=Tuning(controls=True))
    assert key(study, "baseline") == key(tiny_study(seeds=(5,), tuning=Tuning(controls=True)), "baseline")
    assert key(study, "baseline") != key(tiny_study(baseline=Recipe(epochs=3, batch_size=64),
                                                    tuning=Tuning(controls=True)), "baseline")
    assert key(study, "pruned", 0.5) != key(study, "pruned", 0.9)
    # Pinned: the canonical text of a run configuration must not drift.
    assert keys.canonical({"b": [1, 2], "a": {"y": 0.5, "x": None}}) == '{"a":{"x":null,"y":0.5},"b":[1,2]}'


FRAMEWORKS = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "keras", "keras_tuner", "jax")


def test_reports_status_and_dry_run_work_where_tensorflow_cannot_be_imported(finished, tmp_path):
    import subprocess
    import sys

    study, out, _, _ = finished
    root = out / study.name
    env = without_imports(tmp_path)

    def python(*args):
        return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)

    blocked = python("-c", "import tensorflow")
    assert blocked.returncode == 1 and "cannot be imported here" in blocked.stderr
    # The planner, the store, the statistics and the reports import no framework, even while regenerating.
    (root / "runs.csv").unlink()
    code = ("import sys\nfrom widthvsprune import arms, pruning, store, study\n"
            "from widthvsprune.analysis import report, stats\nfrom widthvsprune.plan import planner\n"
            "from widthvsprune.store import records, results\n"
            "report.write_reports(sys.argv[1])\n"
            f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORKS!r}))\n"
            "assert not loaded, loaded\n")
    regenerated = python("-c", code, root)
    assert regenerated.returncode == 0, regenerated.stderr
    survey = planning_survey(study, root)
    evaluated = [r for r in survey.plan.runs if r.role == "eval"]
    assert len(pd.read_csv(root / "runs.csv")) == len(evaluated)
    report = python("-m", "widthvsprune", "report", root)
    assert report.returncode == 0 and "large-sparse won at" in report.stdout, report.stderr
    status = python("-m", "widthvsprune", "status", root)
    narrow = len(survey.plan.runs_of("narrow"))
    assert status.returncode == 0 and f"narrow    {narrow}/{narrow} done, 0 failed, 0 missing" in status.stdout, \
        status.stdout + status.stderr
    path = tmp_path / "tiny.py"
    path.write_text(f"import json\nfrom widthvsprune.study import study_from_dict\n"
                    f"STUDY = study_from_dict(json.loads({json.dumps(json.dumps(study.to_dict()))}))\n")
    dry = python("-m", "widthvsprune", "run", path, "--out", out, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    searched = [s for s in survey.plan.searches if s.trials]
    assert dry.stdout.count(": done") == len(survey.plan.runs) + len(searched) and "to train" not in dry.stdout


def test_the_benchmark_replays_every_training_of_a_finished_study(finished):
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "throughput.py"
    spec = importlib.util.spec_from_file_location("throughput", path)
    throughput = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(throughput)
    study, out, _, _ = finished
    root = out / study.name
    jobs = throughput.trainings_of(study, out)
    trials = sum(len(list(s.glob("trial_*/trial.json"))) for s in root.glob("runs/*/search"))
    assert len(jobs) == len(records(root)) + trials  # every model the runner trained, search trials included
    seen = set()
    for job in jobs:  # each model that starts from a baseline comes after it
        assert job.needs is None or job.needs in seen
        seen.add(job.id)
    pruned_trials = [job for job in jobs if job.arm == "trial" and job.spec.prune is not None]
    assert len(pruned_trials) == study.tuning.trials * len(study.sparsities)
    assert all(job.needs[1] == study.search_seed for job in pruned_trials)  # a baseline at the search seed
