"""Packed training: each branch trains exactly as it would alone with plain Keras."""

import numpy as np
import pytest
from conftest import fit_alone

from widthvsprune import data
from widthvsprune.engines.base import ModelSpec, Pack, PruneSpec, batch_order
from widthvsprune.engines.tf_keras import models, pruning, training
from widthvsprune.engines.tf_keras.backend import keras
from widthvsprune.pruning import schedules

EPOCHS, BATCH = 2, 32


@pytest.fixture(scope="module")
def splits():
    return data.load("digits")


def pack_of(seeds, learning_rates=None, epochs=EPOCHS, optimizer="adam", **options):
    rates = learning_rates or [1e-3] * len(seeds)
    return Pack(tuple(ModelSpec("mlp", (1,), s, lr) for s, lr in zip(seeds, rates)), BATCH, optimizer, epochs,
                **options)


def separate(model, splits, seed, learning_rate=1e-3, callbacks=()):
    """The plain way: compile + fit alone, fed the seed's batch order."""
    model.compile(optimizer=training.make_optimizer("adam", learning_rate), loss=training.loss_function(),
                  metrics=["accuracy"])
    order = batch_order(len(splits.x_train), EPOCHS, seed)
    for epoch in range(EPOCHS):
        idx = order[epoch]
        model.fit(splits.x_train[idx], splits.y_train[idx], batch_size=BATCH, shuffle=False,
                  epochs=epoch + 1, initial_epoch=epoch, verbose=0, callbacks=list(callbacks))
    return model


def assert_same_weights(a, b, atol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol)


def test_packed_baselines_equal_separate_training(splits):
    seeds = [0, 1, 2]
    packed = [models.build("mlp", (32, 16), splits.input_shape, 10, seed=s) for s in seeds]
    histories, diverged, _ = training.fit_packed(packed, splits, pack_of(seeds))
    assert not diverged and all(len(h) == 2 for h in histories)
    for seed, branch in zip(seeds, packed):
        alone = separate(models.build("mlp", (32, 16), splits.input_shape, 10, seed=seed), splits, seed)
        assert_same_weights(branch.get_weights(), alone.get_weights())
    assert not np.allclose(packed[0].get_weights()[0], packed[1].get_weights()[0])


def test_packed_narrow_models_of_different_widths_and_learning_rates(splits):
    shapes, rates, seeds = [(20, 10), (12, 30)], [1e-3, 5e-3], [0, 1]
    packed = [models.build("mlp", w, splits.input_shape, 10, seed=s) for w, s in zip(shapes, seeds)]
    training.fit_packed(packed, splits, pack_of(seeds, rates))
    for widths, lr, seed, branch in zip(shapes, rates, seeds, packed):
        alone = separate(models.build("mlp", widths, splits.input_shape, 10, seed=seed), splits, seed,
                         learning_rate=lr)
        assert_same_weights(branch.get_weights(), alone.get_weights())


