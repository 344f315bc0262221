"""The README matches the code: the columns it documents are the columns written."""

import pathlib
import re

from widthvsprune.analysis import compare
from widthvsprune.store import records

README = (pathlib.Path(__file__).resolve().parent.parent / "README.md").read_text()


def section(start, end):
    return README[README.index(start): README.index(end)]


def test_the_readme_documents_every_runs_csv_column_in_order():
    names = re.findall(r"^\| `(\w+)` \|", section("### runs.csv", "### comparison.csv"), re.M)
    assert names == records.COLUMNS


def test_the_readme_documents_every_comparison_csv_column():
    documented = set(re.findall(r"`(\w+)`", section("### comparison.csv", "### frontier.csv")))
    assert set(compare.COMPARISON_COLUMNS) <= documented
