"""Keeping the frameworks' own chatter off the console, unless the user asked for it (``-v``).

TensorFlow prints its start-up messages (oneDNN, CUDA, absl) from C++
straight to the process's standard error the first time it is imported,
and Keras 3 imports it whenever it is installed and a model's config is
serialized. :func:`native_output_hidden` sends file descriptor 2 to
``/dev/null`` for the duration of such a block.
"""

import contextlib
import os

#: Environment settings that quiet TensorFlow's C++ logging before it is first imported.
QUIET_ENVIRONMENT = {"TF_CPP_MIN_LOG_LEVEL": "3", "GRPC_VERBOSITY": "ERROR"}


def verbose():
    """Whether the user asked for the frameworks' own output (``-v``)."""
    return bool(os.environ.get("WIDTHVSPRUNE_VERBOSE"))


def quiet_environment():
    """Sets :data:`QUIET_ENVIRONMENT` where the user has not set those variables (unless verbose)."""
    if not verbose():
        for name, value in QUIET_ENVIRONMENT.items():
            os.environ.setdefault(name, value)


@contextlib.contextmanager
def native_output_hidden():
    """Sends what is written to standard error at the file-descriptor level to /dev/null inside the block.

    Python's own ``sys.stderr`` writes go there too, so keep the block to the
    call that imports or starts a framework. Does nothing when verbose.
    """
    saved = None
    if not verbose():
        quiet_environment()
        try:
            saved = os.dup(2)
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, 2)
            os.close(devnull)
        except OSError:  # pragma: no cover - no usable stderr
            saved = None
    try:
        yield
    finally:
        if saved is not None:
            os.dup2(saved, 2)
            os.close(saved)
