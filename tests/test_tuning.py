"""Searches: real KerasTuner oracles proposing trials that the engine trains."""

import json

import pytest
from conftest import tiny_study

from widthvsprune import Recipe, Tuning, data, executors
from widthvsprune.adapters import keras_tuner as kt_adapter
from widthvsprune.arms import SearchContext
from widthvsprune.arms import narrow as narrow_arm
from widthvsprune.families import dense
from widthvsprune.plan.planner import Search
from widthvsprune.run import progress, searcher, tuning
from widthvsprune.run.scheduler import Runner


@pytest.fixture(scope="module")
def splits():
    return data.load("digits")


@pytest.fixture(scope="module")
def engine():
    """Trials train in this process, as the local runner trains them."""
    return executors.create("local", "tf_keras")


ARM = narrow_arm.Narrow()


def narrow(budget):
    return Search("narrow", "tuned", 0.5, f"narrow-{budget}", {}, budget)


def trainer(study, splits, engine, budgets):
    contexts = [SearchContext(narrow(b)) for b in budgets]
    runner = Runner(study, None, splits, engine, progress.silent())
    return lambda proposals: searcher.train_trials(study, splits, runner, contexts, proposals)


def search(study, splits, engine, budgets, folder, on_trial=None, train=None):
    """Narrow searches at ``budgets`` side by side, as the runner runs them."""
    jobs = [tuning.SearchJob(str(folder / str(b)), ARM.space(study, narrow(b), None), study.tuning.oracle,
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
    match = narrow_arm.shape_for(study, result["values"], 600, splits.input_shape, 10)
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
    jobs = [tuning.SearchJob(str(tmp_path / "600"), ARM.space(study, narrow(600), None), "random", 2, tag=600)]
    [result] = tuning.search_many(jobs, trainer(study, splits, engine, [600]),
                                  on_reset=lambda job, problem: resets.append(problem))
    assert len(resets) == 1 and "trial.json is unreadable" in resets[0]
    assert result["trials"] == 2


def run_oracle(oracle_class, space, objective, trials, folder):
    """Drives an oracle by hand on a synthetic objective; returns the values it proposed, in order."""
    import keras_tuner as kt

    hp = kt.HyperParameters()
    space(hp)
    oracle = oracle_class(objective=kt.Objective("val_accuracy", "max"), max_trials=trials, num_initial_points=3,
                          seed=10_000, hyperparameters=hp, tune_new_entries=False)
    kt_adapter.attach(oracle, str(folder), "p")
    proposed = []
    for _ in range(trials):
        trial = oracle.create_trial("tuner0-0")
        proposed.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"val_accuracy": objective(trial.hyperparameters.values)})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    return proposed


def synthetic(values):
    import math

    return -abs(math.log(values["learning_rate"] / 3e-3)) - abs(math.log(values["share_1"]))


def synthetic_space(hp):
    hp.Float("learning_rate", 1e-4, 3e-2, sampling="log", default=1e-3)
    hp.Float("share_1", 0.25, 4.0, sampling="log", default=1.0)


def test_the_faster_acquisition_proposes_what_keras_tuners_bayesian_optimization_proposes(tmp_path):
    import keras_tuner as kt

    stock = run_oracle(kt.oracles.BayesianOptimizationOracle, synthetic_space, synthetic, 8, tmp_path / "a")
    fast = run_oracle(tuning._fast_acquisition(kt.oracles.BayesianOptimizationOracle), synthetic_space, synthetic, 8,
                      tmp_path / "b")
    assert fast == stock


