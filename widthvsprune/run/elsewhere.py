"""Deprecated: renamed :mod:`widthvsprune.run.fresh_process` (this path is kept for release 0.3 only)."""

import sys
import warnings

from widthvsprune.run import fresh_process

warnings.warn("widthvsprune.run.elsewhere is deprecated: import widthvsprune.run.fresh_process", DeprecationWarning,
              stacklevel=2)
sys.modules[__name__] = fresh_process
