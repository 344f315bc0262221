"""What each arm's search tunes, how its trials train, and what it writes.

Every search has the same oracle and number of trials, scores a trial on
validation accuracy, and trains it with the study's search seed, which is
never an evaluation seed:

- ``baseline``: the wide model's learning rate (one search for the study);
- ``pruned`` (per size point): the fine-tune's learning rate, the schedule's
  ``end_fraction`` and ``frequency``, how sparsity is spread over layers
  (``layerwise`` or ``global``), the output layer's treatment, and which
  trained baseline it prunes (the recipe's or the tuned one: a baseline
  tuned for its own accuracy need not be the one that prunes best); every
  trial fine-tunes a baseline trained at the search seed;
- ``narrow`` (per size point): the learning rate and the split of width
  between the layers, every shape solved within the budget.

The untuned narrow control is a "search" without trials: its widths are the
budget's at the wide model's proportions, its learning rate the baseline's.
"""

import dataclasses

from widthvsprune import budgets, executors, families, masks
from widthvsprune.engines.base import ModelSpec
from widthvsprune.running import arms

# --------------------------------------------------------------------------
# Search spaces.


def _log_rate(hp, name, study, default):
    t = study.tuning
    hp.Float(name, t.learning_rate_min, t.learning_rate_max, sampling="log",
             default=min(max(default, t.learning_rate_min), t.learning_rate_max))


def outputs(study, target, sizes):
    """The output treatments the pruned search may choose at ``target`` (``dense`` only where it fits)."""
    return tuple(o for o in study.tuning.outputs
                 if o == "pruned" or masks.wrapped_target(target, sizes, prune_output=False) <= 0.99)


def space(study, search, sizes=None):
    """``f(hp)`` declaring a search's hyperparameters."""

    def declare(hp):
        if search.arm == "baseline":
            _log_rate(hp, "learning_rate", study, study.baseline.learning_rate)
        elif search.arm == "pruned":
            p, t = study.pruning, study.tuning
            _log_rate(hp, "learning_rate", study, study.finetune.learning_rate)
            hp.Float("end_fraction", t.end_fraction_min, 1.0,
                     default=min(max(p.end_fraction, t.end_fraction_min), 1.0))
            hp.Choice("frequency", list(study.frequencies), default=study.frequencies[0])
            if p.variant != "random":
                variants = list(t.variants)
                hp.Choice("variant", variants, default=p.variant if p.variant in variants else variants[0])
            choices = list(outputs(study, search.target, sizes))
            default = "pruned" if p.prune_output else "dense"
            hp.Choice("output", choices, default=default if default in choices else choices[0])
            hp.Choice("baseline", list(BASELINES), default=BASELINES[0])
        else:
            _log_rate(hp, "learning_rate", study, study.baseline.learning_rate)
            if study.tuning.split_range > 1:
                r = study.tuning.split_range
                for i in range(1, len(study.widths)):
                    hp.Float(f"share_{i}", 1.0 / r, r, sampling="log", default=1.0)

    return declare


BASELINES = ("recipe", "tuned")  # the baselines a pruned trial may prune; the recipe's first


def chosen(study, values):
    """A pruned trial's choices as config fields (``learning_rate`` is the fine-tune's, ``baseline`` the one it
    prunes)."""
    return {"learning_rate": float(values["learning_rate"]), "end_fraction": float(values["end_fraction"]),
            "frequency": int(values["frequency"]), "variant": values.get("variant", study.pruning.variant),
            "prune_output": values["output"] == "pruned", "baseline": values.get("baseline", "tuned")}


def shape_for(study, values, budget, input_shape, num_classes, count=None):
    """The widths of a narrow trial's split within ``budget``: a :class:`widthvsprune.budgets.Match`.

    ``count`` is the engine's ``count_params``, used for a family without a count function.
    """
    multipliers = [values.get(f"share_{i}", 1.0) for i in range(1, len(study.widths))]
    proportions = budgets.split_proportions(study.widths, multipliers)
    return budgets.solve_widths(study.family, budget, proportions, input_shape, num_classes, count)


# --------------------------------------------------------------------------
# Trials.


@dataclasses.dataclass(frozen=True)
class Context:
    """What a search's trials need beyond the study: the search, for the pruned arm the baselines it may prune
    (``weights``: ``{"recipe": ..., "tuned": ...}``) and one's record, and the engine's ``count_params`` for a
    family without a count function."""

    search: object
    weights: object = None
    baseline_record: object = None
    count: object = None


