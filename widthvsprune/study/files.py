"""Deprecated: renamed :mod:`widthvsprune.study.loading` (this path is kept for release 0.3 only)."""

import sys
import warnings

from widthvsprune.study import loading

warnings.warn("widthvsprune.study.files is deprecated: import widthvsprune.study.loading", DeprecationWarning,
              stacklevel=2)
sys.modules[__name__] = loading
