"""The ``widthvsprune`` command line. It parses arguments and calls the library.

Exit status: 0 when everything is done, 1 when a run failed or the disk is
full, 2 for invalid input (nothing was trained), 130 when interrupted (Ctrl-C).
"""

import argparse
import os
import pathlib
import sys

from widthvsprune.errors import WidthVsPruneError
from widthvsprune.measuring import SIZE_AXES

EPILOG = """\
Results of a study go to <out>/<name>/: runs.csv (one row per trained model), comparison.csv (the verdict per
size point), frontier.csv, frontier.png/.svg and report.md, all derived from the run records in runs/.
Exit status: 0 all done, 1 a run failed (or the disk is full), 2 invalid input, 130 interrupted.
"""


def _parser():
    parser = argparse.ArgumentParser(
        prog="widthvsprune",
        description="Large-sparse versus small-dense: train both arms of a study and compare them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train every missing run of a study and write the reports")
    run.add_argument("study", help="a study file (Python, defines STUDY = Study(...))")
    run.add_argument("--out", default="results", help="results root (default: results)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a study field, e.g. --set seeds=[0,1] --set finetune.epochs=3")
    run.add_argument("--force", action="store_true", help="retrain runs that are already done")
    run.add_argument("--dry-run", action="store_true", help="check the study and its data, list its runs only")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="training processes (default: one per CPU core, at most 4; 1 with a GPU)")
    run.add_argument("--engine", default=None, choices=("auto", "tf_keras", "jax"),
                     help="the training engine (overrides the study's engine field; auto: jax where installed)")
    run.add_argument("--executor", default="local", choices=("local", "ray"),
                     help="where packs train: this machine's processes (default) or a Ray cluster")
    run.add_argument("--address", default=None, metavar="ADDRESS",
                     help="the Ray cluster to join (ray start --head prints it); default: a local Ray instance")
    run.add_argument("--cpus-per-pack", type=float, default=None, metavar="N", help="CPUs each pack asks of Ray "
                     "(default 1)")
    run.add_argument("--gpus-per-pack", type=float, default=None, metavar="F",
                     help="GPU share each pack asks of Ray, e.g. 0.25 puts four packs on one GPU (default 0)")
    run.add_argument("-v", "--verbose", action="store_true", help="show the frameworks' own output")

    status = sub.add_parser("status", help="what is done, failed and missing")
    status.add_argument("target", help="a study file or a study results folder")
    status.add_argument("--out", default="results", help="results root for a study file")
    status.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    report = sub.add_parser("report", help="regenerate the tables, figures and verdict from the run records")
    report.add_argument("dir", help="a study results folder (results/<study>)")
    report.add_argument("--size", default="nonzero_params", choices=SIZE_AXES,
                        help="size axis of the figure, the Pareto flags and the size columns")
    return parser


def _load(path, overrides):
    from widthvsprune import studyfiles

    study = studyfiles.load_study(path)
    return studyfiles.apply_overrides(study, overrides) if overrides else study


def _dry_run(study, out):
    from widthvsprune import results, storing
    from widthvsprune.running import preflight

    study = study.resolved()
    preflight(study, out)
    root = storing.study_dir(out, study.name)
    survey = results.survey(study, root)
    plan = survey.plan
    print(f"study {study.name!r}: {study.family} {study.widths} on {study.dataset} with engine {study.engine}, "
          f"results in {root}")
    print(f"every search: {study.tuning.trials} {study.tuning.oracle} trials with search seed {study.search_seed}")
    for search in plan.searches:
        if search.trials:
            print(f"  {search.label}: {'done' if search.key in survey.searches else 'to search'}")
    for run in plan.runs:
        print(f"  {run.label}: {'done' if survey.states[run.id].done else 'to train'}")
    later = [f"{arm} sparsity={t:g}" for t in study.sparsities for arm in ("pruned", "narrow")
             if not plan.runs_of(arm, t, "tuned")]
    if later:
        print(f"  known once their searches are done: {', '.join(later)}")
    print(f"at most {plan.max_trainings} models; nothing was trained (--dry-run)")


def _status(target, out, overrides):
    from widthvsprune import results, storing

    path = pathlib.Path(target)
    if path.is_dir():
        root = path
        study = results.load_study(root)
    else:
        study = _load(path, overrides).resolved()
        root = storing.study_dir(out, study.name)
    survey = results.survey(study, root)
    print(f"study {study.name!r} in {root} (engine {study.engine})")
    tunings = ("tuned", "untuned") if study.tuning.controls else ("tuned",)
    per_arm = len(study.seeds) * len(tunings)
    expected = {"baseline": per_arm, "pruned": per_arm * len(study.sparsities),
                "narrow": per_arm * len(study.sparsities)}
    for arm, n in expected.items():
        states = [survey.states[r.id] for r in survey.plan.runs if r.arm == arm and r.role == "eval"]
        ok = sum(s.status == "ok" for s in states)
        failed = sum(s.status == "failed" for s in states)
        invalid = sum(s.status == "invalid" for s in states)
        nofit = per_arm * sum(v.startswith("no-narrow-fits") for v in survey.plan.skipped.values())
        nofit = nofit if arm == "narrow" else 0
        line = f"  {arm:<9} {ok}/{n} done, {failed} failed, {n - ok - failed - nofit} missing"
        if invalid:
            line += f" ({invalid} with unreadable or changed files, trained again by the next run)"
        if nofit:
            line += f", {nofit} with no dense model small enough"
        print(line)
    searched = sum(s.key in survey.searches for s in survey.plan.searches if s.trials)
    print(f"  searches  {searched} done of {1 + 2 * len(study.sparsities)} ({study.tuning.trials} trials each)")
    for run in survey.plan.runs:
        state = survey.states[run.id]
        if state.status == "failed":
            print(f"  failed: {run.label}: {state.record.get('error')}")
        elif state.status == "invalid":
            print(f"  to train again: {run.label}: {state.problem}")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    if getattr(args, "verbose", False):
        os.environ["WIDTHVSPRUNE_VERBOSE"] = "1"
    from widthvsprune.storing import DiskFullError

    try:
        if args.command == "run":
            study = _load(args.study, args.overrides + ([f"engine={args.engine}"] if args.engine else []))
            if args.workers is not None and args.workers < 1:
                from widthvsprune.errors import StudyError

                raise StudyError(f"--workers: Expected an integer >= 1. Received: --workers={args.workers}")
            if args.dry_run:
                _dry_run(study, args.out)
                return 0
            from widthvsprune.running import run_study

            result = run_study(study, args.out, force=args.force, verbose=args.verbose, workers=args.workers,
                               study_file=args.study, executor=args.executor, address=args.address,
                               cpus_per_pack=args.cpus_per_pack, gpus_per_pack=args.gpus_per_pack)
            if result.failed:
                print(f"{len(result.failed)} run(s) failed; run the same command again to retry them.",
                      file=sys.stderr)
                return 1
            return 0
        if args.command == "status":
            return _status(args.target, args.out, args.overrides)
        if args.command == "report":
            from widthvsprune import report

            report.write_reports(pathlib.Path(args.dir), size=args.size)
            return 0
    except DiskFullError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except WidthVsPruneError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        message = str(interrupt) or "interrupted before any training started; nothing was lost."
        print(message, file=sys.stderr)
        return 130
    return 0


def run_file(path):
    """Entry point of ``python studies/X.py``: runs that study file (with any CLI options)."""
    sys.exit(main(["run", str(path), *sys.argv[1:]]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
