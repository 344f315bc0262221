"""Deprecated: :mod:`widthvsprune.families.layer_counts` and :mod:`widthvsprune.families.inputs` (kept for release
0.3 only)."""

import warnings

from widthvsprune.families.inputs import spatial
from widthvsprune.families.layer_counts import conv, dense

__all__ = ["conv", "dense", "spatial"]

warnings.warn("widthvsprune.families.counting is deprecated: import widthvsprune.families.layer_counts (dense, "
              "conv) or widthvsprune.families.inputs (spatial)", DeprecationWarning, stacklevel=2)
