"""The ``tf_keras`` engine: tf_keras (Keras 2) with TensorFlow Model Optimization.

Importing :mod:`widthvsprune.engines.tf_keras.backend` imports TensorFlow; this
package's ``__init__`` does not, so that naming the engine costs nothing until
:func:`create` is called.
"""


def create():
    """The engine instance (imports TensorFlow, tf_keras and tfmot)."""
    from widthvsprune.engines.tf_keras.engine import TfKerasEngine

    return TfKerasEngine()
