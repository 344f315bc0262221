"""Pruning schedules and host-side mask updates, per model (NumPy only).

tfmot's ``PruneLowMagnitude`` wrapper starts its ``pruning_step`` at -1;
``UpdatePruningStep.on_train_begin`` sets it to 0 and every training call
increments it *before* asking the schedule, so the schedule sees the steps
``1, 2, ...`` of the fine-tune, and at a step ``t`` where ``PolynomialDecay``
prunes (:func:`widthvsprune.schedules.updates_masks_at`) the masks are
recomputed from the kernels as they are after ``t - 1`` optimizer updates,
then applied, then the forward pass runs.

- ``layerwise``: the compiled program recomputes the masks itself; the host
  only supplies, per step, how many weights each kernel keeps
  (:func:`kept_table`, from :func:`widthvsprune.masks.polynomial_sparsity_f32`
  and :func:`widthvsprune.masks.kept_count`, tfmot's float32 arithmetic).
- ``global`` and ``random``: the masks come from
  :func:`widthvsprune.masks.global_masks` / :func:`~widthvsprune.masks.random_masks`
  at the same steps, with the target of
  :func:`widthvsprune.schedules.polynomial_sparsity` and a
  ``numpy.random.default_rng(seed)`` per model, exactly as the tf_keras
  engine's ``pruning.MaskUpdater`` does (:class:`HostMasks`).
"""

import math

import numpy as np

from widthvsprune import masks as mask_rules
from widthvsprune import schedules

VARIANTS = ("layerwise", "global", "random")
HOST_VARIANTS = ("global", "random")


def check(prune):
    """Raises ``ValueError`` for a :class:`~widthvsprune.engines.base.PruneSpec` the engine cannot run."""
    if prune.variant not in VARIANTS:
        raise ValueError(f"Expected prune.variant to be one of {list(VARIANTS)}. Received: variant={prune.variant!r}")
    if not 0.0 <= float(prune.target) < 1.0:
        raise ValueError(f"Expected prune.target in [0, 1). Received: target={prune.target!r}")


def initial_sparsity(prune):
    """The schedule's initial sparsity: the target if that is lower (as tfmot's schedule is built)."""
    return min(float(prune.initial_sparsity), float(prune.target))


def updates_at(prune, step):
    """Whether the model's masks are updated before optimizer step ``step`` (counted from 1)."""
    if prune is None:
        return False
    s = prune.steps
    return schedules.updates_masks_at(step, s.begin_step, s.end_step, s.frequency)


def mask_updates(prune, total_steps):
    """How many mask updates a model gets in ``total_steps`` optimizer steps."""
    if prune is None:
        return 0
    return sum(1 for t in range(1, int(total_steps) + 1) if updates_at(prune, t))


def kept_table(prune, layout, first_step, count, steps):
    """Kept counts of the layerwise rule: ``(steps, prunable)`` int32, 0 where a kernel's mask does not change.

    Row ``i`` is optimizer step ``first_step + i``; rows from ``count`` on are 0.

    Args:
        prune: the model's :class:`~widthvsprune.engines.base.PruneSpec`, or ``None``.
        layout: the model's own :class:`~widthvsprune.engines.jax.models.Layout`.
        first_step: the step of row 0 (counted from 1).
        count: the steps of the segment to fill.
        steps: rows of the table.
    """
    table = np.zeros((steps, len(layout.prunable)), np.int32)
    if prune is None or prune.variant != "layerwise":
        return table
    s = prune.steps
    pruned = layout.pruned_kernels(prune.prune_output)
    sizes = [math.prod(layout.shapes[layout.kernels[j].kernel]) for j in range(len(layout.prunable))]
    start = initial_sparsity(prune)
    for i in range(min(count, steps)):
        t = first_step + i
        if not updates_at(prune, t):
            continue
        sparsity = mask_rules.polynomial_sparsity_f32(t, start, float(prune.target), s.begin_step, s.end_step,
                                                      prune.power)
        for j in pruned:
            table[i, j] = mask_rules.kept_count(sizes[j], sparsity)
    return table


class HostMasks:
    """``global`` or ``random`` masks of one model, written on the host at the schedule's steps.

    Args:
        prune: the model's :class:`~widthvsprune.engines.base.PruneSpec`.
        layout: the model's own layout.
    """

    def __init__(self, prune, layout):
        self.prune, self.layout = prune, layout
        self.pruned = layout.pruned_kernels(prune.prune_output)
        self.rng = np.random.default_rng(prune.seed)

    def target(self, step):
        s = self.prune.steps
        return schedules.polynomial_sparsity(step, initial_sparsity(self.prune), float(self.prune.target),
                                             s.begin_step, s.end_step, self.prune.power)

    def update(self, step, kernels, masks):
        """New masks of the pruned kernels (lists in ``layout.prunable`` order; others are returned unchanged)."""
        chosen_k = [kernels[j] for j in self.pruned]
        chosen_m = [masks[j] for j in self.pruned]
        if self.prune.variant == "global":
            new = mask_rules.global_masks(chosen_k, chosen_m, self.target(step))
        else:
            new = mask_rules.random_masks(chosen_k, chosen_m, self.target(step), self.rng)
        out = list(masks)
        for j, m in zip(self.pruned, new):
            out[j] = m
        return out
