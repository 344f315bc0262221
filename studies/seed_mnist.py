"""The seed experiment: TensorFlow's "Pruning in Keras" MNIST example, exactly.

Conv2D(12, 3x3) -> MaxPool -> Dense(10) (20,410 parameters), 4 epochs of Adam
with 10% of the training set held out for validation, then magnitude pruning
from 50% to 80% sparsity over 2 epochs at batch 128 (tfmot's default mask
update frequency of 100 steps). The example reported 97.26% baseline and
96.89% pruned test accuracy. Needs MNIST in the Keras cache (downloaded on
first use).
"""

from widthvsprune import Pruning, Recipe, Study, Tuning

STUDY = Study(
    name="seed_mnist",
    dataset="mnist",
    family="seed_cnn",
    widths=(12,),
    sparsities=(0.8,),
    seeds=(0,),
    validation_fraction=0.1,
    baseline=Recipe(epochs=4, batch_size=32, learning_rate=1e-3),
    finetune=Recipe(epochs=2, batch_size=128, learning_rate=1e-3),
    pruning=Pruning(allocation="uniform", initial_sparsity=0.5, frequency=100, end_fraction=1.0),
    tuning=Tuning(trials=8),
)

if __name__ == "__main__":
    from widthvsprune.cli import run_file

    run_file(__file__)
