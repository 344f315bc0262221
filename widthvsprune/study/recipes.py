"""The parts of a study: how a model trains (:class:`Recipe`), is pruned (:class:`Pruning`) and tuned (:class:`Tuning`).

Frozen dataclasses; :meth:`problems` lists what is wrong with one, one line
each, in the form ``field: Expected ... Received: field=value``.
"""

import dataclasses
import math
from typing import Optional, Tuple

from widthvsprune import keys
from widthvsprune.errors import problem
from widthvsprune.pruning import allocations

OPTIMIZERS = ("adam", "sgd")
ORACLES = ("bayesian", "random")
OUTPUTS = ("pruned", "dense")


def is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclasses.dataclass(frozen=True)
class Recipe:
    """How one model is trained.

    Args:
        epochs: passes over the training split.
        batch_size: examples per step.
        learning_rate: the optimizer's step size.
        optimizer: ``"adam"`` or ``"sgd"`` (with momentum 0.9).
    """

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-3
    optimizer: str = "adam"

    def problems(self, prefix):
        out = []
        if not is_int(self.epochs) or self.epochs <= 0:
            out.append(problem(f"{prefix}.epochs", "an integer > 0", self.epochs))
        if not is_int(self.batch_size) or self.batch_size <= 0:
            out.append(problem(f"{prefix}.batch_size", "an integer > 0", self.batch_size))
        if (
            not is_number(self.learning_rate)
            or not math.isfinite(self.learning_rate)
            or self.learning_rate <= 0
        ):
            out.append(
                problem(f"{prefix}.learning_rate", "a finite number > 0", self.learning_rate)
            )
        if self.optimizer not in OPTIMIZERS:
            out.append(problem(f"{prefix}.optimizer", f"one of {list(OPTIMIZERS)}", self.optimizer))
        return out


@dataclasses.dataclass(frozen=True)
class Pruning:
    """How the pruned arm is pruned.

    Args:
        allocation: how the size point's zeros are spread over the prunable
            layers, a registered allocation
            (:mod:`widthvsprune.pruning.allocations`): ``"uniform"`` (tfmot's
            own: every pruned layer at the target; ``"layerwise"`` is its
            earlier name), ``"first_dense"``, ``"uniform_plus"``, ``"erk"``,
            ``"lamp"``, ``"global"`` (one magnitude threshold across all
            layers), ``"random"`` (random selection on the same schedule, a
            sanity baseline), or one of your own.
        initial_sparsity: sparsity at the first mask update; the target is
            used instead when it is lower.
        frequency: steps between mask updates; ``None`` (the default)
            follows the fine-tune's length: masks change
            :data:`~widthvsprune.pruning.schedules.AUTO_UPDATES` (16) times
            over the pruning span, so the sparsity grows gradually whatever
            the fine-tune's length.
        power: exponent of the polynomial schedule (3 is Zhu & Gupta's cubic).
        begin_step: fine-tuning step of the first mask update.
        end_fraction: share of the fine-tune after which masks stop changing;
            the rest recovers accuracy at the final sparsity (1.0 prunes until
            the last step, as the seed notebook does).
        prune_output: also prune the output layer's kernel (``False``: it
            stays dense and the other layers take its zeros).
        variant: the earlier name of ``allocation``, still accepted.
    """

    allocation: str = keys.renamed_field("uniform", "variant", allocations.OLD_NAMES)
    initial_sparsity: float = 0.0
    frequency: Optional[int] = None
    power: int = 3
    begin_step: int = 0
    end_fraction: float = 0.75
    prune_output: bool = True
    variant: Optional[str] = dataclasses.field(default=None, repr=False, metadata=keys.added_field(None).metadata)

    def __post_init__(self):
        if self.variant is not None:  # the field's earlier name
            object.__setattr__(self, "allocation", self.variant)
            object.__setattr__(self, "variant", None)
        object.__setattr__(self, "allocation", allocations.canonical(self.allocation))  # "layerwise" is "uniform"

    def problems(self, prefix="pruning"):
        out = []
        if self.allocation not in allocations.accepted_names():
            out.append(problem(f"{prefix}.allocation", f"one of {allocations.accepted_names()}", self.allocation))
        if not is_number(self.initial_sparsity) or not 0 <= self.initial_sparsity < 1:
            out.append(
                problem(f"{prefix}.initial_sparsity", "a number in [0, 1)", self.initial_sparsity)
            )
        if self.frequency is not None and (not is_int(self.frequency) or self.frequency <= 0):
            out.append(problem(f"{prefix}.frequency", "None (follows the fine-tune's length) or an integer > 0",
                               self.frequency))
        if not is_int(self.power) or self.power <= 0:
            out.append(problem(f"{prefix}.power", "an integer > 0", self.power))
        if not is_int(self.begin_step) or self.begin_step < 0:
            out.append(problem(f"{prefix}.begin_step", "an integer >= 0", self.begin_step))
        if not is_number(self.end_fraction) or not 0 < self.end_fraction <= 1:
            out.append(problem(f"{prefix}.end_fraction", "a number in (0, 1]", self.end_fraction))
        if not isinstance(self.prune_output, bool):
            out.append(problem(f"{prefix}.prune_output", "True or False", self.prune_output))
        return out


