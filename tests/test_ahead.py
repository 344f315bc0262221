"""A process with nothing else to do runs a narrow search ahead of its stage, at the budget the pruned runs are
expected to give; the study's records are the same as when nobody runs ahead."""

import json
import threading
import time

from conftest import assert_same_runs, search_of, tiny_study

from widthvsprune import Pruning, Tuning
from widthvsprune.arms import pruned
from widthvsprune.plan import planner
from widthvsprune.pruning import allocations


def baseline_record(shapes, dead=0):
    """A baseline's record as the runner writes it (its layers and sizes), for an MLP of these kernels; ``dead``
    biases of its first layer exactly zero."""
    layers = [{"layer": f"dense_{i}", "kernel_shape": list(shape), "kernel_params": shape[0] * shape[1],
               "kernel_nonzero": shape[0] * shape[1], "bias_params": shape[1], "bias_nonzero": shape[1],
               "prunable": True} for i, shape in enumerate(shapes)]
    layers[0]["bias_nonzero"] -= dead
    total = sum(layer["kernel_params"] + layer["bias_params"] for layer in layers)
    return {"status": "ok", "layers": layers, "total_params": total, "nonzero_params": total}  # dense: all of them


#: The quickstart's wide MLP on MNIST-1D: 40-128-64-10, 13,952 weights and 202 biases.
QUICKSTART = baseline_record([(40, 128), (128, 64), (64, 10)])


def test_the_expected_nonzeros_are_tfmots_kept_counts_on_the_baselines_layers():
    # uniform at 90%: round(5120 x 0.1) + round(8192 x 0.1) + round(640 x 0.1) = 512 + 819 + 64, and the 202 biases
    assert pruned.expected_nonzeros("uniform", True, QUICKSTART, 0.9) == 512 + 819 + 64 + 202 == 1597
    # the output layer dense at 95%: the others take its zeros and round otherwise (697 kept against 698)
    assert pruned.expected_nonzeros("uniform", True, QUICKSTART, 0.95) == 256 + 410 + 32 + 202
    assert pruned.expected_nonzeros("uniform", False, QUICKSTART, 0.95) == 697 + 202
    # a unit that never fired (its bias still 0): whether the pruned models' do depends on their training
    assert pruned.expected_nonzeros("uniform", True, baseline_record([(40, 128), (128, 64), (64, 10)], 1), 0.9) is None
    # decided from the weights, at random, unreachable, or without a baseline: not told
    assert pruned.expected_nonzeros("lamp", True, QUICKSTART, 0.9) is None
    assert pruned.expected_nonzeros("global", True, QUICKSTART, 0.9) is None
    assert pruned.expected_nonzeros("random", True, QUICKSTART, 0.9) is None
    assert allocations.infeasibility("uniform_plus", pruned.record_layers(QUICKSTART), 0.9)
    assert pruned.expected_nonzeros("uniform_plus", True, QUICKSTART, 0.9) is None
    assert pruned.expected_nonzeros("uniform", True, None, 0.9) is None
    assert pruned.expected_nonzeros("uniform", True, {"status": "ok", "nonzero_params": 5}, 0.9) is None


def test_the_expected_budget_is_told_only_where_every_choice_agrees_or_once_the_search_chose():
    study = tiny_study(widths=(128, 64), tuning=Tuning(controls=True))
    assert study.tuning.allocations == allocations.DEFAULT_ALLOCATIONS and study.tuning.outputs == ("pruned", "dense")
    # 50%: every allocation that can be told, the output pruned or dense, keeps 6,976 weights
    assert pruned.expected_budget(study, QUICKSTART, 0.5) == 6976 + 202
    # 95%: the output layer dense keeps 697 weights under uniform, 698 otherwise: not told before the search chose
    assert pruned.expected_budget(study, QUICKSTART, 0.95) is None
    chosen = {"variant": "uniform", "prune_output": False}
    assert pruned.expected_budget(study, QUICKSTART, 0.95, chosen) == 697 + 202  # fewer than the recipe's 698
    assert pruned.expected_budget(study, QUICKSTART, 0.95, {**chosen, "prune_output": True}) == 698 + 202
    assert pruned.expected_budget(study, QUICKSTART, 0.95, {**chosen, "variant": "lamp"}) is None
    # one allocation and the output pruned: the recipe's count is the budget
    only = tiny_study(widths=(128, 64), tuning=Tuning(allocations=("uniform",), outputs=("pruned",)))
    assert pruned.expected_budget(only, QUICKSTART, 0.95) == 698 + 202


def narrow_study(**overrides):
    """The tiny study with one allocation and the output layer pruned: its narrow budgets are told ahead where its
    baseline's units all fire (MNIST-1D's do; a few of digits' never do, their biases staying 0)."""
    fields = dict(tuning=Tuning(oracle="random", trials=2, controls=False, allocations=("uniform",),
                                outputs=("pruned",)), pruning=Pruning(frequency=5, end_fraction=0.75))
    return tiny_study(**{**fields, **overrides})


