"""The multilayer perceptron (LeNet-300-100 at its default widths)."""

import math

from widthvsprune.families.layer_counts import dense


def count_mlp(widths, input_shape, num_classes):
    """Flatten -> Dense(w1, relu) -> ... -> Dense(classes)."""
    total, n_in = 0, math.prod(input_shape)
    for width in widths:
        total += dense(n_in, width)
        n_in = width
    return total + dense(n_in, num_classes)


def build_mlp(widths, input_shape, num_classes, keras):
    layers = [keras.Input(shape=tuple(input_shape)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(int(w), activation="relu") for w in widths]
    layers.append(keras.layers.Dense(num_classes))
    return keras.Sequential(layers, name="mlp")
