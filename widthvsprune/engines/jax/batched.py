"""The forward pass of stacked models as one batched computation, for the layers it knows.

``jax.vmap`` of Keras 3's ``stateless_call`` trains the models of a pack side
by side, but XLA turns a vmap of convolutions with different kernels into a
grouped convolution, which a CPU runs slower than the separate convolutions.
:class:`Forward` instead walks the Keras model's layer graph once, at trace
time, and emits JAX operations on the stacked weights of all the models:

- ``Dense``: one batched matrix product (``"m b i, m i o -> m b o"``);
- ``Conv1D``, ``Conv2D``, ``DepthwiseConv1D``, ``DepthwiseConv2D``: the
  stacked convolutions of :mod:`.convolutions`, the method chosen per layer
  shape (:func:`~widthvsprune.engines.jax.convolutions.choose`);
- ``BatchNormalization``: each model's batch statistics and moving averages,
  in Keras's arithmetic;
- ``MaxPooling*D`` and ``AveragePooling*D`` whose windows tile the input
  (strides equal to the pool size, ``"valid"``): a reshape and a reduction
  (:mod:`.pooling`), whose gradient is much cheaper than that of XLA's
  windowed reduction, and is Keras's;
- a convolution with a ReLU (or no activation) whose output only a tiling
  max pooling reads: pooled before its bias and ReLU (both preserve the
  order of values, so the maxima are the same), which then act on a
  quarter of the values;
- ``Dropout``: each model's mask drawn from its own seed state, exactly as
  Keras 3 draws it (``keras.random.dropout`` with the layer's seed
  generator, which then moves one step);
- every other layer of :data:`FOLDED` (no weights, each example on its
  own: ``Flatten``, ``Reshape``, padding, cropping, activations, pooling,
  element-wise merges): Keras's own ``call``, with the models folded into the
  batch axis.

Each model's output equals Keras's ``model(x)`` up to the order of float32
sums (tested). Models with any other layer, or an option these
implementations do not cover (dilation, groups, ``channels_first``, causal
padding, renormalization, quantization...), are not :func:`supported`: the
engine runs them through ``stateless_call`` as before.

Gradients are Keras's too, with one exception: where a convolution's
outputs are pooled before the bias and ReLU, a window whose outputs differ
but round to equal values once the bias is added has its gradient sent to
its largest output rather than to the first of the tied ones (a ReLU stops
the gradient of windows of zeros either way).
"""

import jax
import jax.numpy as jnp
import keras
from jax import lax

from widthvsprune.engines.jax import convolutions, pooling

#: Layers without weights that act on each example alone: run as Keras runs them, models folded into the batch.
FOLDED = frozenset({
    "InputLayer", "Flatten", "Reshape", "Permute", "Identity",
    "Activation", "ReLU", "LeakyReLU", "ELU", "PReLU", "Softmax",
    "MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D",
    "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D", "UpSampling1D", "UpSampling2D",
    "Add", "Subtract", "Multiply", "Maximum", "Minimum", "Average", "Concatenate",
})
CONVOLUTIONS = frozenset({"Conv1D", "Conv2D"})
DEPTHWISE = frozenset({"DepthwiseConv1D", "DepthwiseConv2D"})
POOLING = frozenset({"MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D"})


def _name(layer):
    return type(layer).__name__


def _channels_last(layer):
    return getattr(layer, "data_format", "channels_last") == "channels_last"


def _plain_weights(layer):
    """No LoRA, no quantization: ``layer.kernel`` is the variable."""
    return not getattr(layer, "lora_enabled", False) and getattr(layer, "quantization_mode", None) is None


def layer_problem(layer):
    """Why :class:`Forward` cannot run ``layer`` (a phrase), or ``None``."""
    name = _name(layer)
    if name in FOLDED:
        if layer.weights:
            return f"{name} has weights"
        if getattr(layer, "axis", -1) == 0:
            return f"{name} acts along the batch axis"
        return None if _channels_last(layer) else f"{name} is not channels_last"
    if name == "Dense":
        return None if _plain_weights(layer) and len(layer.kernel.shape) == 2 else "Dense with LoRA or quantized"
    if name in CONVOLUTIONS | DEPTHWISE:
        ok = (_channels_last(layer) and layer.padding in ("valid", "same") and _plain_weights(layer)
              and all(d == 1 for d in layer.dilation_rate) and getattr(layer, "groups", 1) == 1)
        return None if ok else f"{name} with dilation, groups, causal padding or channels_first"
    if name == "Dropout":
        return None
    if name == "BatchNormalization":
        rank = len(layer.input.shape)
        ok = layer.axis in (-1, rank - 1) and not layer.renorm and not layer.synchronized
        return None if ok else "BatchNormalization over another axis or with renormalization"
    return f"{name} is not among the layers a batched forward pass knows"


