"""A family of your own: a builder that takes one width multiplier and no count function."""

import io

import numpy as np
import pandas as pd
import pytest
from conftest import search_of, tiny_study

from widthvsprune import Tuning, engines, families, run_study, store
from widthvsprune.arms import narrow as narrow_arm
from widthvsprune.families import budgets
from widthvsprune.store.results import survey


def build(multiplier, input_shape, num_classes, keras):
    """Two hidden layers whose widths follow one multiplier; the family gives no count function."""
    return keras.Sequential([
        keras.Input(shape=input_shape),
        keras.layers.Flatten(),
        keras.layers.Dense(max(1, round(32 * multiplier)), activation="relu"),
        keras.layers.Dense(max(1, round(16 * multiplier)), activation="relu"),
        keras.layers.Dense(num_classes),
    ])


@pytest.fixture(scope="module")
def family():
    return families.register_family(families.multiplier_family("scaled_mlp_no_count", build), overwrite=True)


def test_a_multiplier_family_has_one_width_in_hundredths(family):
    assert family.default_widths == (100,) and family.n_widths == 1 and family.count_params is None
    engine = engines.load("tf_keras")
    # 64 inputs -> 32 -> 16 -> 10 at multiplier 1.0; 64 -> 16 -> 8 -> 10 at 0.5.
    assert engine.count_params(family.name, (100,), (8, 8, 1), 10) == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    assert engine.count_params(family.name, (50,), (8, 8, 1), 10) == 64 * 16 + 16 + 16 * 8 + 8 + 8 * 10 + 10


def test_the_solver_counts_by_building_and_never_exceeds_the_budget(family):
    engine = engines.load("tf_keras")
    for budget in (400, 900, 1500, 2600):
        match = budgets.solve_widths(family, budget, (100,), (8, 8, 1), 10, engine.count_params)
        assert match.params == engine.count_params(family.name, match.widths, (8, 8, 1), 10) <= budget
    with pytest.raises(ValueError, match="Expected a count function for family 'scaled_mlp_no_count'"):
        budgets.solve_widths(family, 900, (100,), (8, 8, 1), 10)


def test_a_study_of_a_family_without_a_count_function_runs_and_every_narrow_model_fits(tmp_path, family):
    study = tiny_study(name="byo", family=family.name, widths=None, sparsities=(0.8,), seeds=(0,),
                       tuning=Tuning(oracle="random", trials=2, controls=False))
    result = run_study(study, tmp_path, stream=io.StringIO(), workers=1)
    assert not result.failed
    runs = pd.read_csv(tmp_path / "byo" / "runs.csv")
    narrow = runs[(runs.arm == "narrow") & (runs.role == "eval")]  # (a "bracket" row is the model above the budget)
    assert len(narrow) == 1 and (narrow.total_params <= narrow.budget).all()
    # Every trial of the narrow search was solved within the budget too, counted by building.
    engine = engines.load("tf_keras")
    found = survey(study, tmp_path / "byo")
    search = search_of(found.plan, "narrow", 0.8)
    trials = sorted(store.search_dir(tmp_path / "byo", search.key).glob("trial_*/trial.json"))
    assert len(trials) == 2
    for path in trials:
        values = pd.read_json(path, typ="series")["hyperparameters"]["values"]
        match = narrow_arm.shape_for(study, values, search.budget, (8, 8, 1), 10, engine.count_params)
        assert engine.count_params(family.name, match.widths, (8, 8, 1), 10) <= search.budget
    assert np.isfinite(runs.test_accuracy).all()
