"""Family models in Keras 3: building, variable layouts, prunable kernels and padding.

A model's variables are described by a :class:`Layout`: their shapes in
``get_weights()`` order, which of them Keras trains, which kernels tfmot would
prune (:data:`widthvsprune.pruning.layers.PRUNABLE`) and
the :class:`~widthvsprune.sizes.LayerWeights` the size accounting reads.

Models of one family but different widths can train in one compiled program
when the narrow model *embeds* in a wider one: every variable of the narrow
model is the leading block of the wide model's (:func:`embed`), the rest is
zero and stays zero (the training program masks its gradients), and the wide
model then computes exactly the narrow model's function. :func:`can_embed`
checks a structural rule that guarantees it: every layer whose input differs
between the two models must act on each feature (channel) separately and
keep the padded features at the end (:data:`WIDTH_LOCAL`: dense and
convolutional layers, batch normalization, pooling, activations, element-wise
merges). A ``Flatten`` after a convolution of padded width interleaves the
padded channels with the real ones, and a GRU's gates are concatenated along
the padded axis: such models train in programs of their own shape.
"""

import dataclasses
import math
import random
from typing import Optional, Tuple

import keras
import numpy as np

from widthvsprune import families
from widthvsprune.adapters import keras as keras_adapter
from widthvsprune.engines.jax import initializers
from widthvsprune.pruning import layers as layer_table
from widthvsprune.pruning.allocations import Layer
from widthvsprune.sizes import LayerWeights

#: Layers that act on each feature separately and keep padded features last (see :func:`can_embed`).
WIDTH_LOCAL = frozenset({
    "Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "BatchNormalization",
    "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average",
})

#: Layers whose training output for one example depends on the other examples of the batch.
BATCH_COUPLED = frozenset({"BatchNormalization"})
CONVOLUTIONS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D, keras.layers.DepthwiseConv1D,
                keras.layers.DepthwiseConv2D, keras.layers.SeparableConv1D, keras.layers.SeparableConv2D)

#: Width buckets: padded widths are rounded up to one of these (at most 1.5 times the width).
LADDER_BASE = (1, 2, 3, 4, 6)


