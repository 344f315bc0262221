"""Families derived from a built Keras model: its hidden layers' units and filters become the widths.

:func:`family_from_model` reads a Sequential or functional model's config
(``get_config()``) and finds its width knobs: the ``units`` / ``filters``
(``output_dim`` of an ``Embedding``) of its hidden layers. Layers whose
outputs meet in an element-wise merge (``Add``, ``Subtract``, ``Multiply``,
``Average``, ``Maximum``, ``Minimum``: a residual connection) must keep equal
widths, and a layer that passes its input's width through (normalization,
activations, dropout, pooling, depthwise convolutions, a ``Reshape`` that
keeps the last axis) carries that width on, so tied layers share one knob.
``Concatenate`` along the last axis adds its inputs' widths and ties
nothing. The layers producing the model's output take the number of
classes, and the input layer takes the study's input shape.

The family's builder substitutes widths, input shape and number of classes
into a copy of the config and rebuilds the model with the Keras it is given
(``Sequential.from_config`` / ``Model.from_config``); every other setting
(kernel sizes, activations, initializers, regularizers) is the model's own.

What crosses over between Keras versions (tf_keras 2.21 and Keras 3.15,
found by rebuilding each one's configs and ``.keras`` files with the other):

- a Keras 3 config does not load into tf_keras: its ``InputLayer`` has
  ``batch_shape``, not ``batch_input_shape``, its dtype policies are
  serialized objects, and its layers have settings tf_keras does not know
  (``quantization_config``, initializers' ``input_axes``);
- a tf_keras config mostly loads into Keras 3 (Keras 3 reads tf_keras's
  inbound nodes), but not always: a ``BatchNormalization`` saved by tf_keras
  has ``axis=[3]``, which Keras 3 rejects, and a tf_keras functional
  ``.keras`` file names classes of the ``tf_keras`` package.

So a derived family builds only with the Keras of its model
(:attr:`Family.keras`): ``"3"`` for a Keras 3 model, from any backend (the
config is backend-independent), which trains on the ``jax`` engine; ``"2"``
for a tf_keras model, which trains on the ``tf_keras`` engine with tfmot.

Only :func:`family_from_file` imports a Keras (the one that saved the file),
when it is called.
"""

import copy
import dataclasses
import importlib
import json
import os
import pathlib
import sys
import zipfile
from typing import Tuple

from widthvsprune import families
from widthvsprune.errors import StudyError

#: Layers whose output width is a knob, and the config key holding it.
PRODUCERS = {
    "Dense": "units",
    "Conv1D": "filters", "Conv2D": "filters", "Conv3D": "filters",
    "Conv1DTranspose": "filters", "Conv2DTranspose": "filters", "Conv3DTranspose": "filters",
    "SeparableConv1D": "filters", "SeparableConv2D": "filters",
    "SimpleRNN": "units", "GRU": "units", "LSTM": "units",
    "Embedding": "output_dim",
}

#: Layers whose output has their input's width (one input, the last axis kept).
PASS_THROUGH = frozenset({
    "BatchNormalization", "LayerNormalization", "UnitNormalization",
    "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax", "ThresholdedReLU",
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "Masking", "Identity", "RepeatVector",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D",
    "UpSampling1D", "UpSampling2D", "UpSampling3D",
    "DepthwiseConv1D", "DepthwiseConv2D",
})

#: Element-wise merges: their inputs share one width.
MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"})

#: Layers handled by a rule of their own (see :func:`plan_widths`).
SPECIAL = frozenset({"InputLayer", "Flatten", "Reshape", "Permute", "Concatenate"})

KNOWN = frozenset(PRODUCERS) | PASS_THROUGH | MERGES | SPECIAL
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


@dataclasses.dataclass(frozen=True)
class WidthPlan:
    """Where the widths go in a model's config.

    Attributes:
        knobs: for each width knob, in model order, the layers whose width it sets.
        default_widths: the model's own width for each knob.
        input_sites: layers whose width is tied to the input's last axis.
        output_sites: layers whose width is the number of classes.
        softmax: layers whose softmax on the output is replaced by a linear activation.
    """

    knobs: Tuple[Tuple[str, ...], ...]
    default_widths: Tuple[int, ...]
    input_sites: Tuple[str, ...]
    output_sites: Tuple[str, ...]
    softmax: Tuple[str, ...] = ()


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
    return kind, copy.deepcopy(model.get_config())


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


def graph(kind, config):
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


