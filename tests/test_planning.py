"""The planner (pure): every run and search of a study, with keys and dependencies."""

from conftest import search_of, tiny_study

from widthvsprune import Tuning
from widthvsprune.plan import planner

CHOSEN = {"learning_rate": 0.003, "end_fraction": 0.5, "frequency": 2, "variant": "global", "prune_output": True}


def ok(nonzeros=100):
    return {"status": "ok", "nonzero_params": nonzeros}


def study_with_controls(controls=True):
    return tiny_study(tuning=Tuning(oracle="random", trials=3, controls=controls))


def searched(study, records=None, searches=None, arm="baseline", target=0.0, result=None):
    """``searches`` with the result of one more search added."""
    plan = planner.plan(study, records, searches)
    search = search_of(plan, arm, target)
    return {**(searches or {}), search.key: result}


def test_before_anything_trained_the_plan_has_the_controls_and_the_baseline_search():
    study = study_with_controls()
    plan = planner.plan(study)
    assert [(r.tuning, r.seed, r.role) for r in plan.runs_of("baseline")] == [
        ("untuned", study.search_seed, "search"), ("untuned", 0, "eval"), ("untuned", 1, "eval")]
    trainings = study.tuning.trials + study.tuning.rescored  # its trials and its best ones on a second seed
    assert [s.label for s in plan.searches] == ["baseline search"] and plan.searches[0].trials == trainings
    untuned = {r.seed: r.id for r in plan.runs_of("baseline")}
    assert len(plan.runs_of("pruned", tuning="untuned")) == 4 and not plan.runs_of("pruned", tuning="tuned")
    assert all(r.needs == (untuned[r.seed],) for r in plan.runs_of("pruned"))
    # searches: 3 + 2 x 2 x 3 trials; baselines: 2 tuned and 2 of the recipe's, one of each for the searches;
    # 2 x 2 x (2 + 2) other models; the dense reference's search and its 2 x 2 models
    # and each of those 6 searches' 2 best trials trained again on a second seed
    assert plan.max_trainings == 3 + 12 + 6 + 16 + 3 + 4 + 6 * study.tuning.rescored


def test_the_baseline_search_result_gives_the_tuned_baselines_and_the_pruned_searches():
    study = study_with_controls()
    searches = searched(study, result={"status": "ok", "learning_rate": 0.004})
    plan = planner.plan(study, {}, searches)
    tuned = plan.runs_of("baseline", tuning="tuned")
    assert sorted(r.seed for r in tuned) == [0, 1, study.search_seed]
    [helper] = [r for r in tuned if r.role == "search"]
    assert helper.seed == study.search_seed and all(r.config["recipe"]["learning_rate"] == 0.004 for r in tuned)
    assert len({r.key for r in tuned}) == 1 and tuned[0].key != plan.runs_of("baseline", tuning="untuned")[0].key
    [recipe_helper] = [r for r in plan.runs_of("baseline", tuning="untuned") if r.role == "search"]
    pruned_searches = [s for s in plan.searches if s.arm == "pruned"]
    assert [s.target for s in pruned_searches] == [0.5, 0.9]
    assert all(s.needs == (helper.id, recipe_helper.id) and s.stage == 2 for s in pruned_searches)


def test_a_pruned_search_result_gives_the_tuned_pruned_runs_with_what_it_chose():
    study = study_with_controls()
    searches = searched(study, result={"status": "ok", "learning_rate": 0.004})
    searches = searched(study, {}, searches, "pruned", 0.5, {"status": "ok", "chosen": CHOSEN})
    plan = planner.plan(study, {}, searches)
    tuned = plan.runs_of("pruned", 0.5, "tuned")
    assert [r.seed for r in tuned] == [0, 1] and all(r.stage == 3 for r in tuned)
    assert tuned[0].config["pruning"]["variant"] == "global" and tuned[0].config["finetune"]["learning_rate"] == 0.003
    base = {r.seed: r.id for r in plan.runs_of("baseline", tuning="tuned") if r.role == "eval"}
    assert all(r.needs == (base[r.seed],) for r in tuned)
    assert search_of(plan, "narrow", 0.5) is None  # not every pruned run is settled yet


