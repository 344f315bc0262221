"""Searches: KerasTuner oracles propose trials; the caller trains them.

The oracles (Bayesian optimization by default, or random search)
own the trials and keep their state as JSON in the search's folder, written
atomically; an interrupted search resumes from its last finished trial.
Every search's first trial is its space's defaults, the arm's recipe as
written, and the next ones any trials its arm asks for (the pruned arm:
each other allocation); the oracle proposes the rest. They
are driven here directly, without KerasTuner's ``Tuner`` (whose stock
build-and-fit path rejects tf_keras models, keras-team/keras-tuner#1039): in
each round the next trials of every unfinished search are proposed and
handed to ``train``, which trains them side by side and returns their
validation scores. Nothing here trains a model or knows the engine.

A search gives the same trials and scores however often it is interrupted.
Before a round trains, its trials are listed in ``round.json`` in the
search's folder; a round cut short is trained again whole, the trials that
had finished only beside the others (their scores are kept), so that every
trial trains beside the same trials. A trial file that the oracle's state
does not know (a kill between the two writes that create a trial) is
removed, so that the oracle proposes it again from the same state; Bayesian
optimization's random state is saved with the oracle's. Trials are read back
in trial order, and the best trial is the one with the highest score, the
lowest trial number among equal scores.
"""

import contextlib
import dataclasses
import io
import math
import os
import pathlib
import re
import warnings
from typing import Callable

import numpy as np
import scipy
import scipy.linalg
import scipy.optimize

from widthvsprune import store
from widthvsprune.adapters import sklearn as sk_adapter

OBJECTIVE = "val_accuracy"
COST = ("seconds", "epochs")  # kept with every trial, summed in the search's result
MAX_CONCURRENT_TRIALS = 8

#: Whether SciPy's L-BFGS-B evaluates a finite-difference gradient's points through ``options["workers"]``
#: (``workers(fun, points)``, SciPy 1.16 and later): Bayesian optimization's acquisition search then evaluates them
#: in one call.
BATCHED = tuple(map(int, re.match(r"(\d+)\.(\d+)", scipy.__version__).groups())) >= (1, 16)  # "1.16rc1" too


class TrialStatus:
    """The values of a KerasTuner trial's ``status`` (``keras_tuner.engine.trial.TrialStatus``, which KerasTuner
    1.4.0 does not export)."""

    RUNNING = "RUNNING"
    IDLE = "IDLE"
    INVALID = "INVALID"
    STOPPED = "STOPPED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


def _kt():
    import keras_tuner

    return keras_tuner


def _adapter():
    """KerasTuner's private names (:mod:`widthvsprune.adapters.keras_tuner`), imported with KerasTuner."""
    from widthvsprune.adapters import keras_tuner as kt_adapter

    return kt_adapter


