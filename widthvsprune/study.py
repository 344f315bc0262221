"""The study runner: plans every run, trains what is missing, writes the tables.

Runs and their dependencies:

- ``baseline`` (one per seed): the wide dense model;
- ``pruned`` (one per target sparsity and seed): starts from that seed's
  baseline, is pruned with tfmot and fine-tuned;
- ``narrow`` (one search per target sparsity, then one model per seed): dense
  models of the same family within the pruned models' nonzero count.

Every run lives in its own folder (see :mod:`widthvsprune.storing`) and is
done when its ``record.json`` says ``status: ok``. Running a study again trains
only what is missing or failed. Each run is trained under an OS file lock, so
several processes can share one study: each takes the runs nobody else holds.
"""

import dataclasses
import math
import sys
import time
import traceback

from widthvsprune import config as config_module
from widthvsprune import families, storing
from widthvsprune.errors import DataError, ResultsError, StudyError

ARMS = ("baseline", "pruned", "narrow")


# --------------------------------------------------------------------------
# Run configurations and keys (pure).


def data_config(study):
    return {
        "dataset": study.dataset,
        "validation_fraction": study.validation_fraction,
        "data_seed": study.data_seed,
    }


def baseline_config(study):
    return {
        "arm": "baseline",
        "data": data_config(study),
        "family": study.family,
        "widths": list(study.widths),
        "recipe": dataclasses.asdict(study.baseline),
    }


def pruned_config(study, target):
    return {
        "arm": "pruned",
        "baseline": baseline_config(study),
        "target_sparsity": float(target),
        "pruning": dataclasses.asdict(study.pruning),
        "finetune": dataclasses.asdict(study.finetune),
    }


def narrow_config(study, budget):
    return {
        "arm": "narrow",
        "data": data_config(study),
        "family": study.family,
        "wide_widths": list(study.widths),
        "budget": int(budget),
        "search": dataclasses.asdict(study.narrow),
        "search_seed": int(study.seeds[0]),
        "recipe": {
            "epochs": study.narrow_epochs,
            "batch_size": study.baseline.batch_size,
            "optimizer": study.baseline.optimizer,
            "learning_rate": "searched",
        },
    }


def baseline_key(study):
    return storing.run_key(baseline_config(study), "baseline")


def pruned_key(study, target):
    return storing.run_key(pruned_config(study, target), f"pruned-{target:g}")


def narrow_key(study, budget):
    return storing.run_key(narrow_config(study, budget), f"narrow-{int(budget)}")


def budget_of(pruned_records):
    """The narrow arm's budget for one sparsity: the fewest nonzeros over the seeds."""
    values = [r["nonzero_params"] for r in pruned_records if r.get("status") == "ok"]
    return min(values) if values else None


def count_trainings(study):
    """Models the study trains when nothing is done yet (search trials included)."""
    n_seeds, n_targets = len(study.seeds), len(study.sparsities)
    trials = study.narrow.max_trials if study.narrow.oracle != "hyperband" else 0
    return n_seeds + n_targets * n_seeds + n_targets * (trials + n_seeds)


# --------------------------------------------------------------------------
# Checks before any training.


def preflight(study, out):
    """Loads the data and checks everything that can be checked before training.

    Returns:
        The dataset's :class:`widthvsprune.data.Splits`.

    Raises:
        StudyError: listing every problem, one line each.
    """
    from widthvsprune import data

    problems = list(study.problems()) + storing.check_writable(out)
    if not study.name:
        problems.append(config_module._problem("name", "a non-empty study name", study.name))
    splits = None
    try:
        splits = data.load(study.dataset, study.validation_fraction, study.data_seed)
    except DataError as error:
        problems += str(error).splitlines()
    if splits is not None:
        family = families.get_family(study.family)
        shape = splits.input_shape
        try:
            params = family.count_params(tuple(study.widths), shape, splits.num_classes)
        except Exception as error:  # a family that cannot take this input
            problems.append(
                f"family: Expected a family that accepts inputs of shape {shape}. "
                f"Received: family={study.family!r} ({type(error).__name__}: {error})"
            )
        else:
            side = families.min_input_side(study.family)
            if len(shape) >= 2 and min(shape[:2]) < side:
                problems.append(
                    f"family: Expected inputs of at least {side}x{side} for {study.family!r}. "
                    f"Received: family={study.family!r} with dataset={study.dataset!r} of shape {shape}"
                )
            elif params <= 0:
                problems.append(config_module._problem("widths", "a model with parameters", study.widths))
        n_train = len(splits.x_train)
        for name in ("baseline", "finetune"):
            recipe = getattr(study, name)
            if recipe.batch_size > n_train:
                problems.append(
                    f"{name}.batch_size: Expected at most the {n_train} training examples. "
                    f"Received: {name}.batch_size={recipe.batch_size}"
                )
    if problems:
        raise StudyError(problems)
    return splits


