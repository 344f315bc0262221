"""Mask decisions as plain NumPy arithmetic, shared by every engine.

- :func:`polynomial_sparsity_f32` and :func:`layerwise_mask` reproduce, bit
  for bit, tfmot's ``PolynomialDecay`` sparsity (computed in float32) and its
  magnitude mask (``k = max(round_half_even(n * (1 - s)), 1)`` weights kept:
  every weight whose magnitude reaches the k-th largest, ties included);
- :func:`zero_smallest` zeroes a layer's smallest magnitudes, ties by position
  (the selection of allocations decided at every mask update, ``global``);
- :func:`random_masks` removes random surviving weights (the sanity
  baseline of Blalock et al. 2020 and Gale et al. 2019).
"""

import numpy as np


def polynomial_sparsity_f32(step, initial, final, begin_step, end_step, power=3):
    """tfmot's ``PolynomialDecay`` sparsity at ``step``, computed in float32 as tfmot computes it.

    ``p = clip((step - begin) / (end - begin), 0, 1)`` and the sparsity is
    ``(initial - final) * (1 - p) ** power + final``.
    """
    f32 = np.float32
    p = np.minimum(f32(1.0), np.maximum(f32(0.0), f32(step - begin_step) / f32(end_step - begin_step)))
    return f32(f32(initial - final) * np.power(f32(1.0) - p, f32(power)) + f32(final))


def kept_count(size, sparsity):
    """Weights tfmot keeps in a kernel of ``size`` at ``sparsity``: ``max(round_half_even(size * (1 - s)), 1)``."""
    return int(max(np.round(np.float32(size) * (np.float32(1.0) - np.float32(sparsity))), 1))


def layerwise_mask(weight, sparsity):
    """tfmot's magnitude mask of one kernel at ``sparsity``: ``(threshold, mask)``.

    The threshold is the k-th largest magnitude (:func:`kept_count`); every
    weight whose magnitude is at least the threshold is kept, ties included.
    """
    magnitudes = np.abs(np.asarray(weight))
    k = kept_count(magnitudes.size, sparsity)
    flat = magnitudes.ravel()
    threshold = np.partition(flat, flat.size - k)[flat.size - k]
    return threshold, (magnitudes >= threshold).astype(np.asarray(weight).dtype)


def zero_smallest(kernels, masks, zeros):
    """Masks of one layer's kernels zeroing its ``zeros`` smallest magnitudes of ``kernel * mask`` together.

    Ties are broken by position (the kernels taken one after another), and
    weights already pruned (magnitude 0) go first, so they stay pruned. Over
    several layers at once this is one global magnitude threshold: each
    layer's share of it is what :func:`widthvsprune.pruning.allocations.global_magnitude`
    computes.
    """
    flat = np.concatenate([np.abs(np.asarray(k) * np.asarray(m)).ravel() for k, m in zip(kernels, masks)])
    keep = np.ones(flat.size, dtype=bool)
    if zeros:
        keep[np.argsort(flat, kind="stable")[: int(zeros)]] = False
    out, start = [], 0
    for kernel in kernels:
        kernel = np.asarray(kernel)
        out.append(keep[start : start + kernel.size].reshape(kernel.shape).astype(kernel.dtype))
        start += kernel.size
    return out


def random_masks(kernels, masks, target, rng):
    """Masks removing random surviving weights until each kernel reaches ``target``."""
    out = []
    for kernel, mask in zip(kernels, masks):
        mask = mask.astype(bool).ravel().copy()
        n_zero = int(round(target * mask.size))
        extra = n_zero - int((~mask).sum())
        if extra > 0:
            alive = np.flatnonzero(mask)
            mask[rng.choice(alive, size=extra, replace=False)] = False
        out.append(mask.reshape(kernel.shape).astype(kernel.dtype))
    return out
