"""Reading a Keras model's config: which Keras built it, its class and config, and its layer graph.

Pure apart from :func:`model_config` (which asks the model for its config)
and :func:`output_shapes` (which reads a built model's shapes): imports no
framework. :mod:`.graph` plans the widths on what these return.
"""

import contextlib
import copy
import dataclasses
import sys
from typing import Tuple

from widthvsprune.errors import StudyError
from widthvsprune.quiet import native_output_hidden

#: How each :attr:`Family.keras` value is called in messages, and the engine that trains its models.
KERAS_NAMES = {"3": "Keras 3", "2": "tf_keras (Keras 2)"}
ENGINES = {"3": "jax", "2": "tf_keras"}
MODELS = frozenset({"Sequential", "Functional", "Model"})


def refuse(expected, received):
    """A one-line :class:`~widthvsprune.StudyError` in the Keras style: ``Expected ... Received: ...``."""
    return StudyError(f"Expected {expected}. Received: {received}")


@dataclasses.dataclass(frozen=True)
class Node:
    """One layer of a model's config: its name, class, config entry and the layers feeding it."""

    name: str
    kind: str
    entry: dict
    inputs: Tuple[str, ...]


def keras_major(module_or_model):
    """``"3"`` for Keras 3, ``"2"`` for tf_keras (or Keras 2): from a Keras module or a model.

    Example:

    >>> import keras
    >>> keras_major(keras)
    '3'
    """
    module = module_or_model
    if not hasattr(module, "__version__"):
        module = sys.modules.get(type(module_or_model).__module__.split(".")[0])
    version = str(getattr(module, "__version__", ""))
    return "3" if version.startswith("3") else "2"


def _label(model):
    return f"model={getattr(model, 'name', model)!r} (of type {type(model).__name__})"


def model_config(model):
    """``(class_name, config)`` of a built Sequential or functional model.

    Raises:
        StudyError: for anything else (a subclassed model, an unbuilt one, not a model).
    """
    if not hasattr(model, "get_config") or not hasattr(model, "layers"):
        raise refuse("a built Keras model (Sequential or functional)", _label(model))
    kind = type(model).__name__
    if kind not in ("Sequential", "Functional"):
        raise refuse("a Sequential or functional Keras model: a subclassed model has no config to rebuild it "
                     "from at other widths (tfmot cannot wrap one either)", _label(model))
    if not getattr(model, "built", False) or not getattr(model, "inputs", None):
        raise refuse("a built model: start it with keras.Input(shape) or call build(input_shape)",
                     f"{_label(model)}, not built")
    with native_output_hidden(), serializing(model):
        return kind, copy.deepcopy(model.get_config())


def serializing(model):
    """The context in which to serialize ``model``'s config: a Keras 3 model's without importing TensorFlow."""
    if keras_major(model) != "3":
        return contextlib.nullcontext()
    from widthvsprune.adapters import keras as keras_adapter

    return keras_adapter.tensorflow_unimported()


def _histories(obj):
    """The ``(layer, node, tensor)`` references in a functional config's inbound nodes (both formats)."""
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            name, node, tensor = obj["config"]["keras_history"]
            return [(name, int(node), int(tensor))]
        return [h for value in obj.values() for h in _histories(value)]
    if isinstance(obj, (list, tuple)):
        if len(obj) >= 3 and isinstance(obj[0], str) and all(isinstance(x, int) for x in obj[1:3]):
            return [(obj[0], int(obj[1]), int(obj[2]))]
        return [h for value in obj for h in _histories(value)]
    return []


def _refs(value):
    """``input_layers`` / ``output_layers``: one ``[name, 0, 0]`` or a list of them."""
    if value and isinstance(value[0], str):
        value = [value]
    return [ref[0] for ref in value]


def layer_graph(kind, config):
    """The model's layers as :class:`Node` s in config order, with its input and output layer names.

    Raises:
        StudyError: for a nested model, a shared layer, a layer output other
            than the first, or a model with several inputs or outputs.
    """
    entries = config.get("layers", [])
    for entry in entries:
        if entry["class_name"] in MODELS:
            raise refuse("layers, not a model nested in the model",
                         f"layer {entry['config'].get('name')!r} of type {entry['class_name']}")
    if kind == "Sequential":
        if not entries or entries[0]["class_name"] != "InputLayer":
            raise refuse("a Sequential model that starts with keras.Input(shape)", f"model={config.get('name')!r}")
        names = [e["config"]["name"] for e in entries]
        nodes = [Node(n, e["class_name"], e, tuple(names[i - 1:i])) for i, (n, e) in enumerate(zip(names, entries))]
        return nodes, names[0], names[-1]
    nodes = []
    for entry in entries:
        inbound = entry.get("inbound_nodes") or []
        if len(inbound) > 1:
            raise refuse("each layer called once (a shared layer ties its inputs' widths)",
                         f"layer {entry['name']!r} called {len(inbound)} times")
        inputs = []
        for name, node, tensor in _histories(inbound):
            if node or tensor:
                raise refuse("layers with one output, each called once",
                             f"layer {entry['name']!r} reads output {tensor} of call {node} of layer {name!r}")
            inputs.append(name)
        nodes.append(Node(entry["name"], entry["class_name"], entry, tuple(inputs)))
    ins, outs = _refs(config["input_layers"]), _refs(config["output_layers"])
    if len(ins) != 1 or len(outs) != 1:
        raise refuse("a model with one input and one output", f"inputs={ins}, outputs={outs}")
    return nodes, ins[0], outs[0]


def output_shapes(model, nodes):
    """``{layer name: output shape}`` of a built model, batch axis included."""
    shapes = {nodes[0].name: tuple(model.inputs[0].shape)} if type(model).__name__ == "Sequential" else {}
    for layer in model.layers:
        shapes[layer.name] = tuple(None if d is None else int(d) for d in layer.output.shape)
    return shapes
