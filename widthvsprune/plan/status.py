"""Deprecated: moved to :mod:`widthvsprune.status` (this path is kept for release 0.3 only)."""

import sys
import warnings

from widthvsprune import status

warnings.warn("widthvsprune.plan.status is deprecated: import widthvsprune.status", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = status
