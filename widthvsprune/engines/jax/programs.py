"""The compiled programs that train and evaluate a group of same-shape models.

One program call runs a *segment* of an epoch, steps ``[start, stop)``, for
every model of a group at once (or, for XLA's convolutions on a CPU, one
step: :attr:`Config.stepped`): a ``jax.lax.fori_loop`` over the steps, and
inside it the models side by side (``jax.vmap`` over stacked weights), each
with its own batch order, learning rate, optimizer state and masks. An
epoch is one call unless masks are updated on the host (``global``,
``random``) or the training stops early (``max_steps``). The step bounds are
arguments, so one compiled program serves every segment, epoch and pack of
the same shapes: :class:`ProgramCache` compiles each distinct program once
per process (ahead of time, timed).

What one step does for each model, in tfmot's and tf_keras's order:

1. at the steps where tfmot's schedule prunes, the ``layerwise`` mask of each
   pruned kernel is recomputed from the current kernel (:func:`layerwise_masks`,
   tfmot's rule, with the kept count from the host);
2. the kernel is multiplied by its mask (tfmot's ``weight_mask_op``);
3. forward pass (Keras 3 ``stateless_call``, or for every model at once the
   batched forward pass of :mod:`.batched`), mean sparse categorical
   cross-entropy from logits over the batch's real examples, gradients;
4. gradients of padding (entries outside a narrow model's block) are zeroed
   (always: one program then serves packs with and without padding);
5. tf_keras's ``legacy.Adam`` or ``legacy.SGD(momentum=0.9)`` update, in the
   fused kernels' arithmetic; the kernel is updated unmasked, as in tfmot.

At the end of an epoch the kernels are multiplied by their masks again
(tfmot's ``UpdatePruningStep.on_epoch_end``).

Before a pack's models are evaluated, :meth:`Program.statistics` re-estimates
the moving statistics of their ``BatchNormalization`` layers over the training
split (one fixed pass, :func:`~widthvsprune.engines.base.recalibration_batches`):
forward passes in training mode, no weight update.

The last batch of an epoch is short when the batch size does not divide the
training set. It is padded to the full batch with weight-0 examples, and the
loss is the mean over its real examples, as Keras computes it; models that
normalize over the batch (``BatchNormalization``) run it at its own size
instead (``exact_last_batch``: one more traced step in the program).

A training program whose whole run is small, and every evaluation program,
compiles with XLA's quicker options (:data:`QUICK_OPTIONS`,
:func:`compiles_quickly`): on a CPU, XLA's older fusion emitters compile it
in about two thirds of the time and run it up to a third slower, which costs
less than the compilation saves below :data:`QUICK_FLOPS` of arithmetic (an
evaluation program runs as fast either way). The two ways may sum a
reduction in another order, so whether a program compiles quickly depends
on its pack alone, never on what ran before it in the process: a study's
results are the same run after run, resumed or spread over any number of
processes.
"""

import concurrent.futures
import dataclasses
import time

import jax
import jax.numpy as jnp
import keras
import numpy as np

from widthvsprune.engines.jax import batched
from widthvsprune.engines.jax.models import flat_layers
from widthvsprune.engines.jax.optimizers import OPTIMIZERS


