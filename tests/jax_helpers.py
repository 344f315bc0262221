"""Shared pieces of the jax engine's tests: a small digits split."""

import pathlib

from widthvsprune import data

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