# --------------------------------------------------------------------------
# Progress.


def _clock(seconds):
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """One line per trained model: what, how many done, elapsed and remaining."""

    def __init__(self, total, stream=None):
        self.total, self.done, self.trained_seconds, self.trained = total, 0, 0.0, 0
        self.start = time.perf_counter()
        self.stream = stream or sys.stdout

    def skip(self, n=1):
        self.total = max(self.done, self.total - n)

    def line(self, what, seconds=None, **metrics):
        self.done += 1
        if seconds is not None and math.isfinite(seconds):
            self.trained += 1
            self.trained_seconds += seconds
        elapsed = time.perf_counter() - self.start
        left = max(0, self.total - self.done)
        per = elapsed / self.done if self.done else 0.0
        parts = [f"[{self.done:>3}/{self.total}] {what}"]
        parts += [f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()]
        if seconds is not None:
            parts.append(f"{seconds:.1f}s")
        parts.append(f"| elapsed {_clock(elapsed)}, ~{_clock(per * left)} left")
        print("  ".join(parts), file=self.stream, flush=True)

    def note(self, text):
        print(text, file=self.stream, flush=True)


# --------------------------------------------------------------------------
# The runner.


@dataclasses.dataclass
class StudyResult:
    """What :func:`run_study` did."""

    root: object
    trained: int = 0
    reused: int = 0
    failed: list = dataclasses.field(default_factory=list)
    deferred: int = 0


