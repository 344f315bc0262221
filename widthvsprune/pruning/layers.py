"""Which layers hold kernels, and which of those kernels pruning may touch: one table for every engine.

Keras 2 (tf_keras) and Keras 3 name their layer classes alike, so both
engines look a layer up here by the names of its class and base classes.
:data:`PRUNABLE` follows tfmot's ``PruneRegistry``: the kernels it prunes, by
attribute path (a ``MultiHeadAttention``'s four projection kernels, of rank
3, as tfmot's registry lists them; ``EinsumDense``, which tfmot does not
list, on the ``jax`` engine only). :data:`COUNTED` lists kernels the size
accounting reads but that tfmot never prunes (a depthwise kernel).
"""

#: Kernels tfmot prunes, by layer class: attribute paths on the layer.
PRUNABLE = {
    "Dense": ("kernel",),
    "Conv1D": ("kernel",),
    "Conv2D": ("kernel",),
    "Conv3D": ("kernel",),
    "Conv2DTranspose": ("kernel",),
    "Conv3DTranspose": ("kernel",),
    "SeparableConv1D": ("pointwise_kernel",),
    "SeparableConv2D": ("pointwise_kernel",),
    "Embedding": ("embeddings",),
    "EinsumDense": ("kernel",),
    "MultiHeadAttention": ("_query_dense.kernel", "_key_dense.kernel", "_value_dense.kernel", "_output_dense.kernel"),
    "GRU": ("cell.kernel", "cell.recurrent_kernel"),
    "LSTM": ("cell.kernel", "cell.recurrent_kernel"),
    "SimpleRNN": ("cell.kernel", "cell.recurrent_kernel"),
}

#: The layers of :data:`PRUNABLE` that tfmot's ``prune_low_magnitude`` wraps (the ``tf_keras`` engine's).
TFMOT = {name: paths for name, paths in PRUNABLE.items() if name != "EinsumDense"}

#: Kernels counted by the size accounting that tfmot leaves dense.
COUNTED = {
    "DepthwiseConv1D": ("depthwise_kernel",),
    "DepthwiseConv2D": ("depthwise_kernel",),
}

RECURRENT = frozenset({"GRU", "LSTM", "SimpleRNN"})


def entry(layer, table=None):
    """The name under which ``layer``'s class (or a base class) appears in ``table`` (:data:`PRUNABLE`), or ``None``."""
    table = PRUNABLE if table is None else table
    for cls in type(layer).__mro__:
        if cls.__name__ in table:
            return cls.__name__
    return None


def resolve(layer, path):
    """The weight at ``path`` (``"cell.kernel"``) of ``layer``."""
    obj = layer
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


def kernels(layer, table=None):
    """``layer``'s prunable kernels (weights), in order; empty for a layer pruning does not touch."""
    table = PRUNABLE if table is None else table
    name = entry(layer, table)
    return [resolve(layer, path) for path in table[name]] if name else []
