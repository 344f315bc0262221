"""The narrow arm: size-matched dense models searched with KerasTuner.

KerasTuner 1.4 imports Keras 3 and its stock build-and-fit path rejects
tf_keras models (keras-team/keras-tuner#1039). :class:`NarrowTuner`
therefore overrides ``run_trial``: it solves the widths for the trial's split
of the budget, builds and trains the tf_keras model itself, and returns a
metrics dict. The oracle (Bayesian optimization by default) owns the trials,
keeps their state as JSON under the run's folder and resumes after an
interruption.

Search dimensions: the learning rate (log scale) and, for families with
several width knobs, the share of width given to each knob after the first
(``share_1`` ...). The widths for a given split are solved so that every
candidate fits the budget by construction.
"""

import contextlib
import io
import math

from widthvsprune import backend, budgets, models, training

kt = backend.keras_tuner()

OBJECTIVE = "val_accuracy"


def hyperparameters(study):
    """The search space: learning rate and the split between width knobs."""
    hp = kt.HyperParameters()
    narrow = study.narrow
    default_lr = min(max(study.baseline.learning_rate, narrow.learning_rate_min), narrow.learning_rate_max)
    hp.Float(
        "learning_rate",
        narrow.learning_rate_min,
        narrow.learning_rate_max,
        sampling="log",
        default=default_lr,
    )
    if narrow.split_range > 1:
        for i in range(1, len(study.widths)):
            hp.Float(
                f"share_{i}",
                1.0 / narrow.split_range,
                narrow.split_range,
                sampling="log",
                default=1.0,
            )
    return hp


def shape_for(study, values, budget, input_shape, num_classes):
    """Solves the widths of a trial's split within ``budget``: a :class:`budgets.Match`."""
    multipliers = [values.get(f"share_{i}", 1.0) for i in range(1, len(study.widths))]
    proportions = budgets.split_proportions(study.widths, multipliers)
    return budgets.solve_widths(study.family, budget, proportions, input_shape, num_classes)


def make_oracle(study, hp, max_epochs):
    objective = kt.Objective(OBJECTIVE, direction="max")
    narrow, seed = study.narrow, int(study.seeds[0])
    common = dict(objective=objective, seed=seed, hyperparameters=hp, tune_new_entries=False)
    if narrow.oracle == "random":
        return kt.oracles.RandomSearchOracle(max_trials=narrow.max_trials, **common)
    if narrow.oracle == "hyperband":
        return kt.oracles.HyperbandOracle(max_epochs=max_epochs, factor=3, **common)
    return kt.oracles.BayesianOptimizationOracle(
        max_trials=narrow.max_trials, num_initial_points=min(3, narrow.max_trials), **common
    )


class NarrowTuner(kt.Tuner):
    """A KerasTuner ``Tuner`` whose trials are size-matched tf_keras models.

    Args:
        study: the :class:`widthvsprune.Study`.
        splits: the dataset's :class:`widthvsprune.data.Splits`.
        budget: the parameter budget every candidate must fit.
        on_trial: optional ``f(trial_number, widths, learning_rate, metrics, seconds)``
            called after each trial (progress reporting).
        **kwargs: passed to ``keras_tuner.Tuner`` (``oracle``, ``directory``,
            ``project_name``, ``overwrite``).
    """

    def __init__(self, study, splits, budget, on_trial=None, **kwargs):
        self.study, self.splits, self.budget = study, splits, int(budget)
        self.on_trial = on_trial
        super().__init__(**kwargs)

    def run_trial(self, trial, *args, **kwargs):
        values = trial.hyperparameters.values
        match = shape_for(self.study, values, self.budget, self.splits.input_shape, self.splits.num_classes)
        epochs = int(values.get("tuner/epochs", self.study.narrow_epochs))
        lr = float(values["learning_rate"])
        seed = int(self.study.seeds[0])
        model = models.build(
            self.study.family, match.widths, self.splits.input_shape, self.splits.num_classes, seed
        )
        try:
            history, seconds = training.fit(
                model, self.splits, self.study.baseline, seed, epochs=epochs, learning_rate=lr
            )
            score = history[-1][OBJECTIVE]
        except training.TrainingDiverged:
            score, seconds = 0.0, float("nan")  # a diverging learning rate is a valid, bad result
        if not math.isfinite(score):
            score = 0.0
        if self.on_trial is not None:
            self.on_trial(len(self.oracle.trials), match.widths, lr, score, seconds)
        return {OBJECTIVE: float(score)}


@contextlib.contextmanager
def _quiet(verbose):
    if verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


def search(study, splits, budget, directory, project_name="search", overwrite=False, on_trial=None, verbose=False):
    """Runs (or resumes) the narrow search for one budget.

    Returns:
        A dict: ``widths``, ``params``, ``learning_rate``, ``val_accuracy``
        of the best trial, ``trials`` (completed trials) and ``note``.
    """
    hp = hyperparameters(study)
    with _quiet(verbose):
        oracle = make_oracle(study, hp, study.narrow_epochs)
        tuner = NarrowTuner(
            study,
            splits,
            budget,
            on_trial=on_trial,
            oracle=oracle,
            directory=str(directory),
            project_name=project_name,
            overwrite=overwrite,
        )
        tuner.search(verbose=0)
    best = tuner.oracle.get_best_trials(1)[0]
    values = best.hyperparameters.values
    match = shape_for(study, values, budget, splits.input_shape, splits.num_classes)
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    return {
        "widths": list(match.widths),
        "params": match.params,
        "learning_rate": float(values["learning_rate"]),
        "val_accuracy": float(best.score),
        "trials": len(completed),
        "note": match.note,
        "shares": {k: float(v) for k, v in values.items() if k.startswith("share_")},
    }
