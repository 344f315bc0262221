"""The one module that imports TensorFlow, tf_keras, tfmot and KerasTuner.

tfmot supports only Keras 2, so both arms of the comparison are built and
trained with ``tf_keras``; ``TF_USE_LEGACY_KERAS=1`` is set here, before
TensorFlow is imported, so that ``tf.keras`` is ``tf_keras`` too. Every other
module reaches TensorFlow through this one, and the pure modules (budgets,
schedules, measuring, statistics, reports) never import it.
"""

import json
import logging
import os
import warnings

from threadpoolctl import threadpool_limits

os.environ["TF_USE_LEGACY_KERAS"] = "1"
if not os.environ.get("WIDTHVSPRUNE_VERBOSE"):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    warnings.filterwarnings("ignore", category=UserWarning, module=r"tf_keras.*|keras.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", module=r"sklearn\.gaussian_process.*")



def _quiet_import():
    """Imports TensorFlow with the C++ start-up chatter sent to /dev/null."""
    quiet = not os.environ.get("WIDTHVSPRUNE_VERBOSE")
    saved = None
    if quiet:
        try:
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:  # pragma: no cover - no usable stderr
            saved = None
    try:
        import tensorflow
        import tensorflow_model_optimization
        import tf_keras
        from tensorflow_model_optimization.python.core.sparsity.keras import pruning_wrapper

        tensorflow.config.list_physical_devices("GPU")  # device discovery logs here
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow, tensorflow_model_optimization, tf_keras, pruning_wrapper


tf, tfmot, keras, _pruning_wrapper = _quiet_import()

if not os.environ.get("WIDTHVSPRUNE_VERBOSE"):
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


def single_threaded_blas():
    """A context in which NumPy's BLAS uses one thread.

    The only BLAS work of a study is on small matrices (the Bayesian oracle's
    Gaussian process), where extra threads only spin on cores that TensorFlow
    or another worker is using: with them, proposing a trial took several
    times longer.
    """
    return threadpool_limits(limits=1, user_api="blas")


def keras_tuner():
    """Imports KerasTuner (which brings in Keras 3) only when the narrow arm needs it.

    KerasTuner writes its oracle and trial state with a plain ``open``/``write``;
    a kill during that write would leave a torn JSON file that stops the
    search from resuming. Its ``save_json`` is replaced here by an atomic one
    (temporary file, fsync, rename), so every state file is complete or absent.
    """
    import keras_tuner as kt
    from keras_tuner.src import utils as kt_utils

    if not getattr(kt_utils.save_json, "atomic", False):
        from widthvsprune import storing

        def save_json(path, obj):
            text = json.dumps(obj)
            storing.write_bytes(path, text.encode())
            return text

        save_json.atomic = True
        kt_utils.save_json = save_json
    return kt
