"""Family builders in tf_keras: exact parameter counts, seeded initial weights."""

import pytest

from widthvsprune import families
from widthvsprune.engines.tf_keras import models
from widthvsprune.families import dense


@pytest.mark.parametrize("name,widths", [
    ("seed_cnn", (12,)), ("seed_cnn", (1,)), ("seed_cnn", (7,)),
    ("mlp", (300, 100)), ("mlp", (5,)), ("mlp", (3, 4, 5)),
    ("lenet5", (6, 16, 120, 84)), ("lenet5", (1, 2, 3, 4)),
    ("mnist_convnet", (32, 64)), ("mnist_convnet", (1, 3)),
])
@pytest.mark.parametrize("shape", [(28, 28), (8, 8, 1), (32, 32, 3)])
def test_count_function_equals_count_params(name, widths, shape):
    if name != "mlp" and len(shape) == 2 and shape != (28, 28):
        pytest.skip("rank-2 inputs are only the MNIST-style (28, 28) case")
    family = families.get_family(name)
    if min(shape[:2]) < family.min_input_side:
        pytest.skip(f"{name} needs inputs of at least {family.min_input_side} a side")
    model = models.build(name, widths, shape, 10, seed=0)
    assert model.count_params() == family.count_params(widths, shape, 10)


def test_seed_cnn_at_width_12_has_20410_parameters_on_mnist():
    assert models.build("seed_cnn", (12,), (28, 28), 10).count_params() == 20_410


def test_same_seed_gives_the_same_initial_weights():
    a = models.build("mlp", (8,), (8, 8, 1), 10, seed=3).get_weights()
    b = models.build("mlp", (8,), (8, 8, 1), 10, seed=3).get_weights()
    c = models.build("mlp", (8,), (8, 8, 1), 10, seed=4).get_weights()
    assert all((x == y).all() for x, y in zip(a, b))
    assert not all((x == y).all() for x, y in zip(a, c))


def test_a_family_whose_count_is_wrong_is_refused():
    wrong = families.Family("wrong_count", (4,), lambda w, s, k: 1, dense.build_mlp, 1)
    with pytest.raises(ValueError, match="count_params"):
        models.build(wrong, (4,), (8, 8, 1), 10)
