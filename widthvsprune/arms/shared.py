"""What arms share: what every run and search key holds beside an arm's own configuration (the engine, the data,
how models are evaluated, the search settings: one definition, for every arm alike), and the names by which arms
reach each other's results through the planner.

An arm never imports another arm. It names the arms it needs (:attr:`Arm.requires`, :class:`Contrast`) by their
registered names below, and what it takes from them by the name of what they offer
(:meth:`widthvsprune.plan.planner.Builder.offer` and :meth:`~widthvsprune.plan.planner.Builder.need`).
"""

from widthvsprune import families, keys

#: The registered names of the arms that others name.
BASELINE, PRUNED, NARROW = "baseline", "pruned", "narrow"

#: What the baseline arm offers: its :class:`~widthvsprune.arms.baseline.Baselines` (the recipe's and the tuned
#: baselines, their configurations and run ids at every seed and at the search seed).
BASELINES = "baselines"
#: What the pruned arm offers: ``f(target, tuning=None) -> [Run]``, its runs at a size point as far as the plan knows
#: them (the tuned ones give the chosen shape: the kernels' sparsities their records hold).
PRUNED_RUNS = "pruned runs"
#: What the pruned arm offers: ``f(target) -> nonzeros or None``, the fewest nonzeros its runs at a size point are
#: expected to keep, told from the baseline's layers before they train
#: (:func:`widthvsprune.arms.pruned.expected_budget`; ``None`` where that cannot be told).
PRUNED_NONZEROS = "pruned nonzeros"


def baseline_config(study, tuning="untuned", learning_rate=None):
    """A baseline run's configuration (what its key hashes): the recipe, with a chosen learning rate. The baseline
    arm's runs, and the baseline a pruned or fine-tuned run starts from, are keyed by it."""
    recipe = keys.config_dict(study.baseline)
    if learning_rate is not None:
        recipe["learning_rate"] = float(learning_rate)
    return {"arm": BASELINE, "tuning": tuning, "engine": engine_of(study), "data": data_config(study),
            "family": study.family, **families.key_fields(study.family), **evaluation_fields(study),
            "widths": list(study.widths), **pretrained_fields(study),
            "recipe": recipe}


def pretrained_fields(study):
    """What a baseline's key adds when the study starts from trained weights (:attr:`Study.pretrained`): their
    fingerprint and whether the recipe is the declared one; nothing otherwise."""
    if not study.pretrained:
        return {}
    return {"pretrained": {"weights": families.weights_of(study.family), "recipe": study.pretrained}}


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
