"""The ``widthvsprune`` command line. It parses arguments and calls the library.

Exit status: 0 when everything is done, 1 when a run failed or the disk is
full, 2 for invalid input (nothing was trained), 130 when interrupted (Ctrl-C).
"""

import argparse
import os
import pathlib
import sys

from widthvsprune import engines, executors
from widthvsprune.errors import WidthVsPruneError
from widthvsprune.sizes import SIZE_AXES

EPILOG = """\
Results of a study go to <out>/<name>/: runs.csv (one row per trained model), comparison.csv (the verdict per
size point), frontier.csv, tolerance.csv, iso_accuracy.csv, frontier.png/.svg/.pdf and report.md, all derived
from the run records in runs/ (docs/results.md describes every column).
Exit status: 0 all done, 1 a run failed (or the disk is full), 2 invalid input, 130 interrupted.
"""


def _parser():
    parser = argparse.ArgumentParser(
        prog="widthvsprune",
        description="Large-sparse versus small-dense: train both arms of a study and compare them.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from widthvsprune import __version__

    parser.add_argument("--version", action="version", version=f"widthvsprune {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train every missing run of a study and write the reports")
    run.add_argument("study", help="a study file (Python, defines STUDY = Study(...)), or a study results folder to "
                                   "resume the study it holds")
    run.add_argument("--out", default=None, help="results root (default: results; for a folder, the one it is in)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a study field, e.g. --set seeds=[0,1] --set finetune.epochs=3")
    run.add_argument("--force", action="store_true", help="retrain runs that are already done")
    run.add_argument("--dry-run", action="store_true", help="check the study and its data, list its runs only")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="training processes (default: one per CPU core, at most 4; 1 with a GPU)")
    run.add_argument("--engine", default=None, choices=engines.CHOICES,
                     help="the training engine (overrides the study's engine field; auto: "
                          f"{engines.AUTO_RULE})")
    run.add_argument("--executor", default="local", choices=executors.names(),
                     help="where packs train: this machine's processes (local, the default) or a Ray cluster")
    for option, owner in executors.all_options().values():
        run.add_argument(option.flag, dest=option.name, type=option.type, default=None, metavar=option.metavar,
                         help=f"{owner}: {option.help}")
    run.add_argument("-v", "--verbose", action="store_true", help="show the frameworks' own output")

    status = sub.add_parser("status", help="what is done, failed and missing")
    status.add_argument("target", help="a study file or a study results folder")
    status.add_argument("--out", default="results", help="results root for a study file")
    status.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    report = sub.add_parser("report", help="regenerate the tables, figures and verdict from the run records")
    report.add_argument("dir", help="a study results folder (results/<study>)")
    report.add_argument("--size", default="nonzero_params", choices=SIZE_AXES,
                        help="size axis of the figure, the Pareto flags and the size columns")

    summary = sub.add_parser("summary", help="several finished studies side by side: summary.csv, summary.md and "
                                             "a figure")
    summary.add_argument("dirs", nargs="+", metavar="DIR", help="study results folders (results/<study>)")
    summary.add_argument("--out", default=None, help="where to write (default: the folders' common parent)")

    export = sub.add_parser("export", help="save one studied model as a plain Keras model (.keras)")
    export.add_argument("dir", help="a finished study's results folder (results/<study>)")
    export.add_argument("--arm", required=True, help="baseline, pruned, narrow (or another arm of the study)")
    export.add_argument("--sparsity", type=float, default=None, help="the size point (the pruned arm's target)")
    export.add_argument("--seed", type=int, default=None, help="the evaluation seed")
    export.add_argument("--tuning", default=None, choices=("tuned", "untuned"),
                        help="the arm's tuned configuration (the default where there is one) or its recipe")
    export.add_argument("-o", "--output", required=True, metavar="FILE.keras", help="where to save the model")
    export.add_argument("--study", default=None, metavar="FILE",
                        help="the study file or script, for a family it registers (a shipped family or model:PATH "
                             "needs none)")
    return parser


