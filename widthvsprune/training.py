"""Training tf_keras models, alone or packed side by side in one ``fit``.

Small models spend most of a plain ``compile`` + ``fit`` in per-model overhead
(tracing the train and test functions) rather than arithmetic. Models that
share a recipe are therefore trained *packed*: one :class:`PackedModel` holds
them as parallel branches, each with its own inputs, its own batch order, its
own loss and its own optimizer, in a single ``fit``. Because each branch's
loss depends only on its own weights and each optimizer only sees its own
branch's gradients, every branch trains exactly as it would alone from the
same initial weights and batch order. A single model is a pack of one.

The batch order of a seed is a NumPy permutation per epoch, so it does not
depend on which other models share the pack. Validation and test accuracy are
computed with eager forward passes, which trace nothing.
"""

import math
import time

import numpy as np

from widthvsprune.backend import keras, tf


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or infinite."""


def make_optimizer(recipe, learning_rate=None):
    """The recipe's optimizer, in tf_keras's fused form.

    ``keras.optimizers.legacy.Adam`` and ``SGD`` update each variable with one
    fused kernel (``ResourceApplyAdam``, ``ResourceApplyKerasMomentum``) instead
    of a dozen small ops: the same update rule, a fraction of the per-step cost
    for the small models a study trains. Both arms use it.
    """
    lr = float(recipe.learning_rate if learning_rate is None else learning_rate)
    if recipe.optimizer == "sgd":
        return keras.optimizers.legacy.SGD(learning_rate=lr, momentum=0.9)
    return keras.optimizers.legacy.Adam(learning_rate=lr)


def build_slots(optimizer, variables):
    """Creates a :func:`make_optimizer` optimizer's slots now, so the train step is traced once, not twice."""
    optimizer._create_all_weights(variables)


def loss_function():
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def compile_model(model, recipe, learning_rate=None):
    """Compiles ``model`` the plain Keras way (used for single models outside the runner)."""
    model.compile(optimizer=make_optimizer(recipe, learning_rate), loss=loss_function(), metrics=["accuracy"])
    return model


# --------------------------------------------------------------------------
# Data: per-seed batch orders over arrays held once.


def batch_order(num_examples, epochs, seed):
    """The order in which a seed visits the training set: one permutation per epoch."""
    rng = np.random.default_rng(int(seed))
    return np.stack([rng.permutation(num_examples) for _ in range(int(epochs))]).astype("int32")


def packed_dataset(x, y, batch_size, epochs, seeds):
    """Batches for a pack: element ``((x_1, ..., x_N), (y_1, ..., y_N))``, one per seed.

    The arrays are held once as constants and gathered by index; batches never
    cross an epoch boundary. The dataset covers all ``epochs``: pass
    ``steps_per_epoch`` to ``fit`` so one iterator runs through them.

    Returns:
        ``(dataset, steps_per_epoch)``.
    """
    n = len(x)
    xt, yt = tf.constant(x), tf.constant(y)

    def indices(seed):
        orders = tf.data.Dataset.from_tensor_slices(batch_order(n, epochs, seed))
        return orders.flat_map(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))

    def gather(*idx):
        return tuple(tf.gather(xt, i) for i in idx), tuple(tf.gather(yt, i) for i in idx)

    zipped = tf.data.Dataset.zip(tuple(indices(s) for s in seeds))
    dataset = zipped.map(gather, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
    return dataset, int(math.ceil(n / batch_size))


# --------------------------------------------------------------------------
# The packed model.


class PackedModel(keras.Model):
    """Several models trained side by side, each with its own optimizer.

    Args:
        branches: tf_keras models (plain or wrapped for pruning), any shapes.
        optimizers: one optimizer per branch.
    """

    def __init__(self, branches, optimizers):
        super().__init__(name="pack")
        self.branches = list(branches)
        self.branch_optimizers = list(optimizers)
        self.loss_fn = loss_function()
        self.trackers = [
            (keras.metrics.Mean(name=f"loss_{i}"), keras.metrics.SparseCategoricalAccuracy(name=f"accuracy_{i}"))
            for i in range(len(self.branches))
        ]

    def call(self, inputs, training=None):
        return [branch(x, training=training) for branch, x in zip(self.branches, inputs)]

    @property
    def metrics(self):
        return [m for pair in self.trackers for m in pair]

    def train_step(self, data):
        xs, ys = data
        with tf.GradientTape() as tape:
            outputs = self(xs, training=True)
            losses = [self.loss_fn(y, out) for y, out in zip(ys, outputs)]
            total = tf.add_n(losses)
        variables = [branch.trainable_variables for branch in self.branches]
        gradients = tape.gradient(total, [v for vs in variables for v in vs])
        start = 0
        for optimizer, vs in zip(self.branch_optimizers, variables):
            optimizer.apply_gradients(zip(gradients[start : start + len(vs)], vs))
            start += len(vs)
        for (loss_metric, accuracy_metric), y, out, loss in zip(self.trackers, ys, outputs, losses):
            loss_metric.update_state(loss)
            accuracy_metric.update_state(y, out)
        return {m.name: m.result() for m in self.metrics}


def evaluate(model, x, y, batch_size=2048):
    """``(loss, accuracy)`` of any model on ``(x, y)`` with eager forward passes."""
    loss_fn = loss_function()
    total_loss, correct = 0.0, 0
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size], training=False)
        labels = y[start : start + batch_size]
        total_loss += float(loss_fn(labels, logits)) * len(labels)
        correct += int(np.sum(np.argmax(logits.numpy(), axis=-1) == labels))
    return total_loss / len(x), correct / len(x)


