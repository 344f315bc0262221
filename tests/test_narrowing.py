"""The narrow arm's tuner: real KerasTuner oracles driving tf_keras models."""

import pytest
from conftest import tiny_study

from widthvsprune import NarrowSearch, Recipe, data, narrowing
from widthvsprune.backend import keras
from widthvsprune.families import dense


@pytest.fixture(scope="module")
def splits():
    return data.load("digits")


def test_tuner_trains_tf_keras_models_within_the_budget(tmp_path, splits):
    study = tiny_study(narrow=NarrowSearch(oracle="bayesian", max_trials=3),
                       baseline=Recipe(epochs=1, batch_size=64))
    seen = []
    result = narrowing.search(study, splits, 600, tmp_path, on_trial=lambda *a: seen.append(a))
    assert len(seen) == 3 and result["trials"] == 3
    for _, widths, lr, score, _ in seen:
        assert dense.count_mlp(widths, splits.input_shape, 10) <= 600
        assert study.narrow.learning_rate_min <= lr <= study.narrow.learning_rate_max
        assert 0.0 <= score <= 1.0
    assert result["params"] <= 600 and result["params"] >= 0.9 * 600
    assert result["val_accuracy"] == max(s for *_, s, _ in seen)
    assert (tmp_path / "search" / "oracle.json").exists()


def test_tuner_accepts_tf_keras_models(tmp_path, splits):
    built = []
    original = narrowing.models.build

    def spy(*args, **kwargs):
        model = original(*args, **kwargs)
        built.append(model)
        return model

    narrowing.models.build = spy
    try:
        narrowing.search(tiny_study(narrow=NarrowSearch(oracle="random", max_trials=1)), splits, 500, tmp_path)
    finally:
        narrowing.models.build = original
    assert built and all(isinstance(m, keras.Model) for m in built)


def test_interrupted_search_resumes_without_redoing_finished_trials(tmp_path, splits, monkeypatch):
    # Bayesian, 5 trials: the 3 random initial points train together, then one trial per fit.
    study = tiny_study(narrow=NarrowSearch(oracle="bayesian", max_trials=5),
                       baseline=Recipe(epochs=1, batch_size=64))
    real_fit, fits, calls = narrowing.training.fit_packed, [], []

    def interrupted_second_fit(*args, **kwargs):
        fits.append(1)
        if len(fits) == 2:
            raise KeyboardInterrupt  # as if ctrl-C (or a kill) came while trial 4 trained
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(narrowing.training, "fit_packed", interrupted_second_fit)
    with pytest.raises(KeyboardInterrupt):
        narrowing.search(study, splits, 600, tmp_path, on_trial=lambda n, w, lr, s, t: calls.append(lr))
    monkeypatch.setattr(narrowing.training, "fit_packed", real_fit)
    assert len(calls) == 3
    resumed = []
    result = narrowing.search(study, splits, 600, tmp_path, on_trial=lambda n, w, lr, s, t: resumed.append(lr))
    assert not set(calls) & set(resumed)  # the finished trials are not trained again
    assert len(resumed) == 2  # the interrupted trial and the last one
    assert result["trials"] == 5


def test_independent_trials_train_together(tmp_path, splits, monkeypatch):
    study = tiny_study(narrow=NarrowSearch(oracle="random", max_trials=4), baseline=Recipe(epochs=1, batch_size=64))
    real_fit, packs = narrowing.training.fit_packed, []

    def counting_fit(branches, *args, **kwargs):
        packs.append(len(branches))
        return real_fit(branches, *args, **kwargs)

    monkeypatch.setattr(narrowing.training, "fit_packed", counting_fit)
    result = narrowing.search(study, splits, 600, tmp_path)
    assert packs == [4] and result["trials"] == 4


def test_searches_side_by_side_keep_their_own_budgets(tmp_path, splits):
    study = tiny_study(narrow=NarrowSearch(oracle="bayesian", max_trials=2),
                       baseline=Recipe(epochs=1, batch_size=64))
    jobs = [narrowing.SearchJob(b, str(tmp_path / str(b)), tag=b) for b in (300, 900, 2000)]
    seen = []
    results = narrowing.search_many(study, splits, jobs, on_trial=lambda tag, n, w, *_: seen.append((tag, w)))
    assert len(seen) == 6
    for tag, widths in seen:
        assert dense.count_mlp(widths, splits.input_shape, 10) <= tag
    assert [r["trials"] for r in results] == [2, 2, 2]
    assert all(r["params"] <= job.budget for r, job in zip(results, jobs))


def test_hyperband_oracle_runs(tmp_path, splits):
    study = tiny_study(narrow=NarrowSearch(oracle="hyperband", epochs=3),
                       baseline=Recipe(epochs=1, batch_size=64))
    result = narrowing.search(study, splits, 600, tmp_path)
    assert result["trials"] >= 1 and result["params"] <= 600


def test_keras_tuners_own_search_loop_runs_narrow_trials(tmp_path, splits):
    study = tiny_study(narrow=NarrowSearch(oracle="random", max_trials=2), baseline=Recipe(epochs=1, batch_size=64))
    seen = []
    tuner = narrowing.NarrowTuner(
        study, splits, 600, on_trial=lambda *a: seen.append(a),
        oracle=narrowing.make_oracle(study, narrowing.hyperparameters(study), 1),
        directory=str(tmp_path), project_name="stock",
    )
    tuner.search(verbose=0)
    assert len(seen) == 2
    assert all(dense.count_mlp(widths, splits.input_shape, 10) <= 600 for _, widths, *_ in seen)
    assert tuner.oracle.get_best_trials(1)[0].score == max(s for *_, s, _ in seen)
