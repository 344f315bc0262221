"""Training runs: a stage's packs through the executor, then one record per unsettled run.

A run's arm turns it into a :class:`~widthvsprune.engines.base.ModelSpec`
(:meth:`widthvsprune.arms.base.Arm.model_spec`); the runs of one pack
(:func:`widthvsprune.plan.packs.stage_packs`) train together, recorded ones
included; each new outcome becomes a record, written last (the "done" marker),
after the run's history, weights and test predictions. A run whose model
failed, or whose needed run did not train, gets a failure record with the
reason in one line.
"""

import traceback

import pandas as pd

from widthvsprune import arms, sizes, store
from widthvsprune.analysis import stats
from widthvsprune.arms.base import search_compute
from widthvsprune.arms.shared import engine_of
from widthvsprune.status import RunStatus
from widthvsprune.store import results


def common_fields(study, run):
    """The fields every record of ``run`` has."""
    from widthvsprune.families import describe_widths

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
        "widths": describe_widths(run.widths),
        "target_sparsity": float(run.target),
        "engine": engine_of(study),
    }


def write_done(folder, study, run, spec, outcome, splits, prior_seconds=0.0, search=None, source=None):
    """Saves a trained run's history, weights and test predictions, then its record (last). Returns the record."""
    arm = arms.get(run.arm)
    measured = sizes.summarize(outcome.layers, extra_params=outcome.other_params)
    if not arm.sparse:
        # A dense model stores and computes every parameter, zero or not.
        measured.update(nonzero_params=measured["total_params"], nonzero_flops=measured["flops"])
    history = store.write_csv(store.history_csv(folder), pd.DataFrame(outcome.history))
    files = {
        "history.csv": store.sha256(history),
        "weights.npz": store.write_weights(store.weights_npz(folder), outcome.weights),
    }
    if outcome.test_correct is not None:
        files["predictions.npz"] = store.write_arrays(store.predictions_npz(folder),
                                                      {"correct": outcome.test_correct.astype(bool)})
    train_accuracy = float(outcome.history[-1]["accuracy"]) if outcome.history else float("nan")
    record = {
        **common_fields(study, run),
        **arm.record_fields(study, run, spec, outcome, splits, search, source, measured),
        **measured,
        "status": RunStatus.OK.value,
        "diverged": stats.at_chance(outcome.test_accuracy, splits.num_classes, len(splits.y_test)),
        "train_accuracy": train_accuracy,
        "broken_evaluation": stats.broken_evaluation(train_accuracy, outcome.test_accuracy, splits.num_classes,
                                                     len(splits.y_test)),
        "test_accuracy": outcome.test_accuracy,
        "test_loss": outcome.test_loss,
        "test_examples": int(len(splits.y_test)),
        "val_accuracy": outcome.val_accuracy,
        "train_seconds": outcome.seconds + prior_seconds,
        "layers": sizes.layer_counts(outcome.layers),
        "files": files,
    }
    store.write_json(store.record_json(folder), record)
    return record


def write_failed(folder, study, run, error, previous, session, verbose=False):
    """Records why a run failed (it is tried again by the next ``run``). Returns the record."""
    reason = f"{type(error).__name__}: {error}".strip() if isinstance(error, BaseException) else str(error)
    failed_before = previous and previous.get("status") == RunStatus.FAILED
    attempts = int(previous.get("attempts", 0)) + 1 if failed_before else 1
    record = {**common_fields(study, run), "status": RunStatus.FAILED.value, "error": reason.splitlines()[0],
              "attempts": attempts, "session": session}
    if verbose and isinstance(error, BaseException):
        record["traceback"] = "".join(traceback.format_exception(error))
    store.write_json(store.record_json(folder), record)
    return record


