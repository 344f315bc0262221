"""The dense reference ("wide dense, fine-tuned"): the trained baseline fine-tuned like the pruned arm, unpruned.

A control that every study has unless ``Study.arms`` leaves it out. The
pruned arm trains the baseline's epochs and then its fine-tune's, and the
narrow arm trains as many steps in all, so a baseline recipe that is too
short makes both look better than the wide model for a reason that has
nothing to do with size: they trained longer. This arm is the wide dense
model trained as long as they are: each evaluation seed's trained baseline,
fine-tuned with ``study.finetune`` at 0% sparsity (the "dense fine-tuned"
control of the pruning literature; Renda et al. 2020 compare fine-tuning
against longer training the same way).

Its runs (stages 2 and 3), like every other arm's:

- the recipe as written (``untuned``, a control): the recipe's baseline
  fine-tuned with the fine-tune recipe;
- the ``search`` of the fine-tune's learning rate (the same oracle and
  number of trials as every other search), its trials fine-tuning the tuned
  baseline trained at the search seed;
- the chosen learning rate (``tuned``), fine-tuning the tuned baseline of
  every evaluation seed.

The reports measure "keeps the baseline's accuracy" against the better, on
validation, of the baseline and this reference
(:func:`widthvsprune.analysis.hypothesis.reference_point`), and say first
when the reference beats the baseline by more than the tolerance: the
baseline recipe is under-trained.
"""

from widthvsprune import keys
from widthvsprune.arms import shared
from widthvsprune.arms.base import Arm, SearchContext, common_result, log_rate, pruned_steps, recipe_fit
from widthvsprune.engines.base import ModelSpec

NAME = "dense_finetuned"


def config(study, tuning, baseline, learning_rate=None):
    """A dense fine-tuned run's configuration: the baseline it starts from and the fine-tune recipe."""
    finetune = keys.config_dict(study.finetune)
    if learning_rate is not None:
        finetune["learning_rate"] = float(learning_rate)
    return {"arm": NAME, "tuning": tuning, "baseline": baseline, "finetune": finetune}


class DenseFinetuned(Arm):
    name = NAME
    title = "wide dense, fine-tuned"
    legend = "wide dense fine-tuned (trained as long as the arms)"
    color, marker = "dimgray", "P"
    reference = True
    hyperparameters = ("learning_rate",)
    order = 1
    requires = (shared.BASELINE,)
    loads_weights = True
    controlled = True

    def plan(self, study, builder):
        base = builder.need(shared.BASELINES)
        if study.tuning.controls:
            ids = base.recipe_ids()
            untuned = config(study, "untuned", base.recipe_config)
            builder.add_runs(NAME, "untuned", 0, keys.run_key(untuned, NAME), untuned, 2,
                             lambda s, ids=ids: (ids[s],))
        if base.tuned_config is None:
            return
        search, result = builder.add_search(NAME, "tuned", 0, {**config(study, "search", base.tuned_config),
                                                               "search": shared.search_settings(study)},
                                            2, f"search-{NAME}", needs=(base.tuned_helper,))
        if result is None:
            return
        tuned = config(study, "tuned", base.tuned_config, result["learning_rate"])
        ids = base.tuned_ids
        builder.add_runs(NAME, "tuned", 0, keys.run_key(tuned, NAME), tuned, 3, lambda s, ids=ids: (ids[s],),
                         search.key)

    def max_trainings(self, study):
        return study.tuning.trainings + len(study.seeds) * self.configurations(study)

    def widths(self, run):
        return tuple(run.config["baseline"]["widths"])

    def label(self, run):
        tag = "" if run.tuning == "tuned" else " untuned"
        return f"{NAME}{tag} seed={run.seed} (the baseline fine-tuned, unpruned)"

    def search_label(self, search):
        return f"{NAME} search"

    def learning_rate(self, run):
        return float(run.config["finetune"]["learning_rate"])

    def chosen(self, run):
        c = run.config
        which = "tuned" if c["baseline"].get("tuning") == "tuned" else "recipe's"
        return (f"fine-tunes the {which} baseline for {c['finetune']['epochs']} more epochs, unpruned "
                f"({c['baseline']['recipe']['epochs'] + c['finetune']['epochs']} epochs in all)")

    def fit(self, study, n_train):
        return recipe_fit(study.finetune)

    def model_spec(self, study, run, splits, initial_weights=None, source=None, log_dir=None):
        weights = None if initial_weights is None else tuple(initial_weights)
        return ModelSpec(study.family, run.widths, int(run.seed), float(run.config["finetune"]["learning_rate"]),
                         weights, None, log_dir)

    def record_fields(self, study, run, spec, outcome, splits, search=None, source=None, sizes=None):
        return {**super().record_fields(study, run, spec, outcome, splits, search),
                "epochs": float(study.baseline.epochs + study.finetune.epochs),
                "steps": pruned_steps(study, len(splits.x_train)), "learning_rate": spec.learning_rate}

    # ---- the search ---------------------------------------------------------------

    def space(self, study, search, context):
        def declare(hp):
            log_rate(hp, "learning_rate", study, study.finetune.learning_rate)

        return declare

    def context(self, study, search, session):
        need = search.needs[0]
        state = session.state(need)
        if not state.done:
            session.note(f"{search.label}: skipped, its baseline (seed {study.search_seed}) did not train")
            return None
        return SearchContext(search, {"baseline": session.weights(need)}, {"baseline": state.record}, session.count)

    def trial(self, study, splits, context, values):
        model = ModelSpec(study.family, study.widths, study.search_seed, float(values["learning_rate"]),
                          tuple(context.weights["baseline"]))
        return self.fit(study, len(splits.x_train)), model, {}

    def result(self, study, search, found, splits, context):
        return {**common_result(study, found), "learning_rate": float(found["values"]["learning_rate"])}
