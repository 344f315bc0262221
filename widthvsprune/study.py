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

The runs of a stage (all baselines; all pruned fine-tunes; each round of the
narrow searches; all narrow retrains) are trained packed into one ``fit``
(:func:`widthvsprune.training.fit_packed`), and ``workers`` processes split
each stage between them: a process starts a stage once every run it depends
on is settled, so that each takes an even share in one pack.
"""

import dataclasses
import math
import os
import pathlib
import sys
import time
import traceback
import uuid

from widthvsprune import config as config_module
from widthvsprune import families, storing
from widthvsprune.errors import DataError, ResultsError, StudyError

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
            side = family.min_input_side
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

    def __init__(self, total, stream=None, prefix=""):
        self.total, self.done = total, 0
        self.start = time.perf_counter()
        self.stream = stream or sys.stdout
        self.prefix = prefix

    def skip(self, n=1):
        self.total = max(self.done, self.total - n)

    def line(self, what, seconds=None, **metrics):
        self.done += 1
        elapsed = time.perf_counter() - self.start
        left = max(0, self.total - self.done)
        per = elapsed / self.done if self.done else 0.0
        parts = [f"{self.prefix}[{self.done:>3}/{self.total}] {what}"]
        parts += [f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items()]
        if seconds is not None:
            parts.append(f"{seconds:.1f}s")
        parts.append(f"| elapsed {_clock(elapsed)}, ~{_clock(per * left)} left")
        print("  ".join(parts), file=self.stream, flush=True)

    def note(self, text):
        print(f"{self.prefix}{text}", file=self.stream, flush=True)


# --------------------------------------------------------------------------
# The runner.


@dataclasses.dataclass
class StudyResult:
    """What :func:`run_study` did."""

    root: object
    trained: int = 0  # by this process
    failed: list = dataclasses.field(default_factory=list)
    waits: int = 0
    workers: int = 1  # processes that shared the study (this one and its helpers)


@dataclasses.dataclass
class _Member:
    """One run (one seed) of a group of runs trained together."""

    folder: object
    seed: int
    config: dict
    base: dict
    build: object = None  # member -> un-compiled model (plain or wrapped)
    learning_rate: float = 0.0
    after: object = None  # trained branch -> plain model (strip_pruning)
    prior_seconds: float = 0.0  # training this run builds on (the baseline's)
    target: float = 0.0
    key: object = None  # how the caller finds this member's record
    lock: object = None


class _Runner:
    def __init__(self, study, out, splits, force, verbose, progress, workers=1, session=None):
        self.study, self.splits, self.force, self.verbose = study, splits, force, verbose
        self.workers = workers  # how many processes share the work
        self.session = session or uuid.uuid4().hex  # one `run`: this process and its helpers
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

    def _settled(self, folder, record):
        """A run that failed during this `run` command (here or in a helper) is not tried again by it."""
        return folder in self.attempted or (
            record is not None and record.get("status") == "failed" and record.get("session") == self.session
        )

    def _done(self, folder):
        if folder in self.attempted:
            return True
        record = storing.read_record(folder)
        if self._settled(folder, record):
            return True
        if self.force:
            return False
        return record is not None and record.get("status") == "ok"

    def _fail(self, member, error):
        reason = f"{type(error).__name__}: {error}".strip()
        previous = storing.read_record(member.folder) or {}
        record = {
            **member.base,
            "status": "failed",
            "error": reason.splitlines()[0],
            "attempts": int(previous.get("attempts", 0)) + 1 if previous.get("status") == "failed" else 1,
            "session": self.session,
        }
        if self.verbose:
            record["traceback"] = "".join(traceback.format_exception(error))
        self.attempted.add(member.folder)
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
        """Locks the members nobody else holds and that are not done; returns them.

        With several workers, each claims its share of what is free, so that
        the others find work too.
        """
        held = []
        share = max(1, math.ceil(len(members) / self.workers))
        for member in members:
            if len(held) >= share:
                break
            lock = storing.Lock(member.folder)
            if not lock.acquire(blocking=False):
                continue  # another process trains it
            if self._done(member.folder):
                lock.release()
                self.progress.skip()
                continue
            member.lock = lock
            held.append(member)
        return held

    def _release(self, members):
        for member in members:
            if member.lock is not None:
                member.lock.release()
                member.lock = None

    def _train(self, members, recipe, epochs, callbacks):
        """Trains members together in one packed fit (alone when TensorBoard logs are asked for)."""
        if not members:
            return
        if self.study.tensorboard and len(members) > 1:
            for member in members:
                self._train([member], recipe, epochs, callbacks)
            return
        from widthvsprune import training

        more = f" (+{len(members) - 1} more, trained together)" if len(members) > 1 else ""
        self.progress.note(f"training {members[0].base['label']}{more} ...")
        for member in members:
            self._write_config(member.folder, member.config)
            self.attempted.add(member.folder)
        try:
            branches = [member.build(member) for member in members]
            histories, diverged, seconds = training.fit_packed(
                branches,
                self.splits,
                recipe,
                [m.seed for m in members],
                callbacks(members, branches),
                epochs=epochs,
                learning_rates=[m.learning_rate for m in members],
            )
        except Exception as error:  # recorded for every member; the study goes on
            for member in members:
                self._fail(member, error)
            return
        share = seconds / len(members)
        for i, (member, branch, history) in enumerate(zip(members, branches, histories)):
            if i in diverged:
                self._fail(member, training.diverged_error(history))
                continue
            try:
                model = member.after(branch) if member.after else branch
                extra = {"train_seconds": share + member.prior_seconds, "pack_size": len(members)}
                record = self._finish(member, model, history, extra)
            except Exception as error:
                self._fail(member, error)
                continue
            self.result.trained += 1
            shown = {"sparsity": record["sparsity"]} if record["arm"] == "pruned" else {}
            self.progress.line(
                record["label"], share, **shown, nonzero=record["nonzero_params"],
                val_acc=record["val_accuracy"], test_acc=record["test_accuracy"],
            )

    def _tensorboard(self, members):
        from widthvsprune.backend import keras

        if not self.study.tensorboard:
            return []
        return [keras.callbacks.TensorBoard(log_dir=str(storing.tensorboard_dir(members[0].folder)))]

    def _known(self, members):
        """Records of members done, or failed in this process; busy ones are left out."""
        out = {}
        for member in members:
            record = storing.read_record(member.folder)
            if record is not None and (record.get("status") == "ok" or self._settled(member.folder, record)):
                out[member.key] = record
        return out

    # ---- arms --------------------------------------------------------------------

    def baselines(self, seeds):
        """Trains the missing baselines of ``seeds`` together; returns seed -> record."""
        from widthvsprune import models

        study, splits = self.study, self.splits
        key = baseline_key(study)
        members = []
        for seed in seeds:
            member = _Member(
                storing.seed_dir(self.root, key, seed),
                seed,
                {**baseline_config(study), "seed": int(seed), "study": study.name},
                {
                    **self._common("baseline", seed, f"baseline seed={seed} widths="
                                   f"{families.describe_widths(study.widths)}", key, study.widths, 0.0),
                    "epochs": study.baseline.epochs,
                    "learning_rate": study.baseline.learning_rate,
                },
                build=lambda m: models.build(
                    study.family, study.widths, splits.input_shape, splits.num_classes, m.seed
                ),
                learning_rate=study.baseline.learning_rate,
            )
            member.key = seed
            members.append(member)
        held = self._claim(members)
        try:
            self._train(held, study.baseline, study.baseline.epochs, lambda ms, bs: self._tensorboard(ms))
        finally:
            self._release(held)
        return self._known(members)

    def pruned(self, pairs, baselines):
        """Prunes and fine-tunes, together, the ``(target, seed)`` pairs; returns pair -> record."""
        from widthvsprune import models, pruning, schedules

        study, splits = self.study, self.splits
        steps = schedules.schedule_steps(
            len(splits.x_train), study.finetune.batch_size, study.finetune.epochs,
            study.pruning.frequency, study.pruning.begin_step, study.pruning.end_fraction,
        )

        weights = {}  # each seed's baseline, read once for all its sparsities

        def build(member):
            if member.seed not in weights:
                folder = storing.seed_dir(self.root, baselines[member.seed]["key"], member.seed)
                weights[member.seed] = storing.read_weights(storing.weights_npz(folder))
            model = models.build(study.family, study.widths, splits.input_shape, splits.num_classes, member.seed)
            model.set_weights(weights[member.seed])
            schedule = pruning.make_schedule(member.target, study.pruning, steps)
            return pruning.wrap(model, schedule, study.pruning.prune_output)

        members = []
        for target, seed in pairs:
            key = pruned_key(study, target)
            member = _Member(
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
                build=build,
                learning_rate=study.finetune.learning_rate,
                after=pruning.strip,
                prior_seconds=float(baselines[seed].get("train_seconds", 0.0) or 0.0),
                target=target,
            )
            member.key = (target, seed)
            members.append(member)
        held = self._claim(members)
        try:
            ready = []
            for member in held:
                if baselines[member.seed].get("status") != "ok":
                    self._fail(member, RuntimeError(f"the baseline of seed {member.seed} did not train"))
                else:
                    ready.append(member)

            def callbacks(ms, branches):
                log_dir = storing.tensorboard_dir(ms[0].folder) if study.tensorboard else None
                return pruning.callbacks(
                    study.pruning, [m.target for m in ms], steps, branches, [m.seed for m in ms], log_dir
                )

            self._train(ready, study.finetune, study.finetune.epochs, callbacks)
        finally:
            self._release(held)
        return self._known(members)

    def narrow(self, budgets_by_target):
        """Searches and trains the narrow arm of several size points together.

        Returns target -> records for the points this process finished (or
        found finished); points another process holds are left out.
        """
        from widthvsprune import budgets, narrowing

        study, splits = self.study, self.splits
        smallest = budgets.smallest_params(
            families.get_family(study.family), len(study.widths), splits.input_shape, splits.num_classes
        )
        out, locks, jobs = {}, [], []
        share = max(1, math.ceil(len(budgets_by_target) / self.workers))
        for target, budget in budgets_by_target.items():
            if len(locks) >= share:
                break
            key = narrow_key(study, budget)
            folder = storing.run_dir(self.root, key)
            seed_folders = [storing.seed_dir(self.root, key, s) for s in study.seeds]
            if all(self._done(f) or (storing.read_record(f) or {}).get("status") == "no-narrow-fits"
                   for f in seed_folders):
                self.progress.skip(len(study.seeds) + study.narrow.max_trials)
                out[target] = [storing.read_record(f) for f in seed_folders]
                continue
            lock = storing.Lock(folder)
            if not lock.acquire(blocking=False):
                continue  # another process searches this point
            locks.append(lock)
            if smallest > budget:
                out[target] = self._no_fit(target, budget, key, seed_folders, smallest)
                continue
            storing.write_json(storing.config_json(folder), {**narrow_config(study, budget), "study": study.name})
            fresh = self.force and folder not in self.attempted and storing.search_dir(self.root, key).exists()
            jobs.append(narrowing.SearchJob(int(budget), str(folder), "search", fresh, tag=(target, key)))
        try:
            if jobs:
                self._search_and_train(jobs, out)
        finally:
            for lock in locks:
                lock.release()
        return out

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

    def _search_and_train(self, jobs, out):
        from widthvsprune import models, narrowing

        study, splits = self.study, self.splits
        trials = {}

        def on_trial(tag, number, widths, lr, score, seconds):
            target, _ = tag
            trials[target] = trials.get(target, 0) + 1
            self.progress.line(
                f"narrow sparsity={target:g} trial {number} widths={families.describe_widths(widths)} lr={lr:.2g}",
                seconds,
                val_acc=score,
            )

        start = time.perf_counter()
        results = narrowing.search_many(study, splits, jobs, on_trial=on_trial, verbose=self.verbose)
        search_seconds = (time.perf_counter() - start) / len(jobs)
        members = []
        for job, result in zip(jobs, results):
            target, key = job.tag
            self.attempted.add(pathlib.Path(job.directory))
            self.progress.skip(max(0, study.narrow.max_trials - trials.get(target, 0)))
            storing.write_json(storing.search_dir(self.root, key) / "best.json", result)
            widths = tuple(result["widths"])
            for seed in study.seeds:
                folder = storing.seed_dir(self.root, key, seed)
                if self._done(folder):
                    self.progress.skip()
                    continue
                member = _Member(
                    folder,
                    seed,
                    {**narrow_config(study, job.budget), "seed": int(seed), "study": study.name,
                     "widths": list(widths), "learning_rate": result["learning_rate"]},
                    {
                        **self._common("narrow", seed, f"narrow sparsity={target:g} seed={seed} widths="
                                       f"{families.describe_widths(widths)}", key, widths, target),
                        "budget": int(job.budget),
                        "epochs": study.narrow_epochs,
                        "learning_rate": result["learning_rate"],
                        "tuner_trials": result["trials"],
                        "search_seconds": search_seconds,
                        "note": result["note"],
                    },
                    build=lambda m, w=widths: models.build(
                        study.family, w, splits.input_shape, splits.num_classes, m.seed
                    ),
                    learning_rate=result["learning_rate"],
                    target=target,
                )
                members.append(member)
        self._train(members, study.baseline, study.narrow_epochs, lambda ms, bs: self._tensorboard(ms))
        for job in jobs:
            target, key = job.tag
            out[target] = [storing.read_record(storing.seed_dir(self.root, key, s)) for s in study.seeds]

    # ---- scheduling --------------------------------------------------------------

    def run(self):
        """Trains every missing run, stage by stage; waits for runs other processes hold."""
        study = self.study
        baselines, pruned, narrow = {}, {}, {}
        while True:
            before = (self.result.trained, len(self.result.failed))
            missing = [s for s in study.seeds if s not in baselines]
            if missing:
                baselines.update(self.baselines(missing))
            # A stage starts once every run it depends on is settled, here or in another process: a process
            # that started early would take a small share, then trace a second pack for what is left.
            pairs = [(t, s) for t in study.sparsities for s in study.seeds if (t, s) not in pruned]
            if pairs and len(baselines) == len(study.seeds):
                pruned.update(self.pruned(pairs, baselines))
            ready = {}
            for target in study.sparsities if len(pruned) == len(study.sparsities) * len(study.seeds) else ():
                if target in narrow:
                    continue
                records = [pruned[target, s] for s in study.seeds]
                budget = budget_of(records)
                if budget is None:
                    narrow[target] = []
                    self.progress.skip(len(study.seeds) + study.narrow.max_trials)
                    self.progress.note(f"narrow sparsity={target:g}: skipped, no pruned model trained")
                else:
                    ready[target] = budget
            if ready:
                narrow.update(self.narrow(ready))
            if len(narrow) == len(study.sparsities):
                return self.result
            if (self.result.trained, len(self.result.failed)) == before:
                self.result.waits += 1
                time.sleep(0.25)  # another process holds every run left: wait for it


def _complete(study, root):
    """Whether every run of the study is done (nothing to train)."""
    from widthvsprune import report

    records = report.collect(root, study)
    planned = len(study.seeds) * (1 + 2 * len(study.sparsities))
    return len(records) == planned and all(r.get("status") in ("ok", "no-narrow-fits") for r in records)


def default_workers():
    """Training processes to use: one per CPU core (at most 4); one when a GPU is visible."""
    from widthvsprune import backend

    if backend.configure_devices():
        return 1
    return max(1, min(4, os.cpu_count() or 1))


def _worker(study_dict, study_file, out, verbose, workers, index, session):
    """A helper training process: shares the study with its parent through the run locks."""
    _die_with_parent()
    if verbose:
        os.environ["WIDTHVSPRUNE_VERBOSE"] = "1"
    if study_file:
        config_module.load_study(study_file)  # registers the families the file defines
    study = config_module.study_from_dict(study_dict)
    from widthvsprune import backend, data

    backend.limit_threads(workers)
    splits = data.load(study.dataset, study.validation_fraction, study.data_seed)
    progress = Progress(count_trainings(study), prefix=f"[w{index}]")
    runner = _Runner(study, out, splits, False, verbose, progress, workers, session)
    with backend.single_threaded_blas():
        result = runner.run()
    # Everything is on disk (written atomically); skip TensorFlow's slow interpreter teardown, which the
    # parent would otherwise wait for.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1 if result.failed else 0)


def _die_with_parent():
    """Linux: a helper process gets SIGKILL when its parent dies, however it dies."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def run_study(study, out="results", force=False, verbose=False, stream=None, workers=None, study_file=None):
    """Trains every run of ``study`` that is not done yet and writes the tables.

    Args:
        study: a :class:`widthvsprune.Study`.
        out: the results root; the study's folder is ``<out>/<study.name>``.
        force: retrain runs that are already done.
        verbose: show TensorFlow's and KerasTuner's own output.
        stream: where progress lines go (standard output by default).
        workers: training processes (this one included); ``None`` for
            :func:`default_workers`. Helpers share the work through the run
            locks, exactly as separately started runners do.
        study_file: the study file, so helpers can register the families it
            defines; without it, a study of an unshipped family uses one process.

    Returns:
        A :class:`StudyResult`.

    Raises:
        StudyError: if the study or its data is invalid (before any training).
    """
    from widthvsprune import report

    splits = preflight(study, out)
    from widthvsprune import backend

    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise StudyError(config_module._problem("workers", "an integer >= 1", workers))
    root = storing.study_dir(out, study.name)
    if force or (study_file is None and study.family not in families.SHIPPED) or _complete(study, root):
        workers = 1  # (a finished study needs no helper, which would only import TensorFlow)
    backend.limit_threads(workers)
    storing.write_json(storing.study_json(root), study.to_dict())
    helpers, session = [], uuid.uuid4().hex
    if workers > 1:
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        for index in range(2, workers + 1):
            helper = context.Process(
                target=_worker,
                args=(study.to_dict(), None if study_file is None else str(study_file), str(out), verbose,
                      workers, index, session),
                daemon=True,
            )
            helper.start()
            helpers.append(helper)
    progress = Progress(count_trainings(study), stream, prefix="[w1]" if helpers else "")
    # Each process claims its share of every stage from the start: a helper that is still importing
    # TensorFlow finds its share waiting, and takes over whatever the others leave.
    runner = _Runner(study, out, splits, force, verbose, progress, workers, session)
    try:
        with backend.single_threaded_blas():
            result = runner.run()
    finally:
        for helper in helpers:
            helper.join()
    report.write_reports(root, stream=stream)
    result.workers = 1 + len(helpers)
    result.failed = [r for r in report.collect(root, study) if r.get("status") == "failed"]
    return result
