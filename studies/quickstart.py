"""Quickstart: an MLP on scikit-learn's bundled digits, offline, about a minute on a laptop CPU.

Every arm is tuned with the same number of trials, and the untuned controls are
trained too. Run it with ``python studies/quickstart.py`` or
``widthvsprune run studies/quickstart.py``.
"""

from widthvsprune import Pruning, Recipe, Study, Tuning

STUDY = Study(
    name="quickstart",
    dataset="digits",
    family="mlp",
    widths=(128, 64),
    sparsities=(0.5, 0.8, 0.9, 0.95),
    seeds=(0, 1, 2),
    baseline=Recipe(epochs=12, batch_size=32, learning_rate=1e-3),
    finetune=Recipe(epochs=8, batch_size=32, learning_rate=1e-3),
    pruning=Pruning(allocation="uniform", frequency=5, end_fraction=0.5),
    tuning=Tuning(oracle="bayesian", trials=6),
)

if __name__ == "__main__":
    from widthvsprune.cli import run_file

    run_file(__file__)
