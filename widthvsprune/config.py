"""Study configuration: frozen dataclasses validated on construction.

A study file defines ``STUDY = Study(...)``. Every field is checked when the
study is built, and all problems are reported together, one line each, in the
form ``field: Expected ... Received: field=value``.
"""

import dataclasses
import math
import re
from typing import Optional, Tuple

from widthvsprune import engines, families, keys
from widthvsprune.data import DATASETS
from widthvsprune.engines import CHOICES as ENGINE_CHOICES
from widthvsprune.errors import StudyError

OPTIMIZERS = ("adam", "sgd")
PRUNING_VARIANTS = ("layerwise", "global", "random")
ORACLES = ("bayesian", "random")
OUTPUTS = ("pruned", "dense")
SEARCH_SEED = 10_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def problem(field, expected, value):
    return f"{field}: Expected {expected}. Received: {field}={value!r}"


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
        variant: ``"layerwise"`` (tfmot's magnitude pruning: every pruned
            kernel reaches the target), ``"global"`` (one magnitude threshold
            across all pruned kernels) or ``"random"`` (random selection with
            the same schedule, a sanity baseline).
        initial_sparsity: sparsity at the first mask update; the target is
            used instead when it is lower.
        frequency: steps between mask updates.
        power: exponent of the polynomial schedule (3 is Zhu & Gupta's cubic).
        begin_step: fine-tuning step of the first mask update.
        end_fraction: share of the fine-tune after which masks stop changing;
            the rest recovers accuracy at the final sparsity (1.0 prunes until
            the last step, as the seed notebook does).
        prune_output: also prune the output layer's kernel.
    """

    variant: str = "layerwise"
    initial_sparsity: float = 0.0
    frequency: int = 100
    power: int = 3
    begin_step: int = 0
    end_fraction: float = 0.75
    prune_output: bool = True

    def problems(self, prefix="pruning"):
        out = []
        if self.variant not in PRUNING_VARIANTS:
            out.append(
                problem(f"{prefix}.variant", f"one of {list(PRUNING_VARIANTS)}", self.variant)
            )
        if not is_number(self.initial_sparsity) or not 0 <= self.initial_sparsity < 1:
            out.append(
                problem(f"{prefix}.initial_sparsity", "a number in [0, 1)", self.initial_sparsity)
            )
        if not is_int(self.frequency) or self.frequency <= 0:
            out.append(problem(f"{prefix}.frequency", "an integer > 0", self.frequency))
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
            ``None`` gives ``pruning.frequency`` and its half and quarter.
        variants: pruned arm: how sparsity may be spread over layers
            (``"layerwise"``, ``"global"``); a ``random`` study is not tuned on it.
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
    """

    oracle: str = "bayesian"
    trials: int = 8
    learning_rate_min: float = 1e-4
    learning_rate_max: float = 3e-2
    end_fraction_min: float = 0.25
    frequencies: Optional[Tuple[int, ...]] = None
    variants: Tuple[str, ...] = ("layerwise", "global")
    outputs: Tuple[str, ...] = ("pruned", "dense")
    split_range: float = 4.0
    controls: bool = True
    seed: Optional[int] = None

    def __post_init__(self):
        for field in ("frequencies", "variants", "outputs"):
            if isinstance(getattr(self, field), list):
                object.__setattr__(self, field, tuple(getattr(self, field)))

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
        for field, accepted in (("variants", ("layerwise", "global")), ("outputs", OUTPUTS)):
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
        return out


SUBCONFIGS = {"baseline": Recipe, "finetune": Recipe, "pruning": Pruning, "tuning": Tuning}


@dataclasses.dataclass(frozen=True)
class Study:
    """One comparison: a model family on a dataset, both arms, several seeds.

    Args:
        name: folder name of the results (``results/<name>/``); a study file
            that leaves it empty is named after the file.
        dataset: ``"digits"``, ``"mnist1d"``, ``"mnist"``, ``"fashion_mnist"``,
            ``"cifar10"`` or ``"npz:PATH"``.
        family: a registered model family (``seed_cnn``, ``mlp``, ``lenet5``).
        widths: the wide (baseline) model's widths; ``None`` for the family's.
        sparsities: target sparsities of the pruned arm, each in [0, 1).
        seeds: training seeds; every arm is trained once per seed.
        baseline: recipe of the wide dense model.
        finetune: recipe of the pruning fine-tune that starts from the baseline.
        pruning: the pruning schedule and variant (the untuned pruned arm's,
            and where the pruned search starts).
        tuning: the searches of every arm (:class:`Tuning`).
        validation_fraction: share of the training split held out for
            validation (carved with ``data_seed``); the test split is never
            used for any choice.
        data_seed: seed of the train/validation split.
        min_effect: the smallest difference of test accuracy that can name a
            winner: a side wins only when the corrected interval excludes zero
            and the difference is at least this.
        engine: ``"tf_keras"``, ``"jax"`` or ``"auto"`` (``jax`` where JAX is
            installed and faster for this family on this machine, see
            :func:`widthvsprune.engines.resolve`); both arms always train with
            the same engine, and the engine is part of every run key.
        tensorboard: write TensorBoard logs for every run (``tf_keras`` engine).

    Example:

    ```python
    STUDY = Study(name="quick", dataset="digits", family="mlp", widths=(64, 32),
                  sparsities=(0.5, 0.9), seeds=(0, 1))
    ```
    """

    name: str = ""
    dataset: str = "digits"
    family: str = "mlp"
    widths: Optional[Tuple[int, ...]] = None
    sparsities: Tuple[float, ...] = (0.5, 0.75, 0.9)
    seeds: Tuple[int, ...] = (0,)
    baseline: Recipe = Recipe()
    finetune: Recipe = Recipe(epochs=2)
    pruning: Pruning = Pruning()
    tuning: Tuning = Tuning()
    validation_fraction: float = 0.1
    data_seed: int = 0
    min_effect: float = 0.01
    engine: str = "auto"
    tensorboard: bool = False

    def __post_init__(self):
        for field in ("sparsities", "seeds", "widths"):
            value = getattr(self, field)
            if isinstance(value, list):
                object.__setattr__(self, field, tuple(value))
        for field, cls in SUBCONFIGS.items():
            value = getattr(self, field)
            if isinstance(value, dict):
                try:
                    object.__setattr__(self, field, cls(**value))
                except TypeError:
                    pass  # reported by problems()
        if self.widths is None and self.family in families.family_names():
            object.__setattr__(self, "widths", families.get_family(self.family).default_widths)
        problems = self.problems()
        if problems:
            raise StudyError(problems)

    def problems(self):
        """Every problem of this study, one line each (empty when valid)."""
        out = []
        if not isinstance(self.name, str) or (self.name and not _NAME.match(self.name)):
            out.append(
                problem("name", "letters, digits, '_', '.' or '-' (a folder name)", self.name)
            )
        if not isinstance(self.dataset, str) or not (
            self.dataset in DATASETS or (self.dataset.startswith("npz:") and len(self.dataset) > 4)
        ):
            out.append(
                problem("dataset", f"one of {list(DATASETS)} or 'npz:PATH'", self.dataset)
            )
        family = None
        if self.family not in families.family_names():
            out.append(problem("family", f"one of {families.family_names()}", self.family))
        else:
            family = families.get_family(self.family)
        widths = self.widths
        if widths is None and family is None:
            pass  # the unknown family is the problem
        elif not isinstance(widths, tuple) or not widths:
            out.append(problem("widths", "a non-empty tuple of integers > 0", widths))
        elif not all(is_int(w) and w > 0 for w in widths):
            out.append(problem("widths", "integers > 0", widths))
        elif family is not None and not family.accepts_widths_count(len(widths)):
            out.append(
                problem("widths", f"{family.n_widths} width(s) for family {family.name!r}", widths)
            )
        sparsities = self.sparsities
        if not isinstance(sparsities, tuple) or not sparsities:
            out.append(problem("sparsities", "a non-empty tuple of numbers in [0, 1)", sparsities))
        elif not all(is_number(s) and 0 <= s < 1 for s in sparsities):
            out.append(problem("sparsities", "every sparsity in [0, 1)", sparsities))
        elif len(set(sparsities)) != len(sparsities):
            out.append(problem("sparsities", "no duplicate sparsities", sparsities))
        seeds = self.seeds
        if not isinstance(seeds, tuple) or not seeds:
            out.append(problem("seeds", "a non-empty tuple of integers >= 0", seeds))
        elif not all(is_int(s) and s >= 0 for s in seeds):
            out.append(problem("seeds", "integers >= 0", seeds))
        elif len(set(seeds)) != len(seeds):
            out.append(problem("seeds", "no duplicate seeds", seeds))
        for field, cls in SUBCONFIGS.items():
            value = getattr(self, field)
            if isinstance(value, cls):
                out += value.problems(field)
            else:
                accepted = ", ".join(f.name for f in dataclasses.fields(cls))
                out.append(
                    problem(field, f"a {cls.__name__} (fields: {accepted})", value)
                )
        if not is_number(self.validation_fraction) or not 0 < self.validation_fraction < 1:
            out.append(
                problem("validation_fraction", "a number in (0, 1)", self.validation_fraction)
            )
        if not is_int(self.data_seed) or self.data_seed < 0:
            out.append(problem("data_seed", "an integer >= 0", self.data_seed))
        if not is_number(self.min_effect) or not 0 <= self.min_effect < 1:
            out.append(problem("min_effect", "a number in [0, 1)", self.min_effect))
        if isinstance(self.tuning, Tuning) and isinstance(seeds, tuple) and self.tuning.seed in seeds:
            out.append(problem("tuning.seed", f"a seed that is not an evaluation seed {list(seeds)}",
                               self.tuning.seed))
        if self.engine not in ENGINE_CHOICES:
            out.append(problem("engine", f"one of {list(ENGINE_CHOICES)}", self.engine))
        if not isinstance(self.tensorboard, bool):
            out.append(problem("tensorboard", "True or False", self.tensorboard))
        elif self.tensorboard and self.engine == "jax":
            out.append(problem("tensorboard", "False with engine 'jax' (TensorBoard logs come from tf_keras)",
                               self.tensorboard))
        return out

    @property
    def search_seed(self):
        """The seed every search trains with: ``tuning.seed``, or the smallest integer from 10,000 up that is not
        an evaluation seed. A search never trains with an evaluation seed, so no evaluated model is the best of
        several draws."""
        if self.tuning.seed is not None:
            return int(self.tuning.seed)
        seed = SEARCH_SEED
        while seed in self.seeds:
            seed += 1
        return seed

    @property
    def frequencies(self):
        """The mask-update frequencies the pruned search chooses from."""
        if self.tuning.frequencies is not None:
            return tuple(self.tuning.frequencies)
        f = self.pruning.frequency
        return tuple(dict.fromkeys((f, max(1, f // 2), max(1, f // 4))))

    def resolved(self):
        """This study with ``engine="auto"`` replaced by the engine it means here (:func:`engines.resolve`)."""
        engine = engines.resolve(self.engine, self.family)
        return self if engine == self.engine else dataclasses.replace(self, engine=engine)

    def to_dict(self):
        """The canonical JSON-ready form of the study."""
        return keys.jsonable(dataclasses.asdict(self))


def study_from_dict(data):
    """Rebuilds a :class:`Study` from :meth:`Study.to_dict` output."""
    return Study(**data)
