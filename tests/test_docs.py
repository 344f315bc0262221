"""docs/results.md matches the code: every column of every CSV the reports write is documented, in order."""

import pathlib
import re

import pytest

from widthvsprune.analysis import compare, hypothesis, summary
from widthvsprune.store import records

RESULTS = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "results.md").read_text()


def documented(heading):
    """The column names of the table under ``heading`` (up to the next heading), in order."""
    start = RESULTS.index(heading)
    end = RESULTS.find("\n## ", start + 1)
    return re.findall(r"^\| `(\w+)` \|", RESULTS[start: end if end > 0 else None], re.M)


@pytest.mark.parametrize("heading,columns", [
    ("## runs.csv", records.COLUMNS),
    ("## comparison.csv", compare.COMPARISON_COLUMNS),
    ("## frontier.csv", compare.FRONTIER_COLUMNS + hypothesis.FRONTIER_COLUMNS),
    ("## tolerance.csv", hypothesis.TOLERANCE_COLUMNS),
    ("## iso_accuracy.csv", hypothesis.ISO_COLUMNS),
    ("## summary.csv", summary.SUMMARY_COLUMNS),
])
def test_docs_results_documents_every_column_written_in_order(heading, columns):
    assert documented(heading) == list(columns)


def test_the_runs_csv_meanings_are_the_record_schemas():
    rows = dict(re.findall(r"^\| `(\w+)` \| (.+) \|$", RESULTS[RESULTS.index("## runs.csv"):
                                                                RESULTS.index("## comparison.csv")], re.M))
    assert rows == {c.name: c.meaning for c in records.RUN_COLUMNS}


def test_every_verdict_is_documented():
    verdicts = [compare.TIE, compare.UNDERFILLED, compare.MISSING, compare.DIVERGED, compare.UNRELIABLE, compare.NO_FIT]
    table = RESULTS[RESULTS.index("## comparison.csv"):RESULTS.index("## frontier.csv")]
    assert all(f"`{v}`" in table for v in verdicts)
