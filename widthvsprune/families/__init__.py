"""Model families: width-parameterized builders and exact parameter counts.

A family maps a tuple of positive integer widths to a model. Its builder
receives the engine's Keras module (``tf_keras`` or Keras 3), so one builder
serves every engine. Its count function, when it has one, needs no framework:
the budget solver and the planner use it, and the tests check it against
``count_params()``.

A user adds a family with :func:`register_family`.
"""

import dataclasses
from typing import Callable, Optional, Sequence, Tuple

Shape = Tuple[int, ...]
#: The Keras layers that normalize with moving statistics (:func:`batch_normalized`).
BATCH_NORMALIZATIONS = ("BatchNormalization", "SyncBatchNormalization")
#: What :attr:`Family.keras` may say: builds with any Keras, only Keras 2 (tf_keras), only Keras 3.
KERAS = ("any", "2", "3")


@dataclasses.dataclass(frozen=True)
class Family:
    """A width-parameterized model family.

    Args:
        name: registry name, used in study files (``family="mlp"``).
        default_widths: the wide model's widths.
        count_params: ``f(widths, input_shape, num_classes) -> int``, the exact
            number of parameters of the model that ``build`` returns; or
            ``None``, and then counts come from building the model with the
            engine's Keras (no training; cached per widths, a few dozen builds
            per budget solved).
        build: ``f(widths, input_shape, num_classes, keras) -> keras.Model``
            returning an un-compiled model whose output is logits. ``keras``
            is the engine's Keras module, passed in so that a family needs no
            framework import of its own.
        n_widths: how many width knobs the family has; ``None`` means any
            positive number (as for ``mlp``).
        min_input_side: the smallest spatial side of an image input the
            family accepts (checked before training).
        keras: the Keras ``build`` needs: ``"any"`` (it uses only the module
            it is given), ``"3"`` (Keras 3: the ``jax`` engine) or ``"2"``
            (tf_keras: the ``tf_keras`` engine). A family derived from a
            model (:mod:`widthvsprune.families.derived`) builds only with
            the Keras of that model.
        weights: trained weights of the model at ``default_widths`` (in
            ``get_weights()`` order), for a study that starts every seed from
            them; ``None`` (the default) starts from a fresh initialization.
        digest: a hash of what the family builds (a derived family's config),
            part of every run key (:func:`key_fields`); ``None`` for a family
            whose name says it all.
        batchnorm: whether its models have batch normalization layers, whose
            moving statistics are recalibrated before evaluation (and whose
            run keys say so, :func:`batch_normalized`); ``None`` (the
            default): found by reading the builder's code for
            ``BatchNormalization``. A derived family reads its model's config.
    """

    name: str
    default_widths: Shape
    count_params: Optional[Callable[[Shape, Shape, int], int]]
    build: Callable
    n_widths: Optional[int] = None
    min_input_side: int = 1
    keras: str = "any"
    weights: Optional[tuple] = dataclasses.field(default=None, compare=False, repr=False)
    digest: Optional[str] = None
    batchnorm: Optional[bool] = None

    def __post_init__(self):
        if self.keras not in KERAS:
            raise ValueError(f"Expected keras to be one of {list(KERAS)}. Received: keras={self.keras!r}")

    def accepts_widths_count(self, n):
        return n >= 1 if self.n_widths is None else n == self.n_widths


_FAMILIES = {}
_RECORDED = set()  # names of stand-ins registered by recorded_family: a real family may replace them


