"""Mask decisions as NumPy arithmetic, shared by every engine."""

import numpy as np
import pytest

from widthvsprune.pruning import masks


def test_zero_smallest_over_a_layers_kernels_by_hand():
    kernels = [np.array([[1.0, -5.0], [0.1, 2.0]]), np.array([[0.2, 3.0, -0.3]])]
    ones = [np.ones_like(k) for k in kernels]
    new = masks.zero_smallest(kernels, ones, 3)  # 0.1, 0.2 and 0.3 go
    np.testing.assert_array_equal(new[0], [[1, 1], [0, 1]])
    np.testing.assert_array_equal(new[1], [[0, 1, 0]])


def test_zero_smallest_breaks_ties_by_position_and_keeps_pruned_weights_pruned():
    kernel = np.array([0.5, 0.5, 0.5, 2.0])
    mask = np.array([1.0, 1.0, 1.0, 0.0])  # 2.0 is pruned already: magnitude 0, it goes first
    new = masks.zero_smallest([kernel], [mask], 2)[0]
    np.testing.assert_array_equal(new, [0, 1, 1, 0])


def test_random_masks_keep_pruned_weights_pruned():
    rng = np.random.default_rng(0)
    kernel = np.ones((10, 10))
    first = masks.random_masks([kernel], [np.ones_like(kernel)], 0.5, rng)[0]
    second = masks.random_masks([kernel], [first], 0.8, rng)[0]
    assert first.sum() == 50 and second.sum() == 20
    assert np.all(second <= first)


@pytest.mark.parametrize("size,sparsity,kept", [(10, 0.5, 5), (10, 0.95, 1), (10, 0.99, 1), (4, 0.375, 2),
                                                 (4, 0.625, 2), (100, 0.0, 100)])
def test_kept_count_rounds_half_to_even_and_keeps_at_least_one(size, sparsity, kept):
    # 4 * 0.625 = 2.5 -> 2 and 4 * (1 - 0.375) = 2.5 -> 2: round half to even, as tf.math.round does.
    assert masks.kept_count(size, sparsity) == kept


def test_layerwise_mask_keeps_ties_at_the_threshold():
    weight = np.array([[0.5, -0.5, 0.1], [0.5, 2.0, -0.05]], dtype=np.float32)
    threshold, mask = masks.layerwise_mask(weight, 0.5)  # k = 3: the third largest magnitude is 0.5
    assert threshold == 0.5
    np.testing.assert_array_equal(mask, [[1, 1, 0], [1, 1, 0]])  # four kept: ties are kept


def test_polynomial_sparsity_is_float32_and_reaches_its_ends():
    assert masks.polynomial_sparsity_f32(0, 0.5, 0.8, 0, 100).dtype == np.float32
    assert masks.polynomial_sparsity_f32(0, 0.5, 0.8, 0, 100) == np.float32(0.5)
    assert masks.polynomial_sparsity_f32(100, 0.5, 0.8, 0, 100) == np.float32(0.8)
    assert masks.polynomial_sparsity_f32(500, 0.5, 0.8, 0, 100) == np.float32(0.8)
    middle = masks.polynomial_sparsity_f32(50, 0.0, 0.8, 0, 100)
    assert abs(float(middle) - 0.8 * (1 - 0.5**3)) < 1e-6
