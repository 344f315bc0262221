"""The jax engine against the reference: tf_keras, its legacy optimizers and real tfmot pruning.

Both sides start from the same initial weights and visit the same batches
(:func:`widthvsprune.engines.base.batch_order`, the short last batch
included). tf_keras (Keras 2) and Keras 3 with the JAX backend share this
process: they are separate packages.

What differs, and why: TensorFlow and XLA sum the terms of each matrix
product and of the batch mean in different orders, so losses, gradients and
weights agree to float32 rounding at the first step and drift apart slowly
(Adam divides by ``sqrt(v)``, which magnifies tiny gradients' rounding). The
masks are decisions on those weights: they come out *exactly* equal at every
update here, because no kernel holds two weights within rounding of each
other around the threshold; final weights agree within ``WEIGHT_ATOL`` and
test accuracies within two test examples.
"""

import os

import numpy as np
import pytest

from widthvsprune import families, sizes
from widthvsprune.engines import base
from widthvsprune.pruning import masks, schedules

WEIGHT_ATOL = 1e-5  # after 20 Adam steps at lr 3e-3; the observed differences are at most 6e-8 (one ulp)


@pytest.fixture(scope="module")
def reference():
    """TensorFlow, tf_keras and tfmot, imported the way widthvsprune's tf_keras side imports them."""
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    tf = pytest.importorskip("tensorflow")
    tf_keras = pytest.importorskip("tf_keras")
    tfmot = pytest.importorskip("tensorflow_model_optimization")
    return tf, tf_keras, tfmot.sparsity.keras


def tf_model(reference, family, widths, splits, weights):
    _, tf_keras, _ = reference
    model = families.get_family(family).build(tuple(widths), splits.input_shape, splits.num_classes, tf_keras)
    model.set_weights([np.asarray(w) for w in weights])
    return model


