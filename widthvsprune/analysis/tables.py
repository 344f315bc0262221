"""A study's tables, built from its run records alone: runs, comparison, frontier, search compute.

No framework is imported. :func:`load_results` is the public entry point;
``widthvsprune report`` writes these tables (:mod:`.report`).
"""

import dataclasses

import pandas as pd

from widthvsprune import arms
from widthvsprune.analysis import compare, diagnostics
from widthvsprune.errors import ResultsError
from widthvsprune.plan import planner
from widthvsprune.plan.status import RunStatus
from widthvsprune.sizes import SIZE_AXES
from widthvsprune.store import records, results


@dataclasses.dataclass(frozen=True)
class Results:
    """A study's tables: ``runs``, ``comparison`` and ``frontier`` DataFrames, and the ``study``."""

    study: object
    runs: pd.DataFrame
    comparison: pd.DataFrame
    frontier: pd.DataFrame


@dataclasses.dataclass(frozen=True)
class Tables:
    """Everything the reports of a study folder show."""

    results: Results
    survey: object
    failures: list
    warnings: list
    compute: pd.DataFrame


def runs_frame(found):
    """``runs.csv``: one row per evaluated model that trained (:data:`widthvsprune.store.records.COLUMNS`)."""
    rows = [records.ok_row(r) for r in found if r.get("status") == RunStatus.OK and r.get("role", "eval") == "eval"]
    frame = pd.DataFrame(rows, columns=records.COLUMNS)
    return frame.sort_values(["arm", "tuning", "target_sparsity", "seed"], kind="stable").reset_index(drop=True)


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


def tables(root, size="nonzero_params"):
    """Every table of a study folder, from its records: a :class:`Tables`."""
    if size not in SIZE_AXES:
        raise ResultsError(f"size: Expected one of {list(SIZE_AXES)}. Received: size={size!r}")
    study = results.load_study(root)
    survey = results.survey(study, root)
    found = survey.records()
    runs = runs_frame(found)
    comparison = compare.compare(runs, study.min_effect, size, survey.plan.skipped,
                                 contrasts=arms.contrasts(study))
    frontier = compare.frontier(runs, size)
    failures = [r for r in found if r.get("status") == RunStatus.FAILED]
    warnings = diagnostics.schedule_warnings(runs)
    return Tables(Results(study, runs, comparison, frontier), survey, failures, warnings, search_compute(survey))


def load_results(folder, size="nonzero_params"):
    """A study's results folder as DataFrames, built from its run records (nothing is written).

    Args:
        folder: a study results folder (``results/<study>``).
        size: the size axis of ``comparison``'s size columns and ``frontier``'s Pareto flags.

    Returns:
        :class:`Results`.

    Example:

    ```python
    results = widthvsprune.load_results("results/quickstart")
    results.comparison.query("contrast == 'tuned vs tuned'")[["target_sparsity", "delta", "verdict"]]
    ```
    """
    return tables(folder, size).results
