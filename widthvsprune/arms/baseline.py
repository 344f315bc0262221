"""The baseline arm: the wide dense model, its learning rate tuned by one search for the study.

Its runs (stages 0 and 1):

- the recipe as written (``untuned``), trained at the search seed for the
  pruned searches to prune, and at every evaluation seed for the controls (or
  when a pruned search chose to prune the recipe's baseline);
- the ``search`` of its learning rate (one for the study);
- the chosen configuration (``tuned``), at every evaluation seed and at the
  search seed (the baseline the pruned searches prune).

A study that starts from trained weights (:attr:`Study.pretrained`) has no
search and trains nothing here: its baseline runs are the family's trained
model evaluated as it is, at every evaluation seed and at the search seed,
and stand for both the recipe's baseline and the tuned one.

Other arms reach these runs through :class:`Baselines`.
"""

import dataclasses
from typing import Optional

from widthvsprune import families, keys
from widthvsprune.arms import shared
from widthvsprune.arms.base import Arm, common_result, log_rate, recipe_fit, search_compute
from widthvsprune.arms.shared import data_config, engine_of, evaluation_fields, search_settings  # noqa: F401
from widthvsprune.engines.base import ModelSpec
from widthvsprune.steps import steps_per_epoch

NAME = shared.BASELINE


config = shared.baseline_config


@dataclasses.dataclass
class Baselines:
    """The baseline runs other arms start from, as far as the plan knows them.

    Attributes:
        recipe_config: the recipe's configuration.
        recipe_helper: the id of the recipe's baseline at the search seed.
        tuned_config: the tuned configuration (``None`` until the search finished).
        tuned_ids: seed -> id of the tuned baselines.
        tuned_helper: the id of the tuned baseline at the search seed.
    """

    builder: object
    recipe_config: dict
    recipe_key: str
    recipe_helper: tuple
    tuned_config: Optional[dict] = None
    tuned_ids: dict = dataclasses.field(default_factory=dict)
    tuned_helper: Optional[tuple] = None
    _recipe_ids: Optional[dict] = None

    def recipe_ids(self):
        """seed -> id of the recipe's baselines at every evaluation seed (planned on first use)."""
        if self._recipe_ids is None:
            made = self.builder.add_runs(NAME, "untuned", 0, self.recipe_key, self.recipe_config, 0)
            self._recipe_ids = {r.seed: r.id for r in made}
        return self._recipe_ids


class Baseline(Arm):
    name = NAME
    title = "wide dense"
    legend = "wide dense (baseline)"
    color, marker = "black", "*"
    reference = True
    hyperparameters = ("learning_rate",)
    order = 0
    controlled = True

    def plan(self, study, builder):
        if study.pretrained:
            return self._plan_pretrained(study, builder)
        recipe = config(study)
        recipe_key = keys.run_key(recipe, NAME)
        helper = builder.add_helper(NAME, "untuned", recipe_key, recipe, 0)
        baselines = Baselines(builder, recipe, recipe_key, helper.id)
        builder.offer(shared.BASELINES, baselines)
        search, result = builder.add_search(NAME, "tuned", 0, {**config(study, "search"),
                                                                "search": search_settings(study)}, 0, "search-baseline")
        if result is not None:
            tuned = config(study, "tuned", result["learning_rate"])
            key = keys.run_key(tuned, NAME)
            made = builder.add_runs(NAME, "tuned", 0, key, tuned, 1, search=search.key)
            baselines.tuned_config, baselines.tuned_ids = tuned, {r.seed: r.id for r in made}
            baselines.tuned_helper = builder.add_helper(NAME, "tuned", key, tuned, 1, search.key).id
        if study.tuning.controls:
            baselines.recipe_ids()

    def _plan_pretrained(self, study, builder):
        """The family's trained model (:attr:`Study.pretrained`) as the baseline: evaluated as it is at every
        evaluation seed and at the search seed, nothing trained and nothing searched. It is the tuned baseline and
        the recipe's alike, so every arm that starts from a baseline starts from it."""
        trained = config(study, "tuned")
        key = keys.run_key(trained, NAME)
        helper = builder.add_helper(NAME, "tuned", key, trained, 0)
        ids = {r.seed: r.id for r in builder.add_runs(NAME, "tuned", 0, key, trained, 0)}
        builder.offer(shared.BASELINES, Baselines(builder, trained, key, helper.id, trained, ids, helper.id, ids))

    def configurations(self, study):
        return 1 if study.pretrained else super().configurations(study)  # trained weights: one baseline

    def searches(self, study):
        return 0 if study.pretrained else super().searches(study)  # trained weights: nothing to search

    def max_trainings(self, study):
        if study.pretrained:
            return len(study.seeds) + 1  # evaluations only

        # The search, the tuned runs and the recipe's (which may serve the tuned pruned arm too), each also at the
        # search seed.
        return study.tuning.trainings + 2 * len(study.seeds) + 2

    def label(self, run):
        from widthvsprune.families import describe_widths

        tag = "" if run.tuning == "tuned" else " untuned"
        if "pretrained" in run.config:
            tag = " (trained weights, as they are)"
        role = " (for the searches)" if run.role == "search" else ""
        return f"baseline{tag} seed={run.seed} widths={describe_widths(run.widths)}{role}"

    def search_label(self, search):
        return "baseline search"

    def learning_rate(self, run):
        return float(run.config["recipe"]["learning_rate"])

    def chosen(self, run):
        r = run.config["recipe"]
        pretrained = run.config.get("pretrained")
        if pretrained is not None:
            how = (f"trained with {r['epochs']} epochs at batch {r['batch_size']}, {r['optimizer']}"
                   if pretrained["recipe"] == "declared" else "how it was trained is not known")
            return f"the trained weights {pretrained['weights']}, evaluated as they are ({how})"
        return f"{r['epochs']} epochs at batch {r['batch_size']}, {r['optimizer']}"

    def fit(self, study, n_train):
        fit = recipe_fit(study.baseline)
        return dataclasses.replace(fit, epochs=0) if study.pretrained else fit  # trained weights: evaluated only

    def model_spec(self, study, run, splits, initial_weights=None, source=None, log_dir=None):
        weights = families.get_family(study.family).weights if "pretrained" in run.config else None
        return ModelSpec(study.family, run.widths, int(run.seed), float(run.config["recipe"]["learning_rate"]),
                         None if weights is None else tuple(weights), None, log_dir)

    def record_fields(self, study, run, spec, outcome, splits, search=None, source=None, sizes=None):
        n, recipe = len(splits.x_train), study.baseline
        pretrained = run.config.get("pretrained")
        extra = {} if pretrained is None else {"pretrained": pretrained["recipe"],
                                               "weights_fingerprint": pretrained["weights"]}
        return {**search_compute(search), "epochs": float(recipe.epochs),
                "steps": recipe.epochs * steps_per_epoch(n, recipe.batch_size), "learning_rate": spec.learning_rate,
                **extra}

    def space(self, study, search, context):
        def declare(hp):
            log_rate(hp, "learning_rate", study, study.baseline.learning_rate)

        return declare

    def trial(self, study, splits, context, values):
        spec = ModelSpec(study.family, study.widths, study.search_seed, float(values["learning_rate"]))
        return self.fit(study, len(splits.x_train)), spec, {}

    def result(self, study, search, found, splits, context):
        return {**common_result(study, found), "learning_rate": float(found["values"]["learning_rate"])}