@dataclasses.dataclass(frozen=True)
class SearchJob:
    """One search.

    Attributes:
        directory: the folder holding its KerasTuner project (``search/``).
        space: ``f(hp)`` declaring the hyperparameters on a
            ``keras_tuner.HyperParameters``.
        oracle: ``"bayesian"`` or ``"random"``.
        max_trials: trials of the search.
        seed: the oracle's seed.
        overwrite: start over instead of resuming.
        tag: any value, handed back with every trial.
        first: the trials after the recipe, as changes to its values
            (``[{name: value}, ...]``), tried before the oracle proposes.
        batch: trials proposed at a time once the first ones are done.
    """

    directory: str
    space: Callable
    oracle: str = "bayesian"
    max_trials: int = 8
    seed: int = 0
    overwrite: bool = False
    tag: object = None
    first: tuple = ()
    batch: int = 1


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A trial to train.

    Attributes:
        job: its job's index.
        values: its hyperparameter values.
        trial: its trial id (``"00"``, ``"01"``...); a round's proposals of one job come in trial order.
        replay: the trial finished before (its round was cut short): it trains beside the round's other trials
            again, and its score is not used.
    """

    job: int
    values: dict
    trial: str = ""
    replay: bool = False


def _atomic(cls):
    """An oracle class whose state files are written atomically (complete or absent after a kill)."""
    return _adapter().with_writer(cls, store.write_bytes)


def _posterior(gpr, x):
    """``(mean, std)`` of a fitted scikit-learn Gaussian process at each row of ``x`` (2-D float64): 1-D arrays.

    The same arithmetic as ``GaussianProcessRegressor.predict(x, return_std=True)``
    without its input validation, which took most of the time of Bayesian
    optimization's acquisition search (tens of thousands of one-point calls).
    The kernel is evaluated for all rows at once; the rest row by row, as
    ``predict`` computes one row, so that each row's values are those of
    ``predict`` on that row alone, bit for bit, however many rows come
    together (a product over several rows may sum in another order).
    """
    y_mean, y_std = sk_adapter.target_scale(gpr)
    k_trans = gpr.kernel_(x, gpr.X_train_)
    solve = _triangular_solver(gpr.L_)
    products, explained = np.empty(len(x)), np.empty(len(x))
    for i in range(len(x)):  # the sums, row by row; the rest is elementwise
        k = k_trans[i:i + 1]
        products[i] = np.squeeze(k @ gpr.alpha_)
        v = solve(k.T)
        explained[i] = np.squeeze(np.einsum("ij,ji->i", v.T, v))
    var = gpr.kernel_.diag(x).copy()
    var -= explained
    var[var < 0] = 0.0
    return y_std * products + y_mean, np.sqrt(var * y_std**2)


def _triangular_solver(lower):
    """``f(b)``: ``scipy.linalg.solve_triangular(lower, b, lower=True, check_finite=False)``, the same LAPACK call
    (``trtrs``) with the same arguments, without the checks around it (tested bit for bit)."""
    trtrs, = scipy.linalg.get_lapack_funcs(("trtrs",), (lower,))
    if lower.flags.f_contiguous:
        return lambda b: _solved(*trtrs(lower, b, overwrite_b=False, lower=True, trans=0, unitdiag=False))
    return lambda b: _solved(*trtrs(lower.T, b, overwrite_b=False, lower=False, trans=1, unitdiag=False))


def _solved(x, info):
    if info != 0:
        raise np.linalg.LinAlgError(f"Expected a nonsingular triangular factor. Received: trtrs info={info}")
    return x


def batched_gradients(values_at):
    """L-BFGS-B's ``options`` that hand the points of each finite-difference gradient to ``values_at(points)`` (one
    value per row) in one call, where SciPy does (:data:`BATCHED`); else ``{}``. The minimization is the same where
    each row's value is the same as alone (:func:`_posterior`)."""
    return {"workers": lambda fun, points: values_at(np.array(list(points)))} if BATCHED else {}


