"""Keras 3's private names used by the ``jax`` engine (:mod:`widthvsprune.engines.jax`) and by families derived
from Keras 3 models.

The ``jax`` engine builds models with initialization deferred and computes
the initial values itself (:mod:`widthvsprune.engines.jax.initializers`);
that needs the list of variables waiting to be initialized, each variable's
initializer, Keras's backend ``uniform`` (replaced while an initializer
runs) and the global seed, set without importing TensorFlow. Serializing a
config (``get_config``, ``save``) is kept from importing TensorFlow too
(:func:`tensorflow_unimported`). Tested against the installed release
(``tests/test_adapters.py``) and, for the values, against plain Keras builds
(``tests/test_jax_engine.py``, ``tests/test_from_model.py``).
"""

import contextlib
import sys

from keras.src.backend import random as backend_random
from keras.src.backend.common import global_state
from keras.src.backend.common import variables as backend_variables
from keras.src.random import seed_generator
from keras.src.utils import module_utils, naming

_UNINITIALIZED = "uninitialized_variables"

#: Private names used here: ``{name: module}``.
PRIVATE = {
    "uniform": backend_random,
    "get_global_attribute": global_state,
    "set_global_attribute": global_state,
    "initialize_all_variables": backend_variables,
    "to_snake_case": naming,
    "tensorflow": module_utils,
}

#: The global state's name of Keras's global seed generator (a named constant in recent releases, the same string).
GLOBAL_SEED_GENERATOR = getattr(seed_generator, "GLOBAL_SEED_GENERATOR", "global_seed_generator")

#: Keras's own ``keras.random.uniform`` arithmetic under the backend (before any replacement).
keras_uniform = backend_random.uniform


def missing():
    """The names of :data:`PRIVATE` (and ``Variable._initializer``, ``Layer._flatten_layers``) that the installed
    Keras lacks."""
    import keras

    out = [f"{module.__name__}.{name}" for name, module in PRIVATE.items() if not hasattr(module, name)]
    with keras.StatelessScope(initialize_variables=False):
        variable = keras.Variable(keras.initializers.Zeros(), shape=(1,))
    if not hasattr(variable, "_initializer"):
        out.append("Variable._initializer")
    if not hasattr(keras.layers.Layer, "_flatten_layers"):
        out.append("Layer._flatten_layers")
    if not hasattr(getattr(module_utils, "tensorflow", None), "_available"):
        out.append(f"{module_utils.__name__}.tensorflow._available")
    return out


@contextlib.contextmanager
def tensorflow_unimported():
    """Within the block, Keras 3 serializes without importing TensorFlow, where TensorFlow is not imported yet.

    Keras asks of every value it serializes whether it is a TensorFlow
    ``TensorShape``, ``DType`` or ``TypeSpec``, and its first question imports
    TensorFlow where it is installed: seconds and hundreds of megabytes in a
    process that trains on JAX. While TensorFlow is not imported no value can
    be one of its types, so Keras is told meanwhile that TensorFlow is not
    available: the config is the same (``tests/test_from_model.py``). Where
    TensorFlow is imported already, nothing changes.
    """
    lazy = module_utils.tensorflow
    if "tensorflow" in sys.modules or lazy._available is not None:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        lazy._available = None  # asked again, and answered truly, outside the block


def sublayers(layer):
    """A layer's direct sublayers, in order (Keras 3 has no public name for them outside ``Model.layers``)."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


@contextlib.contextmanager
def uniform_replaced(uniform):
    """Within the block, Keras's backend draws ``keras.random.uniform`` with ``uniform`` (same signature)."""
    backend_random.uniform = uniform
    try:
        yield
    finally:
        backend_random.uniform = keras_uniform


def uninitialized_variables():
    """The variables created under ``keras.StatelessScope(initialize_variables=False)`` not yet initialized."""
    return list(global_state.get_global_attribute(_UNINITIALIZED) or [])


def initialize_all_variables():
    """Initializes every variable whose initialization was deferred."""
    backend_variables.initialize_all_variables()


def initializer(variable):
    """The initializer a deferred variable will be initialized with, or ``None``."""
    return variable._initializer


def set_initializer(variable, value):
    """Replaces a deferred variable's initializer with ``value`` (a callable ``f(shape, dtype)``)."""
    variable._initializer = value


def set_global_seed(seed):
    """Keras's global seed, as ``keras.utils.set_random_seed`` sets it, without seeding (importing) TensorFlow."""
    global_state.set_global_attribute("global_random_seed", seed)
    global_state.set_global_attribute(GLOBAL_SEED_GENERATOR, None)


def to_snake_case(name):
    """A class name in Keras's snake case, as Keras names layers (``"Conv2D"`` -> ``"conv2d"``)."""
    return naming.to_snake_case(name)


#: The global state's name of Keras's counters of automatic layer names (``dense``, ``dense_1``, ...).
NAME_COUNTERS = "object_name_uids"


def layer_name_counters():
    """Keras's counters of automatic layer names, as they are now (to put back with :func:`set_layer_name_counters`)."""
    return global_state.get_global_attribute(NAME_COUNTERS)


def set_layer_name_counters(counters):
    """Sets Keras's counters of automatic layer names (a ``defaultdict(int)`` counts from zero)."""
    global_state.set_global_attribute(NAME_COUNTERS, counters)
