"""CIFAR-10: ResNet-20 pruned from 50% to 95% sparsity against narrower ResNets, 3 seeds, one GPU.

The baseline follows He et al. (2016, section 4.2) as far as a ``Recipe``
can: SGD with momentum 0.9 from learning rate 0.1, batch 128, 64,000
iterations, which on the 45,000 training images left after holding out 5,000
for validation (as He et al. do) are 182 epochs. He et al. also divide the
learning rate by 10 at 32,000 and 48,000 iterations, use weight decay 1e-4
and augment with 4-pixel padding, random 32x32 crops and horizontal flips;
``Recipe`` has no field for any of these yet, so this baseline trains at a
constant rate without them and will fall short of their 91.25% for ResNet-20.
The pruned arm continues at 0.01 (the rate of He et al.'s second phase) for
40 epochs, pruning every 100 steps (tfmot's default) over the first three
quarters. Needs CIFAR-10 in the Keras cache (downloaded on first use).
"""

from widthvsprune import Pruning, Recipe, Study, Tuning

STUDY = Study(
    name="cifar10_resnet",
    dataset="cifar10",
    family="resnet",
    widths=(16, 32, 64),
    sparsities=(0.5, 0.75, 0.9, 0.95),
    seeds=(0, 1, 2),
    baseline=Recipe(epochs=182, batch_size=128, learning_rate=0.1, optimizer="sgd"),
    finetune=Recipe(epochs=40, batch_size=128, learning_rate=0.01, optimizer="sgd"),
    pruning=Pruning(allocation="uniform", frequency=100, end_fraction=0.75),
    tuning=Tuning(oracle="bayesian", trials=4, learning_rate_min=1e-3, learning_rate_max=0.3),
)

if __name__ == "__main__":
    from widthvsprune.cli import run_file

    run_file(__file__)
