"""widthvsprune: does a magnitude-pruned wide network beat a narrower dense one
with the same number of nonzero parameters?

The configuration, family registry and pure maths import without TensorFlow;
the runner imports it when it trains.
"""

from widthvsprune.config import NarrowSearch, Pruning, Recipe, Study, apply_overrides, load_study
from widthvsprune.errors import DataError, ResultsError, StudyError, WidthVsPruneError
from widthvsprune.families import Family, get_family, register_family

__version__ = "0.1.0"

__all__ = [
    "DataError",
    "Family",
    "NarrowSearch",
    "Pruning",
    "Recipe",
    "ResultsError",
    "Study",
    "StudyError",
    "WidthVsPruneError",
    "apply_overrides",
    "get_family",
    "load_study",
    "register_family",
    "run_study",
]


def run_study(study, out="results", force=False, verbose=False, stream=None, workers=None, study_file=None):
    """Trains every missing run of ``study`` and writes its reports.

    See :func:`widthvsprune.study.run_study`.
    """
    from widthvsprune import study as study_module

    return study_module.run_study(study, out=out, force=force, verbose=verbose, stream=stream, workers=workers,
                                  study_file=study_file)
