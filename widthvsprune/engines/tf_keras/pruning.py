"""The pruned arm on tf_keras: tfmot's magnitude pruning of a trained model, each layer on its own schedule.

Every prunable layer is wrapped with its own ``prune_low_magnitude(layer,
pruning_schedule=...)`` inside ``clone_model``, as tfmot prunes a model layer
by layer (:func:`wrap`). The per-kernel targets come from the allocation
(:func:`widthvsprune.pruning.kernel_masks.kernel_targets`, shared with the jax
engine):

- allocations decided from shapes or from the trained baseline (``uniform``,
  ``first_dense``, ``uniform_plus``, ``erk``, ``lamp``): each layer with a
  nonzero target gets tfmot's own ``PolynomialDecay`` towards it, so tfmot's
  own mask rule prunes it; a layer whose target is 0 is not wrapped;
- allocations decided at every mask update (``global``) and random selection
  (``random``, a fixed sparse shape): every prunable layer is wrapped with a
  schedule that never updates masks itself, and :class:`MaskUpdater` writes
  the masks of :class:`widthvsprune.pruning.kernel_masks.HostMasks` at the steps
  ``PolynomialDecay`` would.

tfmot puts its mask update (the schedule's decision, then a new mask per
kernel) into every training call, so the traced train step of a pack carries
it once per wrapper, although it runs only every ``frequency`` steps.
:class:`DeferredMaskUpdates` runs the same tfmot method between steps instead,
at the steps where the wrapper's own schedule prunes, and keeps it out of the
traced step; masks, thresholds and weights are those of tfmot's own path
(tested).
"""


from widthvsprune.engines.tf_keras.backend import PruneLowMagnitude, keras, sparsity, tf
from widthvsprune.engines.tf_keras.models import prunable_layers
from widthvsprune.pruning import kernel_masks, schedules


class FrozenMaskSchedule(sparsity.PruningSchedule):
    """A schedule that never updates masks: :class:`MaskUpdater` does."""

    def __call__(self, step):
        return tf.constant(False), tf.constant(0.0, dtype=tf.float32)

    def get_config(self):
        return {"class_name": self.__class__.__name__, "config": {}}


def polynomial_decay(spec, target):
    """tfmot's ``PolynomialDecay`` towards one kernel's ``target`` on the spec's steps."""
    return sparsity.PolynomialDecay(
        initial_sparsity=kernel_masks.initial_sparsity(spec, target),
        final_sparsity=float(target),
        begin_step=spec.steps.begin_step,
        end_step=spec.steps.end_step,
        power=spec.power,
        frequency=spec.steps.frequency,
    )


def wrap(model, spec):
    """``model`` (its weights set) with each prunable layer wrapped for pruning by ``spec``.

    Returns:
        ``(wrapped, targets)``: the wrapped model (the layers not wrapped are
        reused, with their weights, as tfmot reuses the layers it wraps) and
        the final sparsity of every prunable kernel.

    Raises:
        Infeasible: if the allocation cannot reach the size point.
    """
    found = prunable_layers(model)
    targets = kernel_masks.kernel_targets(spec, [layer for _, layer in found])
    on_host = kernel_masks.on_host(spec)
    schedules_of, k = {}, 0
    for keras_layer, layer in found:
        target = targets[k]
        k += len(layer.shapes)
        if on_host:
            schedules_of[id(keras_layer)] = FrozenMaskSchedule()
        elif target > 0:
            schedules_of[id(keras_layer)] = polynomial_decay(spec, target)

    def clone(layer):
        schedule = schedules_of.get(id(layer))
        return layer if schedule is None else sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)

    return keras.models.clone_model(model, clone_function=clone), targets


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
    """Writes one model's host masks (:class:`widthvsprune.pruning.kernel_masks.HostMasks`) into its tfmot wrappers.

    Args:
        branch: the wrapped model whose masks it owns (in a pack, one branch);
            every prunable layer of it is wrapped (:func:`wrap`).
        spec: its :class:`~widthvsprune.engines.base.PruneSpec`.
    """

    def __init__(self, branch, spec):
        super().__init__()
        self.branch = branch
        self.variables = [v for w in wrappers(branch) for v in w.pruning_vars]
        self.masks = kernel_masks.HostMasks(spec, [layer for _, layer in prunable_layers(branch)])
        self.step = 0

    def on_train_batch_begin(self, batch, logs=None):
        self.step += 1
        if not self.masks.updates_at(self.step):
            return
        kernels = [weight.numpy() for weight, _, _ in self.variables]
        current = [mask.numpy() for _, mask, _ in self.variables]
        for (weight, mask, _), m, k in zip(self.variables, self.masks.update(self.step, kernels, current), kernels):
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
    out += [MaskUpdater(branch, spec) for branch, spec in zip(branches, specs) if kernel_masks.on_host(spec)]
    if log_dir is not None:
        out.append(sparsity.PruningSummaries(log_dir=str(log_dir)))
    return out


def strip(model):
    """The plain model with masked weights, wrappers removed."""
    return sparsity.strip_pruning(model)
