"""The arm interface: one object holds everything about an arm of a study.

An :class:`Arm` says what it adds to a study's plan (its runs and searches,
their keys, stages and dependencies), how its runs and search trials become
engine :class:`~widthvsprune.engines.base.ModelSpec` s, what its search tunes
(its hyperparameters, declared once), what its records hold, how it is
labelled and drawn, and which contrasts it takes part in. The planner, the
scheduler, the searches, the reports and the command line ask the registry
(:mod:`widthvsprune.arms`); no module outside an arm's own file tests an
arm's name.

Everything here is framework-free: engines are reached through the seam.
"""

import dataclasses
from typing import Optional, Tuple

from widthvsprune.engines.base import Pack
from widthvsprune.steps import ceil_div, steps_per_epoch


@dataclasses.dataclass(frozen=True)
class Fit:
    """How a pack trains: a fit's batch size, optimizer and epochs, and an exact step count where one is set."""

    batch_size: int
    optimizer: str
    epochs: int
    max_steps: Optional[int] = None

    def epochs_done(self, n_train):
        """Epochs trained, fractional when the last one is partial."""
        if self.max_steps is None:
            return float(self.epochs)
        return self.max_steps / steps_per_epoch(n_train, self.batch_size)

    def pack(self, specs, **options):
        """A :class:`~widthvsprune.engines.base.Pack` of ``specs`` trained this way."""
        return Pack(tuple(specs), self.batch_size, self.optimizer, self.epochs, self.max_steps, **options)


def recipe_fit(recipe):
    """The :class:`Fit` of a :class:`~widthvsprune.study.Recipe`."""
    return Fit(recipe.batch_size, recipe.optimizer, recipe.epochs)


def pruned_steps(study, n_train):
    """Optimizer steps a pruned model costs in all: its baseline's and its fine-tune's.

    Every arm trained from scratch to match the pruned arm's compute trains
    this many steps (:func:`matched_fit`).
    """
    b, f = study.baseline, study.finetune
    return b.epochs * steps_per_epoch(n_train, b.batch_size) + f.epochs * steps_per_epoch(n_train, f.batch_size)


def matched_fit(study, n_train):
    """The baseline's batch size and optimizer for exactly :func:`pruned_steps` steps (the last epoch partial)."""
    steps = pruned_steps(study, n_train)
    return Fit(study.baseline.batch_size, study.baseline.optimizer,
               ceil_div(steps, steps_per_epoch(n_train, study.baseline.batch_size)), steps)


def search_compute(result):
    """The compute of the search that chose a configuration (nothing for untuned runs)."""
    result = result or {}
    return {"search_trials": int(result.get("trials", 0)), "search_epochs": float(result.get("epochs", 0.0)),
            "search_seconds": float(result.get("seconds", 0.0))}


def log_rate(hp, name, study, default):
    """Declares a log-scale learning rate on the study's range, ``default`` clipped into it."""
    t = study.tuning
    hp.Float(name, t.learning_rate_min, t.learning_rate_max, sampling="log",
             default=min(max(default, t.learning_rate_min), t.learning_rate_max))


@dataclasses.dataclass(frozen=True)
class Contrast:
    """Two arms compared at each size point: ``delta`` is ``arm`` minus ``opponent``.

    Attributes:
        name: its name in comparison.csv and the reports.
        arm, opponent: the arms' names.
        arm_tuning, opponent_tuning: ``"tuned"`` or ``"untuned"``.
        headline: the study's question (one contrast is).
        control_of: the name of the contrast it varies (by the arms' tunings), if any.
    """

    name: str
    arm: str
    opponent: str
    arm_tuning: str = "tuned"
    opponent_tuning: str = "tuned"
    headline: bool = False
    control_of: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class SearchContext:
    """What a search's trials need beyond the study.

    Attributes:
        search: the :class:`~widthvsprune.plan.planner.Search`.
        weights: trained weights the trials start from, by name.
        records: records the trials read, by name.
        count: the engine's ``count_params``, for a family without a count function.
    """

    search: object
    weights: dict = dataclasses.field(default_factory=dict)
    records: dict = dataclasses.field(default_factory=dict)
    count: object = None


