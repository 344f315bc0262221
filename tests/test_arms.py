"""Arms as registered parts: a throwaway arm end to end, the sparse-from-scratch control, and old results resumed."""

import dataclasses
import io
import pathlib
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study

from widthvsprune import Pruning, Tuning, arms, data, keys, run_study
from widthvsprune.arms import shared
from widthvsprune.arms.base import Arm, Contrast, recipe_fit
from widthvsprune.arms.shared import engine_of
from widthvsprune.engines.base import ModelSpec, PruneSpec
from widthvsprune.pruning.schedules import ScheduleSteps
from widthvsprune.steps import steps_per_epoch
from widthvsprune.store import results
from widthvsprune.study import load_study

RELEASE_0_2 = pathlib.Path(__file__).resolve().parent / "data" / "release-0.2.0"
RELEASE_0_3 = pathlib.Path(__file__).resolve().parent / "data" / "release-0.3.0"
SPLITS = data.load("digits")


class Echo(Arm):
    """The narrow arm's chosen shape trained once more with the baseline's recipe (a throwaway arm)."""

    name = "echo"
    title = "echo"
    order = 10
    requires = ("narrow",)

    def plan(self, study, builder):
        for target in study.sparsities:
            narrow = builder.runs_of("narrow", target, "tuned")
            if narrow:
                config = {"arm": self.name, "engine": engine_of(study), "family": study.family,
                          "widths": list(narrow[0].widths), "recipe": keys.config_dict(study.baseline)}
                builder.add_runs(self.name, "tuned", target, keys.run_key(config, f"echo-{target:g}"), config, 6)

    def max_trainings(self, study):
        return self.evaluated(study)

    def evaluated(self, study):
        return len(study.sparsities) * len(study.seeds)

    def fit(self, study, n_train):
        return recipe_fit(study.baseline)

    def model_spec(self, study, run, splits, initial_weights=None, source=None, log_dir=None):
        return ModelSpec(study.family, run.widths, int(run.seed), study.baseline.learning_rate)

    def contrasts(self, study):
        return [Contrast("narrow vs echo", "narrow", self.name)]


@pytest.fixture
def echo():
    arms.register(Echo())
    yield
    del arms._ARMS["echo"]


def test_a_throwaway_arm_from_a_test_file_runs_end_to_end(tmp_path, echo):
    study = tiny_study(sparsities=(0.5,), seeds=(0,), arms=("baseline", "pruned", "narrow", "echo"))
    result = run_study(study, tmp_path, stream=io.StringIO(), workers=1)
    assert not result.failed
    runs = pd.read_csv(tmp_path / study.name / "runs.csv")
    [echo_row] = runs[runs.arm == "echo"].itertuples()
    [narrow_row] = runs[(runs.arm == "narrow") & (runs.tuning == "tuned")].itertuples()
    assert echo_row.widths == narrow_row.widths and echo_row.total_params == narrow_row.total_params
    comparison = pd.read_csv(tmp_path / study.name / "comparison.csv")
    [row] = comparison[comparison.contrast == "narrow vs echo"].itertuples()
    assert (row.arm, row.opponent, row.opponent_params) == ("narrow", "echo", echo_row.total_params)
    assert row.delta == pytest.approx(narrow_row.test_accuracy - echo_row.test_accuracy)
    assert "narrow vs echo" in (tmp_path / study.name / "report.md").read_text()


class Reshaped(Arm):
    """A throwaway arm that needs the tuned baseline and the pruned arm's chosen shape, by name through the planner:
    at each size point, the wide model trained from scratch with the tuned baseline's learning rate and recipe,
    each kernel held at the sparsity the tuned pruned model of the same seed reached (a fixed random mask)."""

    name = "reshaped"
    title = "reshaped"
    sparse = True
    order = 10
    requires = (shared.BASELINE, shared.PRUNED)
    at_each_size = False

    def plan(self, study, builder):
        tuned = builder.need(shared.BASELINES).tuned_config  # the tuned baseline (None until its search is done)
        for target in study.sparsities:
            pruned = builder.need(shared.PRUNED_RUNS)(target, "tuned")  # the pruned arm's chosen shape
            if tuned is None or not pruned or any(builder.records.get(r.id) is None for r in pruned):
                continue
            config = {"arm": self.name, "baseline": tuned, "shape_of": pruned[0].key}
            builder.add_runs(self.name, "tuned", target, keys.run_key(config, f"reshaped-{target:g}"), config, 6,
                             lambda s, ids={r.seed: r.id for r in pruned}: (ids[s],))

    def max_trainings(self, study):
        return self.evaluated(study)

    def evaluated(self, study):
        return len(study.sparsities) * len(study.seeds)

    def widths(self, run):
        return tuple(run.config["baseline"]["widths"])

    def fit(self, study, n_train):
        return recipe_fit(study.baseline)

    def model_spec(self, study, run, splits, initial_weights=None, source=None, log_dir=None):
        targets = tuple(1.0 - layer["kernel_nonzero"] / layer["kernel_params"]
                        for layer in source["layers"] if layer.get("prunable", True))
        total = study.baseline.epochs * steps_per_epoch(len(splits.x_train), study.baseline.batch_size)
        steps = ScheduleSteps(steps_per_epoch(len(splits.x_train), study.baseline.batch_size), total, 1, 1, 1)
        prune = PruneSpec(max(targets), steps, allocation="random", initial_sparsity=1.0, seed=int(run.seed),
                          targets=targets)
        return ModelSpec(study.family, run.widths, int(run.seed),
                         float(run.config["baseline"]["recipe"]["learning_rate"]), None, prune)

    def record_fields(self, study, run, spec, outcome, splits, search=None, source=None, sizes=None):
        return {"learning_rate": spec.learning_rate}


