"""Which models of a pack share a compiled program, and in which shape.

A compiled program trains a fixed number of models of one shape. Compiling
dominates the cost of the small models a study trains (about 0.5-1 s per
program on a 2-core CPU, against a few milliseconds per model-epoch), so a
pack is split into as few shapes as possible:

- models of one family whose narrow shape embeds in a wider one
  (:func:`~widthvsprune.engines.jax.models.can_embed`) share the *template*
  shape: the element-wise largest widths of the group, rounded up to the
  width ladder (:func:`~widthvsprune.engines.jax.models.bucket`) so that
  later packs of similar widths reuse the program;
- the number of models is rounded up the same ladder; the extra slots train
  copies of the first model with learning rate 0, and are discarded;
- models that do not embed (a ``Flatten`` after a convolution of another
  width, say) get a template of their own widths.
"""

import dataclasses
from typing import List, Optional, Tuple

import numpy as np

from widthvsprune import families
from widthvsprune.engines.jax import models
from widthvsprune.pruning import kernel_masks


@dataclasses.dataclass
class Member:
    """One model of a pack, as a group trains it.

    Attributes:
        index: its position in the pack.
        spec: its :class:`~widthvsprune.engines.base.ModelSpec`.
        layout: its own :class:`~widthvsprune.engines.jax.models.Layout`.
        weights: its initial weights, ``get_weights()`` order.
        targets: the final sparsity of each prunable kernel (``None``: not pruned).
    """

    index: int
    spec: object
    layout: models.Layout
    weights: List[np.ndarray]
    targets: Optional[Tuple[float, ...]] = None


@dataclasses.dataclass
class Group:
    """Models trained by one compiled program.

    Attributes:
        key: the template's ``(family, widths, input_shape, num_classes)``.
        model: the Keras 3 template.
        layout: the template's layout.
        members: the models.
        size: model slots of the program (``len(members)`` rounded up).
    """

    key: Tuple
    model: object
    layout: models.Layout
    members: List[Member]
    size: int


class Templates:
    """Keras 3 models and layouts, built once per ``(family, widths, input_shape, num_classes)``."""

    def __init__(self, max_cached_weights=256):
        self._models = {}
        self._embeds = {}
        self._weights = {}
        self._max_weights = int(max_cached_weights)

    def get(self, family, widths, input_shape, num_classes):
        """``(model, layout)`` of a family at ``widths`` (weights irrelevant)."""
        key = (family, tuple(int(w) for w in widths), tuple(input_shape), int(num_classes))
        if key not in self._models:
            model = models.build(family, key[1], key[2], key[3])
            self._models[key] = (model, models.layout_of(model))
        return self._models[key]

    def initial_weights(self, spec, input_shape, num_classes):
        """The weights of ``spec``'s model built after seeding Keras with ``spec.seed`` (cached)."""
        key = (spec.family, tuple(int(w) for w in spec.widths), tuple(input_shape), int(num_classes), int(spec.seed))
        if key not in self._weights:
            model = models.build(spec.family, key[1], key[2], key[3], seed=spec.seed)
            self._models.setdefault(key[:4], (model, models.layout_of(model)))
            if len(self._weights) >= self._max_weights:
                self._weights.pop(next(iter(self._weights)))
            self._weights[key] = [np.array(v.value) for v in model.weights]
        return self._weights[key]

    def can_embed(self, small_key, big_key):
        pair = (small_key, big_key)
        if pair not in self._embeds:
            small, big = self.get(*small_key)[0], self.get(*big_key)[0]
            self._embeds[pair] = small_key == big_key or models.can_embed(small, big)
        return self._embeds[pair]


def member(index, spec, templates, input_shape, num_classes):
    """A :class:`Member` for ``spec``: its layout, initial weights (checked against the layout) and kernel targets.

    Raises:
        ValueError: if ``spec.initial_weights`` do not fit the model.
        Infeasible: if its allocation cannot reach the size point.
    """
    families.get_family(spec.family)  # names the registered families if unknown
    if spec.initial_weights is None:
        weights = templates.initial_weights(spec, input_shape, num_classes)
        layout = templates.get(spec.family, spec.widths, input_shape, num_classes)[1]
    else:
        layout = templates.get(spec.family, spec.widths, input_shape, num_classes)[1]
        weights = [np.asarray(w, dtype=np.float32) for w in spec.initial_weights]
        shapes = tuple(tuple(w.shape) for w in weights)
        if shapes != layout.shapes:
            raise ValueError(
                f"Expected initial_weights of shapes {list(layout.shapes)} for {spec.family} "
                f"widths={tuple(spec.widths)}. Received: initial_weights of shapes {list(shapes)}"
            )
    targets = None
    if spec.prune is not None:
        targets = kernel_masks.kernel_targets(spec.prune, models.allocation_layers(layout, weights))
    return Member(index, spec, layout, list(weights), targets)


def plan(members, templates, input_shape, num_classes, pad=True, max_models=None):
    """Splits a pack's members into :class:`Group` s (see the module doc).

    Args:
        members: the pack's :class:`Member` s.
        templates: the :class:`Templates` cache.
        input_shape, num_classes: of the data.
        pad: embed narrow models in a common template; ``False`` groups by exact widths.
        max_models: most models per group (memory): an int, a function of the
            template key, or ``None``.

    Returns:
        A list of :class:`Group`.
    """
    shape, classes = tuple(input_shape), int(num_classes)
    by_structure = {}
    for m in members:
        by_structure.setdefault((m.spec.family, len(m.spec.widths), m.layout.signature), []).append(m)
    groups = {}
    for (family, _, _), ms in by_structure.items():
        own = {tuple(int(w) for w in m.spec.widths) for m in ms}
        padded = tuple(models.bucket(max(w[k] for w in own)) for k in range(len(next(iter(own))))) if pad else None
        for m in ms:
            widths = tuple(int(w) for w in m.spec.widths)
            key = (family, widths, shape, classes)
            if padded is not None:
                big = (family, padded, shape, classes)
                if templates.can_embed(key, big):
                    key = big
            groups.setdefault(key, []).append(m)
    out = []
    for key, ms in groups.items():
        model, layout = templates.get(*key)
        limit = len(ms) if max_models is None else max_models(key) if callable(max_models) else max_models
        limit = max(1, int(limit))
        for start in range(0, len(ms), limit):
            chunk = ms[start : start + limit]
            size = models.bucket(len(chunk))
            out.append(Group(key, model, layout, chunk, size if size <= limit else len(chunk)))
    return out


def stack(group, pick, shapes_of, fill=None):
    """Stacks one array per member (and copies of the first for the extra slots) into ``(size, ...)`` arrays.

    Args:
        group: the :class:`Group`.
        pick: ``pick(member, j)``: the member's ``j``-th array.
        shapes_of: the template's shapes, one per array.
        fill: value of the extra slots (``None``: copies of the first member's).
    """
    out = []
    for j, shape in enumerate(shapes_of):
        rows = [models.embed(pick(m, j), shape) for m in group.members]
        extra = group.size - len(rows)
        rows += [rows[0] if fill is None else np.full(shape, fill, rows[0].dtype)] * extra
        out.append(np.stack(rows))
    return tuple(out)

