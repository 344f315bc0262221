"""The width plan of a Keras model's config: which layers' units and filters are knobs, and which are tied.

Pure: reads a config (``get_config()``, the same for every Keras 3
backend), imports no framework. :func:`plan_widths` walks the layer graph:
the ``units`` / ``filters`` (``output_dim`` of an ``Embedding``) of hidden
layers are width knobs; layers whose outputs meet in an element-wise merge
(``Add``, ``Subtract``, ``Multiply``, ``Average``, ``Maximum``, ``Minimum``: a
residual connection) share one knob, and a layer that passes its input's
width through (normalization, activations, dropout, pooling, depthwise
convolutions, a ``Reshape`` that keeps the last axis) carries that width on.
``Concatenate`` along the last axis adds its inputs' widths and ties
nothing. The layers producing the model's output take the number of
classes, and the input layer takes the study's input shape.
"""

import dataclasses
from typing import Tuple

from widthvsprune.families.derived.configs import refuse

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
        nodes: the model's :class:`~.configs.Node` s in config order (:func:`~.configs.layer_graph`).
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


def set_width(entry, width):
    config = entry["config"]
    if entry["class_name"] in PRODUCERS:
        config[PRODUCERS[entry["class_name"]]] = int(width)
    else:  # a Reshape keeping the last axis
        config["target_shape"] = list(config["target_shape"][:-1]) + [int(width)]


def make_linear(entry):
    """The entry of a softmax on the output, made linear (widthvsprune trains on logits)."""
    if entry["class_name"] == "Softmax":
        config = entry["config"]
        entry["class_name"] = "Activation"
        entry["config"] = {k: config[k] for k in ("name", "trainable", "dtype") if k in config}
    entry["config"]["activation"] = "linear"
