"""The pruned arm ("large-sparse"): the wide baseline, magnitude-pruned to each size point while it is fine-tuned.

Its runs (stages 2 and 3), per size point:

- the recipe as written (``untuned``, a control): the recipe's baseline
  pruned with ``study.pruning`` and fine-tuned with ``study.finetune``;
- the ``search`` of the fine-tune's learning rate, the schedule's
  ``end_fraction`` and ``frequency``, the allocation (how the zeros are
  spread over the layers), the output layer's treatment, and which trained
  baseline to prune (the recipe's or the tuned one: a baseline tuned for its
  own accuracy need not be the one that prunes best); every trial
  fine-tunes a baseline trained at the search seed. Its first trials are the
  recipe as written, then each other allocation that can reach the size
  point, with the recipe's other settings (trained side by side); the
  oracle proposes the rest;
- the chosen configuration (``tuned``) at every evaluation seed.
"""

import dataclasses

import numpy as np

from widthvsprune import families, keys
from widthvsprune.arms import shared
from widthvsprune.arms.base import Arm, SearchContext, common_result, log_rate, pruned_steps, recipe_fit
from widthvsprune.engines.base import ModelSpec, PruneSpec
from widthvsprune.families import derived
from widthvsprune.pruning import allocations, kernel_masks, masks, schedules
from widthvsprune.pruning.allocations import Layer

NAME = shared.PRUNED
BASELINES = ("recipe", "tuned")  # the baselines a pruned trial may prune; the recipe's first
#: The most a layer's sparsity may be for the output layer to stay dense (the other layers take its zeros).
DENSE_OUTPUT_MAX = 0.99


def search_settings(study):
    t = study.tuning
    return {**shared.search_settings(study), "end_fraction_min": t.end_fraction_min,
            "frequencies": list(study.frequencies),
            "variants": keys.old_spelling(list(t.allocations), allocations.OLD_NAMES), "outputs": list(t.outputs)}


def config(study, target, tuning="untuned", baseline=None, chosen=None):
    """A pruned run's configuration; ``chosen`` holds a search's choices (``learning_rate`` and pruning fields)."""
    pruning, finetune = keys.config_dict(study.pruning), keys.config_dict(study.finetune)
    for name, value in (chosen or {}).items():
        (finetune if name == "learning_rate" else pruning)[name] = value
    pruning["variant"] = keys.old_spelling(pruning["variant"], allocations.OLD_NAMES)  # as keys spell it
    return {"arm": NAME, "tuning": tuning, "baseline": baseline or shared.baseline_config(study),
            "target_sparsity": float(target), "pruning": pruning, "finetune": finetune}


def allocation_of(config):
    """A pruned run's allocation, by its registered name."""
    return allocations.canonical(config["pruning"]["variant"])


def record_layers(record):
    """The wide model's prunable layers as allocations see them, from a baseline record (shapes only).

    Records written before they held kernel shapes give flat shapes: right
    sizes, which is all most feasibility checks need.
    """
    groups = {}
    for entry in record["layers"]:
        if entry.get("prunable", True):
            shape = tuple(entry.get("kernel_shape") or (entry["kernel_params"],))
            groups.setdefault(entry["layer"].split("/")[0], []).append(shape)
    return [Layer(name, tuple(shapes)) for name, shapes in groups.items()]


def kernel_sizes(baseline_record):
    """The sizes of the wide model's prunable kernels, in order (the output layer's last), from a baseline record."""
    return [layer["kernel_params"] for layer in baseline_record["layers"] if layer.get("prunable", True)]


def expected_nonzeros(allocation, prune_output, baseline_record, target):
    """The nonzeros a model pruned by ``allocation`` at ``target`` keeps, told from its baseline's record before it
    trains; ``None`` where its weights decide.

    Each prunable kernel keeps tfmot's count (:func:`~widthvsprune.pruning.masks.kept_count`) at the sparsity the
    allocation gives its layer, and every other parameter counts. ``None`` where that does not hold for sure: an
    allocation decided from the weights (``lamp``, ``global``) or selecting at random, which may round its layers
    otherwise; an allocation that cannot reach ``target``; and a baseline with a bias exactly zero (a ReLU unit that
    never fired keeps its initial 0, and whether a pruned model's units do depends on its training).

    Args:
        allocation: a registered allocation's name.
        prune_output: whether the output layer is pruned (else the others take its zeros).
        baseline_record: the record of the baseline it prunes (its ``layers`` and ``total_params``), or ``None``.
        target: the size point.

    Example:

    ```python
    # MNIST-1D's 40-128-64-10 MLP (14,154 parameters, 202 of them biases), uniform at 90%:
    expected_nonzeros("uniform", True, record, 0.9)  # 512 + 819 + 64 kept weights + 202 biases = 1597
    ```
    """
    found = allocations.get_allocation(allocation)
    if (not baseline_record or baseline_record.get("status") != "ok" or not baseline_record.get("layers")
            or found.weights != "none" or found.selection != "magnitude"):
        return None
    entries = baseline_record["layers"]
    if any(entry.get("bias_nonzero", 0) != entry.get("bias_params", 0) for entry in entries):
        return None
    kernels = [entry for entry in entries if entry.get("prunable", True)]
    layers = record_layers(baseline_record)
    try:
        sparsities = kernel_masks.expand(allocations.allocate(found.name, layers, target, prune_output), layers)
    except allocations.Infeasible:
        return None
    kept = sum(masks.kept_count(entry["kernel_params"], s) for entry, s in zip(kernels, sparsities))
    return int(baseline_record["total_params"]) - sum(int(e["kernel_params"]) for e in kernels) + kept


