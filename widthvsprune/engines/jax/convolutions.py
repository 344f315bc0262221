"""Convolutions of stacked models: one batched computation for the models of a pack.

Every function here takes the inputs of ``m`` models stacked on a leading
axis, ``(m, batch, *spatial, channels)`` (Keras's ``channels_last``), and the
models' kernels stacked the same way, ``(m, *kernel_size, in, out)``, and
computes each model's convolution exactly as Keras 3's ``Conv1D`` /
``Conv2D`` / ``DepthwiseConv*D`` compute it (``ops.conv``: strides,
``"valid"`` or ``"same"`` padding), up to the order of float32 sums.

The ways to compute it (:data:`METHODS`), chosen per layer shape by
:func:`choose` from measurements on a 2-core CPU, inside a compiled loop
as the engine's programs run them (``benchmarks/convolutions.py``):

- ``"patches"``: the input's patches (im2col) are cut by strided slices and
  concatenated, ``(m, batch * positions, k * k * in)``, then multiplied by
  the stacked kernels in one batched matrix product
  (``"m p k, m k c -> m p c"``). The patches hold ``k * k`` times the
  input's activations; slices (unlike
  ``jax.lax.conv_general_dilated_patches``, a convolution with a one-hot
  kernel) have a cheap gradient.
- ``"taps"``: the same patches with the kernel offsets on a leading axis.
- ``"shifts"``: one batched matrix product per kernel offset, summed: no
  patch copy, but ``k * k`` products of depth ``in``.
- ``"per_model"``: XLA's convolution, written out model by model (fast
  alone, many times slower inside a compiled loop on a CPU: never chosen).
- ``"grouped"``: XLA's convolution with the models folded into the channels
  (``feature_group_count=m``), what ``jax.vmap`` of a convolution becomes.

A convolution followed by a tiling max pooling can also be computed by
``"phases"`` (:func:`conv_max_pool_phases`, chosen by :func:`choose_pooled`);
:func:`depthwise` computes depthwise convolutions as shifted products.
"""

import itertools
import math

import jax.numpy as jnp
from jax import lax

from widthvsprune.engines.jax import pooling

METHODS = ("patches", "taps", "shifts", "per_model", "grouped")


def pads(spatial, kernel_size, strides, padding):
    """Keras's padding of each spatial axis, ``((low, high), ...)``, for ``"valid"`` or ``"same"``.

    Example:

    >>> pads((28, 28), (5, 5), (1, 1), "same")
    ((2, 2), (2, 2))
    """
    return tuple(tuple(int(p) for p in pair)
                 for pair in lax.padtype_to_pads(spatial, kernel_size, strides, padding.upper()))


def output_spatial(spatial, kernel_size, strides, padding):
    """The output's spatial shape."""
    return tuple((n + lo + hi - k) // s + 1
                 for n, k, s, (lo, hi) in zip(spatial, kernel_size, strides, pads(spatial, kernel_size, strides,
                                                                                  padding)))


def _padded(x, kernel_size, strides, padding):
    """``x`` (``(m, batch, *spatial, c)``) with Keras's padding applied to its spatial axes."""
    spatial = x.shape[2:-1]
    widths = pads(spatial, kernel_size, strides, padding)
    if not any(lo or hi for lo, hi in widths):
        return x
    return jnp.pad(x, ((0, 0), (0, 0)) + widths + ((0, 0),))


def _shifted(x, offset, out, strides):
    """The input values that kernel ``offset`` meets at every output position: ``(m, batch, *out, c)``."""
    index = (slice(None), slice(None)) + tuple(
        slice(o, o + (n - 1) * s + 1, s) for o, n, s in zip(offset, out, strides)) + (slice(None),)
    return x[index]


def _offsets(kernel_size):
    return list(itertools.product(*(range(k) for k in kernel_size)))


def matmul(a, b):
    """``(m, p, k) @ (m, k, c)``: one matrix product per model."""
    return lax.dot_general(a, b, (((2,), (1,)), ((0,), (0,))))


def patches(x, kernel_size, strides, padding):
    """Each output position's receptive field: ``(m, batch, *out, prod(kernel_size) * c)``.

    The last axis is ordered as a Keras kernel ``(*kernel_size, c, filters)``
    reshaped to ``(-1, filters)``: kernel offset first, then channel.
    """
    out = output_spatial(x.shape[2:-1], kernel_size, strides, padding)
    x = _padded(x, kernel_size, strides, padding)
    cols = [_shifted(x, offset, out, strides) for offset in _offsets(kernel_size)]
    return cols[0] if len(cols) == 1 else jnp.concatenate(cols, axis=-1)


