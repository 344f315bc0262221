"""Budget solving and parameter counting: pure, no TensorFlow."""

import itertools
import random

import pytest

from widthvsprune import families
from widthvsprune.families import budgets, conv2d, dense

SHAPES = {"seed_cnn": [(28, 28, 1), (8, 8, 1), (32, 32, 3)],
          "mlp": [(28, 28), (8, 8, 1), (32, 32, 3)],
          "lenet5": [(28, 28, 1), (8, 8, 1), (32, 32, 3)],
          "mnist_convnet": [(28, 28, 1), (10, 10, 1), (32, 32, 3)]}


def test_seed_cnn_count_is_the_seed_notebooks_20410():
    assert conv2d.count_seed_cnn((12,), (28, 28), 10) == 20_410
    assert conv2d.count_seed_cnn((12,), (28, 28, 1), 10) == 20_410


def test_lenet_300_100_count_is_266610():
    assert dense.count_mlp((300, 100), (28, 28), 10) == 266_610


def test_mnist_convnet_count_is_keras_ios_34826():
    # conv1 3*3*1*32+32, conv2 3*3*32*64+64, dense 5*5*64*10+10
    assert conv2d.count_mnist_convnet((32, 64), (28, 28, 1), 10) == 320 + 18496 + 16010 == 34_826


def test_lenet5_count_by_hand():
    # conv1 5*5*1*6+6, conv2 5*5*6*16+16, fc 7*7*16*120+120, 120*84+84, 84*10+10
    expected = 156 + 2416 + 94200 + 10164 + 850
    assert conv2d.count_lenet5((6, 16, 120, 84), (28, 28, 1), 10) == expected


@pytest.mark.parametrize("name", ["seed_cnn", "mlp", "lenet5", "mnist_convnet"])
def test_solver_never_exceeds_budget_and_is_exact(name):
    family = families.get_family(name)
    rng = random.Random(0)
    for shape in SHAPES[name]:
        wide = family.default_widths
        full = family.count_params(wide, shape, 10)
        for _ in range(25):
            budget = rng.randint(1, full)
            multipliers = [rng.uniform(0.25, 4) for _ in wide[1:]]
            proportions = budgets.split_proportions(wide, multipliers)
            match = budgets.solve_widths(family, budget, proportions, shape, 10)
            smallest = budgets.smallest_params(family, len(wide), shape, 10)
            if smallest > budget:
                assert not match.fits and match.note.startswith("no-narrow-fits")
                continue
            assert match.params == family.count_params(match.widths, shape, 10)
            assert match.params <= budget
            # Maximal at this split: widening the knob furthest below its share goes over.
            lag = min(range(len(wide)), key=lambda j: (match.widths[j] / proportions[j], j))
            wider = tuple(w + (j == lag) for j, w in enumerate(match.widths))
            assert family.count_params(wider, shape, 10) > budget
            # ... and widening every knob together goes over too.
            assert family.count_params(tuple(w + 1 for w in match.widths), shape, 10) > budget


def test_single_knob_solution_is_the_exact_optimum():
    family = families.get_family("seed_cnn")
    for budget in range(1, 5000, 37):
        match = budgets.solve_widths(family, budget, (12,), (8, 8, 1), 10)
        best = max((f for f in range(1, 100) if family.count_params((f,), (8, 8, 1), 10) <= budget),
                   default=None)
        assert (match.widths[0] if match.fits else None) == best


def test_uniform_split_keeps_the_wide_proportions():
    match = budgets.solve_widths("mlp", 266_610 // 4, (300, 100), (28, 28), 10)
    h1, h2 = match.widths
    assert abs(h1 / h2 - 3) <= 3 / h2  # within one unit of the 3:1 split
    assert match.fill >= 0.99


def test_no_narrow_fits_when_the_smallest_model_is_over_budget():
    smallest = dense.count_mlp((1, 1), (8, 8), 10)
    match = budgets.solve_widths("mlp", smallest - 1, (2, 1), (8, 8), 10)
    assert not match.fits and match.widths is None
    assert "no-narrow-fits" in match.note
    assert budgets.solve_widths("mlp", smallest, (2, 1), (8, 8), 10).widths == (1, 1)


def test_coarse_family_explains_why_it_is_below_ninety_percent():
    # seed_cnn on 8x8 digits: one filter costs 100 parameters.
    match = budgets.solve_widths("seed_cnn", 260, (12,), (8, 8, 1), 10)
    assert match.params == 210 and match.fill < 0.9
    assert "100 parameters" in match.note


def test_invalid_proportions_are_refused_with_the_value():
    with pytest.raises(ValueError, match="proportions"):
        budgets.solve_widths("mlp", 1000, (1, 0), (8, 8), 10)


def test_counts_are_monotone_in_every_width():
    for name, shapes in SHAPES.items():
        family = families.get_family(name)
        n = len(family.default_widths)
        for widths in itertools.product((1, 2, 5), repeat=n):
            base = family.count_params(widths, shapes[0], 10)
            for i in range(n):
                wider = tuple(w + (j == i) for j, w in enumerate(widths))
                assert family.count_params(wider, shapes[0], 10) > base


def refusing(below):
    """A family counted by ``count`` that raises for a first width under ``below`` (as a builder may)."""
    family = families.Family("refusing", (128,), None, lambda *a: None)

    def count(name, widths, input_shape, num_classes):
        if widths[0] < below:
            raise ValueError(f"no model narrower than {below} units (widths={widths})")
        return dense.count_mlp(widths, input_shape, num_classes)

    return family, count


def test_widths_a_family_cannot_build_are_infeasible_and_the_solver_keeps_the_rest():
    family, count = refusing(40)
    # 75w + 10 parameters (64 inputs, 10 classes): 4810 fits 64 units, which build.
    match = budgets.solve_widths(family, 4810, (128,), (64,), 10, count)
    assert match.widths == (64,) and match.params == 4810 and match.error == ""
    exact = budgets.counter(family, (64,), 10, count)
    assert exact((39,)) == budgets.INFEASIBLE and exact((40,)) == 3010
    assert exact.errors == {(39,): "ValueError: no model narrower than 40 units (widths=(39,))"}
    assert budgets.smallest_params(family, 1, (64,), 10, count) == budgets.INFEASIBLE


def test_a_budget_no_buildable_model_fits_names_the_familys_error():
    family, count = refusing(40)
    match = budgets.solve_widths(family, 970, (128,), (64,), 10, count)  # 12 units would fit; 40 cost 3010
    assert not match.fits and match.params == 0
    assert match.error.startswith("ValueError: no model narrower than 40 units")
    assert match.failed[0] < 40 and match.error in match.note
