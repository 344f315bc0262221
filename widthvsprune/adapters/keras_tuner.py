"""KerasTuner's private names used to drive its oracles directly (:mod:`widthvsprune.run.tuning`).

KerasTuner's public surface (``Oracle.create_trial``, ``update_trial``,
``end_trial``, ``HyperParameters``) proposes and completes trials; this
module holds what it does not offer: attaching an oracle to a folder without
a ``Tuner``, the paths of its state files, its queue of trials to retry after
a reload, its random state, and the parts of Bayesian optimization that a
faster acquisition search reuses. Tested against the installed release
(``tests/test_adapters.py``).
"""

import os

import keras_tuner

#: Private names used here: ``{name: where}``.
PRIVATE = {
    "_set_project_dir": "Oracle",
    "_get_oracle_fname": "Oracle",
    "_get_trial_dir": "Oracle",
    "_save_trial": "Oracle",
    "_retry_queue": "Oracle instance",
    "_random_state": "BayesianOptimizationOracle instance",
    "_random_values": "Oracle",
    "_duplicate": "Oracle",
    "_random_populate_space": "BayesianOptimizationOracle",
    "_vectorize_trials": "BayesianOptimizationOracle",
    "_vector_to_values": "BayesianOptimizationOracle",
    "_get_hp_bounds": "BayesianOptimizationOracle",
}


def missing():
    """The names of :data:`PRIVATE` that the installed KerasTuner lacks, as ``"where.name"`` strings."""
    hp = keras_tuner.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    oracle = keras_tuner.oracles.BayesianOptimizationOracle(
        objective=keras_tuner.Objective("score", "max"), max_trials=1, hyperparameters=hp)
    out = []
    for name, where in PRIVATE.items():
        holder = oracle if where.endswith("instance") else getattr(keras_tuner.oracles, where, keras_tuner.Oracle)
        if not hasattr(holder, name):
            out.append(f"{where.split()[0]}.{name}")
    return out


def attach(oracle, directory, project):
    """Points ``oracle`` at ``directory/project`` for its state, as a ``Tuner`` would."""
    oracle._set_project_dir(directory, project)


def oracle_file(oracle):
    """The path of ``oracle``'s own state file (``oracle.json``)."""
    return oracle._get_oracle_fname()


def trial_file(oracle, trial_id):
    """The path of one trial's state file (``trial_<id>/trial.json``)."""
    return os.path.join(oracle._get_trial_dir(trial_id), "trial.json")


def with_writer(cls, write):
    """A subclass of the oracle class ``cls`` whose state files are written by ``write(path, data: bytes)``."""
    import json

    class Written(cls):
        def save(self):
            write(oracle_file(self), json.dumps(self.get_state()).encode())

        def _save_trial(self, trial):
            write(trial_file(self, trial.trial_id), json.dumps(trial.get_state()).encode())

    Written.__name__ = Written.__qualname__ = cls.__name__
    return Written


def retry_queue(oracle):
    """The ids of the trials ``oracle`` proposes again (trials still running when it was reloaded), a list."""
    return list(oracle._retry_queue)


def set_retry_queue(oracle, trial_ids):
    """Replaces ``oracle``'s queue of trials to retry."""
    oracle._retry_queue = list(trial_ids)


def random_state(oracle):
    """The ``numpy.random.RandomState`` that Bayesian optimization draws from."""
    return oracle._random_state


def random_values(oracle):
    """Untried hyperparameter values drawn as random search draws them, or ``None`` when none are left."""
    return oracle._random_values()


def duplicate(oracle, values):
    """Whether ``oracle`` has made a trial with these values already."""
    return oracle._duplicate(values)


def random_populate_space(oracle):
    """Bayesian optimization's proposal for an initial (random) point: ``{"status", "values"}``."""
    return oracle._random_populate_space()


def vectorize_trials(oracle):
    """``(x, y)``: the completed trials as points of the unit box and their scores (minimized)."""
    return oracle._vectorize_trials()


def vector_to_values(oracle, vector):
    """The hyperparameter values of a point of the unit box."""
    return oracle._vector_to_values(vector)


def bounds(oracle):
    """The bounds of the unit box, one ``[low, high]`` row per hyperparameter."""
    return oracle._get_hp_bounds()
