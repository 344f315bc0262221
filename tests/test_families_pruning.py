"""Keeping the output layer dense: the layers left unwrapped keep their weights."""

import numpy as np

from widthvsprune import Pruning, models, pruning, schedules


def test_keeping_the_output_dense_keeps_every_unwrapped_layers_weights():
    model = models.build("resnet", (4, 4, 4), (8, 8, 3), 10, seed=0)
    rng = np.random.default_rng(0)
    model.set_weights([rng.uniform(0.5, 1.5, size=w.shape).astype("float32") for w in model.get_weights()])
    steps = schedules.schedule_steps(64, 32, 1, 1)
    wrapped = pruning.wrap(model, pruning.make_schedule(0.5, Pruning(), steps), prune_output=False)
    for before, after in zip(model.get_weights(), pruning.strip(wrapped).get_weights()):
        np.testing.assert_array_equal(before, after)  # batch normalization and the output layer included
