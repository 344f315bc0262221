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

tfmot puts its mask update (the schedule's decision, then a new mask per
kernel) into every training call, so the traced train step of a pack carries
it once per wrapper, although it runs only every ``frequency`` steps.
:class:`DeferredMaskUpdates` runs the same tfmot method between steps instead,
at the steps where the wrapper's own schedule prunes, and keeps it out of the
traced step; masks, thresholds and weights are those of tfmot's own path
(tested).
"""

import numpy as np

from widthvsprune import schedules
from widthvsprune.engines.tf_keras.backend import PruneLowMagnitude, keras, sparsity, tf
from widthvsprune.masks import global_masks, random_masks


class FrozenMaskSchedule(sparsity.PruningSchedule):
    """A schedule that never updates masks: :class:`MaskUpdater` does."""

    def __call__(self, step):
        return tf.constant(False), tf.constant(0.0, dtype=tf.float32)

    def get_config(self):
        return {"class_name": self.__class__.__name__, "config": {}}


def make_schedule(spec):
    """tfmot's ``PolynomialDecay`` for a ``layerwise`` :class:`~widthvsprune.engines.base.PruneSpec`, a frozen one
    otherwise."""
    if spec.variant == "layerwise":
        return sparsity.PolynomialDecay(
            initial_sparsity=min(spec.initial_sparsity, spec.target),
            final_sparsity=spec.target,
            begin_step=spec.steps.begin_step,
            end_step=spec.steps.end_step,
            power=spec.power,
            frequency=spec.steps.frequency,
        )
    return FrozenMaskSchedule()


def wrap(model, schedule, prune_output=True):
    """Wraps the model's Dense, Conv and recurrent layers (all, or all but the last) for pruning."""
    if prune_output:
        return sparsity.prune_low_magnitude(model, pruning_schedule=schedule)
    prunable = [
        layer for layer in model.layers
        if isinstance(layer, (keras.layers.Dense, keras.layers.Conv1D, keras.layers.Conv2D,
                              keras.layers.GRU, keras.layers.LSTM, keras.layers.SimpleRNN))
    ]
    keep_dense = prunable[-1] if prunable else None

    def clone(layer):
        if layer is not keep_dense and layer in prunable:
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        return layer  # reused with its weights, as tfmot reuses the layers it wraps

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

    def on_train_batch_begin(self, batch, logs=None):
        self.step += 1
        s = self.steps
        if not schedules.updates_masks_at(self.step, s.begin_step, s.end_step, s.frequency):
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


def prunes_at(schedule, step):
    """Whether ``schedule`` updates masks at ``step``; ``None`` when it cannot be told from outside."""
    if isinstance(schedule, FrozenMaskSchedule):
        return False
    try:
        begin, end, frequency = int(schedule.begin_step), int(schedule.end_step), int(schedule.frequency)
    except (AttributeError, TypeError, ValueError):
        return None
    return schedules.updates_masks_at(step, begin, end, frequency)


class DeferredMaskUpdates(keras.callbacks.Callback):
    """Runs tfmot's mask updates between training steps, not inside the traced step.

    On train begin, each wrapper's ``pruning_obj.conditional_mask_update`` is
    replaced by a no-op for the train step's trace (and restored on train
    end). Before step ``t`` (tfmot counts steps from 1 and increments
    ``pruning_step`` inside the step), the wrappers whose schedule prunes at
    ``t`` run tfmot's own ``conditional_mask_update`` with ``pruning_step`` set
    to ``t``, which is what the train step would have done first. Wrappers
    that prune at the same steps share one ``tf.function``, traced once.
    Wrappers with a schedule whose steps cannot be read (see
    :func:`prunes_at`) or with m-by-n sparsity keep tfmot's in-graph update.

    Must come after ``UpdatePruningStep`` in the callback list.

    Args:
        branches: the wrapped models of the pack.
    """

    def __init__(self, branches):
        super().__init__()
        self.branches = branches
        self.groups = []  # (a schedule, tf.function updating every wrapper that prunes when it does)
        self.patched = []
        self.step = 0
        self.updates = 0  # update calls made (one per group and pruning step)

    def on_train_begin(self, logs=None):
        by_schedule = {}
        for wrapper in (w for branch in self.branches for w in wrappers(branch)):
            obj, schedule = wrapper.pruning_obj, wrapper.pruning_schedule
            if obj is None or getattr(obj, "_sparsity_m_by_n", None) or prunes_at(schedule, 1) is None:
                continue
            if wrapper.pruning_vars and not isinstance(schedule, FrozenMaskSchedule):
                key = (int(schedule.begin_step), int(schedule.end_step), int(schedule.frequency))
                by_schedule.setdefault(key, (schedule, []))[1].append((wrapper, obj.conditional_mask_update))
            obj.conditional_mask_update = tf.no_op
            self.patched.append(obj)
        self.groups = [(schedule, _update_function(members)) for schedule, members in by_schedule.values()]
        first = next((w for b in self.branches for w in wrappers(b)), None)
        self.step = int(first.pruning_step.numpy()) if first is not None else 0

    def on_train_batch_begin(self, batch, logs=None):
        self.step += 1
        for schedule, update in self.groups:
            if prunes_at(schedule, self.step):
                update(tf.constant(self.step, tf.int64))
                self.updates += 1

    def on_train_end(self, logs=None):
        for obj in self.patched:
            del obj.conditional_mask_update  # tfmot's own method again
        self.patched, self.groups = [], []


def _update_function(members):
    """One traced call running tfmot's update of every ``(wrapper, update)`` at a given step."""

    @tf.function(autograph=False, input_signature=[tf.TensorSpec([], tf.int64)])
    def update(step):
        for wrapper, conditional_mask_update in members:
            wrapper.pruning_step.assign(step)
            with tf.control_dependencies([conditional_mask_update()]):
                wrapper.pruning_step.assign(step - 1)  # the train step increments it

    return update


def callbacks(branches, specs, log_dir=None, defer_masks=True):
    """The callbacks a pruning fine-tune of ``branches`` needs.

    Args:
        branches: the wrapped models trained together.
        specs: one :class:`~widthvsprune.engines.base.PruneSpec` per branch.
        log_dir: TensorBoard folder for ``PruningSummaries``, or ``None``.
        defer_masks: run tfmot's mask updates between steps
            (:class:`DeferredMaskUpdates`) rather than inside the traced step.
    """
    out = [sparsity.UpdatePruningStep()]
    if defer_masks:
        out.append(DeferredMaskUpdates(branches))
    out += [
        MaskUpdater(branch, spec.variant, spec.target, spec.initial_sparsity, spec.steps, spec.power, spec.seed)
        for branch, spec in zip(branches, specs) if spec.variant != "layerwise"
    ]
    if log_dir is not None:
        out.append(sparsity.PruningSummaries(log_dir=str(log_dir)))
    return out


def strip(model):
    """The plain model with masked weights, wrappers removed."""
    return sparsity.strip_pruning(model)
