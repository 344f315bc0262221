"""Scheduling a study's work between processes, stage by stage, under file locks.

A process repeatedly surveys the results folder (:func:`widthvsprune.store.results.survey`),
takes the lowest stage that still has unsettled work (a stage starts once
every run of the earlier stages is settled), claims its share of what nobody
else holds, and does it: runs are trained in packs through the executor
(:class:`~widthvsprune.run.trainer.Trainer`), searches run their trials in
rounds (:class:`~widthvsprune.run.searcher.Searcher`). A process that finds
nothing of that stage to claim runs a search the plan lists ahead
(:attr:`widthvsprune.plan.planner.Plan.ahead`) before it waits.

Which runs share a pack is a function of the plan alone
(:func:`widthvsprune.plan.packs.stage_packs`), the same for every executor and
number of processes, so a run's record does not depend on how the study was
run. A process claims whole packs: the locks of every run of a pack. A pack
of which some runs are recorded (a study interrupted mid-pack) trains again
whole; only its unsettled runs get records. Each search is claimed under the
lock of its folder. One mechanism (:meth:`Runner.claim`) takes the locks, so
several processes (or several ``widthvsprune run`` commands) share a study
and nothing is trained twice. A run that fails is tried once per ``run``
command (its session).
"""

import dataclasses
import math
import time
import uuid

from widthvsprune import arms, store
from widthvsprune.plan import packs
from widthvsprune.run import progress
from widthvsprune.run.progress import Stopwatch
from widthvsprune.run.searcher import Searcher
from widthvsprune.run.trainer import Trainer
from widthvsprune.status import RunStatus
from widthvsprune.store import records, results

POLL_SECONDS = 0.25


@dataclasses.dataclass
class StudyResult:
    """What :func:`widthvsprune.run_study` did.

    Attributes:
        root: the study's results folder.
        trained: models this process trained.
        linked: runs this process recorded without training: the same model as a run of an earlier stage
            (:func:`widthvsprune.plan.planner.twins`).
        failed: records of the runs that failed (all processes).
        workers: processes that shared the study (this one and its helpers).
        timings: where the time went, all processes together: seconds per part (``setup``, ``training``,
            ``compiling``...), the programs compiled (``programs``) and the searches run ahead of their stage
            (``searches ahead``), as ``run -v`` prints them.
    """

    root: object
    trained: int = 0
    linked: int = 0
    failed: list = dataclasses.field(default_factory=list)
    workers: int = 1
    timings: dict = dataclasses.field(default_factory=dict)


