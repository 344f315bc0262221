"""A study that starts from the user's trained weights (`Study.pretrained`): the baseline is the saved model evaluated
as it is, the pruned arm prunes exactly those weights, and the keys hold their fingerprint."""

import json

import numpy as np
import pandas as pd
import pytest

from widthvsprune import Pruning, Recipe, Study, Tuning, data, families, keys, store
from widthvsprune.errors import StudyError


def trained_model(epochs=8, seed=0):
    """A small Keras 3 MLP trained on the digits training split, as a user would train it."""
    import keras

    splits = data.load("digits")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(splits.input_shape, name="pixels"), keras.layers.Flatten(name="flat"),
                              keras.layers.Dense(24, activation="relu", name="hidden"),
                              keras.layers.Dense(12, activation="relu", name="narrower"),
                              keras.layers.Dense(10, activation="softmax", name="classes")], name="trained")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(splits.x_train, splits.y_train, epochs=epochs, batch_size=64, verbose=0)
    return model


def pretrained_study(path, **overrides):
    fields = dict(name="pretrained", dataset="digits", family=f"model:{path}", pretrained="declared",
                  sparsities=(0.5, 0.9), seeds=(0, 1), baseline=Recipe(epochs=8, batch_size=64),
                  finetune=Recipe(epochs=2, batch_size=64),
                  # Every kernel reaches its final sparsity at the first mask update; later updates keep its zeros.
                  pruning=Pruning(initial_sparsity=0.99), tuning=Tuning(oracle="random", trials=2, rescore=0))
    fields.update(overrides)
    return Study(**fields)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished study started from a saved model's weights: ``(study, results folder, the file's weights, the
    file's model)``."""
    from widthvsprune import run_study

    base = tmp_path_factory.mktemp("pretrained")
    model = trained_model()
    path = base / "trained.keras"
    model.save(path)
    study = pretrained_study(path)
    result = run_study(study, out=base / "results", workers=1, stream=open(base / "log.txt", "w"))
    assert not result.failed
    return study, base / "results" / study.name, [np.asarray(w) for w in model.get_weights()], model


def records(root):
    out = []
    for path in sorted((root / "runs").rglob("record.json")):
        out.append((path.parent, json.loads(path.read_text())))
    return out


def test_the_baseline_is_the_files_model_evaluated_as_it_is_and_nothing_is_retrained(finished):
    study, root, weights, model = finished
    baselines = [(folder, r) for folder, r in records(root) if r["arm"] == "baseline"]
    # Every evaluation seed, and the search seed the searches start from; no baseline search.
    assert sorted(r["seed"] for _, r in baselines) == sorted([*study.seeds, study.search_seed])
    assert not any("baseline" in p.name for p in (root / "searches").iterdir()) if (root / "searches").exists() \
        else True
    splits = data.load("digits")
    expected = float(np.mean(np.argmax(model.predict(splits.x_test, verbose=0), axis=-1) == splits.y_test))
    for folder, record in baselines:
        stored = store.read_weights(store.weights_npz(folder))
        assert len(stored) == len(weights) and all(np.array_equal(a, b) for a, b in zip(stored, weights))
        history = pd.read_csv(store.history_csv(folder))
        assert list(history.epoch) == [0]  # evaluated, not trained
        assert record["test_accuracy"] == expected
        assert record["pretrained"] == "declared"
        assert record["weights_fingerprint"] == families.weights_fingerprint(tuple(weights))


def test_status_and_report_of_the_finished_study_read_the_records_and_never_load_keras(finished):
    """Beside the model file, ``status`` would derive its family with Keras; the records say all it needs."""
    import subprocess
    import sys

    _, root, _, _ = finished
    probe = ("import contextlib, io, sys; from widthvsprune import cli\n"
             "out = io.StringIO()\n"
             "with contextlib.redirect_stdout(out): cli.main(['status', sys.argv[1]])\n"
             "print(out.getvalue()); print(sorted(m for m in ('keras', 'jax', 'tensorflow') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe, str(root)], capture_output=True, text=True, timeout=300,
                            cwd=root.parent.parent)  # where trained.keras is
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
    assert "baseline  2/2 done, 0 failed, 0 missing" in result.stdout and "searches  5 done of 5" in result.stdout


def test_the_pruned_arm_prunes_the_files_weights_at_its_first_mask_update(finished):
    """At the first update every kernel reaches its final sparsity (initial_sparsity above every target), and the
    later updates keep its zeros: so the weights a pruned model kept are the file's largest in magnitude, layer by
    layer. A retrained baseline would have other weights, and another mask."""
    _, root, weights, _ = finished
    kernels = [w for w in weights if w.ndim == 2]  # the three Dense kernels, model order
    pruned = [(folder, r) for folder, r in records(root) if r["arm"] == "pruned" and r.get("status") == "ok"]
    assert len(pruned) == 8  # two sizes, tuned and untuned, two seeds
    for folder, record in pruned:
        stored = [w for w in store.read_weights(store.weights_npz(folder)) if w.ndim == 2]
        assert len(stored) == len(kernels)
        for own, file in zip(stored, kernels):
            kept = own != 0
            assert 0 < kept.sum() < kept.size
            assert np.abs(file[kept]).min() >= np.abs(file[~kept]).max(), record["label"]


