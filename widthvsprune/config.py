"""Study configuration: frozen dataclasses validated on construction.

A study file defines ``STUDY = Study(...)``. Every field is checked when the
study is built, and all problems are reported together, one line each, in the
form ``field: Expected ... Received: field=value``.
"""

import ast
import dataclasses
import importlib.util
import math
import pathlib
import re
import sys
import traceback
import typing
from typing import Optional, Tuple

from widthvsprune import families
from widthvsprune.errors import StudyError

DATASETS = ("digits", "mnist1d", "mnist", "fashion_mnist", "cifar10")
OPTIMIZERS = ("adam", "sgd")
PRUNING_VARIANTS = ("layerwise", "global", "random")
ORACLES = ("bayesian", "random", "hyperband")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _problem(field, expected, value):
    return f"{field}: Expected {expected}. Received: {field}={value!r}"


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
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
        if not _is_int(self.epochs) or self.epochs <= 0:
            out.append(_problem(f"{prefix}.epochs", "an integer > 0", self.epochs))
        if not _is_int(self.batch_size) or self.batch_size <= 0:
            out.append(_problem(f"{prefix}.batch_size", "an integer > 0", self.batch_size))
        if (
            not _is_number(self.learning_rate)
            or not math.isfinite(self.learning_rate)
            or self.learning_rate <= 0
        ):
            out.append(
                _problem(f"{prefix}.learning_rate", "a finite number > 0", self.learning_rate)
            )
        if self.optimizer not in OPTIMIZERS:
            out.append(_problem(f"{prefix}.optimizer", f"one of {list(OPTIMIZERS)}", self.optimizer))
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
                _problem(f"{prefix}.variant", f"one of {list(PRUNING_VARIANTS)}", self.variant)
            )
        if not _is_number(self.initial_sparsity) or not 0 <= self.initial_sparsity < 1:
            out.append(
                _problem(f"{prefix}.initial_sparsity", "a number in [0, 1)", self.initial_sparsity)
            )
        if not _is_int(self.frequency) or self.frequency <= 0:
            out.append(_problem(f"{prefix}.frequency", "an integer > 0", self.frequency))
        if not _is_int(self.power) or self.power <= 0:
            out.append(_problem(f"{prefix}.power", "an integer > 0", self.power))
        if not _is_int(self.begin_step) or self.begin_step < 0:
            out.append(_problem(f"{prefix}.begin_step", "an integer >= 0", self.begin_step))
        if not _is_number(self.end_fraction) or not 0 < self.end_fraction <= 1:
            out.append(_problem(f"{prefix}.end_fraction", "a number in (0, 1]", self.end_fraction))
        if not isinstance(self.prune_output, bool):
            out.append(_problem(f"{prefix}.prune_output", "True or False", self.prune_output))
        return out


@dataclasses.dataclass(frozen=True)
class NarrowSearch:
    """How the narrow arm's shapes and learning rate are searched.

    Args:
        oracle: KerasTuner oracle: ``"bayesian"``, ``"random"`` or ``"hyperband"``.
        max_trials: models trained per search (per size point).
        epochs: epochs per narrow model; ``None`` gives the pruned arm's total
            (baseline epochs plus fine-tune epochs), the fair-compute default.
        learning_rate_min: lower end of the log-scale learning-rate range.
        learning_rate_max: upper end of that range.
        split_range: how far, as a factor, each knob's share of the width may
            move from the wide model's proportions (families with several knobs).
    """

    oracle: str = "bayesian"
    max_trials: int = 8
    epochs: Optional[int] = None
    learning_rate_min: float = 1e-4
    learning_rate_max: float = 3e-2
    split_range: float = 4.0

    def problems(self, prefix="narrow"):
        out = []
        if self.oracle not in ORACLES:
            out.append(_problem(f"{prefix}.oracle", f"one of {list(ORACLES)}", self.oracle))
        if not _is_int(self.max_trials) or self.max_trials <= 0:
            out.append(_problem(f"{prefix}.max_trials", "an integer > 0", self.max_trials))
        if self.epochs is not None and (not _is_int(self.epochs) or self.epochs <= 0):
            out.append(_problem(f"{prefix}.epochs", "None or an integer > 0", self.epochs))
        lo, hi = self.learning_rate_min, self.learning_rate_max
        if not _is_number(lo) or not math.isfinite(lo) or lo <= 0:
            out.append(_problem(f"{prefix}.learning_rate_min", "a finite number > 0", lo))
        elif not _is_number(hi) or not math.isfinite(hi) or hi <= lo:
            out.append(
                _problem(f"{prefix}.learning_rate_max", f"a finite number > {lo!r}", hi)
            )
        if not _is_number(self.split_range) or self.split_range < 1:
            out.append(_problem(f"{prefix}.split_range", "a number >= 1", self.split_range))
        return out


