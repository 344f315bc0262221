"""Training a pack with the jax engine: groups, epochs, histories and outcomes.

Per group (:mod:`.packing`), :class:`GroupRun` stacks the members' weights,
runs each epoch as one or more calls of the group's compiled segment program
(:mod:`.programs`), cut where the host writes ``global`` or ``random`` masks,
where ``max_steps`` ends the training, or where a caller observes the state,
and validates with the group's compiled evaluation program. Python does work
per epoch and per host mask update, never per step, except in a stepped group
(XLA's convolutions on a CPU, :attr:`~.programs.Config.stepped`), where it
calls one program per step.
"""

import math
import time

import jax
import numpy as np

from widthvsprune.engines import base
from widthvsprune.engines.jax import batched, chunks, models, optimizers, packing, programs, pruning
from widthvsprune.pruning import kernel_masks

EVAL_CHUNK_MAX = 1024
#: How a group's forward pass runs (:func:`batched_forward`).
FORWARDS = ("auto", "batched", "keras")


class DeviceData:
    """A dataset's splits on the default device; validation and test in chunks of one padded size.

    Args:
        splits: a :class:`widthvsprune.data.Splits`.
    """

    def __init__(self, splits):
        self.splits = splits
        self.train = (_put(splits.x_train, np.float32), _put(splits.y_train, np.int32))
        size = max(len(splits.x_val), len(splits.x_test))
        self.chunk = min(EVAL_CHUNK_MAX, 1 << max(0, (size - 1).bit_length()))
        self.val = self._chunks(splits.x_val, splits.y_val)
        self.test = self._chunks(splits.x_test, splits.y_test)
        self._train_chunks = None

    @property
    def train_chunks(self):
        """The training split in chunks, as validation and test (made on first use: an evaluation-only pack's)."""
        if self._train_chunks is None:
            self._train_chunks = self._chunks(self.splits.x_train, self.splits.y_train)
        return self._train_chunks

    def _chunks(self, x, y):
        out = []
        for start in range(0, len(x), self.chunk):
            xs, ys = x[start : start + self.chunk], y[start : start + self.chunk]
            pad = self.chunk - len(xs)
            xs = np.concatenate([xs, np.zeros((pad,) + xs.shape[1:], np.float32)]) if pad else xs
            ys = np.concatenate([ys, np.zeros(pad, ys.dtype)]) if pad else ys
            out.append((_put(xs, np.float32), _put(ys, np.int32), len(x[start : start + self.chunk])))
        return out


def _put(array, dtype=None):
    """``array`` on the default device (``jnp.asarray`` would compile a program per new shape)."""
    return jax.device_put(np.asarray(array) if dtype is None else np.asarray(array, dtype))


def check_forward(forward):
    """Raises ``ValueError`` unless ``forward`` is one of :data:`FORWARDS`."""
    if forward not in FORWARDS:
        raise ValueError(f"Expected forward to be one of {list(FORWARDS)}. Received: forward={forward!r}")


def batched_forward(model, layout, forward="auto"):
    """Whether a group of ``model``'s shape runs one batched forward pass (:mod:`.batched`) for all its models.

    ``forward`` is ``"batched"`` (wherever :func:`~.batched.supported`),
    ``"keras"`` (never: Keras's ``stateless_call`` per model, ``vmap``-ed or
    unrolled) or ``"auto"``: batched for convolutional models on a CPU,
    where XLA's convolutions of a ``vmap`` are slow (see
    ``docs/engines-jax-convolutions.md``).

    Raises:
        ValueError: for another ``forward``.
    """
    check_forward(forward)
    if forward == "keras" or (forward == "auto" and not (layout.convolutional and jax.default_backend() == "cpu")):
        return False
    return batched.supported(model)


