"""Allocations: how a size point's zeros are spread over a model's prunable layers (pure NumPy).

An allocation is a function ``fn(layers, target) -> sparsities``: given the
prunable layers (their kernels' shapes and, where it needs them, their
trained values) and the sparsity of all of them together, it returns one
sparsity per layer such that the layers hold the same number of zeros as
``target`` over all of them (``sum(s_i * n_i) == target * sum(n_i)``, up to
one weight where the allocation counts whole weights). A layer is what one
tfmot pruning wrapper prunes: its kernels (two for a recurrent layer) share
one sparsity.

Registered here (:func:`register_allocation` adds a user's own):

- ``uniform`` (``layerwise``, its earlier name, still works): every layer at
  the target, tfmot's own behaviour;
- ``first_dense``: the first layer dense, the others uniform;
- ``uniform_plus`` (Gale et al. 2019): the first layer dense, the output
  layer pruned to at most 80%, the others uniform;
- ``erk`` (Evci et al. 2020): density proportional to (sum of a kernel's
  dimensions) / (product of its dimensions), capped at 1 with the excess
  given to the others, as ``rigl/sparse_utils.py`` computes it;
- ``lamp`` (Lee et al. 2021): each weight scored ``w^2`` over the sum of the
  squares of the weights of its kernel at least as large, one threshold over
  all scores; decided once, from the trained baseline the fine-tune starts
  from;
- ``global``: one magnitude threshold over all layers, decided again at each
  mask update from the current weights (the zeros then move between layers
  as the fine-tune goes);
- ``random``: the uniform allocation with the weights to remove drawn at
  random: the sanity baseline of Blalock et al. (2020), never searched.

``prune_output=False`` is a constraint every allocation honours
(:func:`allocate`): the output layer stays dense and the allocation spreads
the same number of zeros over the other layers. An allocation that cannot
reach its target raises :class:`Infeasible`; nothing is silently changed.
"""

import dataclasses
import math
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

from widthvsprune.errors import problem

#: What an allocation's result may depend on: the shapes only, the trained baseline, or the weights at each update.
WEIGHTS = ("none", "baseline", "update")
SELECTIONS = ("magnitude", "random")
#: The old names of allocations, still accepted (study files and results made before the rename).
ALIASES = {"layerwise": "uniform"}
#: How run keys spell the renamed allocations (the old names: results made before the rename keep their keys).
OLD_NAMES = {new: old for old, new in ALIASES.items()}
#: Sparsities are computed in floating point; a layer above this cannot keep a weight.
_MAX_SPARSITY = 1.0 - 1e-9
UNIFORM_PLUS_OUTPUT_MAX = 0.8


