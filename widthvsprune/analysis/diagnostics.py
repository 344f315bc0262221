"""Warnings about failed recipes and the pruned arm's schedules, with the fix (pure: pandas).

A model that ended at chance accuracy (``diverged`` in runs.csv) failed
whatever its arm: every report names them (:func:`divergence_warnings`),
and a contrast involving one has the verdict ``diverged``. A model at chance
whose training accuracy is high (``broken_evaluation``) trained, but its
evaluation failed: the reports name it with both accuracies
(:func:`broken_evaluation_warnings`), and a contrast involving one has the
verdict ``unreliable``.

A pruned model that lost accuracy to its own schedule makes the comparison
say more about the schedule than about pruning. Every report checks, per
pruned configuration (size point and tuning, over its seeds):

- little recovery: masks changed only a few times, or almost no training was
  left at the final sparsity;
- a loss much larger than its neighbours' (the next sizes up and down);
- an output layer pruned so hard that some class keeps almost no weights.
"""

import math

FEW_UPDATES = 2
LITTLE_RECOVERY = 0.1
OUTLIER_MARGIN = 0.05
FEW_OUTPUT_WEIGHTS = 3
COLUMNS = ("mask_updates", "recovery_fraction", "accuracy_drop", "output_kept_per_class_min")


def _allocations(rows):
    """The allocations of some pruned rows, in words."""
    if "pruning" not in rows.columns:
        return "study's"
    names = sorted({p for p in rows.pruning if isinstance(p, str) and p})
    return "/".join(names) if names else "study's"


def divergence_warnings(runs):
    """One warning per configuration (arm, tuning, size point) with models that ended at chance accuracy.

    Args:
        runs: a DataFrame with ``runs.csv``'s columns (without ``diverged``, no warning).

    Returns:
        A list of strings.
    """
    from widthvsprune.analysis.compare import diverged, flag

    runs = runs.assign(diverged=diverged(runs) & ~flag(runs, "broken_evaluation"))  # those have their own warning
    if "tuning" not in runs.columns:
        runs = runs.assign(tuning="tuned")
    out = []
    for (arm, tuning, target), group in runs.groupby(["arm", "tuning", "target_sparsity"], sort=False):
        broken = group[group.diverged]
        if broken.empty:
            continue
        where = f"{arm} {tuning}" + (f" sparsity={target:g}" if target else "")
        rates = sorted(set(broken.learning_rate.dropna())) if "learning_rate" in broken else []
        rate = f" at learning rate {', '.join(f'{r:g}' for r in rates)}" if rates else ""
        out.append(f"{where}: {len(broken)} of {len(group)} model(s) ended at chance accuracy (test accuracy "
                   f"{', '.join(f'{a:.1%}' for a in broken.test_accuracy)}): the recipe{rate} failed, whatever the "
                   "arm; its comparisons say `diverged` instead of a verdict. Lower the learning rate (or let the "
                   "search choose it)")
    return out


def broken_evaluation_warnings(runs):
    """One warning per model evaluated at chance although it trained (``broken_evaluation``), naming it with its
    training and test accuracy.

    Args:
        runs: a DataFrame with ``runs.csv``'s columns (without ``broken_evaluation``, no warning).

    Returns:
        A list of strings.
    """
    from widthvsprune.analysis.compare import flag

    out = []
    for _, row in runs[flag(runs, "broken_evaluation")].iterrows():
        where = f" sparsity={row['target_sparsity']:g}" if row.get("target_sparsity") else ""
        widths = f" widths={row['widths']}" if isinstance(row.get("widths"), str) else ""
        name = f"{row['arm']} {row.get('tuning', 'tuned')}{where} seed={row['seed']}{widths}"
        out.append(f"{name}: training accuracy {float(row.get('train_accuracy', float('nan'))):.1%} but test "
                   f"accuracy {float(row['test_accuracy']):.1%} (chance): its evaluation, not its training, failed "
                   "(batch normalization statistics that do not match the weights, say: leave "
                   "recalibrate_batchnorm on); its comparisons say `unreliable` instead of a verdict")
    return out


