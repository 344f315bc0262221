"""The Keras 3 / JAX engine: every model of a pack trained by compiled JAX programs.

Importing this package selects Keras 3's JAX backend (``KERAS_BACKEND=jax``)
and stops JAX from preallocating most of a GPU's memory
(``XLA_PYTHON_CLIENT_PREALLOCATE=false``), so several processes can share one
device. It never imports TensorFlow, tf_keras or tfmot: pruning follows
tfmot's algorithm (tested equal to it) without using it.

Modules:

- :mod:`.models`: building family models with Keras 3, their variable
  layouts, the prunable kernels, padding a model into a wider one;
- :mod:`.batched`: the forward pass of a pack's stacked models as one
  batched computation, for the layers it knows (convolutions, dense layers,
  batch normalization, pooling and the weightless layers);
- :mod:`.chunks`: how many models and examples a batched step takes at
  once, so that its activations fit the caches;
- :mod:`.convolutions`, :mod:`.pooling`: stacked convolutions (patches and
  batched matrix products, per-model XLA convolutions, a convolution and
  its max pooling as one product) and tiled pooling with Keras's gradients;
- :mod:`.programs`: the compiled training and evaluation programs (loss,
  tfmot's layerwise mask) and their cache;
- :mod:`.optimizers`: tf_keras's legacy Adam and SGD in their fused
  kernels' arithmetic, for stacked weights;
- :mod:`.pruning`: schedules and host-side mask updates (``global``,
  ``random``) per model;
- :mod:`.training`: a pack's groups, epochs, histories and outcomes;
- :mod:`.engine`: the :class:`~widthvsprune.engines.base.Engine`.

Design notes (measured on a 2-core CPU with the quickstart's packs, see
``benchmarks/jax_engine.py``):

- Compiling dominates: a training program takes 0.6-1.3 s to compile and an
  epoch of a 12-model pack a few tens of milliseconds. Hence one program per
  shape for a whole training (the step bounds are arguments), narrow models
  padded into a common shape (the quickstart's 24 search trials: 2 programs
  and 2.1 s padded, against 44 programs and 13.9 s grouped by exact widths;
  grouped runs only win, 0.6 s against 1.4 s, once compiled), and the
  evaluation program compiled in a background thread.
- Keras 3's ``stateless_call`` costs nothing against a hand-written forward
  pass (same compile time and epoch time for the MLP), so every family's
  builder serves this engine. Keras 3's ``Adam.stateless_apply`` is as fast as
  the hand-written update here but computes ``beta ** t`` with XLA's ``pow``
  (one ulp from TensorFlow's); the hand-written update takes the powers from
  the host and tf_keras's exact arithmetic.
- The layerwise threshold is found by bitwise selection (31 counting passes),
  12 times faster than the sort tfmot uses, with the same value.
- Initial weights are computed without a compiled program per weight shape
  (:mod:`.initializers`): Keras's own initialization took about 1.5 s per
  model of new widths.
- Convolutional models on a CPU run the batched forward pass of
  :mod:`.batched` (``jax.vmap`` of XLA's convolutions becomes a grouped
  convolution, 10-50 times slower than separate ones): the seed CNN study
  about 5 times faster than with its models written out one by one, the
  MNIST-1D study about 4 times (``docs/engines-jax-convolutions.md``). A
  program there holds as many models as keep a step's activations within
  the caches.
- Studies scale with worker processes; each keeps XLA's CPU thread pool
  (one thread per core), which a lone process's convolutions use and which
  slows small dense models when every process is busy
  (:meth:`~widthvsprune.engines.jax.engine.JaxEngine.limit_threads`).
  ``log_dir`` (TensorBoard) is not written by this engine.
- A training program is a few dozen kernels, and XLA compiles each kernel on
  its own (about 8 ms each on this CPU): the optimizer updates all the
  variables' slots as one flat vector, the cross-entropy picks the label's
  log-probability without a gather, and one threshold search serves every
  pruned kernel (a quickstart program: 41 kernels instead of 53, compiled in
  0.38 s instead of 0.46 s; the same arithmetic, bit for bit).
- Most of a study's programs run for well under a second (a search round's
  pack of narrow models; every evaluation program): those compile with XLA's
  older CPU fusion emitters (:func:`.programs.compiles_quickly`), a third
  faster to compile and up to a third slower to run. The quickstart, one
  process, two runs each: compiling 16.3 s and 15.4 s → 12.3 s, training
  18.2 s and 17.1 s → 19.2 s and 19.0 s, every result the same bit for bit.
  Which programs do is decided by their packs alone (the two ways may sum a
  reduction in another order), so results never depend on what a process
  compiled before.
- Compiled programs are kept in JAX's persistent compilation cache
  (:mod:`.cache`), shared by a study's processes, its resumes and later
  studies.
"""

import os
import sys

from widthvsprune.engines.jax import cache


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
cache.use_default_cache()


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
