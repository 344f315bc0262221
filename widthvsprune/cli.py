"""The ``widthvsprune`` command line. It parses arguments and calls the library.

Exit status: 0 when everything is done, 1 when a run failed, 2 for invalid
input (nothing was trained).
"""

import argparse
import os
import pathlib
import sys

from widthvsprune.errors import StudyError, WidthVsPruneError

SIZE_CHOICES = ("nonzero_params", "total_params", "dense_bytes", "sparse_bytes", "gzip_bytes",
                "flops", "nonzero_flops")


def _parser():
    parser = argparse.ArgumentParser(
        prog="widthvsprune",
        description="Large-sparse versus small-dense: train both arms of a study and compare them.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="train every missing run of a study and write the reports")
    run.add_argument("study", help="a study file (Python, defines STUDY = Study(...))")
    run.add_argument("--out", default="results", help="results root (default: results)")
    run.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                     help="override a study field, e.g. --set seeds=[0,1] --set finetune.epochs=3")
    run.add_argument("--force", action="store_true", help="retrain runs that are already done")
    run.add_argument("--dry-run", action="store_true", help="check the study and list its runs only")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="training processes (default: one per CPU core, at most 4; 1 with a GPU)")
    run.add_argument("-v", "--verbose", action="store_true", help="show TensorFlow's own output")

    status = sub.add_parser("status", help="what is done, failed and missing")
    status.add_argument("target", help="a study file or a study results folder")
    status.add_argument("--out", default="results", help="results root for a study file")
    status.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")

    report = sub.add_parser("report", help="regenerate the tables, figures and verdict")
    report.add_argument("dir", help="a study results folder (results/<study>)")
    report.add_argument("--size", default="nonzero_params", choices=SIZE_CHOICES,
                        help="size axis of the figure, the Pareto flags and the size columns")
    return parser


def _load(path, overrides):
    from widthvsprune import config

    study = config.load_study(path)
    return config.apply_overrides(study, overrides) if overrides else study


def _dry_run(study, out):
    from widthvsprune import storing
    from widthvsprune import study as study_module

    study_module.preflight(study, out)
    root = storing.study_dir(out, study.name)
    print(f"study {study.name!r}: {study.family} {study.widths} on {study.dataset}, results in {root}")
    key = study_module.baseline_key(study)
    for seed in study.seeds:
        done = storing.is_done(storing.seed_dir(root, key, seed))
        print(f"  baseline seed={seed}: {'done' if done else 'to train'}")
    for target in study.sparsities:
        key = study_module.pruned_key(study, target)
        for seed in study.seeds:
            done = storing.is_done(storing.seed_dir(root, key, seed))
            print(f"  pruned sparsity={target:g} seed={seed}: {'done' if done else 'to train'}")
        print(f"  narrow sparsity={target:g}: search of {study.narrow.max_trials} trials, "
              f"then {len(study.seeds)} model(s)")
    print(f"at most {study_module.count_trainings(study)} models; nothing was trained (--dry-run)")


def _status(target, out, overrides):
    from widthvsprune import report, storing

    path = pathlib.Path(target)
    if path.is_dir():
        root = path
        study = report.load_study(root)
    else:
        study = _load(path, overrides)
        root = storing.study_dir(out, study.name)
    records = report.collect(root, study) if storing.study_json(root).exists() else []
    print(f"study {study.name!r} in {root}")
    expected = {"baseline": len(study.seeds), "pruned": len(study.seeds) * len(study.sparsities),
                "narrow": len(study.seeds) * len(study.sparsities)}
    for arm, n in expected.items():
        rs = [r for r in records if r.get("arm") == arm]
        ok = sum(r.get("status") == "ok" for r in rs)
        failed = sum(r.get("status") == "failed" for r in rs)
        nofit = sum(r.get("status") == "no-narrow-fits" for r in rs)
        line = f"  {arm:<9} {ok}/{n} done, {failed} failed, {n - ok - failed - nofit} missing"
        if nofit:
            line += f", {nofit} with no dense model small enough"
        print(line)
    for r in records:
        if r.get("status") == "failed":
            print(f"  failed: {r.get('label')}: {r.get('error')}")
    return 0


def main(argv=None):
    args = _parser().parse_args(argv)
    if getattr(args, "verbose", False):
        os.environ["WIDTHVSPRUNE_VERBOSE"] = "1"
    try:
        if args.command == "run":
            study = _load(args.study, args.overrides)
            if args.dry_run:
                _dry_run(study, args.out)
                return 0
            from widthvsprune import study as study_module

            if args.workers is not None and args.workers < 1:
                raise StudyError(f"--workers: Expected an integer >= 1. Received: --workers={args.workers}")
            result = study_module.run_study(study, args.out, force=args.force, verbose=args.verbose,
                                            workers=args.workers, study_file=args.study)
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
    except WidthVsPruneError as error:
        for line in str(error).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished runs are kept; run the same command again to resume.",
              file=sys.stderr)
        return 130
    return 0


def run_file(path):
    """Entry point of ``python studies/X.py``: runs that study file (with any CLI options)."""
    sys.exit(main(["run", str(path), *sys.argv[1:]]))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
