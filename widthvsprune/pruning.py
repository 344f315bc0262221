"""The pruned arm: tfmot magnitude pruning of a trained baseline, then fine-tuning.

Three variants share tfmot's ``PruneLowMagnitude`` wrappers, the same
polynomial schedule and ``strip_pruning``:

- ``layerwise``: tfmot's own ``PolynomialDecay``; every pruned kernel reaches
  the target sparsity.
- ``global``: one magnitude threshold over all pruned kernels (tfmot has no
  such option), so layers end with different sparsities.
- ``random``: the same schedule, but the weights removed at each update are
  chosen at random; the sanity baseline every pruning study should include.

For ``global`` and ``random`` the wrappers get a schedule that never updates
masks itself, and :class:`MaskUpdater` writes the masks at the same steps
``PolynomialDecay`` would.
"""

import numpy as np

from widthvsprune import schedules
from widthvsprune.backend import PruneLowMagnitude, keras, sparsity, tf


class FrozenMaskSchedule(sparsity.PruningSchedule):
    """A schedule that never updates masks: :class:`MaskUpdater` does."""

    def __call__(self, step):
        return tf.constant(False), tf.constant(0.0, dtype=tf.float32)

    def get_config(self):
        return {"class_name": self.__class__.__name__, "config": {}}


def make_schedule(target, pruning, steps):
    """tfmot's ``PolynomialDecay`` for ``layerwise``, a frozen one otherwise."""
    if pruning.variant == "layerwise":
        return sparsity.PolynomialDecay(
            initial_sparsity=min(pruning.initial_sparsity, target),
            final_sparsity=target,
            begin_step=steps.begin_step,
            end_step=steps.end_step,
            power=pruning.power,
            frequency=steps.frequency,
        )
    return FrozenMaskSchedule()


def wrap(model, schedule, prune_output=True):
    """Wraps the model's Dense/Conv layers (all, or all but the last) for pruning."""
    if prune_output:
        return sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
    prunable = [
        layer for layer in model.layers
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D))
    ]
    keep_dense = prunable[-1] if prunable else None

    def clone(layer):
        if layer is not keep_dense and layer in prunable:
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


def wrappers(model):
    """Every ``PruneLowMagnitude`` wrapper in a model, nested models included."""
    out = []
    for layer in model.layers:
        if isinstance(layer, PruneLowMagnitude):
            out.append(layer)
        elif isinstance(layer, keras.Model):
            out += wrappers(layer)
    return out


def global_masks(kernels, masks, target):
    """Masks keeping the largest-magnitude weights over all kernels together.

    Exactly ``round(target * total)`` weights are zero afterwards (ties are
    broken by position), and weights already pruned stay pruned.
    """
    flat = np.concatenate([np.abs(k * m).ravel() for k, m in zip(kernels, masks)])
    n_zero = int(round(target * flat.size))
    keep = np.ones(flat.size, dtype=bool)
    if n_zero:
        keep[np.argsort(flat, kind="stable")[:n_zero]] = False
    out, start = [], 0
    for kernel in kernels:
        out.append(keep[start : start + kernel.size].reshape(kernel.shape).astype(kernel.dtype))
        start += kernel.size
    return out


def random_masks(kernels, masks, target, rng):
    """Masks removing random surviving weights until each kernel reaches ``target``."""
    out = []
    for kernel, mask in zip(kernels, masks):
        mask = mask.astype(bool).ravel().copy()
        n_zero = int(round(target * mask.size))
        extra = n_zero - int((~mask).sum())
        if extra > 0:
            alive = np.flatnonzero(mask)
            mask[rng.choice(alive, size=extra, replace=False)] = False
        out.append(mask.reshape(kernel.shape).astype(kernel.dtype))
    return out


class MaskUpdater(keras.callbacks.Callback):
    """Writes global or random masks into one model's tfmot wrappers on the polynomial schedule.

    Args:
        branch: the wrapped model whose masks it owns (in a pack, one branch).
        variant: ``"global"`` or ``"random"``.
        target: the final sparsity.
        initial: the sparsity of the first update (the target if lower).
        steps: the :class:`widthvsprune.schedules.ScheduleSteps`.
        power: the schedule's exponent.
        seed: seed of the random selection.
    """

    def __init__(self, branch, variant, target, initial, steps, power, seed):
        super().__init__()
        self.branch, self.variant = branch, variant
        self.target, self.initial = target, min(initial, target)
        self.steps, self.power = steps, power
        self.rng = np.random.default_rng(seed)
        self.step = 0

    def _due(self, step):
        s = self.steps
        return s.begin_step <= step <= s.end_step and (step - s.begin_step) % s.frequency == 0

    def on_train_batch_begin(self, batch, logs=None):
        self.step += 1
        if not self._due(self.step):
            return
        target = schedules.polynomial_sparsity(
            self.step, self.initial, self.target, self.steps.begin_step, self.steps.end_step, self.power
        )
        variables = [v for w in wrappers(self.branch) for v in w.pruning_vars]
        kernels = [weight.numpy() for weight, _, _ in variables]
        masks = [mask.numpy() for _, mask, _ in variables]
        if self.variant == "global":
            new = global_masks(kernels, masks, target)
        else:
            new = random_masks(kernels, masks, target, self.rng)
        for (weight, mask, _), m, k in zip(variables, new, kernels):
            mask.assign(m)
            weight.assign(k * m)


def callbacks(pruning, targets, steps, branches, seeds, log_dir=None):
    """The callbacks a pruning fine-tune of ``branches`` needs.

    Args:
        pruning: the :class:`widthvsprune.config.Pruning`.
        targets: the target sparsity of each branch (or one for all).
        steps: the :class:`widthvsprune.schedules.ScheduleSteps`.
        branches: the wrapped models trained together.
        seeds: one seed per branch (random selection).
        log_dir: TensorBoard folder for ``PruningSummaries``, or ``None``.
    """
    if not isinstance(targets, (list, tuple)):
        targets = [targets] * len(branches)
    out = [sparsity.UpdatePruningStep()]
    if pruning.variant != "layerwise":
        out += [
            MaskUpdater(branch, pruning.variant, target, pruning.initial_sparsity, steps, pruning.power, seed)
            for branch, target, seed in zip(branches, targets, seeds)
        ]
    if log_dir is not None:
        out.append(sparsity.PruningSummaries(log_dir=str(log_dir)))
    return out


def strip(model):
    """The plain model with masked weights, wrappers removed."""
    return sparsity.strip_pruning(model)
