"""Study configuration: frozen dataclasses validated on construction.

A study file defines ``STUDY = Study(...)``. Every field is checked when the
study is built, and all problems are reported together, one line each, in the
form ``field: Expected ... Received: field=value``.
"""

import dataclasses
import re
from typing import Optional, Tuple

from widthvsprune import arms, engines, families, keys
from widthvsprune.data import DATASETS, is_arrays, mnist1d_samples, register_arrays, registered
from widthvsprune.engines import CHOICES as ENGINE_CHOICES
from widthvsprune.errors import DataError, StudyError, problem, suggest
from widthvsprune.study.recipes import Pruning, Recipe, Tuning, is_int, is_number

SEARCH_SEED = 10_000
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


#: What :attr:`Study.pretrained` accepts besides ``None``.
PRETRAINED = ("declared", "unknown")

SUBCONFIGS = {"baseline": Recipe, "finetune": Recipe, "pruning": Pruning, "tuning": Tuning}


@dataclasses.dataclass(frozen=True)
class Study:
    """One comparison: a model family on a dataset, both arms, several seeds.

    Args:
        name: folder name of the results (``results/<name>/``); a study file
            that leaves it empty is named after the file.
        dataset: ``"digits"``, ``"mnist1d"`` (``"mnist1d:N"`` for N
            sequences), ``"mnist"``, ``"fashion_mnist"``, ``"cifar10"``,
            ``"npz:PATH"``, a name given to
            :func:`~widthvsprune.register_dataset`, or the arrays themselves:
            ``(x_train, y_train, x_test, y_test)`` (or a dict with those
            keys), registered as ``"arrays-"`` and a fingerprint of their
            content (the name the study then holds).
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
        tolerance: the accuracy a smaller model may lose against the tuned
            baseline and still count as keeping it (a fraction; 0.01 is one
            point): the tolerance frontier and the iso-accuracy levels of the
            reports. It changes no run (no run key holds it).
        engine: ``"tf_keras"``, ``"jax"`` or ``"auto"`` (``jax`` where JAX is
            installed and faster for this family on this machine, see
            :func:`widthvsprune.engines.resolve`); both arms always train with
            the same engine, and the engine is part of every run key.
        tensorboard: write TensorBoard logs for every run (``tf_keras`` engine).
        arms: the arms to train (:mod:`widthvsprune.arms`); ``None`` for the
            default ones (``baseline``, ``pruned``, ``dense_finetuned``,
            ``narrow``); add ``"sparse_scratch"`` for the sparse-from-scratch
            control.
        recalibrate_batchnorm: before a model with batch normalization is
            evaluated (validation, test, a search trial's score), re-estimate
            its layers' moving statistics over the training split (forward
            passes in training mode, no weight update), in every arm alike;
            the stored weights hold them. ``False`` evaluates with Keras's
            momentum averages, which lag far behind after a few epochs. Runs
            of models without batch normalization are the same either way and
            keep their keys.
        pretrained: start from the trained weights the family carries
            (:func:`~widthvsprune.family_from_file` of a ``.keras`` file, or
            ``family_from_model(model, use_weights=True)``) instead of
            training the baseline: the baseline is that model evaluated as it
            is, at every evaluation seed; the pruned and dense fine-tuned arms
            fine-tune it; the narrow arm trains from scratch as long as the
            baseline recipe and the fine-tune together. ``"declared"``:
            ``baseline`` is the recipe the model was trained with, so the
            narrow arm's step budget is the model's own; ``"unknown"``: how
            it was trained is not known, the narrow arm trains with
            ``baseline`` all the same, and the reports say that the budgets
            are unknown. ``None`` (the default) trains the baseline.

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
    # A study.json written before the dense reference existed (release 0.2) resumes with the arms it had.
    arms: Optional[Tuple[str, ...]] = keys.added_field(None, absent=("baseline", "pruned", "narrow"))
    # Only the reports read it; declared as an added field, so a study that leaves it at 0.01 has the canonical
    # configuration of the releases before it (no run key holds the Study, see keys.py).
    tolerance: float = keys.added_field(0.01)
    # Declared as an added field whose absent value is False: a study recorded before recalibration existed
    # evaluated with the moving averages. Models without batch normalization keep their run keys either way.
    recalibrate_batchnorm: bool = keys.added_field(True, absent=False)
    pretrained: Optional[str] = keys.added_field(None)

    def __post_init__(self):
        if is_arrays(self.dataset):  # arrays from Python: registered under a name made of their content
            try:
                object.__setattr__(self, "dataset", register_arrays(self.dataset))
            except DataError as error:
                raise StudyError(str(error).splitlines()) from None
        if self.arms is None:
            object.__setattr__(self, "arms", arms.default_names())
        for field in ("sparsities", "seeds", "widths", "arms"):
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
        if self.widths is None and self._family() is not None:
            object.__setattr__(self, "widths", self._family().default_widths)
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
            or mnist1d_samples(self.dataset) is not None or registered(self.dataset)
        ):
            out.append(
                problem("dataset", f"one of {list(DATASETS)}, 'mnist1d:N' (N sequences, from 1000 to 1000000), "
                                   "'npz:PATH' or a name given to register_dataset", self.dataset)
            )
        family = self._family()
        if family is None:
            hint = suggest(self.family, families.family_names()) if isinstance(self.family, str) else ""
            out.append(problem("family", f"one of {families.family_names()} or 'model:PATH' (a saved Keras "
                                         "model)", self.family) + hint)
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
        if not is_number(self.tolerance) or not 0 < self.tolerance < 1:
            out.append(problem("tolerance", "a number in (0, 1): the accuracy a smaller model may lose against the "
                               "tuned baseline", self.tolerance))
        if isinstance(self.tuning, Tuning) and isinstance(seeds, tuple) and self.tuning.seed in seeds:
            out.append(problem("tuning.seed", f"a seed that is not an evaluation seed {list(seeds)}",
                               self.tuning.seed))
        if self.engine not in ENGINE_CHOICES:
            out.append(problem("engine", f"one of {list(ENGINE_CHOICES)}", self.engine))
        elif family is not None and engines.mismatch(self.engine, self.family):
            out.append(engines.mismatch(self.engine, self.family))
        out += self._arm_problems()
        out += self._pretrained_problems(family)
        if not isinstance(self.recalibrate_batchnorm, bool):
            out.append(problem("recalibrate_batchnorm", "True or False", self.recalibrate_batchnorm))
        if not isinstance(self.tensorboard, bool):
            out.append(problem("tensorboard", "True or False", self.tensorboard))
        elif self.tensorboard and self.engine == "jax":
            out.append(problem("tensorboard", "False with engine 'jax' (TensorBoard logs come from tf_keras)",
                               self.tensorboard))
        return out

    def _family(self):
        """The study's family, ``None`` when it names none (a ``model:`` file that cannot be derived raises)."""
        try:
            return families.get_family(self.family) if families.known(self.family) else None
        except ValueError as error:
            if isinstance(error, StudyError):
                raise StudyError([f"family: {line}" for line in error.problems]) from None
            return None

    def _pretrained_problems(self, family):
        value = self.pretrained
        if value is None:
            return []
        if value not in PRETRAINED:
            return [problem("pretrained", "None, 'declared' (the model was trained with the baseline recipe) or "
                                          "'unknown' (how it was trained is not known)", value)]
        if family is None or families.is_recorded(self.family):
            return []  # the unknown family is the problem; a finished study's reports need no weights
        if family.weights is None:
            return [f"pretrained: Expected a family that carries trained weights (family='model:PATH.keras', or "
                    f"family_from_model(model, use_weights=True)). Received: family={self.family!r}, which carries "
                    f"none"]
        if tuple(self.widths or ()) != tuple(family.default_widths):
            return [f"pretrained: Expected the model's own widths {tuple(family.default_widths)}, which its weights "
                    f"fit. Received: widths={self.widths}"]
        return []

    def _arm_problems(self):
        names = arms.names()
        if not isinstance(self.arms, tuple) or not self.arms or not set(self.arms) <= set(names) \
                or len(set(self.arms)) != len(self.arms):
            return [problem("arms", f"a non-empty tuple of distinct arms from {names}", self.arms)]
        missing = sorted({need for name in self.arms for need in arms.get(name).requires} - set(self.arms))
        if missing:
            return [problem("arms", f"the arms they require too: {missing}", self.arms)]
        return []

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
    def rescore_seed(self):
        """The seed a search's best trials are trained again with (``tuning.rescore``): the smallest integer above
        the search seed that is not an evaluation seed."""
        seed = self.search_seed + 1
        while seed in self.seeds:
            seed += 1
        return seed

    @property
    def frequencies(self):
        """The mask-update frequencies the pruned search chooses from (none when ``pruning.frequency`` is unset: the
        schedule's length sets it)."""
        if self.tuning.frequencies is not None:
            return tuple(self.tuning.frequencies)
        f = self.pruning.frequency
        if f is None:
            return ()
        return tuple(dict.fromkeys((f, max(1, f // 2), max(1, f // 4))))

    def resolved(self):
        """This study with ``engine="auto"`` replaced by the engine it means here (:func:`engines.resolve`)."""
        engine = engines.resolve(self.engine, self.family)
        return self if engine == self.engine else dataclasses.replace(self, engine=engine)

    def to_dict(self):
        """The canonical JSON-ready form of the study (fields added in later releases left out while they hold the
        value that behaves as before, so an unchanged study keeps its ``history/`` hash)."""
        return keys.config_dict(self)


def study_from_dict(data):
    """Rebuilds a :class:`Study` from :meth:`Study.to_dict` output (of this release or an earlier one: a field it
    lacks takes the value that behaves as it did then)."""
    data = keys.with_absent(Study, data)
    for field, cls in SUBCONFIGS.items():
        if isinstance(data.get(field), dict):
            data[field] = keys.with_absent(cls, data[field])
    return Study(**data)
