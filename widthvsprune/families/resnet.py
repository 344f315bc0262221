"""CIFAR-style ResNet (He et al., 2016, section 4.2) with a width per stage.

A 3x3 Conv-BN-ReLU stem, then one stage per width of ``BLOCKS`` basic blocks
(two 3x3 Conv-BN layers, ReLU after the sum with the shortcut). The first
block of every stage after the first halves the resolution (stride 2). A
shortcut is the identity where the shape is unchanged and a 1x1 Conv-BN
projection (He et al.'s option B) where the stride or the width changes.
Global average pooling and a dense layer give the logits. Convolutions have
no bias (the batch normalization after each has a shift) and He-normal
initial weights.

At the default widths ``(16, 32, 64)`` this is ResNet-20: 274,042 parameters
on CIFAR-10, of which 3,136 are batch normalization (all four vectors, see
:mod:`widthvsprune.families.layer_counts`). The stem is as wide as the first stage,
so that stage never needs a projection. With 'same' padding every input of at
least ``MIN_SIDE`` pixels a side gives the last stage at least one pixel.
"""

from widthvsprune.families.inputs import image, input_layers
from widthvsprune.families.layer_counts import batch_norm, conv_no_bias, dense

BLOCKS = 3  # basic blocks per stage: 3 for ResNet-20, 5 for ResNet-32, 9 for ResNet-56
MIN_SIDE = 4


def _strides(widths):
    """``(stage, block, stride)`` of every basic block."""
    for stage in range(len(widths)):
        for block in range(BLOCKS):
            yield stage, block, 2 if stage > 0 and block == 0 else 1


def count_resnet(widths, input_shape, num_classes):
    """Stem Conv-BN -> stages of basic blocks (projection shortcuts where the shape changes) -> GAP -> Dense."""
    _, _, channels = image(input_shape)
    total = conv_no_bias(3, channels, widths[0]) + batch_norm(widths[0])
    c_in = widths[0]
    for stage, _, stride in _strides(widths):
        width = widths[stage]
        total += conv_no_bias(3, c_in, width) + conv_no_bias(3, width, width) + 2 * batch_norm(width)
        if stride != 1 or c_in != width:
            total += conv_no_bias(1, c_in, width) + batch_norm(width)
        c_in = width
    return total + dense(c_in, num_classes)


def _conv_bn(x, width, kernel, stride, name, keras):
    x = keras.layers.Conv2D(width, kernel, strides=stride, padding="same", use_bias=False,
                            kernel_initializer="he_normal", name=f"{name}_conv")(x)
    return keras.layers.BatchNormalization(name=f"{name}_bn")(x)


def build_resnet(widths, input_shape, num_classes, keras):
    widths = tuple(int(w) for w in widths)
    image(input_shape)  # checks the rank
    inputs, x = input_layers(input_shape, keras, target_rank=3)
    x = _conv_bn(x, widths[0], 3, 1, "stem", keras)
    x = keras.layers.ReLU(name="stem_relu")(x)
    c_in = widths[0]
    for stage, block, stride in _strides(widths):
        width, name = widths[stage], f"stage{stage + 1}_block{block + 1}"
        y = _conv_bn(x, width, 3, stride, f"{name}_1", keras)
        y = keras.layers.ReLU(name=f"{name}_1_relu")(y)
        y = _conv_bn(y, width, 3, 1, f"{name}_2", keras)
        shortcut = x
        if stride != 1 or c_in != width:
            shortcut = _conv_bn(x, width, 1, stride, f"{name}_projection", keras)
        x = keras.layers.Add(name=f"{name}_add")([y, shortcut])
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
        c_in = width
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="resnet")
