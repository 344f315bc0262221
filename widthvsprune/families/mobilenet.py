"""MobileNet v1 (Howard et al., 2017) for small images, with a width per stage.

A 3x3 Conv-BN-ReLU stem, then groups of depthwise-separable blocks
(3x3 DepthwiseConv2D-BN-ReLU, then 1x1 Conv-BN-ReLU), global average pooling
and a dense layer. The widths are the stem's channels and each group's
channels, ``(32, 64, 128, 256, 512, 1024)`` by default; the groups hold
``GROUP_BLOCKS = (1, 2, 2, 6, 2)`` blocks, as in the paper's Table 1. A
width multiplier ``alpha`` is the special case ``widths = alpha * defaults``;
separate widths let the narrow arm shrink stages unevenly.

Strides for 32x32 inputs: the paper's stem has stride 2 and the first block
of the 128, 256, 512 and 1024 groups stride 2 (total stride 32, 224 -> 7).
Here the stem has stride 1 and the groups keep theirs (total stride 16), so
CIFAR's 32x32 ends at 2x2 before pooling rather than 1x1; this is the usual
CIFAR adaptation (as in widely used CIFAR ports of MobileNet). The paper's
second 1024 block is listed with stride 2 in Table 1, which is a typo: it has
stride 1 (the output stays 7x7). Inputs need ``MIN_SIDE`` pixels a side for
every stride-2 block to halve a real feature map.

Parameters do not depend on the strides: 3,239,114 at the default widths on
CIFAR-10, 44,640 of them in the depthwise kernels (which tfmot does not
prune) and 43,776 in batch normalization. Convolutions have no bias and
He-normal initial weights.
"""

from widthvsprune.families.inputs import image, input_layers
from widthvsprune.families.layer_counts import batch_norm, conv_no_bias, dense, depthwise

GROUP_BLOCKS = (1, 2, 2, 6, 2)
GROUP_STRIDES = (1, 2, 2, 2, 2)  # of each group's first block; the others have stride 1
STEM_STRIDE = 1
MIN_SIDE = 16


def _blocks(widths):
    """``(group, block, width, stride)`` of every depthwise-separable block."""
    for group, (width, blocks, stride) in enumerate(zip(widths[1:], GROUP_BLOCKS, GROUP_STRIDES)):
        for block in range(blocks):
            yield group, block, width, stride if block == 0 else 1


def count_mobilenet(widths, input_shape, num_classes):
    """Stem Conv-BN -> depthwise-separable blocks (DW-BN, 1x1 Conv-BN) -> GAP -> Dense."""
    _, _, channels = image(input_shape)
    total = conv_no_bias(3, channels, widths[0]) + batch_norm(widths[0])
    c_in = widths[0]
    for _, _, width, _ in _blocks(widths):
        total += depthwise(3, c_in) + batch_norm(c_in) + conv_no_bias(1, c_in, width) + batch_norm(width)
        c_in = width
    return total + dense(c_in, num_classes)


def build_mobilenet(widths, input_shape, num_classes, keras):
    widths = tuple(int(w) for w in widths)
    image(input_shape)  # checks the rank
    layers = keras.layers
    inputs, x = input_layers(input_shape, keras, target_rank=3)
    x = layers.Conv2D(widths[0], 3, strides=STEM_STRIDE, padding="same", use_bias=False,
                      kernel_initializer="he_normal", name="stem_conv")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = layers.ReLU(name="stem_relu")(x)
    for group, block, width, stride in _blocks(widths):
        name = f"group{group + 1}_block{block + 1}"
        x = layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False,
                                   depthwise_initializer="he_normal", name=f"{name}_dw")(x)
        x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
        x = layers.ReLU(name=f"{name}_dw_relu")(x)
        x = layers.Conv2D(width, 1, use_bias=False, kernel_initializer="he_normal", name=f"{name}_pw")(x)
        x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
        x = layers.ReLU(name=f"{name}_pw_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="mobilenet")