def models_per_program(model, layout, batch_size, forward="auto"):
    """The most models one compiled program should train on this device, or ``None`` (no limit here).

    On a CPU, where a group's forward pass is batched
    (:func:`batched_forward`), a step slows down once its activations
    outgrow the caches (:func:`~widthvsprune.engines.jax.chunks.models_per_chunk`),
    and a step costs the same per model whether it holds one model or
    several (``benchmarks/convolutions.py``). A larger pack then trains in
    groups of this many models, a power of two, so that few compiled
    programs serve packs of every size (6 models: 4 and 2).
    """
    if jax.default_backend() != "cpu" or not batched_forward(model, layout, forward):
        return None
    most = chunks.models_per_chunk(model, batch_size)
    return 1 << (most.bit_length() - 1)


def _config(group, pack, num_examples, forward):
    """The :class:`~widthvsprune.engines.jax.programs.Config` of a group's programs."""
    cpu = jax.default_backend() == "cpu"
    masked = any(m.spec.prune is not None for m in group.members)
    batched_pass = batched_forward(group.model, group.layout, forward)
    return programs.Config(
        batch_size=int(pack.batch_size),
        num_examples=int(num_examples),
        optimizer=pack.optimizer,
        masked=masked,  # one program for every allocation (see Config)
        exact_last_batch=group.layout.batch_coupled,
        unrolled=group.layout.convolutional and cpu and not batched_pass,
        batched=batched_pass,
        eval_slice=chunks.examples_per_slice(group.model, group.size) if batched_pass and cpu else 0,
    )


def diverged_message(epoch, loss):
    return f"the training loss became non-finite in epoch {epoch} (loss={float(loss)})"


