"""Pruning-step arithmetic: pure, no TensorFlow."""

import pytest

from widthvsprune.pruning import schedules


@pytest.mark.parametrize("n,batch,epochs,freq,begin,frac", [
    (54_000, 128, 2, 100, 0, 1.0),   # the seed notebook: 844 steps
    (1293, 32, 4, 10, 0, 0.75),
    (1293, 64, 2, 5, 3, 0.5),
    (100, 64, 1, 100, 0, 1.0),       # fewer steps than one frequency
])
def test_end_step_is_a_multiple_of_frequency_within_the_fine_tune(n, batch, epochs, freq, begin, frac):
    s = schedules.schedule_steps(n, batch, epochs, freq, begin, frac)
    assert s.total_steps == -(-n // batch) * epochs
    assert (s.end_step - s.begin_step) % s.frequency == 0
    assert s.begin_step < s.end_step <= s.total_steps * frac
    assert s.frequency <= freq


def test_seed_notebook_schedule_ends_on_the_last_update_before_844():
    s = schedules.schedule_steps(54_000, 128, 2, 100)
    assert (s.total_steps, s.end_step, s.frequency) == (844, 800, 100)


def test_no_step_after_begin_is_refused():
    with pytest.raises(ValueError, match="begin_step"):
        schedules.schedule_steps(100, 100, 1, 10, begin_step=5)


def test_polynomial_sparsity_is_cubic_between_its_ends():
    assert schedules.polynomial_sparsity(0, 0.5, 0.8, 0, 100) == 0.5
    assert schedules.polynomial_sparsity(100, 0.5, 0.8, 0, 100) == 0.8
    assert schedules.polynomial_sparsity(50, 0.0, 0.8, 0, 100) == pytest.approx(0.8 * (1 - 0.5**3))


def test_mask_updates_happen_every_frequency_steps_up_to_end_step():
    s = schedules.schedule_steps(1293, 32, 8, 5, begin_step=0, end_fraction=0.5)
    steps = [t for t in range(1, s.total_steps + 1)
             if schedules.updates_masks_at(t, s.begin_step, s.end_step, s.frequency)]
    assert steps == list(range(5, s.end_step + 1, 5)) and steps[-1] == s.end_step == 160
    assert schedules.updates_masks_at(10_000, 0, -1, 100)  # a negative end_step never stops
    assert not schedules.updates_masks_at(99, 0, -1, 100)
