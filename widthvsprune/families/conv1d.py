"""The MNIST-1D paper's 1-D CNN (Greydanus & Kobak, 2024).

Three convolutions with PyTorch-style padding of one step on each side and
ReLU: kernel 5 then 3 and 3, all stride 2; flatten; dense to the classes.
At the paper's widths ``(25, 25, 25)`` on MNIST-1D (length 40, one feature)
the outputs have lengths 19, 10 and 5 and the model has 5,210 parameters,
as the paper's ``ConvBase``.
"""

from widthvsprune.families.inputs import input_layers, sequence
from widthvsprune.families.layer_counts import conv, dense

KERNELS = (5, 3, 3)
STRIDE = 2
PADDING = 1


def output_lengths(length):
    """Lengths of the three convolutions' outputs for an input of ``length`` steps.

    Raises:
        ValueError: if an output would be empty (inputs shorter than 3 steps).

    Example:

    >>> output_lengths(40)
    (19, 10, 5)
    """
    out, current = [], int(length)
    for kernel in KERNELS:
        current = (current + 2 * PADDING - kernel) // STRIDE + 1
        if current < 1:
            raise ValueError(f"Expected a sequence of at least 3 steps for cnn1d. Received: length={length}")
        out.append(current)
    return tuple(out)


def count_cnn1d(widths, input_shape, num_classes):
    """Conv1D(c1, 5, s2) -> Conv1D(c2, 3, s2) -> Conv1D(c3, 3, s2) -> Flatten -> Dense(classes)."""
    c1, c2, c3 = widths
    length, features = sequence(input_shape)
    final = output_lengths(length)[-1]
    return (
        conv(KERNELS[0], features, c1, dims=1)
        + conv(KERNELS[1], c1, c2, dims=1)
        + conv(KERNELS[2], c2, c3, dims=1)
        + dense(final * c3, num_classes)
    )


def build_cnn1d(widths, input_shape, num_classes, keras):
    sequence(input_shape)  # checks the rank
    inputs, x = input_layers(input_shape, keras, target_rank=2)
    for i, (width, kernel) in enumerate(zip(widths, KERNELS), start=1):
        x = keras.layers.ZeroPadding1D(PADDING, name=f"pad{i}")(x)
        x = keras.layers.Conv1D(int(width), kernel, strides=STRIDE, activation="relu", name=f"conv{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="cnn1d")
