"""A study's tables, built from its run records alone: runs, comparison, frontier, search compute.

No framework is imported. :func:`load_results` is the public entry point;
``widthvsprune report`` writes these tables (:mod:`.report`).
"""

import dataclasses

import pandas as pd

from widthvsprune import arms, store
from widthvsprune.analysis import compare, diagnostics, hypothesis, stats
from widthvsprune.errors import ResultsError
from widthvsprune.plan import planner
from widthvsprune.sizes import SIZE_AXES
from widthvsprune.status import RunStatus
from widthvsprune.store import records, results


@dataclasses.dataclass(frozen=True)
class Results:
    """A study's tables: ``runs``, ``comparison``, ``frontier``, ``tolerance`` and ``iso`` (iso-accuracy) DataFrames,
    the ``study``, and its ``answer`` in words."""

    study: object
    runs: pd.DataFrame
    comparison: pd.DataFrame
    frontier: pd.DataFrame
    tolerance: pd.DataFrame = None
    iso: pd.DataFrame = None
    answer: str = ""


@dataclasses.dataclass(frozen=True)
class Tables:
    """Everything the reports of a study folder show."""

    results: Results
    survey: object
    failures: list
    warnings: list
    compute: pd.DataFrame
    configurations: pd.DataFrame = None


#: The roles of the models that are rows of runs.csv (the others are the searches' starting points).
ROWS = ("eval", "bracket")


def runs_frame(found):
    """``runs.csv``: one row per evaluated model that trained (:data:`widthvsprune.store.records.COLUMNS`)."""
    rows = [{**records.ok_row(r), "diverged": diverged(r), "broken_evaluation": bool(r.get("broken_evaluation", False))}
            for r in found if r.get("status") == RunStatus.OK and r.get("role", "eval") in ROWS]
    frame = pd.DataFrame(rows, columns=records.COLUMNS)
    return frame.sort_values(["arm", "tuning", "target_sparsity", "seed"], kind="stable").reset_index(drop=True)


def diverged(record):
    """A record's ``diverged``: as recorded, or, for records of releases before it existed, computed from the test
    accuracy and the number of classes (the output layer's bias size; False where that is unknown)."""
    if "diverged" in record:
        return bool(record["diverged"])
    layers = record.get("layers") or []
    classes = layers[-1].get("bias_params", 0) if layers else 0
    if not classes or "test_accuracy" not in record:
        return False
    return stats.at_chance(record["test_accuracy"], int(classes), int(record.get("test_examples", 0)))


def search_compute(survey):
    """Per arm: searches that trained, their trials, epochs and seconds."""
    rows = []
    for arm in arms.of(survey.plan.study):
        found = [survey.searches[s.key] for s in planner.matching(survey.plan.searches, arm=arm.name)
                 if s.trials and s.key in survey.searches]
        rows.append({"arm": arm.name, "searches": len(found), "trials": sum(r.get("trials", 0) for r in found),
                     "epochs": sum(r.get("epochs", 0.0) for r in found),
                     "seconds": sum(r.get("seconds", 0.0) for r in found)})
    return pd.DataFrame(rows)


def predictions(root, runs):
    """``{(key, seed): booleans}``: which test examples each model of ``runs`` got right, from its
    ``predictions.npz`` (models without one, written by earlier releases, are left out)."""
    out = {}
    for key, seed in zip(runs.key, runs.seed):
        path = store.predictions_npz(store.seed_dir(root, key, seed))
        if path.exists():
            out[key, int(seed)] = store.read_arrays(path)["correct"]
    return out


#: The columns of the chosen configurations' table in report.md.
CONFIGURATION_COLUMNS = ["arm", "tuning", "target_sparsity", "role", "widths", "learning_rate", "chosen", "search"]


def configurations(survey):
    """What every arm trained at every size point: one row per evaluated configuration (its seeds share it).

    ``chosen`` is the arm's own account of its configuration
    (:meth:`widthvsprune.arms.base.Arm.chosen`), ``search`` what the search
    that chose it saw (trials, best validation accuracy).
    """
    rows, seen = [], set()
    for run in survey.plan.runs:
        if run.role not in ROWS or run.key in seen:
            continue
        seen.add(run.key)
        arm = arms.get(run.arm)
        result = survey.searches.get(run.search) if run.search else None
        search = (f"{result['trials']} trials, best val_acc {result['val_accuracy']:.4f}"
                  if result and result.get("trials") else "the recipe as written" if run.tuning == "untuned" else "")
        rows.append({"arm": run.arm, "tuning": run.tuning, "target_sparsity": run.target, "role": run.role,
                     "widths": "x".join(map(str, run.widths)), "learning_rate": arm.learning_rate(run),
                     "chosen": arm.chosen(run), "search": search})
    frame = pd.DataFrame(rows, columns=CONFIGURATION_COLUMNS)
    order = {name: i for i, name in enumerate(arms.names())}
    return frame.assign(_order=frame.arm.map(order)).sort_values(
        ["_order", "tuning", "target_sparsity", "role"], kind="stable").drop(columns="_order").reset_index(drop=True)


def tables(root, size="nonzero_params"):
    """Every table of a study folder, from its records: a :class:`Tables`."""
    if size not in SIZE_AXES:
        raise ResultsError(f"size: Expected one of {list(SIZE_AXES)}. Received: size={size!r}")
    study = results.load_study(root, derive=False)  # the records say all the tables need of the family
    survey = results.survey(study, root)
    found = survey.records()
    runs = runs_frame(found)
    contrasts = arms.contrasts(study)
    comparison = compare.compare(runs, study.min_effect, size, survey.plan.skipped, contrasts=contrasts)
    correct = predictions(root, runs)
    frontier = hypothesis.annotate(compare.frontier(runs, size), runs, study.tolerance, size)
    tolerance = hypothesis.tolerance_table(runs, study.tolerance, correct)
    iso = hypothesis.iso_table(runs, contrasts, study.tolerance, correct)
    answer = hypothesis.answer(tolerance, comparison, iso, arms.headline(study), study.tolerance,
                               pretrained=bool(study.pretrained))
    failures = [r for r in found if r.get("status") == RunStatus.FAILED]
    warnings = (diagnostics.divergence_warnings(runs) + diagnostics.broken_evaluation_warnings(runs)
                + diagnostics.tuning_warnings(runs)
                + diagnostics.schedule_warnings(runs)
                + diagnostics.pretrained_warnings(study, runs))
    return Tables(Results(study, runs, comparison, frontier, tolerance, iso, answer), survey, failures, warnings,
                  search_compute(survey), configurations(survey))


def load_results(folder, size="nonzero_params"):
    """A study's results folder as DataFrames, built from its run records (nothing is written).

    Args:
        folder: a study results folder (``results/<study>``).
        size: the size axis of ``comparison``'s size columns and ``frontier``'s Pareto flags.

    Returns:
        :class:`Results`: ``runs``, ``comparison``, ``frontier``, ``tolerance``
        and ``iso`` (the tables of the CSV files of the same names,
        ``iso_accuracy.csv`` for ``iso``), ``study`` and ``answer``.

    Example:

    ```python
    results = widthvsprune.load_results("results/quickstart")
    results.comparison.query("contrast == 'best vs best'")[["target_sparsity", "delta", "verdict"]]
    ```
    """
    return tables(folder, size).results
