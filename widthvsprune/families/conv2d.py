"""Small image CNNs: the seed notebook's CNN, keras.io's simple MNIST convnet and LeNet-5."""

from widthvsprune.families.inputs import spatial
from widthvsprune.families.layer_counts import conv, dense


def _image_input(input_shape, keras):
    layers = [keras.Input(shape=tuple(input_shape))]
    if len(input_shape) == 2:
        layers.append(keras.layers.Reshape(tuple(input_shape) + (1,)))
    return layers


def count_seed_cnn(widths, input_shape, num_classes):
    """Conv2D(f, 3x3, valid) -> MaxPool(2) -> Flatten -> Dense(classes)."""
    (filters,) = widths
    h, w, c = spatial(input_shape)
    pooled = ((h - 2) // 2) * ((w - 2) // 2)
    return conv(3, c, filters) + dense(pooled * filters, num_classes)


def build_seed_cnn(widths, input_shape, num_classes, keras):
    (filters,) = widths
    layers = _image_input(input_shape, keras) + [
        keras.layers.Conv2D(int(filters), (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(num_classes),
    ]
    return keras.Sequential(layers, name="seed_cnn")


def count_mnist_convnet(widths, input_shape, num_classes):
    """Conv2D(f1, 3x3) -> MaxPool(2) -> Conv2D(f2, 3x3) -> MaxPool(2) -> Flatten -> Dropout -> Dense(classes)."""
    f1, f2 = widths
    h, w, c = spatial(input_shape)
    pooled = (((h - 2) // 2 - 2) // 2) * (((w - 2) // 2 - 2) // 2)
    return conv(3, c, f1) + conv(3, f1, f2) + dense(pooled * f2, num_classes)


def build_mnist_convnet(widths, input_shape, num_classes, keras):
    """keras.io's "Simple MNIST convnet": 34,826 parameters on 28x28x1 at widths ``(32, 64)``."""
    f1, f2 = (int(w) for w in widths)
    layers = _image_input(input_shape, keras) + [
        keras.layers.Conv2D(f1, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(f2, (3, 3), activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dropout(0.5),
        keras.layers.Dense(num_classes),
    ]
    return keras.Sequential(layers, name="mnist_convnet")


def count_lenet5(widths, input_shape, num_classes):
    """Conv(c1,5x5,same) -> Pool -> Conv(c2,5x5,same) -> Pool -> Dense(d1) -> Dense(d2) -> Dense."""
    c1, c2, d1, d2 = widths
    h, w, c = spatial(input_shape)
    pooled = (h // 2 // 2) * (w // 2 // 2)
    return conv(5, c, c1) + conv(5, c1, c2) + dense(pooled * c2, d1) + dense(d1, d2) + dense(d2, num_classes)


def build_lenet5(widths, input_shape, num_classes, keras):
    c1, c2, d1, d2 = (int(w) for w in widths)
    layers = _image_input(input_shape, keras) + [
        keras.layers.Conv2D(c1, (5, 5), padding="same", activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Conv2D(c2, (5, 5), padding="same", activation="relu"),
        keras.layers.MaxPooling2D((2, 2)),
        keras.layers.Flatten(),
        keras.layers.Dense(d1, activation="relu"),
        keras.layers.Dense(d2, activation="relu"),
        keras.layers.Dense(num_classes),
    ]
    return keras.Sequential(layers, name="lenet5")