def test_the_narrow_budget_is_the_fewest_nonzeros_of_every_pruned_run_and_both_narrow_arms_share_it():
    study = study_with_controls()
    searches = searched(study, result={"status": "ok", "learning_rate": 0.004})
    searches = searched(study, {}, searches, "pruned", 0.5, {"status": "ok", "chosen": CHOSEN})
    pruned = planner.plan(study, {}, searches).runs_of("pruned", 0.5)
    assert len(pruned) == 4
    records = {r.id: ok(900 - 10 * i) for i, r in enumerate(pruned)}
    plan = planner.plan(study, records, searches)
    tuned, untuned = search_of(plan, "narrow", 0.5), search_of(plan, "narrow", 0.5, "untuned")
    assert tuned.budget == untuned.budget == 870 and tuned.key != untuned.key
    assert tuned.trials == study.tuning.trainings and untuned.trials == 0 and set(tuned.needs) == {r.id for r in pruned}
    result = {"status": "ok", "widths": [9, 4], "learning_rate": 0.004}
    plan = planner.plan(study, records, {**searches, tuned.key: result, untuned.key: {**result, "widths": [8, 4]}})
    assert [r.widths for r in plan.runs_of("narrow", 0.5, "tuned")] == [(9, 4), (9, 4)]
    assert [r.widths for r in plan.runs_of("narrow", 0.5, "untuned")] == [(8, 4), (8, 4)]
    assert all(r.key == tuned.key and r.stage == 5 for r in plan.runs_of("narrow", 0.5, "tuned"))


def test_without_controls_only_the_tuned_arms_are_planned():
    study = study_with_controls(controls=False)
    assert [r.role for r in planner.plan(study).runs] == ["search"]  # the recipe's baseline, for the searches
    searches = searched(study, result={"status": "ok", "learning_rate": 0.004})
    assert {r.tuning for r in planner.plan(study, {}, searches).runs if r.role == "eval"} == {"tuned"}


def test_a_pruned_search_that_chose_the_recipes_baseline_prunes_it_at_every_seed():
    study = study_with_controls(controls=False)
    searches = searched(study, result={"status": "ok", "learning_rate": 0.004})
    chose_recipe = {"status": "ok", "chosen": {**CHOSEN, "baseline": "recipe"}}
    searches = searched(study, {}, searches, "pruned", 0.5, chose_recipe)
    plan = planner.plan(study, {}, searches)
    recipe = {r.seed: r.id for r in plan.runs_of("baseline", tuning="untuned") if r.role == "eval"}
    assert sorted(recipe) == [0, 1]  # trained although there are no controls
    tuned = plan.runs_of("pruned", 0.5, "tuned")
    assert all(r.needs == (recipe[r.seed],) for r in tuned)
    assert tuned[0].config["baseline"]["tuning"] == "untuned" and "baseline" not in tuned[0].config["pruning"]


def test_a_size_point_whose_pruned_runs_all_failed_or_where_nothing_fits_is_skipped():
    study = study_with_controls(controls=False)
    searches = searched(study, result={"status": "ok", "learning_rate": 0.004})
    for target in (0.5, 0.9):
        searches = searched(study, {}, searches, "pruned", target, {"status": "ok", "chosen": CHOSEN})
    plan = planner.plan(study, {}, searches)
    records = {r.id: {"status": "failed"} for r in plan.runs_of("pruned", 0.9)}
    records.update({r.id: ok(10) for r in plan.runs_of("pruned", 0.5)})
    plan = planner.plan(study, records, searches)
    assert "no pruned model" in plan.skipped["narrow", 0.9].note and search_of(plan, "narrow", 0.9) is None
    search = search_of(plan, "narrow", 0.5)
    nothing_fits = {"status": "no-narrow-fits", "note": "no-narrow-fits"}
    plan = planner.plan(study, records, {**searches, search.key: nothing_fits})
    assert plan.skipped["narrow", 0.5].status == "no-narrow-fits" and not plan.runs_of("narrow")


def test_the_planner_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, widthvsprune.plan.planner, widthvsprune.store.results, widthvsprune.analysis.report\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'jax')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def planned_to_the_narrow_search(study):
    """The plan of ``study`` once its pruned runs at sparsity 0.5 trained: ``(records, searches, narrow search)``."""
    searches = searched(study, result={"status": "ok", "learning_rate": 0.004})
    searches = searched(study, {}, searches, "pruned", 0.5, {"status": "ok", "chosen": CHOSEN})
    records = {r.id: ok(4100) for r in planner.plan(study, {}, searches).runs_of("pruned", 0.5)}
    return records, searches, search_of(planner.plan(study, records, searches), "narrow", 0.5)