def _fast_acquisition(cls):
    """KerasTuner's Bayesian optimization with its acquisition search computed faster, to the same result.

    The proposal is KerasTuner's: fit the Gaussian process to the completed
    trials, then minimize the lower confidence bound ``mean - beta * std``
    with L-BFGS-B from 50 random starts drawn from the oracle's own random
    state, and take the best. Only the bound's evaluation is faster
    (:func:`_posterior`, the same values), and the points of each
    finite-difference gradient are evaluated in one call where SciPy allows it
    (:data:`BATCHED`), so the proposals are KerasTuner's (tested), with one
    exception. A proposal equal to a configuration already
    tried is replaced by a random untried one, drawn as KerasTuner's random
    search draws them. KerasTuner's Bayesian optimization does not check, and
    in a one-dimensional space it often proposes a bound of the range again
    and again; a search trains with one seed, so a repeat only repeats a score.
    The random state is saved with the oracle's state (KerasTuner starts it
    again from the seed on a reload), so a resumed search proposes what it
    would have proposed uninterrupted.
    """

    class FastAcquisition(cls):
        def get_state(self):
            state = super().get_state()
            name, keys, pos, has_gauss, cached = _adapter().random_state(self).get_state()
            state["random_state"] = [name, [int(k) for k in keys], int(pos), int(has_gauss), float(cached)]
            return state

        def set_state(self, state):
            super().set_state(state)
            if "random_state" in state:  # a resumed search draws what it would have drawn uninterrupted
                name, keys, pos, has_gauss, cached = state["random_state"]
                keys = np.asarray(keys, dtype=np.uint32)
                _adapter().random_state(self).set_state((name, keys, pos, has_gauss, cached))

        def populate_space(self, trial_id):
            completed = [t for t in self.trials.values() if t.status == "COMPLETED"]
            initial = self.num_initial_points or max(3 * len(self.hyperparameters.space), 3)
            if len(completed) < initial:
                return _adapter().random_populate_space(self)
            x, y = _adapter().vectorize_trials(self)
            self.gpr.fit(np.nan_to_num(x, posinf=0, neginf=0), np.nan_to_num(y, posinf=0, neginf=0))

            def bounds_at(points):  # the lower confidence bound at each row of points
                mean, std = _posterior(self.gpr, points)
                return mean - self.beta * std

            def bound(point):
                return bounds_at(point.reshape(1, -1))[0]

            options = batched_gradients(bounds_at)
            limits = _adapter().bounds(self)
            starts = _adapter().random_state(self).uniform(limits[:, 0], limits[:, 1], size=(50, limits.shape[0]))
            best, best_x = float("inf"), None
            for start in starts:
                found = scipy.optimize.minimize(bound, x0=start, bounds=limits, method="L-BFGS-B", options=options)
                value = found.fun if np.isscalar(found.fun) else found.fun[0]
                if value < best:
                    best, best_x = value, found.x
            values = _adapter().vector_to_values(self, best_x)
            # Trained already: the same configuration and seed give the same score.
            if _adapter().duplicate(self, values):
                values = _adapter().random_values(self) or values
            return {"status": TrialStatus.RUNNING, "values": values}

    FastAcquisition.__name__ = FastAcquisition.__qualname__ = cls.__name__
    return FastAcquisition


def _given_first(cls, first=()):
    """An oracle whose first trials are given: the space's defaults (the arm's recipe as written), then the
    defaults changed as each entry of ``first`` says.

    Every search then tries its arm's untuned configuration (the spaces'
    defaults are the study's recipes) among its trials, so the configuration
    it chooses is never worse on the validation split than the untuned one;
    the pruned search also tries each allocation once with the recipe's other
    settings. The other trials are the oracle's own. Given trials depend on no
    result, so they are trained side by side (:func:`_concurrency`).
    """

    class GivenFirst(cls):
        given = tuple(first)

        def populate_space(self, trial_id):
            n = len(self.trials)  # trials made so far: the next one is number n
            if n <= len(self.given):
                values = dict(self.hyperparameters.values)
                if n:
                    values.update(self.given[n - 1])
                return {"status": TrialStatus.RUNNING, "values": values}
            return super().populate_space(trial_id)

    GivenFirst.__name__ = GivenFirst.__qualname__ = cls.__name__
    return GivenFirst


def make_oracle(job):
    """The job's KerasTuner oracle, not yet attached to a folder."""
    kt = _kt()
    hp = kt.HyperParameters()
    job.space(hp)
    common = dict(objective=kt.Objective(OBJECTIVE, direction="max"), seed=int(job.seed), hyperparameters=hp,
                  tune_new_entries=False)
    if job.oracle == "random":
        return _atomic(_given_first(kt.oracles.RandomSearchOracle, job.first))(max_trials=job.max_trials, **common)
    return _atomic(_given_first(_fast_acquisition(kt.oracles.BayesianOptimizationOracle), job.first))(
        max_trials=job.max_trials, num_initial_points=min(3, job.max_trials), **common)


ROUND = "round.json"


def state_problem(project):
    """Why a search's saved state cannot be resumed (a file and what is wrong with it), or ``""``."""
    project = pathlib.Path(project)
    for path in [project / "oracle.json", project / ROUND, *sorted(project.glob("trial_*/trial.json"))]:
        if not path.exists():
            continue
        try:
            store.read_json(path)
        except (OSError, ValueError) as error:
            return f"{path.relative_to(project.parent)} is unreadable ({type(error).__name__})"
    return ""