def register_family(family, overwrite=False):
    """Adds a family to the registry so study files can name it.

    Args:
        family: a :class:`Family`.
        overwrite: replace a family registered under the same name.

    Returns:
        The family, so the call can be used as an expression.

    Raises:
        TypeError: if ``family`` is not a :class:`Family`.
        ValueError: if the name is taken and ``overwrite`` is False.

    Example:

    ```python
    def count(widths, input_shape, num_classes):
        n_in = math.prod(input_shape)
        return n_in * widths[0] + widths[0] + widths[0] * num_classes + num_classes

    def build(widths, input_shape, num_classes, keras):
        return keras.Sequential([
            keras.Input(shape=input_shape),
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
    if family.name in _FAMILIES and not overwrite and family.name not in _RECORDED:
        raise ValueError(
            "Expected a family name that is not registered yet (or overwrite=True). "
            f"Received: name={family.name!r}"
        )
    _FAMILIES[family.name] = family
    _RECORDED.discard(family.name)
    return family


class _NotHere:
    """The builder of a recorded family: it refuses to build, naming where the family must come from."""

    def __init__(self, name):
        self.name = name

    def __call__(self, widths, input_shape, num_classes, keras):
        from widthvsprune.errors import StudyError

        raise StudyError(not_here(self.name))


def not_here(name):
    """The one line that says a family is known only from a study's records."""
    return (f"family: Expected a family registered in this process (register_family in the script that defines "
            f"it, or an existing model:PATH file) to build models. Received: family={name!r}, known here only "
            f"from a finished study's records")


def recorded_family(name, widths, digest=None, batchnorm=False, weights=None):
    """Registers a stand-in for a family that this process does not know, read from a study's records.

    A finished study's ``status``, ``report`` and ``summary`` need its family
    only for its name and its run keys' ``family_config`` (``digest``), which
    the records hold; a family registered in the script that ran the study is
    not registered in another process; ``batchnorm`` says whether its runs'
    keys record how batch normalization was evaluated, and ``weights`` the
    fingerprint of the trained weights a study started from
    (:func:`weights_of`). The stand-in builds nothing (training
    with it is refused before any run) and a real family of the same name
    replaces it when registered.

    Returns:
        The family this process now knows under ``name``: the real one where
        there is one, else the stand-in.
    """
    if name in _FAMILIES:
        return _FAMILIES[name]
    family = Family(name, tuple(int(w) for w in widths), None, _NotHere(name), digest=digest, batchnorm=batchnorm)
    _FAMILIES[name] = family
    _RECORDED.add(name)
    if weights:
        _RECORDED_WEIGHTS[name] = str(weights)
    return family


_RECORDED_WEIGHTS = {}  # name -> the fingerprint of a recorded family's trained weights


def weights_of(name):
    """The fingerprint of the trained weights family ``name`` carries (:func:`weights_fingerprint`), or, for a
    stand-in read from a study's records, the one they record; ``None`` when it has none."""
    family = get_family(name)
    if family.weights is not None:
        return weights_fingerprint(family.weights)
    return _RECORDED_WEIGHTS.get(name) if name in _RECORDED else None


def forget_recorded(name):
    """Drops the stand-in of a ``model:PATH`` family read from a study's records (:func:`recorded_family`), so that
    the next :func:`get_family` derives the real one from its file (a study about to train)."""
    if isinstance(name, str) and name.startswith(MODEL_PREFIX) and name in _RECORDED:
        _RECORDED.discard(name)
        _RECORDED_WEIGHTS.pop(name, None)
        _FAMILIES.pop(name, None)


def is_recorded(name):
    """Whether ``name`` is known in this process only as a stand-in from a study's records."""
    return name in _RECORDED


MODEL_PREFIX = "model:"
_DERIVERS = {}  # prefix -> f(name) -> Family: families named after where they come from ("model:PATH")


def register_deriver(prefix, derive):
    """Lets a family name starting with ``prefix`` derive its family on first use: ``derive(name) -> Family``."""
    _DERIVERS[prefix] = derive


def get_family(name):
    """Returns the registered family called ``name``; ``"model:PATH"`` derives one from a saved model first.

    Raises:
        ValueError: naming the registered families if ``name`` is unknown.
        StudyError: for a ``model:`` file that cannot be read or derived.
    """
    if isinstance(name, str) and name not in _FAMILIES:
        for prefix, derive in _DERIVERS.items():
            if name.startswith(prefix):
                register_family(derive(name))
    if name not in _FAMILIES:
        raise ValueError(
            f"Expected family to be one of {family_names()}. Received: family={name!r}"
        )
    return _FAMILIES[name]


def family_names():
    return sorted(_FAMILIES)


