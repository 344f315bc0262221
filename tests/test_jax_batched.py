"""The jax engine's batched forward pass: stacked convolutions, tiled pooling, and packs that train through them.

Runs on a CPU. The forward pass of every stacked model is compared with the
Keras 3 model's own ``model(x)``; packs of convolutional models are
compared with each model trained alone, and with the same pack trained
through Keras's ``stateless_call`` (``forward="keras"``).
"""

import numpy as np
import pytest

from widthvsprune import families, sizes
from widthvsprune.engines import base
from widthvsprune.pruning import schedules


def stacked_models(family, widths, input_shape, count=3):
    """``count`` Keras 3 models of different seeds and their variables stacked on a leading axis."""
    from widthvsprune.engines.jax import models

    built = [models.build(family, widths, input_shape, 10, seed=seed) for seed in range(count)]

    def stack(attribute):
        variables = [getattr(m, attribute) for m in built]
        return [np.stack([np.asarray(v[i].value) for v in variables]) for i in range(len(variables[0]))]

    return built, stack("trainable_variables"), stack("non_trainable_variables")


def assert_close_to(got, want, atol_of_scale):
    want = np.asarray(want)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=atol_of_scale * max(1.0, np.abs(want).max()))


SMALL_CONVOLUTIONAL = [
    ("seed_cnn", (3,), (10, 10)),
    ("lenet5", (2, 3, 8, 6), (12, 12, 1)),
    ("cnn1d", (3, 4, 5), (24,)),
    ("resnet", (4, 6, 8), (8, 8, 3)),
    ("mobilenet", (2, 3, 4, 4, 6, 6), (16, 16, 3)),
]


@pytest.mark.parametrize("family,widths,input_shape", SMALL_CONVOLUTIONAL)
def test_batched_forward_of_every_stacked_model_equals_its_keras_call(engine, family, widths, input_shape):
    import jax

    from widthvsprune.engines.jax import batched

    built, trainable, frozen = stacked_models(family, widths, input_shape)
    assert batched.supported(built[0])
    forward = batched.Forward(built[0])
    x = np.random.default_rng(1).normal(size=(len(built), 32) + input_shape).astype(np.float32)
    logits, _ = jax.jit(lambda t, f, x: forward(t, f, x, training=False))(trainable, frozen, x)
    for i, model in enumerate(built):
        assert_close_to(logits[i], model(x[i]), 1e-5)


@pytest.mark.parametrize("family,widths,input_shape", SMALL_CONVOLUTIONAL)
def test_batched_training_forward_equals_keras_with_each_models_batch_statistics(engine, family, widths,
                                                                                 input_shape):
    import jax

    from widthvsprune.engines.jax import batched

    built, trainable, frozen = stacked_models(family, widths, input_shape)
    forward = batched.Forward(built[0])
    x = np.random.default_rng(2).normal(size=(len(built), 32) + input_shape).astype(np.float32)
    logits, new_frozen = jax.jit(lambda t, f, x: forward(t, f, x, training=True))(trainable, frozen, x)
    for i, model in enumerate(built):
        # Batch normalization divides by each batch's deviation, which magnifies float32 rounding of sums taken in
        # another order through a deep network.
        assert_close_to(logits[i], model(x[i], training=True), 5e-4)
        for ours, theirs in zip(new_frozen, model.non_trainable_variables):
            assert_close_to(ours[i], theirs.value, 1e-5)


@pytest.mark.parametrize("family,widths,input_shape", SMALL_CONVOLUTIONAL[:3])
def test_one_input_shared_by_every_model_gives_each_models_own_logits(engine, family, widths, input_shape):
    import jax

    from widthvsprune.engines.jax import batched

    built, trainable, frozen = stacked_models(family, widths, input_shape)
    forward = batched.Forward(built[0])
    x = np.random.default_rng(3).normal(size=(32,) + input_shape).astype(np.float32)
    logits, _ = jax.jit(lambda t, f, x: forward(t, f, x, training=False, shared=True))(trainable, frozen, x)
    for i, model in enumerate(built):
        assert_close_to(logits[i], model(x), 1e-5)


def dropout_cnn(widths, input_shape, num_classes, keras):
    """keras.io's simple MNIST convnet, scaled to 8x8 inputs: two convolutions and poolings, dropout, the output."""
    return keras.Sequential([
        keras.Input(shape=input_shape), keras.layers.Conv2D(int(widths[0]), 3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(2), keras.layers.Conv2D(int(widths[1]), 3, activation="relu", padding="same"),
        keras.layers.MaxPooling2D(2), keras.layers.Flatten(), keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes),
    ])


