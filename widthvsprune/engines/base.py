"""The engine seam: what the runner asks of a training framework, and what it gets back.

The runner, planner, store and reports never import a framework. They
describe a group of models to train together as a :class:`Pack` of
:class:`ModelSpec` s, hand it to an :class:`Engine`, and get one
:class:`Outcome` per model: its history, final (stripped) weights, the
kernels and masks the size accounting needs, accuracies, seconds, or an
error. Everything in this module is plain Python and NumPy.
"""

import abc
import dataclasses
from typing import Optional, Tuple

import numpy as np

from widthvsprune.pruning.schedules import ScheduleSteps
from widthvsprune.sizes import LayerWeights
from widthvsprune.steps import steps_per_epoch

VALIDATE = ("every_epoch", "last_epoch")


@dataclasses.dataclass(frozen=True)
class PruneSpec:
    """How one model is pruned while it trains.

    Attributes:
        target: the size point: the sparsity of all the model's prunable
            kernels together.
        steps: the schedule's :class:`ScheduleSteps` (begin, end, frequency).
        allocation: how ``target`` is spread over the prunable layers: a
            registered allocation (:mod:`widthvsprune.pruning.allocations`).
        prune_output: ``False`` keeps the output layer dense; the other
            layers then take its zeros.
        initial_sparsity: the schedule's first sparsity (a kernel's own
            target when that is lower).
        power: exponent of the polynomial schedule.
        seed: seed of random selection.
        targets: explicit final sparsities, one per prunable kernel in model
            order, instead of ``allocation``; the weights to remove are then
            drawn at random (a fixed sparse shape).
    """

    target: float
    steps: ScheduleSteps
    allocation: str = "uniform"
    prune_output: bool = True
    initial_sparsity: float = 0.0
    power: int = 3
    seed: int = 0
    targets: Optional[Tuple[float, ...]] = None


@dataclasses.dataclass(frozen=True, eq=False)
class ModelSpec:
    """One model of a pack.

    Attributes:
        family: a registered family name.
        widths: the model's widths.
        seed: its initial weights (when built from scratch) and its batch
            order (:func:`batch_order`).
        learning_rate: its optimizer's step size.
        initial_weights: start from these weights (in ``get_weights()``
            order of the plain model) instead of a fresh initialization.
        prune: prune while training (``None``: a dense model).
        log_dir: a TensorBoard folder for this model, or ``None``.
    """

    family: str
    widths: Tuple[int, ...]
    seed: int
    learning_rate: float
    initial_weights: Optional[Tuple[np.ndarray, ...]] = None
    prune: Optional[PruneSpec] = None
    log_dir: Optional[str] = None


@dataclasses.dataclass(frozen=True, eq=False)
class Pack:
    """Models trained together with one recipe.

    Every model trains exactly as it would alone: its own initial weights,
    batch order, optimizer state and learning rate.

    Attributes:
        models: the :class:`ModelSpec` s.
        batch_size: examples per step.
        optimizer: ``"adam"`` or ``"sgd"`` (momentum 0.9).
        epochs: passes over the training split; ``0`` trains nothing and
            evaluates every model as it is (its history is one row,
            ``epoch`` 0, with its loss and accuracy on the training and
            validation splits; batch normalization keeps its statistics).
        max_steps: stop every model after this many optimizer steps (the
            last epoch is then partial); ``None`` trains whole epochs.
        validate: ``"every_epoch"``, or ``"last_epoch"`` when only the final
            validation accuracy is used (a search trial's score).
        test: evaluate on the test split (search trials do not).
        weights: return final weights and layers (search trials do not).
        recalibrate_batchnorm: before any evaluation (the last epoch's
            validation, the test split), re-estimate the moving statistics of
            every ``BatchNormalization`` layer over the training split
            (:func:`recalibration_batches`); the returned weights hold them.
            ``False`` keeps Keras's momentum averages (the old behaviour).
            Models without batch normalization are unaffected.
    """

    models: Tuple[ModelSpec, ...]
    batch_size: int
    optimizer: str
    epochs: int
    max_steps: Optional[int] = None
    validate: str = "every_epoch"
    test: bool = True
    weights: bool = True
    recalibrate_batchnorm: bool = True

    def __post_init__(self):
        object.__setattr__(self, "models", tuple(self.models))
        if self.validate not in VALIDATE:
            raise ValueError(f"Expected validate to be one of {list(VALIDATE)}. Received: validate={self.validate!r}")


@dataclasses.dataclass
class Outcome:
    """What training one model produced.

    Attributes:
        history: one dict per epoch: ``epoch``, ``loss``, ``accuracy`` and,
            where validated, ``val_loss`` and ``val_accuracy``.
        val_accuracy, val_loss: on the validation split after training.
        test_accuracy, test_loss: on the test split (``None`` if not asked).
        test_correct: one bool per test example, whether the model got it
            right (``None`` if not asked).
        weights: the final plain (stripped) weights, ``get_weights()`` order.
        layers: the prunable-type weights (kernels with their biases) as
            :class:`LayerWeights`, zeros included.
        other_params: parameters outside ``layers`` (always dense).
        seconds: this model's share of the pack's training time.
        mask_updates: mask updates made while training (pruned models).
        error: why the model failed (a non-finite loss, say), or ``None``.
        where: where it trained, when not in the driver (``host:pid`` of a Ray worker).
    """

    history: list
    val_accuracy: float = float("nan")
    val_loss: float = float("nan")
    test_accuracy: Optional[float] = None
    test_loss: Optional[float] = None
    test_correct: Optional[np.ndarray] = None
    weights: Optional[list] = None
    layers: Optional[list] = None
    other_params: int = 0
    seconds: float = 0.0
    mask_updates: int = 0
    error: Optional[str] = None
    where: str = ""

    @property
    def ok(self):
        return self.error is None