def test_an_underfilled_narrow_budget_also_trains_the_smallest_model_above_it_under_keys_of_its_own():
    study = study_with_controls(controls=False)
    records, searches, search = planned_to_the_narrow_search(study)
    result = {"status": "ok", "widths": [2, 1], "params": 3410, "learning_rate": 0.004}
    plain = planner.plan(study, records, {**searches, search.key: result})
    bracketing = planner.plan(study, records, {**searches, search.key: {**result, "above": {"widths": [3, 1],
                                                                                             "params": 5110}}})
    within = [r for r in bracketing.runs_of("narrow", 0.5) if r.role == "eval"]
    above = [r for r in bracketing.runs_of("narrow", 0.5) if r.role == "bracket"]
    # Every run of the plain plan is still there with the same key; the models above the budget are added.
    assert {(r.key, r.seed) for r in plain.runs} == {(r.key, r.seed) for r in bracketing.runs if r.role != "bracket"}
    assert [r.widths for r in within] == [(2, 1)] * 2 and [r.widths for r in above] == [(3, 1)] * 2
    assert all(r.key != search.key and r.key.startswith("narrow-4100-above-") for r in above)
    assert all(r.config["learning_rate"] == 0.004 and r.config["budget"] == 4100 for r in above)
    assert all(r.search == search.key and r.stage == 5 and r.tuning == "tuned" for r in above)
    assert bracketing.max_trainings == plain.max_trainings + len(study.seeds)


def test_the_model_above_the_seed_cnns_budget_at_80_percent_is_one_filter_wider():
    from widthvsprune.arms import narrow
    from widthvsprune.families import budgets

    study = tiny_study(family="seed_cnn", widths=(12,))
    match = budgets.solve_widths("seed_cnn", 4100, (12,), (28, 28, 1), 10)
    assert (match.widths, match.params) == ((2,), 3410) and match.fill < budgets.UNDERFILLED_BELOW
    assert narrow.bracket_above(study, match, (12,), (28, 28, 1), 10) == {"widths": [3], "params": 5110}
    filled = budgets.solve_widths("seed_cnn", 5110, (12,), (28, 28, 1), 10)
    assert narrow.bracket_above(study, filled, (12,), (28, 28, 1), 10) is None  # a budget that fills: nothing more


def test_a_narrow_search_on_an_underfilled_budget_names_the_model_above_it_and_one_that_fills_does_not():
    from widthvsprune import data
    from widthvsprune.arms import narrow
    from widthvsprune.arms.base import SearchContext

    splits = data.load("digits")  # 8x8 images: the seed CNN has 100 parameters per filter and 10 more
    study = tiny_study(family="seed_cnn", widths=(12,), tuning=Tuning(oracle="random", trials=2, controls=True))
    arm = narrow.Narrow()
    control = planner.Search("narrow", "untuned", 0.8, "k", {}, budget=260)
    settled = arm.settle(study, control, splits)
    assert (settled["widths"], settled["params"], settled["above"]) == ([2], 210, {"widths": [3], "params": 310})
    search = planner.Search("narrow", "tuned", 0.8, "k", {}, budget=260)
    found = {"values": {"learning_rate": 0.01}, "score": 0.5, "trials": 2, "epochs": 4.0, "seconds": 1.0}
    chosen = arm.result(study, search, found, splits, SearchContext(search))
    assert chosen["widths"] == [2] and chosen["above"] == {"widths": [3], "params": 310}
    filled = arm.result(study, planner.Search("narrow", "tuned", 0.5, "k", {}, budget=616), found, splits,
                        SearchContext(search))
    assert filled["widths"] == [6] and "above" not in filled  # 610 of 616: the result is as it always was


def test_runs_csv_has_the_models_above_a_budget_but_not_those_the_searches_start_from():
    from widthvsprune.analysis import tables

    record = {"status": "ok", "arm": "narrow", "tuning": "tuned", "target_sparsity": 0.8, "seed": 0,
              "test_accuracy": 0.5, "test_examples": 360, "layers": [{"bias_params": 10}]}
    frame = tables.runs_frame([{**record, "role": "eval"}, {**record, "role": "bracket", "seed": 1},
                               {**record, "role": "search", "seed": 2}, {**record, "seed": 3}])
    assert sorted(zip(frame.seed, frame.role)) == [(0, "eval"), (1, "bracket"), (3, "eval")]
    assert not frame.diverged.any()  # computed for records without it: 50% is far from chance
