"""Running a study: scheduling its work between processes, each arm's packs and records, progress.

- :mod:`~widthvsprune.running.study`: :func:`run_study`, the checks before
  training, the helper processes and the reports after;
- :mod:`~widthvsprune.running.scheduler`: the stage loop and the one claim
  mechanism (file locks) that lets processes share a study;
- :mod:`~widthvsprune.running.arms`: what each arm trains (engine packs) and
  records;
- :mod:`~widthvsprune.running.progress` and
  :mod:`~widthvsprune.running.processes`: progress lines and helper processes.
"""

from widthvsprune.running.scheduler import StudyResult
from widthvsprune.running.study import Interrupted, preflight, run_study

__all__ = ["Interrupted", "StudyResult", "preflight", "run_study"]
