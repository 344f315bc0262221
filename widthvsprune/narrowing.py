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
import dataclasses
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
        epochs = int(values.get("tuner/epochs", self.study.narrow_epochs))
        [(match, lr, score)], seconds = train_trials(self.study, self.splits, [(values, self.budget)], epochs)
        if self.on_trial is not None:
            self.on_trial(len(self.oracle.trials), match.widths, lr, score, seconds)
        return {OBJECTIVE: score}


def train_trials(study, splits, candidates, epochs):
    """Trains trial candidates side by side; a diverging one scores 0 (a valid, bad result).

    Args:
        candidates: ``(hyperparameter values, budget)`` pairs.
        epochs: epochs of every candidate.

    Returns:
        ``([(match, learning_rate, val_accuracy), ...], seconds per candidate)``.
    """
    seed = int(study.seeds[0])
    shapes = [shape_for(study, values, budget, splits.input_shape, splits.num_classes) for values, budget in candidates]
    rates = [float(values["learning_rate"]) for values, _ in candidates]
    branches = [models.build(study.family, m.widths, splits.input_shape, splits.num_classes, seed) for m in shapes]
    histories, diverged, seconds = training.fit_packed(
        branches, splits, study.baseline, [seed] * len(branches), epochs=epochs, learning_rates=rates,
        validate="last_epoch",
    )
    out = []
    for k, (match, lr, history) in enumerate(zip(shapes, rates, histories)):
        score = 0.0 if k in diverged else float(history[-1][OBJECTIVE])
        out.append((match, lr, score if math.isfinite(score) else 0.0))
    return out, seconds / len(candidates)


@contextlib.contextmanager
def _quiet(verbose):
    if verbose:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()):
        yield


@dataclasses.dataclass(frozen=True)
class SearchJob:
    """One narrow search: a budget and the folder of its KerasTuner project.

    Attributes:
        budget: parameters every candidate must fit.
        directory: the folder that holds the project.
        project_name: the project's folder name inside ``directory``.
        overwrite: start the search over instead of resuming it.
        tag: any value, passed back to ``on_trial`` (the target sparsity, say).
    """

    budget: int
    directory: str
    project_name: str = "search"
    overwrite: bool = False
    tag: object = None


def _tuner(study, splits, job):
    return NarrowTuner(
        study,
        splits,
        job.budget,
        oracle=make_oracle(study, hyperparameters(study), study.narrow_epochs),
        directory=str(job.directory),
        project_name=job.project_name,
        overwrite=job.overwrite,
    )


def _result(study, splits, tuner, budget):
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


MAX_CONCURRENT_TRIALS = 8


def _concurrency(oracle):
    """How many trials of one search can be trained side by side without changing the search.

    Trials that do not depend on one another's results: the random initial
    points of Bayesian optimization, every trial of a random search. Hyperband
    and the model-guided Bayesian trials go one at a time.
    """
    completed = sum(t.status == "COMPLETED" for t in oracle.trials.values())
    if isinstance(oracle, kt.oracles.RandomSearchOracle):
        left = (oracle.max_trials or MAX_CONCURRENT_TRIALS) - len(oracle.trials)
    elif isinstance(oracle, kt.oracles.BayesianOptimizationOracle):
        left = (oracle.num_initial_points or 1) - completed
    else:
        left = 1
    return max(1, min(MAX_CONCURRENT_TRIALS, left))


def search_many(study, splits, jobs, on_trial=None, verbose=False):
    """Runs (or resumes) several narrow searches side by side.

    Each search keeps its own order: a trial that depends on earlier results
    (a model-guided Bayesian proposal, a Hyperband rung) is proposed only once
    those results are in; trials that depend on none (random initial points,
    random search) are proposed together. In each round, the next trials of
    every unfinished search are trained packed into one ``fit``
    (:func:`widthvsprune.training.fit_packed`); their results go back to their
    own oracles, which save their state after every trial.

    Args:
        study: the :class:`widthvsprune.Study`.
        splits: the dataset's splits.
        jobs: :class:`SearchJob` s.
        on_trial: optional ``f(tag, trial_number, widths, learning_rate, val_accuracy, seconds)``.
        verbose: show KerasTuner's own output.

    Returns:
        One result dict per job: ``widths``, ``params``, ``learning_rate``,
        ``val_accuracy`` of the best trial, ``trials`` (completed) and ``note``.
    """
    with _quiet(verbose):
        tuners = [_tuner(study, splits, job) for job in jobs]
        for tuner in tuners:
            tuner.on_search_begin()
        active, idle_rounds = list(range(len(jobs))), 0
        while active:
            batch = []
            for i in list(active):
                tuner, stopped, got = tuners[i], False, 0
                for j in range(_concurrency(tuner.oracle)):
                    tuner.pre_create_trial()
                    trial = tuner.oracle.create_trial(f"{tuner.tuner_id}-{j}")
                    if trial.status == kt.engine.trial.TrialStatus.STOPPED:
                        stopped = True
                        break
                    if trial.status == kt.engine.trial.TrialStatus.IDLE:
                        break
                    tuner.on_trial_begin(trial)
                    batch.append((i, trial))
                    got += 1
                if stopped and not got:
                    active.remove(i)
                    tuner.on_search_end()
            if not batch:
                idle_rounds += 1
                if active and idle_rounds > 100:
                    raise RuntimeError("the narrow search's oracle stopped proposing trials")
                continue
            idle_rounds = 0
            by_epochs = {}
            for i, trial in batch:
                epochs = int(trial.hyperparameters.values.get("tuner/epochs", study.narrow_epochs))
                by_epochs.setdefault(epochs, []).append((i, trial))
            for epochs, group in by_epochs.items():
                _run_round(study, splits, tuners, jobs, group, epochs, on_trial)
    return [_result(study, splits, tuner, job.budget) for tuner, job in zip(tuners, jobs)]


def _run_round(study, splits, tuners, jobs, group, epochs, on_trial):
    candidates = [(trial.hyperparameters.values, jobs[i].budget) for i, trial in group]
    results, seconds = train_trials(study, splits, candidates, epochs)
    for (i, trial), (match, lr, score) in zip(group, results):
        tuner = tuners[i]
        tuner.oracle.update_trial(trial.trial_id, {OBJECTIVE: score})
        trial.status = kt.engine.trial.TrialStatus.COMPLETED
        tuner.on_trial_end(trial)
        if on_trial is not None:
            on_trial(jobs[i].tag, len(tuner.oracle.trials), match.widths, lr, score, seconds)


def search(study, splits, budget, directory, project_name="search", overwrite=False, on_trial=None, verbose=False):
    """Runs (or resumes) the narrow search for one budget.

    Args:
        on_trial: optional ``f(trial_number, widths, learning_rate, val_accuracy, seconds)``.

    Returns:
        A dict: ``widths``, ``params``, ``learning_rate``, ``val_accuracy``
        of the best trial, ``trials`` (completed trials) and ``note``.
    """
    callback = None if on_trial is None else (lambda tag, *rest: on_trial(*rest))
    job = SearchJob(int(budget), str(directory), project_name, overwrite)
    return search_many(study, splits, [job], on_trial=callback, verbose=verbose)[0]
