"""Pruning schedules of the jax engine: when masks change and how many weights each kernel keeps (NumPy only).

tfmot's ``PruneLowMagnitude`` wrapper starts its ``pruning_step`` at -1;
``UpdatePruningStep.on_train_begin`` sets it to 0 and every training call
increments it *before* asking the schedule, so the schedule sees the steps
``1, 2, ...`` of the fine-tune, and at a step ``t`` where ``PolynomialDecay``
prunes (:func:`widthvsprune.pruning.schedules.updates_masks_at`) the masks
are recomputed from the kernels as they are after ``t - 1`` optimizer
updates, then applied, then the forward pass runs.

Each prunable kernel has its own final sparsity, from the model's allocation
(:func:`widthvsprune.pruning.kernel_masks.kernel_targets`, shared with the tf_keras
engine):

- allocations decided from shapes or from the trained baseline: the compiled
  program recomputes the masks itself, as tfmot's per-layer
  ``PolynomialDecay`` would; the host only supplies, per step, how many
  weights each kernel keeps (:func:`kept_table`, from
  :func:`widthvsprune.pruning.masks.polynomial_sparsity_f32` and
  :func:`~widthvsprune.pruning.masks.kept_count`, tfmot's float32 arithmetic);
- allocations decided at every update (``global``) and random selection: the
  masks come from :class:`widthvsprune.pruning.kernel_masks.HostMasks` at the same
  steps, exactly as the tf_keras engine's ``pruning.MaskUpdater`` writes them.
"""

import math

import numpy as np

from widthvsprune.pruning import kernel_masks, schedules
from widthvsprune.pruning import masks as mask_rules


def check(prune):
    """Raises ``ValueError`` for a :class:`~widthvsprune.engines.base.PruneSpec` the engine cannot run."""
    if not 0.0 <= float(prune.target) < 1.0:
        raise ValueError(f"Expected prune.target in [0, 1). Received: target={prune.target!r}")


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


def kept_table(prune, targets, layout, first_step, count, steps):
    """Kept counts of tfmot's magnitude rule: ``(steps, prunable)`` int32, 0 where a kernel's mask does not change.

    Row ``i`` is optimizer step ``first_step + i``; rows from ``count`` on are 0.

    Args:
        prune: the model's :class:`~widthvsprune.engines.base.PruneSpec`, or ``None``.
        targets: the final sparsity of each of its prunable kernels.
        layout: the model's own :class:`~widthvsprune.engines.jax.models.Layout`.
        first_step: the step of row 0 (counted from 1).
        count: the steps of the segment to fill.
        steps: rows of the table.
    """
    table = np.zeros((steps, len(layout.prunable)), np.int32)
    if prune is None or kernel_masks.on_host(prune):
        return table
    s = prune.steps
    sizes = [math.prod(layout.shapes[layout.kernels[j].kernel]) for j in range(len(layout.prunable))]
    for i in range(min(count, steps)):
        t = first_step + i
        if not updates_at(prune, t):
            continue
        for j, target in enumerate(targets):
            if target > 0:
                first = kernel_masks.initial_sparsity(prune, target)
                sparsity = mask_rules.polynomial_sparsity_f32(t, first, float(target), s.begin_step, s.end_step,
                                                              prune.power)
                table[i, j] = mask_rules.kept_count(sizes[j], sparsity)
    return table
