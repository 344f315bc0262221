"""Budget matching: the widest shape of a family that fits a parameter budget.

Pure functions, no TensorFlow. For a family and a budget ``B`` (a pruned
model's nonzero count, biases included) :func:`solve_widths` returns widths
whose exact parameter count is ``<= B`` and as close to ``B`` as the family
allows at the requested split of width between the knobs.
"""

import dataclasses
import math
from typing import Optional, Tuple

from widthvsprune import families

#: A match filling less of its budget than this gets a note, and a win over such a narrow model is inconclusive.
UNDERFILLED_BELOW = 0.9


@dataclasses.dataclass(frozen=True)
class Match:
    """The result of matching a budget.

    Attributes:
        widths: the solved widths, or ``None`` when nothing fits.
        params: their exact parameter count (0 when nothing fits).
        budget: the budget that was matched.
        note: why the match is not within 90% of the budget, or why nothing fits.
        error: where nothing fits because the family could not build some
            widths: the first such error (``"ValueError: ..."``), else ``""``.
        failed: then, the widest widths within the budget's reach that
            failed to build (what the budget would have given).
    """

    widths: Optional[Tuple[int, ...]]
    params: int
    budget: int
    note: str = ""
    error: str = ""
    failed: Optional[Tuple[int, ...]] = None

    @property
    def fits(self):
        return self.widths is not None

    @property
    def fill(self):
        return self.params / self.budget if self.budget else 0.0


#: The count of widths the family cannot build: they never fit a budget.
INFEASIBLE = math.inf


def counter(family, input_shape, num_classes, count=None):
    """``f(widths) -> int``: the exact parameter count, memoized.

    Widths whose count (or build) raises are infeasible: their count is
    :data:`INFEASIBLE`, and the error, one line, is kept in the function's
    ``errors`` dict (``widths -> "ValueError: ..."``).

    Args:
        family: a :class:`widthvsprune.families.Family` or its name.
        count: ``f(family_name, widths, input_shape, num_classes)`` counting by
            building the model (an engine's ``count_params``), for a family
            without a count function.

    Raises:
        ValueError: if the family has no count function and no ``count`` is given.
    """
    if isinstance(family, str):
        family = families.get_family(family)
    if family.count_params is None and count is None:
        raise ValueError(f"Expected a count function for family {family.name!r}, which has none: pass an engine's "
                         f"count_params. Received: count=None")
    memo, errors = {}, {}

    def exact(widths):
        widths = tuple(int(w) for w in widths)
        if widths not in memo:
            try:
                if family.count_params is not None:
                    memo[widths] = int(family.count_params(widths, tuple(input_shape), int(num_classes)))
                else:
                    memo[widths] = int(count(family.name, widths, tuple(input_shape), int(num_classes)))
            except KeyboardInterrupt:
                raise
            except Exception as error:  # a builder that refuses these widths: infeasible, not fatal
                memo[widths] = INFEASIBLE
                errors[widths] = " ".join(f"{type(error).__name__}: {error}".split())
        return memo[widths]

    exact.errors = errors
    return exact


def smallest_params(family, n_widths, input_shape, num_classes, count=None):
    """Parameter count of the family's smallest model (every width 1); :data:`INFEASIBLE` where it cannot be built."""
    return counter(family, input_shape, num_classes, count)((1,) * n_widths)


def _scaled(proportions, scale):
    return tuple(max(1, int(math.floor(scale * p))) for p in proportions)