_SUBCONFIGS = {"baseline": Recipe, "finetune": Recipe, "pruning": Pruning, "narrow": NarrowSearch}


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
        pruning: the pruning schedule and variant.
        narrow: the narrow arm's search.
        validation_fraction: share of the training split held out for
            validation (carved with ``data_seed``); the test split is never
            used for any choice.
        data_seed: seed of the train/validation split.
        tie_margin: with fewer than two seeds per arm no interval exists, and
            a difference of test accuracy below this margin is a tie.
        tensorboard: write TensorBoard logs for every run.

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
    narrow: NarrowSearch = NarrowSearch()
    validation_fraction: float = 0.1
    data_seed: int = 0
    tie_margin: float = 0.005
    tensorboard: bool = False

    def __post_init__(self):
        for field in ("sparsities", "seeds", "widths"):
            value = getattr(self, field)
            if isinstance(value, list):
                object.__setattr__(self, field, tuple(value))
        for field, cls in _SUBCONFIGS.items():
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
                _problem("name", "letters, digits, '_', '.' or '-' (a folder name)", self.name)
            )
        if not isinstance(self.dataset, str) or not (
            self.dataset in DATASETS or (self.dataset.startswith("npz:") and len(self.dataset) > 4)
        ):
            out.append(
                _problem("dataset", f"one of {list(DATASETS)} or 'npz:PATH'", self.dataset)
            )
        family = None
        if self.family not in families.family_names():
            out.append(_problem("family", f"one of {families.family_names()}", self.family))
        else:
            family = families.get_family(self.family)
        widths = self.widths
        if widths is None and family is None:
            pass  # the unknown family is the problem
        elif not isinstance(widths, tuple) or not widths:
            out.append(_problem("widths", "a non-empty tuple of integers > 0", widths))
        elif not all(_is_int(w) and w > 0 for w in widths):
            out.append(_problem("widths", "integers > 0", widths))
        elif family is not None and not family.accepts_widths_count(len(widths)):
            out.append(
                _problem("widths", f"{family.n_widths} width(s) for family {family.name!r}", widths)
            )
        sparsities = self.sparsities
        if not isinstance(sparsities, tuple) or not sparsities:
            out.append(_problem("sparsities", "a non-empty tuple of numbers in [0, 1)", sparsities))
        elif not all(_is_number(s) and 0 <= s < 1 for s in sparsities):
            out.append(_problem("sparsities", "every sparsity in [0, 1)", sparsities))
        elif len(set(sparsities)) != len(sparsities):
            out.append(_problem("sparsities", "no duplicate sparsities", sparsities))
        seeds = self.seeds
        if not isinstance(seeds, tuple) or not seeds:
            out.append(_problem("seeds", "a non-empty tuple of integers >= 0", seeds))
        elif not all(_is_int(s) and s >= 0 for s in seeds):
            out.append(_problem("seeds", "integers >= 0", seeds))
        elif len(set(seeds)) != len(seeds):
            out.append(_problem("seeds", "no duplicate seeds", seeds))
        for field, cls in _SUBCONFIGS.items():
            value = getattr(self, field)
            if isinstance(value, cls):
                out += value.problems(field)
            else:
                accepted = ", ".join(f.name for f in dataclasses.fields(cls))
                out.append(
                    _problem(field, f"a {cls.__name__} (fields: {accepted})", value)
                )
        if not _is_number(self.validation_fraction) or not 0 < self.validation_fraction < 1:
            out.append(
                _problem("validation_fraction", "a number in (0, 1)", self.validation_fraction)
            )
        if not _is_int(self.data_seed) or self.data_seed < 0:
            out.append(_problem("data_seed", "an integer >= 0", self.data_seed))
        if not _is_number(self.tie_margin) or self.tie_margin < 0:
            out.append(_problem("tie_margin", "a number >= 0", self.tie_margin))
        if not isinstance(self.tensorboard, bool):
            out.append(_problem("tensorboard", "True or False", self.tensorboard))
        return out

    @property
    def narrow_epochs(self):
        """Epochs of each narrow model: by default the pruned arm's total."""
        if self.narrow.epochs is not None:
            return self.narrow.epochs
        return self.baseline.epochs + self.finetune.epochs

    def to_dict(self):
        """The canonical JSON-ready form of the study."""
        return to_jsonable(dataclasses.asdict(self))