class _Groups:
    """Union-find over width groups; each group remembers its layers and whether the input is in it."""

    def __init__(self):
        self.parent, self.sites, self.input = [], [], []

    def new(self, site=None, is_input=False):
        self.parent.append(len(self.parent))
        self.sites.append([site] if site else [])
        self.input.append(is_input)
        return len(self.parent) - 1

    def find(self, g):
        while self.parent[g] != g:
            self.parent[g] = self.parent[self.parent[g]]
            g = self.parent[g]
        return g

    def union(self, a, b):
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[b] = a
            self.sites[a] += self.sites[b]
            self.input[a] = self.input[a] or self.input[b]
        return a


def _layer(node):
    return f"layer {node.name!r} of type {node.kind}"


def _check_settings(node):
    """Settings that put the width elsewhere than the last axis, or tie it to something else."""
    config = node.entry["config"]
    if config.get("data_format") == "channels_first":
        raise refuse("data_format='channels_last' (widths are the last axis)",
                     f"data_format='channels_first' in {_layer(node)}")
    if config.get("groups", 1) != 1:
        raise refuse("convolutions with groups=1 (a grouped convolution ties its widths to its groups)",
                     f"groups={config['groups']} in {_layer(node)}")
    if config.get("return_state"):
        raise refuse("recurrent layers with return_state=False (one output per layer)", _layer(node))
    if node.kind.startswith("DepthwiseConv") and config.get("depth_multiplier", 1) != 1:
        raise refuse("depthwise convolutions with depth_multiplier=1 (which keep their input's width)",
                     f"depth_multiplier={config['depth_multiplier']} in {_layer(node)}")
    if node.kind not in KNOWN:
        raise refuse("layers whose effect on the width is known (Dense, convolutions, recurrent layers, "
                     "normalization, activations, dropout, pooling, reshapes, merges)", _layer(node))


def _keeps_width(node, in_shape, out_shape):
    """Whether a layer of a special kind passes its input's last axis through unchanged."""
    config = node.entry["config"]
    if node.kind == "Flatten":
        return len(in_shape) == 2
    if node.kind == "Permute":
        dims = tuple(config["dims"])
        return dims[-1] == len(dims)
    if node.kind == "Reshape":
        return out_shape[-1] == in_shape[-1] and -1 != tuple(config["target_shape"])[-1]
    return True


class _Tracer:
    """Follows each layer's output width through the graph: a width group, or a size derived from groups.

    ``state[name]`` is ``("group", g)`` when the layer's last axis is the
    width of group ``g``, or ``("derived", groups)`` for a flattened or
    concatenated size that depends on those groups' widths.
    """

    def __init__(self, shapes):
        self.shapes, self.groups, self.state = shapes, _Groups(), {}
        self.fixed = []  # (node, groups): Reshapes whose target_shape must not depend on a changing width

    def depends(self, name):
        kind, value = self.state[name]
        return frozenset({value}) if kind == "group" else value

    def visit(self, node):
        missing = [n for n in node.inputs if n not in self.state]
        if missing:
            raise refuse("layers in an order where each input comes first", f"{_layer(node)} reads {missing}")
        if node.kind == "InputLayer":
            self.state[node.name] = ("group", self.groups.new(is_input=True))
            return
        _check_settings(node)
        if node.kind in PRODUCERS:
            self.state[node.name] = ("group", self.groups.new(site=node.name))
        elif node.kind in MERGES or (node.kind == "Concatenate"
                                     and not _concatenates_last(node, self.shapes[node.name])):
            self.merge(node)
        elif node.kind == "Concatenate":
            self.state[node.name] = ("derived", frozenset().union(*(self.depends(n) for n in node.inputs)))
        else:
            self.single(node)

    def merge(self, node):
        """Inputs meeting element-wise (or concatenated along another axis) share one width."""
        derived = [n for n in node.inputs if self.state[n][0] != "group"]
        if derived:
            raise refuse("merged inputs whose widths are layers' units or filters",
                         f"{_layer(node)} merges {derived[0]!r}, whose width is derived (flattened or concatenated)")
        widths = [self.shapes[n][-1] for n in node.inputs]
        if len(set(widths)) != 1:
            raise refuse("merged inputs of one width", f"{_layer(node)} merges widths {widths}")
        g = self.state[node.inputs[0]][1]
        for name in node.inputs[1:]:
            g = self.groups.union(g, self.state[name][1])
        self.state[node.name] = ("group", g)

    def single(self, node):
        """A one-input layer: passes its input's width on, or derives a size from it."""
        if len(node.inputs) != 1:
            raise refuse("one input", f"{_layer(node)} with inputs {list(node.inputs)}")
        (source,) = node.inputs
        in_shape, out_shape = self.shapes[source], self.shapes[node.name]
        reshape = node.kind == "Reshape"
        if not _keeps_width(node, in_shape, out_shape):
            if reshape and tuple(node.entry["config"]["target_shape"]) != (-1,):
                self.fixed.append((node, self.depends(source)))
            self.state[node.name] = ("derived", self.depends(source))
            return
        if out_shape[-1] != in_shape[-1]:
            raise refuse("a layer that keeps its input's width",
                         f"{_layer(node)} maps width {in_shape[-1]} to {out_shape[-1]}")
        if reshape and self.state[source][0] == "group":  # its target_shape's last entry follows the width
            self.groups.sites[self.groups.find(self.state[source][1])].append(node.name)
        elif reshape:
            self.fixed.append((node, self.depends(source)))
        self.state[node.name] = self.state[source]


