"""Compiling, fitting and evaluating tf_keras models."""

import math
import time

import numpy as np

from widthvsprune.backend import keras, tf


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def make_optimizer(recipe, learning_rate=None):
    lr = float(recipe.learning_rate if learning_rate is None else learning_rate)
    if recipe.optimizer == "sgd":
        return keras.optimizers.SGD(learning_rate=lr, momentum=0.9)
    return keras.optimizers.Adam(learning_rate=lr)


def compile_model(model, recipe, learning_rate=None):
    model.compile(
        optimizer=make_optimizer(recipe, learning_rate),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def train_dataset(x, y, batch_size, seed):
    """A shuffled, batched, prefetched ``tf.data`` pipeline over arrays held once."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    ds = ds.shuffle(len(x), seed=int(seed), reshuffle_each_iteration=True)
    return ds.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


def eval_dataset(x, y, batch_size=1024):
    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(tf.data.AUTOTUNE)


def fit(model, splits, recipe, seed, callbacks=(), epochs=None, learning_rate=None):
    """Compiles and trains ``model`` on the training split, validating each epoch.

    Args:
        model: an un-compiled tf_keras model.
        splits: a :class:`widthvsprune.data.Splits`.
        recipe: a :class:`widthvsprune.config.Recipe`.
        seed: seed of the batch order.
        callbacks: extra Keras callbacks.
        epochs: overrides ``recipe.epochs``.
        learning_rate: overrides ``recipe.learning_rate``.

    Returns:
        ``(history, seconds)``: one dict per epoch and the wall time of the fit.

    Raises:
        TrainingDiverged: if the loss became NaN or infinite.
    """
    keras.utils.set_random_seed(int(seed))
    compile_model(model, recipe, learning_rate)
    epochs = int(recipe.epochs if epochs is None else epochs)
    start = time.perf_counter()
    result = model.fit(
        train_dataset(splits.x_train, splits.y_train, recipe.batch_size, seed),
        validation_data=eval_dataset(splits.x_val, splits.y_val),
        epochs=epochs,
        verbose=0,
        callbacks=[keras.callbacks.TerminateOnNaN(), *callbacks],
    )
    seconds = time.perf_counter() - start
    history = history_rows(result.history)
    losses = result.history.get("loss", [])
    if len(losses) < epochs or not all(math.isfinite(v) for v in losses):
        raise TrainingDiverged(
            f"the training loss became non-finite in epoch {len(losses)} "
            f"(loss={losses[-1] if losses else float('nan')})"
        )
    return history, seconds


def history_rows(history):
    keys = list(history)
    n = len(history[keys[0]]) if keys else 0
    return [{"epoch": i + 1, **{k: float(history[k][i]) for k in keys}} for i in range(n)]


def evaluate(model, x, y):
    """Returns ``(loss, accuracy)`` of a compiled model on ``(x, y)``."""
    loss, accuracy = model.evaluate(eval_dataset(x, y), verbose=0)
    return float(loss), float(accuracy)


def accuracy(model, x, y):
    """Top-1 accuracy of any model (compiled or not) on ``(x, y)``."""
    logits = model.predict(eval_dataset(x, y).map(lambda a, b: a), verbose=0)
    return float(np.mean(np.argmax(logits, axis=-1) == y))