def _attach(oracle, job, on_reset):
    directory, project = os.path.split(os.path.normpath(job.directory))
    _adapter().attach(oracle, directory, project)
    path = pathlib.Path(job.directory)
    problem = "" if job.overwrite else state_problem(path)
    if problem and on_reset is not None:
        on_reset(job, problem)
    if (job.overwrite or problem) and path.exists():
        for state in [path / "oracle.json", path / ROUND, *path.glob("trial_*/trial.json")]:
            state.unlink(missing_ok=True)
    if (path / "oracle.json").exists():
        oracle.reload()
        _forget_unknown(oracle, path)
        _keep_finished(oracle)
    return oracle


def _trial_order(trial_id):
    return (0, int(trial_id), "") if str(trial_id).isdigit() else (1, 0, str(trial_id))


def _forget_unknown(oracle, path):
    """Trials in trial order; a trial file that the oracle's state does not list is removed.

    KerasTuner writes a new trial's file, then the oracle's state: a kill
    between the two leaves a trial the oracle never made. Removed, it is
    proposed again from the same state, as it was the first time. A reload
    reads the trial files in the file system's order; the oracle's fits and
    ties see them in trial order.
    """
    known = set(oracle.start_order)
    for trial_id in [t for t in oracle.trials if t not in known]:
        del oracle.trials[trial_id]
        (path / f"trial_{trial_id}" / "trial.json").unlink(missing_ok=True)
    oracle.trials = dict(sorted(oracle.trials.items(), key=lambda item: _trial_order(item[0])))


def _keep_finished(oracle):
    """Finished trials stay finished after a reload.

    KerasTuner saves ``oracle.json`` at the end of a trial before it stops
    listing the trial as ongoing, and a reload queues every ongoing trial for
    a retry: a kill right after a trial finished would train it again,
    although its ``trial.json`` says it completed.
    """
    done = {trial_id for trial_id, trial in oracle.trials.items() if trial.status == "COMPLETED"}
    _adapter().set_retry_queue(oracle, [t for t in _adapter().retry_queue(oracle) if t not in done])
    oracle.end_order += sorted(done - set(oracle.end_order))