def test_an_acquisition_search_whose_gradient_points_come_in_one_call_ends_where_it_ends_point_by_point():
    import numpy as np
    import scipy.optimize
    from sklearn.gaussian_process import GaussianProcessRegressor, kernels

    if not tuning.BATCHED:
        pytest.skip("SciPy before 1.16 evaluates a gradient's points one by one")
    rng = np.random.default_rng(2)
    x, y = rng.uniform(size=(6, 3)), rng.normal(size=6)
    gpr = GaussianProcessRegressor(kernel=kernels.Matern(nu=2.5), normalize_y=True, alpha=1e-4,
                                   n_restarts_optimizer=20, random_state=0).fit(x, y)
    calls = []

    def bounds_at(points):
        calls.append(len(points))
        mean, std = tuning._posterior(gpr, points)
        return mean - 2.6 * std

    def bound(point):
        return bounds_at(point.reshape(1, -1))[0]

    batched = tuning.batched_gradients(bounds_at)
    limits = np.array([[0.0, 1.0]] * 3)
    for start in rng.uniform(size=(10, 3)):
        alone = scipy.optimize.minimize(bound, x0=start, bounds=limits, method="L-BFGS-B")
        together = scipy.optimize.minimize(bound, x0=start, bounds=limits, method="L-BFGS-B", options=batched)
        assert together.x.tobytes() == alone.x.tobytes()
        assert np.float64(together.fun).tobytes() == np.float64(alone.fun).tobytes()
        assert together.nit == alone.nit
    assert 3 in calls  # the three points of a gradient in one call


def test_a_bayesian_proposal_that_was_tried_already_is_replaced_by_an_untried_one(tmp_path):
    import keras_tuner as kt

    def space(hp):  # one knob whose best value is the top of its range, like a baseline's learning rate
        hp.Float("learning_rate", 1e-4, 3e-2, sampling="log", default=1e-3)

    def rising(values):
        return values["learning_rate"]

    stock = run_oracle(kt.oracles.BayesianOptimizationOracle, space, rising, 8, tmp_path / "a")
    fast = run_oracle(tuning._fast_acquisition(kt.oracles.BayesianOptimizationOracle), space, rising, 8,
                      tmp_path / "b")
    assert len({v["learning_rate"] for v in stock}) < 8  # KerasTuner proposes the bound again
    assert len({v["learning_rate"] for v in fast}) == 8
    first_repeat = next(i for i, v in enumerate(stock) if v in stock[:i])
    assert fast[:first_repeat] == stock[:first_repeat]  # the same proposals until KerasTuner repeats one


@pytest.mark.parametrize("oracle", ["bayesian", "random"])
def test_every_search_tries_the_recipe_as_written_first(tmp_path, oracle):
    job = tuning.SearchJob(str(tmp_path / "s"), synthetic_space, oracle, 4, seed=10_000)
    proposed = []

    def train(proposals):
        proposed.extend(p.values for p in proposals)
        return [(synthetic(p.values), {}) for p in proposals]

    [result] = tuning.search_many([job], train)
    assert proposed[0] == {"learning_rate": 1e-3, "share_1": 1.0}  # the space's defaults
    assert len({tuple(sorted(v.items())) for v in proposed}) == 4 and result["trials"] == 4
    assert result["score"] >= synthetic(proposed[0])  # never worse than the recipe


def test_a_bayesian_search_proposes_a_batch_at_a_time_after_its_first_trials(tmp_path):
    rounds = []

    def train(proposals):
        rounds.append([p.values for p in proposals])
        return [(synthetic(p.values), {}) for p in proposals]

    first = ({"learning_rate": 3e-3},)  # one given trial after the recipe
    job = tuning.SearchJob(str(tmp_path / "s"), synthetic_space, "bayesian", 8, seed=10_000, first=first, batch=2)
    [result] = tuning.search_many([job], train)
    # The recipe, the given trial and a random initial point together; then the model-guided trials two at a time.
    assert [len(r) for r in rounds] == [3, 2, 2, 1] and result["trials"] == 8
    assert rounds[0][1] == {"learning_rate": 3e-3, "share_1": 1.0}
    proposed = [tuple(sorted(v.items())) for r in rounds for v in r]
    assert len(set(proposed)) == 8  # a batch's proposals differ: the pending ones count at a pessimistic estimate