def tuning_warnings(runs):
    """One warning per arm and size point where the search's choice scored under the recipe as written, on mean
    validation accuracy over the evaluation seeds (the headline then uses the recipe), with both numbers.

    Args:
        runs: a DataFrame with ``runs.csv``'s columns (without ``val_accuracy`` or ``tuning``, no warning).

    Returns:
        A list of strings.
    """
    from widthvsprune import arms
    from widthvsprune.analysis import compare

    if "val_accuracy" not in runs.columns or "tuning" not in runs.columns:
        return []
    out = []
    for name in [n for n in arms.names() if n in set(runs.arm)]:
        for target, (_, means) in compare.configurations(runs, name).items():
            tuned, untuned = means.get("tuned"), means.get("untuned")
            if tuned is None or untuned is None or not untuned > tuned:
                continue
            where = name + (f" sparsity={target:g}" if target else "")
            out.append(f"{where}: the search's choice scored {tuned:.4f} mean validation accuracy over the evaluation "
                       f"seeds, under the recipe as written ({untuned:.4f}); the recipe stands for the arm "
                       f"here (a search scores one seed: more trials, or a recipe closer to the best, help)")
    return out


def pretrained_warnings(study, runs):
    """The warning of a study that started from trained weights whose recipe is not known
    (:attr:`Study.pretrained` ``"unknown"``): the narrow arm's step budget is then not the wide model's own.

    Args:
        study: the :class:`~widthvsprune.Study`.
        runs: a DataFrame with ``runs.csv``'s columns.

    Returns:
        A list of strings (empty for any other study).
    """
    if getattr(study, "pretrained", None) != "unknown":
        return []
    # Every arm but the baseline trains as many steps in all: the baseline recipe's and the fine-tune's.
    most = runs.steps.max() if "steps" in runs.columns and len(runs) else float("nan")
    steps = f"{int(most)} steps" if most == most else "the baseline recipe's steps and the fine-tune's"
    return ["the study started from trained weights whose training recipe is not known (pretrained='unknown'): "
            f"the narrow models trained {steps} from scratch, by the study's baseline recipe and fine-tune, not by "
            "what the wide model had, so the budgets are unknown and the size comparison is not at equal training; "
            "declare the recipe the weights were trained with (baseline=Recipe(...), pretrained='declared')"]


def schedule_warnings(runs):
    """Warnings about the pruned rows of a runs table, one sentence each, with the fix.

    Args:
        runs: a DataFrame with ``runs.csv``'s columns (rows without a
            schedule's diagnostics, and tables without their columns, give no
            warning).

    Returns:
        A list of strings.
    """
    if any(c not in runs.columns for c in COLUMNS):
        return []
    pruned = runs[runs.mask_updates.notna()]  # the models pruned on a schedule
    if "tuning" not in pruned.columns:
        pruned = pruned.assign(tuning="tuned")
    out = []
    for tuning, group in pruned.groupby("tuning", sort=False):
        points = group.groupby("target_sparsity").agg(
            updates=("mask_updates", "min"), recovery=("recovery_fraction", "min"), loss=("accuracy_drop", "mean"),
            kept=("output_kept_per_class_min", "min"))
        targets = sorted(points.index)
        for i, target in enumerate(targets):
            p = points.loc[target]
            where = f"pruned {tuning} sparsity={target:g}"
            if p.updates <= FEW_UPDATES or p.recovery < LITTLE_RECOVERY:
                out.append(
                    f"{where}: masks changed {int(p.updates)} time(s) and {p.recovery:.0%} of the fine-tune was "
                    "left at the final sparsity, so the model had little chance to recover; lower "
                    "pruning.frequency (more, smaller steps) or pruning.end_fraction (more recovery), or fine-tune "
                    f"for more epochs (drop against its baseline: {100 * p.loss:+.1f} points)")
            neighbours = [max(0.0, points.loc[t].loss) for t in targets[max(0, i - 1): i + 2] if t != target]
            if neighbours and p.loss - max(neighbours) > max(OUTLIER_MARGIN, max(neighbours)):
                out.append(
                    f"{where}: lost {100 * p.loss:.1f} points against its baseline, much more than the neighbouring "
                    f"sizes ({', '.join(f'{100 * d:.1f}' for d in neighbours)} points); check its schedule and "
                    "fine-tune before reading its verdict")
            if not math.isnan(p.kept) and p.kept < FEW_OUTPUT_WEIGHTS:
                used = _allocations(group[group.target_sparsity == target])
                out.append(
                    f"{where}: the output layer kept only {int(p.kept)} weight(s) for some class under the "
                    f"{used} allocation; keeping it dense may do better (pruning.prune_output=False, the other "
                    "layers then take its zeros; the pruned search tries it through tuning.outputs), or an "
                    "allocation that spares it (uniform_plus, erk, lamp)")
    return out
