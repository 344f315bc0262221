"""Scheduling a study's work between processes, stage by stage, under file locks.

A process repeatedly surveys the results folder (:func:`widthvsprune.results.survey`),
takes the lowest stage that still has unsettled work (a stage starts once
every run of the earlier stages is settled, so that each process takes an
even share in one pack), claims its share of what nobody else holds, and
does it: runs are trained in packs through the engine, searches run their
trials in rounds. Each run and search is claimed under an OS file lock on its
folder, with one mechanism (:meth:`Runner.claim`), so several processes (or
several ``widthvsprune run`` commands) share a study and nothing is trained
twice. A run that fails is tried once per ``run`` command (its session).
"""

import dataclasses
import math
import time
import uuid

from widthvsprune import executors, records, results, storing, tuning
from widthvsprune.running import arms, searches
from widthvsprune.storing import DiskFullError

POLL_SECONDS = 0.25


@dataclasses.dataclass
class StudyResult:
    """What :func:`widthvsprune.run_study` did.

    Attributes:
        root: the study's results folder.
        trained: models this process trained.
        failed: records of the runs that failed (all processes).
        workers: processes that shared the study (this one and its helpers).
    """

    root: object
    trained: int = 0
    failed: list = dataclasses.field(default_factory=list)
    workers: int = 1


