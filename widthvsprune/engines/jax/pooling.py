"""Pooling of stacked models over windows that tile the input, with Keras's values and gradients.

Keras 3 pools with XLA's windowed reduction (``lax.reduce_window``), whose
gradient (a select-and-scatter) is slow on a CPU. When the windows tile the
input (strides equal to the pool size, ``"valid"`` padding: the trailing
rows that fill no window are dropped) pooling is a reshape and a reduction.
For max pooling :func:`max_pool` keeps Keras's gradient exactly: each
window's gradient goes to its *first* largest element (row-major order
within the window), as the select-and-scatter sends it; ``jnp.max``'s own
gradient would share it out among equal elements (:func:`first_max`).

Arrays are ``(models, batch, *spatial, channels)``.
"""

import functools
import math

import jax
import jax.numpy as jnp


def _windows(x, pool):
    """``x`` as ``(models, batch, *out, channels, prod(pool))``: each window's values on the last axis.

    The trailing rows (columns...) that fill no window are dropped.
    """
    rank = len(pool)
    out = tuple(n // p for n, p in zip(x.shape[2:-1], pool))
    x = x[(slice(None), slice(None)) + tuple(slice(0, o * p) for o, p in zip(out, pool))]
    x = x.reshape(x.shape[:2] + tuple(d for o, p in zip(out, pool) for d in (o, p)) + x.shape[-1:])
    order = (0, 1) + tuple(2 + 2 * i for i in range(rank)) + (2 + 2 * rank,) + tuple(3 + 2 * i for i in range(rank))
    return jnp.transpose(x, order).reshape(x.shape[:2] + out + x.shape[-1:] + (math.prod(pool),))


def _max_along(x, axis):
    """``jnp.max(x, axis)`` as element-wise maxima of the slices along ``axis`` (a short one: XLA's reduction over
    a few values of the minor axis is several times slower than the fused maxima)."""
    out = jnp.take(x, 0, axis=axis)
    for k in range(1, x.shape[axis]):
        out = jnp.maximum(out, jnp.take(x, k, axis=axis))
    return out


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def first_max(x, axis):
    """The largest value along ``axis``; its gradient goes to the first largest element (Keras's choice)."""
    return _max_along(x, axis)


def _first_index(x, out, axis):
    """Where along ``axis`` the first largest value of ``x`` is (``out`` the largest): by comparisons, which XLA
    fuses with the maxima, where an argmax over a short axis is a slow reduction."""
    first = jnp.full(out.shape, x.shape[axis] - 1, jnp.int8)
    for k in reversed(range(x.shape[axis] - 1)):
        first = jnp.where(jnp.take(x, k, axis=axis) == out, jnp.int8(k), first)
    return first


def _first_max_fwd(x, axis):
    out = _max_along(x, axis)
    # The backward pass needs only where each maximum came from: one small int8 array instead of ``x`` (the step
    # is bound by memory traffic: a pass less over the largest activation).
    return out, (_first_index(x, out, axis), x.shape)


def _first_max_bwd(axis, residuals, g):
    first, shape = residuals
    index = jax.lax.broadcasted_iota(jnp.int8, shape, axis % len(shape))
    return (jnp.where(index == jnp.expand_dims(first, axis), jnp.expand_dims(g, axis), jnp.zeros((), g.dtype)),)


first_max.defvjp(_first_max_fwd, _first_max_bwd)


def max_pool(x, pool):
    """The largest value of each window (Keras's ``MaxPooling*D`` with tiling windows), Keras's gradient.

    Example:

    >>> import numpy as np
    >>> x = np.arange(16, dtype="float32").reshape(1, 1, 4, 4, 1)
    >>> max_pool(x, (2, 2))[0, 0, :, :, 0].tolist()
    [[5.0, 7.0], [13.0, 15.0]]
    """
    return first_max(_windows(x, tuple(int(p) for p in pool)), -1)


def average_pool(x, pool):
    """The mean of each window (Keras's ``AveragePooling*D`` with tiling windows)."""
    pool = tuple(int(p) for p in pool)
    return jnp.sum(_windows(x, pool), axis=-1) / math.prod(pool)
