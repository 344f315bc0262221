"""The study runner end to end on a tiny study: records, CSVs, resuming."""

import io
import json
import math

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study

from widthvsprune import Recipe, keys, measuring, planning, run_study, storing
from widthvsprune.records import read_run

REQUIRED = ["study", "arm", "family", "dataset", "widths", "seed", "target_sparsity", "sparsity",
            "total_params", "nonzero_params", "test_accuracy", "val_accuracy", "epochs", "train_seconds"]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    study = tiny_study()
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
    assert (runs.arm == "baseline").sum() == len(study.seeds)
    assert (runs.arm == "pruned").sum() == len(study.seeds) * len(study.sparsities)
    assert (runs.arm == "narrow").sum() == len(study.seeds) * len(study.sparsities)
    assert sorted(runs[runs.arm == "baseline"].seed) == sorted(study.seeds)
    assert not result.failed
    assert f"runs.csv:       {root / 'runs.csv'}" in text


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


def test_comparison_has_one_row_per_sparsity(finished):
    study, out, _, text = finished
    comparison = pd.read_csv(out / study.name / "comparison.csv")
    assert list(comparison.target_sparsity) == list(study.sparsities)
    assert set(comparison.verdict) <= {"pruned", "narrow", "tie"}
    assert np.allclose(comparison.delta, comparison.pruned_test_accuracy - comparison.narrow_test_accuracy)
    assert np.all(comparison.n_seeds == len(study.seeds))
    assert "large-sparse beat small-dense at" in text


def test_frontier_and_figures_are_written(finished):
    study, out, _, _ = finished
    root = out / study.name
    frontier = pd.read_csv(root / "frontier.csv")
    assert {"arm", "mean", "std", "n", "ci_low", "ci_high", "pareto", "sparse_bytes"} <= set(frontier.columns)
    assert frontier.pareto.any()
    for name in ("frontier.png", "frontier.svg", "report.md"):
        assert (root / name).stat().st_size > 0
    assert (root / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_record_counts_equal_a_recount_of_the_saved_weights(finished):
    study, out, _, _ = finished
    for path, record in records(out / study.name).items():
        weights = storing.read_weights(path.parent / "weights.npz")
        assert record["total_params"] == sum(int(w.size) for w in weights)
        if record["arm"] == "pruned":
            assert record["nonzero_params"] == sum(int(np.count_nonzero(w)) for w in weights)
        else:  # dense models count every parameter
            assert record["nonzero_params"] == record["total_params"]
        kernels = [w for w in weights if w.ndim > 1]
        if record["arm"] == "pruned":
            zeros = sum(w.size - np.count_nonzero(w) for w in kernels)
            assert math.isclose(record["sparsity"], zeros / sum(w.size for w in kernels), abs_tol=1e-9)
            assert record["sparse_bytes"] == measuring.sparse_bytes(
                [measuring.LayerWeights("l", k, b) for k, b in zip(weights[::2], weights[1::2])])


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
    run = next(r for r in planning.plan(study).runs_of("pruned", target) if r.seed == seed)
    return storing.seed_dir(root, run.key, seed)


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
    result, _ = retrain_after(study, out, lambda folder: storing.record_json(folder).unlink())
    assert result.trained == 1


def test_a_truncated_weights_file_is_retrained_and_nothing_else(finished):
    study, out, _, _ = finished

    def truncate(folder):
        path = storing.weights_npz(folder)
        path.write_bytes(path.read_bytes()[:100])

    result, output = retrain_after(study, out, truncate)
    assert result.trained == 1
    assert "pruned sparsity=0.9 seed=1 (layerwise): weights.npz does not match its checksum" in output


def test_a_truncated_record_is_retrained_and_nothing_else(finished):
    study, out, _, _ = finished

    def truncate(folder):
        path = storing.record_json(folder)
        path.write_text(path.read_text()[:50])

    result, output = retrain_after(study, out, truncate)
    assert result.trained == 1
    assert "pruned sparsity=0.9 seed=1 (layerwise): record.json is unreadable" in output


def test_run_keys_are_stable_and_ignore_the_seed():
    def key(study, arm, target=0.0):
        return next(r.key for r in planning.plan(study).runs if r.arm == arm and r.target == target)

    study = tiny_study()
    assert key(study, "baseline") == key(tiny_study(seeds=(5,)), "baseline")
    assert key(study, "baseline") != key(tiny_study(baseline=Recipe(epochs=3, batch_size=64)), "baseline")
    assert key(study, "pruned", 0.5) != key(study, "pruned", 0.9)
    # Pinned: the canonical text of a run configuration must not drift.
    assert keys.canonical({"b": [1, 2], "a": {"y": 0.5, "x": None}}) == '{"a":{"x":null,"y":0.5},"b":[1,2]}'


BLOCKER = """
import sys


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras", "tensorflow_model_optimization"):
            raise ImportError(f"{name} cannot be imported here")


sys.meta_path.insert(0, _NoTensorFlow())
"""
FRAMEWORKS = ("tensorflow", "tf_keras", "tensorflow_model_optimization", "keras", "keras_tuner", "jax")


def test_reports_status_and_dry_run_work_where_tensorflow_cannot_be_imported(finished, tmp_path):
    import os
    import subprocess
    import sys

    study, out, _, _ = finished
    root = out / study.name
    (tmp_path / "sitecustomize.py").write_text(BLOCKER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}

    def python(*args):
        return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, env=env, timeout=300)

    blocked = python("-c", "import tensorflow")
    assert blocked.returncode == 1 and "cannot be imported here" in blocked.stderr
    # The planner, the store, the statistics and the reports import no framework, even while regenerating.
    (root / "runs.csv").unlink()
    code = ("import sys\nfrom widthvsprune import planning, records, report, results, stats, storing\n"
            "report.write_reports(sys.argv[1])\n"
            f"loaded = sorted({{m.split('.')[0] for m in sys.modules}} & set({FRAMEWORKS!r}))\n"
            "assert not loaded, loaded\n")
    regenerated = python("-c", code, root)
    assert regenerated.returncode == 0, regenerated.stderr
    assert len(pd.read_csv(root / "runs.csv")) == 10
    report = python("-m", "widthvsprune", "report", root)
    assert report.returncode == 0 and "large-sparse beat small-dense at" in report.stdout, report.stderr
    status = python("-m", "widthvsprune", "status", root)
    assert status.returncode == 0 and "narrow    4/4 done, 0 failed, 0 missing" in status.stdout, status.stderr
    path = tmp_path / "tiny.py"
    path.write_text(f"import json\nfrom widthvsprune.config import study_from_dict\n"
                    f"STUDY = study_from_dict(json.loads({json.dumps(json.dumps(study.to_dict()))}))\n")
    dry = python("-m", "widthvsprune", "run", path, "--out", out, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count(": done") == 10 and "to train" not in dry.stdout
