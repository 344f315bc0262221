"""The narrow arm ("small-dense"): dense models of the family within the pruned models' nonzeros.

Its runs (stages 4 to 6), per size point, once every pruned run of it is
settled (the budget is their fewest nonzeros, biases included; before that,
the search may run ahead at the budget they are expected to give,
:attr:`widthvsprune.plan.planner.Plan.ahead`):

- the ``search`` of the learning rate and the split of width between the
  layers, every shape solved within the budget
  (:func:`widthvsprune.families.budgets.solve_widths`);
- the control (``untuned``, with ``tuning.controls``): a "search" without
  trials, the widths at the wide model's proportions and the baseline's
  learning rate;
- the chosen configurations at every evaluation seed (a stage after the
  control's where the search chose the control's model: its twins, recorded
  from the control's runs, :func:`widthvsprune.plan.planner.twins`).

A narrow model trains at the baseline's batch size for exactly as many
optimizer steps as its pruned opponent took in all (the baseline's epochs
plus the fine-tune's), so its last epoch may be partial.

**Bracketing an underfilled budget.** Where a family's widths step so
coarsely that the largest model within the budget fills less than
:data:`~widthvsprune.families.budgets.UNDERFILLED_BELOW` of it (the seed
CNN at 80% sparsity of 28x28 inputs: 2 filters make 3,410 parameters, 3
make 5,110, for a budget of about 4,100), the search's result also names the
smallest model above the budget on the same split of width
(:func:`bracket_above`), and that model is trained too, with the same
learning rate and steps, at every seed (runs of role ``bracket``, keys of
their own: the key of every other run is unchanged). The verdict then
brackets the budget (:func:`widthvsprune.analysis.stats.bracket`).
"""

from widthvsprune import families, keys
from widthvsprune.arms import shared
from widthvsprune.arms.base import (
    Arm,
    Contrast,
    SearchContext,
    common_result,
    log_rate,
    matched_fit,
    search_compute,
)
from widthvsprune.engines.base import ModelSpec
from widthvsprune.families import budgets
from widthvsprune.status import NO_PRUNED, SearchStatus, Skip

NAME = shared.NARROW
#: The study's question: each arm at each size point by its better configuration on validation, tuned or as
#: written (``"best"``, :func:`widthvsprune.analysis.compare.better_tuning`). The 2x2 of tunings are its controls.
HEADLINE = "best vs best"
CONTRASTS = {
    ("best", "best"): HEADLINE,
    ("tuned", "tuned"): "tuned vs tuned",
    ("untuned", "untuned"): "untuned vs untuned",
    ("tuned", "untuned"): "tuned pruned vs untuned narrow",
    ("untuned", "tuned"): "untuned pruned vs tuned narrow",
}


def config(study, budget, tuning):
    """A narrow search's configuration: the budget, the compute it matches and how its shape is chosen."""
    out = {
        "arm": NAME, "tuning": tuning, "engine": shared.engine_of(study),
        "data": shared.data_config(study), "family": study.family, **families.key_fields(study.family),
        **shared.evaluation_fields(study),
        "wide_widths": list(study.widths), "budget": int(budget),
        # The narrow model trains for as many optimizer steps as the pruned arm's baseline and fine-tune together.
        "recipe": {"batch_size": study.baseline.batch_size, "optimizer": study.baseline.optimizer,
                   "matched_to": {"baseline": keys.config_dict(study.baseline),
                                  "finetune": keys.config_dict(study.finetune)}},
    }
    if tuning == "tuned":
        out["search"] = {**shared.search_settings(study), "split_range": study.tuning.split_range}
    else:
        out.update(proportions="wide", learning_rate=study.baseline.learning_rate)
    return out


def budget_of(pruned_records):
    """The narrow arm's budget at one size point: the fewest nonzeros of the pruned runs that trained."""
    values = [r["nonzero_params"] for r in pruned_records if r is not None and r.get("status") == "ok"]
    return min(values) if values else None


def proportions_for(study, values):
    """The proportions of a trial's split of width (its ``share_*`` values; the wide model's without them)."""
    multipliers = [values.get(f"share_{i}", 1.0) for i in range(1, len(study.widths))]
    return budgets.split_proportions(study.widths, multipliers)


def shape_for(study, values, budget, input_shape, num_classes, count=None):
    """The widths of a trial's split of width within ``budget``: a :class:`widthvsprune.families.budgets.Match`."""
    return budgets.solve_widths(study.family, budget, proportions_for(study, values), input_shape, num_classes, count)


