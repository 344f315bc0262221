"""Running searches: every arm's search has the same oracle and number of trials, and trials train in packs.

A search scores a trial on validation accuracy and trains it with the
study's search seed, which is never an evaluation seed. What a search tunes
and how a trial becomes a model is its arm's
(:meth:`widthvsprune.arms.base.Arm.space` and :meth:`~widthvsprune.arms.base.Arm.trial`);
the oracles are driven side by side (:func:`widthvsprune.run.tuning.search_many`),
and each search's trials of one round train in a pack of their own (per fit,
at most :data:`~widthvsprune.plan.packs.PACK_MODELS` trials, in trial
order), so a trial's score does not depend on which other searches a process
runs beside it; the packs of a round go to the executor together. A search
that needs no trials (the narrow control, or a size point where not even the
smallest model fits) is settled by its arm
(:meth:`~widthvsprune.arms.base.Arm.settle`).
"""

import dataclasses
import time

from widthvsprune import arms, store
from widthvsprune.plan import packs as plan_packs
from widthvsprune.run import rescoring, tuning
from widthvsprune.status import SearchStatus


@dataclasses.dataclass
class Session:
    """What an arm's :meth:`~widthvsprune.arms.base.Arm.context` may ask of the running study."""

    survey: object
    trainer: object
    count: object
    progress: object

    def state(self, run_id):
        return self.survey.states[run_id]

    def weights(self, run_id):
        return self.trainer.weights(run_id)

    def note(self, text):
        self.progress.note(text)


def train_trials(study, splits, runner, contexts, proposals):
    """Trains proposals (:class:`widthvsprune.run.tuning.Proposal`): each job's in packs of their own, per fit.

    A job's proposals of one fit, in the order given (trial order), are cut
    into packs by :func:`widthvsprune.plan.packs.chunks`; every pack goes to
    the executor in one call.

    Returns:
        ``[(val_accuracy, info), ...]`` in order; ``info`` holds ``seconds``
        and ``epochs`` (kept with the trial) and what a progress line shows. A
        model that failed (a non-finite loss, an exception of its own) scores 0.
    """
    made = []
    for p in proposals:
        context = contexts[p.job]
        made.append(arms.get(context.search.arm).trial(study, splits, context, p.values))
    groups = {}
    for i, (fit, _, _) in enumerate(made):
        groups.setdefault((proposals[i].job, fit), []).append(i)
    packs, order = [], []
    for (_, fit), members in groups.items():
        for part in plan_packs.chunks(members):
            packs.append(fit.pack([made[i][1] for i in part], validate="last_epoch", test=False, weights=False,
                                  recalibrate_batchnorm=study.recalibrate_batchnorm))
            order += [(i, fit) for i in part]
    out = [None] * len(made)
    trained, seconds = runner.train_packs(packs)
    outcomes = [o for group in trained for o in group]
    for (i, fit), outcome in zip(order, outcomes):
        info = {**made[i][2], "seconds": outcome.seconds, "epochs": fit.epochs_done(len(splits.x_train)),
                "where": outcome.where, "pack": (len(made), seconds)}
        if not outcome.ok:
            info["error"] = outcome.error
        out[i] = (outcome.val_accuracy if outcome.ok else 0.0, info)
    return out


def _number(trial):
    """A trial id as the progress lines number it (from 1)."""
    return int(trial) + 1 if str(trial).isdigit() else trial


class Searcher:
    """Runs (or resumes) claimed searches side by side for a :class:`~widthvsprune.run.scheduler.Runner`."""

    def __init__(self, runner):
        self.runner = runner

    def search(self, claimed, survey):
        """Runs the claimed searches and writes their results (``search/result.json``)."""
        r = self.runner
        study, splits, jobs, contexts = r.study, r.splits, [], []
        session = Session(survey, r.trainer, r.executor.count_params, r.progress)
        for search in claimed:
            r.attempted.add(search.key)
            store.write_json(store.config_json(store.run_dir(r.root, search.key)),
                             {**search.config, "study": study.name})
            arm = arms.get(search.arm)
            done = arm.settle(study, search, splits, session.count)
            if done is not None:
                store.write_json(store.search_result_json(r.root, search.key), done)
                if done["status"] != SearchStatus.OK:
                    r.progress.note(f"{arm.name} sparsity={search.target:g}: {done['note']}")
                continue
            context = arm.context(study, search, session)
            if context is None:
                continue
            directory = store.search_dir(r.root, search.key)
            contexts.append(context)
            jobs.append(tuning.SearchJob(str(directory), arm.space(study, search, context), study.tuning.oracle,
                                         study.tuning.trials, seed=study.search_seed,
                                         overwrite=r.force and directory.exists(), tag=search,
                                         first=tuple(arm.first_trials(study, search, context)),
                                         batch=study.tuning.batch))
        if not jobs:
            return

        def train(proposals):
            r.check()
            return train_trials(study, splits, r, contexts, proposals)

        def on_trial(job, number, values, score, info):
            shown = arms.get(job.tag.arm).trial_shown(values, info)
            where = {"on": info["where"]} if info.get("where") else {}
            failed = {"error": info["error"]} if info.get("error") else {}
            text = " ".join(f"{k}={v}" for k, v in shown.items())
            r.progress.line(f"{job.tag.label} trial {number} {text}", info["pack"], val_acc=score, **where,
                            **failed)

        def on_reset(job, problem):
            r.progress.note(f"{job.tag.label}: {problem}; the search starts over")

        before = sum(r.watch.parts.get(part, 0.0) for part in ("training", "compiling", "records"))
        start = time.perf_counter()
        found = tuning.search_many(jobs, train, on_trial, on_reset, r.verbose)

        def train_again(second, proposals):
            r.check()
            return train_trials(second, splits, r, contexts, proposals)

        def on_again(job, trial, values, score, info):
            shown = arms.get(job.tag.arm).trial_shown(values, info)
            text = " ".join(f"{k}={v}" for k, v in shown.items())
            where = {"on": info["where"]} if info.get("where") else {}
            failed = {"error": info["error"]} if info.get("error") else {}
            r.progress.line(f"{job.tag.label} trial {_number(trial)} again (seed {study.rescore_seed}) {text}",
                            info["pack"], val_acc=score, **where, **failed)

        found = rescoring.rescore(study, jobs, found, train_again, on_again)
        trained = sum(r.watch.parts.get(part, 0.0) for part in ("training", "compiling", "records")) - before
        r.watch.add("proposals", time.perf_counter() - start - trained)
        for job, context, result in zip(jobs, contexts, found):
            arm = arms.get(job.tag.arm)
            store.write_json(store.search_result_json(r.root, job.tag.key),
                             arm.result(study, job.tag, result, splits, context))
