"""The planner (pure): every run and search of a study, with keys and dependencies."""

from conftest import tiny_study

from widthvsprune import planning


def ok(nonzeros):
    return {"status": "ok", "nonzero_params": nonzeros}


def test_before_anything_trained_the_plan_has_baselines_and_pruned_runs():
    study = tiny_study()
    plan = planning.plan(study)
    assert [(r.arm, r.seed) for r in plan.runs_of("baseline")] == [("baseline", 0), ("baseline", 1)]
    assert len(plan.runs_of("pruned")) == 4 and not plan.searches and not plan.runs_of("narrow")
    base = {r.seed: r.id for r in plan.runs_of("baseline")}
    assert all(r.needs == (base[r.seed],) for r in plan.runs_of("pruned"))
    assert plan.max_trainings == 2 + 4 + 2 * (2 + 2)


def test_a_search_appears_once_its_pruned_runs_are_settled_with_their_fewest_nonzeros():
    study = tiny_study()
    pruned = planning.plan(study).runs_of("pruned", 0.5)
    plan = planning.plan(study, {pruned[0].id: ok(900)})
    assert plan.search_of(0.5) is None  # seed 1 is not settled yet
    plan = planning.plan(study, {pruned[0].id: ok(900), pruned[1].id: ok(880)})
    search = plan.search_of(0.5)
    assert search.budget == 880 and search.key.startswith("narrow-880-")
    assert set(search.needs) == {r.id for r in pruned}
    assert plan.search_of(0.9) is None and not plan.runs_of("narrow")


def test_narrow_runs_take_the_search_result():
    study = tiny_study()
    pruned = planning.plan(study).runs_of("pruned", 0.5)
    settled = {r.id: ok(880) for r in pruned}
    search = planning.plan(study, settled).search_of(0.5)
    result = {"status": "ok", "widths": [9, 4], "learning_rate": 0.004}
    plan = planning.plan(study, settled, {search.key: result})
    narrow = plan.runs_of("narrow", 0.5)
    assert [r.seed for r in narrow] == [0, 1]
    assert all(r.key == search.key and r.widths == (9, 4) and r.config["learning_rate"] == 0.004 for r in narrow)
    assert all(r.stage > search.stage > pruned[0].stage for r in narrow)


def test_a_size_point_whose_pruned_runs_all_failed_has_no_narrow_arm():
    study = tiny_study()
    pruned = planning.plan(study).runs_of("pruned", 0.9)
    plan = planning.plan(study, {r.id: {"status": "failed"} for r in pruned})
    assert plan.search_of(0.9) is None and "no pruned model" in plan.skipped[0.9]


def test_a_size_point_where_nothing_fits_is_skipped():
    study = tiny_study()
    pruned = planning.plan(study).runs_of("pruned", 0.9)
    settled = {r.id: ok(10) for r in pruned}
    search = planning.plan(study, settled).search_of(0.9)
    plan = planning.plan(study, settled, {search.key: {"status": "no-narrow-fits", "note": "no-narrow-fits: ..."}})
    assert plan.skipped[0.9].startswith("no-narrow-fits") and not plan.runs_of("narrow", 0.9)


def test_the_planner_imports_no_framework():
    import subprocess
    import sys

    code = ("import sys, widthvsprune.planning, widthvsprune.results, widthvsprune.report\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'jax')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr
