"""Batch normalization recalibrated before evaluation on both engines, its keys, and broken evaluations flagged."""

import pathlib

import keras
import numpy as np
import pandas as pd
import pytest

from widthvsprune import Family, Study, Tuning, data, engines, families, family_from_model, keys, register_family
from widthvsprune.analysis import compare, diagnostics, stats
from widthvsprune.arms import baseline as baseline_arm
from widthvsprune.engines import base
from widthvsprune.plan import planner
from widthvsprune.pruning import schedules
from widthvsprune.study.loading import load_study

RELEASE_0_2 = pathlib.Path(__file__).resolve().parent / "data" / "release-0.2.0"
BATCH = 64
MOMENTUM = 0.99
MEAN, VARIANCE = 4, 5  # positions of the moving statistics in get_weights() order (after kernel, bias, gamma, beta)


def build_bn_mlp(widths, input_shape, num_classes, keras):
    """Flatten -> Dense -> BatchNormalization -> ReLU -> Dense: the normalized layer's inputs are ``x @ W + b``."""
    return keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(), keras.layers.Dense(widths[0]),
                             keras.layers.BatchNormalization(momentum=MOMENTUM), keras.layers.ReLU(),
                             keras.layers.Dense(num_classes)])


register_family(Family("bn_dense_test", (16,), None, build_bn_mlp, 1), overwrite=True)


def timeseries_classifier(filters=64, length=40, classes=10):
    """keras.io's timeseries classifier (three Conv1D + BatchNormalization + ReLU blocks, global average pooling,
    softmax), for MNIST-1D's sequences of ``length`` values."""
    inputs = keras.Input((length,))
    x = keras.layers.Reshape((length, 1))(inputs)
    for _ in range(3):
        x = keras.layers.Conv1D(filters, 3, padding="same")(x)
        x = keras.layers.BatchNormalization()(x)
        x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="timeseries_bn_test")


def keras_of(name):
    """The Keras module an engine builds with."""
    if name == "jax":
        return keras
    from widthvsprune.engines.tf_keras.backend import keras as tf_keras

    return tf_keras


def rebuilt(name, family, widths, splits, weights):
    """The family's model built with the engine's own Keras and given ``weights``."""
    model = families.get_family(family).build(tuple(widths), splits.input_shape, splits.num_classes, keras_of(name))
    model.set_weights([np.asarray(w) for w in weights])
    return model


