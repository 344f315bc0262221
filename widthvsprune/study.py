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
    failed: list = dataclasses.field(default_factory=list)
    waits: int = 0


@dataclasses.dataclass
class _Member:
    """One run of a group trained together (one seed)."""

    folder: object
    seed: int
    config: dict
    base: dict
    lock: object = None


class _Runner:
    def __init__(self, study, out, splits, force, verbose, progress):
        self.study, self.splits, self.force, self.verbose = study, splits, force, verbose
        self.root = storing.study_dir(out, study.name)
        self.progress = progress
        self.attempted = set()  # folders trained (or failed) by this process
        self.result = StudyResult(self.root)

    # ---- records -----------------------------------------------------------------

    def _write_config(self, folder, run_config):
        """Writes the run's config.json, refusing a different one under the same key."""
        path = storing.config_json(folder)
        if path.exists() and not self.force:
            try:
                old = storing.read_json(path)
            except (OSError, ValueError):
                old = None  # a torn file from a crash: rewrite it
            if old is not None and old != run_config:
                raise ResultsError(
                    f"run: Expected the configuration stored in {path} to match the study. "
                    "Received: a different configuration under the same key; use --force to redo it"
                )
        storing.write_json(path, run_config)

    def _done(self, folder):
        if folder in self.attempted:
            return True
        if self.force:
            return False
        return storing.is_done(folder)

    def _fail(self, member, error):
        reason = f"{type(error).__name__}: {error}".strip()
        previous = storing.read_record(member.folder) or {}
        record = {
            **member.base,
            "status": "failed",
            "error": reason.splitlines()[0],
            "attempts": int(previous.get("attempts", 0)) + 1 if previous.get("status") == "failed" else 1,
        }
        if self.verbose:
            record["traceback"] = "".join(traceback.format_exception(error))
        storing.write_json(storing.record_json(member.folder), record)
        self.result.failed.append(record)
        self.progress.line(f"FAILED {record.get('label', '')}", error=record["error"])
        return record

    def _common(self, arm, seed, label, key, widths, target):
        return {
            "study": self.study.name,
            "arm": arm,
            "family": self.study.family,
            "dataset": self.study.dataset,
            "seed": int(seed),
            "label": label,
            "key": key,
            "widths": families.describe_widths(widths),
            "target_sparsity": float(target),
            "pruning": self.study.pruning.variant if arm == "pruned" else "",
        }

    def _finish(self, member, model, history, extra):
        """Evaluates, measures and saves a trained plain model; writes the record last."""
        import pandas as pd

        from widthvsprune import measuring, models, training

        prune_output = member.base["arm"] != "pruned" or self.study.pruning.prune_output
        test_loss, test_acc = training.evaluate(model, self.splits.x_test, self.splits.y_test)
        _, val_acc = training.evaluate(model, self.splits.x_val, self.splits.y_val)
        layers = models.layer_weights(model, prune_output)
        sizes = measuring.summarize(layers, extra_params=models.other_params(model))
        if member.base["arm"] != "pruned":
            # A dense model stores and computes every parameter, zero or not.
            sizes.update(nonzero_params=sizes["total_params"], nonzero_flops=sizes["flops"])
        storing.write_csv(storing.history_csv(member.folder), pd.DataFrame(history))
        storing.write_weights(storing.weights_npz(member.folder), model.get_weights())
        record = {
            **member.base,
            **extra,
            **sizes,
            "status": "ok",
            "test_accuracy": test_acc,
            "test_loss": test_loss,
            "val_accuracy": val_acc,
            "layers": measuring.layer_counts(layers),
        }
        storing.write_json(storing.record_json(member.folder), record)
        return record

    # ---- groups ------------------------------------------------------------------

    def _claim(self, members):
        """Locks the members nobody else holds; returns ``(held, busy)``.

        Members already done are dropped (their lock is released at once).
        """
        held, busy = [], []
        for member in members:
            lock = storing.Lock(member.folder)
            if not lock.acquire(blocking=False):
                busy.append(member)
                continue
            if self._done(member.folder):
                lock.release()
                self.progress.skip()
                continue
            member.lock = lock
            held.append(member)
        return held, busy

    def _train(self, members, build, recipe, epochs, learning_rate, callbacks, after=None, extra=None):
        """Trains members together (alone when TensorBoard logs are asked for)."""
        if not members:
            return []
        if self.study.tensorboard and len(members) > 1:
            return [r for m in members for r in self._train([m], build, recipe, epochs, learning_rate,
                                                            callbacks, after, extra)]
        from widthvsprune import training

        records = []
        for member in members:
            self._write_config(member.folder, member.config)
            self.attempted.add(member.folder)
        try:
            branches = [build(member) for member in members]
            histories, diverged, seconds = training.fit_packed(
                branches,
                self.splits,
                recipe,
                [m.seed for m in members],
                callbacks(members, branches),
                epochs=epochs,
                learning_rates=[learning_rate] * len(members),
            )
        except Exception as error:  # recorded for every member; the study goes on
            return [self._fail(member, error) for member in members]
        share = seconds / len(members)
        for i, (member, branch, history) in enumerate(zip(members, branches, histories)):
            if i in diverged:
                records.append(self._fail(member, training.diverged_error(history)))
                continue
            try:
                model = after(branch) if after else branch
                record = self._finish(member, model, history, {
                    "train_seconds": share + (extra(member)["train_seconds"] if extra else 0.0),
                    "pack_size": len(members),
                })
            except Exception as error:
                records.append(self._fail(member, error))
                continue
            self.result.trained += 1
            shown = {"sparsity": record["sparsity"]} if record["arm"] == "pruned" else {}
            self.progress.line(
                record["label"], share, **shown, nonzero=record["nonzero_params"],
                val_acc=record["val_accuracy"], test_acc=record["test_accuracy"],
            )
            records.append(record)
        return records

    def _tensorboard(self, members):
        from widthvsprune.backend import keras

        if not self.study.tensorboard:
            return []
        return [keras.callbacks.TensorBoard(log_dir=str(storing.tensorboard_dir(members[0].folder)))]

    def _release(self, members):
        for member in members:
            if member.lock is not None:
                member.lock.release()
                member.lock = None

    # ---- arms --------------------------------------------------------------------

    def baselines(self, seeds):
        """Trains the missing baselines of ``seeds``; returns the records now known."""
        from widthvsprune import models

        study, splits = self.study, self.splits
        key = baseline_key(study)
        members = [
            _Member(
                storing.seed_dir(self.root, key, seed),
                seed,
                {**baseline_config(study), "seed": int(seed), "study": study.name},
                {
                    **self._common("baseline", seed, f"baseline seed={seed} widths="
                                   f"{families.describe_widths(study.widths)}", key, study.widths, 0.0),
                    "epochs": study.baseline.epochs,
                    "learning_rate": study.baseline.learning_rate,
                },
            )
            for seed in seeds
        ]
        held, _ = self._claim(members)
        try:
            self._train(
                held,
                lambda m: models.build(study.family, study.widths, splits.input_shape, splits.num_classes, m.seed),
                study.baseline,
                study.baseline.epochs,
                study.baseline.learning_rate,
                lambda ms, branches: self._tensorboard(ms),
            )
        finally:
            self._release(held)
        return self._known(members)

    def _known(self, members):
        """Records of members that are done or failed in this process (None: still busy)."""
        out = {}
        for member in members:
            record = storing.read_record(member.folder)
            if record is not None and (record.get("status") == "ok" or member.folder in self.attempted):
                out[member.seed] = record
        return out

    def pruned(self, target, baselines):
        """Prunes and fine-tunes the baselines of ``baselines`` (seed -> record) to ``target``."""
        from widthvsprune import models, pruning, schedules

        study, splits = self.study, self.splits
        key = pruned_key(study, target)
        steps = schedules.schedule_steps(
            len(splits.x_train), study.finetune.batch_size, study.finetune.epochs,
            study.pruning.frequency, study.pruning.begin_step, study.pruning.end_fraction,
        )
        members = [
            _Member(
                storing.seed_dir(self.root, key, seed),
                seed,
                {**pruned_config(study, target), "seed": int(seed), "study": study.name},
                {
                    **self._common("pruned", seed, f"pruned sparsity={target:g} seed={seed} "
                                   f"({study.pruning.variant})", key, study.widths, target),
                    "epochs": study.baseline.epochs + study.finetune.epochs,
                    "learning_rate": study.finetune.learning_rate,
                    "prune_output": study.pruning.prune_output,
                    "schedule": dataclasses.asdict(steps),
                },
            )
            for seed in baselines
        ]
        held, _ = self._claim(members)
        try:
            ready = []
            for member in held:
                record = baselines[member.seed]
                if record.get("status") != "ok":
                    self.attempted.add(member.folder)
                    self._fail(member, RuntimeError(f"the baseline of seed {member.seed} did not train"))
                else:
                    ready.append(member)

            def build(member):
                model = models.build(study.family, study.widths, splits.input_shape, splits.num_classes, member.seed)
                weights = storing.weights_npz(storing.seed_dir(self.root, baselines[member.seed]["key"], member.seed))
                model.set_weights(storing.read_weights(weights))
                schedule = pruning.make_schedule(target, study.pruning, steps)
                return pruning.wrap(model, schedule, study.pruning.prune_output)

            def callbacks(ms, branches):
                log_dir = storing.tensorboard_dir(ms[0].folder) if study.tensorboard else None
                return pruning.callbacks(study.pruning, target, steps, branches, [m.seed for m in ms], log_dir)

            self._train(
                ready, build, study.finetune, study.finetune.epochs, study.finetune.learning_rate, callbacks,
                after=pruning.strip,
                extra=lambda m: {"train_seconds": baselines[m.seed].get("train_seconds", 0.0)},
            )
        finally:
            self._release(held)
        return self._known(members)

    def narrow(self, target, budget):
        """The search for one budget, then one model per seed; None while another process holds it."""
        from widthvsprune import budgets

        study, splits = self.study, self.splits
        key = narrow_key(study, budget)
        folder = storing.run_dir(self.root, key)
        seed_folders = [storing.seed_dir(self.root, key, s) for s in study.seeds]
        if all(self._done(f) or (storing.read_record(f) or {}).get("status") == "no-narrow-fits"
               for f in seed_folders):
            self.progress.skip(len(study.seeds) + study.narrow.max_trials)
            return [storing.read_record(f) for f in seed_folders]
        lock = storing.Lock(folder)
        if not lock.acquire(blocking=False):
            return None
        try:
            smallest = budgets.smallest_params(
                families.get_family(study.family), len(study.widths), splits.input_shape, splits.num_classes
            )
            if smallest > budget:
                return self._no_fit(target, budget, key, seed_folders, smallest)
            return self._search_and_train(target, budget, key, folder)
        finally:
            lock.release()

    def _no_fit(self, target, budget, key, seed_folders, smallest):
        study, records = self.study, []
        note = (
            f"no-narrow-fits: the smallest {study.family} (every width 1) has {smallest} "
            f"parameters, more than the budget of {budget}"
        )
        for seed, folder in zip(study.seeds, seed_folders):
            self._write_config(folder, {**narrow_config(study, budget), "seed": int(seed), "study": study.name})
            record = {
                **self._common("narrow", seed, f"narrow sparsity={target:g}", key, (), target),
                "status": "no-narrow-fits",
                "budget": int(budget),
                "note": note,
            }
            storing.write_json(storing.record_json(folder), record)
            records.append(record)
        self.progress.skip(len(study.seeds) + study.narrow.max_trials)
        self.progress.note(f"narrow sparsity={target:g}: {note}")
        return records

    def _search_and_train(self, target, budget, key, folder):
        from widthvsprune import models, narrowing

        study, splits = self.study, self.splits
        search_folder = storing.search_dir(self.root, key)
        storing.write_json(storing.config_json(folder), {**narrow_config(study, budget), "study": study.name})
        fresh_force = self.force and folder not in self.attempted and search_folder.exists()
        trials = []

        def on_trial(number, widths, lr, score, seconds):
            trials.append(number)
            self.progress.line(
                f"narrow sparsity={target:g} trial {number} widths={families.describe_widths(widths)} lr={lr:.2g}",
                seconds,
                val_acc=score,
            )

        start = time.perf_counter()
        result = narrowing.search(
            study, splits, budget, directory=folder, project_name="search",
            overwrite=fresh_force, on_trial=on_trial, verbose=self.verbose,
        )
        self.attempted.add(folder)
        self.progress.skip(max(0, study.narrow.max_trials - len(trials)))
        search_seconds = time.perf_counter() - start
        storing.write_json(search_folder / "best.json", result)
        widths = tuple(result["widths"])
        members = []
        for seed in study.seeds:
            seed_folder = storing.seed_dir(self.root, key, seed)
            if self._done(seed_folder):
                self.progress.skip()
                continue
            members.append(_Member(
                seed_folder,
                seed,
                {**narrow_config(study, budget), "seed": int(seed), "study": study.name,
                 "widths": list(widths), "learning_rate": result["learning_rate"]},
                {
                    **self._common("narrow", seed, f"narrow sparsity={target:g} seed={seed} widths="
                                   f"{families.describe_widths(widths)}", key, widths, target),
                    "budget": int(budget),
                    "epochs": study.narrow_epochs,
                    "learning_rate": result["learning_rate"],
                    "tuner_trials": result["trials"],
                    "search_seconds": search_seconds,
                    "note": result["note"],
                },
            ))
        self._train(
            members,
            lambda m: models.build(study.family, widths, splits.input_shape, splits.num_classes, m.seed),
            study.baseline,
            study.narrow_epochs,
            result["learning_rate"],
            lambda ms, branches: self._tensorboard(ms),
        )
        return [storing.read_record(f) for f in (storing.seed_dir(self.root, key, s) for s in study.seeds)]

    # ---- scheduling --------------------------------------------------------------

    def run(self):
        """Trains every missing run; waits for runs that other processes hold."""
        study = self.study
        baselines, pruned, narrow = {}, {}, {}
        while True:
            waiting = False
            missing = [s for s in study.seeds if s not in baselines]
            if missing:
                baselines.update(self.baselines(missing))
                waiting |= any(s not in baselines for s in study.seeds)
            for target in study.sparsities:
                have = pruned.setdefault(target, {})
                todo = {s: baselines[s] for s in baselines if s not in have}
                if todo:
                    have.update(self.pruned(target, todo))
                waiting |= len(have) < len(study.seeds)
            for target in study.sparsities:
                if target in narrow:
                    continue
                if len(pruned[target]) < len(study.seeds):
                    waiting = True
                    continue
                budget = budget_of(list(pruned[target].values()))
                if budget is None:
                    narrow[target] = []
                    self.progress.skip(len(study.seeds) + study.narrow.max_trials)
                    self.progress.note(f"narrow sparsity={target:g}: skipped, no pruned model trained")
                    continue
                got = self.narrow(target, budget)
                if got is None:
                    waiting = True
                else:
                    narrow[target] = got
            if not waiting:
                return self.result
            self.result.waits += 1
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
