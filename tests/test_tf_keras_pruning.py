"""The tf_keras engine's pruning with real tfmot wrappers: sparsity reached, no-op at 0%, predictions kept."""

import numpy as np
import pytest
from conftest import fit_alone

from widthvsprune import data, sizes
from widthvsprune.engines.base import PruneSpec
from widthvsprune.engines.tf_keras import models, pruning
from widthvsprune.pruning import schedules


@pytest.fixture(scope="module")
def splits():
    return data.load("digits")


@pytest.fixture(scope="module")
def trained(splits):
    model = models.build("lenet5", (4, 6, 16, 12), splits.input_shape, 10, seed=0)
    fit_alone(model, splits, epochs=1, batch_size=64, seed=0)
    return model.get_weights()


def prune(splits, weights, target, variant="uniform", prune_output=True, epochs=2):
    model = models.build("lenet5", (4, 6, 16, 12), splits.input_shape, 10, seed=0)
    model.set_weights(weights)
    steps = schedules.schedule_steps(len(splits.x_train), 64, epochs, 5, 0, 0.75)
    spec = PruneSpec(target, steps, allocation=variant, prune_output=prune_output, seed=0)
    wrapped, _ = pruning.wrap(model, spec)
    fit_alone(wrapped, splits, epochs=epochs, batch_size=64, seed=0, callbacks=pruning.callbacks([wrapped], [spec]))
    return wrapped, pruning.strip(wrapped)


def assert_model_sparsity(layers, target, tolerance=0.005):
    for counts in sizes.layer_counts(layers):
        if counts["pruned"]:
            assert abs(counts["sparsity"] - target) <= tolerance, counts


@pytest.mark.parametrize("target", [0.5, 0.8, 0.95])
def test_layerwise_reaches_the_target_on_every_pruned_kernel(splits, trained, target):
    _, stripped = prune(splits, trained, target)
    layers = models.layer_weights(stripped)
    assert len(layers) == 5
    assert_model_sparsity(layers, target)
    assert abs(sizes.summarize(layers)["sparsity"] - target) <= 0.005


def test_zero_sparsity_is_a_no_op(splits, trained):
    _, stripped = prune(splits, trained, 0.0, epochs=1)
    plain = models.build("lenet5", (4, 6, 16, 12), splits.input_shape, 10, seed=0)
    plain.set_weights(trained)
    fit_alone(plain, splits, epochs=1, batch_size=64, seed=0)
    for pruned_weight, plain_weight in zip(stripped.get_weights(), plain.get_weights()):
        np.testing.assert_allclose(pruned_weight, plain_weight, atol=1e-6)


def test_stripped_predictions_equal_wrapped_predictions(splits, trained):
    wrapped, stripped = prune(splits, trained, 0.8)
    x = splits.x_test[:200]
    np.testing.assert_array_equal(wrapped.predict(x, verbose=0), stripped.predict(x, verbose=0))


def test_wrapped_count_params_includes_masks_but_the_stripped_count_does_not(splits, trained):
    wrapped, stripped = prune(splits, trained, 0.5, epochs=1)
    expected = models.build("lenet5", (4, 6, 16, 12), splits.input_shape, 10).count_params()
    assert stripped.count_params() == expected
    assert wrapped.count_params() > expected


def test_output_layer_can_stay_dense_and_the_others_take_its_zeros(splits, trained):
    _, stripped = prune(splits, trained, 0.8, prune_output=False)
    counts = sizes.layer_counts(models.layer_weights(stripped))
    sizes_ = [c["kernel_params"] for c in counts]
    others = 0.8 * sum(sizes_) / sum(sizes_[:-1])  # the sparsity the other layers need
    assert counts[-1]["kernel_nonzero"] == counts[-1]["kernel_params"]
    assert all(abs(c["sparsity"] - others) <= 0.005 for c in counts[:-1])
    assert abs(sizes.summarize(models.layer_weights(stripped))["sparsity"] - 0.8) <= 0.005


def test_global_reaches_the_global_target_while_layer_sparsities_differ(splits, trained):
    _, stripped = prune(splits, trained, 0.8, variant="global")
    layers = models.layer_weights(stripped)
    counts = sizes.layer_counts(layers)
    total = sum(c["kernel_params"] for c in counts)
    zeros = sum(c["kernel_params"] - c["kernel_nonzero"] for c in counts)
    assert abs(zeros / total - 0.8) <= 0.001
    sparsities = [c["sparsity"] for c in counts]
    assert max(sparsities) - min(sparsities) > 0.05


def test_random_pruning_reaches_its_target(splits, trained):
    _, stripped = prune(splits, trained, 0.8, variant="random")
    assert_model_sparsity(models.layer_weights(stripped), 0.8)