def solve_widths(family, budget, proportions, input_shape, num_classes, count=None):
    """The widest widths of ``family`` in the given proportions within ``budget``.

    The widths are ``max(1, floor(s * p_i))`` for the largest scale ``s`` that
    fits; then the knob furthest below its share is widened one unit at a time
    while the total still fits, so that little of the budget is left unused
    and the split stays the one asked for. Every candidate
    is checked with the family's exact count, so the result never exceeds the
    budget.

    Args:
        family: a :class:`widthvsprune.families.Family` or its name.
        budget: the parameter budget, an integer >= 0.
        proportions: positive numbers, one per knob: the shape's split of
            width between the knobs (the wide widths give uniform narrowing).
        input_shape: the shape of one example, without the batch dimension.
        num_classes: number of output classes.
        count: for a family without a count function,
            ``f(family_name, widths, input_shape, num_classes)`` counting by
            building the model (an engine's ``count_params``). Every candidate
            is then built once (memoized): a few dozen builds per solve.

    Returns:
        A :class:`Match`.

    Example:

    >>> m = solve_widths("mlp", 50_000, (300, 100), (28, 28), 10)
    >>> m.params <= 50_000
    True
    """
    if isinstance(family, str):
        family = families.get_family(family)
    proportions = tuple(float(p) for p in proportions)
    if not proportions or any(not p > 0 for p in proportions):
        raise ValueError(
            f"Expected positive proportions. Received: proportions={proportions!r}"
        )
    budget = int(budget)
    count = counter(family, input_shape, num_classes, count)
    smallest = (1,) * len(proportions)
    lo = 0.0
    if count(smallest) == INFEASIBLE:  # the family refuses its narrowest models: find where it starts building
        lo = 1.0 / min(proportions)
        while count(_scaled(proportions, lo)) == INFEASIBLE and max(_scaled(proportions, lo)) <= max(budget, 1):
            lo *= 2
        if not count(_scaled(proportions, lo)) <= budget:
            failed = _widest_failed(count, budget)
            error = count.errors.get(failed, "")
            return Match(None, 0, budget, f"no-narrow-fits: no {family.name} within {budget} parameters could be "
                                          f"built ({error})", error, failed)
    elif count(smallest) > budget:
        return Match(
            None,
            0,
            budget,
            f"no-narrow-fits: the smallest {family.name} (widths "
            f"{families.describe_widths(smallest)}) has {count(smallest)} parameters",
        )
    # Largest scale that fits: exponential search, then bisection on s.
    hi = max(lo, 1.0 / min(proportions))
    while count(_scaled(proportions, hi)) <= budget:
        lo, hi = hi, hi * 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if count(_scaled(proportions, mid)) <= budget:
            lo = mid
        else:
            hi = mid
    widths = list(_scaled(proportions, lo))
    # Fill what is left without leaving the split: widen the knob furthest below
    # its share, one unit at a time, until that knob no longer fits.
    while True:
        i = min(range(len(widths)), key=lambda j: (widths[j] / proportions[j], j))
        trial = list(widths)
        trial[i] += 1
        if count(trial) > budget:
            break
        widths = trial
    params = int(count(widths))
    note = ""
    if params < UNDERFILLED_BELOW * budget:
        step = min(
            count(tuple(w + (j == i) for j, w in enumerate(widths))) - params
            for i in range(len(widths))
        )
        note = "" if step == INFEASIBLE else (
            f"closest fit: one more unit of width costs {step} parameters, "
            f"{budget - params} are left"
        )
    return Match(tuple(int(w) for w in widths), params, budget, note)


def _widest_failed(count, budget):
    """Of the widths that failed to build, the widest (by their sum) that the budget would have reached."""
    failed = sorted(count.errors, key=lambda w: (sum(w), w))
    return failed[-1] if failed else None


def split_proportions(wide_widths, multipliers):
    """Proportions of a shape: the wide widths, each scaled by a multiplier.

    The first knob keeps its wide proportion; ``multipliers`` (one fewer than
    the knobs) move each further knob's share up or down.
    """
    wide_widths = tuple(wide_widths)
    if len(multipliers) != len(wide_widths) - 1:
        raise ValueError(
            f"Expected {len(wide_widths) - 1} multiplier(s). Received: multipliers={multipliers!r}"
        )
    return (float(wide_widths[0]),) + tuple(
        float(w) * float(m) for w, m in zip(wide_widths[1:], multipliers)
    )