class Infeasible(ValueError):
    """An allocation cannot put the size point's zeros on the layers it may prune."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """One prunable layer as an allocation sees it.

    Attributes:
        name: the layer's name.
        shapes: the shapes of its prunable kernels (one; two for a recurrent
            layer: its kernel and recurrent kernel).
        values: the kernels' current values (same shapes), or ``None`` when
            the allocation needs none.
        first: the model's first prunable layer.
        output: the model's output layer (the last prunable one).
    """

    name: str
    shapes: Tuple[Tuple[int, ...], ...]
    values: Optional[Tuple[np.ndarray, ...]] = None
    first: bool = False
    output: bool = False

    @property
    def size(self):
        return int(sum(math.prod(s) for s in self.shapes))


@dataclasses.dataclass(frozen=True)
class Allocation:
    """A registered allocation.

    Attributes:
        name: its registry name (``pruning.allocation``, ``tuning.allocations``).
        fn: ``fn(layers, target) -> sparsities``, one per layer.
        weights: ``"none"`` (shapes only), ``"baseline"`` (decided once from
            the trained baseline's weights) or ``"update"`` (decided again at
            every mask update from the current weights).
        selection: which weights of a layer go: ``"magnitude"`` (the smallest,
            tfmot's rule) or ``"random"``.
        searchable: whether the pruned search may choose it (``random`` is a
            control, not a method).
    """

    name: str
    fn: Callable[[Sequence[Layer], float], Sequence[float]]
    weights: str = "none"
    selection: str = "magnitude"
    searchable: bool = True


_REGISTRY = {}


def register_allocation(name, fn, *, weights="none", selection="magnitude", searchable=True, overwrite=False):
    """Adds an allocation that study files and searches can name.

    Args:
        name: its name.
        fn: ``fn(layers, target) -> sparsities``: given the :class:`Layer` s
            it may prune (the output layer is left out when
            ``prune_output=False``) and their overall sparsity ``target``, one
            sparsity in ``[0, 1)`` per layer whose zeros add up to
            ``target * sum(layer.size)`` (to one weight). Raise
            :class:`Infeasible` when that cannot be done.
        weights: ``"none"``, ``"baseline"`` or ``"update"`` (see :class:`Allocation`).
        selection: ``"magnitude"`` or ``"random"`` (with ``weights="none"`` or ``"baseline"``: an allocation
            decided again at every update keeps the largest weights).
        searchable: offered to the pruned search (``tuning.allocations``'s default).
        overwrite: replace an allocation of the same name.

    Returns:
        The :class:`Allocation`.

    Raises:
        ValueError: for an unknown ``weights`` or ``selection``, ``selection="random"`` with
            ``weights="update"``, or a name that is registered already.

    Example:

    ```python
    from widthvsprune.pruning import register_allocation

    def first_light(layers, target):
        # the first layer at half the target; the other layers share the rest of the zeros
        first, rest = layers[0], layers[1:]
        zeros = target * sum(layer.size for layer in layers) - first.size * target / 2
        return [target / 2] + [zeros / sum(layer.size for layer in rest)] * len(rest)

    register_allocation("first_light", first_light)
    ```
    """
    if not callable(fn):
        raise TypeError(f"Expected a function fn(layers, target). Received: fn={fn!r}")
    for field, value, accepted in (("weights", weights, WEIGHTS), ("selection", selection, SELECTIONS)):
        if value not in accepted:
            raise ValueError(problem(field, f"one of {list(accepted)}", value))
    if weights == "update" and selection == "random":  # an allocation decided at every update selects by magnitude
        raise ValueError(problem("selection", '"magnitude" with weights="update"', selection))
    if (name in _REGISTRY or name in ALIASES) and not overwrite:
        raise ValueError(problem("name", "an allocation name that is not registered yet (or overwrite=True)", name))
    _REGISTRY[name] = Allocation(name, fn, weights, selection, bool(searchable))
    return _REGISTRY[name]


def canonical(name):
    """The registered name an allocation name means (``layerwise`` is ``uniform``)."""
    return ALIASES.get(name, name)


def get_allocation(name):
    """The registered :class:`Allocation` called ``name`` (or by an old name).

    Raises:
        ValueError: naming the registered allocations if ``name`` is unknown.
    """
    allocation = _REGISTRY.get(canonical(name))
    if allocation is None:
        raise ValueError(problem("allocation", f"one of {allocation_names()}", name))
    return allocation


def allocation_names(searchable=None):
    """The registered names (``searchable=True``: those the pruned search may choose)."""
    return [n for n, a in _REGISTRY.items() if searchable is None or a.searchable == searchable]


def accepted_names():
    """Every name a study may give: registered names and old ones."""
    return allocation_names() + list(ALIASES)


def allocate(name, layers, target, prune_output=True):
    """The sparsity of each layer: allocation ``name`` at overall sparsity ``target``.

    Args:
        name: a registered allocation (or an old name of one).
        layers: every prunable :class:`Layer` of the model, in order (the last
            is the output layer); ``first`` and ``output`` are set here.
        target: the size point: the sparsity of all the layers together.
        prune_output: ``False`` keeps the output layer dense; the allocation
            then spreads the same zeros over the others.

    Returns:
        A tuple of sparsities, one per layer.

    Raises:
        Infeasible: if the allocation cannot place that many zeros.
    """
    allocation = get_allocation(name)
    layers = roles(layers)
    if not layers or float(target) <= 0.0:
        return (0.0,) * len(layers)  # no zeros to place, whichever allocation
    free, needed = free_layers(layers, target, prune_output)
    sparsities = [float(s) for s in allocation.fn(free, needed)]
    _check(allocation.name, free, needed, sparsities)
    return tuple(sparsities) + (0.0,) * (len(layers) - len(free))


def infeasibility(name, layers, target, prune_output=True):
    """Why allocation ``name`` cannot reach ``target`` on ``layers`` (``""`` when it can).

    An allocation that needs the weights is judged on the output layer's
    constraint alone (it places its zeros wherever the weights say).
    """
    allocation = get_allocation(name)
    try:
        if allocation.weights == "none":
            allocate(name, layers, target, prune_output)
        else:
            free_layers(roles(layers), target, prune_output)
    except Infeasible as error:
        return str(error)
    return ""


def roles(layers):
    """``layers`` with ``first`` and ``output`` set by position."""
    return [dataclasses.replace(layer, first=i == 0, output=i == len(layers) - 1) for i, layer in enumerate(layers)]


def free_layers(layers, target, prune_output=True):
    """``(free, needed)``: the layers an allocation may prune and the sparsity they need to hold every zero.

    With ``prune_output=False`` the output layer (the last) is left out and
    the others take its share of the zeros.

    Raises:
        Infeasible: if the others cannot hold that many zeros.
    """
    target = float(target)
    if prune_output or len(layers) < 2:
        return list(layers), target
    free = list(layers[:-1])
    total, held = sum(layer.size for layer in layers), sum(layer.size for layer in free)
    needed = target * total / held
    if needed > _MAX_SPARSITY:
        raise Infeasible(f"with the output layer dense the other layers would need {needed:.1%} sparsity")
    return free, needed


def _check(name, layers, target, sparsities):
    if len(sparsities) != len(layers):
        raise ValueError(f"Expected allocation {name!r} to return {len(layers)} sparsities, one per layer. "
                         f"Received: {len(sparsities)}")
    bad = [s for s in sparsities if not (0.0 <= s <= _MAX_SPARSITY)]
    if bad:
        raise Infeasible(f"{name} would need a layer at {max(bad):.1%} sparsity")
    zeros = sum(s * layer.size for s, layer in zip(sparsities, layers))
    wanted = target * sum(layer.size for layer in layers)
    if abs(zeros - wanted) > 1.0 + 1e-6 * wanted:
        raise ValueError(f"Expected allocation {name!r} to place {wanted:.1f} zeros. Received: sparsities that "
                         f"place {zeros:.1f}")


# --------------------------------------------------------------------------
# The allocations.


def uniform(layers, target):
    """Every layer at ``target`` (tfmot's ``prune_low_magnitude`` on a whole model)."""
    return [target] * len(layers)


def _uniform_except(layers, target, fixed):
    """``fixed`` (``index -> sparsity``) as given, every other layer at the sparsity that holds the rest."""
    total = sum(layer.size for layer in layers)
    rest = [i for i in range(len(layers)) if i not in fixed]
    zeros = target * total - sum(s * layers[i].size for i, s in fixed.items())
    if not rest:
        if zeros > 0.5:
            raise Infeasible("no layer is left to prune")
        return [fixed[i] for i in range(len(layers))]
    share = zeros / sum(layers[i].size for i in rest)
    if share > _MAX_SPARSITY:
        raise Infeasible(f"the layers left to prune would need {share:.1%} sparsity")
    return [fixed.get(i, share) for i in range(len(layers))]


def first_dense(layers, target):
    """The first layer dense, every other layer at the sparsity that holds the zeros."""
    return _uniform_except(layers, target, {i: 0.0 for i, layer in enumerate(layers) if layer.first})


def uniform_plus(layers, target):
    """Gale et al. (2019): the first layer dense, the output layer at most 80% sparse, the rest uniform."""
    fixed = {i: 0.0 for i, layer in enumerate(layers) if layer.first}
    out = [i for i, layer in enumerate(layers) if layer.output and i not in fixed]
    sparsities = _uniform_except(layers, target, fixed)
    if out and sparsities[out[0]] > UNIFORM_PLUS_OUTPUT_MAX:
        sparsities = _uniform_except(layers, target, {**fixed, out[0]: UNIFORM_PLUS_OUTPUT_MAX})
    return sparsities


def erk_scores(layer):
    """A layer's Erdos-Renyi-Kernel score: (sum of dims) / (product of dims), size-weighted over its kernels."""
    sizes = [math.prod(s) for s in layer.shapes]
    return sum(n * sum(s) / n for n, s in zip(sizes, layer.shapes)) / sum(sizes)


def erk(layers, target):
    """Evci et al. (2020): density ``eps * score`` with one ``eps`` for every layer, capped at 1.

    As ``rigl/sparse_utils.py``: ``eps`` is solved so that the layers keep
    ``(1 - target)`` of their weights; a layer whose density would exceed 1
    is made dense, and ``eps`` is solved again for the others.
    """
    scores = [erk_scores(layer) for layer in layers]
    sizes = [layer.size for layer in layers]
    dense = set()
    while True:
        free = [i for i in range(len(layers)) if i not in dense]
        if not free:
            raise Infeasible("every layer would be dense")
        kept = (1.0 - target) * sum(sizes) - sum(sizes[i] for i in dense)
        eps = kept / sum(scores[i] * sizes[i] for i in free)
        highest = max(scores[i] for i in free)
        if eps * highest <= 1.0:
            break
        dense |= {i for i in free if scores[i] == highest}
    return [0.0 if i in dense else 1.0 - eps * scores[i] for i in range(len(layers))]


def lamp_scores(kernel):
    """LAMP scores of one kernel: ``w_i^2 / sum of w_j^2 over the weights at least as large`` (ties by position)."""
    squares = np.square(np.asarray(kernel, dtype=np.float64)).ravel()
    order = np.argsort(squares, kind="stable")
    ascending = squares[order]
    # The sum of every square from this one up: the total minus those before it.
    tail = ascending.sum() - np.concatenate([[0.0], np.cumsum(ascending)[:-1]])
    scores = np.empty_like(squares)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores[order] = np.where(tail > 0, ascending / tail, 0.0)
    return scores


def lamp(layers, target):
    """Lee et al. (2021): the ``round((1 - target) * n)`` highest LAMP scores over all layers survive.

    Needs the layers' values (the trained baseline's). Within a kernel the
    scores order as the magnitudes do, so a layer's survivors are its largest
    weights: the count per layer is all magnitude pruning needs.
    """
    _needs_values("lamp", layers)
    scores = [np.concatenate([lamp_scores(v) for v in layer.values]) for layer in layers]
    survive = int(round((1.0 - target) * sum(layer.size for layer in layers)))
    return _survivors_to_sparsities(layers, scores, survive)


def global_magnitude(layers, target):
    """One magnitude threshold over every layer: the ``round(target * n)`` smallest weights go (ties by position)."""
    _needs_values("global", layers)
    scores = [np.concatenate([np.abs(np.asarray(v)).ravel() for v in layer.values]) for layer in layers]
    zeros = int(round(target * sum(layer.size for layer in layers)))
    return _survivors_to_sparsities(layers, scores, sum(layer.size for layer in layers) - zeros)


def _survivors_to_sparsities(layers, scores, survive):
    """Per layer, the share of its weights outside the ``survive`` best scores (ties: the later position goes)."""
    flat = np.concatenate(scores)
    order = np.argsort(flat, kind="stable")  # ascending; the first n - survive go
    gone = np.zeros(flat.size, dtype=bool)
    gone[order[: flat.size - survive]] = True
    out, start = [], 0
    for layer in layers:
        out.append(float(gone[start : start + layer.size].sum()) / layer.size)
        start += layer.size
    return out


def _needs_values(name, layers):
    if any(layer.values is None for layer in layers):
        raise ValueError(f"Expected the layers' values for allocation {name!r}. Received: layers without values")


register_allocation("uniform", uniform)
register_allocation("first_dense", first_dense)
register_allocation("uniform_plus", uniform_plus)
register_allocation("erk", erk)
register_allocation("lamp", lamp, weights="baseline")
register_allocation("global", global_magnitude, weights="update")
register_allocation("random", uniform, selection="random", searchable=False)

#: The allocations a pruned search chooses from when ``Tuning.allocations`` is ``None``, version 1 (releases up
#: to 0.3: every searchable allocation registered here). Search keys hash the set, so it is fixed: an allocation
#: registered later (by a study file or a release) joins a search only where ``Tuning.allocations`` names it,
#: and a release that changes the default set adds ``DEFAULT_ALLOCATIONS_V2``.
DEFAULT_ALLOCATIONS_V1 = ("uniform", "first_dense", "uniform_plus", "erk", "lamp", "global")
#: The default set of this release.
DEFAULT_ALLOCATIONS = DEFAULT_ALLOCATIONS_V1
