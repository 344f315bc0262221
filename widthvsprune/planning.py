"""The planner: every run and search a study has, with keys, configurations and dependencies.

Pure: no framework, no I/O. Given a study and the records found so far, it
returns a :class:`Plan`. The runner, the reports, ``status``, ``--dry-run``,
the progress totals and the benchmark all ask it; nothing else derives run
lists or reads configurations out of folder names.

Both arms get the same treatment: each is tuned by a search with the same
oracle and number of trials, on the validation split, with a search seed
that is never an evaluation seed; the chosen configurations are then trained
once per evaluation seed. With ``tuning.controls``, the untuned arms (the
recipes as written) are trained too. Stage by stage (a stage starts once
every run of the earlier stages is settled):

0. the baseline ``search`` (its learning rate); the untuned baselines (the
   recipe's), at the search seed and, for the controls or a pruned search
   that chose them, at every evaluation seed;
1. the tuned baselines, at every evaluation seed and at the search seed;
2. each target sparsity's pruned ``search`` (fine-tune learning rate,
   schedule, spread over layers, output layer, and which baseline to prune:
   the tuned one or the recipe's), fine-tuning the search-seed baselines; the
   untuned pruned runs;
3. the tuned pruned runs;
4. each target's narrow searches, once every pruned run of the target is
   settled (the budget is their fewest nonzeros): the tuned one (learning
   rate and split of width) and the untuned one (no trials: the wide model's
   proportions and the baseline's learning rate);
5. the narrow runs.
"""

import dataclasses
from typing import Optional, Tuple

from widthvsprune import engines, keys
from widthvsprune.families import describe_widths

ARMS = ("baseline", "pruned", "narrow")
TUNINGS = ("tuned", "untuned")


@dataclasses.dataclass(frozen=True)
class Run:
    """One model to train (one seed of one configuration).

    Attributes:
        arm: ``"baseline"``, ``"pruned"`` or ``"narrow"``.
        tuning: ``"tuned"`` (the configuration a search chose) or ``"untuned"``.
        target: the size point's target sparsity (0 for the baseline).
        seed: its training seed.
        key: its configuration's key (the folder ``runs/<key>/seed-<seed>``).
        config: its resolved configuration (what ``config.json`` holds).
        needs: ``(key, seed)`` of the runs whose results it starts from.
        search: the key of the search that chose its configuration, if any.
        stage: its stage (see the module docstring).
        role: ``"eval"``, or ``"search"`` for the baseline the pruned
            searches fine-tune (trained at the search seed, not evaluated).
    """

    arm: str
    tuning: str
    target: float
    seed: int
    key: str
    config: dict
    needs: Tuple[Tuple[str, int], ...] = ()
    search: Optional[str] = None
    stage: int = 0
    role: str = "eval"

    @property
    def id(self):
        return (self.key, self.seed)

    @property
    def widths(self):
        config = self.config["baseline"] if self.arm == "pruned" else self.config
        return tuple(config["widths"])

    @property
    def label(self):
        tag = "" if self.tuning == "tuned" else " untuned"
        if self.arm == "baseline":
            role = " (for the searches)" if self.role == "search" else ""
            return f"baseline{tag} seed={self.seed} widths={describe_widths(self.widths)}{role}"
        if self.arm == "pruned":
            return f"pruned{tag} sparsity={self.target:g} seed={self.seed} ({self.config['pruning']['variant']})"
        return f"narrow{tag} sparsity={self.target:g} seed={self.seed} widths={describe_widths(self.widths)}"


