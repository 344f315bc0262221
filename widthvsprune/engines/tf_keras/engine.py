"""The ``tf_keras`` engine: tf_keras models, tfmot pruning, packed training.

It turns a :class:`~widthvsprune.engines.base.Pack` into tf_keras branches
(built from scratch, or from given weights and wrapped for pruning), trains
them in one packed ``fit``, strips the pruning wrappers and measures every
model on the validation and test splits.
"""

import dataclasses

from widthvsprune import families
from widthvsprune.engines import base
from widthvsprune.engines.tf_keras import backend, models, pruning, training
from widthvsprune.engines.tf_keras.backend import keras


class TfKerasEngine(base.Engine):
    """tf_keras with TensorFlow Model Optimization: the reference engine."""

    name = "tf_keras"

    def __init__(self):
        self._counts = {}

    def train(self, pack, splits):
        if len(pack.models) > 1 and any(m.log_dir for m in pack.models):
            # TensorBoard logs one model per fit.
            return [self.train(base.Pack((m,), **_recipe(pack)), splits)[0] for m in pack.models]
        with backend.quiet():
            return self._train(pack, splits)

    def _train(self, pack, splits):
        built, failures = base.build_each(pack, lambda spec: self._branch(spec, splits))
        if not built:
            return [failures[i] for i in range(len(pack.models))]
        pack = dataclasses.replace(pack, models=tuple(pack.models[i] for i in built))
        branches, targets = [b for b, _ in built.values()], [t for _, t in built.values()]
        pruned = [(b, m.prune) for b, m in zip(branches, pack.models) if m.prune is not None]
        log_dir = pack.models[0].log_dir
        callbacks = []
        if pruned:
            callbacks += pruning.callbacks([b for b, _ in pruned], [s for _, s in pruned],
                                           log_dir if len(pack.models) == 1 else None)
        if log_dir is not None:
            callbacks.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
        histories, diverged, seconds = training.fit_packed(branches, splits, pack, callbacks)
        share = seconds / len(branches)
        outcomes = [
            base.failed(training.diverged_message(history), history) if i in diverged
            else self._outcome(pack, spec, branch, history, splits, share, kernel_targets)
            for i, (spec, branch, history, kernel_targets) in enumerate(zip(pack.models, branches, histories,
                                                                            targets))
        ]
        return base.merge_outcomes(built, outcomes, failures)

    def _branch(self, spec, splits):
        """``(model, targets)``: the model to train (wrapped for pruning) and its kernels' final sparsities."""
        model = models.build(spec.family, spec.widths, splits.input_shape, splits.num_classes, spec.seed)
        if spec.initial_weights is not None:
            model.set_weights(list(spec.initial_weights))
        if spec.prune is None:
            return model, None
        return pruning.wrap(model, spec.prune)

    def _outcome(self, pack, spec, branch, history, splits, seconds, targets):
        outcome = base.Outcome(history=history, seconds=seconds)
        evaluated_only = int(pack.epochs) == 0 or pack.max_steps == 0  # the model as it is: statistics included
        recalibrating = pack.recalibrate_batchnorm and not evaluated_only and bool(training.normalizations(branch))
        if not pack.test and not pack.weights and not recalibrating:
            last = history[-1] if history else {}
            outcome.val_accuracy = float(last.get("val_accuracy", float("nan")))
            outcome.val_loss = float(last.get("val_loss", float("nan")))
            return outcome
        model = pruning.strip(branch) if spec.prune is not None else branch
        if recalibrating:
            training.recalibrate_batchnorm(model, splits.x_train, pack.batch_size)
        outcome.val_loss, outcome.val_accuracy, _ = training.evaluate(model, splits.x_val, splits.y_val)
        if recalibrating and history:  # the last epoch's validation is the recalibrated model's, as on every engine
            history[-1].update(val_loss=outcome.val_loss, val_accuracy=outcome.val_accuracy)
        if pack.test:
            outcome.test_loss, outcome.test_accuracy, outcome.test_correct = training.evaluate(
                model, splits.x_test, splits.y_test)
        if pack.weights:
            outcome.weights = model.get_weights()
            outcome.layers = models.layer_weights(model, targets)
            outcome.other_params = models.other_params(model)
        return outcome

    def count_params(self, family, widths, input_shape, num_classes):
        key = (family, tuple(widths), tuple(input_shape), int(num_classes))
        if key not in self._counts:
            with backend.quiet():
                model = families.get_family(family).build(tuple(widths), tuple(input_shape), int(num_classes), keras)
                self._counts[key] = int(model.count_params())
        return self._counts[key]

    def gpus(self):
        return backend.configure_devices()

    def limit_threads(self, workers):
        backend.limit_threads(workers)


def _recipe(pack):
    return {"batch_size": pack.batch_size, "optimizer": pack.optimizer, "epochs": pack.epochs,
            "max_steps": pack.max_steps, "validate": pack.validate, "test": pack.test, "weights": pack.weights,
            "recalibrate_batchnorm": pack.recalibrate_batchnorm}
