"""Sparse from scratch ("static sparse" in Evci et al. 2020): the pruned arm's sparse shape, trained from scratch.

A control arm, off unless a study lists it (``Study(arms=(..., "sparse_scratch"))``).
It tells whether the pruned arm's advantage comes from the weights it kept
from the trained baseline or only from its sparse shape: the wide model is
trained from fresh initial weights with a fixed mask from the first step,
each kernel at the sparsity the tuned pruned model of the same seed reached
(the pruned arm's allocation at this size point), the weights to remove drawn
at random (seeded), for as many optimizer steps as the narrow arm trains.

Its runs (stages 4 and 5), per size point, once the tuned pruned runs are
settled: a search of its learning rate (the same oracle and number of trials
as every other search; its trials take the shape of the tuned pruned model
of the lowest seed that trained), then the chosen learning rate at every
evaluation seed. It adds two contrasts: pruned against sparse from scratch
(the weights' worth), and sparse from scratch against narrow (the sparse
shape's worth against a dense one).
"""

from widthvsprune import families, keys
from widthvsprune.arms import shared
from widthvsprune.arms.base import Arm, Contrast, SearchContext, common_result, log_rate, matched_fit, search_compute
from widthvsprune.engines.base import ModelSpec, PruneSpec
from widthvsprune.pruning.schedules import ScheduleSteps
from widthvsprune.steps import steps_per_epoch

NAME = "sparse_scratch"


def kernel_sparsities(record):
    """The sparsity each prunable kernel of a trained pruned model reached, in model order."""
    return tuple(1.0 - layer["kernel_nonzero"] / layer["kernel_params"]
                 for layer in record["layers"] if layer.get("prunable", True))


def fixed_mask(study, n_train, targets, seed):
    """A :class:`~widthvsprune.engines.base.PruneSpec` drawing each kernel's mask at random once, before step 1."""
    fit = matched_fit(study, n_train)
    steps = ScheduleSteps(steps_per_epoch(n_train, fit.batch_size), fit.max_steps, 1, 1, 1)
    return PruneSpec(max(targets, default=0.0), steps, allocation="random", initial_sparsity=1.0, seed=int(seed),
                     targets=tuple(targets))


def config(study, target, tuning, shape_of):
    """The configuration of a sparse-from-scratch search (``tuning="search"``) or run."""
    out = {"arm": NAME, "tuning": tuning, "engine": shared.engine_of(study),
           "data": shared.data_config(study), "family": study.family, **families.key_fields(study.family),
           **shared.evaluation_fields(study),
           "widths": list(study.widths),
           "target_sparsity": float(target), "shape_of": shape_of,
           "recipe": {"batch_size": study.baseline.batch_size, "optimizer": study.baseline.optimizer,
                      "matched_to": {"baseline": keys.config_dict(study.baseline),
                                     "finetune": keys.config_dict(study.finetune)}}}
    if tuning == "search":
        out["search"] = shared.search_settings(study)
    return out


class SparseScratch(Arm):
    name = NAME
    title = "sparse from scratch"
    legend = "sparse from scratch (pruned shape)"
    color, marker = "tab:green", "D"
    sparse = True
    default = False
    hyperparameters = ("learning_rate",)
    order = 3
    at_each_size = True
    requires = (shared.PRUNED, shared.NARROW)

    def plan(self, study, builder):
        for target in study.sparsities:
            pruned = builder.need(shared.PRUNED_RUNS)(target, "tuned")
            settled = [builder.records.get(r.id) for r in pruned]
            if not pruned or any(r is None for r in settled):
                continue
            by_seed = {r.seed: r.id for r, record in zip(pruned, settled) if record.get("status") == "ok"}
            if not by_seed:
                continue  # the narrow arm reports the size point as skipped
            search, result = builder.add_search(NAME, "tuned", target, config(study, target, "search", pruned[0].key),
                                                4, f"search-{NAME}-{target:g}", needs=tuple(by_seed.values()))
            if result is None:
                continue
            resolved = {**config(study, target, "tuned", pruned[0].key),
                        "learning_rate": float(result["learning_rate"])}
            seeds = [s for s in study.seeds if s in by_seed]
            builder.add_runs(NAME, "tuned", target, keys.run_key(resolved, f"{NAME}-{target:g}"), resolved, 5,
                             lambda s, by_seed=by_seed: (by_seed[s],), search.key, seeds=seeds)

    def contrasts(self, study):
        return [Contrast("pruned vs sparse from scratch", shared.PRUNED, NAME),
                Contrast("sparse from scratch vs narrow", NAME, shared.NARROW)]

    def label(self, run):
        return f"{NAME} sparsity={run.target:g} seed={run.seed} (random mask of the pruned shape)"

    def fit(self, study, n_train):
        return matched_fit(study, n_train)

    def model_spec(self, study, run, splits, initial_weights=None, source=None, log_dir=None):
        prune = fixed_mask(study, len(splits.x_train), kernel_sparsities(source), run.seed)
        return ModelSpec(study.family, run.widths, int(run.seed), float(run.config["learning_rate"]), None, prune,
                         log_dir)

    def record_fields(self, study, run, spec, outcome, splits, search=None, source=None, sizes=None):
        fit = self.fit(study, len(splits.x_train))
        return {**search_compute(search), "pruning": source.get("pruning", ""),
                "epochs": fit.epochs_done(len(splits.x_train)), "steps": fit.max_steps,
                "learning_rate": spec.learning_rate}

    def shown(self, record):
        return {"sparsity": record["sparsity"]}

    def chosen(self, run):
        return "a random fixed mask at the tuned pruned model's per-layer sparsity, trained from scratch"

    def space(self, study, search, context):
        def declare(hp):
            log_rate(hp, "learning_rate", study, study.baseline.learning_rate)

        return declare

    def context(self, study, search, session):
        source = next((session.state(need).record for need in search.needs if session.state(need).done), None)
        if source is None:
            session.note(f"{search.label}: skipped, no tuned pruned model to take the shape of")
            return None
        return SearchContext(search, records={"shape": source}, count=session.count)

    def trial(self, study, splits, context, values):
        n = len(splits.x_train)
        prune = fixed_mask(study, n, kernel_sparsities(context.records["shape"]), study.search_seed)
        model = ModelSpec(study.family, study.widths, study.search_seed, float(values["learning_rate"]), None, prune)
        return self.fit(study, n), model, {}

    def result(self, study, search, found, splits, context):
        return {**common_result(study, found), "learning_rate": float(found["values"]["learning_rate"])}
