"""The sequence and image families under real tfmot: targets reached, predictions kept, every kernel accounted for."""

import numpy as np
import pytest
from conftest import fit_alone

from widthvsprune import data, sizes
from widthvsprune.engines.base import PruneSpec
from widthvsprune.engines.tf_keras import models, pruning
from widthvsprune.pruning import schedules

TARGET = 0.75  # every pruned kernel below has a size divisible by 4, so tfmot can reach it exactly
BATCH, EPOCHS = 32, 2
# family: (widths, input shape)
SMALL = {
    "cnn1d": ((4, 8, 8), (40,)),
    "gru": ((8,), (12, 2)),
    "resnet": ((4, 8, 8), (8, 8, 3)),
    "mobilenet": ((4, 4, 8, 8, 8, 8), (16, 16, 3)),
}
KERNEL_NAMES = ("kernel", "depthwise_kernel", "recurrent_kernel", "bias")


def synthetic_splits(input_shape, n_train=96, n_eval=32, num_classes=10):
    rng = np.random.default_rng(0)

    def x(n):
        return rng.normal(size=(n, *input_shape)).astype("float32")

    def y(n):
        return (np.arange(n) % num_classes).astype("int32")

    return data.Splits("synthetic", x(n_train), y(n_train), x(n_eval), y(n_eval), x(n_eval), y(n_eval), num_classes)


def prune(family, prune_output=True):
    widths, shape = SMALL[family]
    splits = synthetic_splits(shape)
    model = models.build(family, widths, shape, splits.num_classes, seed=0)
    steps = schedules.schedule_steps(len(splits.x_train), BATCH, EPOCHS, 1, 0, 0.75)
    spec = PruneSpec(TARGET, steps, prune_output=prune_output)
    wrapped, targets = pruning.wrap(model, spec)
    fit_alone(wrapped, splits, epochs=EPOCHS, batch_size=BATCH, seed=0, callbacks=pruning.callbacks([wrapped], [spec]))
    return splits, wrapped, pruning.strip(wrapped), targets


@pytest.fixture(scope="module", params=sorted(SMALL))
def pruned(request):
    return (request.param, *prune(request.param))


def test_every_pruned_kernel_reaches_the_target(pruned):
    _, _, _, stripped, targets = pruned
    counts = sizes.layer_counts(models.layer_weights(stripped, targets))
    assert any(c["pruned"] for c in counts)
    for c in counts:
        if c["pruned"]:
            assert abs(c["sparsity"] - TARGET) <= 0.005, c
        else:
            assert c["sparsity"] < 0.01, c  # depthwise kernels stay dense


def test_stripped_predictions_equal_wrapped_predictions(pruned):
    _, splits, wrapped, stripped, targets = pruned
    x = splits.x_test
    np.testing.assert_array_equal(wrapped.predict(x, verbose=0), stripped.predict(x, verbose=0))


def test_pruned_entries_are_exactly_the_kernels_tfmot_prunes(pruned):
    _, _, wrapped, stripped, targets = pruned
    tfmot_kernels = [weight.shape.as_list() for w in pruning.wrappers(wrapped) for weight, _, _ in w.pruning_vars]
    ours = [list(entry.kernel.shape) for entry in models.layer_weights(stripped, targets) if entry.pruned]
    assert ours == tfmot_kernels


def test_layer_weights_and_other_params_add_up_to_count_params(pruned):
    family, _, _, stripped, targets = pruned
    layers = models.layer_weights(stripped, targets)
    held = sum(e.kernel.size + (0 if e.bias is None else e.bias.size) for e in layers)
    assert held + models.other_params(stripped) == stripped.count_params()
    expected = models.build(family, *SMALL[family], 10).count_params()
    assert sizes.summarize(layers, models.other_params(stripped))["total_params"] == expected


def test_nonzero_count_equals_a_recount_of_the_weights(pruned):
    _, _, _, stripped, targets = pruned
    recount = 0
    for weight in stripped.weights:  # kernels and biases by their nonzeros, normalization statistics as dense
        name = weight.name.split("/")[-1].split(":")[0]
        value = weight.numpy()
        recount += int(np.count_nonzero(value)) if name in KERNEL_NAMES else int(value.size)
    measured = sizes.summarize(models.layer_weights(stripped, targets), models.other_params(stripped))
    assert measured["nonzero_params"] == recount


def test_recurrent_entries_are_used_once_per_step():
    model = models.build("gru", (3,), (12, 2), 10, seed=0)
    layers = models.layer_weights(model)
    assert [e.name for e in layers] == [
        "gru_forward/kernel", "gru_forward/recurrent_kernel",
        "gru_backward/kernel", "gru_backward/recurrent_kernel", "logits",
    ]
    assert [e.positions for e in layers] == [12, 12, 12, 12, 1]
    assert [e.bias.shape for e in layers[:2]] == [(9,), (9,)]  # input and recurrent bias (reset_after=True)
    assert sizes.flops(layers) == 2 * 12 * (2 * 9 + 3 * 9) + 12 * 6 * 10


def test_depthwise_entries_are_dense_and_counted_per_output_pixel():
    model = models.build("mobilenet", (2, 3, 4, 5, 6, 7), (16, 16, 3), 10, seed=0)
    depthwise = [e for e in models.layer_weights(model) if e.name.endswith("_dw")]
    assert len(depthwise) == 13 and not any(e.pruned for e in depthwise)
    assert depthwise[0].kernel.shape == (3, 3, 2, 1) and depthwise[0].positions == 16 * 16
    assert depthwise[1].positions == 8 * 8  # the first 128-group block has stride 2


def test_bidirectional_layers_are_read_as_both_directions():
    keras = models.keras
    model = keras.Sequential([
        keras.Input(shape=(6, 2)),
        keras.layers.Bidirectional(keras.layers.GRU(3, return_sequences=True)),
        keras.layers.Flatten(),
        keras.layers.Dense(4),
    ])
    layers = models.layer_weights(model)
    assert [e.positions for e in layers] == [6, 6, 6, 6, 1]
    assert sum(e.kernel.size + e.bias.size for e in layers) == model.count_params()
    assert models.other_params(model) == 0


def test_keeping_the_output_dense_keeps_every_unwrapped_layers_weights():
    model = models.build("resnet", (4, 4, 4), (8, 8, 3), 10, seed=0)
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, size=w.shape).astype("float32") for w in model.get_weights()])
    steps = schedules.schedule_steps(64, 32, 1, 1)
    wrapped, _ = pruning.wrap(model, PruneSpec(0.5, steps, prune_output=False))
    for before, after in zip(model.get_weights(), pruning.strip(wrapped).get_weights()):
        np.testing.assert_array_equal(before, after)  # batch normalization and the output layer included
