"""The Keras 3 / JAX engine: every model of a pack trained by compiled JAX programs.

Importing this package selects Keras 3's JAX backend (``KERAS_BACKEND=jax``)
and stops JAX from preallocating most of a GPU's memory
(``XLA_PYTHON_CLIENT_PREALLOCATE=false``), so several processes can share one
device. It never imports TensorFlow, tf_keras or tfmot: pruning follows
tfmot's algorithm (tested equal to it) without using it.

Modules:

- :mod:`.models`: building family models with Keras 3, their variable
  layouts, the prunable kernels, padding a model into a wider one;
- :mod:`.programs`: the compiled training and evaluation programs (loss,
  tf_keras's legacy optimizers, tfmot's layerwise mask) and their cache;
- :mod:`.pruning`: schedules and host-side mask updates (``global``,
  ``random``) per model;
- :mod:`.training`: a pack's groups, epochs, histories and outcomes;
- :mod:`.engine`: the :class:`~widthvsprune.engines.base.Engine`.
"""

import os
import sys


def _select_backend():
    keras = sys.modules.get("keras")
    if keras is not None:
        backend = keras.backend.backend() if hasattr(keras, "backend") else os.environ.get("KERAS_BACKEND")
        if backend != "jax":
            raise RuntimeError(
                "Expected Keras 3 to be imported with the JAX backend (or not imported yet) before the jax "
                f"engine loads. Received: KERAS_BACKEND={backend!r}"
            )
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


_select_backend()


def create(**options):
    """The jax engine (see :class:`widthvsprune.engines.jax.engine.JaxEngine` for ``options``).

    Example:

    ```python
    from widthvsprune.engines import jax as jax_engine

    engine = jax_engine.create()
    outcomes = engine.train(pack, splits)
    ```
    """
    from widthvsprune.engines.jax.engine import JaxEngine

    return JaxEngine(**options)