def _operations(model):
    """The model's graph nodes, inputs first (Keras's own order of execution)."""
    by_depth = model._nodes_by_depth
    return [node for depth in sorted(by_depth, reverse=True) for node in by_depth[depth]
            if node.operation is not None and not node.is_input]


def problem(model):
    """Why :class:`Forward` cannot run ``model`` (a phrase), or ``None`` when it can."""
    try:
        nodes = _operations(model)
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            return "the model has several inputs or outputs"
    except (AttributeError, TypeError, ValueError):
        return "the model is not a functional graph"
    for node in nodes:
        layer = node.operation
        if isinstance(layer, keras.Model):
            nested = problem(layer)
            if nested is not None:
                return nested
            continue
        found = layer_problem(layer) if isinstance(layer, keras.layers.Layer) else "an operation outside a layer"
        if found is not None:
            return found
    return None


def supported(model):
    """Whether :class:`Forward` can run ``model``."""
    graph = _graph(model)
    return graph is not None and problem(graph) is None


def _graph(model):
    """The functional graph of ``model`` (a ``Sequential`` model's inner one), or ``None``."""
    if isinstance(model, keras.Sequential):
        return getattr(model, "_functional", None)
    return model if hasattr(model, "_nodes_by_depth") else None


class Forward:
    """``model``'s forward pass for stacked weights: every model of a pack in one computation.

    Args:
        model: a Keras 3 model that :func:`supported` accepts (its weights are not used).

    Example:

    ```python
    forward = Forward(model)
    logits, new_frozen = forward(trainable, frozen, x, training=True)
    ```

    ``trainable`` and ``frozen`` are ``model.trainable_variables`` and
    ``model.non_trainable_variables`` of every model, stacked on a leading
    axis (what ``stateless_call`` takes, one more axis); ``x`` is
    ``(models, batch, *input_shape)``, or with ``shared=True`` one batch
    ``(batch, *input_shape)`` for every model (evaluation: the layers before
    the first weights, and the first convolution's patches, are then
    computed once). Returns the stacked logits and the updated
    non-trainable variables.
    """

    def __init__(self, model):
        self.model = model
        self.graph = _graph(model)
        found = problem(self.graph) if self.graph is not None else "the model is not a functional graph"
        if found is not None:
            raise ValueError(f"Expected a model whose layers a batched forward pass knows. Received: {found}")
        self._slots = {id(v): ("trainable", i) for i, v in enumerate(model.trainable_variables)}
        self._slots.update({id(v): ("frozen", i) for i, v in enumerate(model.non_trainable_variables)})
        self.methods = {}  # layer name -> convolution method, for the layers met (benchmarks report them)

    def __call__(self, trainable, frozen, x, training=False, shared=False):
        state = _State(self._slots, list(trainable), list(frozen), bool(training))
        logits = self._run(self.graph, x, state, shared)
        return logits, tuple(state.frozen)

    def _run(self, graph, x, state, shared=False):
        """Runs ``graph``'s nodes in order; ``shared``: ``x`` has no model axis (see the class doc)."""
        values = {id(graph.inputs[0]): x}
        common = {id(graph.inputs[0])} if shared else set()  # tensors without the model axis
        pooled_after = _pooled_convolutions(graph)
        for node in _operations(graph):
            if id(node.outputs[0]) in values or any(id(t) not in values for t in node.input_tensors):
                continue  # computed with the node before it, or not computable
            layer = node.operation
            once = all(id(t) in common for t in node.input_tensors) and _name(layer) in ONCE
            if not once:
                _give_model_axis(node, values, common, state.models)
            args, kwargs = node.arguments.fill_in(values)
            kwargs = {k: v for k, v in kwargs.items() if k not in ("training", "mask")}
            if id(node) in pooled_after:
                node, outputs = pooled_after[id(node)], self._convolution_pooled(layer, pooled_after[id(node)],
                                                                                 args[0], state, once)
            elif isinstance(layer, keras.Model):
                outputs = self._run(_graph(layer), args[0], state)
            elif once and _name(layer) in FOLDED:
                outputs = layer.call(*args, **kwargs)
                common.update(id(t) for t in node.outputs)
            else:
                outputs = self._layer(layer, args, kwargs, state, once)
            for tensor, value in zip(node.outputs, outputs if isinstance(outputs, (list, tuple)) else [outputs]):
                values[id(tensor)] = value
        return values[id(graph.outputs[0])]

    def _method(self, layer, x):
        return self.methods.setdefault(layer.name, convolutions.choose(layer.kernel_size, int(x.shape[-1]),
                                                                       layer.strides))

    def _convolution_pooled(self, layer, pool_node, x, state, shared):
        """A convolution, the max pooling after it, then the convolution's bias and activation."""
        pool = tuple(pool_node.operation.pool_size)
        kernel = state.get(layer.kernel)
        method = self.methods.setdefault(layer.name, convolutions.choose_pooled(
            layer.kernel_size, int(x.shape[-1]), layer.strides, pool))
        if shared and method == "phases":
            y = convolutions.conv_max_pool_shared(x, kernel, layer.strides, layer.padding, pool)
        elif shared:
            y = pooling.max_pool(_convolve(layer, x, state, None, shared), pool)
        else:
            y = convolutions.conv_max_pool(x, kernel, layer.strides, layer.padding, pool, method)
        return _finish(layer, y, state)

    def _layer(self, layer, args, kwargs, state, shared=False):
        name = _name(layer)
        if name == "Dense":
            return dense(layer, args[0], state, shared)
        if name in CONVOLUTIONS:
            return convolution(layer, args[0], state, self._method(layer, args[0]), shared)
        if name in DEPTHWISE:
            return depthwise(layer, args[0], state)
        if name == "BatchNormalization":
            return batch_normalization(layer, args[0], state)
        if name == "Dropout":
            return dropout(layer, args[0], state)
        if name in POOLING and _tiles(layer):
            pool = tuple(layer.pool_size)
            return pooling.max_pool(args[0], pool) if name.startswith("Max") else pooling.average_pool(args[0], pool)
        return folded(layer, args, kwargs)


