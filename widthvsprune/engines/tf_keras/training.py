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

from widthvsprune.engines.base import batch_order, recalibration_batches, steps_per_epoch
from widthvsprune.engines.tf_keras.backend import keras, tf


def make_optimizer(name, learning_rate):
    """The optimizer ``name`` (``"adam"`` or ``"sgd"``) in tf_keras's fused form.

    ``keras.optimizers.legacy.Adam`` and ``SGD`` update each variable with one
    fused kernel (``ResourceApplyAdam``, ``ResourceApplyKerasMomentum``) instead
    of a dozen small ops: the same update rule, a fraction of the per-step cost
    for the small models a study trains. Both arms use it.
    """
    lr = float(learning_rate)
    if name == "sgd":
        return keras.optimizers.legacy.SGD(learning_rate=lr, momentum=0.9)
    return keras.optimizers.legacy.Adam(learning_rate=lr)


def build_slots(optimizer, variables):
    """Creates a :func:`make_optimizer` optimizer's slots now, so the train step is traced once, not twice."""
    optimizer._create_all_weights(variables)


def loss_function():
    """The loss of a model's logits: sparse categorical cross-entropy, or binary cross-entropy for one output unit."""
    categorical = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    binary = keras.losses.BinaryCrossentropy(from_logits=True)

    def loss(labels, logits):
        if logits.shape[-1] == 1:
            return binary(tf.cast(tf.reshape(labels, (-1, 1)), logits.dtype), logits)
        return categorical(labels, logits)

    return loss


class Accuracy(keras.metrics.Mean):
    """The share of examples whose predicted class is the label (:func:`predicted`)."""

    def update_state(self, labels, logits, sample_weight=None):
        hits = tf.cast(tf.equal(predicted(logits), tf.cast(tf.reshape(labels, (-1,)), tf.int32)), tf.float32)
        return super().update_state(hits, sample_weight=sample_weight)


def predicted(logits):
    """The predicted classes: the largest logit, or a one-unit logit above 0 (probability 0.5)."""
    if logits.shape[-1] == 1:
        return tf.cast(logits[:, 0] > 0, tf.int32)
    return tf.cast(tf.argmax(logits, axis=-1), tf.int32)


# --------------------------------------------------------------------------
# Data: per-seed batch orders over arrays held once.


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
    return dataset, steps_per_epoch(n, batch_size)


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
            (keras.metrics.Mean(name=f"loss_{i}"), Accuracy(name=f"accuracy_{i}"))
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
    """``(loss, accuracy, correct)`` of any model on ``(x, y)`` with eager forward passes.

    ``correct`` holds one bool per example: whether the model's top class is its label.
    """
    loss_fn = loss_function()
    total_loss, hits = 0.0, []
    for start in range(0, len(x), batch_size):
        logits = model(x[start : start + batch_size], training=False)
        labels = y[start : start + batch_size]
        total_loss += float(loss_fn(labels, logits)) * len(labels)
        hits.append(predicted(logits).numpy() == labels)
    correct = np.concatenate(hits) if hits else np.zeros(0, dtype=bool)
    return total_loss / len(x), int(correct.sum()) / len(x), correct


def normalizations(model):
    """The ``BatchNormalization`` layers of ``model`` (nested models included) whose statistics recalibration
    re-estimates: the trainable ones with a momentum below 1 (one that is not trainable normalizes with its moving
    statistics even in training, and keeps them)."""
    return [layer for layer in model.submodules
            if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable and float(layer.momentum) < 1.0]