def keras_accuracy(name, model, x, y):
    """Keras's own evaluation (``model.evaluate``, inference mode) of a logits model of engine ``name``'s Keras."""
    model.compile(loss=keras_of(name).losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return float(model.evaluate(x, y, batch_size=256, verbose=0)[1])


def train_one(name, splits, epochs=2, learning_rate=3e-3, recalibrate=True, prune=None, family="bn_dense_test",
              widths=(16,)):
    pack = base.Pack((base.ModelSpec(family, tuple(widths), 0, learning_rate, prune=prune),), BATCH, "adam", epochs,
                     recalibrate_batchnorm=recalibrate)
    (outcome,) = engines.load(name).train(pack, splits)
    assert outcome.ok, outcome.error
    return outcome


def hidden_inputs(splits, weights):
    """The normalized layer's inputs over the training split, in float64 (NumPy, not the engine)."""
    x = splits.x_train.reshape(len(splits.x_train), -1).astype(np.float64)
    return x @ np.asarray(weights[0], np.float64) + np.asarray(weights[1], np.float64)


@pytest.fixture(scope="module")
def splits():
    from jax_helpers import small_splits

    return small_splits()  # 300 digits: four batches of 64 and a short one of 44


@pytest.mark.parametrize("name", engines.ENGINES)
def test_recalibrated_statistics_are_the_exact_statistics_of_the_layer_inputs_over_the_training_split(name, splits):
    outcome = train_one(name, splits)
    h = hidden_inputs(splits, outcome.weights)
    batches = base.recalibration_batches(len(h), BATCH)
    assert sorted(len(b) for b in batches) == [44, 64, 64, 64, 64]
    np.testing.assert_allclose(outcome.weights[MEAN], h.mean(axis=0), rtol=1e-4, atol=1e-5)
    variance = sum(len(b) * h[b].var(axis=0) for b in batches) / len(h)
    np.testing.assert_allclose(outcome.weights[VARIANCE], variance, rtol=1e-4, atol=1e-5)
    # The stored weights evaluate as the engine did: the model reloaded from them scores the engine's test accuracy.
    model = rebuilt(name, "bn_dense_test", (16,), splits, outcome.weights)
    assert keras_accuracy(name, model, splits.x_test, splits.y_test) == pytest.approx(outcome.test_accuracy, abs=1e-6)


@pytest.mark.parametrize("name", engines.ENGINES)
def test_turned_off_the_moving_statistics_are_kerass_own_momentum_averages(name, splits):
    # At learning rate 0 the weights never move, so Keras's update can be replayed in NumPy batch by batch.
    outcome = train_one(name, splits, epochs=1, learning_rate=0.0, recalibrate=False)
    h = hidden_inputs(splits, outcome.weights)
    mean, variance = np.zeros(h.shape[1]), np.ones(h.shape[1])
    order = base.batch_order(len(h), 1, 0)[0]
    for start in range(0, len(h), BATCH):
        batch = h[order[start : start + BATCH]]
        mean = MOMENTUM * mean + (1 - MOMENTUM) * batch.mean(axis=0)
        variance = MOMENTUM * variance + (1 - MOMENTUM) * batch.var(axis=0)
    np.testing.assert_allclose(outcome.weights[MEAN], mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(outcome.weights[VARIANCE], variance, rtol=1e-4, atol=1e-5)
    assert not np.allclose(outcome.weights[MEAN], h.mean(axis=0), rtol=0.1)  # far from the recalibrated ones


@pytest.mark.parametrize("name", engines.ENGINES)
def test_recalibration_changes_only_the_moving_statistics_and_keeps_a_pruned_models_zeros(name, splits):
    steps = schedules.schedule_steps(len(splits.x_train), BATCH, 2, 2, 0, 0.75)
    prune = base.PruneSpec(0.7, steps, prune_output=False)
    on = train_one(name, splits, prune=prune)
    off = train_one(name, splits, prune=prune, recalibrate=False)
    kernels = (on.weights[0], on.weights[6])  # the output kept dense, the hidden kernel took its zeros
    zeros = sum(int(np.sum(k == 0)) for k in kernels) / sum(k.size for k in kernels)
    assert zeros == pytest.approx(0.7, abs=0.01) and np.all(kernels[1] != 0)
    for i, (a, b) in enumerate(zip(on.weights, off.weights)):
        if i in (MEAN, VARIANCE):
            assert not np.allclose(a, b)
        else:
            np.testing.assert_array_equal(a == 0, b == 0)
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # Recalibrating the plain model that training without recalibration left gives the pack's statistics.
    if name == "tf_keras":
        from widthvsprune.engines.tf_keras import training

        model = rebuilt(name, "bn_dense_test", (16,), splits, off.weights)
        assert training.recalibrate_batchnorm(model, splits.x_train, BATCH)
        after = model.get_weights()
        np.testing.assert_allclose(after[MEAN], on.weights[MEAN], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(after[0], off.weights[0])
        assert [layer.momentum for layer in training.normalizations(model)] == [MOMENTUM]


def test_mnist1d_timeseries_classifier_evaluates_above_chance_only_when_recalibrated():
    family = register_family(family_from_model(timeseries_classifier()), overwrite=True)
    assert family.batchnorm and families.batch_normalized(family.name)
    mnist1d = data.load("mnist1d")
    on = train_one("jax", mnist1d, epochs=3, learning_rate=1e-3, family=family.name, widths=family.default_widths)
    off = train_one("jax", mnist1d, epochs=3, learning_rate=1e-3, recalibrate=False, family=family.name,
                    widths=family.default_widths)
    trained = on.history[-1]["accuracy"]
    assert trained == off.history[-1]["accuracy"] and trained > 0.7  # the same training either way
    n, classes = len(mnist1d.y_test), mnist1d.num_classes
    # Keras's own evaluation of the trained weights, without recalibration: chance, a broken evaluation.
    plain = keras_accuracy("jax", rebuilt("jax", family.name, family.default_widths, mnist1d, off.weights),
                           mnist1d.x_test, mnist1d.y_test)
    assert off.test_accuracy == pytest.approx(plain, abs=1e-6)
    assert stats.at_chance(plain, classes, n) and stats.broken_evaluation(trained, plain, classes, n)
    # Recalibrated: well above chance, and Keras evaluates the stored weights the same.
    assert on.test_accuracy > 0.6 and on.val_accuracy > 0.6
    assert not stats.broken_evaluation(trained, on.test_accuracy, classes, n)
    recalibrated = keras_accuracy("jax", rebuilt("jax", family.name, family.default_widths, mnist1d, on.weights),
                                  mnist1d.x_test, mnist1d.y_test)
    assert recalibrated == pytest.approx(on.test_accuracy, abs=1e-6)
    assert on.history[-1]["val_accuracy"] == on.val_accuracy


def test_a_family_says_whether_it_normalizes_or_its_builder_is_read():
    assert families.batch_normalized("resnet") and families.batch_normalized("mobilenet")
    assert not any(families.batch_normalized(f) for f in ("mlp", "seed_cnn", "lenet5", "cnn1d", "gru"))
    assert families.batch_normalized("bn_dense_test")  # its builder names BatchNormalization
    plain = families.get_family("mlp")
    assert not families.batch_normalized(Family("read_mlp", (8,), None, plain.build, None))
    assert families.batch_normalized(Family("said", (8,), None, plain.build, None, batchnorm=True))


def test_keys_of_models_without_batch_normalization_are_unchanged():
    study = load_study(RELEASE_0_2 / "tiny.py")  # an MLP study whose results release 0.2 wrote
    assert study.recalibrate_batchnorm
    keys_of = {r.key for r in planner.plan(study).runs if r.arm == "baseline"}
    assert keys_of == {"baseline-e2bf00bbceca"}
    assert "baseline-e2bf00bbceca" in {p.name for p in (RELEASE_0_2 / "tiny" / "runs").iterdir()}


def test_keys_of_models_with_batch_normalization_say_they_are_recalibrated_and_off_gives_the_old_keys():
    fields = dict(name="bn", dataset="digits", family="bn_dense_test", widths=(16,), sparsities=(0.5,),
                  tuning=Tuning(oracle="random", trials=2, controls=True), engine="jax")
    on, off = Study(**fields), Study(**fields, recalibrate_batchnorm=False)
    config_on, config_off = baseline_arm.config(on), baseline_arm.config(off)
    assert config_on == {**config_off, "batchnorm": "recalibrated"}
    assert keys.run_key(config_on, "baseline") != keys.run_key(config_off, "baseline")
    runs_on, runs_off = planner.plan(on).runs, planner.plan(off).runs
    assert all(r.config.get("batchnorm") == "recalibrated" or r.config["baseline"]["batchnorm"] == "recalibrated"
               for r in runs_on)
    assert not any("batchnorm" in str(r.config) for r in runs_off)
    assert not {r.key for r in runs_on} & {r.key for r in runs_off}


def test_the_field_is_checked_and_a_study_recorded_before_it_reads_back_as_off():
    from widthvsprune import StudyError
    from widthvsprune.study import study_from_dict

    with pytest.raises(StudyError, match=r"recalibrate_batchnorm: Expected True or False. "
                                         r"Received: recalibrate_batchnorm='yes'"):
        Study(recalibrate_batchnorm="yes")
    recorded = Study(name="old").to_dict()
    assert recorded["recalibrate_batchnorm"] is True
    del recorded["recalibrate_batchnorm"]
    assert study_from_dict(recorded).recalibrate_batchnorm is False  # it evaluated with the moving averages


def runs_table(narrow_broken):
    rows = []
    for arm, accuracy, params, total in (("pruned", 0.9, 1000, 9000), ("narrow", 0.11, 990, 990)):
        for seed in (0, 1, 2):
            rows.append({"arm": arm, "tuning": "tuned", "target_sparsity": 0.9, "seed": seed,
                         "test_accuracy": accuracy + 0.005 * seed, "test_examples": 1000, "nonzero_params": params,
                         "total_params": total, "widths": "16", "train_accuracy": 0.88,
                         "diverged": arm == "narrow", "broken_evaluation": narrow_broken and arm == "narrow"})
    return pd.DataFrame(rows)


def test_a_model_at_chance_with_high_training_accuracy_is_flagged_and_its_contrast_gets_no_verdict():
    assert stats.broken_evaluation(0.88, 0.11, 10, 1000)
    assert not stats.broken_evaluation(0.30, 0.11, 10, 1000)  # it did not train either: diverged, not broken
    assert not stats.broken_evaluation(0.88, 0.60, 10, 1000)  # evaluated above chance
    headline = [c for c in compare.all_contrasts(runs_table(True)) if c.name == "tuned vs tuned"]
    broken = compare.compare(runs_table(True), contrasts=headline).iloc[0]
    assert broken.verdict == compare.UNRELIABLE and "evaluated at chance" in broken.note
    assert compare.compare(runs_table(False), contrasts=headline).iloc[0].verdict == compare.DIVERGED
    warnings = diagnostics.broken_evaluation_warnings(runs_table(True))
    assert len(warnings) == 3 and "narrow tuned sparsity=0.9 seed=0 widths=16" in warnings[0]
    assert "training accuracy 88.0%" in warnings[0] and "test accuracy 11.0%" in warnings[0]
    assert not diagnostics.divergence_warnings(runs_table(True))  # named once, as a broken evaluation
    assert diagnostics.divergence_warnings(runs_table(False))


@pytest.mark.parametrize("forward", ["keras", "batched"])
def test_every_model_of_a_padded_jax_pack_gets_its_own_exact_statistics(forward, splits):
    from widthvsprune.engines import jax as jax_engine

    engine = jax_engine.create(forward=forward)
    specs = tuple(base.ModelSpec("bn_dense_test", (w,), seed, 3e-3) for w, seed in ((16, 0), (10, 1), (6, 2)))
    outcomes = engine.train(base.Pack(specs, BATCH, "adam", 2), splits)
    batches = base.recalibration_batches(len(splits.x_train), BATCH)
    for spec, outcome in zip(specs, outcomes):
        assert outcome.weights[MEAN].shape == spec.widths  # the narrow models trained padded, came back unpadded
        h = hidden_inputs(splits, outcome.weights)
        np.testing.assert_allclose(outcome.weights[MEAN], h.mean(axis=0), rtol=1e-4, atol=1e-5)
        variance = sum(len(b) * h[b].var(axis=0) for b in batches) / len(h)
        np.testing.assert_allclose(outcome.weights[VARIANCE], variance, rtol=1e-4, atol=1e-5)


def test_the_answer_in_words_says_an_unreliable_size_point_cannot_tell():
    from widthvsprune import arms
    from widthvsprune.analysis.hypothesis import words

    headline = [c for c in compare.all_contrasts(runs_table(True)) if c.name == "tuned vs tuned"]
    rows = compare.compare(runs_table(True), contrasts=headline)
    phrases, ties = words._equal_sizes(rows, arms.get("pruned"), arms.get("narrow"))
    assert phrases == ["at 90% sparsity a model was evaluated at chance although it trained, so the study cannot tell"]
    assert not ties


def test_a_study_recalibrates_every_arm_by_default_and_the_field_off_keeps_the_moving_averages(tmp_path):
    import io
    import json

    from conftest import tiny_study

    from widthvsprune import run_study, store

    splits = data.load("digits")
    for recalibrate in (True, False):
        study = tiny_study("bn", family="bn_dense_test", widths=(32,), sparsities=(0.8,), seeds=(0,), engine="jax",
                           recalibrate_batchnorm=recalibrate)
        result = run_study(study, tmp_path / str(recalibrate), stream=io.StringIO(), workers=1)
        assert not result.failed
        runs = pd.read_csv(tmp_path / str(recalibrate) / "bn" / "runs.csv")
        assert set(runs.arm) == {"baseline", "pruned", "dense_finetuned", "narrow"} and not runs.broken_evaluation.any()
        assert runs.train_accuracy.between(0.2, 1).all()
        for row in runs.itertuples():
            folder = store.seed_dir(tmp_path / str(recalibrate) / "bn", row.key, row.seed)
            config = json.loads(store.config_json(folder).read_text())
            assert ("batchnorm" in json.dumps(config)) == recalibrate
            weights = store.read_weights(store.weights_npz(folder))
            exact = np.allclose(weights[MEAN], hidden_inputs(splits, weights).mean(axis=0), rtol=1e-4, atol=1e-5)
            assert exact == recalibrate, row.arm
