"""What each arm trains and records.

Runs of the plan become :class:`~widthvsprune.engines.base.ModelSpec` s in
packs for the engine; the engine's outcomes become records. No framework is
imported: everything goes through the engine seam.

Compute is matched between the arms' final models: a narrow model trains at
the baseline's batch size for exactly as many optimizer steps as its pruned
opponent took in total (the baseline's epochs plus the fine-tune's, each at
its own batch size), so the last epoch may be partial.
"""

import dataclasses
import traceback

import numpy as np
import pandas as pd

from widthvsprune import families, masks, measuring, planning, schedules, storing
from widthvsprune.engines.base import ModelSpec, Pack, PruneSpec, steps_per_epoch

# --------------------------------------------------------------------------
# Recipes and compute.


@dataclasses.dataclass(frozen=True)
class PackRecipe:
    """How a pack trains: batch size, optimizer, epochs and (narrow models) an exact step count."""

    batch_size: int
    optimizer: str
    epochs: int
    max_steps: object = None


def pruned_steps(study, n_train):
    """Optimizer steps a pruned model costs in all: its baseline's and its fine-tune's."""
    b, f = study.baseline, study.finetune
    return b.epochs * steps_per_epoch(n_train, b.batch_size) + f.epochs * steps_per_epoch(n_train, f.batch_size)


