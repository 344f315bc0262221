"""What a study plans and what its results folder holds, in words (``run --dry-run`` and ``status``)."""

from widthvsprune import arms
from widthvsprune.status import RunStatus, SearchStatus
from widthvsprune.store import results


def dry_run(study, root):
    """The lines of ``run --dry-run``: the study, its searches and runs, and what is done."""
    survey = results.survey(study, root)
    plan = survey.plan
    lines = [f"study {study.name!r}: {study.family} {study.widths} on {study.dataset} with engine {study.engine}, "
             f"results in {root}",
             f"every search: {study.tuning.trials} {study.tuning.oracle} trials with search seed {study.search_seed}"]
    for search in plan.searches:
        if search.trials:
            lines.append(f"  {search.label}: {'done' if search.key in survey.searches else 'to search'}")
    labels = {run.id: run.label for run in plan.runs}
    for run in plan.runs:
        if survey.states[run.id].done:
            todo = "done"
        elif run.id in plan.twins:  # recorded from the run that trains the same model (plan.planner.twins)
            todo = f"to record from {labels[plan.twins[run.id]]}, the same model"
        else:
            todo = "to evaluate" if "pretrained" in run.config else "to train"  # trained weights: evaluated as they are
        lines.append(f"  {run.label}: {todo}")
    later = [f"{arm.name} sparsity={t:g}" for t in study.sparsities for arm in arms.of(study)
             if arm.per_point(study) and not plan.runs_of(arm.name, t, "tuned")]
    if later:
        lines.append(f"  known once their searches are done: {', '.join(later)}")
    lines.append(f"at most {plan.max_trainings} models; nothing was trained (--dry-run)")
    return lines


def status(study, root):
    """The lines of ``status``: per arm, what is done, failed and missing; failures and runs to train again."""
    survey = results.survey(study, root)
    plan = survey.plan
    lines = [f"study {study.name!r} in {root} (engine {study.engine})"]
    for arm in arms.of(study):
        states = [survey.states[r.id] for r in plan.runs_of(arm.name) if r.role == "eval"]
        expected = max(arm.evaluated(study), len(states))  # an untuned baseline evaluated beside the tuned one
        ok = sum(s.status == RunStatus.OK for s in states)
        failed = sum(s.status == RunStatus.FAILED for s in states)
        invalid = sum(s.status == RunStatus.INVALID for s in states)
        per_point = expected // max(1, len(study.sparsities))
        nofit = per_point * sum(skip.status == SearchStatus.NO_FIT for skip in plan.skipped_for(arm.name).values())
        line = f"  {arm.name:<9} {ok}/{expected} done, {failed} failed, {expected - ok - failed - nofit} missing"
        if invalid:
            line += f" ({invalid} with unreadable or changed files, trained again by the next run)"
        if nofit:
            line += f", {nofit} with no dense model small enough"
        lines.append(line)
    tuned = [s for s in plan.searches if s.trials]
    expected = sum(arm.searches(study) for arm in arms.of(study))
    lines.append(f"  searches  {sum(s.key in survey.searches for s in tuned)} done of {expected} "
                 f"({study.tuning.trials} trials each)")
    for run in plan.runs:
        state = survey.states[run.id]
        if state.status == RunStatus.FAILED:
            lines.append(f"  failed: {run.label}: {state.record.get('error')}")
        elif state.status == RunStatus.INVALID:
            lines.append(f"  to train again: {run.label}: {state.problem}")
    return lines