class GroupRun:
    """Trains one :class:`~widthvsprune.engines.jax.packing.Group` of a pack.

    Args:
        group: the group.
        pack: the :class:`~widthvsprune.engines.base.Pack`.
        data: the :class:`DeviceData`.
        cache: the :class:`~widthvsprune.engines.jax.programs.ProgramCache`.
        forward: see :func:`batched_forward`.
    """

    def __init__(self, group, pack, data, cache, forward="auto"):
        self.group, self.pack, self.data, self.cache = group, pack, data, cache
        layout, specs = group.layout, [m.spec for m in group.members]
        for spec in specs:
            if spec.prune is not None:
                pruning.check(spec.prune)
        if pack.max_steps is not None and int(pack.max_steps) < 1:
            raise ValueError(f"Expected max_steps >= 1 or None. Received: max_steps={pack.max_steps!r}")
        if pack.optimizer not in optimizers.OPTIMIZERS:
            raise ValueError(
                f"Expected optimizer to be one of {list(optimizers.OPTIMIZERS)}. Received: optimizer={pack.optimizer!r}"
            )
        self.config = _config(group, pack, len(data.splits.x_train), forward)
        self.program = cache.program(group.key, group.model, layout, self.config)
        self.host = {
            i: kernel_masks.HostMasks(m.spec.prune, models.allocation_layers(m.layout))
            for i, m in enumerate(group.members)
            if m.spec.prune is not None and kernel_masks.on_host(m.spec.prune)
        }
        extra = group.size - len(specs)
        self.lr = np.array([float(s.learning_rate) for s in specs] + [0.0] * extra, np.float32)
        n = self.config.num_examples
        self.orders = [base.batch_order(n, pack.epochs, s.seed) for s in specs] if pack.epochs else []
        shapes = [layout.shapes[w] for w in layout.trainable]
        self.block = tuple(_put(a) for a in packing.stack(
            group, lambda m, j: np.ones(m.layout.shapes[m.layout.trainable[j]], np.float32), shapes))
        self.state = self._initial_state()
        self.steps_run = 0
        self.quick = self._compiles_quickly()
        x, y, _ = data.val[0]
        cache.prepare(self._eval_key(), self.program.evaluate, (self.state[0], self.state[1], x, y), quick=True)

    def _compiles_quickly(self):
        """Whether the group's training programs compile with XLA's quicker options
        (:func:`~widthvsprune.engines.jax.programs.compiles_quickly`), from the arithmetic the pack asks of
        them: a training step is about three forward passes of every model."""
        forward = 2 * models.multiply_adds(self.group.layout) * self.group.size
        return programs.compiles_quickly(3 * forward * self.config.batch_size * self.total_steps())

    def _eval_key(self):
        return "eval", self.group.key, self.group.size, self.config.batched

    def _initial_state(self):
        group, layout = self.group, self.group.layout
        template_frozen = [v.value for v in group.model.non_trainable_variables]
        params = packing.stack(group, lambda m, j: m.weights[m.layout.trainable[j]],
                               [layout.shapes[w] for w in layout.trainable])
        frozen = tuple(
            np.stack([np.asarray(template_frozen[j])] * group.size) if w is None else packing.stack(
                group, lambda m, _, j=j: m.weights[m.layout.frozen[j]], [layout.shapes[w]])[0]
            for j, w in enumerate(layout.frozen)
        )
        masks = ()
        if self.config.masked:
            masks = packing.stack(
                group, lambda m, j: np.ones(m.layout.shapes[m.layout.trainable[m.layout.prunable[j]]], np.float32),
                [layout.shapes[layout.trainable[p]] for p in layout.prunable])
        params = tuple(_put(p) for p in params)
        slots = optimizers.init_slots(self.config.optimizer, params)
        return params, tuple(_put(f) for f in frozen), slots, tuple(_put(m) for m in masks), np.int32(0)

    # -- per epoch inputs ------------------------------------------------------

    def _epoch_orders(self, epoch):
        cfg = self.config
        width = cfg.steps * cfg.batch_size
        rows = [np.pad(order[epoch], (0, width - cfg.num_examples)) for order in self.orders]
        rows += [rows[0]] * (self.group.size - len(rows))
        return np.stack(rows).astype(np.int32)

    def _kept(self, first, count):
        steps = self.config.steps
        rows = [pruning.kept_table(m.spec.prune, m.targets, m.layout, first, count, steps) for m in self.group.members]
        rows += [np.zeros_like(rows[0])] * (self.group.size - len(rows))
        return np.stack(rows)

    def _host_update(self, step):
        params, frozen, slots, masks, counter = self.state
        prunable = self.group.layout.prunable
        kernels = [np.array(params[p]) for p in prunable]
        current = [np.array(m) for m in masks]
        for i, masks_of in self.host.items():
            if not masks_of.updates_at(step):
                continue
            layout = self.group.members[i].layout
            shapes = [layout.shapes[layout.trainable[p]] for p in prunable]
            own_k = [models.extract(kernels[j][i], s) for j, s in enumerate(shapes)]
            own_m = [models.extract(current[j][i], s) for j, s in enumerate(shapes)]
            for j, new in enumerate(masks_of.update(step, own_k, own_m)):
                current[j][i] = models.embed(new, current[j][i].shape)
                kernels[j][i] = models.embed(own_k[j] * new, kernels[j][i].shape)
        params = list(params)
        for j, p in enumerate(prunable):
            params[p] = _put(kernels[j])
        self.state = (tuple(params), frozen, slots, tuple(_put(m) for m in current), counter)

    # -- running -----------------------------------------------------------------

    def total_steps(self):
        total = self.pack.epochs * self.config.steps
        return total if self.pack.max_steps is None else min(total, int(self.pack.max_steps))

    def run(self, observe=None, observe_steps=()):
        """Trains every epoch; returns ``(histories, errors)``, one per member.

        ``observe(step, run)`` is called after each optimizer step listed in ``observe_steps``.
        """
        cfg, pack, members = self.config, self.pack, self.group.members
        steps, total = cfg.steps, self.total_steps()
        if total == 0:
            return self.as_is(), [None] * len(members)
        epochs = -(-total // steps)
        histories, errors = [[] for _ in members], [None] * len(members)
        key = ("segment", self.group.key, cfg)
        for epoch in range(epochs):
            first = epoch * steps
            count = min(steps, total - first)
            host_steps = {t for t in range(first + 1, first + count + 1)
                          if any(h.updates_at(t) for h in self.host.values())}
            cuts = {0, count} | {t - first - 1 for t in host_steps}
            cuts |= {t - first for t in observe_steps if first < t <= first + count}
            cuts = sorted(cuts)
            inputs = (self.data.train, self._epoch_orders(epoch), self.lr,
                      self._kept(first + 1, count) if cfg.masked else None,
                      self.block, optimizers.adam_powers(first + 1, steps))
            loss_sum, correct_sum = np.zeros(self.group.size), np.zeros(self.group.size)
            for a, b in zip(cuts, cuts[1:]):
                if first + a + 1 in host_steps:
                    self._host_update(first + a + 1)
                loss, correct = self._segment(key, inputs, a, b, b == count)
                loss_sum += loss
                correct_sum += correct
                self.steps_run = first + b
                if observe is not None and first + b in observe_steps:
                    observe(first + b, self)
            losses = loss_sum / count
            accuracies = correct_sum / (cfg.num_examples if count == steps else count * cfg.batch_size)
            validated = pack.validate == "every_epoch" or epoch == epochs - 1
            if epoch == epochs - 1 and pack.recalibrate_batchnorm:
                self.recalibrate()
            val_loss, val_accuracy, _ = self.evaluate(self.data.val) if validated else (None, None, None)
            for i in range(len(members)):
                if errors[i] is not None:
                    continue
                row = {"epoch": epoch + 1, "loss": float(losses[i]), "accuracy": float(accuracies[i])}
                if validated:
                    row.update(val_loss=float(val_loss[i]), val_accuracy=float(val_accuracy[i]))
                histories[i].append(row)
                if not math.isfinite(row["loss"]):
                    errors[i] = diverged_message(epoch + 1, row["loss"])
            if all(e is not None for e in errors):
                break
        return histories, errors

    def _segment(self, key, inputs, start, stop, end_epoch):
        """Runs steps ``[start, stop)`` of the epoch whose ``inputs`` are given; returns the sums of each model's
        batch losses and correct predictions. One program call, or one per step (:attr:`Config.stepped`)."""
        if not self.config.stepped:
            args = (self.state, *inputs, np.int32(start), np.int32(stop), np.bool_(end_epoch))
            self.state, loss, correct = self.cache.call(key, self.program.segment, args, donate=(0,), quick=self.quick)
            return np.asarray(loss), np.asarray(correct)
        cfg, losses = self.config, []
        for index in range(start, stop):
            if cfg.exact_last_batch and index == cfg.full_steps:
                call = ("last step",) + key, self.program.last_step, (self.state, *inputs)
            else:
                call = ("step",) + key, self.program.step, (self.state, *inputs, np.int32(index))
            self.state, loss, correct = self.cache.call(*call, donate=(0,), quick=self.quick)
            losses.append((loss, correct))
        if end_epoch and cfg.masked:
            self.state = self.cache.call(("end epoch",) + key, self.program.end_epoch, (self.state,), donate=(0,),
                                         quick=self.quick)
        size = (self.group.size,)
        return (sum((np.asarray(loss) for loss, _ in losses), np.zeros(size)),
                sum((np.asarray(correct) for _, correct in losses), np.zeros(size)))

    def as_is(self):
        """The histories of an evaluation-only pack (no epoch): one row, ``epoch`` 0, of every member as it is, on
        the training and validation splits (no step, no recalibration)."""
        loss, accuracy, _ = self.evaluate(self.data.train_chunks)
        val_loss, val_accuracy, _ = self.evaluate(self.data.val)
        return [[{"epoch": 0, "loss": float(loss[i]), "accuracy": float(accuracy[i]),
                  "val_loss": float(val_loss[i]), "val_accuracy": float(val_accuracy[i])}]
                for i in range(len(self.group.members))]

    def recalibrate(self):
        """Re-estimates every member's batch normalization statistics over the training split
        (:meth:`~widthvsprune.engines.jax.programs.Program.statistics`); nothing for a model without any."""
        if not self.program.norms:
            return
        params, frozen, slots, masks, counter = self.state
        order = _put(base.recalibration_order(self.config.num_examples), np.int32)
        frozen = self.cache.call(("statistics", self.group.key, self.config), self.program.statistics,
                                 (params, frozen, self.data.train[0], order), quick=self.quick)
        self.state = (params, tuple(frozen), slots, masks, counter)

    def evaluate(self, chunks):
        """``(loss, accuracy, correct)`` per model slot on a split's chunks."""
        params, frozen = self.state[0], self.state[1]
        losses, hits = [], []
        for x, y, real in chunks:
            ce, ok = self.cache.call(self._eval_key(), self.program.evaluate, (params, frozen, x, y), quick=True)
            losses.append(np.asarray(ce)[:, :real])
            hits.append(np.asarray(ok)[:, :real])
        ce, ok = np.concatenate(losses, axis=1), np.concatenate(hits, axis=1)
        return ce.mean(axis=1), ok.mean(axis=1), ok

    def weights(self):
        """Every member's current weights, ``get_weights()`` order, its own shapes."""
        params, frozen = [np.asarray(a) for a in self.state[0]], [np.asarray(a) for a in self.state[1]]
        out = []
        for i, member in enumerate(self.group.members):
            layout = member.layout
            own = [None] * len(layout.shapes)
            for arrays, indices in ((params, layout.trainable), (frozen, layout.frozen)):
                for j, w in enumerate(indices):
                    if w is not None:
                        own[w] = models.extract(arrays[j][i], layout.shapes[w]).copy()
            out.append(own)
        return out

    def masks(self, i):
        """Member ``i``'s masks, one per prunable kernel (ones when not masked)."""
        layout = self.group.members[i].layout
        shapes = [layout.shapes[layout.trainable[p]] for p in layout.prunable]
        if not self.config.masked:
            return [np.ones(s, np.float32) for s in shapes]
        return [models.extract(np.asarray(m)[i], s).copy() for m, s in zip(self.state[3], shapes)]


def train_pack(pack, splits, templates, cache, data=None, pad=True, max_models=None, observe=None,
               observe_steps=(), forward="auto"):
    """Trains every model of ``pack`` on ``splits``; one :class:`~widthvsprune.engines.base.Outcome` per model.

    Args:
        pack: the :class:`~widthvsprune.engines.base.Pack`.
        splits: a :class:`widthvsprune.data.Splits`.
        templates: the engine's :class:`~widthvsprune.engines.jax.packing.Templates`.
        cache: the engine's :class:`~widthvsprune.engines.jax.programs.ProgramCache`.
        data: the splits as :class:`DeviceData` (made here if ``None``).
        pad: train narrow models embedded in a common shape (see :mod:`.packing`).
        max_models: most models per compiled program: an int, a function of
            the template key, or ``None``.
        observe, observe_steps: see :meth:`GroupRun.run` (called with each group's run).
        forward: how each group's forward pass runs (:func:`batched_forward`).
    """
    start = time.perf_counter()
    shape, classes = splits.input_shape, splits.num_classes
    members, outcomes = [], [None] * len(pack.models)
    for i, spec in enumerate(pack.models):  # a model that cannot be built fails alone
        try:
            members.append(packing.member(i, spec, templates, shape, classes))
        except Exception as error:
            outcomes[i] = base.failed(base.one_line(error))
    data = DeviceData(splits) if data is None else data
    for group in packing.plan(members, templates, shape, classes, pad, max_models):
        run = GroupRun(group, pack, data, cache, forward)
        histories, errors = run.run(observe, observe_steps)
        test = run.evaluate(data.test) if pack.test else None
        weights = run.weights() if pack.weights else None
        for i, m in enumerate(group.members):
            if errors[i] is not None:
                outcomes[m.index] = base.failed(errors[i], histories[i])
                continue
            last = histories[i][-1]
            outcome = base.Outcome(
                history=histories[i],
                val_accuracy=last["val_accuracy"],
                val_loss=last["val_loss"],
                mask_updates=pruning.mask_updates(m.spec.prune, run.steps_run),
            )
            if test is not None:
                outcome.test_loss, outcome.test_accuracy = float(test[0][i]), float(test[1][i])
                outcome.test_correct = test[2][i].copy()
            if pack.weights:
                outcome.weights = weights[i]
                outcome.layers = models.layer_weights(m.layout, outcome.weights, m.targets)
                outcome.other_params = models.other_params(m.layout)
            outcomes[m.index] = outcome
    seconds = (time.perf_counter() - start) / max(1, len(members))
    for outcome in outcomes:
        if outcome.ok:
            outcome.seconds = seconds
    return outcomes
