"""Model families: exact parameter counts (pure) and builders (tf_keras).

A family maps a tuple of positive integer widths to a model. Each family has
an exact parameter-count function that needs no TensorFlow; the budget solver
and the tests use it, and the tests check it against ``count_params()``.

A user adds a family with :func:`register_family`: a builder function plus a
parameter-count function is all that is needed.
"""

import dataclasses
import math
from typing import Callable, Optional, Sequence, Tuple

Shape = Tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Family:
    """A width-parameterized model family.

    Args:
        name: registry name, used in study files (``family="mlp"``).
        default_widths: the wide model's widths.
        count_params: ``f(widths, input_shape, num_classes) -> int``, the exact
            number of parameters of the model that ``build`` returns.
        build: ``f(widths, input_shape, num_classes, keras) -> keras.Model``
            returning an un-compiled tf_keras model whose output is logits.
            ``keras`` is the ``tf_keras`` module, passed in so that a family
            needs no TensorFlow import of its own.
        n_widths: how many width knobs the family has; ``None`` means any
            positive number (as for ``mlp``).
        width_names: optional names of the knobs, for reports.
    """

    name: str
    default_widths: Shape
    count_params: Callable[[Shape, Shape, int], int]
    build: Callable
    n_widths: Optional[int] = None
    width_names: Optional[Tuple[str, ...]] = None

    def accepts_widths_count(self, n):
        return n >= 1 if self.n_widths is None else n == self.n_widths


_FAMILIES = {}


def register_family(family, overwrite=False):
    """Adds a family to the registry so study files can name it.

    Args:
        family: a :class:`Family`.
        overwrite: replace a family registered under the same name.

    Returns:
        The family, so the call can be used as an expression.

    Raises:
        ValueError: if the name is taken and ``overwrite`` is False.

    Example:

    ```python
    def count(widths, input_shape, num_classes):
        n_in = math.prod(input_shape)
        return n_in * widths[0] + widths[0] + widths[0] * num_classes + num_classes

    def build(widths, input_shape, num_classes, keras):
        return keras.Sequential([
            keras.layers.InputLayer(input_shape),
            keras.layers.Flatten(),
            keras.layers.Dense(widths[0], activation="relu"),
            keras.layers.Dense(num_classes),
        ])

    register_family(Family("one_hidden", (256,), count, build, n_widths=1))
    ```
    """
    if not isinstance(family, Family):
        raise TypeError(
            "Expected a widthvsprune.Family. "
            f"Received: family={family!r} (of type {type(family).__name__})"
        )
    if family.name in _FAMILIES and not overwrite:
        raise ValueError(
            "Expected a family name that is not registered yet (or overwrite=True). "
            f"Received: name={family.name!r}"
        )
    _FAMILIES[family.name] = family
    return family


def get_family(name):
    """Returns the registered family called ``name``.

    Raises:
        ValueError: naming the registered families if ``name`` is unknown.
    """
    if name not in _FAMILIES:
        raise ValueError(
            f"Expected family to be one of {family_names()}. Received: family={name!r}"
        )
    return _FAMILIES[name]


def family_names():
    return sorted(_FAMILIES)


# --------------------------------------------------------------------------
# Shipped families. Counting functions are pure; builders import nothing.


def _dense(n_in, n_out):
    return n_in * n_out + n_out


def _conv(kernel, c_in, c_out):
    return kernel * kernel * c_in * c_out + c_out


def _spatial(input_shape):
    if len(input_shape) == 2:
        return input_shape[0], input_shape[1], 1
    return tuple(input_shape)


def count_seed_cnn(widths, input_shape, num_classes):
    """Conv2D(f, 3x3, valid) -> MaxPool(2) -> Flatten -> Dense(classes)."""
    (filters,) = widths
    h, w, c = _spatial(input_shape)
    pooled = ((h - 2) // 2) * ((w - 2) // 2)
    return _conv(3, c, filters) + _dense(pooled * filters, num_classes)


def build_seed_cnn(widths, input_shape, num_classes, keras):
    (filters,) = widths
    layers = [keras.layers.InputLayer(input_shape=tuple(input_shape))]
    if len(input_shape) == 2:
        layers.append(keras.layers.Reshape(tuple(input_shape) + (1,)))
    layers += [
        keras.layers.Conv2D(filters, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes),
    ]
    return keras.Sequential(layers, name="seed_cnn")


def count_mlp(widths, input_shape, num_classes):
    """Flatten -> Dense(w1, relu) -> ... -> Dense(classes)."""
    total, n_in = 0, math.prod(input_shape)
    for width in widths:
        total += _dense(n_in, width)
        n_in = width
    return total + _dense(n_in, num_classes)


def build_mlp(widths, input_shape, num_classes, keras):
    layers = [keras.layers.InputLayer(input_shape=tuple(input_shape)), keras.layers.Flatten()]
    layers += [keras.layers.Dense(int(w), activation="relu") for w in widths]
    layers.append(keras.layers.Dense(num_classes))
    return keras.Sequential(layers, name="mlp")


def count_lenet5(widths, input_shape, num_classes):
    """Conv(c1,5x5,same) -> Pool -> Conv(c2,5x5,same) -> Pool -> Dense(d1) -> Dense(d2) -> Dense."""
    c1, c2, d1, d2 = widths
    h, w, c = _spatial(input_shape)
    pooled = (h // 2 // 2) * (w // 2 // 2)
    return (
        _conv(5, c, c1)
        + _conv(5, c1, c2)
        + _dense(pooled * c2, d1)
        + _dense(d1, d2)
        + _dense(d2, num_classes)
    )


def build_lenet5(widths, input_shape, num_classes, keras):
    c1, c2, d1, d2 = (int(w) for w in widths)
    layers = [keras.layers.InputLayer(input_shape=tuple(input_shape))]
    if len(input_shape) == 2:
        layers.append(keras.layers.Reshape(tuple(input_shape) + (1,)))
    layers += [
        keras.layers.Conv2D(c1, (5, 5), padding="same", activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(c2, (5, 5), padding="same", activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(d1, activation="relu"),
        keras.layers.Dense(d2, activation="relu"),
        keras.layers.Dense(num_classes),
    ]
    return keras.Sequential(layers, name="lenet5")


def min_input_side(family_name):
    """Smallest spatial side a shipped family accepts (for validation)."""
    return {"seed_cnn": 4, "lenet5": 4}.get(family_name, 1)


register_family(Family("seed_cnn", (12,), count_seed_cnn, build_seed_cnn, 1, ("filters",)))
register_family(Family("mlp", (300, 100), count_mlp, build_mlp, None))
register_family(
    Family("lenet5", (6, 16, 120, 84), count_lenet5, build_lenet5, 4, ("conv1", "conv2", "fc1", "fc2"))
)
SHIPPED = tuple(_FAMILIES)  # registered before any study file can add its own


def describe_widths(widths: Sequence[int]):
    """Canonical text form of a widths tuple, as written in the CSVs: ``300x100``."""
    return "x".join(str(int(w)) for w in widths)