def test_the_dense_reference_and_the_narrow_arm_trained_and_the_reports_say_so(finished):
    study, root, _, _ = finished
    runs = pd.read_csv(root / "runs.csv")
    assert set(runs.arm) == {"baseline", "pruned", "dense_finetuned", "narrow"}
    assert (runs[runs.arm == "narrow"].steps == runs[runs.arm == "pruned"].steps.iloc[0]).all()
    report = (root / "report.md").read_text()
    assert "the trained weights" in report and "budgets are unknown" not in report


def test_run_keys_hold_the_weights_fingerprint_and_studies_without_weights_keep_theirs(tmp_path):
    from widthvsprune import family_from_model, register_family
    from widthvsprune.arms import shared

    configs = []
    for seed in (0, 1):  # the same model, other weights, under one family name
        register_family(family_from_model(trained_model(epochs=1, seed=seed), name="pt_mlp", use_weights=True),
                        overwrite=True)
        configs.append(shared.baseline_config(pretrained_study("unused", family="pt_mlp")))
    assert configs[0]["pretrained"]["weights"] != configs[1]["pretrained"]["weights"]
    assert keys.run_key(configs[0], "baseline") != keys.run_key(configs[1], "baseline")
    assert {k: v for k, v in configs[0].items() if k != "pretrained"} == \
        {k: v for k, v in configs[1].items() if k != "pretrained"}
    # The same model without pretrained: no fingerprint, as in every study before this field.
    assert "pretrained" not in shared.baseline_config(pretrained_study("unused", family="pt_mlp", pretrained=None))


@pytest.mark.parametrize("field,value,line", [
    ("pretrained", "yes", "pretrained: Expected None, 'declared'"),
    ("family", "mlp", "pretrained: Expected a family that carries trained weights"),
    ("widths", (20, 12), "pretrained: Expected the model's own widths (24, 12)"),
])
def test_a_study_that_cannot_start_from_weights_is_one_line(tmp_path, field, value, line):
    trained_model(epochs=1).save(tmp_path / "m.keras")
    overrides = {field: value}
    if field == "family":
        overrides["widths"] = (24, 12)
    with pytest.raises(StudyError) as error:
        pretrained_study(tmp_path / "m.keras", **overrides)
    found = [p for p in error.value.problems if p.startswith("pretrained:")]
    assert len(found) == 1 and found[0].startswith(line), error.value.problems


def test_weights_that_do_not_fit_the_data_are_named_before_training(tmp_path):
    from widthvsprune import register_dataset, run_study

    trained_model(epochs=1).save(tmp_path / "m.keras")
    splits = data.load("digits", validation_fraction=0.01)
    keep_train, keep_test = splits.y_train < 3, splits.y_test < 3
    register_dataset("three_digits", lambda: (splits.x_train[keep_train], splits.y_train[keep_train],
                                              splits.x_test[keep_test], splits.y_test[keep_test]), overwrite=True)
    study = pretrained_study(tmp_path / "m.keras", dataset="three_digits")
    with pytest.raises(StudyError) as error:
        run_study(study, out=tmp_path / "results", workers=1, stream=open(tmp_path / "log.txt", "w"))
    (line,) = error.value.problems
    assert line.startswith("pretrained: Expected trained weights that fit family") and "3 classes" in line
    assert "Received: weights of" in line
    assert not (tmp_path / "results" / study.name / "runs").exists()  # nothing trained


def test_weights_of_an_unknown_recipe_warn_that_the_budgets_are_unknown(tmp_path):
    from widthvsprune.analysis import diagnostics

    trained_model(epochs=1).save(tmp_path / "m.keras")
    runs = pd.DataFrame({"arm": ["narrow", "narrow", "pruned"], "steps": [210.0, 210.0, 210.0]})
    unknown = pretrained_study(tmp_path / "m.keras", pretrained="unknown")
    (warning,) = diagnostics.pretrained_warnings(unknown, runs)
    assert "budgets are unknown" in warning and "210 steps" in warning
    assert diagnostics.pretrained_warnings(pretrained_study(tmp_path / "m.keras"), runs) == []


def test_an_under_trained_model_of_the_users_is_named_as_such_not_as_a_recipe():
    from widthvsprune.analysis.hypothesis import words

    row = pd.Series({"reference": "dense_finetuned tuned", "reference_gain": 0.05, "baseline_accuracy": 0.9,
                     "trained_baseline_accuracy": 0.85})
    assert words.under_trained(row, 0.01).startswith("The baseline recipe is under-trained: ")
    theirs = words.under_trained(row, 0.01, pretrained=True)
    assert theirs.startswith("The trained model is under-trained: ") and "train it longer" in theirs
    assert words.under_trained(row, 0.1, pretrained=True) == ""  # within the tolerance: nothing to say


def test_the_reports_answer_speaks_of_the_trained_model(finished):
    _, root, _, _ = finished
    report = (root / "report.md").read_text()
    assert "baseline recipe is under-trained" not in report
    assert "under-trained" not in report or "The trained model is under-trained" in report


def test_a_dry_run_says_the_trained_model_is_evaluated_not_trained(tmp_path):
    from widthvsprune.run import overview

    trained_model(epochs=1).save(tmp_path / "m.keras")
    lines = overview.dry_run(pretrained_study(tmp_path / "m.keras"), tmp_path / "results" / "pretrained")
    baselines = [line for line in lines if line.startswith("  baseline")]
    assert len(baselines) == 3 and all(line.endswith(": to evaluate") for line in baselines)
