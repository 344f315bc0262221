"""Deprecated: renamed :mod:`widthvsprune.pruning.kernel_masks` (this path is kept for release 0.3 only)."""

import sys
import warnings

from widthvsprune.pruning import kernel_masks

warnings.warn("widthvsprune.pruning.host is deprecated: import widthvsprune.pruning.kernel_masks", DeprecationWarning,
              stacklevel=2)
sys.modules[__name__] = kernel_masks