class Trainer:
    """Trains claimed runs for a :class:`~widthvsprune.run.scheduler.Runner` and records them.

    Args:
        runner: the runner (its study, splits, executor, progress, session and bookkeeping).
    """

    def __init__(self, runner):
        self.runner = runner
        self.weights_cache = {}

    def weights(self, run_id):
        """The trained weights of run ``run_id`` (read once)."""
        if run_id not in self.weights_cache:
            key, seed = run_id
            self.weights_cache[run_id] = store.read_weights(store.weights_npz(store.seed_dir(self.runner.root, key,
                                                                                             seed)))
        return self.weights_cache[run_id]

    def train(self, packs, survey):
        """Trains claimed packs (tuples of runs, :func:`widthvsprune.plan.packs.stage_packs`) and records their
        unsettled runs.

        Every run of a pack trains, so that each model trains beside the same
        models however the study was run; a run recorded before (a pack cut
        short by an interruption) keeps its record, and its result this time
        is only compared with the record (a difference is reported).
        """
        r = self.runner
        slots = max(1, int(r.executor.slots))
        for start in range(0, len(packs), slots):  # as many packs at a time as the executor trains at once
            r.check()
            prepared = []
            for pack in packs[start:start + slots]:
                todo = {run.id for run in pack if not r.run_settled(run)}
                prepared.append(self._prepare(pack, todo, survey))
            prepared = [p for p in prepared if p is not None]
            if prepared:
                self._train_prepared(prepared, survey)

    def _train_prepared(self, prepared, survey):
        r = self.runner
        for _, ready, _, _, _ in prepared:
            more = f" (+{len(ready) - 1} more, trained together)" if len(ready) > 1 else ""
            r.progress.note(f"training {ready[0].label}{more} ...")
        try:
            trained, seconds = r.train_packs([fit.pack(specs, recalibrate_batchnorm=r.study.recalibrate_batchnorm)
                                              for fit, _, specs, _, _ in prepared])
        except store.DiskFullError:
            raise
        except Exception as error:  # recorded for every unsettled run of the packs; the study goes on
            for _, ready, _, _, todo in prepared:
                for run in ready:
                    if run.id in todo:
                        self.fail(run, error, survey)
            return
        models = sum(len(ready) for _, ready, _, _, _ in prepared)
        for (_, ready, specs, sources, todo), outcomes in zip(prepared, trained):
            for run, spec, outcome in zip(ready, specs, outcomes):
                with r.watch("records"):
                    if run.id not in todo:
                        self._compare(run, outcome, survey)
                    elif not outcome.ok:
                        self.fail(run, outcome.error, survey)
                    else:
                        self._record(run, spec, outcome, survey, sources[run.id], (models, seconds))

    def _prepare(self, pack, todo, survey):
        """``(fit, runs, specs, sources, todo)`` of the runs of ``pack`` that can train; ``None`` if none can.

        An unsettled run whose needed run did not train, or whose arm cannot
        make its model, gets a failure record here.
        """
        r = self.runner
        fit = arms.get(pack[0].arm).fit(r.study, len(r.splits.x_train))
        ready, specs, sources = [], [], {}
        for run in pack:
            folder = store.seed_dir(r.root, run.key, run.seed)
            if run.id in todo:
                store.write_json(store.config_json(folder), results.run_config(r.study, run))
                r.attempted.add(run.id)
            arm, weights, source = arms.get(run.arm), None, None
            if run.needs:
                source = survey.states[run.needs[0]]
                if not source.done:
                    if run.id in todo:
                        self.fail(run, f"the {source_name(survey, run)} of seed {run.seed} did not train", survey)
                    continue
                weights = self.weights(run.needs[0]) if arm.loads_weights else None
            log_dir = store.tensorboard_dir(folder) if r.study.tensorboard and run.id in todo else None
            try:
                specs.append(arm.model_spec(r.study, run, r.splits, weights, source and source.record, log_dir))
            except Exception as error:  # a configuration the arm cannot train: recorded, the study goes on
                if run.id in todo:
                    self.fail(run, error, survey)
                continue
            ready.append(run)
            sources[run.id] = source.record if source else None
        if not any(run.id in todo for run in ready):
            return None
        return fit, ready, specs, sources, todo

    def link(self, runs, survey):
        """Records runs that train the same model as a run of an earlier stage (their twins,
        :func:`widthvsprune.plan.planner.twins`) without training them: the twin's history, weights and
        predictions are copied into the run's folder, and its record is the twin's with the run's own key, label,
        tuning and search. A run whose twin did not train fails, naming it (both are tried again by the next
        ``run``)."""
        r = self.runner
        for run in runs:
            r.check()
            twin = survey.plan.twins[run.id]
            state, label = survey.states[twin], _label_of(survey, twin)
            with r.watch("records"):
                if not state.done:
                    self.fail(run, f"the same model as {label}, which did not train", survey)
                    continue
                source, folder = store.seed_dir(r.root, *twin), store.seed_dir(r.root, run.key, run.seed)
                try:
                    store.write_json(store.config_json(folder), results.run_config(r.study, run))
                    for name in state.record.get("files", {}):
                        store.write_bytes(folder / name, (source / name).read_bytes())
                    record = {**state.record, **common_fields(r.study, run),
                              **search_compute(survey.searches.get(run.search)), "same_as": f"{twin[0]}/seed-{twin[1]}"}
                    store.write_json(store.record_json(folder), record)
                except store.DiskFullError:
                    raise
                except Exception as error:
                    self.fail(run, error, survey)
                    continue
            r.attempted.add(run.id)
            r.result.linked += 1
            r.progress.line(f"{run.label}: the same model as {label}, not trained again",
                            nonzero=record["nonzero_params"], val_acc=record["val_accuracy"],
                            test_acc=record["test_accuracy"])

    def _compare(self, run, outcome, survey):
        """Reports a recorded run whose model, trained again in its pack, did not reproduce its record."""
        record = survey.states[run.id].record or {}
        if record.get("status") != RunStatus.OK.value or not outcome.ok:
            return
        for name in ("val_accuracy", "test_accuracy"):
            again, kept = getattr(outcome, name), record.get(name)
            if kept is not None and again is not None and float(again) != float(kept):
                self.runner.progress.note(f"{run.label}: trained again beside its pack, {name} {again!r} against "
                                          f"its record's {kept!r}; the record is kept")
                return

    def _record(self, run, spec, outcome, survey, source, pack):
        r = self.runner
        folder = store.seed_dir(r.root, run.key, run.seed)
        arm = arms.get(run.arm)
        prior = float(source.get("train_seconds") or 0.0) if source and arm.loads_weights else 0.0
        try:
            record = write_done(folder, r.study, run, spec, outcome, r.splits, prior, survey.searches.get(run.search),
                                source)
        except store.DiskFullError:
            raise
        except Exception as error:
            self.fail(run, error, survey)
            return
        r.result.trained += 1
        shown = {**arm.shown(record), "nonzero": record["nonzero_params"], "val_acc": record["val_accuracy"],
                 "test_acc": record["test_accuracy"]}
        if outcome.where:
            shown["on"] = outcome.where
        r.progress.line(run.label, pack, **shown)

    def fail(self, run, error, survey):
        r = self.runner
        folder = store.seed_dir(r.root, run.key, run.seed)
        r.attempted.add(run.id)
        record = write_failed(folder, r.study, run, error, survey.states[run.id].record, r.session, r.verbose)
        r.result.failed.append(record)
        r.progress.line(f"FAILED {run.label}", error=record["error"])


def planned(survey, run_id):
    """The run ``run_id`` of the survey's plan, or ``None``."""
    return next((other for other in survey.plan.runs if other.id == run_id), None)


def _label_of(survey, run_id):
    """The label of the run ``run_id`` of the plan (its key and seed when the plan lacks it)."""
    found = planned(survey, run_id)
    return found.label if found is not None else f"{run_id[0]}/seed-{run_id[1]}"


def source_name(survey, run):
    """What the run a run needs is, in words (``baseline``, ``pruned``...)."""
    needed = planned(survey, run.needs[0])
    return "baseline" if needed is None else arms.get(needed.arm).name