def test_batched_dropout_draws_each_models_keras_mask_and_moves_its_seed_as_keras_does(engine):
    import jax

    from widthvsprune.engines.jax import batched

    families.register_family(families.Family("dropout_cnn_test", (4, 6), None, dropout_cnn, 2), overwrite=True)
    built, trainable, frozen = stacked_models("dropout_cnn_test", (4, 6), (12, 12, 1))
    assert batched.supported(built[0])
    states = [np.asarray(m.layers[-2].seed_generator.state.value) for m in built]
    assert len({s.tobytes() for s in states}) == len(built)  # each model its own seed
    forward = batched.Forward(built[0])
    x = np.random.default_rng(4).normal(size=(len(built), 32, 12, 12, 1)).astype(np.float32)
    step = jax.jit(lambda t, f, x: forward(t, f, x, training=True))
    logits, new_frozen = step(trainable, frozen, x)
    again, _ = step(trainable, new_frozen, x)
    for i, model in enumerate(built):
        want = np.asarray(model(x[i], training=True))  # draws from and moves the model's own seed state
        assert_close_to(logits[i], want, 1e-5)
        np.testing.assert_array_equal(np.asarray(logits[i]) == 0, want == 0)  # the same units dropped
        for ours, theirs in zip(new_frozen, model.non_trainable_variables):
            np.testing.assert_array_equal(ours[i], np.asarray(theirs.value))
        np.testing.assert_array_equal(new_frozen[0][i], states[i] + np.array([0, 1], states[i].dtype))
        assert_close_to(again[i], model(x[i], training=True), 1e-5)  # the next step's mask is Keras's next one
    inference, kept = jax.jit(lambda t, f, x: forward(t, f, x, training=False))(trainable, frozen, x)
    for i, model in enumerate(built):
        assert_close_to(inference[i], model(x[i], training=False), 1e-5)
        np.testing.assert_array_equal(kept[0][i], states[i])  # no mask drawn outside training


def test_a_model_with_a_layer_the_batched_pass_does_not_know_is_not_supported(engine):
    import keras

    from widthvsprune.engines.jax import batched

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3), keras.layers.GaussianNoise(0.1),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    assert not batched.supported(model)
    with pytest.raises(ValueError, match="Received: GaussianNoise is not among the layers"):
        batched.Forward(model)


CONVOLUTION_SHAPES = [
    ((28, 28), (3, 3), 1, 4, (1, 1), "valid"),
    ((9, 7), (5, 5), 3, 4, (1, 1), "same"),
    ((8, 8), (3, 3), 4, 5, (2, 2), "same"),
    ((7, 7), (3, 3), 4, 5, (2, 2), "same"),
    ((8, 8), (1, 1), 4, 6, (2, 2), "same"),
    ((42,), (5,), 1, 6, (2,), "valid"),
    ((10,), (3,), 5, 6, (2,), "same"),
]


def xla_convolution(x, kernel, strides, padding, groups=1):
    """Keras 3's ``ops.conv`` of one model (``lax.conv_general_dilated``)."""
    from jax import lax

    spec = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[x.ndim - 2]
    return lax.conv_general_dilated(x, kernel, strides, padding.upper(), dimension_numbers=spec,
                                    feature_group_count=groups)