class Runner:
    """Trains every unsettled run and search of a study that this process can claim.

    Args:
        study: the study.
        root: its results folder.
        splits: the dataset's splits.
        executor: trains packs (:mod:`widthvsprune.executors`).
        progress: a :class:`widthvsprune.running.progress.Progress`.
        force: train runs again although they are done (once per process).
        verbose: keep tracebacks in failure records; show KerasTuner's output.
        workers: processes sharing the study (each claims its share of a stage).
        session: the id shared by the processes of one ``run`` command.
        check: called between packs and rounds; raises to stop the study (a
            remembered Ctrl-C, :class:`widthvsprune.running.processes.Interrupts`).
    """

    def __init__(self, study, root, splits, executor, progress, force=False, verbose=False, workers=1, session=None,
                 check=None):
        self.study, self.root, self.splits, self.executor = study, root, splits, executor
        self.check = check or (lambda: None)
        self.progress, self.force, self.verbose, self.workers = progress, force, verbose, workers
        self.session = session or uuid.uuid4().hex
        self.attempted = set()  # run ids and search keys this process trained, searched or failed
        self.cache, self.reported = {}, set()
        self.baseline_weights = {}
        self.result = StudyResult(root)

    # ---- what is settled ---------------------------------------------------------

    def settled(self, run, state):
        """Whether ``run`` needs no more work in this ``run`` command."""
        if run.id in self.attempted:
            return True
        if self.force:
            return False
        if state.status == "ok":
            return True
        return state.status == "failed" and state.record.get("session") == self.session

    def search_settled(self, search, survey):
        return search.key in self.attempted or (search.key in survey.searches and not self.force)

    def survey(self):
        survey = results.survey(self.study, self.root, self.settled, self.cache)
        for run in survey.plan.runs:
            state = survey.states[run.id]
            if state.status == "invalid" and (run.id, state.problem) not in self.reported:
                self.reported.add((run.id, state.problem))
                self.progress.note(f"{run.label}: {state.problem}; it is trained again")
        for key, problem in survey.search_problems.items():
            if (key, problem) not in self.reported:
                self.reported.add((key, problem))
                self.progress.note(f"search {key}: {problem}; it runs again")
        return survey

    def pending(self, survey):
        """``(runs, searches)`` of the lowest stage with unsettled work, or ``None`` when all is settled."""
        runs = [r for r in survey.plan.runs if not self.settled(r, survey.states[r.id])]
        searches = [s for s in survey.plan.searches if not self.search_settled(s, survey)]
        stages = [r.stage for r in runs] + [s.stage for s in searches]
        if not stages:
            return None
        stage = min(stages)
        return [r for r in runs if r.stage == stage], [s for s in searches if s.stage == stage]

    def left(self, survey):
        """Models still to train in the whole study (an upper bound: search trials included)."""
        plan = survey.plan
        done = sum(self.settled(r, survey.states[r.id]) for r in plan.runs)
        done += sum(s.trials for s in plan.searches if self.search_settled(s, survey))
        per_point = len(self.study.seeds) * (2 if self.study.tuning.controls else 1) + self.study.tuning.trials
        done += per_point * len(plan.skipped)
        return plan.max_trainings - done

    # ---- the loop ----------------------------------------------------------------

    def run(self):
        """Works until every run and search of the study is settled; waits for work other processes hold."""
        while True:
            self.check()
            survey = self.survey()
            self.progress.remaining(self.left(survey))
            work = self.pending(survey)
            if work is None:
                return self.result
            runs, searches = work
            held_runs = self.claim(runs, lambda r: storing.seed_dir(self.root, r.key, r.seed), self._run_settled)
            if held_runs:
                self._release_after(held_runs, self.train, survey)
            held_searches = self.claim(searches, lambda s: storing.run_dir(self.root, s.key), self._search_settled)
            if held_searches:
                self._release_after(held_searches, self.search, survey)
            if not held_runs and not held_searches:
                time.sleep(POLL_SECONDS)  # another process holds all that is left of this stage

    def claim(self, items, folder_of, settled_now):
        """Locks this process's share of ``items`` that nobody else holds and that are still unsettled.

        Returns ``[(item, lock), ...]``. With several workers each claims a
        share of what is free, so that the others find work too.
        """
        held, share = [], max(1, math.ceil(len(items) / self.workers))
        for item in items:
            if len(held) >= share:
                break
            lock = storing.Lock(folder_of(item))
            if not lock.acquire(blocking=False):
                continue  # another process holds it
            if settled_now(item):
                lock.release()
                continue
            held.append((item, lock))
        return held

    @staticmethod
    def _release_after(held, work, *args):
        try:
            work([item for item, _ in held], *args)
        finally:
            for _, lock in held:
                lock.release()

    def _run_settled(self, run):
        folder = storing.seed_dir(self.root, run.key, run.seed)
        return self.settled(run, records.read_run(folder, results.run_config(self.study, run)))

    def _search_settled(self, search):
        result, _ = records.read_search(self.root, search.key)
        return search.key in self.attempted or (result is not None and not self.force)

    # ---- runs --------------------------------------------------------------------

    def train(self, runs, survey):
        """Trains ``runs`` in one pack per recipe and records each."""
        groups = {}
        for run in runs:
            groups.setdefault(arms.recipe_of(self.study, run.arm, len(self.splits.x_train)), []).append(run)
        for recipe, group in groups.items():
            self.check()
            self._train_group(recipe, group, survey)

    def _train_group(self, recipe, group, survey):
        ready, specs, bases = [], [], {}
        for run in group:
            folder = storing.seed_dir(self.root, run.key, run.seed)
            storing.write_json(storing.config_json(folder), results.run_config(self.study, run))
            self.attempted.add(run.id)
            weights, base = None, None
            if run.needs:
                base = survey.states[run.needs[0]]
                if not base.done:
                    self._fail(run, f"the baseline of seed {run.seed} did not train", survey)
                    continue
                weights = self._weights(run.needs[0])
            log_dir = storing.tensorboard_dir(folder) if self.study.tensorboard else None
            specs.append(arms.model_spec(self.study, run, self.splits, weights, base and base.record, log_dir))
            ready.append(run)
            bases[run.id] = base.record if base else None
        if not ready:
            return
        more = f" (+{len(ready) - 1} more, trained together)" if len(ready) > 1 else ""
        self.progress.note(f"training {ready[0].label}{more} ...")
        try:
            parts = executors.split(arms.pack(recipe, specs), self.executor.slots)
            outcomes = [o for group in self.executor.train(parts, self.splits) for o in group]
        except DiskFullError:
            raise
        except Exception as error:  # recorded for every run of the pack; the study goes on
            for run in ready:
                self._fail(run, error, survey)
            return
        for run, spec, outcome in zip(ready, specs, outcomes):
            if not outcome.ok:
                self._fail(run, outcome.error, survey)
                continue
            folder, base = storing.seed_dir(self.root, run.key, run.seed), bases[run.id]
            try:
                record = arms.write_done(folder, self.study, run, spec, outcome, self.splits,
                                         float(base.get("train_seconds") or 0.0) if base else 0.0,
                                         survey.searches.get(run.search), base)
            except DiskFullError:
                raise
            except Exception as error:
                self._fail(run, error, survey)
                continue
            self.result.trained += 1
            shown = {"sparsity": record["sparsity"]} if run.arm == "pruned" else {}
            shown.update(nonzero=record["nonzero_params"], val_acc=record["val_accuracy"],
                         test_acc=record["test_accuracy"])
            if outcome.where:
                shown["on"] = outcome.where
            self.progress.line(run.label, outcome.seconds, **shown)

    def _weights(self, run_id):
        if run_id not in self.baseline_weights:
            key, seed = run_id
            self.baseline_weights[run_id] = storing.read_weights(storing.weights_npz(storing.seed_dir(self.root, key,
                                                                                                    seed)))
        return self.baseline_weights[run_id]

    def _fail(self, run, error, survey):
        folder = storing.seed_dir(self.root, run.key, run.seed)
        self.attempted.add(run.id)
        record = arms.write_failed(folder, self.study, run, error, survey.states[run.id].record, self.session,
                                   self.verbose)
        self.result.failed.append(record)
        self.progress.line(f"FAILED {run.label}", error=record["error"])

    # ---- searches ----------------------------------------------------------------

    def search(self, claimed, survey):
        """Runs (or resumes) the claimed searches side by side and writes their results."""
        study, splits, jobs, contexts = self.study, self.splits, [], []
        for search in claimed:
            self.attempted.add(search.key)
            storing.write_json(storing.config_json(storing.run_dir(self.root, search.key)),
                               {**search.config, "study": study.name})
            done, count = None, self.executor.count_params
            if search.arm == "narrow":
                done = searches.no_fit(study, search, splits, count)
                if done is None and search.tuning == "untuned":
                    done = searches.untuned_narrow(study, search, splits, count)
            if done is not None:
                storing.write_json(storing.search_result_json(self.root, search.key), done)
                if done["status"] != "ok":
                    self.progress.note(f"narrow sparsity={search.target:g}: {done['note']}")
                continue
            context = searches.Context(search, count=count)
            if search.arm == "pruned":
                bases = {name: survey.states[need] for name, need in search.baselines.items()}
                if not all(base.done for base in bases.values()):
                    self.progress.note(f"{search.label}: skipped, its baselines (seed {study.search_seed}) did not "
                                       "train")
                    continue
                weights = {name: self._weights(need) for name, need in search.baselines.items()}
                context = searches.Context(search, weights, bases["tuned"].record, count)
            directory = storing.search_dir(self.root, search.key)
            contexts.append(context)
            jobs.append(tuning.SearchJob(str(directory), searches.space(study, search, context.baseline_record and
                                                                        arms.kernel_sizes(context.baseline_record)),
                                         study.tuning.oracle, study.tuning.trials, seed=study.search_seed,
                                         overwrite=self.force and directory.exists(), tag=search))
        if not jobs:
            return

        def train(proposals):
            self.check()
            return searches.train_trials(study, splits, self.executor, contexts, proposals)

        def on_trial(job, number, values, score, info):
            shown = " ".join(f"{k}={v}" for k, v in _shown(values, info).items())
            where = {"on": info["where"]} if info.get("where") else {}
            self.progress.line(f"{job.tag.label} trial {number} {shown}", info["seconds"], val_acc=score, **where)

        def on_reset(job, problem):
            self.progress.note(f"{job.tag.label}: {problem}; the search starts over")

        found = tuning.search_many(jobs, train, on_trial, on_reset, self.verbose)
        for job, result in zip(jobs, found):
            storing.write_json(storing.search_result_json(self.root, job.tag.key),
                               searches.result(study, job.tag, result, splits, self.executor.count_params))


def _shown(values, info):
    """What a search trial's progress line shows."""
    out = {}
    if "widths" in info:
        out["widths"] = "x".join(map(str, info["widths"]))
    out["lr"] = f"{values['learning_rate']:.2g}"
    if "end_fraction" in values:
        out.update(end=f"{values['end_fraction']:.2f}", freq=values["frequency"], variant=info.get("variant"),
                   output=values["output"], baseline=values.get("baseline"))
    return out