@dataclasses.dataclass(frozen=True)
class Search:
    """One search: an arm's configuration at one size point, chosen on the validation split.

    Attributes:
        arm: the arm it tunes.
        tuning: ``"tuned"``, or ``"untuned"`` for the narrow control, whose
            "search" only solves the widths at the wide model's proportions.
        target: the size point (0 for the baseline's).
        key: its key; the narrow runs it chooses share it.
        config: what its key hashes.
        budget: the narrow arm's parameter budget.
        needs: the runs that must be settled first.
        stage: its stage.
        trials: trials it trains (0 for the narrow control).
    """

    arm: str
    tuning: str
    target: float
    key: str
    config: dict
    budget: Optional[int] = None
    needs: Tuple[Tuple[str, int], ...] = ()
    stage: int = 0
    trials: int = 0

    @property
    def baselines(self):
        """A pruned search's baselines at the search seed, the ones its trials may prune: ``{"tuned": id,
        "recipe": id}``."""
        return dict(zip(("tuned", "recipe"), self.needs)) if self.arm == "pruned" else {}

    @property
    def label(self):
        where = "" if self.arm == "baseline" else f" sparsity={self.target:g}"
        return f"{self.arm}{'' if self.tuning == 'tuned' else ' untuned'} search{where}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a study trains, as far as the records found so far tell.

    Attributes:
        runs: every run whose configuration is known.
        searches: every search whose configuration is known.
        skipped: ``target -> reason`` for size points with no narrow arm.
        max_trainings: models the whole study trains at most (trials included).
    """

    study: object
    runs: Tuple[Run, ...]
    searches: Tuple[Search, ...]
    skipped: dict
    max_trainings: int

    def runs_of(self, arm, target=None, tuning=None):
        return [r for r in self.runs if r.arm == arm and (target is None or r.target == target)
                and (tuning is None or r.tuning == tuning)]

    def search_of(self, arm, target=0.0, tuning="tuned"):
        return next((s for s in self.searches if s.arm == arm and s.target == target and s.tuning == tuning), None)


# --------------------------------------------------------------------------
# Configurations (what each key hashes).


def data_config(study):
    return {"dataset": study.dataset, "validation_fraction": study.validation_fraction, "data_seed": study.data_seed}


def search_config(study, arm):
    """The settings of an arm's search that its key hashes."""
    t = study.tuning
    out = {"oracle": t.oracle, "trials": t.trials, "seed": study.search_seed,
           "learning_rate": [t.learning_rate_min, t.learning_rate_max]}
    if arm == "pruned":
        out.update(end_fraction_min=t.end_fraction_min, frequencies=list(study.frequencies),
                   variants=list(t.variants), outputs=list(t.outputs))
    if arm == "narrow":
        out.update(split_range=t.split_range)
    return out


def engine_of(study):
    """The engine a study trains with (``auto`` resolved); part of every run key."""
    return engines.resolve(study.engine, study.family)


def baseline_config(study, tuning="untuned", learning_rate=None):
    recipe = keys.config_dict(study.baseline)
    if learning_rate is not None:
        recipe["learning_rate"] = float(learning_rate)
    return {"arm": "baseline", "tuning": tuning, "engine": engine_of(study), "data": data_config(study),
            "family": study.family, "widths": list(study.widths), "recipe": recipe}


def pruned_config(study, target, tuning="untuned", baseline=None, chosen=None):
    """A pruned run's configuration; ``chosen`` holds a search's choices (``learning_rate`` and pruning fields)."""
    pruning, finetune = keys.config_dict(study.pruning), keys.config_dict(study.finetune)
    for name, value in (chosen or {}).items():
        (finetune if name == "learning_rate" else pruning)[name] = value
    return {"arm": "pruned", "tuning": tuning, "baseline": baseline or baseline_config(study),
            "target_sparsity": float(target), "pruning": pruning, "finetune": finetune}


def narrow_config(study, budget, tuning):
    """A narrow search's configuration: the budget, the compute it matches and how its shape is chosen."""
    config = {
        "arm": "narrow", "tuning": tuning, "engine": engine_of(study), "data": data_config(study),
        "family": study.family,
        "wide_widths": list(study.widths), "budget": int(budget),
        # The narrow model trains for as many optimizer steps as the pruned arm's baseline and fine-tune together.
        "recipe": {"batch_size": study.baseline.batch_size, "optimizer": study.baseline.optimizer,
                   "matched_to": {"baseline": keys.config_dict(study.baseline),
                                  "finetune": keys.config_dict(study.finetune)}},
    }
    if tuning == "tuned":
        config["search"] = search_config(study, "narrow")
    else:
        config.update(proportions="wide", learning_rate=study.baseline.learning_rate)
    return config


def budget_of(pruned_records):
    """The narrow arm's budget at one size point: the fewest nonzeros of the pruned runs that trained."""
    values = [r["nonzero_params"] for r in pruned_records if r is not None and r.get("status") == "ok"]
    return min(values) if values else None


def max_trainings(study):
    """Models the study trains when nothing is done yet (search trials included)."""
    seeds, targets, trials = len(study.seeds), len(study.sparsities), study.tuning.trials
    controls = seeds if study.tuning.controls else 0
    baselines = trials + seeds + 2 + seeds  # the recipe's baselines may serve the tuned pruned arm too
    return baselines + targets * 2 * (trials + seeds + controls)


# --------------------------------------------------------------------------
# The plan.