def expected_budget(study, baseline_record, target, chosen=None):
    """The fewest nonzeros the size point's pruned runs are expected to keep, before they train; ``None`` where
    that cannot be told.

    Once the pruned search has chosen (``chosen``: its result's choices), the fewest of the recipe's (with
    ``tuning.controls``) and the chosen configuration's :func:`expected_nonzeros`, where both can be told.
    Before, the count every configuration the search may choose and the recipe's would give, where those that can
    be told all agree.
    """
    recipe = (study.pruning.allocation, study.pruning.prune_output)
    if chosen is not None:
        options = [(chosen["variant"], chosen["prune_output"])] + ([recipe] if study.tuning.controls else [])
        counts = [expected_nonzeros(a, o, baseline_record, target) for a, o in options]
        return None if None in counts else min(counts)
    names = [a for a in study.tuning.allocations if allocations.get_allocation(a).searchable]
    options = [recipe] + [(a, o == "pruned") for a in names for o in study.tuning.outputs]
    counts = {expected_nonzeros(a, o, baseline_record, target) for a, o in options} - {None}
    return counts.pop() if len(counts) == 1 else None


def dense_output_fits(target, sizes):
    """Whether the other kernels can hold the output kernel's zeros at ``target`` (the output kept dense)."""
    sizes = [int(s) for s in sizes]
    return len(sizes) < 2 or float(target) * sum(sizes) / sum(sizes[:-1]) <= DENSE_OUTPUT_MAX


def baselines(search):
    """A pruned search's baselines at the search seed, which its trials may prune: ``{"tuned": id, "recipe": id}``."""
    return dict(zip(("tuned", "recipe"), search.needs))


def prune_spec(study, pruning, finetune, target, n_train, seed):
    """The engine's pruning of one model: ``pruning`` and ``finetune`` are config dicts (the study's or chosen)."""
    steps = schedules.schedule_steps(n_train, finetune["batch_size"], finetune["epochs"], pruning["frequency"],
                                     pruning["begin_step"], pruning["end_fraction"])
    return PruneSpec(float(target), steps, allocation=pruning["variant"], prune_output=pruning["prune_output"],
                     initial_sparsity=pruning["initial_sparsity"], power=pruning["power"], seed=int(seed))


def chosen(study, values):
    """A pruned trial's choices as config fields (``learning_rate`` is the fine-tune's, ``baseline`` the one it
    prunes)."""
    return {"learning_rate": float(values["learning_rate"]), "end_fraction": float(values["end_fraction"]),
            "frequency": int(values["frequency"]) if "frequency" in values else study.pruning.frequency,
            "variant": allocations.canonical(values.get("variant", study.pruning.allocation)),
            "prune_output": values["output"] == "pruned", "baseline": values.get("baseline", "tuned")}


def diagnostics(spec, outcome, baseline_record):
    """How a pruned model's schedule went: mask updates, recovery, the drop against its own baseline."""
    steps = spec.steps
    updates = schedules.mask_updates(steps)
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


def _every(frequency):
    """How often masks change, in words (``None``: :data:`~widthvsprune.pruning.schedules.AUTO_UPDATES` times)."""
    return f"{schedules.AUTO_UPDATES} times" if frequency is None else f"every {frequency} steps"