def to_jsonable(value):
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def study_from_dict(data):
    """Rebuilds a :class:`Study` from :meth:`Study.to_dict` output."""
    return Study(**data)


# --------------------------------------------------------------------------
# Overrides: ``--set key=value``.

def _hint_name(hint):
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return f"None or {_hint_name(args[0])}"
    if origin in (tuple, Tuple):
        return f"a list of {_hint_name(typing.get_args(hint)[0])}s"
    return getattr(hint, "__name__", str(hint))


def _coerce(value, hint):
    """Returns ``(ok, value)``: ``value`` converted to ``hint`` if it fits."""
    origin = typing.get_origin(hint)
    if origin is typing.Union:
        if value is None:
            return True, None
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return _coerce(value, args[0])
    if origin in (tuple, Tuple):
        items = value if isinstance(value, (list, tuple)) else (value,)
        item = typing.get_args(hint)[0]
        converted = []
        for v in items:
            ok, v = _coerce(v, item)
            if not ok:
                return False, value
            converted.append(v)
        return True, tuple(converted)
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return _is_int(value), value
    if hint is float:
        return _is_number(value), float(value) if _is_number(value) else value
    if hint is str:
        return isinstance(value, str), value
    return True, value


def _parse_value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def apply_overrides(study, overrides):
    """Returns ``study`` with ``key=value`` overrides applied.

    Keys name any study field, with a dot for nested ones
    (``finetune.epochs=3``). Values are Python literals (``[0, 1]``, ``0.5``,
    ``None``); anything else is taken as a string.

    Raises:
        StudyError: listing every unknown key, wrong type and invalid value.
    """
    problems, top, nested = [], {}, {}
    hints = typing.get_type_hints(Study)
    for item in overrides:
        if "=" not in item:
            problems.append(_problem("--set", "key=value", item))
            continue
        key, text = item.split("=", 1)
        key, value = key.strip(), _parse_value(text.strip())
        parent, _, child = key.partition(".")
        if child:
            cls = _SUBCONFIGS.get(parent)
            sub_hints = typing.get_type_hints(cls) if cls else {}
            if child not in sub_hints:
                known = sorted(f"{p}.{f}" for p, c in _SUBCONFIGS.items() for f in typing.get_type_hints(c))
                problems.append(_problem("--set", f"a known field, one of {known}", key))
                continue
            ok, value = _coerce(value, sub_hints[child])
            if not ok:
                problems.append(_problem(key, _hint_name(sub_hints[child]), value))
                continue
            nested.setdefault(parent, {})[child] = value
        else:
            if key not in hints:
                problems.append(_problem("--set", f"a known field, one of {sorted(hints)}", key))
                continue
            if key in _SUBCONFIGS:
                problems.append(_problem("--set", f"a field of {key} such as {key}.epochs", key))
                continue
            ok, value = _coerce(value, hints[key])
            if not ok:
                problems.append(_problem(key, _hint_name(hints[key]), value))
                continue
            top[key] = value
    for parent, values in nested.items():
        top[parent] = dataclasses.replace(getattr(study, parent), **values)
    if "family" in top and "widths" not in top:
        top["widths"] = None  # the new family's default widths
    if problems:
        try:
            dataclasses.replace(study, **top)
        except StudyError as error:
            problems += error.problems
        raise StudyError(problems)
    return dataclasses.replace(study, **top)


# --------------------------------------------------------------------------
# Study files.


def load_study(path):
    """Loads ``STUDY`` from a Python study file.

    A study whose ``name`` is empty is named after the file.

    Raises:
        StudyError: if the file does not exist, raises on import, or does not
            define a ``Study`` named ``STUDY``.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise StudyError(_problem("study", "an existing study file (.py)", str(path)))
    module_name = f"_widthvsprune_study_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except StudyError as error:
        raise StudyError([f"{path}: {p}" for p in error.problems]) from None
    except Exception as error:  # the user's file raised: report it in one line
        where = traceback.extract_tb(error.__traceback__)[-1]
        raise StudyError(
            f"study: Expected a study file that imports cleanly. Received: study={str(path)!r}, "
            f"which raised {type(error).__name__}: {error} (line {where.lineno})"
        ) from None
    finally:
        sys.modules.pop(module_name, None)
    study = getattr(module, "STUDY", None)
    if not isinstance(study, Study):
        raise StudyError(
            f"study: Expected the file to define STUDY = Study(...). Received: study={str(path)!r}, "
            f"where STUDY is {type(study).__name__ if study is not None else 'missing'}"
        )
    if not study.name:
        study = dataclasses.replace(study, name=re.sub(r"[^A-Za-z0-9_.-]", "_", path.stem))
    return study
