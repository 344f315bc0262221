"""Imports TensorFlow, tf_keras and tfmot for the ``tf_keras`` engine.

tfmot supports only Keras 2, so this engine builds and trains every model of
a study, both arms alike, with ``tf_keras``. ``TF_USE_LEGACY_KERAS=1`` is set
here, before TensorFlow is imported, so that ``tf.keras`` is ``tf_keras``
too. Only the modules of this subpackage import this one.
"""

import contextlib
import logging
import os
import warnings

from widthvsprune.quiet import native_output_hidden, verbose

os.environ["TF_USE_LEGACY_KERAS"] = "1"


@contextlib.contextmanager
def quiet():
    """Hides the frameworks' deprecation and user warnings inside the block, unless verbose."""
    if verbose():
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module=r"tf_keras.*|keras.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def _quiet_import():
    """Imports TensorFlow with the C++ start-up chatter sent to /dev/null."""
    with native_output_hidden(), quiet():
        import tensorflow
        import tensorflow_model_optimization
        import tf_keras
        from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

        tensorflow.config.list_physical_devices("GPU")  # device discovery logs here
    return tensorflow, tensorflow_model_optimization, tf_keras, pruning_wrapper


tf, tfmot, keras, _pruning_wrapper = _quiet_import()

if not verbose():
    tf.get_logger().setLevel(logging.ERROR)
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:  # pragma: no cover
        pass

sparsity = tfmot.sparsity.keras
PruneLowMagnitude = _pruning_wrapper.PruneLowMagnitude

_GPUS_CONFIGURED = False


def configure_devices():
    """Enables memory growth on every visible GPU; returns their number."""
    global _GPUS_CONFIGURED
    gpus = tf.config.list_physical_devices("GPU")
    if not _GPUS_CONFIGURED:
        for gpu in gpus:
            try:
                tf.config.experimental.set_memory_growth(gpu, True)
            except RuntimeError:  # already initialized
                pass
        _GPUS_CONFIGURED = True
    return len(gpus)


def limit_threads(workers):
    """Splits the CPU cores between ``workers`` training processes.

    Small models are limited by per-operation overhead, not arithmetic, so
    several single-threaded processes train more models per second than one
    process using every core. Has no effect once TensorFlow has started running.
    """
    if workers <= 1:
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    except RuntimeError:  # already initialized
        pass