def narrow_recipe(study, n_train):
    """A narrow model's recipe: the baseline's batch size and optimizer, the pruned arm's step count."""
    steps = pruned_steps(study, n_train)
    per_epoch = steps_per_epoch(n_train, study.baseline.batch_size)
    return PackRecipe(study.baseline.batch_size, study.baseline.optimizer, -(-steps // per_epoch), steps)


def recipe_of(study, arm, n_train):
    if arm == "baseline":
        return PackRecipe(study.baseline.batch_size, study.baseline.optimizer, study.baseline.epochs)
    if arm == "pruned":
        return PackRecipe(study.finetune.batch_size, study.finetune.optimizer, study.finetune.epochs)
    return narrow_recipe(study, n_train)


def epochs_of(recipe, n_train):
    """Epochs a recipe trains, fractional when the last one is partial."""
    if recipe.max_steps is None:
        return float(recipe.epochs)
    return recipe.max_steps / steps_per_epoch(n_train, recipe.batch_size)


def pack(recipe, specs, **options):
    return Pack(tuple(specs), recipe.batch_size, recipe.optimizer, recipe.epochs, recipe.max_steps, **options)


# --------------------------------------------------------------------------
# Runs to model specs.


def kernel_sizes(baseline_record):
    """The sizes of the wide model's prunable kernels, in order (the output layer's last), from a baseline record."""
    return [layer["kernel_params"] for layer in baseline_record["layers"] if layer.get("prunable", True)]


def prune_spec(study, pruning, finetune, target, n_train, sizes, seed):
    """The engine's pruning of one model: ``pruning`` and ``finetune`` are config dicts (the study's or chosen)."""
    steps = schedules.schedule_steps(n_train, finetune["batch_size"], finetune["epochs"], pruning["frequency"],
                                     pruning["begin_step"], pruning["end_fraction"])
    wrapped = masks.wrapped_target(target, sizes, pruning["prune_output"])
    return PruneSpec(pruning["variant"], wrapped, min(pruning["initial_sparsity"], wrapped), pruning["power"], steps,
                     pruning["prune_output"], int(seed))


def model_spec(study, run, splits, initial_weights=None, baseline_record=None, log_dir=None):
    """The engine's description of one run."""
    weights = None if initial_weights is None else tuple(initial_weights)
    if run.arm == "pruned":
        c = run.config
        prune = prune_spec(study, c["pruning"], c["finetune"], run.target, len(splits.x_train),
                           kernel_sizes(baseline_record), run.seed)
        return ModelSpec(study.family, run.widths, int(run.seed), float(c["finetune"]["learning_rate"]), weights,
                         prune, log_dir)
    lr = run.config["recipe"]["learning_rate"] if run.arm == "baseline" else run.config["learning_rate"]
    return ModelSpec(study.family, run.widths, int(run.seed), float(lr), weights, None, log_dir)


# --------------------------------------------------------------------------
# Outcomes to records.


def common(study, run):
    """The fields every record of ``run`` has."""
    return {
        "study": study.name,
        "arm": run.arm,
        "tuning": run.tuning,
        "role": run.role,
        "family": study.family,
        "dataset": study.dataset,
        "seed": int(run.seed),
        "label": run.label,
        "key": run.key,
        "widths": families.describe_widths(run.widths),
        "target_sparsity": float(run.target),
        "pruning": run.config["pruning"]["variant"] if run.arm == "pruned" else "",
        "engine": planning.engine_of(study),
    }


def search_compute(result):
    """The compute of the search that chose a configuration (nothing for untuned runs)."""
    result = result or {}
    return {"search_trials": int(result.get("trials", 0)), "search_epochs": float(result.get("epochs", 0.0)),
            "search_seconds": float(result.get("seconds", 0.0))}


def pruned_diagnostics(spec, outcome, baseline_record):
    """How a pruned model's schedule went: mask updates, recovery, the drop against its own baseline."""
    steps = spec.steps
    updates = sum(schedules.updates_masks_at(t, steps.begin_step, steps.end_step, steps.frequency)
                  for t in range(1, steps.total_steps + 1))
    output = np.asarray(outcome.layers[-1].kernel)
    per_class = np.count_nonzero(output.reshape(-1, output.shape[-1]), axis=0)
    return {
        "mask_updates": int(updates),
        "recovery_steps": int(steps.total_steps - steps.end_step),
        "recovery_fraction": (steps.total_steps - steps.end_step) / steps.total_steps,
        "baseline_test_accuracy": baseline_record["test_accuracy"],
        "accuracy_drop": baseline_record["test_accuracy"] - outcome.test_accuracy,
        "output_kept_per_class_min": int(per_class.min()),
    }


def arm_fields(study, run, spec, outcome, splits, search=None, baseline_record=None):
    """What a record says about how its arm trained it, and at what cost."""
    n = len(splits.x_train)
    base, fine = recipe_of(study, "baseline", n), recipe_of(study, "pruned", n)
    out = search_compute(search)
    if run.arm == "baseline":
        out.update(epochs=float(base.epochs), steps=base.epochs * steps_per_epoch(n, base.batch_size),
                   learning_rate=spec.learning_rate)
    elif run.arm == "pruned":
        p = run.config["pruning"]
        out.update(epochs=float(base.epochs + fine.epochs), steps=pruned_steps(study, n),
                   learning_rate=spec.learning_rate, prune_output=p["prune_output"], frequency=p["frequency"],
                   end_fraction=p["end_fraction"], schedule=dataclasses.asdict(spec.prune.steps),
                   **pruned_diagnostics(spec.prune, outcome, baseline_record))
    else:
        narrow = narrow_recipe(study, n)
        out.update(budget=int(run.config["budget"]), epochs=epochs_of(narrow, n), steps=narrow.max_steps,
                   learning_rate=spec.learning_rate, note=(search or {}).get("note", ""))
    return out


def write_done(folder, study, run, spec, outcome, splits, prior_seconds=0.0, search=None, baseline_record=None):
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
        **arm_fields(study, run, spec, outcome, splits, search, baseline_record),
        **sizes,
        "status": "ok",
        "test_accuracy": outcome.test_accuracy,
        "test_loss": outcome.test_loss,
        "test_examples": int(len(splits.y_test)),
        "val_accuracy": outcome.val_accuracy,
        "train_seconds": outcome.seconds + prior_seconds,
        "layers": measuring.layer_counts(outcome.layers),
        "files": files,
    }
    if run.arm == "narrow":
        record["fill"] = record["total_params"] / record["budget"]
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
