"""Running a study: the processes that share it, its stages, its runs and searches, and progress.

- :mod:`.study`: :func:`run_study`, the checks before training, the helper
  processes and the reports after;
- :mod:`.scheduler`: the stage loop and the one claim mechanism (file locks)
  that lets processes share a study;
- :mod:`.trainer`: runs to packs to records;
- :mod:`.searcher` and :mod:`.tuning`: searches, their KerasTuner oracles and trials;
- :mod:`.progress` and :mod:`.processes`: progress lines and helper processes.
"""

from widthvsprune.run.processes import Interrupted
from widthvsprune.run.scheduler import StudyResult
from widthvsprune.run.study import preflight, run_study

__all__ = ["Interrupted", "StudyResult", "preflight", "run_study"]