def plan_widths(nodes, shapes, input_name, output_name):
    """Finds the width knobs of a model's layer graph (see the module doc).

    Args:
        nodes: the model's :class:`Node` s in config order (:func:`graph`).
        shapes: ``{layer name: output shape}`` (:func:`output_shapes`).
        input_name: the input layer's name.
        output_name: the name of the layer producing the model's output.

    Returns:
        A :class:`WidthPlan`.

    Raises:
        StudyError: naming the layer, when the widths cannot be derived.
    """
    tracer = _Tracer(shapes)
    for node in nodes:
        tracer.visit(node)
    groups = tracer.groups
    if tracer.state[output_name][0] != "group":
        raise refuse("a model whose output width is a layer's units or filters (it becomes the number of classes)",
                     f"the output comes from {_layer(_node(nodes, output_name))}")
    out_group = groups.find(tracer.state[output_name][1])
    if groups.input[out_group]:
        raise refuse("an output whose width is not tied to the input's",
                     f"the output of layer {output_name!r} is merged with the input")
    order = {n.name: i for i, n in enumerate(nodes)}
    roots = sorted({groups.find(g) for g in range(len(groups.parent))},
                   key=lambda g: min((order[s] for s in groups.sites[g]), default=-1))
    knobs = [g for g in roots if g != out_group and not groups.input[g] and groups.sites[g]]
    for node, depends in tracer.fixed:
        if {groups.find(g) for g in depends} & (set(knobs) | {out_group}):
            raise refuse("a Reshape that keeps the last axis, or target_shape=(-1,), after a layer whose width "
                         "changes", f"{_layer(node)} with target_shape={tuple(node.entry['config']['target_shape'])}")
    if not knobs:
        raise refuse("a hidden layer with units or filters to shrink (the output's units are the number of "
                     "classes)", f"model with no hidden width; its output layer is {output_name!r}")
    sites = [tuple(sorted(groups.sites[g], key=order.get)) for g in knobs]
    return WidthPlan(
        knobs=tuple(sites),
        default_widths=tuple(_group_width(nodes, names, shapes) for names in sites),
        input_sites=tuple(s for g in roots if groups.input[g] for s in sorted(groups.sites[g], key=order.get)),
        output_sites=tuple(sorted(groups.sites[out_group], key=order.get)),
        softmax=_output_softmax(nodes, output_name),
    )


def _group_width(nodes, names, shapes):
    """The one width of a group of tied layers."""
    values = {_width(_node(nodes, n), shapes) for n in names}
    if len(values) != 1:
        raise refuse("tied layers of one width", f"layers {list(names)} with widths {sorted(values)}")
    return values.pop()


def _concatenates_last(node, out_shape):
    axis = int(node.entry["config"].get("axis", -1))
    return axis % len(out_shape) == len(out_shape) - 1


def _node(nodes, name):
    return next(n for n in nodes if n.name == name)


def _width(node, shapes):
    if node.kind in PRODUCERS:
        return int(node.entry["config"][PRODUCERS[node.kind]])
    return int(shapes[node.name][-1])


def _output_softmax(nodes, output_name):
    """Layers on the output's path (back to the output layer) whose activation is a softmax."""
    found, node = [], _node(nodes, output_name)
    while True:
        config = node.entry["config"]
        if node.kind == "Softmax" or config.get("activation") == "softmax":
            found.append(node.name)
        if node.kind in PRODUCERS or node.kind not in PASS_THROUGH or len(node.inputs) != 1:
            return tuple(found)
        node = _node(nodes, node.inputs[0])