def _load(path, overrides):
    from widthvsprune.study import loading

    if pathlib.Path(path).is_dir():  # a results folder: the study it holds (its study.json)
        from widthvsprune.store import results

        study = results.load_study(path)
    else:
        study = loading.load_study(path)
    return loading.apply_overrides(study, overrides) if overrides else study


def _dry_run(study, out):
    from widthvsprune import store
    from widthvsprune.errors import StudyError
    from widthvsprune.run import overview, preflight
    from widthvsprune.run.study import notes

    study = study.resolved()
    missing, splits = [], None
    try:
        splits = preflight(study, out)
    except StudyError as error:  # without the dataset the runs are still planned from the study alone
        missing = [p for p in error.problems if p.startswith("dataset:")]
        if len(missing) < len(error.problems):
            raise StudyError([p for p in error.problems if p not in missing]) from None
    print("\n".join(overview.dry_run(study, store.study_dir(out, study.name))))
    for line in notes(study, splits) if splits is not None else []:
        print(line)
    if missing:
        print("note: the dataset is not here, so the runs above are planned from the study alone; the steps each "
              "run trains and whether the family accepts the data's shape are known once it is:")
        print("\n".join(f"  {line}" for line in missing))


def _status(target, out, overrides):
    from widthvsprune import store
    from widthvsprune.run import overview
    from widthvsprune.store import results

    path = pathlib.Path(target)
    if path.is_dir():
        root = path
        study = results.load_study(root, derive=False)  # from the records: no Keras for a model:PATH family
    else:
        study = _load(path, overrides).resolved()
        root = store.study_dir(out, study.name)
    print("\n".join(overview.status(study, root)))
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    if getattr(args, "verbose", False):
        os.environ["WIDTHVSPRUNE_VERBOSE"] = "1"
    from widthvsprune import quiet

    quiet.quiet_environment()
    engines.prefer_jax_backend()  # before a study file imports Keras
    from widthvsprune.store import DiskFullError

    try:
        if args.command == "run":
            study = _load(args.study, args.overrides + ([f"engine={args.engine}"] if args.engine else []))
            folder = pathlib.Path(args.study).is_dir()
            if args.out is None:
                args.out = str(pathlib.Path(args.study).resolve().parent) if folder else "results"
            if args.workers is not None and args.workers < 1:
                from widthvsprune.errors import StudyError

                raise StudyError(f"--workers: Expected an integer >= 1. Received: --workers={args.workers}")
            if args.dry_run:
                _dry_run(study, args.out)
                return 0
            from widthvsprune.run import run_study

            options = {name: getattr(args, name) for name in executors.all_options()}
            result = run_study(study, args.out, force=args.force, verbose=args.verbose, workers=args.workers,
                               study_file=None if folder else args.study, executor=args.executor, **options)
            if result.failed:
                print(f"{len(result.failed)} run(s) failed; run the same command again to retry them.",
                      file=sys.stderr)
                return 1
            return 0
        if args.command == "status":
            return _status(args.target, args.out, args.overrides)
        if args.command == "report":
            from widthvsprune.analysis import report

            report.write_reports(pathlib.Path(args.dir), size=args.size)
            return 0
        if args.command == "summary":
            from widthvsprune.analysis import summary

            summary.compare_studies(args.dirs, args.out, stream=sys.stdout)
            return 0
        if args.command == "export":
            from widthvsprune.export import export_model, select_run

            if args.study:
                from widthvsprune.study import loading

                loading.load_study(args.study, need_study=False)  # registers the families the file defines
            row = select_run(args.dir, args.arm, args.sparsity, args.seed, args.tuning)
            export_model(args.dir, args.arm, args.sparsity, args.seed, args.tuning, path=args.output)
            print(f"{args.output}: {row['arm']} {row['tuning']} sparsity={row['target_sparsity']} "
                  f"seed={int(row['seed'])} widths={row['widths']}  nonzero={int(row['nonzero_params'])}  "
                  f"test_acc={row['test_accuracy']:.4f}")
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
    except BrokenPipeError:  # the output went to a reader that stopped reading (| head): end quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return 0


def run_file(path):
    """Entry point of ``python studies/X.py``: runs that study file (with any CLI options)."""
    sys.exit(main(["run", str(path), *sys.argv[1:]]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
