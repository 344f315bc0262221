"""What a layer does to the width, for layers beyond the stock table of :mod:`.graph`: rules and their registry.

A :class:`LayerRule` says which fields of a layer's config are widths, and
what width its output has: one of those fields (``output``), or its first
input's (``passes_width``; ``tied`` fields then equal that width, such as a
transformer block's model width, which must match its residual stream).
:func:`register_layer` adds a rule for a layer class of your own; Keras
Hub's transformer blocks and embeddings have rules here (no import of
``keras_hub`` is needed to derive a family; building one imports it).

Pure: imports no framework.
"""

import dataclasses
from typing import Optional, Tuple

from widthvsprune.errors import StudyError


@dataclasses.dataclass(frozen=True)
class LayerRule:
    """How one layer class sets and passes widths.

    Attributes:
        name: the class name its config entries carry (``class_name``, or
            ``registered_name`` such as ``"keras_hub>TransformerEncoder"``).
        widths: config fields that are widths, each a knob of its own
            (``output`` among them, or not).
        output: the config field that is the output's width; ``None`` with
            ``passes_width``.
        passes_width: the output has the width of the layer's first input.
        tied: config fields equal to the first input's width (set with it).
        cls: the layer class (``None`` when registered by name), used to
            rebuild models holding the layer.
    """

    name: str
    widths: Tuple[str, ...] = ()
    output: Optional[str] = None
    passes_width: bool = False
    tied: Tuple[str, ...] = ()
    cls: Optional[type] = dataclasses.field(default=None, compare=False, repr=False)


#: Keras Hub's layers whose effect on the width is known (by their registered names).
HUB = {
    "keras_hub>TransformerEncoder": LayerRule("keras_hub>TransformerEncoder", widths=("intermediate_dim", "num_heads"),
                                              passes_width=True),
    "keras_hub>TokenAndPositionEmbedding": LayerRule("keras_hub>TokenAndPositionEmbedding",
                                                     widths=("embedding_dim",), output="embedding_dim"),
    "keras_hub>PositionEmbedding": LayerRule("keras_hub>PositionEmbedding", passes_width=True),
    "keras_hub>SinePositionEncoding": LayerRule("keras_hub>SinePositionEncoding", passes_width=True),
}

_REGISTERED = {}


def _refuse(expected, received):
    return StudyError(f"Expected {expected}. Received: {received}")


def register_layer(cls_or_name, widths=(), passes_width=False, output=None, tied=(), overwrite=False):
    """Tells :func:`~widthvsprune.family_from_model` what a layer of your own does to the width.

    Args:
        cls_or_name: the layer class, or the ``class_name`` (or
            ``registered_name``) its config entries carry. Registering the
            class lets a study rebuild models holding it in every process
            (its training processes, Ray workers) without
            ``custom_objects``.
        widths: the config fields that are widths (each becomes a knob the
            narrow arm may shrink), such as ``("units",)`` or
            ``("ff_dim", "num_heads")``. Their values must be positive integers.
        passes_width: whether the layer's output has its (first) input's
            width, as a residual block's does.
        output: the field of ``widths`` that is the output's width; by
            default the first of ``widths`` when ``passes_width`` is false.
        tied: config fields that must equal the input's width (a block's
            ``embed_dim``); they follow the width of the layer's input.
        overwrite: replace an earlier registration of the same name with
            other fields (registering the same fields again, as a study file
            loaded again does, needs no ``overwrite``).

    Returns:
        The :class:`LayerRule`.

    Raises:
        StudyError: for an inconsistent rule, or a name registered before
            (without ``overwrite``).

    Example:

    ```python
    register_layer(TransformerBlock, widths=("ff_dim", "num_heads"), passes_width=True, tied=("embed_dim",))
    register_layer(TokenAndPositionEmbedding, widths=("embed_dim",))  # its output is embed_dim wide
    ```
    """
    cls = None if isinstance(cls_or_name, str) else cls_or_name
    name = cls_or_name if cls is None else cls.__name__
    if not isinstance(name, str) or not name:
        raise _refuse("a layer class or a class name", f"cls_or_name={cls_or_name!r}")
    widths, tied = tuple(widths), tuple(tied)
    if not all(isinstance(f, str) and f for f in widths + tied):
        raise _refuse("config field names (strings)", f"widths={widths}, tied={tied}")
    if passes_width and output is not None:
        raise _refuse("either passes_width=True or an output field", f"passes_width=True, output={output!r}")
    if not passes_width:
        if tied:
            raise _refuse("tied fields only with passes_width=True (they equal the input's width)", f"tied={tied}")
        output = output if output is not None else (widths[0] if widths else None)
        if output is None:
            raise _refuse(f"a width field for the output of layer class {name!r}, or passes_width=True",
                          "widths=(), passes_width=False")
        if output not in widths:
            widths = widths + (output,)
    rule = LayerRule(name, widths, output, bool(passes_width), tied, cls)
    if name in _REGISTERED and _REGISTERED[name] != rule and not overwrite:  # (a study file loaded again: equal)
        raise _refuse("a layer class not registered yet with other widths (or overwrite=True)",
                      f"{name!r}, registered before as {_REGISTERED[name]}")
    _REGISTERED[name] = rule
    return rule


def rule_of(entry):
    """The :class:`LayerRule` of a config entry, or ``None`` for a layer without one."""
    for name in (entry.get("registered_name"), entry.get("class_name")):
        if name in _REGISTERED:
            return _REGISTERED[name]
        if name in HUB:
            return HUB[name]
    return None


def custom_objects(config):
    """``{name: class}`` of the registered classes a model config holds, for ``from_config``."""
    names = {e.get("registered_name") for e in config.get("layers", [])} | {
        e.get("class_name") for e in config.get("layers", [])}
    return {rule.name: rule.cls for name, rule in _REGISTERED.items() if name in names and rule.cls is not None}


def needs_hub(config):
    """Whether a model config holds Keras Hub layers (building it imports ``keras_hub``)."""
    return any(str(e.get("registered_name") or "").startswith("keras_hub>") for e in config.get("layers", []))