#: Layers that run on an input without the model axis (one batch for every model) without broadcasting it.
ONCE = FOLDED | CONVOLUTIONS | {"Dense", "Dropout"}


def _give_model_axis(node, values, common, models):
    """Broadcasts the inputs of ``node`` that have no model axis to ``models`` models."""
    for tensor in node.input_tensors:
        if id(tensor) in common:
            values[id(tensor)] = jnp.broadcast_to(values[id(tensor)], (models,) + values[id(tensor)].shape)
            common.discard(id(tensor))


class _State:
    """The weights of one call, and the non-trainable ones it updates."""

    def __init__(self, slots, trainable, frozen, training):
        self.slots, self.trainable, self.frozen, self.training = slots, trainable, frozen, training
        self.models = int((trainable + frozen)[0].shape[0])

    def get(self, variable):
        kind, i = self.slots[id(variable)]
        return (self.trainable if kind == "trainable" else self.frozen)[i]

    def set(self, variable, value):
        kind, i = self.slots[id(variable)]
        assert kind == "frozen", variable.path
        self.frozen[i] = value


def _per_model(vector, rank):
    """A ``(models, features)`` array shaped to broadcast over ``(models, batch, ..., features)`` of ``rank``."""
    return vector.reshape((vector.shape[0],) + (1,) * (rank - 2) + (vector.shape[-1],))


def _finish(layer, y, state):
    """The layer's bias and activation, on ``y`` flattened to ``(models, values, features)`` (XLA's loops over
    fewer, longer axes run faster)."""
    shape = y.shape
    y = y.reshape(shape[0], -1, shape[-1])
    if getattr(layer, "bias", None) is not None:
        y = y + state.get(layer.bias)[:, None, :]
    return (y if layer.activation is None else layer.activation(y)).reshape(shape)


def dense(layer, x, state, shared=False):
    """Keras's ``Dense`` for stacked models: ``x @ kernel + bias``, then the activation.

    ``shared``: ``x`` has no model axis (one input for every model).
    """
    kernel = state.get(layer.kernel)
    if shared:
        y = jnp.einsum("...i,mio->m...o", x, kernel)
    else:
        m, features = x.shape[0], x.shape[-1]
        y = convolutions.matmul(x.reshape(m, -1, features), kernel).reshape(x.shape[:-1] + (kernel.shape[-1],))
    return _finish(layer, y, state)


def _convolve(layer, x, state, method, shared):
    kernel = state.get(layer.kernel)
    if shared:
        return convolutions.conv_shared(x, kernel, layer.strides, layer.padding)
    return convolutions.conv(x, kernel, layer.strides, layer.padding, method)


