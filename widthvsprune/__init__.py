"""widthvsprune: does a magnitude-pruned wide network beat a narrower dense one
with the same number of nonzero parameters?

The configuration, the planner, the store, the statistics and the reports
import without any training framework; an engine is imported only when a
study trains, and pandas, SciPy and matplotlib only when a report or a
comparison utility is asked for (:func:`compare`, :func:`compare_studies`,
:func:`load_results` load on first use).
"""

from widthvsprune import on_demand
from widthvsprune.data import register_dataset
from widthvsprune.errors import DataError, ResultsError, StudyError, WidthVsPruneError
from widthvsprune.families import Family, get_family, register_family
from widthvsprune.families.derived import family_from_file, family_from_model
from widthvsprune.families.derived.layers import register_layer
from widthvsprune.pruning import register_allocation
from widthvsprune.study import Pruning, Recipe, Study, Tuning, apply_overrides, load_study

__version__ = "0.4.0"

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
    "compare_studies",
    "export_model",
    "family_from_file",
    "family_from_model",
    "get_family",
    "load_results",
    "load_study",
    "register_allocation",
    "register_dataset",
    "register_family",
    "register_layer",
    "run_study",
]


#: The comparison utilities, imported on first use (they need pandas and SciPy): name -> module.
__getattr__, __dir__ = on_demand.attributes(__name__, {
    "compare": "widthvsprune.analysis.compare", "compare_studies": "widthvsprune.analysis.summary",
    "load_results": "widthvsprune.analysis.tables"})


def export_model(folder, arm, sparsity=None, seed=None, tuning=None, path=None):
    """One evaluated model of a finished study as a plain Keras model; see :func:`widthvsprune.export.export_model`.

    Example:

    ```python
    model = export_model("results/quickstart", arm="pruned", sparsity=0.9, seed=0, path="pruned.keras")
    ```
    """
    from widthvsprune import export

    return export.export_model(folder, arm, sparsity=sparsity, seed=seed, tuning=tuning, path=path)


def run_study(study, out="results", **options):
    """Trains every missing run of ``study`` and writes its reports.

    See :func:`widthvsprune.run.run_study` for the options (``force``,
    ``workers``, ``executor="ray"``, ``address`` ...).
    """
    from widthvsprune import run

    return run.run_study(study, out=out, **options)