class Arm:
    """One arm of a study. Subclass it in a file of its own and register it (:func:`widthvsprune.arms.register`).

    Attributes:
        name: the registry name, the ``arm`` column of runs.csv.
        title: its name in reports (``large-sparse``).
        legend: its name in figures' legends (the title if empty).
        color, marker: how figures draw it.
        sparse: its models hold zeros (sizes count nonzeros); a dense arm
            counts every parameter.
        default: part of a study unless ``Study.arms`` says otherwise.
        reference: drawn as points, not as a frontier (the wide model).
        hyperparameters: what its search tunes (declared once, in :meth:`space`).
        order: planning order (arms plan after those they depend on).
        requires: the arms it cannot do without.
        loads_weights: its runs start from the trained weights of the run they need.
        at_each_size: it trains one configuration per sparsity of the sweep, found by a search of
            ``tuning.trials`` trials (this gives :meth:`per_point`, :meth:`max_trainings` and :meth:`evaluated`).
        controlled: each tuned configuration has an untuned control beside it when ``tuning.controls``.
    """

    name = ""
    title = ""
    legend = ""
    color, marker = "gray", "^"
    sparse = False
    default = True
    reference = False
    hyperparameters: Tuple[str, ...] = ()
    order = 0
    requires: Tuple[str, ...] = ()
    loads_weights = False
    at_each_size = False
    controlled = False

    # ---- planning --------------------------------------------------------------

    def plan(self, study, builder):
        """Adds this arm's runs and searches to ``builder`` (:class:`widthvsprune.plan.planner.Builder`)."""
        raise NotImplementedError

    def configurations(self, study):
        """Configurations this arm evaluates at one point: the tuned one, and its untuned control if any."""
        return 2 if self.controlled and study.tuning.controls else 1

    def max_trainings(self, study):
        """Models this arm trains in the whole study at most (search trials included)."""
        if not self.at_each_size:
            raise NotImplementedError
        return len(study.sparsities) * self.per_point(study)

    def per_point(self, study):
        """Models this arm trains at one size point (what a skipped size point saves)."""
        if not self.at_each_size:
            return 0
        return study.tuning.trainings + len(study.seeds) * self.configurations(study)

    def evaluated(self, study):
        """Evaluated models (one per seed of each configuration) this arm has in the whole study."""
        points = len(study.sparsities) if self.at_each_size else 1
        return points * len(study.seeds) * self.configurations(study)

    def searches(self, study):
        """Searches with trials this arm runs in the whole study: one per size point, or one for the study."""
        if not self.hyperparameters:
            return 0
        return len(study.sparsities) if self.at_each_size else 1

    def contrasts(self, study):
        """The :class:`Contrast` s this arm brings to the comparison."""
        return []

    def notes(self, study, n_train):
        """What this arm's recipe will do that a user should know before training, one line each (``n_train``:
        the training split's size)."""
        return []

    # ---- describing runs ----------------------------------------------------------

    def widths(self, run):
        """A run's model widths."""
        return tuple(run.config["widths"])

    def label(self, run):
        """A run's one-line description (progress lines, failures)."""
        from widthvsprune.families import describe_widths

        tag = "" if run.tuning == "tuned" else " untuned"
        where = "" if not run.target else f" sparsity={run.target:g}"
        return f"{self.name}{tag}{where} seed={run.seed} widths={describe_widths(run.widths)}"

    def search_label(self, search):
        where = "" if not search.target else f" sparsity={search.target:g}"
        return f"{self.name}{'' if search.tuning == 'tuned' else ' untuned'} search{where}"

    def model_fields(self, config):
        """What of a run's configuration its model depends on (beside its arm and seed): two runs whose fields are
        equal, tuning labels aside, train the same model (:func:`widthvsprune.plan.planner.twins`). All of it by
        default; an arm leaves out the fields that only say how a configuration was chosen."""
        return config

    # ---- training ------------------------------------------------------------------

    def fit(self, study, n_train):
        """How this arm's runs and trials train (a :class:`Fit`)."""
        raise NotImplementedError

    def model_spec(self, study, run, splits, initial_weights=None, source=None, log_dir=None):
        """The engine's :class:`~widthvsprune.engines.base.ModelSpec` of one run.

        ``source`` is the record of the run it needs (``run.needs[0]``: a
        pruned run's baseline), ``initial_weights`` that run's trained weights
        (:attr:`loads_weights` arms only).
        """
        raise NotImplementedError

    def record_fields(self, study, run, spec, outcome, splits, search=None, source=None, sizes=None):
        """What a record says about how this arm trained a run, and at what cost (``sizes``: its measured sizes)."""
        return search_compute(search)

    def shown(self, record):
        """What a finished run's progress line shows besides sizes and accuracies."""
        return {}

    def learning_rate(self, run):
        """The learning rate a run trains with (the reports' table of chosen configurations)."""
        return float(run.config.get("learning_rate", float("nan")))

    def chosen(self, run):
        """What else a run's configuration chose, in a few words (the reports' table of chosen configurations)."""
        return ""

    # ---- searching -----------------------------------------------------------------

    def space(self, study, search, context):
        """``f(hp)`` declaring the search's :attr:`hyperparameters` on a ``keras_tuner.HyperParameters``."""
        raise NotImplementedError

    def first_trials(self, study, search, context):
        """Trials the search tries right after the recipe, as changes to the recipe's values (``[{name: value}]``)."""
        return []

    def settle(self, study, search, splits, count=None):
        """A search's result when it needs no trials (``None``: it needs them)."""
        return None

    def context(self, study, search, session):
        """What the search's trials need (:class:`SearchContext`), or ``None`` when they cannot train.

        ``session`` gives ``state(run_id)``, ``weights(run_id)``, ``count``
        and ``note(text)``.
        """
        return SearchContext(search, count=session.count)

    def trial(self, study, splits, context, values):
        """One trial: ``(fit, model spec, info)``."""
        raise NotImplementedError

    def result(self, study, search, found, splits, context):
        """A finished search's ``result.json``: what it chose and what it cost."""
        raise NotImplementedError

    def trial_shown(self, values, info):
        """What a trial's progress line shows."""
        return {"lr": f"{values['learning_rate']:.2g}"}


def common_result(study, found):
    """The fields every search result has: its score, trials, compute, seed and values."""
    out = {"status": "ok", "val_accuracy": found["score"], "trials": found["trials"], "epochs": found["epochs"],
           "seconds": found["seconds"], "seed": study.search_seed, "values": found["values"]}
    if found.get("rescored"):
        out["rescored"] = found["rescored"]
    return out
