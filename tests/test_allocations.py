"""Allocations on hand-worked cases: where each puts a size point's zeros (pure NumPy, no framework)."""

import numpy as np
import pytest

from widthvsprune.pruning import allocations
from widthvsprune.pruning.allocations import Infeasible, Layer, allocate


def dense(*shapes, values=None):
    """Layers of the given kernel shapes (one kernel each), with values where given."""
    return [Layer(f"layer{i}", (tuple(s),), None if values is None else (np.asarray(values[i], float),))
            for i, s in enumerate(shapes)]


def zeros(layers, sparsities):
    return sum(s * layer.size for s, layer in zip(sparsities, layers))


def test_uniform_puts_every_layer_at_the_target_and_the_others_take_a_dense_outputs_zeros():
    layers = dense((10, 10), (10, 2))  # 100 and 20 weights
    assert allocate("uniform", layers, 0.5) == (0.5, 0.5)
    others, output = allocate("uniform", layers, 0.5, prune_output=False)
    assert output == 0.0 and others == pytest.approx(0.6)  # 60 zeros on the 100 weights left
    assert allocate("layerwise", layers, 0.5) == allocate("uniform", layers, 0.5)  # the earlier name


def test_first_dense_keeps_the_first_layer_dense_and_spreads_the_rest():
    layers = dense((5, 4), (10, 10), (10, 2))  # 20, 100, 20 weights: 70 zeros at 0.5
    assert allocate("first_dense", layers, 0.5) == pytest.approx((0.0, 70 / 120, 70 / 120))


def test_uniform_plus_caps_the_output_layer_at_80_percent():
    layers = dense((2, 5), (10, 10), (10, 2))  # 10, 100, 20 weights
    # At 0.7: 91 zeros on the last two layers, 0.758 each: under the cap.
    assert allocate("uniform_plus", layers, 0.7) == pytest.approx((0.0, 91 / 120, 91 / 120))
    # At 0.8: 104 zeros would put the output at 0.867; it keeps 20%: 16 zeros, 88 in the middle layer.
    assert allocate("uniform_plus", layers, 0.8) == pytest.approx((0.0, 0.88, 0.8))


def test_erk_densities_follow_the_sum_over_the_product_of_dimensions():
    layers = dense((4, 2), (2, 1))  # scores 6/8 and 3/2; sizes 8 and 2
    # 5 weights kept: eps = 5 / (0.75 * 8 + 1.5 * 2) = 5/9
    assert allocate("erk", layers, 0.5) == pytest.approx((1 - 0.75 * 5 / 9, 1 - 1.5 * 5 / 9))
    assert allocations.erk_scores(Layer("conv", ((3, 3, 1, 4),))) == pytest.approx(11 / 36)


def test_erk_caps_a_layer_at_dense_and_gives_the_excess_to_the_others():
    layers = dense((4, 2), (2, 1))
    # 8 of 10 kept: eps = 8/9 would give the small layer 1.33 density; it is made dense and eps solved again.
    assert allocate("erk", layers, 0.2) == pytest.approx((0.25, 0.0))


def test_lamp_scores_by_hand():
    np.testing.assert_allclose(allocations.lamp_scores([1.0, -2.0, 3.0]), [1 / 14, 4 / 13, 1.0])
    np.testing.assert_allclose(allocations.lamp_scores([[2.0], [2.0]]), [0.5, 1.0])  # ties by position


def test_lamp_keeps_every_layers_largest_weight_where_one_threshold_would_empty_a_layer():
    values = [[0.1, 0.2, 0.3], [1.0, 2.0, 3.0, 4.0]]
    layers = dense((3,), (4,), values=values)
    # 2 of 7 weights survive: LAMP keeps each layer's largest (score 1); one magnitude threshold keeps 3 and 4.
    assert allocate("lamp", layers, 5 / 7) == pytest.approx((2 / 3, 3 / 4))
    assert allocations.global_magnitude(layers, 5 / 7) == pytest.approx((1.0, 0.5))


