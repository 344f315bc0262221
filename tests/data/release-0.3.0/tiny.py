"""A tiny study whose results folder, written by widthvsprune 0.3.0, the tests resume."""

from widthvsprune import Pruning, Recipe, Study, Tuning

STUDY = Study(
    name="tiny",
    dataset="digits",
    family="mlp",
    widths=(12, 6),
    sparsities=(0.5, 0.8),
    seeds=(0,),
    baseline=Recipe(epochs=2, batch_size=64),
    finetune=Recipe(epochs=2, batch_size=64),
    pruning=Pruning(frequency=5, end_fraction=0.75),
    tuning=Tuning(oracle="random", trials=3, controls=True),
    engine="jax",
)
