"""Your own Keras model as it is: a small residual CNN with batch normalization, on scikit-learn's digits (offline).

The model below is written the way a Keras user writes one: nothing of
widthvsprune in it. ``family_from_model`` reads its config and finds the
widths the narrow arm may shrink: the two residual convolutions meet in
``Add``, so they share one width (16), and the hidden ``Dense`` has its own
(32). The output layer keeps the dataset's 10 classes, and its softmax is
trained as logits. A Keras 3 model trains on the ``jax`` engine, which
``engine="auto"`` picks for it.

Run it with ``widthvsprune run studies/keras_model.py`` (about two and a half
minutes on a 2-core CPU).
"""

import keras

from widthvsprune import Pruning, Recipe, Study, Tuning, family_from_model, register_family

inputs = keras.Input(shape=(8, 8, 1))
x = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(inputs)
x = keras.layers.BatchNormalization()(x)
x = keras.layers.ReLU()(x)
y = keras.layers.Conv2D(16, 3, padding="same", use_bias=False)(x)
y = keras.layers.BatchNormalization()(y)
x = keras.layers.ReLU()(keras.layers.Add()([x, y]))
x = keras.layers.MaxPooling2D()(x)
x = keras.layers.Flatten()(x)
x = keras.layers.Dense(32, activation="relu")(x)
outputs = keras.layers.Dense(10, activation="softmax")(x)
model = keras.Model(inputs, outputs, name="residual_cnn")

register_family(family_from_model(model), overwrite=True)

STUDY = Study(
    name="keras_model",
    dataset="digits",
    family="residual_cnn",
    sparsities=(0.5, 0.8, 0.9),
    seeds=(0, 1, 2),
    baseline=Recipe(epochs=8, batch_size=32, learning_rate=1e-3),
    finetune=Recipe(epochs=4, batch_size=32, learning_rate=1e-3),
    pruning=Pruning(frequency=5, end_fraction=0.5),
    tuning=Tuning(trials=6),
)

if __name__ == "__main__":
    from widthvsprune.cli import run_file

    run_file(__file__)