def known(name):
    """Whether ``name`` names a family: a registered one, or a ``model:PATH`` file that derives one."""
    if isinstance(name, str) and any(name.startswith(prefix) for prefix in _DERIVERS):
        get_family(name)  # raises, in one line, when it cannot be derived
        return True
    return name in _FAMILIES


def multiplier_family(name, build, default_multiplier=1.0, count_params=None, steps=100, min_input_side=1):
    """A family from a builder that takes one width multiplier, as Zhu & Gupta shrink MobileNets.

    Its one width ``k`` means the multiplier ``k / steps``: with the default
    ``steps=100`` the wide model ``default_multiplier=1.0`` has widths
    ``(100,)``, and the narrow arm can shrink it in steps of 0.01.

    Args:
        name: registry name.
        build: ``f(multiplier, input_shape, num_classes, keras) -> keras.Model``.
        default_multiplier: the wide model's multiplier.
        count_params: ``f(multiplier, input_shape, num_classes) -> int``, or
            ``None`` to count by building.
        steps: widths per unit of multiplier.
        min_input_side: as for :class:`Family`.

    Returns:
        A :class:`Family` (not registered: pass it to :func:`register_family`).

    Example:

    ```python
    def build(multiplier, input_shape, num_classes, keras):
        width = max(1, round(64 * multiplier))
        return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                                 keras.layers.Dense(width, activation="relu"), keras.layers.Dense(num_classes)])

    register_family(multiplier_family("scaled_mlp", build))
    ```
    """

    def build_widths(widths, input_shape, num_classes, keras):
        (k,) = widths
        return build(k / steps, input_shape, num_classes, keras)

    count = None
    if count_params is not None:
        def count(widths, input_shape, num_classes):
            return count_params(widths[0] / steps, input_shape, num_classes)

    return Family(name, (int(round(default_multiplier * steps)),), count, build_widths, 1, min_input_side)


def keras_of(family):
    """The Keras a family's models need: ``"3"``, ``"2"``, or ``"any"`` when the builder uses the one it is given.

    A family that says (:attr:`Family.keras`) is taken at its word. Otherwise
    the builder's code is read, not run: a builder that refers to a module-level
    Keras 3 (``import keras``, ``from keras import layers``) rather than the
    ``keras`` argument needs Keras 3; one that refers to ``tf_keras`` needs
    Keras 2.
    """
    if isinstance(family, str):
        family = get_family(family)
    if family.keras != "any":
        return family.keras
    return _keras_used(family.build, set()) or "any"


