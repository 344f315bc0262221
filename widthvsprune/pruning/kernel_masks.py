"""What an engine needs to prune one model: per-kernel targets, and the masks written on the host (NumPy).

Both engines call these, so a model is pruned the same way whichever
trains it:

- :func:`kernel_targets` turns a :class:`~widthvsprune.engines.base.PruneSpec`
  (a size point, an allocation, the output layer's treatment) and the
  model's prunable :class:`~widthvsprune.pruning.allocations.Layer` s into one
  final sparsity per prunable kernel. Allocations that need no weights or
  the trained baseline's (``lamp``, from the weights the fine-tune starts
  from) are decided here once; the engines then prune each kernel towards its
  target on tfmot's ``PolynomialDecay`` schedule with tfmot's magnitude rule.
- :class:`HostMasks` writes the masks that tfmot's per-layer rule cannot:
  an allocation decided again at every mask update (``global``: one
  threshold over the current weights), and random selection (``random``, and
  explicit per-kernel targets such as a sparse-from-scratch model's fixed
  mask), at the steps ``PolynomialDecay`` would update.
"""

import dataclasses

import numpy as np

from widthvsprune.pruning import allocations, masks, schedules


def _spans(layers):
    """``[(first kernel, kernels)]`` of each layer: a model's prunable kernels are its layers' kernels in order."""
    out, start = [], 0
    for layer in layers:
        out.append((start, len(layer.shapes)))
        start += len(layer.shapes)
    return out


def expand(layer_values, layers):
    """One value per layer as one value per prunable kernel (the kernels of a layer share it)."""
    return tuple(float(v) for v, layer in zip(layer_values, layers) for _ in layer.shapes)


def on_host(spec):
    """Whether the model's masks are written on the host (:class:`HostMasks`) rather than by tfmot's rule."""
    if spec.targets is not None:
        return True
    allocation = allocations.get_allocation(spec.allocation)
    return allocation.weights == "update" or allocation.selection == "random"


def kernel_targets(spec, layers):
    """The final sparsity of every prunable kernel of a model (0: the kernel is never masked).

    Args:
        spec: the model's :class:`~widthvsprune.engines.base.PruneSpec`.
        layers: its prunable :class:`~widthvsprune.pruning.allocations.Layer` s,
            in order, with ``values`` (the initial weights) where the
            allocation uses the trained baseline.

    Raises:
        Infeasible: if the allocation cannot reach the size point.
    """
    if spec.targets is not None:
        return tuple(float(t) for t in spec.targets)
    allocation = allocations.get_allocation(spec.allocation)
    if allocation.weights == "update":  # decided at every update; these are the layers that take part
        free, needed = allocations.free_layers(layers, spec.target, spec.prune_output)
        return expand([needed] * len(free) + [0.0] * (len(layers) - len(free)), layers)
    return expand(allocations.allocate(spec.allocation, layers, spec.target, spec.prune_output), layers)


def initial_sparsity(spec, target):
    """The schedule's first sparsity for a kernel whose final sparsity is ``target`` (never above it)."""
    return min(float(spec.initial_sparsity), float(target))


class HostMasks:
    """The masks of one model written on the host at its schedule's update steps.

    Args:
        spec: the model's :class:`~widthvsprune.engines.base.PruneSpec`
            (:func:`on_host` is true for it).
        layers: its prunable layers (shapes only; values come with each update).
    """

    def __init__(self, spec, layers):
        self.spec, self.layers = spec, allocations.roles(list(layers))
        self.spans = _spans(self.layers)
        self.targets = kernel_targets(spec, self.layers)
        self.allocation = None if spec.targets is not None else allocations.get_allocation(spec.allocation)
        self.reallocate = self.allocation is not None and self.allocation.weights == "update"
        self.rng = np.random.default_rng(spec.seed)

    def updates_at(self, step):
        s = self.spec.steps
        return schedules.updates_masks_at(step, s.begin_step, s.end_step, s.frequency)

    def _target(self, step, final):
        s = self.spec.steps
        return schedules.polynomial_sparsity(step, initial_sparsity(self.spec, final), float(final), s.begin_step,
                                             s.end_step, self.spec.power)

    def update(self, step, kernels, current):
        """New masks of every prunable kernel (lists in model order) at ``step``; kernels not pruned keep theirs."""
        out = [np.asarray(m) for m in current]
        if self.reallocate:
            free, needed = allocations.free_layers(self.layers, self.spec.target, self.spec.prune_output)
            values = [tuple(np.asarray(kernels[j]) * out[j] for j in range(a, a + n)) for a, n in self.spans]
            free = [dataclasses.replace(layer, values=values[i]) for i, layer in enumerate(free)]
            sparsities = self.allocation.fn(free, self._target(step, needed))
            for (a, n), layer, s in zip(self.spans, free, sparsities):
                zeros = int(round(float(s) * layer.size))
                out[a : a + n] = masks.zero_smallest(kernels[a : a + n], out[a : a + n], zeros)
            return out
        for j, final in enumerate(self.targets):
            if final > 0:
                out[j] = masks.random_masks([kernels[j]], [out[j]], self._target(step, final), self.rng)[0]
        return out