def bracket_above(study, match, proportions, input_shape, num_classes, count=None):
    """The smallest model above an underfilled budget on the same split of width, or ``None``.

    :func:`~widthvsprune.families.budgets.solve_widths` stops where widening
    the knob furthest below its share would pass the budget: that shape is
    the next one on the split, the first above the budget (for a family with
    one width knob, one unit wider).

    Args:
        study: the study (its family).
        match: the :class:`~widthvsprune.families.budgets.Match` within the budget.
        proportions: the split of width it was solved for.
        input_shape, num_classes, count: as for ``solve_widths``.

    Returns:
        ``{"widths": [...], "params": n}`` (``n > match.budget``), or ``None``
        when the match fills at least ``UNDERFILLED_BELOW`` of its budget or
        nothing fits.

    Example:

    ```python
    match = budgets.solve_widths("seed_cnn", 4100, (12,), (28, 28, 1), 10)  # 2 filters, 3,410 parameters
    bracket_above(study, match, (12,), (28, 28, 1), 10)  # {"widths": [3], "params": 5110}
    ```
    """
    if not match.fits or match.fill >= budgets.UNDERFILLED_BELOW:
        return None
    widths = list(match.widths)
    i = min(range(len(widths)), key=lambda j: (widths[j] / proportions[j], j))
    widths[i] += 1
    params = budgets.counter(study.family, input_shape, num_classes, count)(widths)
    return None if params == budgets.INFEASIBLE else {"widths": widths, "params": int(params)}


def bracket_config(resolved, above):
    """The configuration of the runs above an underfilled budget: the chosen one with the wider shape."""
    return {**resolved, "widths": list(above["widths"]), "bracket": "above"}


