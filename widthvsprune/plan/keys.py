"""Deprecated: moved to :mod:`widthvsprune.keys` (this path is kept for release 0.3 only)."""

import sys
import warnings

from widthvsprune import keys

warnings.warn("widthvsprune.plan.keys is deprecated: import widthvsprune.keys", DeprecationWarning, stacklevel=2)
sys.modules[__name__] = keys