class _EagerValidation(keras.callbacks.Callback):
    """Per-branch validation loss and accuracy at each epoch's end (or the last only), traced nothing."""

    def __init__(self, branches, x, y, last_only=False):
        super().__init__()
        self.branches, self.x, self.y, self.last_only = branches, x, y, last_only
        self.results = {}  # (epoch, branch) -> {"val_loss": ..., "val_accuracy": ...}

    def on_epoch_end(self, epoch, logs=None):
        if self.last_only and epoch + 1 < self.params["epochs"]:
            return
        for i, branch in enumerate(self.branches):
            loss, accuracy = evaluate(branch, self.x, self.y)
            self.results[epoch, i] = {"val_loss": loss, "val_accuracy": accuracy}
            if logs is not None:  # for the callbacks after this one (TensorBoard)
                logs[f"val_loss_{i}"], logs[f"val_accuracy_{i}"] = loss, accuracy


class _StopWhenAllDiverged(keras.callbacks.Callback):
    def __init__(self, n):
        super().__init__()
        self.n = n

    def on_train_batch_end(self, batch, logs=None):
        if logs and all(not math.isfinite(float(logs.get(f"loss_{i}", 0.0))) for i in range(self.n)):
            self.model.stop_training = True


def fit_packed(branches, splits, recipe, seeds, callbacks=(), epochs=None, learning_rates=None,
               validate="every_epoch"):
    """Trains models side by side in one ``fit``, each as it would train alone.

    Args:
        branches: un-compiled tf_keras models (plain or wrapped for pruning).
        splits: a :class:`widthvsprune.data.Splits`.
        recipe: the shared :class:`widthvsprune.config.Recipe`.
        seeds: one seed per branch: its batch order.
        callbacks: Keras callbacks for the pack (``UpdatePruningStep`` ...).
        epochs: overrides ``recipe.epochs``.
        learning_rates: one per branch; ``recipe.learning_rate`` by default.
        validate: ``"every_epoch"``, or ``"last_epoch"`` when only the final
            validation accuracy is used (a search trial's score).

    Returns:
        ``(histories, diverged, seconds)``: one list of per-epoch dicts per
        branch, the indices of branches whose loss became non-finite, and the
        wall time of the fit.
    """
    if validate not in ("every_epoch", "last_epoch"):
        raise ValueError(f"Expected validate to be 'every_epoch' or 'last_epoch'. Received: validate={validate!r}")
    n = len(branches)
    epochs = int(recipe.epochs if epochs is None else epochs)
    learning_rates = learning_rates or [recipe.learning_rate] * n
    for i, branch in enumerate(branches):
        branch._name = f"branch_{i}"
    pack = PackedModel(branches, [make_optimizer(recipe, lr) for lr in learning_rates])
    pack.compile(optimizer=pack.branch_optimizers[0])
    for branch, optimizer in zip(branches, pack.branch_optimizers):
        build_slots(optimizer, branch.trainable_variables)
    dataset, steps = packed_dataset(splits.x_train, splits.y_train, recipe.batch_size, epochs, seeds)
    validation = _EagerValidation(branches, splits.x_val, splits.y_val, validate == "last_epoch")
    start = time.perf_counter()
    result = pack.fit(
        dataset,
        epochs=epochs,
        steps_per_epoch=steps,
        verbose=0,
        # Validation runs after the pruning callbacks (masks applied) and before TensorBoard (which logs it).
        callbacks=[*(c for c in callbacks if not isinstance(c, keras.callbacks.TensorBoard)), validation,
                   *(c for c in callbacks if isinstance(c, keras.callbacks.TensorBoard)), _StopWhenAllDiverged(n)],
    )
    seconds = time.perf_counter() - start
    histories, diverged = [], []
    for i in range(n):
        rows = []
        for epoch, _ in enumerate(result.history.get(f"loss_{i}", [])):
            rows.append({
                "epoch": epoch + 1,
                "loss": float(result.history[f"loss_{i}"][epoch]),
                "accuracy": float(result.history[f"accuracy_{i}"][epoch]),
                **validation.results.get((epoch, i), {}),
            })
        histories.append(rows)
        if len(rows) < epochs or not all(math.isfinite(r["loss"]) for r in rows):
            diverged.append(i)
    return histories, diverged, seconds


def fit(model, splits, recipe, seed, callbacks=(), epochs=None, learning_rate=None):
    """Trains one model (a pack of one).

    Returns:
        ``(history, seconds)``: one dict per epoch and the wall time.

    Raises:
        TrainingDiverged: if the loss became NaN or infinite.
    """
    histories, diverged, seconds = fit_packed(
        [model], splits, recipe, [seed], callbacks, epochs,
        None if learning_rate is None else [learning_rate],
    )
    if diverged:
        raise TrainingDiverged(_diverged_message(histories[0]))
    return histories[0], seconds


def _diverged_message(history):
    bad = next((r for r in history if not math.isfinite(r["loss"])), history[-1] if history else None)
    if bad is None:
        return "the training loss became non-finite in epoch 1"
    return f"the training loss became non-finite in epoch {bad['epoch']} (loss={bad['loss']})"


def diverged_error(history):
    """The exception recorded for a branch whose loss became non-finite."""
    return TrainingDiverged(_diverged_message(history))