def recalibrate_batchnorm(model, x, batch_size):
    """Re-estimates the moving statistics of ``model``'s batch normalization over ``x``; no weight changes.

    One pass over :func:`~widthvsprune.engines.base.recalibration_batches`:
    each batch runs forward in training mode with every layer's momentum set
    to 0, so that its own update stores that batch's mean and variance; the
    moving statistics become their means over the batches, each batch weighted
    by its size. The momenta are restored afterwards.

    Args:
        model: a plain tf_keras model (pruning wrappers stripped: a wrapper in
            training mode may update its masks).
        x: the training inputs.
        batch_size: examples per batch.

    Returns:
        Whether the model has layers to recalibrate (``False``: nothing changed).
    """
    layers = normalizations(model)
    if not layers:
        return False
    momenta = [layer.momentum for layer in layers]
    sums = [[np.zeros(layer.moving_mean.shape, np.float64), np.zeros(layer.moving_variance.shape, np.float64)]
            for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        for batch in recalibration_batches(len(x), batch_size):
            for layer in layers:  # from zero, the update "moving - (moving - batch) * 1" is the batch's exactly
                layer.moving_mean.assign(tf.zeros_like(layer.moving_mean))
                layer.moving_variance.assign(tf.zeros_like(layer.moving_variance))
            model(x[batch], training=True)
            for layer, (mean, variance) in zip(layers, sums):
                mean += layer.moving_mean.numpy() * len(batch)
                variance += layer.moving_variance.numpy() * len(batch)
    finally:
        for layer, momentum in zip(layers, momenta):
            layer.momentum = momentum
    for layer, (mean, variance) in zip(layers, sums):
        layer.moving_mean.assign((mean / len(x)).astype(np.float32))
        layer.moving_variance.assign((variance / len(x)).astype(np.float32))
    return True


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
            loss, accuracy, _ = evaluate(branch, self.x, self.y)
            self.results[epoch, i] = {"val_loss": loss, "val_accuracy": accuracy}
            if logs is not None:  # for the callbacks after this one (TensorBoard)
                logs[f"val_loss_{i}"], logs[f"val_accuracy_{i}"] = loss, accuracy


class _Stop(keras.callbacks.Callback):
    """Stops the fit once every branch diverged, or after ``max_steps`` optimizer steps."""

    def __init__(self, n, max_steps=None):
        super().__init__()
        self.n, self.max_steps, self.steps = n, max_steps, 0

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.max_steps is not None and self.steps >= self.max_steps:
            self.model.stop_training = True
        if logs and all(not math.isfinite(float(logs.get(f"loss_{i}", 0.0))) for i in range(self.n)):
            self.model.stop_training = True


def fit_packed(branches, splits, pack, callbacks=()):
    """Trains models side by side in one ``fit``, each as it would train alone.

    Args:
        branches: un-compiled tf_keras models (plain or wrapped for pruning),
            one per model of ``pack``.
        splits: a :class:`widthvsprune.data.Splits`.
        pack: the :class:`widthvsprune.engines.base.Pack`: batch size,
            optimizer, epochs, ``max_steps``, validation, and each model's
            seed (batch order) and learning rate.
        callbacks: Keras callbacks for the pack (``UpdatePruningStep`` ...).

    Returns:
        ``(histories, diverged, seconds)``: one list of per-epoch dicts per
        branch, the indices of branches whose loss became non-finite, and the
        wall time of the fit.
    """
    n = len(branches)
    if int(pack.epochs) == 0 or pack.max_steps == 0:  # an evaluation only: every model as it is
        return [[as_is(branch, splits)] for branch in branches], [], 0.0
    spe = steps_per_epoch(len(splits.x_train), pack.batch_size)
    epochs = int(pack.epochs) if pack.max_steps is None else -(-int(pack.max_steps) // spe)
    for i, branch in enumerate(branches):
        branch._name = f"branch_{i}"
    pack_model = PackedModel(branches, [make_optimizer(pack.optimizer, m.learning_rate) for m in pack.models])
    pack_model.compile(optimizer=pack_model.branch_optimizers[0])
    for branch, optimizer in zip(branches, pack_model.branch_optimizers):
        build_slots(optimizer, branch.trainable_variables)
    dataset, steps = packed_dataset(splits.x_train, splits.y_train, pack.batch_size, epochs,
                                    [m.seed for m in pack.models])
    validation = _EagerValidation(branches, splits.x_val, splits.y_val, pack.validate == "last_epoch")
    tensorboard = [c for c in callbacks if isinstance(c, keras.callbacks.TensorBoard)]
    start = time.perf_counter()
    result = pack_model.fit(
        dataset,
        epochs=epochs,
        steps_per_epoch=steps,
        verbose=0,
        # Validation runs after the pruning callbacks (masks applied) and before TensorBoard (which logs it).
        callbacks=[*(c for c in callbacks if c not in tensorboard), validation, *tensorboard,
                   _Stop(n, pack.max_steps)],
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


def as_is(model, splits):
    """The one history row of a model evaluated as it is (``epoch`` 0): its loss and accuracy on the training and
    validation splits."""
    loss, accuracy, _ = evaluate(model, splits.x_train, splits.y_train)
    val_loss, val_accuracy, _ = evaluate(model, splits.x_val, splits.y_val)
    return {"epoch": 0, "loss": loss, "accuracy": accuracy, "val_loss": val_loss, "val_accuracy": val_accuracy}


def diverged_message(history):
    """Why a branch whose loss became non-finite failed."""
    bad = next((r for r in history if not math.isfinite(r["loss"])), history[-1] if history else None)
    if bad is None:
        return "the training loss became non-finite in epoch 1"
    return f"the training loss became non-finite in epoch {bad['epoch']} (loss={bad['loss']})"
