"""What each arm trains and records.

Runs of the plan become :class:`~widthvsprune.engines.base.ModelSpec` s in
packs for the engine; the engine's outcomes become records. The narrow arm's
search space, its trials and its result live here too. No framework is
imported: everything goes through the engine seam.
"""

import dataclasses
import traceback

import pandas as pd

from widthvsprune import budgets, families, measuring, schedules, storing
from widthvsprune.engines.base import ModelSpec, Pack, PruneSpec

# --------------------------------------------------------------------------
# Runs to packs.


def recipe_of(study, run):
    """``(batch_size, optimizer, epochs)`` a run trains with; runs with the same recipe share a pack."""
    if run.arm == "baseline":
        r = study.baseline
        return r.batch_size, r.optimizer, r.epochs
    if run.arm == "pruned":
        r = study.finetune
        return r.batch_size, r.optimizer, r.epochs
    return study.baseline.batch_size, study.baseline.optimizer, study.narrow_epochs


def schedule(study, splits):
    """The pruning fine-tune's schedule steps (``end_step`` on a mask update)."""
    return schedules.schedule_steps(
        len(splits.x_train), study.finetune.batch_size, study.finetune.epochs,
        study.pruning.frequency, study.pruning.begin_step, study.pruning.end_fraction,
    )


def model_spec(study, run, splits, initial_weights=None, log_dir=None):
    """The engine's description of one run."""
    if run.arm == "baseline":
        lr = study.baseline.learning_rate
        prune = None
    elif run.arm == "pruned":
        lr = study.finetune.learning_rate
        p = study.pruning
        prune = PruneSpec(p.variant, float(run.target), p.initial_sparsity, p.power, schedule(study, splits),
                          p.prune_output, int(run.seed))
    else:
        lr = float(run.config["learning_rate"])
        prune = None
    weights = None if initial_weights is None else tuple(initial_weights)
    return ModelSpec(study.family, tuple(run.widths), int(run.seed), lr, weights, prune, log_dir)


def pack(recipe, specs, **options):
    batch_size, optimizer, epochs = recipe
    return Pack(tuple(specs), batch_size, optimizer, epochs, **options)


# --------------------------------------------------------------------------
# Outcomes to records.


def common(study, run):
    """The fields every record of ``run`` has."""
    return {
        "study": study.name,
        "arm": run.arm,
        "family": study.family,
        "dataset": study.dataset,
        "seed": int(run.seed),
        "label": run.label,
        "key": run.key,
        "widths": families.describe_widths(run.widths),
        "target_sparsity": float(run.target),
        "pruning": study.pruning.variant if run.arm == "pruned" else "",
    }


def arm_fields(study, run, splits, search=None):
    """What a record says about how its arm trained it."""
    if run.arm == "baseline":
        return {"epochs": study.baseline.epochs, "learning_rate": study.baseline.learning_rate}
    if run.arm == "pruned":
        return {
            "epochs": study.baseline.epochs + study.finetune.epochs,
            "learning_rate": study.finetune.learning_rate,
            "prune_output": study.pruning.prune_output,
            "schedule": dataclasses.asdict(schedule(study, splits)),
        }
    search = search or {}
    return {
        "budget": int(run.config["budget"]),
        "epochs": study.narrow_epochs,
        "learning_rate": float(run.config["learning_rate"]),
        "tuner_trials": search.get("trials"),
        "note": search.get("note", ""),
    }


def write_done(folder, study, run, outcome, splits, prior_seconds=0.0, search=None):
    """Saves a trained run's history and weights, then its record (last). Returns the record."""
    sizes = measuring.summarize(outcome.layers, extra_params=outcome.other_params)
    if run.arm != "pruned":
        # A dense model stores and computes every parameter, zero or not.
        sizes.update(nonzero_params=sizes["total_params"], nonzero_flops=sizes["flops"])
    history = storing.write_csv(storing.history_csv(folder), pd.DataFrame(outcome.history))
    files = {
        "history.csv": storing.sha256(history),
        "weights.npz": storing.write_weights(storing.weights_npz(folder), outcome.weights),
    }
    record = {
        **common(study, run),
        **arm_fields(study, run, splits, search),
        **sizes,
        "status": "ok",
        "test_accuracy": outcome.test_accuracy,
        "test_loss": outcome.test_loss,
        "val_accuracy": outcome.val_accuracy,
        "train_seconds": outcome.seconds + prior_seconds,
        "layers": measuring.layer_counts(outcome.layers),
        "files": files,
    }
    storing.write_json(storing.record_json(folder), record)
    return record


