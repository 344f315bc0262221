"""The MNIST-1D paper's recurrent model: a bidirectional GRU, flattened, then dense.

The paper's ``GRUBase`` (Greydanus & Kobak, 2024; ``notebooks/models.py`` of
github.com/greydanus/mnist1d) runs a bidirectional GRU with 6 hidden units
over the 40 steps, flattens all 40 outputs of both directions and maps them
to the classes with one dense layer: 5,134 parameters on MNIST-1D.

tfmot cannot prune a ``Bidirectional`` layer. ``prune_low_magnitude``
refuses it (its registry lists the recurrent layer classes themselves,
``GRU``, ``LSTM``, ``SimpleRNN`` and ``RNN``, by exact class), and a pruning
wrapper cannot go inside it either: ``Bidirectional`` recreates both
directions from the wrapped layer's config and flips its ``go_backwards``
entry, which a wrapper's config does not have. So the two directions are two ``GRU`` layers, the second with
``go_backwards=True``, concatenated. This is the same model as
``Bidirectional(GRU(units, return_sequences=True))`` up to the order of the
backward outputs in time (``Bidirectional`` reverses them back to input
order; here they stay in the order they were computed), which only permutes
the rows of the dense layer's kernel: the same parameters and the same
functions. tfmot prunes each direction's kernel and recurrent kernel.

GRUs use ``reset_after=True`` (Keras's default and PyTorch's convention), so
each direction has two bias vectors, one per matrix product.
"""

from widthvsprune.families.inputs import input_layers, sequence
from widthvsprune.families.layer_counts import dense

GATES = 3  # update, reset, candidate


def gru_params(features, units):
    """One GRU direction with ``reset_after=True``: kernel, recurrent kernel and two biases."""
    return GATES * (features * units + units * units + 2 * units)


def count_gru(widths, input_shape, num_classes):
    """GRU forward + GRU backward (both ``units`` wide, all steps) -> Concatenate -> Flatten -> Dense."""
    (units,) = widths
    steps, features = sequence(input_shape)
    return 2 * gru_params(features, units) + dense(steps * 2 * units, num_classes)


def build_gru(widths, input_shape, num_classes, keras):
    (units,) = (int(w) for w in widths)
    sequence(input_shape)  # checks the rank
    inputs, x = input_layers(input_shape, keras, target_rank=2)
    forward = keras.layers.GRU(units, return_sequences=True, name="gru_forward")(x)
    backward = keras.layers.GRU(units, return_sequences=True, go_backwards=True, name="gru_backward")(x)
    x = keras.layers.Concatenate(name="directions")([forward, backward])
    x = keras.layers.Flatten(name="flatten")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="gru")