def failed(error, history=()):
    """An :class:`Outcome` for a model that did not train."""
    return Outcome(history=list(history), error=str(error))


def build_each(pack, build):
    """Builds every model of a pack on its own, so that one that cannot be built fails alone.

    Args:
        pack: the :class:`Pack`.
        build: ``f(spec) -> anything``; it may raise (a user's builder, an
            allocation that cannot reach its target).

    Returns:
        ``(built, failures)``: ``{index: build(spec)}`` in pack order, and
        ``{index: Outcome}`` of the models that failed, each with the reason
        in one line.
    """
    built, failures = {}, {}
    for i, spec in enumerate(pack.models):
        try:
            built[i] = build(spec)
        except Exception as error:  # recorded as that model's failure; the pack goes on
            failures[i] = failed(one_line(error))
    return built, failures


def merge_outcomes(built, outcomes, failures):
    """The outcomes of a pack's built models (``outcomes``, in ``built``'s order) and failed ones, in pack order."""
    out = dict(failures)
    out.update(zip(built, outcomes))
    return [out[i] for i in range(len(out))]


def one_line(error):
    """``Type: message`` of an exception, first line only."""
    text = f"{type(error).__name__}: {error}".strip()
    return text.splitlines()[0] if text else type(error).__name__


def batch_order(num_examples, epochs, seed):
    """The order in which a seed visits the training set: one permutation per epoch.

    Every engine uses it, so a model's batches do not depend on the engine
    or on which other models share its pack.
    """
    rng = np.random.default_rng(int(seed))
    return np.stack([rng.permutation(int(num_examples)) for _ in range(int(epochs))]).astype("int32")


#: The seed of the one order in which every engine visits the training split to recalibrate batch normalization.
RECALIBRATION_SEED = 0


def recalibration_order(num_examples):
    """The order in which recalibration visits the training split (:func:`recalibration_batches`)."""
    return batch_order(num_examples, 1, RECALIBRATION_SEED)[0]


def recalibration_batches(num_examples, batch_size):
    """The batches over which batch normalization's moving statistics are re-estimated: one fixed pass.

    Every model, on every engine, uses the same batches: one permutation of
    the training split (seed :data:`RECALIBRATION_SEED`, independent of the
    model's own seed) cut into batches of ``batch_size``, the last one short
    when ``batch_size`` does not divide the split. Each batch runs forward in
    training mode (no weight update); the recalibrated moving mean is the mean
    of the batch means, and the moving variance the mean of the batch
    variances, each batch weighted by its size. So the moving mean is the
    exact mean of the layer's inputs over the split, and the moving variance
    what the layer normalized with while training, averaged.

    Args:
        num_examples: size of the training split.
        batch_size: examples per batch (the pack's).

    Returns:
        A list of int32 index arrays.
    """
    order = recalibration_order(num_examples)
    size = max(1, int(batch_size))
    return [order[start : start + size] for start in range(0, int(num_examples), size)]


class Engine(abc.ABC):
    """A training framework behind the seam.

    An engine builds family models with its own Keras, trains packs and
    measures the results. It is created once per process by
    :func:`widthvsprune.engines.load`.
    """

    name = ""

    @abc.abstractmethod
    def train(self, pack, splits):
        """Trains every model of ``pack`` on ``splits``; returns one :class:`Outcome` per model, in order.

        A model that fails (a non-finite loss) gets an :class:`Outcome` with
        ``error`` set; the others are unaffected. An exception means the whole
        pack failed.
        """

    @abc.abstractmethod
    def count_params(self, family, widths, input_shape, num_classes):
        """Parameters of the family's model at ``widths``, counted by building it (no training)."""

    def gpus(self):
        """Accelerators this engine sees (0 on a CPU)."""
        return 0

    @property
    def compile_seconds(self):
        """Seconds this engine has spent compiling programs so far, in this process (0 where it cannot tell)."""
        return 0.0

    @property
    def programs_compiled(self):
        """Programs this engine has compiled so far, in this process (0 where it cannot tell)."""
        return 0

    def limit_threads(self, workers):  # noqa: B027 - most engines need nothing
        """Splits the CPU cores between ``workers`` training processes (before any training)."""


__all__ = [
    "Engine",
    "LayerWeights",
    "ModelSpec",
    "Outcome",
    "Pack",
    "PruneSpec",
    "ScheduleSteps",
    "batch_order",
    "build_each",
    "failed",
    "merge_outcomes",
    "one_line",
    "recalibration_batches",
    "recalibration_order",
    "steps_per_epoch",
]