def trial(study, splits, context, values):
    """One trial: ``(recipe, model spec, info)``."""
    search, seed, n = context.search, study.search_seed, len(splits.x_train)
    recipe = arms.recipe_of(study, search.arm, n)
    if search.arm == "baseline":
        return recipe, ModelSpec(study.family, study.widths, seed, float(values["learning_rate"])), {}
    if search.arm == "pruned":
        choice = chosen(study, values)
        pruning = {**search.config["pruning"],
                   **{k: v for k, v in choice.items() if k not in ("learning_rate", "baseline")}}
        spec = arms.prune_spec(study, pruning, search.config["finetune"], search.target, n,
                               arms.kernel_sizes(context.baseline_record), seed)
        return recipe, ModelSpec(study.family, study.widths, seed, choice["learning_rate"],
                                 tuple(context.weights[choice["baseline"]]), spec), {"variant": pruning["variant"]}
    match = shape_for(study, values, search.budget, splits.input_shape, splits.num_classes, context.count)
    return recipe, ModelSpec(study.family, match.widths, seed, float(values["learning_rate"])), {
        "widths": match.widths}


def train_trials(study, splits, executor, contexts, proposals):
    """Trains proposals (:class:`widthvsprune.tuning.Proposal`) side by side, one pack per recipe (split over the
    executor's slots).

    Returns:
        ``[(val_accuracy, info), ...]`` in order; ``info`` holds ``seconds``
        and ``epochs`` (kept with the trial) and what a progress line shows. A
        model that failed (a non-finite loss) scores 0.
    """
    made = [trial(study, splits, contexts[p.job], p.values) for p in proposals]
    groups = {}
    for i, (recipe, _, _) in enumerate(made):
        groups.setdefault(recipe, []).append(i)
    packs, order = [], []
    for recipe, members in groups.items():
        trials = arms.pack(recipe, [made[i][1] for i in members], validate="last_epoch", test=False, weights=False)
        for part in executors.split(trials, executor.slots):
            packs.append(part)
            order += [(i, recipe) for i in members[: len(part.models)]]
            members = members[len(part.models):]
    out = [None] * len(made)
    outcomes = [o for group in executor.train(packs, splits) for o in group]
    for (i, recipe), outcome in zip(order, outcomes):
        info = {**made[i][2], "seconds": outcome.seconds, "epochs": arms.epochs_of(recipe, len(splits.x_train)),
                "where": outcome.where}
        out[i] = (outcome.val_accuracy if outcome.ok else 0.0, info)
    return out


# --------------------------------------------------------------------------
# Results (``search/result.json``).


def result(study, search, found, splits, count=None):
    """A finished search's result: what it chose and what it cost."""
    values = found["values"]
    out = {"status": "ok", "val_accuracy": found["score"], "trials": found["trials"], "epochs": found["epochs"],
           "seconds": found["seconds"], "seed": study.search_seed, "values": values}
    if search.arm == "baseline":
        out["learning_rate"] = float(values["learning_rate"])
    elif search.arm == "pruned":
        out["chosen"] = chosen(study, values)
    else:
        match = shape_for(study, values, search.budget, splits.input_shape, splits.num_classes, count)
        out.update(widths=list(match.widths), params=match.params, learning_rate=float(values["learning_rate"]),
                   note=match.note)
    return out


def untuned_narrow(study, search, splits, count=None):
    """The narrow control's result: the widths at the wide model's proportions, the baseline's learning rate."""
    match = budgets.solve_widths(study.family, search.budget, study.widths, splits.input_shape, splits.num_classes,
                                 count)
    return {"status": "ok", "widths": list(match.widths), "params": match.params,
            "learning_rate": study.baseline.learning_rate, "note": match.note, "trials": 0, "epochs": 0.0,
            "seconds": 0.0}


def no_fit(study, search, splits, count=None):
    """The result of a size point where not even the smallest model fits, or ``None``."""
    smallest = budgets.smallest_params(families.get_family(study.family), len(study.widths), splits.input_shape,
                                       splits.num_classes, count)
    if smallest <= search.budget:
        return None
    return {"status": "no-narrow-fits",
            "note": f"no-narrow-fits: the smallest {study.family} (every width 1) has {smallest} parameters, "
                    f"more than the budget of {search.budget}"}
