"""Pruning as parts: where a size point's zeros go, when, and which weights.

- :mod:`.allocations`: how the zeros are spread over the prunable layers
  (``uniform``, ``first_dense``, ``uniform_plus``, ``erk``, ``lamp``,
  ``global``, ``random``, and any registered with :func:`register_allocation`);
- :mod:`.schedules`: when masks change (tfmot's ``PolynomialDecay`` steps);
- :mod:`.masks`: which weights of a layer go (tfmot's magnitude rule, the
  smallest with ties by position, or random);
- :mod:`.host`: per-kernel targets and the masks an engine writes on the host;
- :mod:`.layers`: the prunable layer types, one table for every engine.

Everything here is NumPy: no framework is imported.
"""

from widthvsprune.pruning.allocations import (
    Allocation,
    Infeasible,
    Layer,
    allocate,
    allocation_names,
    get_allocation,
    register_allocation,
)

__all__ = ["Allocation", "Infeasible", "Layer", "allocate", "allocation_names", "get_allocation",
           "register_allocation"]
