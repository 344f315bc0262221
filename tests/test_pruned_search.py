"""The pruned arm's search: the recipe first, then every allocation that can reach the size point, then the oracle."""

import io
import json

from conftest import search_of, tiny_study

from widthvsprune import Tuning, run_study, store
from widthvsprune.arms.pruned import record_layers
from widthvsprune.pruning import allocations
from widthvsprune.store import results


def test_every_allocation_that_fits_is_tried_with_the_recipes_other_settings(tmp_path):
    study = tiny_study(sparsities=(0.5,), seeds=(0,), tuning=Tuning(oracle="bayesian", trials=7, controls=False))
    run_study(study, tmp_path, stream=io.StringIO(), workers=1)
    root = tmp_path / study.name
    survey = results.survey(study, root)
    search = search_of(survey.plan, "pruned", 0.5)
    trials = [json.loads(p.read_text()) for p in store.search_dir(root, search.key).glob("trial_*/trial.json")]
    values = [t["hyperparameters"]["values"] for t in sorted(trials, key=lambda t: int(t["trial_id"]))]
    assert len(values) == study.tuning.trials
    baseline = survey.states[search.needs[0]].record
    fits = [a for a in study.tuning.allocations
            if not allocations.infeasibility(a, record_layers(baseline), 0.5, study.pruning.prune_output)]
    assert fits == ["uniform", "erk", "lamp", "global"]  # the first layer holds 79% of the weights: no first_dense
    swept = values[: len(fits)]
    assert [v["variant"] for v in swept] == fits
    recipe = {k: v for k, v in values[0].items() if k != "variant"}
    assert all({k: v for k, v in v_.items() if k != "variant"} == recipe for v_ in swept)
    assert values[0]["learning_rate"] == study.finetune.learning_rate
    chosen = survey.searches[search.key]["chosen"]
    assert chosen["variant"] in fits
