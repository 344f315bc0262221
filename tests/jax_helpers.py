"""Shared pieces of the jax engine's tests: a small digits split, models and packs."""

import pathlib

from widthvsprune import data
from widthvsprune.engines import base
from widthvsprune.pruning import schedules

ROOT = pathlib.Path(__file__).resolve().parents[1]


def small_splits(n_train=300):
    """Digits with ``n_train`` training examples (300 at batch 32: nine full batches and a short one of 12)."""
    full = data.load("digits")
    return data.Splits(
        name="digits-small",
        x_train=full.x_train[:n_train],
        y_train=full.y_train[:n_train],
        x_val=full.x_val,
        y_val=full.y_val,
        x_test=full.x_test,
        y_test=full.y_test,
        num_classes=full.num_classes,
    )


def spec(widths=(16, 8), seed=0, lr=3e-3, **kwargs):
    """An MLP's :class:`~widthvsprune.engines.base.ModelSpec`."""
    return base.ModelSpec("mlp", tuple(widths), seed=seed, learning_rate=lr, **kwargs)


def pack(*models, epochs=2, **kwargs):
    """A :class:`~widthvsprune.engines.base.Pack` of ``models`` at batch 32 (Adam unless ``optimizer`` says)."""
    return base.Pack(models=tuple(models), batch_size=32, optimizer=kwargs.pop("optimizer", "adam"), epochs=epochs,
                     **kwargs)


def prune_spec(splits, target=0.8, variant="layerwise", epochs=2, frequency=3, prune_output=True, seed=0):
    """Pruning to ``target`` over the first three quarters of ``epochs`` epochs of ``splits`` at batch 32."""
    steps = schedules.schedule_steps(len(splits.x_train), 32, epochs, frequency, 0, 0.75)
    return base.PruneSpec(target, steps, allocation=variant, prune_output=prune_output, seed=seed)
