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
classes (one unit stays one: a binary classifier), and the input layer
takes the study's input shape.

Each width lives at *sites*: ``(layer name, config field)`` pairs. A
``MultiHeadAttention`` has knobs of its own (``num_heads``, ``key_dim``, and
``value_dim`` when it differs) and an output of its query's width;
``Bidirectional`` and ``TimeDistributed`` set their inner layer's width
(``"layer.config.units"``), a concatenating ``Bidirectional`` outputting a
derived size of twice it; registered layers and Keras Hub's follow their
:class:`~widthvsprune.families.derived.layers.LayerRule`.
"""

import dataclasses
from typing import Tuple

from widthvsprune.families.derived.configs import refuse
from widthvsprune.families.derived.layers import rule_of

#: Layers whose output width is a knob, and the config key holding it.
PRODUCERS = {
    "Dense": "units",
    "Conv1D": "filters", "Conv2D": "filters", "Conv3D": "filters",
    "Conv1DTranspose": "filters", "Conv2DTranspose": "filters", "Conv3DTranspose": "filters",
    "SeparableConv1D": "filters", "SeparableConv2D": "filters",
    "SimpleRNN": "units", "GRU": "units", "LSTM": "units",
    "Embedding": "output_dim",
    "EinsumDense": "output_shape",  # its last entry, when the equation's last output axis is the kernel's own
}

#: Layers whose output has their input's width (one input, the last axis kept).
PASS_THROUGH = frozenset({
    "BatchNormalization", "LayerNormalization", "UnitNormalization", "GroupNormalization", "RMSNormalization",
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
SPECIAL = frozenset({"InputLayer", "Flatten", "Reshape", "Permute", "Concatenate",
                     "MultiHeadAttention", "Bidirectional", "TimeDistributed"})

KNOWN = frozenset(PRODUCERS) | PASS_THROUGH | MERGES | SPECIAL


@dataclasses.dataclass(frozen=True)
class WidthPlan:
    """Where the widths go in a model's config.

    Attributes:
        knobs: for each width knob, in model order, the layers whose width it sets.
        default_widths: the model's own width for each knob.
        input_sites: layers whose width is tied to the input's last axis.
        output_sites: layers whose width is the number of classes.
        softmax: layers whose softmax on the output is replaced by a linear activation (a sigmoid, for a
            one-unit output).
        binary: the output is one unit: a binary classifier's logit, trained with binary cross-entropy.

    Each site is ``(layer name, config field)``, the field dotted into a
    wrapper's inner layer (``"layer.config.units"``).
    """

    knobs: Tuple[Tuple[str, ...], ...]
    default_widths: Tuple[int, ...]
    input_sites: Tuple[str, ...]
    output_sites: Tuple[str, ...]
    softmax: Tuple[str, ...] = ()
    binary: bool = False


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
    if config.get("groups", 1) != 1 and node.kind != "GroupNormalization":
        raise refuse("convolutions with groups=1 (a grouped convolution ties its widths to its groups)",
                     f"groups={config['groups']} in {_layer(node)}")
    if config.get("return_state"):
        raise refuse("recurrent layers with return_state=False (one output per layer)", _layer(node))
    if node.kind.startswith("DepthwiseConv") and config.get("depth_multiplier", 1) != 1:
        raise refuse("depthwise convolutions with depth_multiplier=1 (which keep their input's width)",
                     f"depth_multiplier={config['depth_multiplier']} in {_layer(node)}")
    if node.kind == "GroupNormalization" and config.get("groups", 1) not in (1, -1):
        raise refuse("GroupNormalization with groups=1 or -1 (other groups must divide a width the narrow arm "
                     "changes)", f"groups={config['groups']} in {_layer(node)}")
    if node.kind == "MultiHeadAttention" and config.get("output_shape") is not None:
        raise refuse("MultiHeadAttention with output_shape=None (its output has its query's width)",
                     f"output_shape={config['output_shape']} in {_layer(node)}")
    if node.kind == "EinsumDense" and not _einsum_width(config):
        raise refuse("an EinsumDense whose output's last axis is the kernel's own (not its input's)",
                     f"equation={config.get('equation')!r} in {_layer(node)}")
    if node.kind not in KNOWN and rule_of(node.entry) is None:
        raise refuse("layers whose effect on the width is known (Dense, convolutions, recurrent layers, attention, "
                     "embeddings, normalization, activations, dropout, pooling, reshapes, merges, Keras Hub's "
                     "TransformerEncoder and position embeddings)", f"{_layer(node)}; register it with "
                     f"widthvsprune.register_layer({node.kind!r}, widths=(...), passes_width=...)")


def _einsum_width(config):
    """Whether an EinsumDense's output's last axis is a kernel axis absent from its input (a width of its own)."""
    equation = str(config.get("equation", "")).replace(" ", "")
    try:
        inputs, out = equation.split("->")
        source, kernel = inputs.split(",")
    except ValueError:
        return False
    last = out[-1:] if out else ""
    return bool(last) and last not in source and last in kernel and "." not in equation


def _wrapped(node):
    """The class and config of a ``Bidirectional`` / ``TimeDistributed`` layer's inner layer."""
    inner = node.entry["config"]["layer"]
    return inner["class_name"], inner["config"]


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
        rule = rule_of(node.entry) if node.kind not in KNOWN else None
        if rule is not None:
            self.registered(node, rule)
        elif node.kind == "MultiHeadAttention":
            self.attention(node)
        elif node.kind in ("Bidirectional", "TimeDistributed"):
            self.wrapper(node)
        elif node.kind in PRODUCERS:
            self.state[node.name] = ("group", self.groups.new(site=(node.name, PRODUCERS[node.kind])))
        elif node.kind in MERGES or (node.kind == "Concatenate"
                                     and not _concatenates_last(node, self.shapes[node.name])):
            self.merge(node)
        elif node.kind == "Concatenate":
            self.state[node.name] = ("derived", frozenset().union(*(self.depends(n) for n in node.inputs)))
        else:
            self.single(node)

    def knob(self, node, field):
        """A new width group holding the config field ``field`` of ``node``."""
        return self.groups.new(site=(node.name, field))

    def tie(self, node, source, fields=()):
        """``node``'s output has ``source``'s width; ``fields`` of its config follow that width."""
        if self.state[source][0] != "group":
            raise refuse("an input whose width is a layer's units or filters",
                         f"{_layer(node)} reads {source!r}, whose width is derived (flattened or concatenated)")
        g = self.groups.find(self.state[source][1])
        self.groups.sites[g].extend((node.name, f) for f in fields)
        self.state[node.name] = ("group", g)

    def attention(self, node):
        """``MultiHeadAttention``: ``num_heads`` and ``key_dim`` (``value_dim`` when it differs) are knobs; the
        output projection returns to the query's width."""
        config = node.entry["config"]
        self.knob(node, "num_heads")
        key = self.knob(node, "key_dim")
        if config.get("value_dim") not in (None, config.get("key_dim")):
            self.knob(node, "value_dim")
        else:
            self.groups.sites[key].append((node.name, "value_dim"))
        self.tie(node, node.inputs[0])

    def wrapper(self, node):
        """``Bidirectional`` and ``TimeDistributed``: the inner layer's width; twice it for a concatenating
        ``Bidirectional``."""
        kind, inner = _wrapped(node)
        if kind in PRODUCERS and kind != "EinsumDense":
            fields = [f"layer.config.{PRODUCERS[kind]}"]
            if node.kind == "Bidirectional" and node.entry["config"].get("backward_layer"):
                fields.append(f"backward_layer.config.{PRODUCERS[kind]}")
            g = self.groups.new()
            self.groups.sites[g].extend((node.name, f) for f in fields)
            concat = node.kind == "Bidirectional" and node.entry["config"].get("merge_mode", "concat") == "concat"
            self.state[node.name] = ("derived", frozenset({g})) if concat else ("group", g)
            if inner.get("return_state"):
                raise refuse("recurrent layers with return_state=False (one output per layer)", _layer(node))
        elif kind in PASS_THROUGH and node.kind == "TimeDistributed":
            self.single(node)
        else:
            raise refuse(f"a {node.kind} around a layer whose width is its units or filters (Dense, convolutions, "
                         f"recurrent layers)", f"{_layer(node)} around a layer of type {kind}")

    def registered(self, node, rule):
        """A layer with a :class:`~widthvsprune.families.derived.layers.LayerRule` (registered, or Keras Hub's)."""
        config = node.entry["config"]
        for field in rule.widths + rule.tied:
            value = config.get(field)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise refuse(f"a positive integer in config field {field!r} (a width of its registration)",
                             f"{field}={value!r} in {_layer(node)}")
        for field in rule.widths:
            if field != rule.output:
                self.knob(node, field)
        if rule.passes_width:
            if not node.inputs:
                raise refuse("an input to take the width of", _layer(node))
            in_width, out_width = self.shapes[node.inputs[0]][-1], self.shapes[node.name][-1]
            if in_width != out_width:
                raise refuse("a layer that keeps its input's width (it is registered with passes_width=True)",
                             f"{_layer(node)} maps width {in_width} to {out_width}")
            self.tie(node, node.inputs[0], rule.tied)
        else:
            self.state[node.name] = ("group", self.knob(node, rule.output))

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
            self.groups.sites[self.groups.find(self.state[source][1])].append((node.name, "target_shape"))
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

    def place(site):
        return order[site[0]]

    roots = sorted({groups.find(g) for g in range(len(groups.parent))},
                   key=lambda g: min((place(s) for s in groups.sites[g]), default=-1))
    knobs = [g for g in roots if g != out_group and not groups.input[g] and groups.sites[g]]
    for node, depends in tracer.fixed:
        if {groups.find(g) for g in depends} & (set(knobs) | {out_group}):
            raise refuse("a Reshape that keeps the last axis, or target_shape=(-1,), after a layer whose width "
                         "changes", f"{_layer(node)} with target_shape={tuple(node.entry['config']['target_shape'])}")
    if not knobs:
        raise refuse("a hidden layer with units or filters to shrink (the output's units are the number of "
                     "classes)", f"model with no hidden width; its output layer is {output_name!r}")
    sites = [tuple(sorted(groups.sites[g], key=place)) for g in knobs]
    binary = shapes[output_name][-1] == 1
    return WidthPlan(
        knobs=tuple(sites),
        default_widths=tuple(_group_width(nodes, names) for names in sites),
        input_sites=tuple(s for g in roots if groups.input[g] for s in sorted(groups.sites[g], key=place)),
        output_sites=tuple(sorted(groups.sites[out_group], key=place)),
        softmax=_output_softmax(nodes, output_name, binary),
        binary=binary,
    )