class Runner:
    """Trains every unsettled run and search of a study that this process can claim.

    Args:
        study: the study.
        root: its results folder.
        splits: the dataset's splits.
        executor: trains packs (:mod:`widthvsprune.executors`).
        progress: a :class:`widthvsprune.run.progress.Reporter`.
        force: train runs again although they are done (once per process).
        verbose: keep tracebacks in failure records; show KerasTuner's output.
        workers: processes sharing the study (each claims its share of a stage).
        session: the id shared by the processes of one ``run`` command.
        check: called between packs and rounds; raises to stop the study (a
            remembered Ctrl-C, :class:`widthvsprune.run.processes.Interrupts`).
    """

    def __init__(self, study, root, splits, executor, progress, force=False, verbose=False, workers=1, session=None,
                 check=None):
        self.study, self.root, self.splits, self.executor = study, root, splits, executor
        self.check = check or (lambda: None)
        self.progress, self.force, self.verbose, self.workers = progress, force, verbose, workers
        self.session = session or uuid.uuid4().hex
        self.attempted = set()  # run ids and search keys this process trained, searched or failed
        self.cache, self.reported = {}, set()
        self.result = StudyResult(root)
        self.watch = Stopwatch()
        self.trainer, self.searcher = Trainer(self), Searcher(self)

    # ---- what is settled ---------------------------------------------------------

    def settled(self, run, state):
        """Whether ``run`` needs no more work in this ``run`` command."""
        if run.id in self.attempted:
            return True
        if self.force:
            return False
        if state.status == RunStatus.OK:
            return True
        return state.status == RunStatus.FAILED and state.record.get("session") == self.session

    def search_settled(self, search, survey):
        return search.key in self.attempted or (search.key in survey.searches and not self.force)

    def survey(self):
        with self.watch("surveys"):
            survey = results.survey(self.study, self.root, self.settled, self.cache)
        for run in survey.plan.runs:
            state = survey.states[run.id]
            if state.status == RunStatus.INVALID and (run.id, state.problem) not in self.reported:
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

    def packs(self, survey, runs):
        """The packs holding ``runs`` (unsettled runs of one stage): every run of that stage cut into packs by
        :func:`widthvsprune.plan.packs.stage_packs`, settled ones included."""
        if not runs:
            return []
        n_train, stage, wanted = len(self.splits.x_train), runs[0].stage, {r.id for r in runs}
        twins = survey.plan.twins  # not trained: recorded from their earlier twin (Trainer.link)
        stage_packs = packs.stage_packs([r for r in survey.plan.runs if r.stage == stage and r.id not in twins],
                                        lambda run: arms.get(run.arm).fit(self.study, n_train))
        return [p for p in stage_packs if any(r.id in wanted for r in p)]

    def left(self, survey):
        """Models still to train in the whole study (an upper bound: search trials included)."""
        return survey.plan.left(lambda r: self.settled(r, survey.states[r.id]),
                                lambda s: s.trials if self.search_settled(s, survey)
                                else survey.trials_done.get(s.key, 0))

    def never_trained(self, survey):
        """Of the study's most trainings (``plan.max_trainings``), those that will never train: the models of size
        points an arm skips and the trials of settled searches that stopped short."""
        plan = survey.plan
        skipped = sum(arms.get(arm).per_point(self.study) for arm, _ in plan.skipped)
        short = sum(max(0, s.trials - int(survey.searches.get(s.key, {}).get("trials", 0) or 0))
                    for s in plan.searches if s.trials and self.search_settled(s, survey))
        return skipped + short

    # ---- the loop ----------------------------------------------------------------

    def run(self):
        """Works until every run and search of the study is settled; waits for work other processes hold."""
        try:
            return self._loop()
        except Exception:
            self.check()  # a Ctrl-C that a library turned into an error of its own stops the study as one
            raise

    def _loop(self):
        while True:
            self.check()
            survey = self.survey()
            self.progress.remaining(self.left(survey), survey.plan.max_trainings, self.never_trained(survey))
            work = self.pending(survey)
            if work is None:
                return self.result
            runs, searches = work
            twins = [r for r in runs if r.id in survey.plan.twins]
            held_twins = self.claim(twins, lambda r: self._run_folders((r,)), self.run_settled)
            if held_twins:
                self._release_after(held_twins, self.trainer.link, survey)
            runs = [r for r in runs if r.id not in survey.plan.twins]
            held_runs = self.claim(self.packs(survey, runs), self._run_folders, self._pack_settled)
            if held_runs:
                self._release_after(held_runs, self.trainer.train, survey)
            held_searches = self.claim(searches, self._search_folders, self._search_settled)
            if held_searches:
                self._release_after(held_searches, self.searcher.search, survey)
            if not held_twins and not held_runs and not held_searches and not self.run_ahead(survey):
                with self.watch("waiting"):
                    time.sleep(POLL_SECONDS)  # another process holds all that is left of this stage

    def run_ahead(self, survey):
        """Runs one search of ``survey.plan.ahead`` that nobody holds (a process that would otherwise wait for
        the others); returns whether it did.

        Its key holds the guessed budget: the plan names the same search once the guess is known to hold, and
        its result is then found. Never with ``force`` (each process would search it again).
        """
        if self.force:
            return False
        planned = {s.key for s in survey.plan.searches}
        candidates = [s for s in survey.plan.ahead if s.key not in planned and s.key not in self.attempted]
        held = self.claim(candidates, self._search_folders, self._search_settled, share=1)
        for search, _ in held:
            self.progress.note(f"{search.label}: searched ahead, at the budget its pruned runs are expected to give "
                               f"({search.budget:,} nonzeros), while the others train")
            self.watch.add(progress.AHEAD, 1)
        if held:
            self._release_after(held, self.searcher.search, survey)
        return bool(held)

    def claim(self, items, folders_of, settled_now, share=None):
        """Locks this process's share of ``items`` that nobody else holds and that are still unsettled.

        An item (a pack of runs, a search) is held with the locks of all of
        its folders, or not at all.

        Args:
            items: packs or searches.
            folders_of: ``f(item) -> [folder, ...]``, the folders to lock.
            settled_now: ``f(item) -> bool``, read again once the locks are held.
            share: the most items to hold (by default a worker's share of ``items``).

        Returns:
            ``[(item, locks), ...]``. With several workers each claims a share
            of what is free, so that the others find work too.
        """
        held = []
        share = max(1, math.ceil(len(items) / self.workers)) if share is None else share
        for item in items:
            if len(held) >= share:
                break
            locks = []
            for folder in folders_of(item):
                lock = store.Lock(folder)
                if not lock.acquire(blocking=False):
                    break  # another process holds it
                locks.append(lock)
            else:
                if not settled_now(item):
                    held.append((item, locks))
                    continue
            for lock in locks:
                lock.release()
        return held

    @staticmethod
    def _release_after(held, work, *args):
        try:
            work([item for item, _ in held], *args)
        finally:
            for _, locks in held:
                for lock in locks:
                    lock.release()

    def _search_folders(self, search):
        return [store.run_dir(self.root, search.key)]

    def _run_folders(self, pack):
        return [store.seed_dir(self.root, run.key, run.seed) for run in pack]

    def _pack_settled(self, pack):
        return all(self.run_settled(run) for run in pack)

    def run_settled(self, run):
        folder = store.seed_dir(self.root, run.key, run.seed)
        return self.settled(run, records.read_run(folder, results.run_config(self.study, run)))

    def _search_settled(self, search):
        result, _ = records.read_search(self.root, search.key)
        return search.key in self.attempted or (result is not None and not self.force)

    def train_packs(self, packs):
        """Trains packs through the executor; returns ``(outcomes per pack, seconds)``, timing training and
        compilation apart.

        A Ctrl-C while they trained stops the study here, before any outcome is
        recorded: a model whose build or training it cut short (a library may
        turn the interruption into an error of its own) never becomes a failure
        record or a trial's score.
        """
        engine = self.executor.engine
        compiled = engine.compile_seconds if engine is not None else 0.0
        programs = engine.programs_compiled if engine is not None else 0
        start = time.perf_counter()
        outcomes = self.executor.train(packs, self.splits)
        self.check()
        seconds = time.perf_counter() - start
        compiled = (engine.compile_seconds if engine is not None else 0.0) - compiled
        self.watch.add(progress.PROGRAMS, (engine.programs_compiled if engine is not None else 0) - programs)
        self.watch.add("compiling", compiled)
        self.watch.add("training", seconds - compiled)
        self.progress.compiled(compiled)
        return outcomes, seconds