@pytest.mark.parametrize("variant", ["layerwise", "global"])
def test_packed_pruned_models_equal_separate_training(splits, variant):
    seeds, target = [0, 1], 0.8
    baseline = models.build("seed_cnn", (6,), splits.input_shape, 10, seed=7)
    fit_alone(baseline, splits, epochs=1, batch_size=64, seed=7)
    weights = baseline.get_weights()
    steps = schedules.schedule_steps(len(splits.x_train), BATCH, EPOCHS, 10, 0, 0.75)
    specs = {s: PruneSpec(target, steps, allocation=variant, seed=s) for s in seeds}

    def wrapped(seed):
        model = models.build("seed_cnn", (6,), splits.input_shape, 10, seed=seed)
        model.set_weights(weights)
        return pruning.wrap(model, specs[seed])[0]

    packed = [wrapped(s) for s in seeds]
    callbacks = pruning.callbacks(packed, [specs[s] for s in seeds])
    training.fit_packed(packed, splits, pack_of(seeds), callbacks)
    deferred = next(c for c in callbacks if isinstance(c, pruning.DeferredMaskUpdates))
    # layerwise: one update per pruning step (1..end_step, every `frequency`); global: masks are MaskUpdater's
    assert deferred.updates == (steps.end_step // steps.frequency if variant == "layerwise" else 0)
    for seed, branch in zip(seeds, packed):
        model = wrapped(seed)
        # The reference keeps tfmot's mask update inside the traced step.
        alone = separate(model, splits, seed,
                         callbacks=pruning.callbacks([model], [specs[seed]], defer_masks=False))
        assert_same_weights(pruning.strip(branch).get_weights(), pruning.strip(alone).get_weights())
        for ours, theirs in zip(pruning.wrappers(branch), pruning.wrappers(alone)):
            assert int(ours.pruning_step.numpy()) == int(theirs.pruning_step.numpy()) == steps.total_steps
            for (_, mask, threshold), (_, mask_ref, threshold_ref) in zip(ours.pruning_vars, theirs.pruning_vars):
                np.testing.assert_array_equal(mask.numpy(), mask_ref.numpy())
                np.testing.assert_allclose(threshold.numpy(), threshold_ref.numpy(), atol=1e-6)
            assert "conditional_mask_update" not in vars(ours.pruning_obj)  # tfmot's own method again
        kernels = [w for w in pruning.strip(branch).get_weights() if w.ndim > 1]
        zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
        assert abs(zeros - target) < 0.005


def test_a_diverging_branch_does_not_stop_the_others(splits):
    seeds = [0, 1]
    packed = [models.build("mlp", (16,), splits.input_shape, 10, seed=s) for s in seeds]
    histories, diverged, _ = training.fit_packed(packed, splits, pack_of(seeds, [1e12, 1e-2], optimizer="sgd"))
    assert diverged == [0]
    assert len(histories[1]) == 2 and np.isfinite(histories[1][-1]["loss"])
    assert all(np.isfinite(w).all() for w in packed[1].get_weights())
    assert isinstance(packed[1], keras.Model)


def test_last_epoch_validation_only_scores_the_final_weights(splits):
    histories = {}
    weights = {}
    for mode in ("every_epoch", "last_epoch"):
        branch = models.build("mlp", (16,), splits.input_shape, 10, seed=3)
        histories[mode], _, _ = training.fit_packed([branch], splits, pack_of([3], validate=mode))
        weights[mode] = branch.get_weights()
        final = training.evaluate(branch, splits.x_val, splits.y_val)
        assert histories[mode][0][-1]["val_accuracy"] == final[1]
    assert_same_weights(weights["every_epoch"], weights["last_epoch"], atol=0)
    assert all("val_accuracy" in row for row in histories["every_epoch"][0])
    assert ["val_accuracy" in row for row in histories["last_epoch"][0]] == [False, True]
    with pytest.raises(ValueError, match="validate"):
        pack_of([3], validate="sometimes")


def test_max_steps_stops_every_branch_mid_epoch(splits):
    seeds = [0, 1]
    packed = [models.build("mlp", (16,), splits.input_shape, 10, seed=s) for s in seeds]
    per_epoch = -(-len(splits.x_train) // BATCH)
    histories, diverged, _ = training.fit_packed(packed, splits, pack_of(seeds, epochs=5, max_steps=per_epoch + 7))
    assert not diverged and [len(h) for h in histories] == [2, 2]
    # The plain way: one whole epoch, then the first 7 batches of the second.
    alone = models.build("mlp", (16,), splits.input_shape, 10, seed=0)
    alone.compile(optimizer=training.make_optimizer("adam", 1e-3), loss=training.loss_function())
    order = batch_order(len(splits.x_train), 2, 0)
    alone.fit(splits.x_train[order[0]], splits.y_train[order[0]], batch_size=BATCH, shuffle=False, verbose=0)
    part = order[1][: 7 * BATCH]
    alone.fit(splits.x_train[part], splits.y_train[part], batch_size=BATCH, shuffle=False, verbose=0)
    assert_same_weights(packed[0].get_weights(), alone.get_weights())