def _keras_used(fn, seen, depth=0):
    """``"3"`` / ``"2"`` when ``fn`` (or a function of its module it calls) names a Keras module-level, else None."""
    import dis
    import types

    code = getattr(fn, "__code__", None)
    if code is None or id(fn) in seen or depth > 3:
        return None
    seen.add(id(fn))
    names, codes = set(), [code]
    while codes:
        current = codes.pop()
        names |= {i.argval for i in dis.get_instructions(current) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
        codes += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    values = [fn.__globals__[n] for n in names if n in fn.__globals__]
    values += [cell.cell_contents for cell in (fn.__closure__ or ()) if _filled(cell)]
    for value in values:
        module = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", "") or ""
        root = module.split(".")[0]
        if root == "keras":
            return "3"
        if root == "tf_keras":
            return "2"
    for value in values:  # the builder's own helpers (a multiplier family's builder, a block function)
        if isinstance(value, types.FunctionType) and value.__module__ == fn.__module__ or _closure_of(fn, value):
            found = _keras_used(value, seen, depth + 1)
            if found:
                return found
    return None


def _filled(cell):
    try:
        return cell.cell_contents is not None or True
    except ValueError:  # an empty cell
        return False


def _closure_of(fn, value):
    return callable(value) and any(_filled(c) and c.cell_contents is value for c in (fn.__closure__ or ()))


def key_fields(name):
    """What a run key adds for a family beyond its name: a derived family's config digest (nothing otherwise).

    A family derived from a model file is named after the file; its digest
    makes a changed model get new keys instead of another model's results.
    """
    family = get_family(name)
    digest = getattr(family, "digest", None)
    return {"family_config": digest} if digest else {}


_FINGERPRINTS = {}  # id(weights) -> (weights, fingerprint): a family's weights are hashed once per process


def weights_fingerprint(weights):
    """16 hex digits of the SHA-256 of trained weights (every array's dtype, shape and bytes, in order): what a run
    key holds of the weights a study starts from (:attr:`~widthvsprune.Study.pretrained`), so that other weights
    never reuse its runs."""
    import hashlib

    import numpy as np

    kept = _FINGERPRINTS.get(id(weights))
    if kept is not None and kept[0] is weights:
        return kept[1]
    digest = hashlib.sha256()
    for array in weights:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    _FINGERPRINTS[id(weights)] = (weights, digest.hexdigest()[:16])
    return _FINGERPRINTS[id(weights)][1]


def batch_normalized(family):
    """Whether a family's models have batch normalization (:attr:`Family.batchnorm`).

    A family that says is taken at its word. Otherwise the builder's code is
    read, not run, as :func:`keras_of` reads it: a builder that names
    ``BatchNormalization`` (or whose helpers in its module, or functions it
    closes over, do) is taken to use it.
    """
    if isinstance(family, str):
        family = get_family(family)
    if family.batchnorm is not None:
        return bool(family.batchnorm)
    return _names_batchnorm(family.build, set())


def _names_batchnorm(fn, seen, depth=0):
    import types

    code = getattr(fn, "__code__", None)
    if code is None or id(fn) in seen or depth > 3:
        return False
    seen.add(id(fn))
    names, codes = set(), [code]
    while codes:
        current = codes.pop()
        names |= set(current.co_names)
        codes += [c for c in current.co_consts if isinstance(c, types.CodeType)]
    if names & set(BATCH_NORMALIZATIONS):
        return True
    values = [fn.__globals__[n] for n in names if n in fn.__globals__]
    values += [cell.cell_contents for cell in (fn.__closure__ or ()) if _filled(cell)]
    helpers = [v for v in values if isinstance(v, types.FunctionType)
               and (v.__module__ == fn.__module__ or _closure_of(fn, v))]
    return any(_names_batchnorm(helper, seen, depth + 1) for helper in helpers)


def describe_widths(widths: Sequence[int]):
    """Canonical text form of a widths tuple, as written in the CSVs: ``300x100``."""
    return "x".join(str(int(w)) for w in widths)


def _register_shipped():
    from widthvsprune.families import conv1d, conv2d, dense, mobilenet, recurrent, resnet

    register_family(Family("seed_cnn", (12,), conv2d.count_seed_cnn, conv2d.build_seed_cnn, 1, min_input_side=4,
                           batchnorm=False))
    register_family(Family("mlp", (300, 100), dense.count_mlp, dense.build_mlp, None, batchnorm=False))
    register_family(Family("mnist_convnet", (32, 64), conv2d.count_mnist_convnet, conv2d.build_mnist_convnet, 2,
                           min_input_side=10, batchnorm=False))
    register_family(Family("lenet5", (6, 16, 120, 84), conv2d.count_lenet5, conv2d.build_lenet5, 4, min_input_side=4,
                           batchnorm=False))
    register_family(Family("cnn1d", (25, 25, 25), conv1d.count_cnn1d, conv1d.build_cnn1d, 3, batchnorm=False))
    register_family(Family("gru", (6,), recurrent.count_gru, recurrent.build_gru, 1, batchnorm=False))
    register_family(Family("resnet", (16, 32, 64), resnet.count_resnet, resnet.build_resnet, 3,
                           min_input_side=resnet.MIN_SIDE, batchnorm=True))
    register_family(Family("mobilenet", (32, 64, 128, 256, 512, 1024), mobilenet.count_mobilenet,
                           mobilenet.build_mobilenet, 6, min_input_side=mobilenet.MIN_SIDE, batchnorm=True))


_register_shipped()
SHIPPED = tuple(_FAMILIES)  # registered before any study file can add its own