def _group_width(nodes, sites):
    """The one width of a group of tied layers' sites."""
    values = {get_width(_node(nodes, name).entry, field) for name, field in sites}
    if len(values) != 1:
        raise refuse("tied layers of one width", f"layers {sorted({n for n, _ in sites})} with widths "
                     f"{sorted(values)}")
    return values.pop()


def _concatenates_last(node, out_shape):
    axis = int(node.entry["config"].get("axis", -1))
    return axis % len(out_shape) == len(out_shape) - 1


def _node(nodes, name):
    return next(n for n in nodes if n.name == name)


def _output_softmax(nodes, output_name, binary=False):
    """Layers on the output's path (back to the output layer) whose activation is a softmax (a sigmoid for a
    one-unit output)."""
    found, node = [], _node(nodes, output_name)
    squash = "sigmoid" if binary else "softmax"
    while True:
        config = node.entry["config"]
        if (node.kind == "Softmax" and not binary) or config.get("activation") == squash:
            found.append(node.name)
        if node.kind in PRODUCERS or node.kind not in PASS_THROUGH or len(node.inputs) != 1:
            return tuple(found)
        node = _node(nodes, node.inputs[0])


def _field(config, field):
    """The dict holding a dotted field (``"layer.config.units"``) of a layer's config, and its last key."""
    *path, key = field.split(".")
    for part in path:
        config = config[part]
    return config, key


def get_width(entry, field):
    """The width a site (a config field of a layer, see :func:`set_width`) holds."""
    holder, key = _field(entry["config"], field)
    value = holder[key]
    if key in ("target_shape", "output_shape"):
        value = value[-1] if isinstance(value, (list, tuple)) else value
    return int(value)


def set_width(entry, field, width):
    """Sets a layer's width at a config field: ``units``, ``layer.config.units``, or the last entry of a
    ``Reshape``'s ``target_shape`` or an ``EinsumDense``'s ``output_shape``."""
    holder, key = _field(entry["config"], field)
    if key in ("target_shape", "output_shape") and isinstance(holder[key], (list, tuple)):
        holder[key] = list(holder[key][:-1]) + [int(width)]
    else:
        holder[key] = int(width)


def make_linear(entry):
    """The entry of a softmax (or sigmoid) on the output, made linear (widthvsprune trains on logits)."""
    if entry["class_name"] == "Softmax":
        config = entry["config"]
        entry["class_name"] = "Activation"
        entry["config"] = {k: config[k] for k in ("name", "trainable", "dtype") if k in config}
    entry["config"]["activation"] = "linear"