class Stop(Exception):
    """Stands for a kill: the search stops here, with its files as they are."""


def beside(proposals):
    """Scores that depend, in their last bits, on the trials each trial trains beside (its search's round), as a
    model's float sums depend on its pack."""
    return [(synthetic(p.values) + 1e-12 * sum(int(q.trial) + 1 for q in proposals if q.job == p.job), {})
            for p in proposals]


def two_searches(folder, oracle):
    """Two searches of 5 trials. Rounds (Bayesian): the recipe, the given trial and a random point; then two
    model-guided trials. Their trials end in this order: a0 a1 a2 b0 b1 b2, then a3 a4 b3 b4."""
    first = ({"learning_rate": 3e-3},)
    return [tuning.SearchJob(str(folder / name), synthetic_space, oracle, 5, seed=seed, first=first, batch=2)
            for name, seed in (("a", 10_000), ("b", 20_000))]


def saved_trials(folder):
    """``{trial id: (values, score, status)}`` of a search's trial files."""
    out = {}
    for path in sorted(folder.glob("trial_*/trial.json")):
        state = json.loads(path.read_text())
        out[state["trial_id"]] = (state["hyperparameters"]["values"], state["score"], state["status"])
    return out


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """``{oracle: (folder, results)}`` of the two searches run once without a stop."""
    out = {}
    for oracle in ("bayesian", "random"):
        folder = tmp_path_factory.mktemp(oracle)
        out[oracle] = folder, tuning.search_many(two_searches(folder, oracle), beside)
    return out


@pytest.mark.parametrize("oracle,where,at", [
    ("bayesian", "train", 2),  # the second round proposed and listed, not trained
    ("bayesian", "trial", 2),  # a0 and a1 ended, a2 not: the round is cut short
    ("bayesian", "trial", 3),  # a's first round ended, b's not begun to
    ("bayesian", "trial", 7),  # a3 ended, a4 not
    ("random", "trial", 4),  # b0 ended, b1..b4 not
])
def test_a_search_stopped_anywhere_resumes_to_the_same_trials_and_scores(tmp_path, uninterrupted, oracle, where, at):
    whole, found = uninterrupted[oracle]
    calls = {"train": 0, "trial": 0}

    def count(kind):
        calls[kind] += 1
        if kind == where and calls[kind] == at:
            raise Stop()

    def train(proposals):
        count("train")
        return beside(proposals)

    with pytest.raises(Stop):
        tuning.search_many(two_searches(tmp_path, oracle), train, lambda *a: count("trial"))
    rounds = []

    def resumed_train(proposals):
        rounds.append(proposals)
        return beside(proposals)

    again = tuning.search_many(two_searches(tmp_path, oracle), resumed_train)
    assert again == found
    for name in ("a", "b"):
        assert saved_trials(tmp_path / name) == saved_trials(whole / name)
        assert not (tmp_path / name / tuning.ROUND).exists()
    # A round cut short after some of its trials ended trains again whole: those trials beside the others.
    assert any(p.replay for p in rounds[0]) == (where == "trial" and at != 3)


def test_equal_scores_choose_the_first_trial_after_a_resume_too(tmp_path):
    job = tuning.SearchJob(str(tmp_path / "s"), synthetic_space, "random", 5, seed=10_000)
    ended = []

    def stop_after_three(*args):
        ended.append(args)
        if len(ended) == 3:
            raise Stop()

    with pytest.raises(Stop):
        tuning.search_many([job], lambda proposals: [(0.5, {}) for _ in proposals], stop_after_three)
    [result] = tuning.search_many([job], lambda proposals: [(0.5, {}) for _ in proposals])
    assert result["trials"] == 5
    assert result["values"] == {"learning_rate": 1e-3, "share_1": 1.0}  # trial 0: the recipe as written