def conv_patches(x, kernel, strides, padding):
    """Stacked convolution as patches times kernels (one batched matrix product)."""
    m, batch = x.shape[:2]
    kernel_size, filters = kernel.shape[1:-2], kernel.shape[-1]
    cols = patches(x, kernel_size, strides, padding)
    y = matmul(cols.reshape(m, -1, cols.shape[-1]), kernel.reshape(m, -1, filters))
    return y.reshape(cols.shape[:-1] + (filters,))


def conv_shared(x, kernel, strides, padding):
    """Every model's convolution of one input ``x`` (``(batch, *spatial, c)``, no model axis): patches cut once."""
    m, filters = kernel.shape[0], kernel.shape[-1]
    cols = patches(x[None], kernel.shape[1:-2], tuple(strides), padding)[0]
    y = jnp.einsum("pk,mko->mpo", cols.reshape(-1, cols.shape[-1]), kernel.reshape(m, -1, filters))
    return y.reshape((m,) + cols.shape[:-1] + (filters,))


def conv_taps(x, kernel, strides, padding):
    """Stacked convolution as patches times kernels, the kernel offsets (taps) on a leading axis of the patches.

    The patches are ``(m, taps, batch * positions, c)``: each tap's slice is
    copied whole (long rows), and the matrix product contracts taps and
    channels.
    """
    m, batch = x.shape[:2]
    kernel_size, channels, filters = kernel.shape[1:-2], kernel.shape[-2], kernel.shape[-1]
    out = output_spatial(x.shape[2:-1], kernel_size, strides, padding)
    x = _padded(x, kernel_size, strides, padding)
    taps = [_shifted(x, offset, out, strides) for offset in _offsets(kernel_size)]
    cols = jnp.stack(taps, axis=1).reshape(m, len(taps), -1, channels)
    y = lax.dot_general(cols, kernel.reshape(m, len(taps), channels, filters), (((1, 3), (1, 2)), ((0,), (0,))))
    return y.reshape((m, batch) + out + (filters,))


def conv_shifts(x, kernel, strides, padding):
    """Stacked convolution as a sum over kernel offsets of batched matrix products."""
    m = x.shape[0]
    kernel_size, channels, filters = kernel.shape[1:-2], kernel.shape[-2], kernel.shape[-1]
    out = output_spatial(x.shape[2:-1], kernel_size, strides, padding)
    x = _padded(x, kernel_size, strides, padding)
    total = None
    for offset in _offsets(kernel_size):
        part = matmul(_shifted(x, offset, out, strides).reshape(m, -1, channels), kernel[(slice(None),) + offset])
        total = part if total is None else total + part
    return total.reshape((m, x.shape[1]) + out + (filters,))


def _lax_conv(x, kernel, strides, padding, groups=1):
    rank = x.ndim - 2
    spec = {1: ("NWC", "WIO", "NWC"), 2: ("NHWC", "HWIO", "NHWC")}[rank]
    return lax.conv_general_dilated(x, kernel, tuple(strides), padding.upper(), dimension_numbers=spec,
                                    feature_group_count=groups)


def conv_per_model(x, kernel, strides, padding):
    """Stacked convolution as one XLA convolution per model."""
    return jnp.stack([_lax_conv(x[i], kernel[i], strides, padding) for i in range(x.shape[0])])


def conv_grouped(x, kernel, strides, padding):
    """Stacked convolution as one grouped XLA convolution (models folded into channels)."""
    m, batch = x.shape[:2]
    spatial, channels, filters = x.shape[2:-1], x.shape[-1], kernel.shape[-1]
    folded = jnp.moveaxis(x, 0, -2).reshape((batch,) + spatial + (m * channels,))
    kernels = jnp.moveaxis(kernel, 0, -2).reshape(kernel.shape[1:-2] + (channels, m * filters))
    y = _lax_conv(folded, kernels, strides, padding, groups=m)
    y = y.reshape(y.shape[:-1] + (m, filters))
    return jnp.moveaxis(y, -2, 0)


CONVOLUTIONS = {"patches": conv_patches, "taps": conv_taps, "shifts": conv_shifts, "per_model": conv_per_model,
                "grouped": conv_grouped}


def conv(x, kernel, strides, padding, method):
    """Every model's ``ops.conv(x[i], kernel[i], strides, padding)``, by ``method`` (one of :data:`METHODS`)."""
    return CONVOLUTIONS[method](x, kernel, tuple(strides), padding)


