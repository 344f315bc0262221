"""Pruning-schedule arithmetic (pure, no TensorFlow).

tfmot's ``PolynomialDecay`` updates masks only at steps where
``(step - begin_step) % frequency == 0`` and ``step <= end_step``. If
``end_step - begin_step`` is not a multiple of ``frequency`` the last update
happens before ``end_step`` and the target sparsity is never reached. These
functions choose steps so that it always is.
"""

import dataclasses
import math

from widthvsprune.steps import steps_per_epoch

#: Mask updates over the pruning span when ``Pruning.frequency`` is not set: enough for the sparsity to grow
#: gradually (Zhu & Gupta update every 100 to 2,000 steps over spans of thousands), whatever the fine-tune's length.
AUTO_UPDATES = 16
#: A schedule with fewer mask updates than this prunes in a few large steps: it is named before training.
FEW_UPDATES = 4


@dataclasses.dataclass(frozen=True)
class ScheduleSteps:
    """Steps of one pruning fine-tune.

    Attributes:
        steps_per_epoch: optimizer steps per epoch.
        total_steps: optimizer steps of the whole fine-tune.
        begin_step: first mask update.
        end_step: last mask update, at which the target is reached.
        frequency: steps between mask updates (possibly lowered so that at
            least one update happens after ``begin_step``).
    """

    steps_per_epoch: int
    total_steps: int
    begin_step: int
    end_step: int
    frequency: int


def schedule_steps(num_examples, batch_size, epochs, frequency, begin_step=0, end_fraction=1.0):
    """Chooses ``end_step`` so that the final mask update lands on it.

    tfmot's wrapper increments its pruning step before each batch, so the
    schedule sees steps ``1 .. total_steps``. ``end_step`` is the last step
    ``<= total_steps`` with ``end_step - begin_step`` a positive multiple of
    ``frequency``. With ``end_fraction < 1`` the masks stop changing after
    that share of the fine-tune, and the rest of it recovers accuracy at the
    final sparsity. When the pruning span is shorter than one ``frequency``,
    the frequency is lowered to what fits. ``frequency=None`` follows the
    span's length: :data:`AUTO_UPDATES` updates over it (every step when it
    is shorter than that).

    Raises:
        ValueError: if the fine-tune has no step after ``begin_step``.
    """
    per_epoch = steps_per_epoch(num_examples, batch_size)
    total = per_epoch * int(epochs)
    last = int(math.floor(total * float(end_fraction)))
    if last <= begin_step:
        raise ValueError(
            "Expected the fine-tune to last more steps than pruning.begin_step. "
            f"Received: begin_step={begin_step} with {total} fine-tune steps"
        )
    span = last - begin_step
    frequency = auto_frequency(span) if frequency is None else min(int(frequency), span)
    end_step = begin_step + (span // frequency) * frequency
    return ScheduleSteps(per_epoch, total, int(begin_step), int(end_step), int(frequency))


def auto_frequency(span):
    """The steps between mask updates that give :data:`AUTO_UPDATES` updates over a pruning span of ``span`` steps
    (1 when the span is shorter)."""
    return max(1, int(span) // AUTO_UPDATES)


def mask_updates(steps):
    """How many times the masks change over a fine-tune (a :class:`ScheduleSteps`)."""
    return sum(updates_masks_at(t, steps.begin_step, steps.end_step, steps.frequency)
               for t in range(1, steps.total_steps + 1))


def updates_masks_at(step, begin_step, end_step, frequency):
    """Whether ``PolynomialDecay`` updates masks at ``step`` (tfmot's ``_should_prune_in_step``).

    A negative ``end_step`` means the updates never stop.
    """
    in_range = step >= begin_step and (step <= end_step or end_step < 0)
    return in_range and (step - begin_step) % frequency == 0


def polynomial_sparsity(step, initial, final, begin_step, end_step, power=3):
    """Zhu & Gupta's schedule: the target sparsity at ``step``."""
    if step <= begin_step:
        return initial
    if step >= end_step:
        return final
    progress = (step - begin_step) / (end_step - begin_step)
    return final + (initial - final) * (1 - progress) ** power
