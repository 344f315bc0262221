"""Training engines behind one seam (:mod:`widthvsprune.engines.base`).

- ``tf_keras``: tf_keras (Keras 2) with TensorFlow Model Optimization, the
  reference;
- ``jax``: Keras 3 on JAX, every pack trained by compiled JAX programs, with
  tfmot's pruning reproduced (cross-checked against tfmot).

A study picks one with its ``engine`` field; ``auto`` (the default) is
:func:`resolve`'s choice. Each engine lives in its own subpackage and is
imported only when a study trains with it; nothing outside ``engines/``
imports a framework.
"""

import importlib
import importlib.util

ENGINES = ("tf_keras", "jax")
CHOICES = ("auto",) + ENGINES

_LOADED = {}


def resolve(name):
    """The engine a study's ``engine`` field means: ``auto`` is ``jax`` where JAX is installed, else ``tf_keras``.

    ``jax`` trained the quickstart's packs 3.5 times faster than ``tf_keras``
    on a 2-core CPU (compiled programs instead of traced, per-step
    dispatched branches), and is the engine built for GPUs; both train every
    shipped family and prune as tfmot does. Only looks for the package: nothing
    is imported.
    """
    if name != "auto":
        return name
    return "jax" if importlib.util.find_spec("jax") is not None else "tf_keras"


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