def pooled_patches(x, kernel_size, strides, padding, pool):
    """For each window of a tiling max pooling after the convolution, the input its convolution outputs read.

    The windows follow each other at ``step = strides * pool`` and span
    ``strides * (pool - 1) + kernel_size`` values, rounded up here to whole
    blocks of ``step`` (the kernels are zero on the extra values). The
    input is cut into blocks, and each window is its next ``blocks`` blocks
    on every axis: a few large copies (4 for the seed CNN) where cutting
    each of the window's 16 values was 2.7 times slower.

    Returns:
        ``(patches, (blocks, step))``: patches ``(m, batch, *pooled, K)``
        with ``K`` ordered as block offset, offset within the block, channel
        (:func:`phase_kernels` orders the kernels so).
    """
    conv_out = output_spatial(x.shape[2:-1], kernel_size, strides, padding)
    out = tuple(n // p for n, p in zip(conv_out, pool))
    step = tuple(s * p for s, p in zip(strides, pool))
    blocks = tuple(-(-(s * (p - 1) + k) // t) for k, s, p, t in zip(kernel_size, strides, pool, step))
    x = _padded(x, kernel_size, strides, padding)
    size = tuple((o + b - 1) * t for o, b, t in zip(out, blocks, step))
    x = x[(slice(None), slice(None)) + tuple(slice(0, n) for n in size)]
    missing = tuple((0, n - have) for n, have in zip(size, x.shape[2:-1]))
    if any(hi for _, hi in missing):
        x = jnp.pad(x, ((0, 0), (0, 0)) + missing + ((0, 0),))
    rank = len(out)
    x = x.reshape(x.shape[:2] + tuple(d for n, t in zip(size, step) for d in (n // t, t)) + x.shape[-1:])
    x = jnp.transpose(x, (0, 1) + tuple(range(2, 2 + 2 * rank, 2)) + tuple(range(3, 3 + 2 * rank, 2)) + (2 + 2 * rank,))
    parts = [x[(slice(None), slice(None)) + tuple(slice(b, b + o) for b, o in zip(offset, out))]
             for offset in _offsets(blocks)]
    cols = parts[0] if len(parts) == 1 else jnp.stack(parts, axis=2 + rank)
    return cols.reshape(cols.shape[:2] + out + (-1,)), (blocks, step)


def phase_kernels(kernel, strides, pool, layout):
    """The kernel placed at each pooling phase's offset in the window, in the order of :func:`pooled_patches`.

    Returns ``(m, K, prod(pool), filters)``: phase ``a`` (row-major over
    the pool) holds the kernel at offset ``strides * a`` of the window.
    """
    blocks, step = layout
    m, kernel_size, filters = kernel.shape[0], kernel.shape[1:-2], kernel.shape[-1]
    rank = len(kernel_size)
    window = tuple(b * t for b, t in zip(blocks, step))
    placed = []
    for phase in _offsets(pool):
        pads = tuple((s * a, w - k - s * a) for a, s, k, w in zip(phase, strides, kernel_size, window))
        placed.append(jnp.pad(kernel, ((0, 0),) + pads + ((0, 0), (0, 0))))
    kernels = jnp.stack(placed, axis=-2)  # (m, *window, c, phases, filters)
    kernels = kernels.reshape((m,) + tuple(d for b, t in zip(blocks, step) for d in (b, t)) + kernels.shape[-3:])
    order = (0,) + tuple(range(1, 1 + 2 * rank, 2)) + tuple(range(2, 2 + 2 * rank, 2))
    kernels = jnp.transpose(kernels, order + tuple(range(1 + 2 * rank, 4 + 2 * rank)))
    return kernels.reshape(m, -1, math.prod(pool), filters)


def conv_max_pool_phases(x, kernel, strides, padding, pool):
    """A convolution and a tiling max pooling after it, as one batched matrix product and a maximum.

    Each pooling window's ``prod(pool)`` convolution outputs (its phases)
    come from one patch of the input, the window of
    :func:`pooled_patches`, times the kernel placed at each phase's offset
    (:func:`phase_kernels`): a deeper product (``prod(window) * c`` against
    ``prod(kernel_size) * c``) with ``prod(pool)`` times the filters, whose
    patches hold far fewer copies of the input than plain patches (for the
    seed CNN 16 values per pooled position against 36). The
    maximum over the phases has Keras's gradient
    (:func:`~widthvsprune.engines.jax.pooling.first_max`: phases in the
    window's row-major order).
    """
    m, filters = x.shape[0], kernel.shape[-1]
    strides, pool = tuple(strides), tuple(pool)
    cols, layout = pooled_patches(x, kernel.shape[1:-2], strides, padding, pool)
    # Columns ordered filter, then phase: the maximum and its gradient then run over a minor axis of prod(pool)
    # values (8% faster than phase, then filter, for the seed CNN).
    kernels = jnp.swapaxes(phase_kernels(kernel, strides, pool, layout), -1, -2).reshape(m, cols.shape[-1], -1)
    y = matmul(cols.reshape(m, -1, cols.shape[-1]), kernels)  # (m, positions, filters * phases)
    pooled = pooling.first_max(y.reshape(m, -1, filters, math.prod(pool)), -1)
    return pooled.reshape(cols.shape[:-1] + (filters,))


def conv_max_pool_shared(x, kernel, strides, padding, pool):
    """:func:`conv_max_pool_phases` of one input ``x`` (``(batch, *spatial, c)``, no model axis) for every model.

    The patches are cut once; the models' phase kernels side by side make
    one matrix product. For evaluation: the maximum's gradient is ``jnp.max``'s.
    """
    m, filters = kernel.shape[0], kernel.shape[-1]
    strides, pool = tuple(strides), tuple(pool)
    cols, layout = pooled_patches(x[None], kernel.shape[1:-2], strides, padding, pool)
    kernels = jnp.moveaxis(phase_kernels(kernel, strides, pool, layout), 0, -3).reshape(cols.shape[-1], -1)
    y = jnp.dot(cols.reshape(-1, cols.shape[-1]), kernels)  # (positions, models * phases * filters)
    pooled = jnp.max(y.reshape(-1, m, math.prod(pool), filters), axis=-2)
    return jnp.moveaxis(pooled, 1, 0).reshape((m,) + cols.shape[1:-1] + (filters,))  # the pooled values moved


def conv_max_pool(x, kernel, strides, padding, pool, method):
    """Every model's convolution (no bias) followed by a tiling max pooling of size ``pool``.

    ``method`` is ``"phases"`` (:func:`conv_max_pool_phases`) or one of
    :data:`METHODS` (the convolution, then
    :func:`~widthvsprune.engines.jax.pooling.max_pool`).
    """
    if method == "phases":
        return conv_max_pool_phases(x, kernel, strides, padding, pool)
    return pooling.max_pool(conv(x, kernel, strides, padding, method), pool)


def depthwise(x, kernel, strides, padding):
    """Every model's depthwise convolution (Keras's ``DepthwiseConv*D``), as a sum of shifted products.

    ``kernel`` is ``(m, *kernel_size, c, multiplier)``; output channel
    ``i * multiplier + j`` is input channel ``i`` times its ``j``-th filter.
    """
    kernel_size, channels, multiplier = kernel.shape[1:-2], kernel.shape[-2], kernel.shape[-1]
    out = output_spatial(x.shape[2:-1], kernel_size, strides, padding)
    x = _padded(x, kernel_size, tuple(strides), padding)
    broadcast = (slice(None),) + (None,) * (len(out) + 1)
    total = None
    for offset in _offsets(kernel_size):
        part = _shifted(x, offset, out, tuple(strides))[..., None] * kernel[(slice(None),) + offset][broadcast]
        total = part if total is None else total + part
    return total.reshape(total.shape[:-2] + (channels * multiplier,))


def choose_pooled(kernel_size, in_channels, strides, pool):
    """The fastest way (``"phases"`` or one of :data:`METHODS`) to compute a convolution and a max pooling.

    Measured on a 2-core CPU (``benchmarks/convolutions.py layers``, the
    table in ``docs/engines-jax-convolutions.md``, each step in a compiled
    loop), a pooling of 2 after a convolution, CPU microseconds per example:
    the phases 14 where the best plain method and a pooling take 36-42 (the
    seed CNN), 15-22 against 56-61 (LeNet-5's first layer), 46-58 against
    75-76 (its second), 41-52 against 48-50 and 131-149 against 136-159
    (keras.io's MNIST convnet). A larger pooling multiplies the phases' work
    by ``prod(pool)``; it is left to :func:`choose`.
    """
    if math.prod(pool) <= 4:
        return "phases"
    return choose(kernel_size, in_channels, strides)


def choose(kernel_size, in_channels, strides):
    """The fastest of :data:`METHODS` for a convolution of this shape on a CPU, inside a training loop.

    Measured as :func:`choose_pooled` (1 and 4 models), each step in a
    compiled loop as the engine runs it: there XLA's own convolution is
    many times slower than alone (jax-ml/jax#12868), slower than every
    product of patches (ResNet's 3x3 layers of 16 channels 8,700-10,000 us
    per example against 242-308 for shifts and 317-525 for patches; LeNet-5's
    5x5 layers 106-667 against 32-63 for patches). Patches are the fastest
    or within a few percent for 1-D convolutions, 1x1 kernels and 2-D
    kernels over few channels; shifts (no patch copy) for 2-D kernels over
    16 channels or more. The grouped convolution of a ``vmap`` is never the
    choice.
    """
    del strides
    if len(kernel_size) == 2 and math.prod(kernel_size) > 1 and in_channels >= 16:
        return "shifts"
    return "patches"
