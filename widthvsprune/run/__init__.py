"""Running a study: the processes that share it, its stages, its runs and searches, and progress.

- :mod:`.study`: :func:`run_study`, the checks before training, the helper
  processes and the reports after;
- :mod:`.scheduler`: the stage loop and the one claim mechanism (file locks)
  that lets processes share a study;
- :mod:`.trainer`: runs to packs to records;
- :mod:`.searcher` and :mod:`.tuning`: searches, their KerasTuner oracles and trials;
- :mod:`.progress` and :mod:`.processes`: progress lines and helper processes.
"""

from widthvsprune import on_demand
from widthvsprune.run.processes import Interrupted

__all__ = ["Interrupted", "StudyResult", "preflight", "run_study"]

#: Imported on first use, so that ``status`` and ``--dry-run`` (which read :mod:`.overview`) import neither pandas
#: nor SciPy nor KerasTuner: name -> module.
__getattr__, __dir__ = on_demand.attributes(__name__, {
    "StudyResult": "widthvsprune.run.scheduler", "preflight": "widthvsprune.run.study",
    "run_study": "widthvsprune.run.study"})
