"""CIFAR-10: MobileNet v1 pruned from 50% to 95% sparsity against narrower MobileNets, 3 seeds, one GPU.

Zhu & Gupta (2017) asked this question of MobileNet v1 on ImageNet: a pruned
MobileNet against one made narrower with a width multiplier. Here the network
is the CIFAR adaptation of the ``mobilenet`` family (stride-1 stem, 2x2 before
pooling, 3.2M parameters), and the narrow arm may shrink each stage by its own
factor. The recipe is the one used for CIFAR-10 ResNets (He et al., 2016),
which the common CIFAR ports of MobileNet also use: SGD with momentum 0.9 from
0.1, batch 128, here for 200 epochs. Those recipes add a learning-rate
schedule, weight decay and crop-and-flip augmentation, for which ``Recipe``
has no field yet. tfmot leaves the depthwise kernels (44,640 weights) and the
batch normalization (43,776) dense, so the pruned arm's nonzeros never fall
below about 88,000. Needs CIFAR-10 in the Keras cache (downloaded on first use).
"""

from widthvsprune import Pruning, Recipe, Study, Tuning

STUDY = Study(
    name="cifar10_mobilenet",
    dataset="cifar10",
    family="mobilenet",
    widths=(32, 64, 128, 256, 512, 1024),
    sparsities=(0.5, 0.75, 0.9, 0.95),
    seeds=(0, 1, 2),
    baseline=Recipe(epochs=200, batch_size=128, learning_rate=0.1, optimizer="sgd"),
    finetune=Recipe(epochs=40, batch_size=128, learning_rate=0.01, optimizer="sgd"),
    pruning=Pruning(allocation="uniform", frequency=100, end_fraction=0.75),
    tuning=Tuning(oracle="bayesian", trials=4, learning_rate_min=1e-3, learning_rate_max=0.3),
)

if __name__ == "__main__":
    from widthvsprune.cli import run_file

    run_file(__file__)