@pytest.fixture
def reshaped():
    arms.register(Reshaped())
    yield
    del arms._ARMS["reshaped"]


def test_a_throwaway_arm_needing_the_tuned_baseline_and_the_pruned_shape_is_one_class_in_a_test_file(tmp_path,
                                                                                                       reshaped):
    study = tiny_study(sparsities=(0.5, 0.9), seeds=(0,), arms=("baseline", "pruned", "narrow", "reshaped"))
    result = run_study(study, tmp_path, stream=io.StringIO(), workers=1)
    assert not result.failed
    root = tmp_path / study.name
    runs = pd.read_csv(root / "runs.csv")
    survey = results.survey(study, root)
    tuned_baseline = next(r for r in survey.plan.runs if r.arm == "baseline" and r.tuning == "tuned")
    for target in study.sparsities:
        [row] = runs[(runs.arm == "reshaped") & (runs.target_sparsity == target)].itertuples()
        [pruned] = runs[(runs.arm == "pruned") & (runs.tuning == "tuned") & (runs.target_sparsity == target)
                        ].itertuples()
        assert row.learning_rate == pytest.approx(tuned_baseline.config["recipe"]["learning_rate"])
        assert row.widths == pruned.widths
        kernels = [[(layer["kernel_params"], layer["kernel_nonzero"]) for layer in survey.states[(key, 0)].record[
            "layers"] if layer.get("prunable", True)] for key in (row.key, pruned.key)]
        assert kernels[0] == kernels[1]  # every kernel at the pruned model's sparsity: the same shape


def test_no_arm_imports_another():
    import re

    folder = pathlib.Path(arms.__file__).parent
    siblings = {p.stem for p in folder.glob("*.py")} - {"__init__", "base", "shared"}
    for path in folder.glob("*.py"):
        if path.stem in siblings:
            imported = set(re.findall(r"widthvsprune\.arms(?:\.| import )(\w+)", path.read_text()))
            assert not imported & siblings, (path.name, imported & siblings)


def test_a_study_naming_an_unknown_arm_or_missing_a_required_one_is_refused():
    from widthvsprune import StudyError

    with pytest.raises(StudyError, match=r"arms: Expected a non-empty tuple of distinct arms from \["):
        tiny_study(arms=("baseline", "pruned", "narrow", "wider"))
    with pytest.raises(StudyError, match=r"arms: Expected the arms they require too: \['narrow'\]"):
        tiny_study(arms=("baseline", "pruned", "sparse_scratch"))


@pytest.fixture(scope="module")
def with_scratch(tmp_path_factory):
    out = tmp_path_factory.mktemp("scratch")
    study = tiny_study(seeds=(0, 1), arms=("baseline", "pruned", "narrow", "sparse_scratch"),
                       tuning=Tuning(oracle="random", trials=2, controls=False))
    result = run_study(study, out, stream=io.StringIO(), workers=1)
    return study, out / study.name, result


def test_sparse_scratch_takes_each_kernels_sparsity_from_the_tuned_pruned_model_of_its_seed(with_scratch):
    study, root, result = with_scratch
    assert not result.failed
    survey = results.survey(study, root)
    scratch = survey.plan.runs_of("sparse_scratch")
    assert len(scratch) == len(study.sparsities) * len(study.seeds)
    for run in scratch:
        mine = survey.states[run.id].record
        source = survey.states[run.needs[0]].record
        assert source["arm"] == "pruned" and source["tuning"] == "tuned" and source["seed"] == run.seed
        kernels = [(layer["kernel_params"], layer["kernel_nonzero"]) for layer in mine["layers"]]
        assert kernels == [(layer["kernel_params"], layer["kernel_nonzero"]) for layer in source["layers"]]
        # Trained from fresh initial weights for the narrow arm's optimizer steps, its mask drawn once, before step 1.
        narrow = next(r for r in survey.plan.runs_of("narrow", run.target) if r.seed == run.seed)
        assert mine["steps"] == survey.states[narrow.id].record["steps"]
        spec = arms.get("sparse_scratch").model_spec(study, run, SPLITS, None, source)
        assert spec.initial_weights is None and spec.prune.targets == tuple(
            1 - layer["kernel_nonzero"] / layer["kernel_params"] for layer in source["layers"])
        assert (spec.prune.steps.begin_step, spec.prune.steps.end_step, spec.prune.steps.total_steps) == (
            1, 1, mine["steps"])