@contextlib.contextmanager
def _quiet(verbose):
    if verbose:
        yield
        return
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.filterwarnings("ignore", module=r"sklearn\.gaussian_process.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        yield


def _concurrency(oracle, batch=1):
    """How many trials of one search to propose and train side by side.

    Trials that do not depend on one another's results: the given first
    trials, the random initial points of Bayesian optimization, every trial of
    a random search. Model-guided Bayesian trials go ``batch`` at a time: each
    proposal counts the pending ones at a pessimistic estimate, as KerasTuner
    does for concurrent trials, so they differ.
    """
    kt = _kt()
    completed = sum(t.status == "COMPLETED" for t in oracle.trials.values())
    given = 1 + len(getattr(oracle, "given", ())) - len(oracle.trials)  # the recipe and the given trials left
    if isinstance(oracle, kt.oracles.RandomSearchOracle):
        left = (oracle.max_trials or MAX_CONCURRENT_TRIALS) - len(oracle.trials)
    elif isinstance(oracle, kt.oracles.BayesianOptimizationOracle):
        left = max(given, (oracle.num_initial_points or 1) - completed, batch)
    else:
        left = max(given, batch)
    return max(1, min(MAX_CONCURRENT_TRIALS, left))


def search_many(jobs, train, on_trial=None, on_reset=None, verbose=False):
    """Runs (or resumes) several searches side by side.

    Each search keeps its own order: a trial that depends on earlier results
    (a model-guided Bayesian proposal) is proposed only once
    those results are in; trials that depend on none (random initial points,
    random search) are proposed together. In each round, the next trials of
    every unfinished search are handed to ``train`` together; their scores go
    back to their own oracles, which save their state after every trial.

    Args:
        jobs: :class:`SearchJob` s.
        train: ``f(proposals) -> [(score, info), ...]`` trains a list of
            :class:`Proposal` s side by side and returns one
            validation score (0 for a model that failed) and one dict of
            anything to report per proposal.
        on_trial: optional ``f(job, trial_number, values, score, info)``.
        on_reset: optional ``f(job, problem)``, called when a search's saved
            state is unreadable and the search starts over.
        verbose: show KerasTuner's own output.

    Returns:
        One dict per job: ``values`` of the best trial, its ``score``, the
        number of ``trials`` completed, and their total ``seconds`` and
        ``epochs`` (from the ``info`` of each trial).
    """
    status = TrialStatus
    with _quiet(verbose):
        oracles = [_attach(make_oracle(job), job, on_reset) for job in jobs]
        active = list(range(len(jobs)))
        idle_rounds = 0
        while active:
            batch, rounds = [], []
            for i in list(active):
                trials, replays, stopped = _next_round(oracles[i], jobs[i], status)
                if stopped and not trials:
                    active.remove(i)
                if trials:
                    rounds.append(i)
                    batch += [(i, trial, trial.trial_id in replays)
                              for trial in sorted(trials, key=lambda t: _trial_order(t.trial_id))]
            if not batch:
                idle_rounds += 1
                if active and idle_rounds > 100:
                    raise RuntimeError("a search's oracle stopped proposing trials")
                continue
            idle_rounds = 0
            results = train([Proposal(i, dict(trial.hyperparameters.values), trial.trial_id, replay)
                             for i, trial, replay in batch])
            for (i, trial, replay), (score, info) in zip(batch, results):
                if replay:
                    continue  # finished before: its score is kept
                score = float(score) if score is not None and math.isfinite(score) else 0.0
                cost = {name: float(info[name]) for name in COST if name in info}
                oracles[i].update_trial(trial.trial_id, {OBJECTIVE: score, **cost})
                trial.status = status.COMPLETED
                oracles[i].end_trial(trial)
                if on_trial is not None:
                    number = int(trial.trial_id) + 1 if trial.trial_id.isdigit() else len(oracles[i].trials)
                    on_trial(jobs[i], number, trial.hyperparameters.values, score, info)
            for i in rounds:
                pathlib.Path(jobs[i].directory, ROUND).unlink(missing_ok=True)
    return [_result(oracle) for oracle in oracles]


def _next_round(oracle, job, status):
    """``(trials, replays, stopped)``: the next round of one search.

    A round cut short (trials the oracle still lists as running after a
    reload) is trained again whole: its running trials, and as ``replays``
    the ids of those of its trials (``round.json``) that had finished.
    Otherwise the oracle proposes the next trials (:func:`_concurrency`), and
    they are listed in ``round.json`` before they train. ``stopped``: the
    oracle proposes no more.
    """
    path = pathlib.Path(job.directory, ROUND)
    retry = _adapter().retry_queue(oracle)
    if retry:  # a round cut short
        trials = [oracle.create_trial(f"tuner0-{j}") for j in range(len(retry))]
        listed = store.read_json(path)["trials"] if path.exists() else []
        running = {t.trial_id for t in trials}
        replays = {t for t in listed if t not in running and t in oracle.trials
                   and oracle.trials[t].status == status.COMPLETED} if running & set(listed) else set()
        return trials + [oracle.trials[t] for t in sorted(replays, key=_trial_order)], replays, False
    path.unlink(missing_ok=True)  # the last round ended
    trials, stopped = [], False
    for j in range(_concurrency(oracle, job.batch)):
        trial = oracle.create_trial(f"tuner0-{j}")
        if trial.status == status.STOPPED:
            stopped = True
            break
        if trial.status == status.IDLE:
            break
        trials.append(trial)
    if trials:
        store.write_json(path, {"trials": [t.trial_id for t in trials]})
    return trials, set(), stopped


def _result(oracle):
    completed = [t for t in oracle.trials.values() if t.status == "COMPLETED"]
    ranked = sorted(completed, key=lambda t: (-float(t.score), _trial_order(t.trial_id)))  # ties: the first trial
    best = ranked[0]
    cost = {name: sum(float(t.metrics.get_last_value(name) or 0.0) for t in completed if t.metrics.exists(name))
            for name in COST}
    return {"values": dict(best.hyperparameters.values), "score": float(best.score), "trials": len(completed),
            "ranked": [{"trial": t.trial_id, "values": dict(t.hyperparameters.values), "score": float(t.score)}
                       for t in ranked], **cost}
