"""Training engines behind one seam (:mod:`widthvsprune.engines.base`).

- ``tf_keras``: tf_keras (Keras 2) with TensorFlow Model Optimization, the
  reference;
- ``jax``: Keras 3 on JAX, every pack trained by compiled JAX programs, with
  tfmot's pruning reproduced (cross-checked against tfmot).

A study picks one with its ``engine`` field; ``auto`` (the default) is
:func:`resolve`'s choice, by family and device. Each engine lives in its own subpackage and is
imported only when a study trains with it; nothing outside ``engines/``
imports a framework.
"""

import importlib
import importlib.util
import os

ENGINES = ("tf_keras", "jax")
CHOICES = ("auto",) + ENGINES
#: What ``auto`` means, in words (``--help``, the README).
AUTO_RULE = "jax for a Keras 3 model or builder, tf_keras for a tf_keras one; otherwise jax where JAX is installed " \
            "and either has a GPU or trains the family faster on a CPU, else tf_keras"
#: The engine whose Keras a family needs (:func:`widthvsprune.families.keras_of`).
FOR_KERAS = {"3": "jax", "2": "tf_keras"}

_LOADED = {}


# Families the jax engine trains faster than tf_keras on a CPU, measured on 2 cores: the quickstart's MLPs 2.5
# times (a whole study), MNIST-1D's GRU 5.5 times, the seed CNN 2.2 times (benchmarks/throughput.py's seed_cnn
# workload, 41 s against 91 s), MNIST-1D's CNN about 4 times (its study 3 min 12-22 s, against about 14 min on
# tf_keras, as on release 0.2's jax engine), LeNet-5 1.2 times (a small study). The jax engine batches these
# families' convolutions across the models of a pack (engines/jax/batched.py). ResNet and MobileNet are not
# measured against tf_keras on a CPU and stay there.
JAX_ON_CPU = frozenset({"mlp", "gru", "seed_cnn", "cnn1d", "lenet5"})


def resolve(name, family=None):
    """The engine a study's ``engine`` field means.

    ``auto`` is the engine of the Keras the family needs (a Keras 3 model or
    builder: ``jax``; a tf_keras one: ``tf_keras``); for a family that uses
    the Keras it is given, ``jax`` where JAX is installed and either a GPU is
    there for it or the family is one JAX trains faster on a CPU
    (:data:`JAX_ON_CPU`), otherwise ``tf_keras``, the reference. Only looks
    for packages and devices: nothing is imported.
    """
    if name != "auto":
        return name
    needed = FOR_KERAS.get(_keras_of(family))
    if needed is not None:
        return needed
    if not _installed("jax"):
        return "tf_keras"
    return "jax" if family in JAX_ON_CPU or _gpu_for_jax() else "tf_keras"


def _keras_of(family):
    from widthvsprune import families

    try:
        return families.keras_of(family) if family is not None and families.known(family) else "any"
    except ValueError:  # a model file that cannot be derived: the study's own check says why
        return "any"


def mismatch(name, family):
    """One problem line when engine ``name`` cannot build ``family``'s models (its Keras), else ``""``."""
    needed = FOR_KERAS.get(_keras_of(family))
    if name in ENGINES and needed is not None and needed != name:
        kind = "a Keras 3" if needed == "jax" else "a tf_keras (Keras 2)"
        return (f"engine: Expected {needed!r} (or 'auto') for family {family!r}, whose models are built with "
                f"{kind} model or builder. Received: engine={name!r}")
    return ""


def prefer_jax_backend():
    """Makes Keras 3 start on JAX, where JAX is installed, unless the user chose a backend or Keras has started.

    The jax engine needs Keras 3 on JAX in the process that trains; a study
    file that builds a Keras 3 model imports Keras before any engine loads.
    """
    import sys

    if "keras" not in sys.modules and _installed("jax"):
        os.environ.setdefault("KERAS_BACKEND", "jax")


def keras_backend_conflict(name):
    """The Keras 3 backend this process already runs that engine ``name`` cannot train on (``""`` if none)."""
    import sys

    keras = sys.modules.get("keras")
    if name != "jax" or keras is None or not hasattr(keras, "backend"):
        return ""
    backend = keras.backend.backend()
    return "" if backend == "jax" else backend


def _gpu_for_jax():
    """Whether JAX has its CUDA plugin and this machine an NVIDIA GPU that is not hidden."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    plugin = any(_installed(name) for name in ("jax_cuda12_plugin", "jax_cuda13_plugin"))
    return plugin and os.path.exists("/dev/nvidia0")


# What each engine needs installed beyond the core dependencies, and the extra that installs it.
_REQUIRES = {"jax": ("jax", "widthvsprune[jax]")}


def problems(name):
    """One line per missing package of engine ``name`` (checked without importing anything).

    Returns:
        A list of ``"engine: Expected ... Received: engine=..."`` lines, empty
        when the engine can load.
    """
    package, extra = _REQUIRES.get(name, (None, None))
    if package is None or _installed(package):
        return []
    return [f"engine: Expected an engine whose packages are installed; {name!r} needs {package} "
            f"(pip install '{extra}'), or use engine 'tf_keras'. Received: engine={name!r}"]


def _installed(package):
    """Whether ``package`` can be found (an import hook that refuses it counts as not installed)."""
    try:
        return importlib.util.find_spec(package) is not None
    except ImportError:
        return False


def prepare(name):
    """Imports the engine's package without creating it (the jax engine selects Keras 3's JAX backend then)."""
    importlib.import_module(f"widthvsprune.engines.{name}")


def load(name):
    """The engine called ``name``, created once per process.

    Raises:
        ValueError: if ``name`` is not one of :data:`ENGINES`.
    """
    if name not in ENGINES:
        raise ValueError(f"Expected engine to be one of {list(ENGINES)}. Received: engine={name!r}")
    if name not in _LOADED:
        module = importlib.import_module(f"widthvsprune.engines.{name}")
        _LOADED[name] = module.create()
    return _LOADED[name]
