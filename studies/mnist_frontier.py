"""The MNIST frontier: LeNet-300-100 from 50% to 98% sparsity, 3 seeds.

The same sweep for the seed CNN is one override away:
``widthvsprune run studies/mnist_frontier.py --set family=seed_cnn --set name=mnist_frontier_cnn``.
Needs MNIST in the Keras cache (downloaded on first use).
"""

from widthvsprune import Pruning, Recipe, Study, Tuning

STUDY = Study(
    name="mnist_frontier",
    dataset="mnist",
    family="mlp",
    widths=(300, 100),
    sparsities=(0.5, 0.75, 0.9, 0.95, 0.98),
    seeds=(0, 1, 2),
    baseline=Recipe(epochs=10, batch_size=128, learning_rate=1e-3),
    finetune=Recipe(epochs=4, batch_size=128, learning_rate=5e-4),
    pruning=Pruning(allocation="uniform", frequency=50, end_fraction=0.75),
    tuning=Tuning(oracle="bayesian", trials=8),
)

if __name__ == "__main__":
    from widthvsprune.cli import run_file

    run_file(__file__)
