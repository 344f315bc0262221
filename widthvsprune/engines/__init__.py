"""Training engines behind one seam (:mod:`widthvsprune.engines.base`).

``tf_keras``: tf_keras (Keras 2) with TensorFlow Model Optimization, the
reference. Each engine lives in its own subpackage and is imported only when a
study trains with it; nothing outside ``engines/`` imports a framework.
"""

import importlib

ENGINES = ("tf_keras", "jax")

_LOADED = {}


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