@pytest.mark.parametrize("spatial,kernel_size,channels,filters,strides,padding", CONVOLUTION_SHAPES)
def test_every_stacked_convolution_method_equals_each_models_xla_convolution(engine, spatial, kernel_size, channels,
                                                                              filters, strides, padding):
    from widthvsprune.engines.jax import convolutions

    rng = np.random.default_rng(4)
    x = rng.normal(size=(3, 5) + spatial + (channels,)).astype(np.float32)
    kernel = rng.normal(size=(3,) + kernel_size + (channels, filters)).astype(np.float32)
    want = np.stack([xla_convolution(x[i], kernel[i], strides, padding) for i in range(3)])
    for method in convolutions.METHODS:
        got = convolutions.conv(x, kernel, strides, padding, method)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=method)
    shared = convolutions.conv_shared(x[0], kernel, strides, padding)
    np.testing.assert_allclose(shared[1], xla_convolution(x[0], kernel[1], strides, padding), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spatial,kernel_size,channels,filters,strides,padding", CONVOLUTION_SHAPES)
def test_stacked_depthwise_convolution_equals_each_models_grouped_xla_convolution(engine, spatial, kernel_size,
                                                                                  channels, filters, strides, padding):
    from widthvsprune.engines.jax import convolutions

    rng = np.random.default_rng(5)
    x = rng.normal(size=(3, 5) + spatial + (channels,)).astype(np.float32)
    kernel = rng.normal(size=(3,) + kernel_size + (channels, 2)).astype(np.float32)
    grouped = kernel.reshape((3,) + kernel_size + (1, channels * 2))
    want = np.stack([xla_convolution(x[i], grouped[i], strides, padding, groups=channels) for i in range(3)])
    np.testing.assert_allclose(convolutions.depthwise(x, kernel, strides, padding), want, rtol=1e-5, atol=1e-5)


def keras_max_pool(x, pool):
    """Keras 3's max pooling of each model (``lax.reduce_window``), whose gradient is a select-and-scatter."""
    import jax.numpy as jnp
    from jax import lax

    window = (1,) + tuple(pool) + (1,)
    return jnp.stack([lax.reduce_window(x[i], -jnp.inf, lax.max, window, window, "VALID") for i in range(len(x))])


@pytest.mark.parametrize("shape,pool", [((2, 3, 7, 9, 4), (2, 2)), ((2, 3, 11, 5), (2,)), ((2, 3, 9, 9, 3), (3, 3))])
def test_tiled_max_pooling_sends_each_windows_gradient_to_its_first_largest_value_as_keras(engine, shape, pool):
    import jax

    from widthvsprune.engines.jax import pooling

    rng = np.random.default_rng(6)
    x = np.round(rng.normal(size=shape)).astype(np.float32)  # whole numbers: many windows hold equal maxima
    want, keras_vjp = jax.vjp(lambda x: keras_max_pool(x, pool), x)
    got, our_vjp = jax.vjp(lambda x: pooling.max_pool(x, pool), x)
    np.testing.assert_array_equal(got, want)
    cotangent = rng.normal(size=np.shape(want)).astype(np.float32)
    np.testing.assert_array_equal(our_vjp(cotangent)[0], keras_vjp(cotangent)[0])


@pytest.mark.parametrize("spatial,kernel_size,channels,strides,padding,pool", [
    ((28, 28), (3, 3), 1, (1, 1), "valid", (2, 2)),
    ((14, 14), (5, 5), 6, (1, 1), "same", (2, 2)),
    ((9, 11), (3, 3), 2, (2, 2), "same", (2, 2)),
    ((40,), (5,), 1, (2,), "valid", (2,)),
])
def test_convolution_and_max_pooling_by_phases_equal_convolution_then_keras_pooling(engine, spatial, kernel_size,
                                                                                    channels, strides, padding, pool):
    import jax
    import jax.numpy as jnp

    from widthvsprune.engines.jax import convolutions

    rng = np.random.default_rng(7)
    # Halves: every product and sum is exact, so equal maxima are equal in both computations.
    x = np.round(rng.normal(size=(3, 5) + spatial + (channels,)) * 2).astype(np.float32) / 2
    kernel = np.round(rng.normal(size=(3,) + kernel_size + (channels, 3)) * 2).astype(np.float32) / 2

    def reference(x, kernel):
        return keras_max_pool(jnp.stack([xla_convolution(x[i], kernel[i], strides, padding) for i in range(3)]), pool)

    want, reference_vjp = jax.vjp(reference, x, kernel)
    got, phases_vjp = jax.vjp(lambda x, k: convolutions.conv_max_pool(x, k, strides, padding, pool, "phases"),
                              x, kernel)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    cotangent = rng.normal(size=np.shape(want)).astype(np.float32)
    for ours, theirs in zip(phases_vjp(cotangent), reference_vjp(cotangent)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-4)
    shared = convolutions.conv_max_pool_shared(x[0], kernel, strides, padding, pool)
    np.testing.assert_allclose(shared, reference(np.stack([x[0]] * 3), kernel), rtol=1e-6, atol=1e-6)


def spec(family, widths, seed, lr=3e-3, **kwargs):
    return base.ModelSpec(family, tuple(widths), seed=seed, learning_rate=lr, **kwargs)


def pack(*models, epochs=2, optimizer="adam"):
    return base.Pack(models=tuple(models), batch_size=32, optimizer=optimizer, epochs=epochs)


def prune_spec(splits, target=0.7, epochs=2, prune_output=False):
    steps = schedules.schedule_steps(len(splits.x_train), 32, epochs, 3, 0, 0.75)
    return base.PruneSpec(target, steps, prune_output=prune_output)


def assert_same_weights(a, b, atol=2e-5):
    assert [w.shape for w in a] == [w.shape for w in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-4)


def train_observed(engine, trained, splits):
    """Trains ``trained``; returns its outcomes and each group's :class:`~widthvsprune.engines.jax.programs.Config`."""
    configs = []
    outcomes = engine.train(trained, splits, observe=lambda step, run: configs.append(run.config), observe_steps=(1,))
    return outcomes, configs


def test_lenet5_models_of_different_widths_in_one_batched_pack_train_as_each_alone(engine, splits):
    specs = [spec("lenet5", (3, 4, 8, 6), 0), spec("lenet5", (2, 4, 6, 4), 1, lr=1e-3),
             spec("lenet5", (3, 4, 5, 6), 2, prune=prune_spec(splits))]
    together, configs = train_observed(engine, pack(*specs), splits)
    assert len(configs) == 1 and configs[0].batched  # one padded program, the forward pass batched
    for s, packed in zip(specs, together):
        (alone,) = engine.train(pack(s), splits)
        assert_same_weights(packed.weights, alone.weights)
        assert packed.history[-1]["loss"] == pytest.approx(alone.history[-1]["loss"], rel=1e-4)
        assert packed.test_accuracy == pytest.approx(alone.test_accuracy, abs=1 / 360 + 1e-9)
    assert together[2].layers[0].kernel.shape == (5, 5, 1, 3)
    assert sum(c["pruned"] for c in sizes.layer_counts(together[2].layers)) == 4


def count_bn_cnn(widths, input_shape, num_classes):
    (c1, c2), channels = widths, input_shape[-1]
    return 9 * channels * c1 + c1 + 4 * c1 + 9 * c1 * c2 + c2 + c2 * num_classes + num_classes


def build_bn_cnn(widths, input_shape, num_classes, keras):
    c1, c2 = (int(w) for w in widths)
    return keras.Sequential([
        keras.Input(shape=input_shape), keras.layers.Conv2D(c1, 3, padding="same"), keras.layers.BatchNormalization(),
        keras.layers.ReLU(), keras.layers.MaxPooling2D(2), keras.layers.Conv2D(c2, 3, activation="relu"),
        keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(num_classes),
    ])


def test_batch_normalized_convolutional_models_of_different_widths_train_as_each_alone(engine, splits):
    families.register_family(families.Family("bn_cnn_test", (6, 8), count_bn_cnn, build_bn_cnn, 2), overwrite=True)
    specs = [spec("bn_cnn_test", (4, 6), 3, lr=1e-2), spec("bn_cnn_test", (6, 8), 4, lr=2e-2)]
    # SGD: the gradient of a bias before batch normalization is rounding noise, which Adam would scale up.
    together, configs = train_observed(engine, pack(*specs, epochs=1, optimizer="sgd"), splits)
    assert len(configs) == 1 and configs[0].batched and configs[0].exact_last_batch
    (alone,) = engine.train(pack(specs[0], epochs=1, optimizer="sgd"), splits)  # padded to 6x8 in the pack
    assert_same_weights(together[0].weights, alone.weights)
    moving_mean = together[0].weights[4]
    assert moving_mean.shape == (4,) and np.abs(moving_mean).max() > 0


def test_stepped_keras_steps_run_the_short_last_batch_at_its_own_size_as_the_batched_program(engine, splits):
    from widthvsprune.engines.jax import engine as jax_engine

    families.register_family(families.Family("bn_cnn_test", (6, 8), count_bn_cnn, build_bn_cnn, 2), overwrite=True)
    specs = [spec("bn_cnn_test", (6, 8), 3, lr=1e-2),
             spec("bn_cnn_test", (6, 8), 4, lr=2e-2, prune=prune_spec(splits, 0.6, epochs=1))]
    trained = pack(*specs, epochs=1, optimizer="sgd")
    batched_out, configs = train_observed(engine, trained, splits)
    keras_out, keras_configs = train_observed(jax_engine.JaxEngine(forward="keras"), trained, splits)
    assert keras_configs[0].stepped and keras_configs[0].exact_last_batch and not configs[0].stepped
    assert len(splits.x_train) % 32  # a short last batch
    for ours, theirs in zip(batched_out, keras_out):
        assert_same_weights(ours.weights, theirs.weights, atol=1e-4)
        assert ours.history[-1]["loss"] == pytest.approx(theirs.history[-1]["loss"], rel=1e-4)
    assert [c["kernel_nonzero"] for c in sizes.layer_counts(batched_out[1].layers)] == [
        c["kernel_nonzero"] for c in sizes.layer_counts(keras_out[1].layers)]


def test_a_batched_pack_reaches_the_weights_of_the_keras_forward_pass(engine, splits):
    from widthvsprune.engines.jax import engine as jax_engine

    specs = [spec("seed_cnn", (4,), 5), spec("seed_cnn", (4,), 6, prune=prune_spec(splits, 0.6, prune_output=True))]
    batched_out, configs = train_observed(engine, pack(*specs), splits)
    keras_out, keras_configs = train_observed(jax_engine.JaxEngine(forward="keras"), pack(*specs), splits)
    assert configs[0].batched and not keras_configs[0].batched
    for ours, theirs in zip(batched_out, keras_out):
        assert_same_weights(ours.weights, theirs.weights, atol=1e-4)
        assert ours.test_accuracy == pytest.approx(theirs.test_accuracy, abs=2 / 360 + 1e-9)
    assert [c["kernel_nonzero"] for c in sizes.layer_counts(batched_out[1].layers)] == [
        c["kernel_nonzero"] for c in sizes.layer_counts(keras_out[1].layers)]


def test_a_family_with_an_unknown_layer_trains_through_keras(engine, splits):
    def build(widths, input_shape, num_classes, keras):
        return keras.Sequential([
            keras.Input(shape=input_shape), keras.layers.Conv2D(int(widths[0]), 3, activation="relu"),
            keras.layers.SpatialDropout2D(0.0), keras.layers.Flatten(), keras.layers.Dense(num_classes),
        ])

    families.register_family(families.Family("spatial_dropout_cnn_test", (3,), None, build, 1), overwrite=True)
    (out,), configs = train_observed(engine, pack(spec("spatial_dropout_cnn_test", (3,), 0), epochs=1), splits)
    assert out.ok and not configs[0].batched and configs[0].unrolled


def test_a_convnet_with_dropout_trains_batched_to_the_weights_of_the_keras_forward_pass(engine, splits):
    from widthvsprune.engines.jax import engine as jax_engine

    families.register_family(families.Family("dropout_cnn_test", (4, 6), None, dropout_cnn, 2), overwrite=True)
    specs = [spec("dropout_cnn_test", (4, 6), 5),
             spec("dropout_cnn_test", (4, 6), 6, prune=prune_spec(splits, 0.6, prune_output=True))]
    batched_out, configs = train_observed(engine, pack(*specs), splits)
    keras_out, keras_configs = train_observed(jax_engine.JaxEngine(forward="keras"), pack(*specs), splits)
    assert configs[0].batched and not keras_configs[0].batched
    assert keras_configs[0].stepped and not configs[0].stepped  # Keras's convolutions, one program call a step
    for ours, theirs in zip(batched_out, keras_out):
        assert_same_weights(ours.weights, theirs.weights, atol=1e-4)
        assert ours.test_accuracy == pytest.approx(theirs.test_accuracy, abs=2 / 360 + 1e-9)
        assert ours.history[-1]["loss"] == pytest.approx(theirs.history[-1]["loss"], rel=1e-4)
    (alone,) = engine.train(pack(specs[0]), splits)
    assert_same_weights(batched_out[0].weights, alone.weights)


def test_the_forward_option_names_the_choices(engine):
    from widthvsprune.engines.jax import engine as jax_engine

    with pytest.raises(ValueError, match=r"Expected forward to be one of \['auto', 'batched', 'keras'\]. "
                                         r"Received: forward='fast'"):
        jax_engine.JaxEngine(forward="fast")


def test_a_program_holds_the_most_models_whose_step_fits_the_budget_a_power_of_two(engine):
    from widthvsprune.engines.jax import chunks, models, training

    model = models.build("seed_cnn", (12,), (28, 28), 10)
    per_example = 4 * chunks.activation_floats(model)
    for batch in (32, 128, 4096):
        fits = chunks.models_per_chunk(model, batch)
        assert fits == 1 or fits * batch * per_example <= chunks.CHUNK_BYTES < (fits + 1) * batch * per_example
        most = training.models_per_program(model, models.layout_of(model), batch)
        assert most & (most - 1) == 0 and most <= fits < 2 * most
    mlp = models.build("mlp", (16, 8), (8, 8, 1), 10)
    assert training.models_per_program(mlp, models.layout_of(mlp), 32) is None  # vmap-ed: no limit