class Narrow(Arm):
    name = NAME
    title = "small-dense"
    legend = "small-dense (size-matched)"
    color, marker = "tab:blue", "s"
    hyperparameters = ("learning_rate", "share_*")
    order = 2
    at_each_size = True
    controlled = True
    requires = (shared.PRUNED,)

    def plan(self, study, builder):
        pruned_runs, expected = builder.need(shared.PRUNED_RUNS), builder.need(shared.PRUNED_NONZEROS)
        for target in study.sparsities:
            pruned = pruned_runs(target)
            settled = [builder.records.get(r.id) for r in pruned]
            if not pruned_runs(target, "tuned") or any(r is None for r in settled):
                # The budget is not known yet (the pruned search has not chosen, or its runs have not trained):
                # the search may run ahead at the budget they are expected to give.
                guess = expected(target)
                if guess is not None:
                    builder.add_ahead(NAME, "tuned", target, config(study, guess, "tuned"), 4, f"narrow-{guess}",
                                      guess)
                continue
            budget = budget_of(settled)
            if budget is None:
                builder.skip(NAME, target, Skip(NO_PRUNED, "skipped, no pruned model trained"))
                continue
            chosen = {}
            for tuning in ("untuned", "tuned") if study.tuning.controls else ("tuned",):
                search, result = builder.add_search(NAME, tuning, target, config(study, budget, tuning), 4,
                                                    f"narrow-{budget}", budget, tuple(r.id for r in pruned),
                                                    study.tuning.trainings if tuning == "tuned" else 0)
                if result is None:
                    continue
                if result["status"] == SearchStatus.NO_FIT:
                    builder.skip(NAME, target, Skip(SearchStatus.NO_FIT.value, result["note"]))
                    continue
                resolved = {**search.config, "widths": list(result["widths"]),
                            "learning_rate": float(result["learning_rate"])}
                chosen[tuning] = {k: v for k, v in self.model_fields(resolved).items() if k != "tuning"}
                # A search that chose the control's model: its runs are the control's (linked a stage later).
                stage = 6 if tuning == "tuned" and chosen[tuning] == chosen.get("untuned") else 5
                builder.add_runs(NAME, tuning, target, search.key, resolved, stage, search=search.key)
                if result.get("above"):
                    above = bracket_config(resolved, result["above"])
                    builder.add_runs(NAME, tuning, target, keys.run_key(above, f"narrow-{budget}-above"), above,
                                     stage, search=search.key, role="bracket", extra=True)

    def model_fields(self, config):
        """A narrow run's model is its widths, learning rate and training: how its search chose them (the search's
        settings, or the control's ``proportions``) is left out."""
        return {k: v for k, v in config.items() if k not in ("search", "proportions")}

    def contrasts(self, study):
        return [Contrast(name, shared.PRUNED, NAME, p, n, headline=name == HEADLINE,
                         control_of=None if name == HEADLINE else HEADLINE)
                for (p, n), name in CONTRASTS.items()]

    def label(self, run):
        tag = "" if run.tuning == "tuned" else " untuned"
        above = " (above the budget)" if run.config.get("bracket") else ""
        return (f"narrow{tag} sparsity={run.target:g} seed={run.seed} "
                f"widths={families.describe_widths(run.widths)}{above}")

    def chosen(self, run):
        if run.config.get("bracket"):
            return (f"the smallest model above the budget of {run.config['budget']:,} nonzeros on the search's split "
                    "(the one within fills less than 90%)")
        split = "the wide model's proportions" if run.tuning == "untuned" else "the search's split"
        return f"the widest model within {run.config['budget']:,} nonzeros at {split}"

    def fit(self, study, n_train):
        return matched_fit(study, n_train)

    def model_spec(self, study, run, splits, initial_weights=None, source=None, log_dir=None):
        return ModelSpec(study.family, run.widths, int(run.seed), float(run.config["learning_rate"]), None, None,
                         log_dir)

    def record_fields(self, study, run, spec, outcome, splits, search=None, source=None, sizes=None):
        fit = self.fit(study, len(splits.x_train))
        budget = int(run.config["budget"])
        note = (search or {}).get("note", "")
        if run.config.get("bracket"):
            note = "the smallest model above the budget on the search's split, bracketing it"
        out = {**search_compute(search), "budget": budget, "epochs": fit.epochs_done(len(splits.x_train)),
               "steps": fit.max_steps, "learning_rate": spec.learning_rate, "note": note}
        if sizes is not None:
            out["fill"] = sizes["total_params"] / budget
        return out

    # ---- the search ---------------------------------------------------------------

    def space(self, study, search, context):
        def declare(hp):
            log_rate(hp, "learning_rate", study, study.baseline.learning_rate)
            if study.tuning.split_range > 1:
                r = study.tuning.split_range
                for i in range(1, len(study.widths)):
                    hp.Float(f"share_{i}", 1.0 / r, r, sampling="log", default=1.0)

        return declare

    def settle(self, study, search, splits, count=None):
        """No trials where not even the smallest model fits, or for the untuned control.

        Widths the family cannot build are infeasible for the budget solver;
        where nothing within the budget builds, the size point's narrow runs
        get the widest widths the budget would have given, and fail with the
        family's error, recorded in their records (the rest of the study goes
        on).
        """
        match = budgets.solve_widths(study.family, search.budget, study.widths, splits.input_shape,
                                     splits.num_classes, count)
        if not match.fits and match.error:
            return {"status": "ok", "widths": list(match.failed), "params": 0,
                    "learning_rate": study.baseline.learning_rate, "note": match.note, "error": match.error,
                    "trials": 0, "epochs": 0.0, "seconds": 0.0}
        if not match.fits:
            smallest = budgets.smallest_params(families.get_family(study.family), len(study.widths),
                                               splits.input_shape, splits.num_classes, count)
            return {"status": SearchStatus.NO_FIT.value,
                    "note": f"no-narrow-fits: the smallest {study.family} (every width 1) has {smallest} parameters, "
                            f"more than the budget of {search.budget}"}
        if search.tuning == "tuned":
            return None
        out = {"status": "ok", "widths": list(match.widths), "params": match.params,
               "learning_rate": study.baseline.learning_rate, "note": match.note, "trials": 0, "epochs": 0.0,
               "seconds": 0.0}
        return _with_bracket(out, bracket_above(study, match, study.widths, splits.input_shape, splits.num_classes,
                                                count))

    def context(self, study, search, session):
        return SearchContext(search, count=session.count)

    def trial(self, study, splits, context, values):
        match = shape_for(study, values, context.search.budget, splits.input_shape, splits.num_classes,
                          context.count)
        widths = _widths_of(match, study)  # a split the family cannot build within the budget: a failed trial
        model = ModelSpec(study.family, widths, study.search_seed, float(values["learning_rate"]))
        return self.fit(study, len(splits.x_train)), model, {"widths": widths}

    def result(self, study, search, found, splits, context):
        proportions = proportions_for(study, found["values"])
        match = budgets.solve_widths(study.family, search.budget, proportions, splits.input_shape, splits.num_classes,
                                     context.count)
        out = {**common_result(study, found), "widths": list(_widths_of(match, study)), "params": match.params,
               "learning_rate": float(found["values"]["learning_rate"]), "note": match.note}
        if not match.fits:
            return {**out, "error": match.error}
        return _with_bracket(out, bracket_above(study, match, proportions, splits.input_shape, splits.num_classes,
                                                context.count))

    def trial_shown(self, values, info):
        return {"widths": "x".join(map(str, info["widths"])), "lr": f"{values['learning_rate']:.2g}"}


def _widths_of(match, study):
    """The widths a match gives; where nothing within the budget builds, the widths that failed to."""
    return match.widths or match.failed or (1,) * len(study.widths)


def _with_bracket(result, above):
    """A search result with ``above`` (the shape above an underfilled budget) when there is one: results of
    budgets that fill stay as they were."""
    return {**result, "above": above} if above else result
