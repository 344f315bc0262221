"""What every arm's run and search keys hold beside its own configuration: the engine, the data, how models are
evaluated and the search settings (one definition, for every arm alike)."""

from widthvsprune import families


def engine_of(study):
    """The engine a study trains with (``auto`` resolved); part of every run key."""
    from widthvsprune import engines

    return engines.resolve(study.engine, study.family)


def data_config(study):
    """What every run key holds of the data: its name, split and, for a registered dataset, its fingerprint."""
    from widthvsprune import data

    return {"dataset": study.dataset, **data.key_fields(study.dataset),
            "validation_fraction": study.validation_fraction, "data_seed": study.data_seed}


def evaluation_fields(study):
    """What a run key adds for how its model is evaluated: ``{"batchnorm": "recalibrated"}`` when the family has
    batch normalization and the study recalibrates its statistics (:attr:`Study.recalibrate_batchnorm`), nothing
    otherwise, so that every other run keeps the key it had before recalibration existed."""
    if study.recalibrate_batchnorm and families.batch_normalized(study.family):
        return {"batchnorm": "recalibrated"}
    return {}


def search_settings(study):
    """What every arm's search key hashes: the oracle, its trials, the search seed and the learning-rate range."""
    t = study.tuning
    batch = {} if t.batch == 1 else {"batch": t.batch}  # one at a time: as searches ran before batches existed
    rescore = {"rescore": t.rescore, "rescore_seed": study.rescore_seed} if t.rescored else {}  # 0: as before
    return {"oracle": t.oracle, "trials": t.trials, "seed": study.search_seed,
            "learning_rate": [t.learning_rate_min, t.learning_rate_max], **batch, **rescore}
