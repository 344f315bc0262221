"""Searches: real KerasTuner oracles proposing trials that the engine trains."""

import json

import pytest
from conftest import tiny_study

from widthvsprune import Recipe, Tuning, data, executors, tuning
from widthvsprune.families import dense
from widthvsprune.planning import Search
from widthvsprune.running import searches


@pytest.fixture(scope="module")
def splits():
    return data.load("digits")


@pytest.fixture(scope="module")
def engine():
    """Trials train in this process, as the local runner trains them."""
    return executors.LocalExecutor("tf_keras")


def narrow(budget):
    return Search("narrow", "tuned", 0.5, f"narrow-{budget}", {}, budget)


def trainer(study, splits, engine, budgets):
    contexts = [searches.Context(narrow(b)) for b in budgets]
    return lambda proposals: searches.train_trials(study, splits, engine, contexts, proposals)


def search(study, splits, engine, budgets, folder, on_trial=None, train=None):
    """Narrow searches at ``budgets`` side by side, as the runner runs them."""
    jobs = [tuning.SearchJob(str(folder / str(b)), searches.space(study, narrow(b)), study.tuning.oracle,
                             study.tuning.trials, seed=study.search_seed, tag=b) for b in budgets]
    return tuning.search_many(jobs, train or trainer(study, splits, engine, budgets), on_trial)


def quick(oracle, trials):
    return tiny_study(tuning=Tuning(oracle=oracle, trials=trials), baseline=Recipe(epochs=1, batch_size=64),
                      finetune=Recipe(epochs=1, batch_size=64))


def test_trials_train_within_the_budget_and_the_best_is_kept(tmp_path, splits, engine):
    study = quick("bayesian", 3)
    seen = []
    [result] = search(study, splits, engine, [600], tmp_path, lambda *a: seen.append(a))
    assert len(seen) == 3 and result["trials"] == 3
    for _, _, values, score, info in seen:
        assert dense.count_mlp(info["widths"], splits.input_shape, 10) <= 600
        assert study.tuning.learning_rate_min <= values["learning_rate"] <= study.tuning.learning_rate_max
        assert 0.0 <= score <= 1.0
    assert result["score"] == max(score for *_, score, _ in seen)
    assert result["seconds"] == pytest.approx(sum(info["seconds"] for *_, info in seen))
    assert result["epochs"] == pytest.approx(sum(info["epochs"] for *_, info in seen))
    match = searches.shape_for(study, result["values"], 600, splits.input_shape, 10)
    assert 0.9 * 600 <= match.params <= 600
    assert json.loads((tmp_path / "600" / "oracle.json").read_text())


def test_interrupted_search_resumes_without_redoing_finished_trials(tmp_path, splits, engine):
    # Bayesian, 5 trials: the 3 random initial points train together, then one trial per round.
    study = quick("bayesian", 5)
    rounds, calls = [], []

    def interrupted_second_round(proposals):
        rounds.append(len(proposals))
        if len(rounds) == 2:
            raise KeyboardInterrupt  # as if ctrl-C (or a kill) came while trial 4 trained
        return trainer(study, splits, engine, [600])(proposals)

    with pytest.raises(KeyboardInterrupt):
        search(study, splits, engine, [600], tmp_path, lambda *a: calls.append(a[2]["learning_rate"]),
               interrupted_second_round)
    assert len(calls) == 3
    resumed = []
    [result] = search(study, splits, engine, [600], tmp_path, lambda *a: resumed.append(a[2]["learning_rate"]))
    assert not set(calls) & set(resumed)  # the finished trials are not trained again
    assert len(resumed) == 2  # the interrupted trial and the last one
    assert result["trials"] == 5


def test_independent_trials_train_together(tmp_path, splits, engine):
    study = quick("random", 4)
    rounds = []

    def counting(proposals):
        rounds.append(len(proposals))
        return trainer(study, splits, engine, [600])(proposals)

    [result] = search(study, splits, engine, [600], tmp_path, train=counting)
    assert rounds == [4] and result["trials"] == 4


def test_searches_side_by_side_keep_their_own_budgets(tmp_path, splits, engine):
    study = quick("bayesian", 2)
    seen = []
    results = search(study, splits, engine, [300, 900, 2000], tmp_path,
                     lambda job, n, values, score, info: seen.append((job.tag, info["widths"])))
    assert len(seen) == 6
    for budget, widths in seen:
        assert dense.count_mlp(widths, splits.input_shape, 10) <= budget
    assert [r["trials"] for r in results] == [2, 2, 2]


def test_an_unreadable_search_state_starts_the_search_over(tmp_path, splits, engine):
    study = quick("random", 2)
    search(study, splits, engine, [600], tmp_path)
    trial = next((tmp_path / "600").glob("trial_*/trial.json"))
    trial.write_text(trial.read_text()[:20])  # torn
    assert "is unreadable" in tuning.state_problem(tmp_path / "600")
    resets = []
    jobs = [tuning.SearchJob(str(tmp_path / "600"), searches.space(study, narrow(600)), "random", 2, tag=600)]
    [result] = tuning.search_many(jobs, trainer(study, splits, engine, [600]),
                                  on_reset=lambda job, problem: resets.append(problem))
    assert len(resets) == 1 and "trial.json is unreadable" in resets[0]
    assert result["trials"] == 2