def test_every_allocation_places_the_targets_number_of_zeros():
    rng = np.random.default_rng(0)
    shapes = [(3, 3, 1, 8), (3, 3, 8, 16), (64, 32), (32, 10)]
    layers = [Layer(f"l{i}", (s,), (rng.normal(size=s),)) for i, s in enumerate(shapes)]
    total = sum(layer.size for layer in layers)
    for name in allocations.allocation_names():
        for target in (0.3, 0.6, 0.8):
            for prune_output in (True, False):
                sparsities = allocate(name, layers, target, prune_output)
                assert abs(zeros(layers, sparsities) - target * total) <= 1.0, (name, target, prune_output)
                assert all(0 <= s < 1 for s in sparsities)
                if not prune_output:
                    assert sparsities[-1] == 0.0


def test_a_size_point_an_allocation_cannot_reach_is_reported_never_changed():
    layers = dense((2, 5), (10, 10), (10, 2))  # 10, 100, 20 weights
    with pytest.raises(Infeasible, match="would need"):
        allocate("uniform_plus", layers, 0.9)  # 117 zeros: the output keeps 4, the middle layer would need 101
    with pytest.raises(Infeasible, match="output layer dense"):
        allocate("uniform", dense((5, 2), (5, 2)), 0.6, prune_output=False)
    with pytest.raises(Infeasible):
        allocate("first_dense", dense((10, 10)), 0.5)  # the only layer is the first
    assert "would need" in allocations.infeasibility("uniform_plus", layers, 0.9)
    assert allocations.infeasibility("uniform_plus", layers, 0.7) == ""
    assert allocate("first_dense", dense((10, 10)), 0.0) == (0.0,)  # no zeros to place


def test_a_users_allocation_is_one_function_and_one_registration():
    def first_light(layers, target):
        first, rest = layers[0], layers[1:]
        left = target * sum(layer.size for layer in layers) - first.size * target / 2
        return [target / 2] + [left / sum(layer.size for layer in rest)] * len(rest)

    allocations.register_allocation("first_light_test", first_light)
    try:
        assert allocate("first_light_test", dense((10, 10), (10, 10)), 0.5) == pytest.approx((0.25, 0.75))
        with pytest.raises(ValueError, match="not registered yet"):
            allocations.register_allocation("first_light_test", first_light)
        allocations.register_allocation("wrong_test", lambda layers, target: [target / 2] * len(layers))
        with pytest.raises(ValueError, match="to place 100.0 zeros"):
            allocate("wrong_test", dense((10, 10), (10, 10)), 0.5)
    finally:
        allocations._REGISTRY.pop("first_light_test", None)
        allocations._REGISTRY.pop("wrong_test", None)


@pytest.mark.parametrize("engine_name", ["tf_keras", "jax"])
def test_a_users_allocation_prunes_each_kernel_to_its_share_on_both_engines(engine_name):
    from widthvsprune import data, engines, sizes
    from widthvsprune.engines.base import ModelSpec, Pack, PruneSpec
    from widthvsprune.pruning import masks, schedules

    def output_heavy(layers, target):  # the output layer at twice the others' sparsity
        sizes_ = [layer.size for layer in layers]
        share = target * sum(sizes_) / (sum(sizes_[:-1]) + 2 * sizes_[-1])
        return [share] * (len(layers) - 1) + [2 * share]

    allocations.register_allocation("output_heavy_test", output_heavy)
    try:
        splits = data.load("digits")
        steps = schedules.schedule_steps(len(splits.x_train), 64, 1, 5, 0, 0.5)
        prune = PruneSpec(0.3, steps, allocation="output_heavy_test")
        (out,) = engines.load(engine_name).train(
            Pack((ModelSpec("mlp", (16, 8), 0, 1e-3, prune=prune),), 64, "adam", 1), splits)
        counts = sizes.layer_counts(out.layers)
        expected = output_heavy([Layer("", ((c["kernel_params"],),)) for c in counts], 0.3)
        assert [c["kernel_nonzero"] for c in counts] == [masks.kept_count(c["kernel_params"], s)
                                                         for c, s in zip(counts, expected)]
    finally:
        allocations._REGISTRY.pop("output_heavy_test", None)
