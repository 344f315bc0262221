"""The sequence and image families: exact counts in tf_keras and Keras 3, shapes, the GRU's two directions."""

import re

import numpy as np
import pytest

from widthvsprune import families
from widthvsprune.engines.tf_keras import models
from widthvsprune.engines.tf_keras.backend import keras as tf_keras
from widthvsprune.families import conv1d, resnet

keras3 = pytest.importorskip("keras")

CASES = {
    "cnn1d": ([(25, 25, 25), (1, 1, 1), (3, 7, 2)], [(40,), (28, 28), (7, 3)]),
    "gru": ([(6,), (1,), (9,)], [(40,), (12, 2), (5, 7)]),
    "resnet": ([(16, 32, 64), (1, 1, 1), (5, 3, 8)], [(32, 32, 3), (28, 28), (8, 12, 1)]),
    "mobilenet": ([(32, 64, 128, 256, 512, 1024), (1,) * 6, (3, 5, 2, 7, 4, 6)], [(32, 32, 3), (28, 28), (16, 20, 2)]),
}
PARAMS = [(name, widths, shape) for name, (ws, shapes) in CASES.items() for widths in ws for shape in shapes]


@pytest.mark.parametrize("name,widths,shape", PARAMS)
def test_count_function_equals_count_params_in_tf_keras_and_keras3(name, widths, shape):
    family = families.get_family(name)
    expected = family.count_params(widths, shape, 10)
    assert family.build(widths, shape, 10, tf_keras).count_params() == expected
    assert family.build(widths, shape, 10, keras3).count_params() == expected


@pytest.mark.parametrize("name,shape,expected", [
    ("cnn1d", (40,), 5_210),  # the MNIST-1D paper's ConvBase
    ("gru", (40,), 5_134),  # the MNIST-1D paper's GRUBase
    ("mlp", (40,), 15_210),  # the MNIST-1D paper's MLPBase at widths (100, 100)
    ("resnet", (32, 32, 3), 274_042),  # ResNet-20 with projection shortcuts
    ("mobilenet", (32, 32, 3), 3_239_114),
])
def test_default_widths_parameter_counts(name, shape, expected):
    family = families.get_family(name)
    widths = (100, 100) if name == "mlp" else family.default_widths
    assert family.count_params(widths, shape, 10) == expected


def test_cnn1d_output_lengths_are_the_papers_19_10_5():
    assert conv1d.output_lengths(40) == (19, 10, 5)
    model = models.build("cnn1d", (25, 25, 25), (40,), 10)
    lengths = [layer.output_shape[1] for layer in model.layers if isinstance(layer, tf_keras.layers.Conv1D)]
    assert lengths == [19, 10, 5]


def test_cnn1d_refuses_sequences_shorter_than_three_steps():
    assert conv1d.output_lengths(3) == (1, 1, 1)
    with pytest.raises(ValueError, match=r"Expected a sequence of at least 3 steps.*Received: length=2"):
        conv1d.count_cnn1d((4, 4, 4), (2,), 10)


@pytest.mark.parametrize("name,shape", [("cnn1d", (8, 8, 1)), ("gru", (8, 8, 1)), ("resnet", (40,)),
                                        ("mobilenet", (40,))])
def test_wrong_input_rank_names_the_shape(name, shape):
    family = families.get_family(name)
    pattern = rf"Expected .* input of shape .*Received: input_shape={re.escape(str(shape))}"
    with pytest.raises(ValueError, match=pattern):
        family.count_params(family.default_widths, shape, 10)


def test_image_families_keep_their_resolution_schedule():
    strides = [s for _, _, s in resnet._strides((16, 32, 64))]
    assert strides == [1, 1, 1, 2, 1, 1, 2, 1, 1]
    model = models.build("mobilenet", (2,) * 6, (32, 32, 3), 10)
    assert model.get_layer("group5_block2_pw").output_shape[1:3] == (2, 2)  # 32 / 16


def test_gru_two_directions_compute_what_bidirectional_computes():
    steps, features, units = 7, 2, 3
    two = models.build("gru", (units,), (steps, features), 5, seed=0)
    bidirectional = tf_keras.Sequential([
        tf_keras.Input(shape=(steps, features)),
        tf_keras.layers.Bidirectional(tf_keras.layers.GRU(units, return_sequences=True)),
        tf_keras.layers.Flatten(),
        tf_keras.layers.Dense(5),
    ])
    forward = two.get_layer("gru_forward").get_weights()
    backward = two.get_layer("gru_backward").get_weights()
    kernel, bias = two.get_layer("logits").get_weights()
    # Row (t, k) of the two-GRU model's dense kernel sees the backward output of step steps-1-t for k >= units.
    rows = np.arange(steps * 2 * units).reshape(steps, 2 * units)
    rows[:, units:] = rows[::-1, units:]
    bidirectional.set_weights(forward + backward + [kernel[np.argsort(rows.reshape(-1))], bias])
    x = np.random.default_rng(0).normal(size=(4, steps, features)).astype("float32")
    np.testing.assert_allclose(two(x).numpy(), bidirectional(x).numpy(), atol=1e-5)