class Pruned(Arm):
    name = NAME
    title = "large-sparse"
    color, marker = "tab:red", "o"
    sparse = True
    hyperparameters = ("learning_rate", "end_fraction", "frequency", "variant", "output", "baseline")
    order = 1
    requires = (shared.BASELINE,)
    loads_weights = True
    at_each_size = True
    controlled = True

    def plan(self, study, builder):
        base = builder.need(shared.BASELINES)
        builder.offer(shared.PRUNED_RUNS, lambda target, tuning=None: builder.runs_of(NAME, target, tuning))
        searches = {}

        def expected(target):  # the size point's pruned search chose once its result is in ``searches``
            result = searches.get(target, (None, None))[1]
            return expected_budget(study, builder.records.get(base.recipe_helper), target,
                                   result["chosen"] if result is not None else None)

        builder.offer(shared.PRUNED_NONZEROS, expected)
        if base.tuned_config is not None:
            for target in study.sparsities:
                searches[target] = builder.add_search(
                    NAME, "tuned", target, {**config(study, target, "search", base.tuned_config),
                                            "recipe_baseline": base.recipe_config, "search": search_settings(study)},
                    2, f"search-pruned-{target:g}", needs=(base.tuned_helper, base.recipe_helper))
        if any(result is not None and result["chosen"].get("baseline") == "recipe"
               for _, result in searches.values()):
            base.recipe_ids()  # the recipe's baselines are pruned at every seed
        for target in study.sparsities:
            if study.tuning.controls:
                untuned = config(study, target)
                ids = base.recipe_ids()
                builder.add_runs(NAME, "untuned", target, keys.run_key(untuned, f"pruned-{target:g}"), untuned, 2,
                                 lambda s, ids=ids: (ids[s],))
            search, result = searches.get(target, (None, None))
            if result is None:
                continue
            choice = dict(result["chosen"])
            if choice.pop("baseline", "tuned") == "recipe":
                base_config, ids = base.recipe_config, base.recipe_ids()
            else:
                base_config, ids = base.tuned_config, base.tuned_ids
            tuned = config(study, target, "tuned", base_config, choice)
            builder.add_runs(NAME, "tuned", target, keys.run_key(tuned, f"pruned-{target:g}"), tuned, 3,
                             lambda s, ids=ids: (ids[s],), search.key)

    def notes(self, study, n_train):
        return _dense_layers_note(study) + self._schedule_notes(study, n_train)

    def _schedule_notes(self, study, n_train):
        p, f = study.pruning, study.finetune
        try:
            steps = schedules.schedule_steps(n_train, f.batch_size, f.epochs, p.frequency, p.begin_step,
                                             p.end_fraction)
        except ValueError as error:
            return [f"pruning: {error}"]
        updates = schedules.mask_updates(steps)
        if updates >= schedules.FEW_UPDATES:
            return []
        return [f"warning: pruning.frequency={p.frequency} updates the pruned recipe's masks {updates} time(s) over "
                f"its {steps.end_step - steps.begin_step} pruning steps ({f.epochs} fine-tune epochs of "
                f"{steps.steps_per_epoch} steps, end_fraction={p.end_fraction:g}), so it prunes in "
                f"{'one step' if updates == 1 else 'a few large steps'}, not gradually; leave pruning.frequency "
                f"unset ({schedules.AUTO_UPDATES} updates whatever the length) or set it to at most "
                f"{schedules.auto_frequency(steps.end_step - steps.begin_step)}"]

    def widths(self, run):
        return tuple(run.config["baseline"]["widths"])

    def label(self, run):
        tag = "" if run.tuning == "tuned" else " untuned"
        return f"pruned{tag} sparsity={run.target:g} seed={run.seed} ({allocation_of(run.config)})"

    def fit(self, study, n_train):
        return recipe_fit(study.finetune)

    def model_spec(self, study, run, splits, initial_weights=None, source=None, log_dir=None):
        c = run.config
        prune = prune_spec(study, c["pruning"], c["finetune"], run.target, len(splits.x_train), run.seed)
        weights = None if initial_weights is None else tuple(initial_weights)
        return ModelSpec(study.family, run.widths, int(run.seed), float(c["finetune"]["learning_rate"]), weights,
                         prune, log_dir)

    def record_fields(self, study, run, spec, outcome, splits, search=None, source=None, sizes=None):
        n, p = len(splits.x_train), run.config["pruning"]
        return {**super().record_fields(study, run, spec, outcome, splits, search),
                "pruning": allocation_of(run.config),
                "epochs": float(study.baseline.epochs + study.finetune.epochs),
                "steps": pruned_steps(study, n), "learning_rate": spec.learning_rate,
                "prune_output": p["prune_output"], "frequency": spec.prune.steps.frequency,
                "end_fraction": p["end_fraction"],
                "schedule": dataclasses.asdict(spec.prune.steps), **diagnostics(spec.prune, outcome, source)}

    def shown(self, record):
        return {"sparsity": record["sparsity"]}

    def learning_rate(self, run):
        return float(run.config["finetune"]["learning_rate"])

    def chosen(self, run):
        c = run.config
        p, f, base = c["pruning"], c["finetune"], c["baseline"]
        which = "tuned" if base.get("tuning") == "tuned" else "recipe's"
        return (f"prunes the {which} baseline (learning rate {base['recipe']['learning_rate']:.3g}); "
                f"{allocation_of(c)} allocation; masks {_every(p['frequency'])} until {p['end_fraction']:.0%} of a "
                f"{f['epochs']}-epoch fine-tune; output layer {'pruned' if p['prune_output'] else 'dense'}")

    # ---- the search ---------------------------------------------------------------

    def outputs(self, study, target, sizes):
        """The output treatments the search may choose at ``target`` (``dense`` only where it fits)."""
        return tuple(o for o in study.tuning.outputs if o == "pruned" or dense_output_fits(target, sizes))

    def allocation_choices(self, study, search, context):
        """The allocations the search tries at this size point: ``(default, others)``, or ``None`` when the
        recipe's allocation is not a method to tune (``random``).

        An allocation that cannot reach the size point with the recipe's output
        treatment is left out (and said so in ``context``'s notes).
        """
        recipe = allocations.canonical(study.pruning.allocation)
        if not allocations.get_allocation(recipe).searchable:
            return None
        layers = record_layers(context.records["tuned"])
        names = [allocations.canonical(a) for a in study.tuning.allocations]
        feasible = [a for a in names
                    if not allocations.infeasibility(a, layers, search.target, study.pruning.prune_output)]
        feasible = feasible or names[:1]
        default = recipe if recipe in feasible else feasible[0]
        return default, [a for a in feasible if a != default]

    def space(self, study, search, context):
        sizes = kernel_sizes(context.records["tuned"])
        choice = self.allocation_choices(study, search, context)

        def declare(hp):
            p, t = study.pruning, study.tuning
            log_rate(hp, "learning_rate", study, study.finetune.learning_rate)
            hp.Float("end_fraction", t.end_fraction_min, 1.0,
                     default=min(max(p.end_fraction, t.end_fraction_min), 1.0))
            if study.frequencies:  # unset: the schedule's length sets it (schedules.AUTO_UPDATES updates)
                hp.Choice("frequency", list(study.frequencies), default=study.frequencies[0])
            if choice is not None:
                default, others = choice
                hp.Choice("variant", [default, *others], default=default)
            choices = list(self.outputs(study, search.target, sizes))
            default = "pruned" if p.prune_output else "dense"
            hp.Choice("output", choices, default=default if default in choices else choices[0])
            if not study.pretrained:  # trained weights: one baseline to prune
                hp.Choice("baseline", list(BASELINES), default=BASELINES[0])

        return declare

    def first_trials(self, study, search, context):
        """After the recipe, each other allocation with the recipe's other settings."""
        choice = self.allocation_choices(study, search, context)
        return [] if choice is None else [{"variant": name} for name in choice[1]]

    def context(self, study, search, session):
        bases = {name: session.state(need) for name, need in baselines(search).items()}
        if not all(base.done for base in bases.values()):
            session.note(f"{search.label}: skipped, its baselines (seed {study.search_seed}) did not train")
            return None
        return SearchContext(search, {name: session.weights(need) for name, need in baselines(search).items()},
                             {name: base.record for name, base in bases.items()}, session.count)

    def trial(self, study, splits, context, values):
        search, choice = context.search, chosen(study, values)
        pruning = {**search.config["pruning"],
                   **{k: v for k, v in choice.items() if k not in ("learning_rate", "baseline")}}
        spec = prune_spec(study, pruning, search.config["finetune"], search.target, len(splits.x_train),
                          study.search_seed)
        model = ModelSpec(study.family, study.widths, study.search_seed, choice["learning_rate"],
                          tuple(context.weights[choice["baseline"]]), spec)
        return self.fit(study, len(splits.x_train)), model, {"allocation": allocations.canonical(pruning["variant"])}

    def result(self, study, search, found, splits, context):
        return {**common_result(study, found), "chosen": chosen(study, found["values"])}

    def trial_shown(self, values, info):
        return {"lr": f"{values['learning_rate']:.2g}", "end": f"{values['end_fraction']:.2f}",
                "freq": values.get("frequency", "auto"), "allocation": info.get("allocation"),
                "output": values["output"],
                "baseline": values.get("baseline")}


def _dense_layers_note(study):
    """One line naming the layers tfmot cannot prune, for a study of a tf_keras model that holds some."""
    try:
        family = families.get_family(study.family)
    except Exception:  # an unknown family is named by the study's own checks
        return []
    layers = derived.tfmot_leaves_dense(family)
    if not layers:
        return []
    return [f"warning: tfmot (engine 'tf_keras') cannot prune {', '.join(layers)}: the pruned arm leaves their "
            f"kernels dense, counted as nonzeros (the 'jax' engine, for a Keras 3 model, prunes them)"]