def _set_width(entry, width):
    config = entry["config"]
    if entry["class_name"] in PRODUCERS:
        config[PRODUCERS[entry["class_name"]]] = int(width)
    else:  # a Reshape keeping the last axis
        config["target_shape"] = list(config["target_shape"][:-1]) + [int(width)]


def _linear(entry):
    """The entry of a softmax on the output, made linear (widthvsprune trains on logits)."""
    if entry["class_name"] == "Softmax":
        config = entry["config"]
        entry["class_name"] = "Activation"
        entry["config"] = {k: config[k] for k in ("name", "trainable", "dtype") if k in config}
    entry["config"]["activation"] = "linear"


def configure(config, plan, widths, input_shape, num_classes):
    """A copy of ``config`` with the widths, input shape and number of classes put in.

    Args:
        config: the model's ``get_config()`` (its softmax on the output already linear).
        plan: its :class:`WidthPlan`.
        widths: one integer per knob.
        input_shape: one example's shape, without the batch axis.
        num_classes: the output layers' width.

    Returns:
        A new config dict; ``build_config`` entries (shapes of the model as it
        was built) are removed, so that every layer builds from its new input.
    """
    config = copy.deepcopy(config)
    entries = {e.get("name", e["config"].get("name")): e for e in config["layers"]}
    for names, width in zip(plan.knobs, widths):
        for name in names:
            _set_width(entries[name], width)
    for name in plan.input_sites:
        _set_width(entries[name], input_shape[-1])
    for name in plan.output_sites:
        _set_width(entries[name], num_classes)
    batch_shape = [None] + [int(d) for d in input_shape]
    for entry in config["layers"]:
        entry.pop("build_config", None)
        for key in ("batch_shape", "batch_input_shape"):  # Keras 3's InputLayer, tf_keras's
            if key in entry["config"]:
                entry["config"][key] = list(batch_shape)
    if "build_input_shape" in config:
        config["build_input_shape"] = list(batch_shape)
    return config


def _builder(name, kind, config, plan, major, model_input):
    """The family's ``build(widths, input_shape, num_classes, keras)``; ``model_input``: the model's input shape."""

    def build(widths, input_shape, num_classes, keras):
        if keras_major(keras) != major:
            raise refuse(f"{KERAS_NAMES[major]} to build family {name!r}, derived from a {KERAS_NAMES[major]} model "
                         f"(train it with engine {ENGINES[major]!r})",
                         f"keras={keras.__name__} {getattr(keras, '__version__', '')}")
        widths = tuple(int(w) for w in widths)
        if len(widths) != len(plan.knobs) or min(widths) < 1:
            raise refuse(f"{len(plan.knobs)} width(s) >= 1 for family {name!r}", f"widths={widths}")
        if len(input_shape) != len(model_input):
            raise refuse(f"an input shape of rank {len(model_input)} for family {name!r}, like its model's input "
                         f"{model_input}", f"input_shape={tuple(input_shape)}")
        new = configure(config, plan, widths, tuple(input_shape), int(num_classes))
        cls = keras.Sequential if kind == "Sequential" else keras.Model
        return cls.from_config(new)  # from_config consumes its argument: `new` is a fresh copy

    return build