def plan(study, records=None, searches=None):
    """Every run and search of ``study``, given what is settled so far.

    Args:
        study: a :class:`widthvsprune.Study`.
        records: ``(key, seed) -> record`` of the runs that are settled (done,
            or failed for good); runs not in it are still to train.
        searches: ``key -> result`` of the searches that finished.

    Returns:
        A :class:`Plan`.
    """
    records, searches = records or {}, searches or {}
    runs, found, skipped = [], [], {}
    controls, trials = study.tuning.controls, study.tuning.trials

    def add_runs(arm, tuning, target, key, config, stage, needs=None, search=None, seeds=None):
        seeds = study.seeds if seeds is None else seeds
        made = [Run(arm, tuning, float(target), s, key, config, needs(s) if needs else (), search, stage)
                for s in seeds]
        runs.extend(made)
        return made

    def add_search(arm, tuning, target, config, stage, prefix, budget=None, needs=(), n=trials):
        search = Search(arm, tuning, float(target), keys.run_key(config, prefix), config, budget, needs, stage, n)
        found.append(search)
        return search, searches.get(search.key)

    recipe_cfg = baseline_config(study)
    recipe_key = keys.run_key(recipe_cfg, "baseline")
    # The pruned searches may prune either trained baseline: the recipe's or the tuned one (their first trial is the
    # recipe's, so the pruned arm's tuning never loses to its untuned configuration on validation).
    recipe_helper = Run("baseline", "untuned", 0.0, study.search_seed, recipe_key, recipe_cfg, (), None, 0, "search")
    runs.append(recipe_helper)
    base_search, base_result = add_search("baseline", "tuned", 0, {**baseline_config(study, "search"),
                                          "search": search_config(study, "baseline")}, 0, "search-baseline")
    tuned = pruned_searches = None
    if base_result is not None:
        config = baseline_config(study, "tuned", base_result["learning_rate"])
        key = keys.run_key(config, "baseline")
        tuned_ids = {r.seed: r.id for r in add_runs("baseline", "tuned", 0, key, config, 1, search=base_search.key)}
        helper = Run("baseline", "tuned", 0.0, study.search_seed, key, config, (), base_search.key, 1, "search")
        runs.append(helper)
        tuned = (config, tuned_ids)
        pruned_searches = {
            target: add_search("pruned", "tuned", target,
                               {**pruned_config(study, target, "search", config), "recipe_baseline": recipe_cfg,
                                "search": search_config(study, "pruned")},
                               2, f"search-pruned-{target:g}", needs=(helper.id, recipe_helper.id))
            for target in study.sparsities
        }
    from_recipe = any(result is not None and result["chosen"].get("baseline") == "recipe"
                      for _, result in (pruned_searches or {}).values())
    recipe_ids = {}
    if controls or from_recipe:
        recipe_ids = {r.seed: r.id for r in add_runs("baseline", "untuned", 0, recipe_key, recipe_cfg, 0)}
    for target in study.sparsities:
        pruned = []
        if controls:
            config = pruned_config(study, target)
            key = keys.run_key(config, f"pruned-{target:g}")
            pruned += add_runs("pruned", "untuned", target, key, config, 2, lambda s: (recipe_ids[s],))
        if tuned is None or pruned_searches[target][1] is None:
            continue
        search, result = pruned_searches[target]
        chosen = dict(result["chosen"])
        base_cfg, ids = (recipe_cfg, recipe_ids) if chosen.pop("baseline", "tuned") == "recipe" else tuned
        config = pruned_config(study, target, "tuned", base_cfg, chosen)
        key = keys.run_key(config, f"pruned-{target:g}")
        pruned += add_runs("pruned", "tuned", target, key, config, 3, lambda s, ids=ids: (ids[s],), search.key)
        settled = [records.get(r.id) for r in pruned]
        if any(r is None for r in settled):
            continue  # the budget is not known yet
        budget = budget_of(settled)
        if budget is None:
            skipped[target] = "skipped, no pruned model trained"
            continue
        for tuning in ("tuned", "untuned") if controls else ("tuned",):
            n = trials if tuning == "tuned" else 0
            search, result = add_search("narrow", tuning, target, narrow_config(study, budget, tuning), 4,
                                        f"narrow-{budget}", budget, tuple(r.id for r in pruned), n)
            if result is None:
                continue
            if result["status"] == "no-narrow-fits":
                skipped[target] = result["note"]
                continue
            resolved = {**search.config, "widths": list(result["widths"]),
                        "learning_rate": float(result["learning_rate"])}
            add_runs("narrow", tuning, target, search.key, resolved, 5, search=search.key)
    return Plan(study, tuple(runs), tuple(found), skipped, max_trainings(study))
