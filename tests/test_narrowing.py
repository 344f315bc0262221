"""The narrow arm's tuner: real KerasTuner oracles driving tf_keras models."""

import pytest
from conftest import tiny_study

from widthvsprune import NarrowSearch, Recipe, data, families, narrowing
from widthvsprune.backend import keras


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
        assert families.count_mlp(widths, splits.input_shape, 10) <= 600
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


def test_interrupted_search_resumes_without_redoing_finished_trials(tmp_path, splits):
    study = tiny_study(narrow=NarrowSearch(oracle="random", max_trials=3),
                       baseline=Recipe(epochs=1, batch_size=64))
    calls = []

    def interrupt_on_second(number, widths, lr, score, seconds):
        calls.append(lr)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        narrowing.search(study, splits, 600, tmp_path, on_trial=interrupt_on_second)
    resumed = []
    result = narrowing.search(study, splits, 600, tmp_path, on_trial=lambda n, w, lr, s, t: resumed.append(lr))
    assert calls[0] not in resumed  # the finished first trial is not trained again
    assert len(resumed) == 2  # the interrupted trial and the last one
    assert result["trials"] == 3


def test_hyperband_oracle_runs(tmp_path, splits):
    study = tiny_study(narrow=NarrowSearch(oracle="hyperband", epochs=3),
                       baseline=Recipe(epochs=1, batch_size=64))
    result = narrowing.search(study, splits, 600, tmp_path)
    assert result["trials"] >= 1 and result["params"] <= 600