def convolution(layer, x, state, method, shared=False):
    """Keras's ``Conv1D`` / ``Conv2D`` for stacked models, by ``method`` (:mod:`.convolutions`).

    ``shared``: ``x`` has no model axis (one input for every model).
    """
    return _finish(layer, _convolve(layer, x, state, method, shared), state)


def depthwise(layer, x, state):
    """Keras's ``DepthwiseConv1D`` / ``DepthwiseConv2D`` for stacked models."""
    y = convolutions.depthwise(x, state.get(layer.kernel), layer.strides, layer.padding)
    return _finish(layer, y, state)


def batch_normalization(layer, x, state):
    """Keras's ``BatchNormalization`` (last axis) for stacked models: each model's own batch statistics."""
    moving_mean, moving_variance = state.get(layer.moving_mean), state.get(layer.moving_variance)
    if state.training and layer.trainable:
        axes = tuple(range(1, x.ndim - 1))
        mean, variance = jnp.mean(x, axes), jnp.var(x, axis=axes)
        momentum = layer.momentum
        state.set(layer.moving_mean, moving_mean * momentum + mean * (1.0 - momentum))
        state.set(layer.moving_variance, moving_variance * momentum + variance * (1.0 - momentum))
    else:
        mean, variance = moving_mean, moving_variance
    inv = lax.rsqrt(_per_model(variance, x.ndim) + layer.epsilon)
    if layer.scale:
        inv = inv * _per_model(state.get(layer.gamma), x.ndim)
    res = -_per_model(mean, x.ndim) * inv
    if layer.center:
        res = res + _per_model(state.get(layer.beta), x.ndim)
    return x * inv + res


def dropout(layer, x, state):
    """Keras's ``Dropout`` for stacked models: in training, each model's mask from its own seed state.

    Keras draws the mask with ``jax.random.bernoulli`` keyed by the seed
    generator's state and then adds ``[0, 1]`` to the state; here each
    model's state (a row of the stacked non-trainable variable) draws its own
    mask the same way and moves the same step. Outside training, ``x`` as it is.
    """
    if not state.training or layer.rate == 0:
        return x
    seeds = state.get(layer.seed_generator.state)

    def one(seed, inputs):
        return keras.random.dropout(inputs, layer.rate, noise_shape=layer.noise_shape, seed=seed)

    y = jax.vmap(one)(seeds, x)
    state.set(layer.seed_generator.state, seeds + jnp.asarray([0, 1], seeds.dtype))
    return y


def _tiles(layer):
    """Whether the pooling windows tile the input: strides equal to the pool size, ``"valid"`` padding."""
    return tuple(layer.strides) == tuple(layer.pool_size) and layer.padding == "valid" and _channels_last(layer)


#: Activations that preserve the order of values: they commute with taking a maximum.
MONOTONE = (keras.activations.relu, keras.activations.linear)


def _pooled_convolutions(graph):
    """``{id(convolution node): max pooling node}`` where a convolution's output is read by one tiling max pooling only.

    The convolution must have a ReLU or no activation, and its output must
    not be an output of the graph.
    """
    readers = {}
    for node in _operations(graph):
        for tensor in node.input_tensors:
            readers.setdefault(id(tensor), []).append(node)
    outputs = {id(t) for t in graph.outputs}
    pairs = {}
    for node in _operations(graph):
        layer = node.operation
        if _name(layer) not in CONVOLUTIONS or len(node.outputs) != 1 or id(node.outputs[0]) in outputs:
            continue
        if layer.activation not in MONOTONE:
            continue
        after = readers.get(id(node.outputs[0]), [])
        if len(after) == 1 and _name(after[0].operation) in ("MaxPooling1D", "MaxPooling2D") and _tiles(
                after[0].operation):
            pairs[id(node)] = after[0]
    return pairs


def folded(layer, args, kwargs):
    """A weightless per-example layer, run by Keras with the models folded into the batch axis."""

    def fold(t):
        return t.reshape((t.shape[0] * t.shape[1],) + t.shape[2:])

    inputs = args[0]
    m, batch = (inputs[0] if isinstance(inputs, (list, tuple)) else inputs).shape[:2]
    folded_inputs = [fold(t) for t in inputs] if isinstance(inputs, (list, tuple)) else fold(inputs)
    y = layer.call(folded_inputs, *args[1:], **kwargs)
    return y.reshape((m, batch) + y.shape[1:])