@dataclasses.dataclass(frozen=True)
class Config:
    """What a program does (part of its cache key).

    Attributes:
        batch_size: examples per step.
        num_examples: size of the training split.
        optimizer: ``"adam"`` or ``"sgd"``.
        masked: models carry pruning masks (applied before every step and at
            each epoch's end), updated inside the program by tfmot's layerwise
            rule at the steps the host's kept counts say (a model whose masks
            the host decides, ``global`` or ``random``, has none: packs of
            either kind share a program).
        exact_last_batch: the short last batch runs at its own size.
        unrolled: the models' steps are written one after another in the
            program instead of ``vmap``-ed: for convolutions on a CPU, where
            XLA turns a batch of convolutions with different kernels into a
            grouped convolution that runs slower than the separate ones (the
            seed CNN: 12.2 ms against 7.2 ms a step for three models).
        batched: the forward pass of all the models is one batched
            computation (:class:`~widthvsprune.engines.jax.batched.Forward`)
            instead of Keras's ``stateless_call`` per model.
        eval_slice: with ``batched``, how many examples of an evaluation
            chunk the models take at once (``jax.lax.map`` over slices); 0:
            all (:func:`~widthvsprune.engines.jax.chunks.examples_per_slice`).
    """

    batch_size: int
    num_examples: int
    optimizer: str
    masked: bool
    exact_last_batch: bool
    unrolled: bool = False
    batched: bool = False
    eval_slice: int = 0

    @property
    def stepped(self):
        """Each training step is a program call of its own (:meth:`Program.step`), the loop over the steps on
        the host, instead of one call per segment: for an :attr:`unrolled` group, whose steps hold XLA's
        convolutions on a CPU, which run several times slower inside a compiled loop than alone
        (jax-ml/jax#12868; keras.io's MNIST convnet through ``stateless_call``: 40 s an epoch in a loop, 4 s
        stepped)."""
        return self.unrolled

    @property
    def full_steps(self):
        return self.num_examples // self.batch_size

    @property
    def steps(self):
        return -(-self.num_examples // self.batch_size)


def cross_entropy(logits, labels):
    """Sparse categorical cross-entropy from logits, one value per example; binary cross-entropy for one logit.

    A model with one output unit (a binary classifier, its sigmoid made linear) is scored as Keras's
    ``BinaryCrossentropy(from_logits=True)``: ``softplus(z) - y z``.

    The label's log-probability is picked by comparing the labels with the class indices, not gathered: the same
    values and gradients, bit for bit, without the gather and its gradient's scatter in every training program.
    """
    logits = logits.astype(jnp.float32)
    if logits.shape[-1] == 1:
        z, y = logits[:, 0], labels.astype(jnp.float32)
        return jax.nn.softplus(z) - y * z
    logp = jax.nn.log_softmax(logits, axis=-1)
    picked = labels[:, None].astype(jnp.int32) == jnp.arange(logits.shape[-1], dtype=jnp.int32)
    return -jnp.sum(jnp.where(picked, logp, 0.0), axis=-1)


def predicted(logits):
    """The predicted class of each example: the largest logit, or a one-unit logit above 0 (probability 0.5)."""
    if logits.shape[-1] == 1:
        return (logits[:, 0] > 0).astype(jnp.int32)
    return jnp.argmax(logits, axis=-1)


def _mean_loss(ce, weight):
    """One model's batch loss: the mean cross-entropy over its real examples (``weight``: which count; ``None``:
    all), as Keras computes it."""
    return jnp.mean(ce) if weight is None else jnp.sum(jnp.where(weight > 0, ce, 0.0)) / jnp.sum(weight)


def _correct(logits, y, weight):
    """Correct predictions of one model's batch (``weight``: which examples count, ``None``: all)."""
    hits = (predicted(logits) == y).astype(jnp.float32)
    return jnp.sum(hits) if weight is None else jnp.sum(hits * weight)


def kth_largest(magnitudes, ks):
    """The ``ks[j]``-th largest of each non-negative float32 array ``magnitudes[j]`` (``ks[j] >= 1``), exactly.

    Non-negative floats order as their bit patterns do, so each answer is the
    largest bit pattern ``t`` with at least ``ks[j]`` magnitudes ``>= t``,
    found one bit at a time (31 counting passes, one loop for all the arrays):
    much cheaper than sorting, which tfmot does (``top_k``), and the same value.
    """
    bits = [jax.lax.bitcast_convert_type(m.reshape(-1), jnp.uint32) for m in magnitudes]

    def step(i, found):
        candidate = found | (jnp.uint32(1) << (jnp.uint32(30) - i.astype(jnp.uint32)))
        counts = jnp.stack([jnp.sum(b >= candidate[j]) for j, b in enumerate(bits)])
        return jnp.where(counts >= ks, candidate, found)

    found = jax.lax.fori_loop(0, 31, step, jnp.zeros(len(bits), jnp.uint32))
    return jax.lax.bitcast_convert_type(found, jnp.float32)


def layerwise_masks(weights, kept, blocks):
    """tfmot's magnitude mask of each kernel with ``kept[j]`` weights: every ``|w|`` at least the ``kept[j]``-th
    largest is kept.

    ``blocks[j]`` (padding) is multiplied in; padding holds zeros, which never
    outrank a real weight, so the threshold is that of the narrow kernel.
    """
    magnitudes = [jnp.abs(w) for w in weights]
    thresholds = kth_largest(magnitudes, jnp.maximum(kept, 1))
    return [(m >= thresholds[j]).astype(w.dtype) * b for j, (m, w, b) in enumerate(zip(magnitudes, weights, blocks))]


def normalizations(model):
    """``(moving mean, moving variance, 1 - momentum)`` positions in ``model.non_trainable_variables`` of each layer
    whose statistics recalibration re-estimates: every trainable ``BatchNormalization`` (nested models included)
    whose momentum is below 1 (one that is not trainable normalizes with its moving statistics even in training,
    and keeps them)."""
    index = {id(v): j for j, v in enumerate(model.non_trainable_variables)}
    out = []
    for layer in flat_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable and float(layer.momentum) < 1.0:
            out.append((index[id(layer.moving_mean)], index[id(layer.moving_variance)], 1.0 - float(layer.momentum)))
    return tuple(out)


class Program:
    """The training and evaluation programs of one template model and :class:`Config`.

    Args:
        model: the Keras 3 template (its variables are not used, only its ``stateless_call``).
        layout: the template's :class:`~widthvsprune.engines.jax.models.Layout`.
        config: the :class:`Config`.
    """

    def __init__(self, model, layout, config):
        self.model, self.layout, self.config = model, layout, config
        self.update, self.n_slots = OPTIMIZERS[config.optimizer]
        self.prunable = layout.prunable
        self.forward = batched.Forward(model) if config.batched else None
        self.norms = normalizations(model)

    # -- one model ---------------------------------------------------------

    def _mask(self, params, masks):
        params = list(params)
        for j, p in enumerate(self.prunable):
            params[p] = params[p] * masks[j]
        return params

    def _model_step(self, params, frozen, slots, masks, block, lr, x, y, weight, powers):
        if self.config.masked:
            params = self._mask(params, masks)

        def loss_fn(trainable):
            logits, new_frozen = self.model.stateless_call(trainable, list(frozen), x, training=True)
            return _mean_loss(cross_entropy(logits, y), weight), (logits, new_frozen)

        (loss, (logits, frozen)), grads = jax.value_and_grad(loss_fn, has_aux=True)(list(params))
        params, slots = self._update(params, slots, grads, block, lr, powers)
        return params, tuple(frozen), slots, loss, _correct(logits, y, weight)

    def _update(self, params, slots, grads, block, lr, powers):
        """One optimizer step (one model), the padding's gradients zeroed."""
        params, slots = self.update(list(params), slots, grads, lr, powers, block)
        return tuple(params), tuple(slots)

    def _batched_step(self, params, frozen, slots, masks, block, lr, x, y, weight, powers):
        """:meth:`_model_step` for every model at once, the forward pass batched (:attr:`Config.batched`).

        The gradient of the sum of the models' losses holds each model's own
        gradient: no model's loss depends on another's weights.
        """
        if self.config.masked:
            params = jax.vmap(self._mask)(params, masks)

        def loss_fn(trainable):
            logits, new_frozen = self.forward(trainable, frozen, x, training=True)
            loss = jax.vmap(_mean_loss, in_axes=(0, None))(jax.vmap(cross_entropy)(logits, y), weight)
            return jnp.sum(loss), (loss, logits, new_frozen)

        (_, (loss, logits, frozen)), grads = jax.value_and_grad(loss_fn, has_aux=True)(list(params))
        params, slots = jax.vmap(self._update, in_axes=(0, 0, 0, 0, 0, None))(params, slots, grads, block, lr, powers)
        correct = jax.vmap(_correct, in_axes=(0, 0, None))(logits, y, weight)
        return params, tuple(frozen), slots, loss, correct

    def _per_model(self, fn, in_axes, *args):
        """``jax.vmap(fn, in_axes)(*args)``, or the same written out model by model (:attr:`Config.unrolled`)."""
        if not self.config.unrolled:
            return jax.vmap(fn, in_axes=in_axes)(*args)
        count = next(len(jax.tree_util.tree_leaves(a)[0]) for a, axis in zip(args, in_axes) if axis == 0)
        outs = [fn(*(jax.tree_util.tree_map(lambda t, i=i: t[i], a) if axis == 0 else a
                     for a, axis in zip(args, in_axes))) for i in range(count)]
        return jax.tree_util.tree_map(lambda *xs: jnp.stack(xs), *outs)

    def _layerwise(self, params, masks, kept, block):
        new = layerwise_masks([params[p] for p in self.prunable], kept, [block[p] for p in self.prunable])
        return tuple(jnp.where(kept[j] > 0, n, masks[j]) for j, n in enumerate(new))

    # -- a group -----------------------------------------------------------

    def _step(self, carry, inputs, index, batch, weight):
        params, frozen, slots, masks, step, loss_sum, correct_sum = carry
        x_all, y_all, lr, kept, block, powers = inputs
        if self.config.masked:
            kept_now = jax.lax.dynamic_index_in_dim(kept, index, axis=1, keepdims=False)
            masks = jax.lax.cond(
                jnp.any(kept_now > 0),
                lambda: jax.vmap(self._layerwise)(params, masks, kept_now, block),
                lambda: masks,
            )
        p = jax.lax.dynamic_index_in_dim(powers, index, axis=0, keepdims=False)
        x, y = x_all[batch], y_all[batch]
        if self.config.batched:
            params, frozen, slots, loss, correct = self._batched_step(params, frozen, slots, masks, block, lr, x, y,
                                                                      weight, p)
        else:
            params, frozen, slots, loss, correct = self._per_model(
                self._model_step, (0, 0, 0, 0, 0, 0, 0, 0, None, None), params, frozen, slots, masks, block, lr, x,
                y, weight, p)
        return params, frozen, slots, masks, step + 1, loss_sum + loss, correct_sum + correct

    def _one_step(self, state, data, lr, kept, block, powers, index, batch, weight):
        zeros = jnp.zeros(lr.shape, jnp.float32)
        *state, loss, correct = self._step(tuple(state) + (zeros, zeros), (data[0], data[1], lr, kept, block, powers),
                                           index, batch, weight)
        return tuple(state), loss, correct

    def step(self, state, data, orders, lr, kept, block, powers, index):
        """Step ``index`` of an epoch, a full batch, for every model (:attr:`Config.stepped`): one step of
        :meth:`segment`'s loop. Returns ``(state, loss, correct)`` of the step."""
        bs, n = self.config.batch_size, self.config.num_examples
        batch = jax.lax.dynamic_slice_in_dim(orders, index * bs, bs, axis=1)
        weight = None if self.config.exact_last_batch else ((index * bs + jnp.arange(bs)) < n).astype(jnp.float32)
        return self._one_step(state, data, lr, kept, block, powers, index, batch, weight)

    def last_step(self, state, data, orders, lr, kept, block, powers):
        """The epoch's short last batch at its own size (:attr:`Config.exact_last_batch`), stepped."""
        bs, n, index = self.config.batch_size, self.config.num_examples, self.config.full_steps
        return self._one_step(state, data, lr, kept, block, powers, index, orders[:, index * bs : n], None)

    def end_epoch(self, state):
        """The kernels multiplied by their masks, as :meth:`segment` does where an epoch ends (stepped)."""
        params, frozen, slots, masks, counter = state
        return (tuple(jax.vmap(self._mask)(params, masks)), frozen, slots, masks, counter)

    def segment(self, state, data, orders, lr, kept, block, powers, start, stop, end_epoch):
        """Runs steps ``[start, stop)`` of an epoch for every model of the group.

        Args:
            state: ``(params, frozen, slots, masks, step)``, stacked over models.
            data: ``(x_train, y_train)``.
            orders: ``(models, steps * batch_size)`` example indices of this
                epoch, padded with zeros after the real ones.
            lr: ``(models,)`` learning rates.
            kept: ``(models, steps, prunable)`` kernels' kept counts at the
                steps where the layerwise masks update (0: no update), or ``None``.
            block: stacked padding blocks of the trainable variables (ones
                where a model has the weight, zeros in its padding).
            powers: ``(steps, 2)`` Adam's ``beta ** t`` per step of the epoch.
            start, stop: the steps to run (``0 <= start <= stop <= steps``).
            end_epoch: apply the masks at the end (the epoch ends here).

        Returns:
            ``(state, loss_sum, correct_sum)``: the sums over the segment's
            steps of each model's batch loss and of its correct predictions.
        """
        cfg = self.config
        bs, n = cfg.batch_size, cfg.num_examples
        params, frozen, slots, masks, step = state
        zeros = jnp.zeros(lr.shape, jnp.float32)
        carry = (params, frozen, slots, masks, step, zeros, zeros)
        inputs = (data[0], data[1], lr, kept, block, powers)
        positions = jnp.arange(bs)

        def body(i, carry):
            batch = jax.lax.dynamic_slice_in_dim(orders, i * bs, bs, axis=1)
            weight = None if cfg.exact_last_batch else ((i * bs + positions) < n).astype(jnp.float32)
            return self._step(carry, inputs, i, batch, weight)

        last = cfg.full_steps if cfg.exact_last_batch else cfg.steps
        carry = jax.lax.fori_loop(start, jnp.minimum(stop, last), body, carry)
        if cfg.exact_last_batch and cfg.steps > cfg.full_steps:
            index = cfg.full_steps
            carry = jax.lax.cond(
                (start <= index) & (stop > index),
                lambda c: self._step(c, inputs, index, orders[:, index * bs : n], None),
                lambda c: c,
                carry,
            )
        params, frozen, slots, masks, step, loss_sum, correct_sum = carry
        if cfg.masked:
            masked = jax.vmap(self._mask)(params, masks)
            params = tuple(jnp.where(end_epoch, a, b) for a, b in zip(masked, params))
        return (tuple(params), frozen, slots, masks, step), loss_sum, correct_sum

    def statistics(self, params, frozen, x_all, order):
        """``frozen`` with every batch normalization's moving statistics re-estimated over the training split.

        The split is visited once in ``order`` (a permutation), in batches of
        the program's batch size, the last one at its own size. Each batch runs
        forward in training mode with the moving statistics set to zero, so
        that the layers' own update (``moving * momentum + batch * (1 -
        momentum)``) gives ``batch * (1 - momentum)``: each layer's batch mean
        and variance. The result is their mean over the batches, each batch
        weighted by its size. No weight changes.

        Args:
            params, frozen: stacked over models, as in :meth:`segment`.
            x_all: the training inputs.
            order: ``(num_examples,)`` the order in which the examples are visited.

        Returns:
            The new ``frozen`` tuple.
        """
        cfg = self.config
        bs, n = cfg.batch_size, cfg.num_examples
        models = jax.tree_util.tree_leaves(params)[0].shape[0]

        def batch_statistics(x):
            zeroed = list(frozen)
            for mean, variance, _ in self.norms:
                zeroed[mean], zeroed[variance] = jnp.zeros_like(frozen[mean]), jnp.zeros_like(frozen[variance])
            if cfg.batched:
                _, new = self.forward(params, tuple(zeroed), jnp.broadcast_to(x, (models,) + x.shape), training=True)
            else:
                def one(p, f):
                    return tuple(self.model.stateless_call(list(p), list(f), x, training=True)[1])

                new = self._per_model(one, (0, 0), params, tuple(zeroed))
            return tuple((new[mean] / rate, new[variance] / rate) for mean, variance, rate in self.norms)

        def add(sums, x, size):
            return jax.tree_util.tree_map(lambda s, t: s + t * size, sums, batch_statistics(x))

        sums = tuple((jnp.zeros_like(frozen[m]), jnp.zeros_like(frozen[v])) for m, v, _ in self.norms)
        full = n // bs
        sums = jax.lax.fori_loop(
            0, full, lambda i, s: add(s, x_all[jax.lax.dynamic_slice_in_dim(order, i * bs, bs)], bs), sums)
        if n > full * bs:
            sums = add(sums, x_all[order[full * bs :]], n - full * bs)
        out = list(frozen)
        for (mean, variance, _), (mean_sum, variance_sum) in zip(self.norms, sums):
            out[mean], out[variance] = mean_sum / n, variance_sum / n
        return tuple(out)

    def evaluate(self, params, frozen, x, y):
        """Per-example loss and correctness of every model on ``(x, y)``: two ``(models, examples)`` arrays."""

        def one(params, frozen):
            logits, _ = self.model.stateless_call(list(params), list(frozen), x, training=False)
            return cross_entropy(logits, y), predicted(logits) == y

        if self.config.batched:
            return self._batched_evaluate(params, frozen, x, y)
        return self._per_model(one, (0, 0), params, frozen)

    def _batched_evaluate(self, params, frozen, x, y):
        """:meth:`evaluate` by the batched forward pass, :attr:`Config.eval_slice` examples at a time."""
        size = self.config.eval_slice if self.config.eval_slice and len(x) % self.config.eval_slice == 0 else len(x)

        def one_slice(xy):
            logits, _ = self.forward(params, frozen, xy[0], training=False, shared=True)
            return jax.vmap(cross_entropy, in_axes=(0, None))(logits, xy[1]), jax.vmap(predicted)(logits) == xy[1]

        slices = (x.reshape((-1, size) + x.shape[1:]), y.reshape(-1, size))
        ce, hits = jax.lax.map(one_slice, slices)  # (slices, models, size)
        models = ce.shape[1]
        return ce.transpose(1, 0, 2).reshape(models, -1), hits.transpose(1, 0, 2).reshape(models, -1)


QUICK_OPTIONS = {"xla_cpu_use_fusion_emitters": False}
"""XLA's options for a program compiled quickly: the CPU compiler's older
fusion emitters. Measured on a 2-core CPU, the quickstart's training
programs compiled in 0.24-0.47 s instead of 0.37-0.72 s and ran 0-30% slower
(about 10% for most); its evaluation programs compiled in about 0.09 s
instead of 0.13 s and ran as fast (as the MNIST-1D CNN's did). The results
were the same bit for bit (every weight, history and prediction of the
quickstart, every program's first call in the MNIST-1D CNN study), except a
digits MLP's mean training loss, in its seventh digit (its weights were the
same)."""

QUICK_FLOPS = 25e9
"""The most arithmetic (floating-point operations, all of its calls in one
pack together) of a training program compiled quickly. A training program's
compilation saves about 0.15 s, and at about 50 GFLOP/s (these programs on a
2-core CPU) a run 10-15% slower loses as much at about 50 GFLOP; half of
that keeps what a program loaded from the compilation cache later loses
under 0.1 s."""


def compiles_quickly(flops):
    """Whether a program doing ``flops`` floating-point operations in all compiles with :data:`QUICK_OPTIONS`."""
    return flops <= QUICK_FLOPS


class ProgramCache:
    """Compiled programs, ahead of time, once per program and argument shapes.

    A program can be *prepared*: lowered now and compiled in a background
    thread while the caller goes on (XLA compiles without holding Python's
    lock), so a group's evaluation program compiles while its training
    program compiles or runs.

    A program asked for ``quick`` compiles with :data:`QUICK_OPTIONS` on a
    CPU (elsewhere, or with an XLA that lacks the options, as any other); the
    same program compiled both ways is two programs here.

    Attributes:
        compile_seconds: wall time callers spent tracing, lowering and
            waiting for compilations.
        compiled: how many programs were compiled.
        compiled_quickly: how many of them with :data:`QUICK_OPTIONS`.
    """

    def __init__(self):
        self._compiled = {}
        self._programs = {}
        self._pool = None
        self._quick = None  # whether quick programs get QUICK_OPTIONS: on a CPU, until XLA turns them down
        self.compile_seconds = 0.0
        self.compiled = 0
        self.compiled_quickly = 0

    def program(self, key, model, layout, config):
        """The :class:`Program` of a template (``key``) and :class:`Config`, made once."""
        if (key, config) not in self._programs:
            self._programs[key, config] = Program(model, layout, config)
        return self._programs[key, config]

    def _signature(self, key, args, quick):
        leaves, treedef = jax.tree.flatten(args)
        shapes = tuple((np.shape(a), np.dtype(getattr(a, "dtype", None) or np.result_type(a)).str) for a in leaves)
        if quick and self._quick is None:
            self._quick = jax.default_backend() == "cpu"
        return key, treedef, shapes, bool(quick and self._quick)

    def _compile(self, lowered, quick):
        if quick:
            try:
                compiled = lowered.compile(compiler_options=QUICK_OPTIONS)
            except Exception as error:  # an XLA that does not know the options compiles as it always does
                if "compile option" not in str(error):
                    raise
                self._quick = False
            else:
                self.compiled_quickly += 1
                return compiled
        return lowered.compile()

    def prepare(self, key, fn, args, donate=(), quick=False):
        """Lowers ``fn`` for ``args`` and compiles it in the background, unless that program exists."""
        signature = self._signature(key, args, quick)
        if signature in self._compiled:
            return
        start = time.perf_counter()
        lowered = jax.jit(fn, donate_argnums=donate).lower(*args)
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="xla-compile")
        self._compiled[signature] = self._pool.submit(self._compile, lowered, signature[-1])
        self.compiled += 1
        self.compile_seconds += time.perf_counter() - start

    def call(self, key, fn, args, donate=(), quick=False):
        """Runs ``fn(*args)``, compiling it first if no program of ``key`` and these shapes exists.

        ``quick``: compile it with :data:`QUICK_OPTIONS` (:func:`compiles_quickly`).
        """
        signature = self._signature(key, args, quick)
        compiled = self._compiled.get(signature)
        if not callable(compiled):
            start = time.perf_counter()
            if compiled is None:
                compiled = self._compile(jax.jit(fn, donate_argnums=donate).lower(*args), signature[-1])
                self.compiled += 1
            else:
                compiled = compiled.result()
            self.compile_seconds += time.perf_counter() - start
            self._compiled[signature] = compiled
        return compiled(*args)
