"""Building family models in tf_keras and reading their weights back for the size accounting."""

import math

import numpy as np

from widthvsprune import families
from widthvsprune.engines.tf_keras.backend import PruneLowMagnitude, keras
from widthvsprune.measuring import LayerWeights


def build(family, widths, input_shape, num_classes, seed=None):
    """Builds an un-compiled model of ``family``; ``seed`` fixes its initial weights."""
    if isinstance(family, str):
        family = families.get_family(family)
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    model = family.build(tuple(int(w) for w in widths), tuple(input_shape), int(num_classes), keras)
    expected = family.count_params(tuple(widths), tuple(input_shape), int(num_classes))
    if model.count_params() != expected:
        raise ValueError(
            f"Expected family {family.name!r} to build {expected} parameters (its count "
            f"function). Received: count_params()={model.count_params()} for widths={widths}"
        )
    return model


def weighted_layers(model):
    """The Dense and Conv layers of a (possibly wrapped) model, in order."""
    out = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        if isinstance(inner, keras.Model):
            out += weighted_layers(inner)
        elif isinstance(inner, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D)):
            out.append(layer)
    return out


def layer_weights(model, prune_output=True):
    """Reads a stripped model's Dense and Conv layers as :class:`LayerWeights`."""
    layers = weighted_layers(model)
    out = []
    for i, layer in enumerate(layers):
        positions = 1
        if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)):
            positions = int(math.prod(layer.output_shape[1:-1]))
        bias = layer.bias.numpy() if getattr(layer, "use_bias", False) else None
        out.append(
            LayerWeights(
                name=layer.name,
                kernel=layer.kernel.numpy(),
                bias=bias,
                positions=positions,
                pruned=prune_output or i < len(layers) - 1,
            )
        )
    return out


def other_params(model):
    """Parameters outside Dense and Conv layers (counted as dense)."""
    counted = sum(
        int(np.prod(w.shape)) for layer in weighted_layers(model) for w in layer.weights
    )
    return int(model.count_params()) - counted
