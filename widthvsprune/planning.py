"""The planner: every run and search a study has, with keys, configurations and dependencies.

Pure: no framework, no I/O. Given a study and the records found so far, it
returns a :class:`Plan`. The runner, the reports, ``status``, ``--dry-run``,
the progress totals and the benchmark all ask it; nothing else derives run
lists or reads configurations out of folder names.

A study's work, stage by stage (a stage starts once every run of the earlier
stages is settled):

0. ``baseline``, one run per seed: the wide dense model;
1. ``pruned``, one run per (target sparsity, seed): that seed's baseline,
   magnitude-pruned while fine-tuned;
2. the narrow ``search`` of each target sparsity, once its pruned runs are
   settled: its budget is their fewest nonzero parameters;
3. ``narrow``, one run per (target, seed): the search's best configuration.
"""

import dataclasses
from typing import Optional, Tuple

from widthvsprune import keys
from widthvsprune.families import describe_widths

ARMS = ("baseline", "pruned", "narrow")


@dataclasses.dataclass(frozen=True)
class Run:
    """One model to train (one seed of one configuration).

    Attributes:
        arm: ``"baseline"``, ``"pruned"`` or ``"narrow"``.
        target: the size point's target sparsity (0 for the baseline).
        seed: its training seed.
        key: its configuration's key (the folder ``runs/<key>/seed-<seed>``).
        config: its resolved configuration (what ``config.json`` holds).
        needs: ``(key, seed)`` of the runs whose results it starts from.
        search: the key of the search that chose its configuration, if any.
        stage: its stage (see the module docstring).
    """

    arm: str
    target: float
    seed: int
    key: str
    config: dict
    needs: Tuple[Tuple[str, int], ...] = ()
    search: Optional[str] = None
    stage: int = 0

    @property
    def id(self):
        return (self.key, self.seed)

    @property
    def widths(self):
        config = self.config["baseline"] if self.arm == "pruned" else self.config
        return tuple(config["widths"])

    @property
    def label(self):
        if self.arm == "baseline":
            return f"baseline seed={self.seed} widths={describe_widths(self.widths)}"
        if self.arm == "pruned":
            return f"pruned sparsity={self.target:g} seed={self.seed} ({self.config['pruning']['variant']})"
        return f"narrow sparsity={self.target:g} seed={self.seed} widths={describe_widths(self.widths)}"


@dataclasses.dataclass(frozen=True)
class Search:
    """One search: a size point's narrow models, tuned on the validation split.

    Attributes:
        arm: the arm it tunes (``"narrow"``).
        target: the size point.
        key: the key its runs share (``runs/<key>/search``).
        config: the search's configuration (what its key hashes).
        budget: the parameter budget every candidate must fit.
        needs: the runs that must be settled first.
        stage: its stage.
    """

    arm: str
    target: float
    key: str
    config: dict
    budget: Optional[int] = None
    needs: Tuple[Tuple[str, int], ...] = ()
    stage: int = 2

    @property
    def label(self):
        return f"{self.arm} search sparsity={self.target:g}"


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a study trains, as far as the records found so far tell.

    Attributes:
        runs: every run whose configuration is known.
        searches: every search whose budget is known.
        skipped: ``target -> reason`` for size points with no narrow arm.
        max_trainings: models the whole study trains at most (trials included).
    """

    study: object
    runs: Tuple[Run, ...]
    searches: Tuple[Search, ...]
    skipped: dict
    max_trainings: int

    def runs_of(self, arm, target=None):
        return [r for r in self.runs if r.arm == arm and (target is None or r.target == target)]

    def search_of(self, target):
        return next((s for s in self.searches if s.target == target), None)


# --------------------------------------------------------------------------
# Configurations (what each key hashes).


def data_config(study):
    return {"dataset": study.dataset, "validation_fraction": study.validation_fraction, "data_seed": study.data_seed}


def baseline_config(study):
    return {
        "arm": "baseline",
        "data": data_config(study),
        "family": study.family,
        "widths": list(study.widths),
        "recipe": keys.config_dict(study.baseline),
    }


def pruned_config(study, target):
    return {
        "arm": "pruned",
        "baseline": baseline_config(study),
        "target_sparsity": float(target),
        "pruning": keys.config_dict(study.pruning),
        "finetune": keys.config_dict(study.finetune),
    }


def search_seed(study):
    """The seed the narrow search trains its trials with."""
    return int(study.seeds[0])


def narrow_config(study, budget):
    return {
        "arm": "narrow",
        "data": data_config(study),
        "family": study.family,
        "wide_widths": list(study.widths),
        "budget": int(budget),
        "search": keys.config_dict(study.narrow),
        "search_seed": search_seed(study),
        "recipe": {
            "epochs": study.narrow_epochs,
            "batch_size": study.baseline.batch_size,
            "optimizer": study.baseline.optimizer,
            "learning_rate": "searched",
        },
    }


def budget_of(pruned_records):
    """The narrow arm's budget at one size point: the fewest nonzeros of the pruned runs that trained."""
    values = [r["nonzero_params"] for r in pruned_records if r is not None and r.get("status") == "ok"]
    return min(values) if values else None


def max_trainings(study):
    """Models the study trains when nothing is done yet (search trials included)."""
    n_seeds, n_targets = len(study.seeds), len(study.sparsities)
    trials = study.narrow.max_trials if study.narrow.oracle != "hyperband" else 0
    return n_seeds + n_targets * n_seeds + n_targets * (trials + n_seeds)


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
    base_key = keys.run_key(baseline_config(study), "baseline")
    runs = [Run("baseline", 0.0, s, base_key, baseline_config(study), stage=0) for s in study.seeds]
    found, skipped = [], {}
    for target in study.sparsities:
        config = pruned_config(study, target)
        key = keys.run_key(config, f"pruned-{target:g}")
        pruned = [Run("pruned", float(target), s, key, config, needs=((base_key, s),), stage=1) for s in study.seeds]
        runs += pruned
        settled = [records.get(r.id) for r in pruned]
        if any(r is None for r in settled):
            continue  # the budget is not known yet
        budget = budget_of(settled)
        if budget is None:
            skipped[target] = "skipped, no pruned model trained"
            continue
        config = narrow_config(study, budget)
        search = Search("narrow", float(target), keys.run_key(config, f"narrow-{int(budget)}"), config, int(budget),
                        tuple(r.id for r in pruned), stage=2)
        found.append(search)
        result = searches.get(search.key)
        if result is None:
            continue
        if result["status"] == "no-narrow-fits":
            skipped[target] = result["note"]
            continue
        resolved = {**config, "widths": list(result["widths"]), "learning_rate": result["learning_rate"]}
        runs += [Run("narrow", float(target), s, search.key, resolved, search=search.key, stage=3)
                 for s in study.seeds]
    return Plan(study, tuple(runs), tuple(found), skipped, max_trainings(study))