def bucket(n):
    """The smallest of ``1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, ...`` that is at least ``n``.

    Example:

    >>> [bucket(n) for n in (5, 12, 13, 100)]
    [6, 12, 16, 128]
    """
    n = int(n)
    for b in LADDER_BASE:
        if n <= b:
            return b
    scale = 8
    while True:
        for b in (scale, scale * 3 // 2):
            if n <= b:
                return b
        scale *= 2


def seed_keras(seed):
    """What ``keras.utils.set_random_seed(seed)`` does under the JAX backend, without importing TensorFlow.

    Keras 3's ``set_random_seed`` also seeds TensorFlow when it is installed,
    which imports it; the initial weights depend only on the global seed,
    Python's ``random`` and NumPy's global generator, set here the same way.
    """
    seed = int(seed)
    keras_adapter.set_global_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def flat_layers(model):
    """The layers of ``model`` in order, nested models expanded.

    A layer that pruning does not know (:data:`~widthvsprune.pruning.layers.PRUNABLE`) but that holds layers of
    its own (a ``Bidirectional`` wrapper, a transformer block of your own, Keras Hub's ``TransformerEncoder``) is
    followed by its sublayers, recursively, so that the kernels of its attention, feed-forward and recurrent
    layers are pruned like any other.
    """
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out += flat_layers(layer)
        else:
            out += _expanded(layer)
    return out


def _expanded(layer):
    """``layer``, then its sublayers' expansions when pruning does not know it (see :func:`flat_layers`)."""
    if layer_table.entry(layer) is not None:
        return [layer]
    inner = keras_adapter.sublayers(layer)
    out = [layer]
    for sub in inner:
        out += flat_layers(sub) if isinstance(sub, keras.Model) else _expanded(sub)
    return out


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """One prunable kernel of a model, for :class:`~widthvsprune.sizes.LayerWeights`."""

    name: str
    kernel: int  # index in get_weights() order
    bias: Optional[int]
    positions: int
    layer: int  # index of its layer among the layers with prunable kernels


@dataclasses.dataclass(frozen=True)
class Layout:
    """The variables of one model and how training sees them.

    Attributes:
        shapes: every weight's shape, ``get_weights()`` order.
        trainable: for each of ``model.trainable_variables``, its index in ``shapes``.
        frozen: the same for ``model.non_trainable_variables`` (``None`` for
            state outside the weights, such as a dropout seed: every model
            starts from the template's).
        prunable: positions in ``trainable`` of the kernels tfmot prunes, model order.
        kernels: one :class:`LayerInfo` per entry of ``prunable``.
        batch_coupled: the model normalizes over the batch (its short last
            batch must be run at its own size).
        convolutional: the model has convolution layers.
        signature: ``(layer class, weight name)`` pairs: models of one family
            and different widths share it.
    """

    shapes: Tuple[Tuple[int, ...], ...]
    trainable: Tuple[int, ...]
    frozen: Tuple[Optional[int], ...]
    prunable: Tuple[int, ...]
    kernels: Tuple[LayerInfo, ...]
    batch_coupled: bool
    signature: Tuple[Tuple[str, str], ...]
    convolutional: bool = False

    @property
    def params(self):
        return int(sum(math.prod(s) for s in self.shapes))


def _positions(layer, is_rnn):
    try:
        if is_rnn:
            steps = layer.input.shape[1]
            return int(steps) if steps is not None else 1
        shape = layer.output.shape[1:-1]
        return int(math.prod(int(d) for d in shape)) if all(d is not None for d in shape) else 1
    except (AttributeError, ValueError, TypeError):
        return 1


def layout_of(model):
    """The :class:`Layout` of a built Keras 3 model."""
    weights = list(model.weights)
    index = {id(v): i for i, v in enumerate(weights)}
    trainable = [index[id(v)] for v in model.trainable_variables]
    position = {w: j for j, w in enumerate(trainable)}
    prunable, kernels, counts = [], [], {}
    batch_coupled, convolutional, n_layers = False, False, 0
    for layer in flat_layers(model):
        batch_coupled = batch_coupled or layer_table.entry(layer, BATCH_COUPLED) is not None
        convolutional = convolutional or isinstance(layer, CONVOLUTIONS)
        entry = layer_table.entry(layer)
        if entry is None:
            continue
        base = keras_adapter.to_snake_case(type(layer).__name__)
        count = counts.get(base, 0)
        counts[base] = count + 1
        name = base if count == 0 else f"{base}_{count}"
        bias = getattr(layer, "bias", None) if entry not in layer_table.RECURRENT else layer.cell.bias
        for k, path in enumerate(layer_table.PRUNABLE[entry]):
            var = layer_table.resolve(layer, path)
            w = index[id(var)]
            last = path.split(".")[-1]
            own = None
            if last == "kernel" and "." in path:  # a projection of its own (an attention's): its bias goes with it
                last = path.split(".")[0].lstrip("_")
                own = getattr(layer_table.resolve(layer, path.split(".")[0]), "bias", None)
            elif k == 0:
                own = bias
            kernels.append(LayerInfo(
                name=name if k == 0 else f"{name}/{last}",
                kernel=w,
                bias=index[id(own)] if own is not None else None,
                positions=_positions(layer, entry in layer_table.RECURRENT),
                layer=n_layers,
            ))
            prunable.append(position[w])
        n_layers += 1
    return Layout(
        shapes=tuple(tuple(int(d) for d in v.shape) for v in weights),
        trainable=tuple(trainable),
        frozen=tuple(index.get(id(v)) for v in model.non_trainable_variables),
        prunable=tuple(prunable),
        kernels=tuple(kernels),
        batch_coupled=batch_coupled,
        signature=tuple((type(_owner(model, v)).__name__, v.name) for v in weights),
        convolutional=convolutional,
    )


def _owner(model, variable):
    for layer in flat_layers(model):
        if any(v is variable for v in layer.weights):
            return layer
    return model


def build(family, widths, input_shape, num_classes, seed=None):
    """Builds a family model with Keras 3; ``seed`` fixes its initial weights (:func:`seed_keras`).

    The weights are those of ``keras.utils.set_random_seed(seed)`` and a
    plain build, computed without a compiled program per weight shape
    (:mod:`.initializers`).

    Raises:
        ValueError: if the model's parameters differ from the family's count function.
    """
    if isinstance(family, str):
        family = families.get_family(family)
    widths = tuple(int(w) for w in widths)

    def make():
        if seed is not None:
            seed_keras(seed)
        return family.build(widths, tuple(input_shape), int(num_classes), keras)

    model = initializers.build(make)
    if family.count_params is None:  # a family counted by building
        return model
    expected = family.count_params(widths, tuple(input_shape), int(num_classes))
    if model.count_params() != expected:
        raise ValueError(
            f"Expected family {family.name!r} to build {expected} parameters (its count "
            f"function). Received: count_params()={model.count_params()} for widths={widths}"
        )
    return model


def can_embed(small, big):
    """Whether ``small`` trains exactly as ``big`` with ``small``'s weights in the leading blocks (see module doc)."""
    small_layers, big_layers = flat_layers(small), flat_layers(big)
    if len(small_layers) != len(big_layers):
        return False
    for a, b in zip(small_layers, big_layers):
        if type(a) is not type(b) or len(a.weights) != len(b.weights):
            return False
        if any(len(v.shape) != len(u.shape) or any(x > y for x, y in zip(v.shape, u.shape))
               for v, u in zip(a.weights, b.weights)):
            return False
        if type(a).__name__ in WIDTH_LOCAL:
            continue
        try:
            same = _shapes(a.input) == _shapes(b.input) and _shapes(a.output) == _shapes(b.output)
        except (AttributeError, ValueError):
            return False
        if not same or any(tuple(v.shape) != tuple(u.shape) for v, u in zip(a.weights, b.weights)):
            return False
    return True


def _shapes(tensors):
    if isinstance(tensors, (list, tuple)):
        return tuple(_shapes(t) for t in tensors)
    return tuple(tensors.shape)


def embed(array, shape):
    """``array`` as the leading block of a zero array of ``shape``."""
    array = np.asarray(array)
    if tuple(array.shape) == tuple(shape):
        return array
    out = np.zeros(shape, dtype=array.dtype)
    out[tuple(slice(0, d) for d in array.shape)] = array
    return out


def extract(array, shape):
    """The leading block of ``array`` of ``shape`` (the inverse of :func:`embed`)."""
    return np.asarray(array)[tuple(slice(0, d) for d in shape)]


def layer_weights(layout, weights, targets=None):
    """A model's prunable layers as :class:`~widthvsprune.sizes.LayerWeights` (from ``get_weights()`` arrays).

    ``targets`` (one per prunable kernel) marks the kernels pruning touched.
    """
    return [
        LayerWeights(
            name=info.name,
            kernel=np.asarray(weights[info.kernel]),
            bias=None if info.bias is None else np.asarray(weights[info.bias]),
            positions=info.positions,
            pruned=targets is not None and targets[j] > 0,
        )
        for j, info in enumerate(layout.kernels)
    ]


def allocation_layers(layout, weights=None):
    """The model's prunable layers as allocations see them: kernel shapes, and values from ``weights``."""
    groups = {}
    for info in layout.kernels:
        groups.setdefault(info.layer, []).append(info)
    return [Layer(infos[0].name, tuple(layout.shapes[i.kernel] for i in infos),
                  None if weights is None else tuple(np.asarray(weights[i.kernel]) for i in infos))
            for infos in groups.values()]


def multiply_adds(layout):
    """Multiply-adds of one example's forward pass through the model's kernels, from the layout's shapes: the
    dense model's :func:`widthvsprune.sizes.flops` (each kernel weight once per output position; biases,
    normalizations and attention's products of activations left out)."""
    return sum(math.prod(layout.shapes[info.kernel]) * info.positions for info in layout.kernels)


def other_params(layout):
    """Parameters outside the layers :func:`layer_weights` returns (always dense)."""
    counted = sum(math.prod(layout.shapes[info.kernel]) for info in layout.kernels)
    counted += sum(math.prod(layout.shapes[info.bias]) for info in layout.kernels if info.bias is not None)
    return layout.params - int(counted)
