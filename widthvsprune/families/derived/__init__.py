"""Families derived from a built Keras model: its hidden layers' units and filters become the widths.

The model's config is read by :mod:`.configs` and its width plan is :mod:`.graph`'s; this module rebuilds the model
at other widths.

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
import hashlib
import importlib
import json
import os
import pathlib
import zipfile

from widthvsprune import families
from widthvsprune.families.derived import layers as layer_rules
from widthvsprune.families.derived.configs import (
    ENGINES,
    KERAS_NAMES,
    keras_major,
    layer_graph,
    model_config,
    output_shapes,
    refuse,
)
from widthvsprune.families.derived.graph import make_linear, plan_widths, set_width


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
        was built, a wrapper's inner layers' included) are removed, so that
        every layer builds from its new input.
    """
    config = copy.deepcopy(config)
    entries = {e.get("name", e["config"].get("name")): e for e in config["layers"]}
    for sites, width in zip(plan.knobs, widths):
        for name, field in sites:
            set_width(entries[name], field, width)
    for name, field in plan.input_sites:
        set_width(entries[name], field, input_shape[-1])
    for name, field in plan.output_sites:
        set_width(entries[name], field, 1 if plan.binary else num_classes)
    batch_shape = [None] + [int(d) for d in input_shape]
    for entry in config["layers"]:
        _unbuilt(entry)
        for key in ("batch_shape", "batch_input_shape"):  # Keras 3's InputLayer, tf_keras's
            if key in entry["config"]:
                entry["config"][key] = list(batch_shape)
    if "build_input_shape" in config:
        config["build_input_shape"] = list(batch_shape)
    return config


def _unbuilt(entry):
    """Removes every ``build_config`` of a layer's config entry, a wrapper's inner layers' included."""
    if isinstance(entry, dict):
        entry.pop("build_config", None)
        for value in entry.values():
            _unbuilt(value)
    elif isinstance(entry, list):
        for value in entry:
            _unbuilt(value)


@dataclasses.dataclass(frozen=True, eq=False)
class ConfigBuilder:
    """A derived family's ``build(widths, input_shape, num_classes, keras)``: the model's config at other widths.

    A plain object (not a closure), so a derived family can be sent to
    another process, as the study's training processes need.

    Attributes:
        name: the family's name.
        kind: ``"Sequential"`` or ``"Functional"``.
        config: the model's config.
        plan: its :class:`~widthvsprune.families.derived.graph.WidthPlan`.
        major: the Keras it builds with, ``"3"`` or ``"2"``.
        model_input: the model's own input shape.
        custom_objects: ``(name, class)`` pairs of the registered layer
            classes the config holds (:func:`~widthvsprune.register_layer`),
            sent with the family to every process that builds it.
    """

    name: str
    kind: str
    config: dict
    plan: object
    major: str
    model_input: tuple
    custom_objects: tuple = ()

    def __call__(self, widths, input_shape, num_classes, keras):
        name, plan, major, model_input = self.name, self.plan, self.major, self.model_input
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
        if getattr(plan, "binary", False) and int(num_classes) != 2:
            raise refuse(f"a dataset of 2 classes for family {name!r}, whose model has one output unit (a binary "
                         f"classifier)", f"num_classes={int(num_classes)}")
        new = configure(self.config, plan, widths, tuple(input_shape), int(num_classes))
        cls = keras.Sequential if self.kind == "Sequential" else keras.Model
        if major == "3" and layer_rules.needs_hub(new):
            try:
                importlib.import_module("keras_hub")
            except ImportError:
                raise refuse(f"keras-hub installed to build family {name!r}, whose model holds Keras Hub layers "
                             f"(pip install keras-hub)", "import keras_hub failed") from None
        with keras.utils.custom_object_scope(dict(self.custom_objects)):
            return cls.from_config(new)  # from_config consumes its argument: `new` is a fresh copy


def _builder(name, kind, config, plan, major, model_input):
    """The family's ``build(widths, input_shape, num_classes, keras)``; ``model_input``: the model's input shape."""
    objects = tuple(sorted(layer_rules.custom_objects(config).items()))
    return ConfigBuilder(name, kind, config, plan, major, model_input, objects)


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
    nodes, input_name, output_name = layer_graph(kind, config)
    shapes = output_shapes(model, nodes)
    if len(shapes[output_name]) != 2:
        raise refuse("a model whose output is (batch, classes)", f"output shape {shapes[output_name]} of layer "
                     f"{output_name!r}")
    plan = plan_widths(nodes, shapes, input_name, output_name)
    entries = {n.name: n.entry for n in nodes}
    for layer in plan.softmax:
        make_linear(entries[layer])
    for node in nodes:  # a registered class is found by its name: where it was defined is no part of the config
        rule = layer_rules.rule_of(node.entry)
        if rule is not None and rule.cls is not None:
            node.entry["module"] = None
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
        digest=config_digest(kind, config, major),
        batchnorm=any(n.kind in families.BATCH_NORMALIZATIONS for n in nodes),
    )


#: Layers holding kernels that tfmot's ``prune_low_magnitude`` does not wrap (besides registered and Keras Hub layers).
TFMOT_DENSE = frozenset({"Bidirectional", "TimeDistributed", "EinsumDense"})


def tfmot_leaves_dense(family):
    """The layers of a tf_keras family's model that tfmot cannot prune (``"layer 'x' of type Y"``), model order.

    The ``tf_keras`` engine's pruned arm leaves their kernels dense; the
    ``jax`` engine prunes them. Empty for a family not derived from a
    tf_keras model.
    """
    build = getattr(family, "build", None)
    if not isinstance(build, ConfigBuilder) or build.major != "2":
        return []
    return [f"layer {e.get('name', e['config'].get('name'))!r} of type {e['class_name']}"
            for e in build.config["layers"]
            if e["class_name"] in TFMOT_DENSE or layer_rules.rule_of(e) is not None]


def config_digest(kind, config, major):
    """12 hex digits of the SHA-256 of a model's config (what the family builds), for run keys."""
    text = json.dumps({"class_name": kind, "config": config, "keras": major}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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
    if path.suffix in (".keras", ".json") and not path.is_file():
        from widthvsprune.errors import near_path

        raise refuse(f"an existing {path.suffix} file (relative to the working directory {os.getcwd()!r})",
                     f"path={str(path)!r}, which does not exist{near_path(path)}")
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


def _from_path(name):
    """The family of ``model:PATH``: a ``.keras`` file's carries its weights (a study may start from them:
    :attr:`~widthvsprune.Study.pretrained`); a JSON config's has none."""
    path = name[len(families.MODEL_PREFIX):]
    return family_from_file(path, name=name, use_weights=path.endswith(".keras"))


families.register_deriver(families.MODEL_PREFIX, _from_path)