def test_sparse_scratch_is_searched_like_every_other_arm_and_compared_with_both(with_scratch):
    study, root, _ = with_scratch
    survey = results.survey(study, root)
    trials = {s.arm: survey.searches[s.key]["trials"] for s in survey.plan.searches if s.trials}
    trainings = study.tuning.trainings  # 2 trials, and the 2 best trained again on a second seed
    assert trials == {"baseline": trainings, "pruned": trainings, "narrow": trainings, "sparse_scratch": trainings}
    # Every arm's search has the same oracle, trials, seed, learning-rate range and batch of proposals (its key says
    # so); the arms differ only in the knobs of their own.
    shared = ("oracle", "trials", "seed", "learning_rate", "batch", "rescore", "rescore_seed")
    settings = {s.arm: {k: s.config["search"][k] for k in shared} for s in survey.plan.searches if s.trials}
    assert set(settings) == set(trials) and all(v == settings["baseline"] for v in settings.values())
    assert settings["baseline"]["batch"] == study.tuning.batch == 2
    comparison = pd.read_csv(root / "comparison.csv")
    for name, arm, opponent in (("pruned vs sparse from scratch", "pruned", "sparse_scratch"),
                                ("sparse from scratch vs narrow", "sparse_scratch", "narrow")):
        rows = comparison[comparison.contrast == name]
        assert list(rows.target_sparsity) == list(study.sparsities)
        assert set(rows.arm) == {arm} and set(rows.opponent) == {opponent}
        assert np.isfinite(rows.delta).all()


def test_a_results_folder_written_by_release_0_2_resumes_without_training(tmp_path):
    shutil.copytree(RELEASE_0_2 / "tiny", tmp_path / "tiny")
    before = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    study = results.load_study(tmp_path / "tiny")  # the study the folder ran (its study.json)
    result = run_study(study, tmp_path, stream=io.StringIO(), workers=1)
    assert result.trained == 0 and not result.failed
    after = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    shared = [c for c in before.columns if c in after.columns and c != "pruning"]
    pd.testing.assert_frame_equal(before[shared], after[shared])
    assert set(after.pruning.dropna()) == {"uniform", "global"}  # "layerwise" is the earlier name of "uniform"


def test_a_results_folder_written_by_release_0_3_resumes_without_training(tmp_path):
    """Release 0.3 wrote this folder (tests/data/release-0.3.0/tiny.py): its study.json has no dense reference, no
    second-seed re-scoring and no batch-normalization setting, and its pruned searches hashed every searchable
    allocation then registered; it resumes with the same keys and trains nothing."""
    shutil.copytree(RELEASE_0_3 / "tiny", tmp_path / "tiny")
    before = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    study = results.load_study(tmp_path / "tiny")
    assert "dense_finetuned" not in study.arms and study.tuning.rescore == 0 and not study.recalibrate_batchnorm
    result = run_study(study, tmp_path, stream=io.StringIO(), workers=1)
    assert result.trained == 0 and not result.failed
    after = pd.read_csv(tmp_path / "tiny" / "runs.csv")
    shared = [c for c in before.columns if c in after.columns]
    pd.testing.assert_frame_equal(before[shared], after[shared])


def test_a_study_file_written_for_layerwise_still_resolves_to_its_runs_keys():
    from widthvsprune.plan import planner

    folders = {p.name for p in (RELEASE_0_2 / "tiny" / "runs").iterdir()}
    study = load_study(RELEASE_0_2 / "tiny.py")  # written for release 0.2: its pruning variant is "layerwise"
    for renamed in (study, dataclasses.replace(study, pruning=Pruning(allocation="uniform", frequency=5,
                                                                       end_fraction=0.75))):
        plan = planner.plan(renamed)  # (its searches are new: this release's searches propose two trials at a time)
        untuned = [r.key for r in plan.runs if (r.tuning == "untuned" or r.role == "search")
                   and r.arm != "dense_finetuned"]  # (the dense reference is new in this release)
        assert untuned and set(untuned) <= folders
