"""Running a study: the processes that share it, its stages, its runs and searches, and progress.

- :mod:`.study`: :func:`run_study`, the checks before training, the helper
  processes and the reports after;
- :mod:`.scheduler`: the stage loop and the one claim mechanism (file locks)
  that lets processes share a study;
- :mod:`.trainer`: runs to packs to records;
- :mod:`.searcher` and :mod:`.tuning`: searches, their KerasTuner oracles and trials;
- :mod:`.progress` and :mod:`.processes`: progress lines and helper processes.
"""

import importlib

from widthvsprune.run.processes import Interrupted

#: Imported on first use, so that ``status`` and ``--dry-run`` (which read :mod:`.overview`) import neither pandas
#: nor SciPy nor KerasTuner: name -> module.
_ON_DEMAND = {"StudyResult": "widthvsprune.run.scheduler", "preflight": "widthvsprune.run.study",
              "run_study": "widthvsprune.run.study"}

__all__ = ["Interrupted", "StudyResult", "preflight", "run_study"]


def __getattr__(name):
    if name in _ON_DEMAND:
        value = getattr(importlib.import_module(_ON_DEMAND[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'widthvsprune.run' has no attribute {name!r}")
