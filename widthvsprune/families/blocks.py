"""Deprecated: :mod:`widthvsprune.families.layer_counts` and :mod:`widthvsprune.families.inputs` (kept for release
0.3 only)."""

import warnings

from widthvsprune.families.inputs import image, input_layers, sequence
from widthvsprune.families.layer_counts import batch_norm, conv_no_bias, depthwise

__all__ = ["batch_norm", "conv_no_bias", "depthwise", "image", "input_layers", "sequence"]

warnings.warn("widthvsprune.families.blocks is deprecated: import widthvsprune.families.layer_counts (conv_no_bias, "
              "depthwise, batch_norm) or widthvsprune.families.inputs (sequence, image, input_layers)",
              DeprecationWarning, stacklevel=2)