def write_failed(folder, study, run, error, previous, session, verbose=False):
    """Records why a run failed (it is tried again by the next ``run``). Returns the record."""
    reason = f"{type(error).__name__}: {error}".strip() if isinstance(error, BaseException) else str(error)
    attempts = int(previous.get("attempts", 0)) + 1 if previous and previous.get("status") == "failed" else 1
    record = {**common(study, run), "status": "failed", "error": reason.splitlines()[0], "attempts": attempts,
              "session": session}
    if verbose and isinstance(error, BaseException):
        record["traceback"] = "".join(traceback.format_exception(error))
    storing.write_json(storing.record_json(folder), record)
    return record


# --------------------------------------------------------------------------
# The narrow arm's search.


def narrow_space(study):
    """The search space: learning rate (log scale) and the split of width between the knobs."""
    narrow = study.narrow

    def space(hp):
        default_lr = min(max(study.baseline.learning_rate, narrow.learning_rate_min), narrow.learning_rate_max)
        hp.Float("learning_rate", narrow.learning_rate_min, narrow.learning_rate_max, sampling="log",
                 default=default_lr)
        if narrow.split_range > 1:
            for i in range(1, len(study.widths)):
                hp.Float(f"share_{i}", 1.0 / narrow.split_range, narrow.split_range, sampling="log", default=1.0)

    return space


def shape_for(study, values, budget, input_shape, num_classes):
    """The widths of a trial's split within ``budget``: a :class:`widthvsprune.budgets.Match`."""
    multipliers = [values.get(f"share_{i}", 1.0) for i in range(1, len(study.widths))]
    proportions = budgets.split_proportions(study.widths, multipliers)
    return budgets.solve_widths(study.family, budget, proportions, input_shape, num_classes)


def trial_pack(study, splits, items, epochs=None):
    """The pack training narrow trials: ``items`` are ``(budget, values)``; returns ``(pack, matches)``."""
    seed = int(study.seeds[0])
    matches = [shape_for(study, values, budget, splits.input_shape, splits.num_classes) for budget, values in items]
    specs = [ModelSpec(study.family, m.widths, seed, float(values["learning_rate"]))
             for m, (_, values) in zip(matches, items)]
    recipe = (study.baseline.batch_size, study.baseline.optimizer, int(epochs or study.narrow_epochs))
    return pack(recipe, specs, validate="last_epoch", test=False, weights=False), matches


def train_trials(study, splits, engine, proposals, budgets):
    """Trains narrow trials side by side (:class:`widthvsprune.tuning.Proposal` s, ``budgets[job]`` each).

    Returns:
        ``[(val_accuracy, {"widths": ..., "seconds": ...}), ...]``; a model
        that failed (a non-finite loss) scores 0.
    """
    items = [(budgets[p.job], p.values) for p in proposals]
    trials, matches = trial_pack(study, splits, items, proposals[0].epochs)
    outcomes = engine.train(trials, splits)
    return [(o.val_accuracy if o.ok else 0.0, {"widths": m.widths, "seconds": o.seconds})
            for o, m in zip(outcomes, matches)]


def narrow_result(study, search, result, splits):
    """``result.json`` of a finished narrow search."""
    values = result["values"]
    match = shape_for(study, values, search.budget, splits.input_shape, splits.num_classes)
    return {
        "status": "ok",
        "widths": list(match.widths),
        "params": match.params,
        "learning_rate": float(values["learning_rate"]),
        "val_accuracy": result["score"],
        "trials": result["trials"],
        "note": match.note,
    }


def no_fit(study, search, splits):
    """``result.json`` of a size point where not even the smallest model fits, or ``None``."""
    smallest = budgets.smallest_params(families.get_family(study.family), len(study.widths), splits.input_shape,
                                       splits.num_classes)
    if smallest <= search.budget:
        return None
    return {
        "status": "no-narrow-fits",
        "note": f"no-narrow-fits: the smallest {study.family} (every width 1) has {smallest} parameters, "
                f"more than the budget of {search.budget}",
    }
