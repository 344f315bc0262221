"""Packed training: each branch trains exactly as it would alone with plain Keras."""

import numpy as np
import pytest

from widthvsprune import Pruning, Recipe, data, models, pruning, schedules, training
from widthvsprune.backend import keras

RECIPE = Recipe(epochs=2, batch_size=32, learning_rate=1e-3)


@pytest.fixture(scope="module")
def splits():
    return data.load("digits")


def separate(model, splits, seed, recipe=RECIPE, learning_rate=None, callbacks=()):
    """The plain way: compile + fit alone, fed the seed's batch order."""
    training.compile_model(model, recipe, learning_rate)
    order = training.batch_order(len(splits.x_train), recipe.epochs, seed)
    for epoch in range(recipe.epochs):
        idx = order[epoch]
        model.fit(splits.x_train[idx], splits.y_train[idx], batch_size=recipe.batch_size, shuffle=False,
                  epochs=epoch + 1, initial_epoch=epoch, verbose=0, callbacks=list(callbacks))
    return model


def assert_same_weights(a, b, atol=1e-5):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol)


def test_packed_baselines_equal_separate_training(splits):
    seeds = [0, 1, 2]
    packed = [models.build("mlp", (32, 16), splits.input_shape, 10, seed=s) for s in seeds]
    histories, diverged, _ = training.fit_packed(packed, splits, RECIPE, seeds)
    assert not diverged and all(len(h) == 2 for h in histories)
    for seed, branch in zip(seeds, packed):
        alone = separate(models.build("mlp", (32, 16), splits.input_shape, 10, seed=seed), splits, seed)
        assert_same_weights(branch.get_weights(), alone.get_weights())
    assert not np.allclose(packed[0].get_weights()[0], packed[1].get_weights()[0])


def test_packed_narrow_models_of_different_widths_and_learning_rates(splits):
    shapes, rates, seeds = [(20, 10), (12, 30)], [1e-3, 5e-3], [0, 1]
    packed = [models.build("mlp", w, splits.input_shape, 10, seed=s) for w, s in zip(shapes, seeds)]
    training.fit_packed(packed, splits, RECIPE, seeds, learning_rates=rates)
    for widths, lr, seed, branch in zip(shapes, rates, seeds, packed):
        alone = separate(models.build("mlp", widths, splits.input_shape, 10, seed=seed), splits, seed,
                         learning_rate=lr)
        assert_same_weights(branch.get_weights(), alone.get_weights())


@pytest.mark.parametrize("variant", ["layerwise", "global"])
def test_packed_pruned_models_equal_separate_training(splits, variant):
    seeds, target = [0, 1], 0.8
    baseline = models.build("seed_cnn", (6,), splits.input_shape, 10, seed=7)
    training.fit(baseline, splits, Recipe(epochs=1, batch_size=64), seed=7)
    weights = baseline.get_weights()
    spec = Pruning(variant=variant, frequency=10, end_fraction=0.75)
    steps = schedules.schedule_steps(len(splits.x_train), RECIPE.batch_size, RECIPE.epochs, 10, 0, 0.75)

    def wrapped(seed):
        model = models.build("seed_cnn", (6,), splits.input_shape, 10, seed=seed)
        model.set_weights(weights)
        return pruning.wrap(model, pruning.make_schedule(target, spec, steps))

    packed = [wrapped(s) for s in seeds]
    callbacks = pruning.callbacks(spec, target, steps, packed, seeds)
    training.fit_packed(packed, splits, RECIPE, seeds, callbacks)
    deferred = next(c for c in callbacks if isinstance(c, pruning.DeferredMaskUpdates))
    # layerwise: one update per pruning step (1..end_step, every `frequency`); global: masks are MaskUpdater's
    assert deferred.updates == (steps.end_step // steps.frequency if variant == "layerwise" else 0)
    for seed, branch in zip(seeds, packed):
        model = wrapped(seed)
        # The reference keeps tfmot's mask update inside the traced step.
        alone = separate(model, splits, seed,
                         callbacks=pruning.callbacks(spec, target, steps, [model], [seed], defer_masks=False))
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
    histories, diverged, _ = training.fit_packed(packed, splits, Recipe(epochs=2, optimizer="sgd"), seeds,
                                                 learning_rates=[1e12, 1e-2])
    assert diverged == [0]
    assert len(histories[1]) == 2 and np.isfinite(histories[1][-1]["loss"])
    assert all(np.isfinite(w).all() for w in packed[1].get_weights())
    assert isinstance(packed[1], keras.Model)


def test_last_epoch_validation_only_scores_the_final_weights(splits):
    histories = {}
    weights = {}
    for mode in ("every_epoch", "last_epoch"):
        branch = models.build("mlp", (16,), splits.input_shape, 10, seed=3)
        histories[mode], _, _ = training.fit_packed([branch], splits, RECIPE, [3], validate=mode)
        weights[mode] = branch.get_weights()
        final = training.evaluate(branch, splits.x_val, splits.y_val)
        assert histories[mode][0][-1]["val_accuracy"] == final[1]
    assert_same_weights(weights["every_epoch"], weights["last_epoch"], atol=0)
    assert all("val_accuracy" in row for row in histories["every_epoch"][0])
    assert ["val_accuracy" in row for row in histories["last_epoch"][0]] == [False, True]
    with pytest.raises(ValueError, match="validate"):
        training.fit_packed([branch], splits, RECIPE, [3], validate="sometimes")