def fit_reference(reference, model, splits, epochs, seed, optimizer, lr, callbacks=()):
    """tf_keras ``fit``, one call per epoch over the seed's order, unshuffled (batches as the engine's)."""
    _, tf_keras, _ = reference
    opt = (tf_keras.optimizers.legacy.Adam(learning_rate=lr) if optimizer == "adam"
           else tf_keras.optimizers.legacy.SGD(learning_rate=lr, momentum=0.9))
    model.compile(optimizer=opt, loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    order = base.batch_order(len(splits.x_train), epochs, seed)
    n, history = len(splits.x_train), []

    class BatchLosses(tf_keras.callbacks.Callback):
        """Each batch's own loss, from tf_keras's running mean weighted by batch size."""

        def on_epoch_begin(self, epoch, logs=None):
            self.seen, self.total, self.losses = 0, 0.0, []

        def on_train_batch_end(self, batch, logs=None):
            size = min(32, n - self.seen)
            self.seen += size
            total = logs["loss"] * self.seen
            self.losses.append((total - self.total) / size)
            self.total = total

    losses = BatchLosses()
    for epoch in range(epochs):
        idx = order[epoch]
        model.fit(splits.x_train[idx], splits.y_train[idx], batch_size=32, shuffle=False, epochs=epoch + 1,
                  initial_epoch=epoch, verbose=0, callbacks=[*callbacks, losses])
        history.append(float(np.mean(losses.losses)))  # the engines' epoch loss: the mean of batch losses
    return history


def test_initial_weights_equal_a_plain_keras3_build(engine):
    import keras

    from widthvsprune.engines.jax import models

    ours = models.build("mlp", (13, 7), (8, 8, 1), 10, seed=21)
    keras.utils.set_random_seed(21)
    plain = families.get_family("mlp").build((13, 7), (8, 8, 1), 10, keras)
    for a, b in zip(ours.weights, plain.weights):
        np.testing.assert_array_equal(np.asarray(a.value), np.asarray(b.value))


def test_uniform_draws_equal_jax_random_for_a_convolution_kernel(engine):
    import jax

    from widthvsprune.engines.jax import initializers

    expected = jax.random.uniform(np.array([123456789, 0], np.uint32), (5, 5, 3, 7), minval=-0.3, maxval=0.3)
    got = initializers.uniform((5, 5, 3, 7), minval=-0.3, maxval=0.3, dtype="float32", seed=123456789)
    np.testing.assert_array_equal(got, np.asarray(expected))


COUNT_CASES = [
    ("mlp", (16, 8), (8, 8, 1)), ("mlp", (300, 100), (28, 28)), ("mlp", (5,), (8, 8, 1)),
    ("seed_cnn", (12,), (28, 28)), ("seed_cnn", (3,), (8, 8, 1)),
    ("lenet5", (6, 16, 120, 84), (32, 32, 3)), ("lenet5", (2, 3, 5, 4), (8, 8, 1)),
    ("mnist_convnet", (32, 64), (28, 28, 1)), ("mnist_convnet", (3, 5), (12, 12, 3)),
    ("cnn1d", (25, 25, 25), (40,)), ("cnn1d", (3, 5, 7), (24, 2)),
    ("gru", (6,), (40,)), ("gru", (3,), (12, 2)),
    ("resnet", (4, 8, 8), (8, 8, 3)), ("resnet", (16, 32, 64), (32, 32, 3)),
    ("mobilenet", (4, 4, 8, 8, 8, 8), (16, 16, 3)), ("mobilenet", (2, 3, 4, 5, 6, 7), (32, 32, 1)),
]


@pytest.mark.parametrize("family,widths,shape", COUNT_CASES)
def test_parameter_counts_agree_across_engines(engine, reference, family, widths, shape):
    _, tf_keras, _ = reference
    plain = families.get_family(family).build(widths, shape, 10, tf_keras)
    pure = families.get_family(family).count_params(widths, shape, 10)
    assert engine.count_params(family, widths, shape, 10) == plain.count_params() == pure


def test_every_shipped_family_has_a_count_test():
    assert {family for family, _, _ in COUNT_CASES} == set(families.SHIPPED)


@pytest.mark.parametrize("optimizer,lr", [("adam", 3e-3), ("sgd", 2e-2)])
def test_dense_training_matches_tf_keras_legacy_optimizers(engine, reference, splits, optimizer, lr):
    spec = base.ModelSpec("mlp", (16, 8), seed=3, learning_rate=lr)
    (ours,) = engine.train(base.Pack((spec,), batch_size=32, optimizer=optimizer, epochs=2), splits)
    from widthvsprune.engines.jax import models

    start = models.build("mlp", (16, 8), splits.input_shape, 10, seed=3)
    model = tf_model(reference, "mlp", (16, 8), splits, [np.asarray(v.value) for v in start.weights])
    losses = fit_reference(reference, model, splits, 2, 3, optimizer, lr)
    for a, b in zip(ours.weights, model.get_weights()):
        np.testing.assert_allclose(a, b, atol=WEIGHT_ATOL)
    np.testing.assert_allclose([r["loss"] for r in ours.history], losses, rtol=1e-4)


@pytest.mark.parametrize("allocation,target,frequency,prune_output", [
    ("uniform", 0.5, 3, True), ("uniform", 0.8, 2, False), ("uniform", 0.95, 5, True),
    ("erk", 0.5, 3, True), ("erk", 0.9, 2, False), ("lamp", 0.5, 3, True), ("lamp", 0.9, 5, True),
])
def test_masks_equal_the_tf_keras_engines_tfmot_masks_at_every_update(engine, reference, splits, allocation, target,
                                                                       frequency, prune_output):
    from widthvsprune.engines.tf_keras import pruning as tfmot_pruning

    _, tf_keras, sparsity = reference
    epochs, widths = 2, (24, 12)
    steps = schedules.schedule_steps(len(splits.x_train), 32, epochs, frequency, 0, 0.75)
    updates = [t for t in range(1, steps.total_steps + 1)
               if schedules.updates_masks_at(t, steps.begin_step, steps.end_step, steps.frequency)]
    (dense,) = engine.train(base.Pack((base.ModelSpec("mlp", widths, seed=1, learning_rate=3e-3),),
                                      batch_size=32, optimizer="adam", epochs=1), splits)
    prune = base.PruneSpec(target, steps, allocation=allocation, prune_output=prune_output)
    ours_masks = {}

    def observe(step, run):
        ours_masks[step] = run.masks(0)

    spec = base.ModelSpec("mlp", widths, seed=4, learning_rate=3e-3, initial_weights=tuple(dense.weights),
                          prune=prune)
    (ours,) = engine.train(base.Pack((spec,), batch_size=32, optimizer="adam", epochs=epochs), splits,
                           observe=observe, observe_steps=tuple(updates))

    # The tf_keras engine's wrapping: each layer its own tfmot PolynomialDecay towards the allocation's target.
    wrapped, layer_targets = tfmot_pruning.wrap(tf_model(reference, "mlp", widths, splits, dense.weights), prune)
    assert len(set(layer_targets)) > 1 or allocation == "uniform"  # the allocation spreads the zeros unevenly
    wrappers = [layer for layer in wrapped.layers if hasattr(layer, "pruning_vars")]
    theirs_masks, counter = {}, [0]

    class Record(tf_keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            counter[0] += 1
            if counter[0] in updates:
                theirs_masks[counter[0]] = [m.numpy() for w in wrappers for _, m, _ in w.pruning_vars]

    fit_reference(reference, wrapped, splits, epochs, 4, "adam", 3e-3,
                  callbacks=[sparsity.UpdatePruningStep(), Record()])
    assert sorted(theirs_masks) == updates and ours.mask_updates == len(updates)
    for t in updates:
        pruned = [m for m, target_ in zip(ours_masks[t], layer_targets) if target_ > 0]
        assert len(pruned) == len(theirs_masks[t])
        for a, b in zip(pruned, theirs_masks[t]):
            np.testing.assert_array_equal(a, b, err_msg=f"mask at step {t}")
    stripped = sparsity.strip_pruning(wrapped)
    for a, b in zip(ours.weights, stripped.get_weights()):
        np.testing.assert_allclose(a, b, atol=WEIGHT_ATOL)
    theirs_layers = [np.asarray(w) for w in stripped.get_weights()[::2]]
    ours_counts = sizes.layer_counts(ours.layers)
    assert [c["kernel_nonzero"] for c in ours_counts] == [int(np.count_nonzero(k)) for k in theirs_layers]
    for c, target_ in zip(ours_counts, layer_targets):
        if target_ > 0:
            assert c["kernel_nonzero"] == masks.kept_count(c["kernel_params"], target_)
    logits = stripped.predict(splits.x_test, verbose=0)
    their_accuracy = float(np.mean(np.argmax(logits, -1) == splits.y_test))
    assert abs(ours.test_accuracy - their_accuracy) <= 2 / len(splits.y_test) + 1e-9
