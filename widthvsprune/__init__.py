"""widthvsprune: does a magnitude-pruned wide network beat a narrower dense one
with the same number of nonzero parameters?

The configuration, the planner, the store, the statistics and the reports
import without any training framework; an engine is imported only when a
study trains.
"""

from widthvsprune.comparing import compare, load_results
from widthvsprune.config import Pruning, Recipe, Study, Tuning
from widthvsprune.errors import DataError, ResultsError, StudyError, WidthVsPruneError
from widthvsprune.families import Family, get_family, register_family
from widthvsprune.studyfiles import apply_overrides, load_study

__version__ = "0.2.0"

__all__ = [
    "DataError",
    "Family",
    "Pruning",
    "Recipe",
    "ResultsError",
    "Study",
    "StudyError",
    "Tuning",
    "WidthVsPruneError",
    "apply_overrides",
    "compare",
    "get_family",
    "load_results",
    "load_study",
    "register_family",
    "run_study",
]


def run_study(study, out="results", **options):
    """Trains every missing run of ``study`` and writes its reports.

    See :func:`widthvsprune.running.run_study` for the options (``force``,
    ``workers``, ``executor="ray"``, ``address`` ...).
    """
    from widthvsprune import running

    return running.run_study(study, out=out, **options)