def test_the_plan_lists_the_narrow_search_ahead_under_the_key_it_has_once_the_budget_is_known():
    study = narrow_study()
    assert planner.plan(study).ahead == ()  # nothing is known of the baseline yet
    [helper] = [r for r in planner.plan(study).runs if r.role == "search"]
    digits = baseline_record([(64, 24), (24, 12), (12, 10)])
    records = {helper.id: digits}
    plan = planner.plan(study, records)
    assert [(s.arm, s.target, s.stage) for s in plan.ahead] == [("narrow", 0.5, 4), ("narrow", 0.9, 4)]
    assert not any(s.arm == "narrow" for s in plan.searches)
    assert plan.max_trainings == planner.plan(study).max_trainings  # counted once, as the plan's own search
    guessed = {s.target: s for s in plan.ahead}
    assert guessed[0.5].budget == 768 + 144 + 60 + 46 and guessed[0.9].budget == 154 + 29 + 12 + 46
    # the baseline search, the pruned searches: the plan names the narrow searches once the pruned runs trained
    searches = {search_of(plan, "baseline").key: {"status": "ok", "learning_rate": 0.004}}
    for target in (0.5, 0.9):
        key = search_of(planner.plan(study, records, searches), "pruned", target).key
        searches[key] = {"status": "ok", "chosen": {"learning_rate": 1e-3, "end_fraction": 0.75, "frequency": 5,
                                                    "variant": "uniform", "prune_output": True}}
    plan = planner.plan(study, records, searches)
    assert {s.target: s.budget for s in plan.ahead} == {0.5: 1018, 0.9: 241}  # still listed: not trained yet
    for run in plan.runs_of("pruned"):
        records[run.id] = {"status": "ok", "nonzero_params": 1018 if run.target == 0.5 else 242}
    plan = planner.plan(study, records, searches)
    assert plan.ahead == ()
    assert search_of(plan, "narrow", 0.5).key == guessed[0.5].key  # the guess held: the same search
    assert search_of(plan, "narrow", 0.9).key != guessed[0.9].key  # a pruned run kept one more: another search
    assert search_of(plan, "narrow", 0.9).budget == 242
    # a search that finished is not listed ahead again
    plan = planner.plan(study, {helper.id: digits}, {guessed[0.5].key: {"status": "ok"}})
    assert [s.target for s in plan.ahead] == [0.9]


def test_a_tuned_narrow_run_that_is_its_controls_model_is_linked_a_stage_later():
    study = tiny_study(tuning=Tuning(oracle="random", trials=2))
    records, searches = {}, {}
    searches[search_of(planner.plan(study), "baseline").key] = {"status": "ok", "learning_rate": 0.004}
    chosen = {"learning_rate": 1e-3, "end_fraction": 0.75, "frequency": 5, "variant": "uniform", "prune_output": True}
    for target in (0.5, 0.9):
        searches[search_of(planner.plan(study, records, searches), "pruned", target).key] = {"status": "ok",
                                                                                              "chosen": chosen}
    records = {r.id: {"status": "ok", "nonzero_params": 900 if r.target == 0.5 else 300}
               for r in planner.plan(study, {}, searches).runs if r.arm == "pruned"}
    plan = planner.plan(study, records, searches)
    control = {"status": "ok", "widths": [9, 4], "learning_rate": study.baseline.learning_rate}
    searches[search_of(plan, "narrow", 0.5, "untuned").key] = control
    searches[search_of(plan, "narrow", 0.9, "untuned").key] = control
    searches[search_of(plan, "narrow", 0.5).key] = control  # chose the control's model
    searches[search_of(plan, "narrow", 0.9).key] = {**control, "learning_rate": 0.004}  # another rate
    plan = planner.plan(study, records, searches)
    tuned, untuned = plan.runs_of("narrow", 0.5, "tuned"), plan.runs_of("narrow", 0.5, "untuned")
    assert {r.stage for r in tuned} == {6} and {r.stage for r in untuned} == {5}
    assert {plan.twins[r.id] for r in tuned} == {r.id for r in untuned}
    assert {r.stage for r in plan.runs_of("narrow", 0.9, "tuned")} == {5}
    assert not any(r.id in plan.twins for r in plan.runs_of("narrow", 0.9))
    assert tuned[0].key != untuned[0].key  # keys as before: only the training is saved


def test_a_search_run_ahead_while_the_stage_is_held_elsewhere_gives_the_same_records(tmp_path):
    """One process, the baseline search held by another: the process runs the narrow searches ahead, then the
    study; its records and searches are those of a run where nobody ran ahead."""
    from widthvsprune import run_study, store

    study = narrow_study(dataset="mnist1d:1000")
    plain = run_study(study, out=tmp_path / "plain", workers=1, stream=open(tmp_path / "plain.txt", "w"))
    assert "searches ahead" not in plain.timings  # one process alone is never idle

    root = store.study_dir(tmp_path / "ahead", study.name)
    held = store.Lock(store.run_dir(root, search_of(planner.plan(study), "baseline").key))
    assert held.acquire(blocking=False)
    narrow_keys = sorted(p.name for p in (tmp_path / "plain" / study.name / "runs").glob("narrow-*")
                         if (p / "search").exists())
    assert len(narrow_keys) == 2
    results = [store.search_result_json(root, key) for key in narrow_keys]

    def release_once_searched_ahead():
        deadline = time.monotonic() + 120
        while not all(path.exists() for path in results) and time.monotonic() < deadline:
            time.sleep(0.2)
        held.release()

    releaser = threading.Thread(target=release_once_searched_ahead)
    releaser.start()
    log = tmp_path / "ahead.txt"
    result = run_study(study, out=tmp_path / "ahead", workers=1, stream=open(log, "w"))
    releaser.join()
    assert result.timings["searches ahead"] == 2 and not result.failed
    assert log.read_text().count("searched ahead, at the budget") == 2
    assert_same_runs(root / "runs.csv", tmp_path / "plain" / study.name / "runs.csv")
    found = sorted(p.name for p in (root / "runs").iterdir())
    assert found == sorted(p.name for p in (tmp_path / "plain" / study.name / "runs").iterdir())  # nothing else
    for key in narrow_keys:  # each search's trials and choice, as where it ran in its stage (its seconds aside)
        ahead, there = (json.loads(store.search_result_json(r, key).read_text())
                        for r in (root, tmp_path / "plain" / study.name))
        assert ahead.pop("seconds") > 0 and there.pop("seconds") > 0
        assert ahead == there and ahead["trials"] == study.tuning.trainings