@dataclasses.dataclass(frozen=True)
class Tuning:
    """How every arm is tuned: one oracle, the same number of trials per search.

    Each arm gets a search over its own natural knobs, scored on validation
    accuracy: the wide baseline's learning rate (one search, shared by all
    size points); at each size point, the pruned arm's fine-tune learning
    rate, schedule and spread of sparsity over layers, and the narrow arm's
    learning rate and split of width between layers. Every search's first
    trial is the recipe as written, so tuning never chooses a configuration
    that scored worse on validation. The chosen configurations are then
    trained once per evaluation seed.

    Args:
        oracle: KerasTuner oracle of every search: ``"bayesian"`` or ``"random"``.
        trials: trials of every search.
        learning_rate_min: lower end of every arm's log-scale learning-rate range.
        learning_rate_max: upper end of that range.
        end_fraction_min: pruned arm: the lowest ``pruning.end_fraction`` the
            search may choose (the highest is 1.0).
        frequencies: pruned arm: mask-update frequencies to choose from;
            ``None`` gives ``pruning.frequency`` and its half and quarter, or,
            when ``pruning.frequency`` is unset, no choice: the schedule's
            length sets it (the search's ``end_fraction`` moves it).
        allocations: pruned arm: the allocations it may choose (how sparsity
            is spread over layers); ``None`` for
            ``pruning.allocations.DEFAULT_ALLOCATIONS``, a fixed, versioned set
            (an allocation registered later joins a search only when named).
            Each is tried once, with the recipe's other settings, among the
            search's first trials; a ``random`` study is not tuned on it.
        outputs: pruned arm: the output layer's treatment: ``"pruned"`` like
            the others, or ``"dense"`` (the other layers then take its share
            of the zeros, so the size point stays the same).
        split_range: narrow arm: how far, as a factor, each knob's share of
            the width may move from the wide model's proportions.
        controls: also train the untuned arms (the recipes as written; the
            narrow arm at the wide model's proportions and the baseline's
            learning rate), for the 2x2 table of verdicts.
        seed: the seed every search trains its trials with; ``None`` derives
            one that is never an evaluation seed (:attr:`Study.search_seed`).
        batch: trials every search proposes at a time, once its first trials
            are done: a Bayesian search proposes the next ones with the
            pending ones counted at a pessimistic estimate (KerasTuner's own
            rule for concurrent trials), and they train together. The same
            for every arm; 1 proposes one at a time.
        rescore: the best trials of every search trained again on a second
            seed (:attr:`Study.rescore_seed`), the choice then the best mean
            of both seeds' validation accuracy: a single seed's score picks
            the luckiest trial as often as the best one. The same for every
            arm; each search then trains ``trials + rescore`` models. 0 chooses
            on the one seed, as searches did before this setting.
        variants: the earlier name of ``allocations``, still accepted.
    """

    oracle: str = "bayesian"
    trials: int = 8
    learning_rate_min: float = 1e-4
    learning_rate_max: float = 3e-2
    end_fraction_min: float = 0.25
    frequencies: Optional[Tuple[int, ...]] = None
    allocations: Optional[Tuple[str, ...]] = None
    outputs: Tuple[str, ...] = ("pruned", "dense")
    split_range: float = 4.0
    controls: bool = True
    seed: Optional[int] = None
    batch: int = keys.added_field(2, absent=1)
    rescore: int = keys.added_field(2, absent=0)
    variants: Optional[Tuple[str, ...]] = dataclasses.field(default=None, repr=False)

    def __post_init__(self):
        if self.variants is not None:  # the field's earlier name
            object.__setattr__(self, "allocations", self.variants)
            object.__setattr__(self, "variants", None)
        if self.allocations is None:
            object.__setattr__(self, "allocations", allocations.DEFAULT_ALLOCATIONS)
        for field in ("frequencies", "allocations", "outputs"):
            if isinstance(getattr(self, field), list):
                object.__setattr__(self, field, tuple(getattr(self, field)))
        if isinstance(self.allocations, tuple):  # "layerwise" is "uniform"
            object.__setattr__(self, "allocations", tuple(allocations.canonical(a) for a in self.allocations))

    @property
    def rescored(self):
        """Trials of a search trained again on the second seed."""
        return min(self.rescore, self.trials) if self.trials > 1 else 0

    @property
    def trainings(self):
        """Models one search trains: its trials, and those trained again on the second seed."""
        return self.trials + self.rescored

    def problems(self, prefix="tuning"):
        out = []
        if self.oracle not in ORACLES:
            out.append(problem(f"{prefix}.oracle", f"one of {list(ORACLES)}", self.oracle))
        if not is_int(self.trials) or self.trials <= 0:
            out.append(problem(f"{prefix}.trials", "an integer > 0", self.trials))
        lo, hi = self.learning_rate_min, self.learning_rate_max
        if not is_number(lo) or not math.isfinite(lo) or lo <= 0:
            out.append(problem(f"{prefix}.learning_rate_min", "a finite number > 0", lo))
        elif not is_number(hi) or not math.isfinite(hi) or hi <= lo:
            out.append(problem(f"{prefix}.learning_rate_max", f"a finite number > {lo!r}", hi))
        if not is_number(self.end_fraction_min) or not 0 < self.end_fraction_min <= 1:
            out.append(problem(f"{prefix}.end_fraction_min", "a number in (0, 1]", self.end_fraction_min))
        if self.frequencies is not None and (not isinstance(self.frequencies, tuple) or not self.frequencies
                                             or not all(is_int(f) and f > 0 for f in self.frequencies)):
            out.append(problem(f"{prefix}.frequencies", "None or a non-empty tuple of integers > 0",
                               self.frequencies))
        searchable = allocations.allocation_names(searchable=True) + list(allocations.ALIASES)
        for field, accepted in (("allocations", searchable), ("outputs", OUTPUTS)):
            value = getattr(self, field)
            if not isinstance(value, tuple) or not value or not set(value) <= set(accepted) \
                    or len(set(value)) != len(value):
                out.append(problem(f"{prefix}.{field}", f"a non-empty tuple of distinct values from {list(accepted)}",
                                   value))
        if not is_number(self.split_range) or self.split_range < 1:
            out.append(problem(f"{prefix}.split_range", "a number >= 1", self.split_range))
        if not isinstance(self.controls, bool):
            out.append(problem(f"{prefix}.controls", "True or False", self.controls))
        if self.seed is not None and (not is_int(self.seed) or self.seed < 0):
            out.append(problem(f"{prefix}.seed", "None or an integer >= 0", self.seed))
        if not is_int(self.batch) or self.batch < 1:
            out.append(problem(f"{prefix}.batch", "an integer >= 1", self.batch))
        if not is_int(self.rescore) or self.rescore < 0:
            out.append(problem(f"{prefix}.rescore", "an integer >= 0 (0: choose on one seed)", self.rescore))
        return out