class _Runner:
    def __init__(self, study, out, splits, force, verbose, progress):
        self.study, self.splits, self.force, self.verbose = study, splits, force, verbose
        self.root = storing.study_dir(out, study.name)
        self.progress = progress
        self.attempted = set()  # folders trained (or failed) by this process
        self.result = StudyResult(self.root)

    # ---- helpers -----------------------------------------------------------------

    def _begin(self, folder, run_config):
        """Checks the folder's config and writes it; returns False if it is done."""
        existing = storing.config_json(folder)
        if existing.exists():
            try:
                old = storing.read_json(existing)
            except (OSError, ValueError):
                old = None
            if old is not None and old != run_config and not self.force:
                raise ResultsError(
                    f"run: Expected the configuration stored in {existing} to match the study. "
                    f"Received: a different configuration under the same key; use --force to redo it"
                )
        storing.write_json(existing, run_config)
        return True

    def _done(self, folder):
        if folder in self.attempted:
            return True
        if self.force:
            return False
        return storing.is_done(folder)

    def _fail(self, folder, base, error):
        reason = f"{type(error).__name__}: {error}".strip()
        previous = storing.read_record(folder) or {}
        record = {
            **base,
            "status": "failed",
            "error": reason.splitlines()[0] if reason else "error",
            "attempts": int(previous.get("attempts", 0)) + 1 if previous.get("status") == "failed" else 1,
        }
        if self.verbose:
            record["traceback"] = traceback.format_exc()
        storing.write_json(storing.record_json(folder), record)
        self.result.failed.append(record)
        self.progress.line(f"FAILED {record.get('label', '')}", error=record["error"])
        return record

    def _common(self, arm, seed, label):
        return {
            "study": self.study.name,
            "arm": arm,
            "family": self.study.family,
            "dataset": self.study.dataset,
            "seed": int(seed),
            "label": label,
            "pruning": self.study.pruning.variant if arm == "pruned" else "",
        }

    def _measure(self, model, prune_output=True):
        from widthvsprune import measuring, models

        layers = models.layer_weights(model, prune_output)
        sizes = measuring.summarize(layers, extra_params=models.other_params(model))
        return sizes, measuring.layer_counts(layers)

    def _finish(self, folder, model, history, record):
        """Evaluates, measures and saves a trained plain model; writes the record last."""
        import pandas as pd

        from widthvsprune import training

        training.compile_model(model, self.study.baseline)
        test_loss, test_acc = training.evaluate(model, self.splits.x_test, self.splits.y_test)
        _, val_acc = training.evaluate(model, self.splits.x_val, self.splits.y_val)
        sizes, layers = self._measure(model, record.get("prune_output", True))
        if record["arm"] != "pruned":
            # A dense model stores and computes every parameter, zero or not.
            sizes.update(nonzero_params=sizes["total_params"], nonzero_flops=sizes["flops"])
        storing.write_csv(storing.history_csv(folder), pd.DataFrame(history))
        storing.write_weights(storing.weights_npz(folder), model.get_weights())
        record = {
            **record,
            **sizes,
            "status": "ok",
            "test_accuracy": test_acc,
            "test_loss": test_loss,
            "val_accuracy": val_acc,
            "layers": layers,
        }
        storing.write_json(storing.record_json(folder), record)
        return record

    def _locked(self, folder, work):
        """Runs ``work()`` under the folder's lock; returns None if another process holds it."""
        lock = storing.Lock(folder)
        if not lock.acquire(blocking=False):
            return None
        try:
            if self._done(folder):
                self.progress.skip()
                return storing.read_record(folder)
            return work()
        finally:
            lock.release()

    def _callbacks(self, folder, pruned=False, steps=None, target=None, seed=0):
        from widthvsprune import pruning
        from widthvsprune.backend import keras

        out = []
        log_dir = storing.tensorboard_dir(folder) if self.study.tensorboard else None
        if pruned:
            out += pruning.callbacks(self.study.pruning, target, steps, seed, log_dir)
        elif log_dir is not None:
            out.append(keras.callbacks.TensorBoard(log_dir=str(log_dir)))
        return out

    # ---- arms --------------------------------------------------------------------

    def baseline(self, seed):
        from widthvsprune import models, training

        study, splits = self.study, self.splits
        key = baseline_key(study)
        folder = storing.seed_dir(self.root, key, seed)
        if self._done(folder):
            return storing.read_record(folder)
        label = f"baseline seed={seed} widths={families.describe_widths(study.widths)}"

        def work():
            self._begin(folder, {**baseline_config(study), "seed": int(seed), "study": study.name})
            base = {
                **self._common("baseline", seed, label),
                "key": key,
                "widths": families.describe_widths(study.widths),
                "target_sparsity": 0.0,
                "epochs": study.baseline.epochs,
                "learning_rate": study.baseline.learning_rate,
            }
            self.attempted.add(folder)
            try:
                model = models.build(study.family, study.widths, splits.input_shape, splits.num_classes, seed)
                history, seconds = training.fit(
                    model, splits, study.baseline, seed, callbacks=self._callbacks(folder)
                )
                record = self._finish(folder, model, history, {**base, "train_seconds": seconds})
            except Exception as error:  # recorded, the study goes on
                return self._fail(folder, base, error)
            self.result.trained += 1
            self.progress.line(
                label, seconds, val_acc=record["val_accuracy"], test_acc=record["test_accuracy"]
            )
            return record

        return self._locked(folder, work)

    def pruned(self, target, seed, baseline_record):
        from widthvsprune import models, pruning, schedules, training

        study, splits = self.study, self.splits
        key = pruned_key(study, target)
        folder = storing.seed_dir(self.root, key, seed)
        if self._done(folder):
            return storing.read_record(folder)
        label = f"pruned sparsity={target:g} seed={seed} ({study.pruning.variant})"

        def work():
            self._begin(folder, {**pruned_config(study, target), "seed": int(seed), "study": study.name})
            base = {
                **self._common("pruned", seed, label),
                "key": key,
                "widths": families.describe_widths(study.widths),
                "target_sparsity": float(target),
                "epochs": study.baseline.epochs + study.finetune.epochs,
                "learning_rate": study.finetune.learning_rate,
                "prune_output": study.pruning.prune_output,
            }
            self.attempted.add(folder)
            try:
                if baseline_record is None or baseline_record.get("status") != "ok":
                    raise RuntimeError(f"the baseline of seed {seed} did not train")
                model = models.build(study.family, study.widths, splits.input_shape, splits.num_classes, seed)
                model.set_weights(storing.read_weights(storing.weights_npz(storing.seed_dir(
                    self.root, baseline_record["key"], seed))))
                steps = schedules.schedule_steps(
                    len(splits.x_train),
                    study.finetune.batch_size,
                    study.finetune.epochs,
                    study.pruning.frequency,
                    study.pruning.begin_step,
                    study.pruning.end_fraction,
                )
                wrapped = pruning.wrap(
                    model, pruning.make_schedule(target, study.pruning, steps), study.pruning.prune_output
                )
                history, seconds = training.fit(
                    wrapped,
                    splits,
                    study.finetune,
                    seed,
                    callbacks=self._callbacks(folder, True, steps, target, seed),
                )
                stripped = pruning.strip(wrapped)
                record = self._finish(
                    folder,
                    stripped,
                    history,
                    {
                        **base,
                        "train_seconds": seconds + baseline_record.get("train_seconds", 0.0),
                        "finetune_seconds": seconds,
                        "schedule": dataclasses.asdict(steps),
                    },
                )
            except Exception as error:
                return self._fail(folder, base, error)
            self.result.trained += 1
            self.progress.line(
                label,
                seconds,
                sparsity=record["sparsity"],
                nonzero=record["nonzero_params"],
                test_acc=record["test_accuracy"],
            )
            return record

        return self._locked(folder, work)

    def narrow(self, target, budget):
        """The search for one budget, then one model per seed. Returns the records."""
        from widthvsprune import budgets, models, training

        study, splits = self.study, self.splits
        key = narrow_key(study, budget)
        folder = storing.run_dir(self.root, key)
        seed_folders = [storing.seed_dir(self.root, key, s) for s in study.seeds]
        if all(self._done(f) for f in seed_folders):
            return [storing.read_record(f) for f in seed_folders]
        smallest = budgets.smallest_params(
            families.get_family(study.family), len(study.widths), splits.input_shape, splits.num_classes
        )
        lock = storing.Lock(folder)
        if not lock.acquire(blocking=False):
            return None
        try:
            if smallest > budget:
                return self._no_fit(target, budget, key, seed_folders, smallest)
            return self._search_and_train(target, budget, key, folder, seed_folders, models, training)
        finally:
            lock.release()

    def _no_fit(self, target, budget, key, seed_folders, smallest):
        study, records = self.study, []
        note = (
            f"no-narrow-fits: the smallest {study.family} (every width 1) has {smallest} "
            f"parameters, more than the budget of {budget}"
        )
        for seed, folder in zip(study.seeds, seed_folders):
            self._begin(folder, {**narrow_config(study, budget), "seed": int(seed), "study": study.name})
            record = {
                **self._common("narrow", seed, f"narrow sparsity={target:g}"),
                "key": key,
                "status": "no-narrow-fits",
                "budget": int(budget),
                "target_sparsity": float(target),
                "note": note,
            }
            storing.write_json(storing.record_json(folder), record)
            records.append(record)
        self.progress.skip(len(study.seeds) + study.narrow.max_trials)
        self.progress.note(f"narrow sparsity={target:g}: {note}")
        return records

    def _search_and_train(self, target, budget, key, folder, seed_folders, models, training):
        from widthvsprune import narrowing

        study, splits = self.study, self.splits
        search_folder = storing.search_dir(self.root, key)
        storing.write_json(storing.config_json(folder), {**narrow_config(study, budget), "study": study.name})
        first_search = not search_folder.exists()

        def on_trial(number, widths, lr, score, seconds):
            self.progress.line(
                f"narrow sparsity={target:g} trial {number} widths={families.describe_widths(widths)} "
                f"lr={lr:.2g}",
                seconds,
                val_acc=score,
            )

        start = time.perf_counter()
        result = narrowing.search(
            study,
            splits,
            budget,
            directory=folder,
            project_name="search",
            overwrite=self.force and folder not in self.attempted and not first_search,
            on_trial=on_trial,
            verbose=self.verbose,
        )
        self.attempted.add(folder)
        search_seconds = time.perf_counter() - start
        storing.write_json(search_folder / "best.json", result)
        records = []
        for seed, seed_folder in zip(study.seeds, seed_folders):
            if self._done(seed_folder):
                records.append(storing.read_record(seed_folder))
                continue
            label = (
                f"narrow sparsity={target:g} seed={seed} widths="
                f"{families.describe_widths(result['widths'])}"
            )
            self._begin(seed_folder, {**narrow_config(study, budget), "seed": int(seed), "study": study.name,
                                      "widths": result["widths"], "learning_rate": result["learning_rate"]})
            base = {
                **self._common("narrow", seed, label),
                "key": key,
                "widths": families.describe_widths(result["widths"]),
                "target_sparsity": float(target),
                "budget": int(budget),
                "epochs": study.narrow_epochs,
                "learning_rate": result["learning_rate"],
                "tuner_trials": result["trials"],
                "search_seconds": search_seconds,
                "note": result["note"],
            }
            self.attempted.add(seed_folder)
            try:
                model = models.build(
                    study.family, result["widths"], splits.input_shape, splits.num_classes, seed
                )
                history, seconds = training.fit(
                    model,
                    splits,
                    study.baseline,
                    seed,
                    callbacks=self._callbacks(seed_folder),
                    epochs=study.narrow_epochs,
                    learning_rate=result["learning_rate"],
                )
                record = self._finish(seed_folder, model, history, {**base, "train_seconds": seconds})
            except Exception as error:
                records.append(self._fail(seed_folder, base, error))
                continue
            self.result.trained += 1
            self.progress.line(label, seconds, params=record["total_params"], test_acc=record["test_accuracy"])
            records.append(record)
        return records

    # ---- scheduling --------------------------------------------------------------

    def run(self):
        """Trains every missing run; waits for runs that other processes hold."""
        study = self.study
        baselines, pruned, narrow = {}, {}, {}
        while True:
            waiting = False
            for seed in study.seeds:
                if seed not in baselines:
                    record = self.baseline(seed)
                    if record is None:
                        waiting = True
                    else:
                        baselines[seed] = record
            for target in study.sparsities:
                for seed in study.seeds:
                    if (target, seed) in pruned:
                        continue
                    if seed not in baselines:
                        waiting = True
                        continue
                    record = self.pruned(target, seed, baselines[seed])
                    if record is None:
                        waiting = True
                    else:
                        pruned[(target, seed)] = record
            for target in study.sparsities:
                if target in narrow:
                    continue
                records = [pruned.get((target, seed)) for seed in study.seeds]
                if any(r is None for r in records):
                    waiting = True
                    continue
                budget = budget_of(records)
                if budget is None:
                    narrow[target] = []
                    self.progress.note(f"narrow sparsity={target:g}: skipped, no pruned model trained")
                    continue
                got = self.narrow(target, budget)
                if got is None:
                    waiting = True
                else:
                    narrow[target] = got
            if not waiting:
                return self.result
            self.result.deferred += 1
            time.sleep(1.0)  # another process holds a run we need: wait for it


def run_study(study, out="results", force=False, verbose=False, stream=None):
    """Trains every run of ``study`` that is not done yet and writes the tables.

    Args:
        study: a :class:`widthvsprune.Study`.
        out: the results root; the study's folder is ``<out>/<study.name>``.
        force: retrain runs that are already done.
        verbose: show TensorFlow's and KerasTuner's own output.
        stream: where progress lines go (standard output by default).

    Returns:
        A :class:`StudyResult`.

    Raises:
        StudyError: if the study or its data is invalid (before any training).
    """
    from widthvsprune import report

    splits = preflight(study, out)
    from widthvsprune import backend

    backend.configure_devices()
    root = storing.study_dir(out, study.name)
    storing.write_json(storing.study_json(root), study.to_dict())
    progress = Progress(count_trainings(study), stream)
    runner = _Runner(study, out, splits, force, verbose, progress)
    result = runner.run()
    report.write_reports(root, stream=stream)
    return result
