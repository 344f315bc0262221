"""Size accounting of trained models (pure NumPy, no TensorFlow).

Every count is taken from stripped weights: a tfmot-wrapped model's
``count_params()`` also counts its mask and threshold variables, and tfmot
never prunes biases, so kernels and biases are counted separately.
"""

import dataclasses
import gzip
import math
from typing import Optional, Sequence

import numpy as np

SIZE_AXES = ("nonzero_params", "total_params", "dense_bytes", "sparse_bytes", "gzip_bytes", "flops", "nonzero_flops")


@dataclasses.dataclass(frozen=True)
class LayerWeights:
    """One kernel of a model (a Dense or Conv layer's, a recurrent layer's kernel or recurrent kernel) and its bias.

    Attributes:
        name: the layer's name (with ``/kernel`` or ``/recurrent_kernel`` for recurrent layers).
        kernel: its kernel (``(..., fan_in, units)``; any rank).
        bias: its bias, or ``None``.
        positions: output positions (or steps) per example that reuse the
            kernel (1 for Dense, ``H_out * W_out`` for Conv2D); used for FLOPs.
        pruned: whether pruning zeroed weights of this kernel in this model.
        prunable: whether tfmot can prune this kind of kernel at all (not a
            depthwise kernel); a size point's sparsity is over these.
    """

    name: str
    kernel: np.ndarray
    bias: Optional[np.ndarray] = None
    positions: int = 1
    pruned: bool = True
    prunable: bool = True


def layer_counts(layers: Sequence[LayerWeights]):
    """Per-layer counts: kernel and bias sizes and nonzeros, and sparsity."""
    out = []
    for layer in layers:
        kernel = np.asarray(layer.kernel)
        bias = None if layer.bias is None else np.asarray(layer.bias)
        k_nz = int(np.count_nonzero(kernel))
        out.append(
            {
                "layer": layer.name,
                "pruned": bool(layer.pruned),
                "prunable": bool(layer.prunable),
                "kernel_params": int(kernel.size),
                "kernel_shape": [int(d) for d in kernel.shape],
                "kernel_nonzero": k_nz,
                "bias_params": 0 if bias is None else int(bias.size),
                "bias_nonzero": 0 if bias is None else int(np.count_nonzero(bias)),
                "sparsity": 1.0 - k_nz / kernel.size if kernel.size else 0.0,
            }
        )
    return out


def summarize(layers: Sequence[LayerWeights], extra_params=0):
    """Whole-model size figures of a list of layers.

    Args:
        layers: the model's Dense and Conv layers.
        extra_params: parameters held by other layers (always dense).

    Returns:
        A dict with ``total_params``, ``nonzero_params``, ``sparsity`` (zeros
        over the prunable kernels, the quantity a size point's target sets; a
        prunable kernel left dense counts too), ``dense_bytes``,
        ``sparse_bytes``, ``gzip_bytes``, ``flops`` and ``nonzero_flops``.
    """
    counts = layer_counts(layers)
    total = sum(c["kernel_params"] + c["bias_params"] for c in counts) + extra_params
    nonzero = sum(c["kernel_nonzero"] + c["bias_nonzero"] for c in counts) + extra_params
    kernels = sum(c["kernel_params"] for c in counts if c["prunable"])
    kernels_nz = sum(c["kernel_nonzero"] for c in counts if c["prunable"])
    return {
        "total_params": int(total),
        "nonzero_params": int(nonzero),
        "sparsity": 1.0 - kernels_nz / kernels if kernels else 0.0,
        "dense_bytes": dense_bytes(total),
        "sparse_bytes": sparse_bytes(layers) + 4 * int(extra_params),
        "gzip_bytes": gzip_bytes([a for layer in layers for a in (layer.kernel, layer.bias) if a is not None]),
        "flops": flops(layers),
        "nonzero_flops": flops(layers, nonzero_only=True),
    }


def dense_bytes(total_params):
    """float32 storage of every parameter."""
    return 4 * int(total_params)


def _index_bytes(n):
    """Bytes of the smallest unsigned integer type that can index ``n`` slots."""
    for size in (1, 2, 4):
        if n <= 2 ** (8 * size):
            return size
    return 8


def kernel_sparse_bytes(kernel):
    """Storage of one kernel in the cheapest of three formats.

    The formats are: dense float32 (``4 * size``); or 4 bytes per nonzero
    plus either a bitmask (``ceil(size / 8)`` bytes) or a compressed-sparse-row
    index over the kernel viewed as a ``(fan_in, units)`` matrix (one column
    index per nonzero in the smallest unsigned type that holds ``units``
    values, plus ``fan_in + 1`` row pointers in the smallest type that holds
    ``nnz + 1`` values). This is how Zhu & Gupta (2017, Tables 5 and 6) count
    the storage of a sparse model.
    """
    kernel = np.asarray(kernel)
    size = int(kernel.size)
    units = int(kernel.shape[-1]) if kernel.ndim else 1
    rows = size // units if units else 0
    nnz = int(np.count_nonzero(kernel))
    bitmask = int(math.ceil(size / 8))
    csr = nnz * _index_bytes(units) + (rows + 1) * _index_bytes(nnz + 1)
    return min(4 * size, 4 * nnz + min(bitmask, csr))


def sparse_bytes(layers: Sequence[LayerWeights]):
    """Sparse storage of a model: kernels as :func:`kernel_sparse_bytes`, biases dense."""
    total = 0
    for layer in layers:
        total += kernel_sparse_bytes(layer.kernel)
        if layer.bias is not None:
            total += 4 * int(np.asarray(layer.bias).size)
    return int(total)


def gzip_bytes(arrays):
    """Size of the weights as raw float32 bytes, gzip-compressed (level 9).

    The arrays are written one after another in C order, as a weights file
    holds them, and compressed the way tfmot's guide measures the gain of
    pruning. The result is deterministic (no timestamp).
    """
    raw = b"".join(np.ascontiguousarray(a, dtype=np.float32).tobytes() for a in arrays)
    return len(gzip.compress(raw, compresslevel=9, mtime=0))


def flops(layers: Sequence[LayerWeights], nonzero_only=False):
    """Multiply-adds per example: each kernel weight is used once per output position."""
    total = 0
    for layer in layers:
        kernel = np.asarray(layer.kernel)
        used = np.count_nonzero(kernel) if nonzero_only else kernel.size
        total += int(used) * int(layer.positions)
    return int(total)