def family_from_model(model, name=None, use_weights=False):
    """A width-parameterized family derived from a built Keras model.

    The widths are the ``units`` / ``filters`` of the model's hidden layers,
    one knob per group of tied layers (see the module doc), in model order;
    the default widths are the model's own. The output layers' units become
    the number of classes and the input layer's shape the study's input
    shape. A softmax at the output is made linear, since widthvsprune trains
    on logits (the predicted classes are unchanged); apart from that, the
    model built at the default widths, the model's input shape and its
    number of outputs has the model's config.

    Args:
        model: a built Sequential or functional model, of Keras 3 (any
            backend) or tf_keras.
        name: the family's registry name; default: the model's name.
        use_weights: keep the model's weights (``get_weights()`` order) as
            :attr:`Family.weights`, for a study that starts every seed's
            wide model from them. They fit the model at the default widths,
            the model's input shape and its number of classes only.

    Returns:
        A :class:`~widthvsprune.families.Family` (not registered: pass it to
        :func:`~widthvsprune.register_family`) with ``count_params=None``
        (counts come from building with the engine's Keras) and ``keras``
        ``"3"`` or ``"2"``: it builds only with the Keras of ``model``.

    Raises:
        StudyError: one line naming the layer and the reason, when the model
            is subclassed or not built, has a layer whose effect on the width
            is not known, or has no hidden width to shrink.

    Example:

    ```python
    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(12, 3, activation="relu"),
                              keras.layers.MaxPooling2D(), keras.layers.Flatten(), keras.layers.Dense(10)])
    family = register_family(family_from_model(model, name="my_cnn"))
    family.default_widths  # (12,)
    ```
    """
    kind, config = model_config(model)
    nodes, input_name, output_name = graph(kind, config)
    shapes = output_shapes(model, nodes)
    if len(shapes[output_name]) != 2:
        raise refuse("a model whose output is (batch, classes)", f"output shape {shapes[output_name]} of layer "
                     f"{output_name!r}")
    plan = plan_widths(nodes, shapes, input_name, output_name)
    entries = {n.name: n.entry for n in nodes}
    for layer in plan.softmax:
        _linear(entries[layer])
    name = name or model.name
    if not isinstance(name, str) or not name:
        raise refuse("a non-empty family name", f"name={name!r}")
    major = keras_major(model)
    weights = tuple(model.get_weights()) if use_weights else None
    return families.Family(
        name=name,
        default_widths=plan.default_widths,
        count_params=None,
        build=_builder(name, kind, config, plan, major, tuple(shapes[input_name][1:])),
        n_widths=len(plan.default_widths),
        keras=major,
        weights=weights,
    )


def saved_keras(path):
    """``"3"`` or ``"2"``: the Keras that saved a ``.keras`` file (its ``metadata.json``)."""
    with zipfile.ZipFile(path) as archive:
        version = json.loads(archive.read("metadata.json"))["keras_version"]
    return "3" if str(version).startswith("3") else "2"


def json_model(data):
    """``(keras, class_name, config)`` of a JSON model config: ``model.to_json()`` or a bare ``get_config()``."""
    if "layers" in data:  # a bare get_config()
        data = {"class_name": "Functional" if "input_layers" in data else "Sequential", "config": data}
    if "keras_version" in data:
        major = "3" if str(data["keras_version"]).startswith("3") else "2"
    elif "module" in data:
        major = "3"
    else:
        first = (data.get("config", {}).get("layers") or [{}])[0].get("config", {})
        major = "3" if "batch_shape" in first else "2"
    return major, data.get("class_name"), data.get("config")


def import_keras(major):
    """Keras 3 (``keras``, on its configured backend) or tf_keras."""
    if major == "3":
        return importlib.import_module("keras")
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")  # tf.keras is tf_keras too, as in the tf_keras engine
    return importlib.import_module("tf_keras")


def family_from_file(path, name=None, use_weights=False):
    """A family derived from a saved model: a ``.keras`` file or a JSON model config.

    The file is loaded with the Keras that wrote it (Keras 3 on its
    configured backend, or tf_keras), then derived as by
    :func:`family_from_model`.

    Args:
        path: a ``.keras`` file (``model.save``), or a ``.json`` file holding
            ``model.to_json()`` or ``json.dumps(model.get_config())``.
        name: the family's registry name; default: the file's name without suffix.
        use_weights: keep the saved weights as :attr:`Family.weights`
            (``.keras`` files only; a JSON config holds none).

    Returns:
        A :class:`~widthvsprune.families.Family`, as :func:`family_from_model`.

    Raises:
        StudyError: for another kind of file, weights asked of a JSON config,
            or a model that cannot be derived (see :func:`family_from_model`).

    Example:

    ```python
    model.save("my_cnn.keras")
    register_family(family_from_file("my_cnn.keras", use_weights=True))
    ```
    """
    path = pathlib.Path(path)
    name = name or path.stem
    if path.suffix == ".keras":
        keras = import_keras(saved_keras(path))
        model = keras.models.load_model(path, compile=False)
    elif path.suffix == ".json":
        if use_weights:
            raise refuse("a .keras file for use_weights=True (a JSON config holds no weights)", f"path={str(path)!r}")
        major, class_name, config = json_model(json.loads(path.read_text()))
        keras = import_keras(major)
        cls = keras.Sequential if class_name == "Sequential" else keras.Model
        model = cls.from_config(config)
    else:
        raise refuse("a .keras file or a .json model config", f"path={str(path)!r}")
    return family_from_model(model, name=name, use_weights=use_weights)
