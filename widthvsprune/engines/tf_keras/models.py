"""Building family models in tf_keras and reading their weights back for the size accounting."""

import dataclasses
import math

import numpy as np

from widthvsprune import families
from widthvsprune.engines.tf_keras.backend import PruneLowMagnitude, keras
from widthvsprune.pruning import layers as prunable
from widthvsprune.pruning.allocations import Layer
from widthvsprune.sizes import LayerWeights


def build(family, widths, input_shape, num_classes, seed=None):
    """Builds an un-compiled model of ``family``; ``seed`` fixes its initial weights."""
    if isinstance(family, str):
        family = families.get_family(family)
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    model = family.build(tuple(int(w) for w in widths), tuple(input_shape), int(num_classes), keras)
    if family.count_params is None:
        return model
    expected = family.count_params(tuple(widths), tuple(input_shape), int(num_classes))
    if model.count_params() != expected:
        raise ValueError(
            f"Expected family {family.name!r} to build {expected} parameters (its count "
            f"function). Received: count_params()={model.count_params()} for widths={widths}"
        )
    return model


def _is_recurrent(layer):
    """A recurrent layer whose cell has a kernel and a recurrent kernel (GRU, LSTM, SimpleRNN)."""
    cell = getattr(layer, "cell", None)
    return isinstance(layer, keras.layers.RNN) and hasattr(cell, "kernel") and hasattr(cell, "recurrent_kernel")


def _holds_kernels(layer):
    if prunable.entry(layer, prunable.TFMOT) or prunable.entry(layer, prunable.COUNTED):
        return True
    return isinstance(layer, keras.layers.Bidirectional) and _is_recurrent(layer.forward_layer)


def weighted_layers(model):
    """The layers of a (possibly wrapped) model that hold kernels, in order.

    Those of :data:`widthvsprune.pruning.layers.PRUNABLE` and ``COUNTED``
    (Dense, convolutions, depthwise convolutions, recurrent layers, ...) and
    ``Bidirectional`` recurrent layers, inside tfmot wrappers and nested models.
    """
    out = []
    for layer in model.layers:
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        if isinstance(inner, keras.Model):
            out += weighted_layers(inner)
        elif _holds_kernels(inner):
            out.append(layer)
    return out


def prunable_layers(model):
    """``[(layer, Layer)]``: every layer tfmot can prune, with its kernels as an allocation sees them.

    ``layer`` is the model's own layer (a tfmot wrapper in a wrapped model);
    the :class:`~widthvsprune.pruning.allocations.Layer` holds the shapes and
    current values of its prunable kernels.
    """
    out = []
    for layer in weighted_layers(model):
        inner = layer.layer if isinstance(layer, PruneLowMagnitude) else layer
        kernels = prunable.kernels(inner, prunable.TFMOT)
        if kernels:
            values = tuple(k.numpy() for k in kernels)
            out.append((layer, Layer(inner.name, tuple(tuple(v.shape) for v in values), values)))
    return out


def _recurrent_weights(layer, name, steps):
    """A recurrent layer's kernel and recurrent kernel as two entries, each used once per step.

    With two bias vectors (a GRU with ``reset_after=True``) the input bias goes
    with the kernel and the recurrent bias with the recurrent kernel;
    otherwise the single bias goes with the kernel. tfmot prunes both kernels.
    """
    cell = layer.cell
    bias = cell.bias.numpy() if getattr(cell, "use_bias", False) else None
    input_bias, recurrent_bias = (bias[0], bias[1]) if bias is not None and bias.ndim == 2 else (bias, None)
    return [
        LayerWeights(name=f"{name}/kernel", kernel=cell.kernel.numpy(), bias=input_bias, positions=steps),
        LayerWeights(name=f"{name}/recurrent_kernel", kernel=cell.recurrent_kernel.numpy(), bias=recurrent_bias,
                     positions=steps),
    ]


def _entries(layer):
    """One stripped layer as :class:`LayerWeights` entries (``pruned`` as tfmot prunes them)."""
    if isinstance(layer, (keras.layers.Bidirectional, keras.layers.RNN)):
        steps = int(layer.input_shape[1] or 1)
        if isinstance(layer, keras.layers.Bidirectional):  # tfmot cannot prune it: counted as dense
            return [dataclasses.replace(e, pruned=False, prunable=False) for e in
                    _recurrent_weights(layer.forward_layer, f"{layer.name}/forward", steps)
                    + _recurrent_weights(layer.backward_layer, f"{layer.name}/backward", steps)]
        return _recurrent_weights(layer, layer.name, steps)
    if prunable.entry(layer, prunable.TFMOT) == "MultiHeadAttention":  # four projections, pruned as one layer
        steps = int(layer.output_shape[1] or 1) if len(layer.output_shape) == 3 else 1
        out = []
        for path in prunable.TFMOT["MultiHeadAttention"]:
            dense = prunable.resolve(layer, path.split(".")[0])
            bias = dense.bias.numpy() if getattr(dense, "bias", None) is not None else None
            out.append(LayerWeights(name=f"{layer.name}/{path.split('.')[0].lstrip('_')}",
                                    kernel=dense.kernel.numpy(), bias=bias, positions=steps))
        return out
    bias = layer.bias.numpy() if getattr(layer, "use_bias", False) else None
    if prunable.entry(layer, prunable.COUNTED):  # tfmot's registry prunes no depthwise weight
        positions = int(math.prod(layer.output_shape[1:-1]))
        return [LayerWeights(name=layer.name, kernel=layer.depthwise_kernel.numpy(), bias=bias,
                             positions=positions, pruned=False, prunable=False)]
    positions = 1
    if isinstance(layer, (keras.layers.Conv1D, keras.layers.Conv2D)):
        positions = int(math.prod(layer.output_shape[1:-1]))
    (kernel,) = prunable.kernels(layer, prunable.TFMOT)  # a kernel, or an Embedding's embeddings
    return [LayerWeights(name=layer.name, kernel=kernel.numpy(), bias=bias, positions=positions)]


def layer_weights(model, targets=None):
    """Reads a stripped model's kernels as :class:`LayerWeights`, zeros included.

    Each Dense and convolution layer is one entry; a depthwise convolution is
    one entry with ``pruned=False, prunable=False`` (tfmot leaves depthwise
    kernels dense); a recurrent layer is two entries, its kernel and its
    recurrent kernel, each with ``positions`` equal to the sequence length
    (each is multiplied once per step, so FLOPs count ``size * steps``
    multiply-adds for each); a ``Bidirectional`` layer gives both
    directions' entries. ``targets`` (one per prunable kernel) marks the
    kernels pruning touched (a nonzero target); ``None``: none.
    """
    out, k = [], 0
    for layer in weighted_layers(model):
        for entry in _entries(layer):
            if entry.prunable:
                entry = dataclasses.replace(entry, pruned=targets is not None and targets[k] > 0)
                k += 1
            out.append(entry)
    return out


def other_params(model):
    """Parameters outside :func:`layer_weights` (batch normalization, ...), counted as dense."""
    counted = sum(
        int(np.prod(w.shape)) for layer in weighted_layers(model) for w in layer.weights
    )
    return int(model.count_params()) - counted
