"""Families derived from built Keras models: their widths, their narrow models, and what is refused."""

import json
import os
import subprocess
import sys
import textwrap
import zipfile

import keras
import numpy as np
import pytest

from widthvsprune import StudyError, engines, families, family_from_file, family_from_model
from widthvsprune.families import budgets, conv2d
from widthvsprune.study.loading import fresh_layer_names


def dense(n_in, n_out):
    return n_in * n_out + n_out


def mlp(k):
    return k.Sequential([k.Input((64,)), k.layers.Dense(16, activation="relu"), k.layers.Dropout(0.1),
                         k.layers.Dense(8, activation="relu"), k.layers.Dense(10)], name="mlp_model")


def seed_cnn(k):
    return k.Sequential([k.Input((8, 8, 1)), k.layers.Conv2D(12, (3, 3), activation="relu"),
                         k.layers.MaxPooling2D((2, 2)), k.layers.Flatten(), k.layers.Dense(10)], name="cnn_model")


def residual_cnn(k):
    """Conv(a) -> BN -> ReLU -> Conv(a) -> BN, added to the first ReLU's output -> Conv1x1(b) -> GAP -> Dense(c)."""
    x = k.Input((8, 8, 3))
    h = k.layers.ReLU()(k.layers.BatchNormalization()(k.layers.Conv2D(6, 3, padding="same", name="conv_a")(x)))
    y = k.layers.BatchNormalization()(k.layers.Conv2D(6, 3, padding="same", name="conv_b")(h))
    z = k.layers.ReLU()(k.layers.Add()([h, y]))
    z = k.layers.GlobalAveragePooling2D()(k.layers.Conv2D(10, 1, name="conv_c")(z))
    z = k.layers.Dense(16, activation="relu")(z)
    return k.Model(x, k.layers.Dense(5)(z), name="residual_model")


def count_residual(widths, channels=3, classes=5):
    a, b, c = widths
    return (9 * channels * a + a) + 4 * a + (9 * a * a + a) + 4 * a + dense(a, b) + dense(b, c) + dense(c, classes)


def build(family, widths, input_shape, num_classes):
    """A Keras 3 model of ``family`` as the jax engine builds it (initial weights without a program per shape)."""
    from widthvsprune.engines.jax import models

    return models.build(family, widths, input_shape, num_classes, seed=0)


def kernel_shapes(model):
    return {layer.name: tuple(layer.kernel.shape) for layer in model.layers if hasattr(layer, "kernel")}


def test_an_mlp_has_one_width_per_hidden_layer_and_rebuilds_at_any_width():
    original = mlp(keras)
    family = family_from_model(original)
    assert (family.name, family.default_widths, family.n_widths) == ("mlp_model", (16, 8), 2)
    assert family.count_params is None and family.keras == "3" and family.weights is None
    model = family.build((5, 3), (64,), 4, keras)
    assert model.count_params() == dense(64, 5) + dense(5, 3) + dense(3, 4)
    assert family.build((16, 8), (64,), 10, keras).get_config() == original.get_config()
    with pytest.raises(StudyError, match=r"^Expected an input shape of rank 1 for family 'mlp_model', like its model's "
                                         r"input \(64,\)\. Received: input_shape=\(8, 8, 1\)$"):
        family.build((5, 3), (8, 8, 1), 10, keras)


def test_the_seed_cnn_derived_counts_as_the_shipped_seed_cnn():
    original = seed_cnn(keras)
    family = family_from_model(original, name="cnn")
    assert family.default_widths == (12,)
    for filters in (1, 5, 12):
        built = build(family, (filters,), (8, 8, 1), 10)
        assert built.count_params() == conv2d.count_seed_cnn((filters,), (8, 8, 1), 10)
    assert family.build((12,), (8, 8, 1), 10, keras).get_config() == original.get_config()


def test_residual_widths_are_tied_and_every_narrow_model_counts_as_built():
    original = residual_cnn(keras)
    family = family_from_model(original)
    # conv_a and conv_b meet in the Add (through BatchNormalization and ReLU): one knob for both.
    assert family.default_widths == (6, 10, 16)
    for widths in ((1, 1, 1), (3, 4, 5), (2, 10, 7), (6, 10, 16)):
        model = build(family, widths, (8, 8, 3), 5)
        a, b, _ = widths
        shapes = kernel_shapes(model)
        assert (shapes["conv_a"], shapes["conv_b"], shapes["conv_c"]) == ((3, 3, 3, a), (3, 3, a, a), (1, 1, a, b))
        assert model.count_params() == count_residual(widths)
    assert family.build((6, 10, 16), (8, 8, 3), 5, keras).get_config() == original.get_config()
    # The input's channels and the number of classes come from the arguments.
    assert build(family, (3, 4, 5), (8, 8, 1), 7).count_params() == count_residual((3, 4, 5), 1, 7)


def test_the_solver_finds_narrow_models_of_a_derived_family_within_the_budget():
    family = families.register_family(family_from_model(residual_cnn(keras), name="from_model_residual"),
                                      overwrite=True)
    engine = engines.load("jax")
    wide = count_residual(family.default_widths)
    assert engine.count_params(family.name, family.default_widths, (8, 8, 3), 5) == wide
    for budget in (wide // 10, wide // 3):
        match = budgets.solve_widths(family, budget, family.default_widths, (8, 8, 3), 5, engine.count_params)
        assert match.fits and match.params == count_residual(match.widths) <= budget
        assert match.params > 0.8 * budget


def test_concatenate_ties_nothing_and_a_channel_keeping_reshape_follows_its_width():
    x = keras.Input((4, 4, 1))
    conv = keras.layers.Conv2D(6, 3)(x)  # 2x2x6
    rows = keras.layers.LayerNormalization()(keras.layers.Reshape((4, 6))(conv))
    left = keras.layers.Dense(5)(keras.layers.GlobalAveragePooling1D()(rows))
    right = keras.layers.Dense(7)(keras.layers.Flatten()(conv))
    both = keras.layers.Concatenate()([left, right])
    family = family_from_model(keras.Model(x, keras.layers.Dense(3)(both)))
    assert family.default_widths == (6, 5, 7)
    model = build(family, (2, 4, 1), (4, 4, 1), 3)
    assert model.count_params() == (9 * 2 + 2) + 2 * 2 + dense(2, 4) + dense(4 * 2, 1) + dense(4 + 1, 3)


def test_a_softmax_on_the_output_becomes_linear_and_nothing_else_changes():
    original = keras.Sequential([keras.Input((64,)), keras.layers.Dense(16, activation="relu"),
                                 keras.layers.Dense(10, activation="softmax"), keras.layers.Softmax()])
    model = family_from_model(original).build((16,), (64,), 10, keras)
    assert model.layers[1].get_config()["activation"] == "linear"
    assert type(model.layers[2]).__name__ == "Activation" and model.layers[2].get_config()["activation"] == "linear"
    assert model.count_params() == original.count_params()


def test_use_weights_keeps_the_models_weights_in_get_weights_order():
    original = mlp(keras)
    family = family_from_model(original, use_weights=True)
    assert [w.shape for w in family.weights] == [w.shape for w in original.get_weights()]
    assert all(np.array_equal(a, b) for a, b in zip(family.weights, original.get_weights()))


@pytest.mark.parametrize("widths", [(3, 4, 5), (6, 10, 16)])
def test_a_tf_keras_model_derives_a_keras_2_family_that_tfmot_can_prune(widths):
    from widthvsprune.engines.tf_keras.backend import keras as tf_keras
    from widthvsprune.engines.tf_keras.backend import sparsity

    original = residual_cnn(tf_keras)
    family = family_from_model(original, name="from_model_tf_keras")
    assert family.keras == "2" and family.default_widths == (6, 10, 16)
    model = family.build(widths, (8, 8, 3), 5, tf_keras)
    assert model.count_params() == count_residual(widths)
    if widths == family.default_widths:
        assert model.get_config() == original.get_config()
    assert len(sparsity.prune_low_magnitude(model).layers) == len(model.layers)
    with pytest.raises(StudyError, match=r"^Expected tf_keras \(Keras 2\) to build family 'from_model_tf_keras'.*"
                                         r"engine 'tf_keras'\)\. Received: keras=keras 3"):
        family.build(widths, (8, 8, 3), 5, keras)


SAVE_UNDER_TENSORFLOW = textwrap.dedent("""
    import sys
    import keras
    import numpy as np
    assert keras.backend.backend() == "tensorflow"
    sys.path.insert(0, sys.argv[2])
    from test_from_model import residual_cnn
    keras.utils.set_random_seed(0)
    model = residual_cnn(keras)
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    np.save(sys.argv[1] + "/x.npy", x)
    np.save(sys.argv[1] + "/y.npy", np.asarray(model(x, training=False)))
    model.save(sys.argv[1] + "/residual.keras")
    open(sys.argv[1] + "/residual.json", "w").write(model.to_json())
""")


@pytest.fixture(scope="module")
def saved_under_tensorflow(tmp_path_factory):
    """A Keras 3 model built, run and saved in a process where Keras runs on TensorFlow."""
    folder = tmp_path_factory.mktemp("tensorflow_backend")
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-c", SAVE_UNDER_TENSORFLOW, str(folder), os.path.dirname(__file__)],
                   env=env, check=True, capture_output=True, timeout=300)
    return folder


def test_a_keras_3_model_saved_under_tensorflow_derives_and_runs_on_jax(saved_under_tensorflow):
    assert keras.backend.backend() == "jax"
    family = family_from_file(saved_under_tensorflow / "residual.keras", use_weights=True)
    assert (family.name, family.keras, family.default_widths) == ("residual", "3", (6, 10, 16))
    model = family.build(family.default_widths, (8, 8, 3), 5, keras)
    model.set_weights(family.weights)
    x, y = (np.load(saved_under_tensorflow / f) for f in ("x.npy", "y.npy"))
    np.testing.assert_allclose(np.asarray(model(x, training=False)), y, rtol=1e-4, atol=1e-5)
    from_json = family_from_file(saved_under_tensorflow / "residual.json", name="residual_json")
    assert build(from_json, (3, 4, 5), (8, 8, 3), 5).count_params() == count_residual((3, 4, 5))
    with pytest.raises(StudyError, match=r"^Expected a \.keras file for use_weights=True"):
        family_from_file(saved_under_tensorflow / "residual.json", use_weights=True)


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="subclassed")
        self.hidden, self.out = keras.layers.Dense(8), keras.layers.Dense(3)

    def call(self, x):
        return self.out(self.hidden(x))


def subclassed():
    model = Subclassed()
    model(np.zeros((1, 4), "float32"))
    return model


def shared_layer():
    x = keras.Input((4,))
    hidden, shared = keras.layers.Dense(6)(x), keras.layers.Dense(4)
    return keras.Model(x, keras.layers.Dense(3)(keras.layers.Add()([shared(hidden), shared(hidden)])))


def flattened_residual():
    x = keras.Input((2, 2, 1))
    flat = keras.layers.Flatten()(keras.layers.Conv2D(1, 1)(x))
    return keras.Model(x, keras.layers.Dense(3)(keras.layers.Add()([flat, keras.layers.Dense(4)(flat)])))


REFUSED = {
    "subclassed": (subclassed,
                   r"a subclassed model has no config.* Received: model='subclassed' \(of type Subclassed\)$"),
    "lambda": (lambda: keras.Sequential([keras.Input((4,)), keras.layers.Lambda(lambda t: t * 2),
                                         keras.layers.Dense(8), keras.layers.Dense(3)]),
               r"^Expected layers whose effect on the width is known .* Received: layer 'lambda.*' of type Lambda; "
               r"register it with widthvsprune\.register_layer\('Lambda', widths=\(\.\.\.\), passes_width=\.\.\.\)$"),
    "no_hidden_width": (lambda: keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(),
                                                  keras.layers.Dense(10)]),
                        r"^Expected a hidden layer with units or filters to shrink .* output layer is 'dense.*'$"),
    "shared_layer": (shared_layer,
                     r"a shared layer ties its inputs' widths\)\. Received: layer 'dense.*' called 2 times$"),
    "merged_flatten": (flattened_residual, r"Received: layer 'add.*' of type Add merges 'flatten.*', whose width is"),
    "output_not_logits": (lambda: keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Dense(8),
                                                    keras.layers.Dense(3)]),
                          r"^Expected a model whose output is \(batch, classes\)\. Received: output shape "
                          r"\(None, 4, 4, 3\)"),
    "not_built": (lambda: keras.Sequential([keras.layers.Dense(3)]), r"^Expected a built model.*, not built$"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_what_cannot_be_derived_is_refused_in_one_line_naming_the_layer(case):
    make, message = REFUSED[case]
    with pytest.raises(StudyError, match=message) as raised:
        family_from_model(make())
    assert "\n" not in str(raised.value) and str(raised.value).startswith("Expected ")


def test_data_without_the_channel_axis_a_saved_model_has_gets_it_added(tmp_path):
    """A model built on (8, 8, 1), studied on npz images of shape (N, 8, 8): the channel axis is added, as the
    shipped image families add it."""
    from widthvsprune import Study, data
    from widthvsprune.run.study import preflight

    model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(6, 3, activation="relu"),
                              keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "cnn.keras")
    digits = data.load("digits")
    np.savez(tmp_path / "flat.npz", x_train=digits.x_train[..., 0], y_train=digits.y_train,
             x_test=digits.x_test[..., 0], y_test=digits.y_test)
    assert digits.x_train[..., 0].shape[1:] == (8, 8)
    study = Study(name="channels", dataset=f"npz:{tmp_path / 'flat.npz'}", family=f"model:{tmp_path / 'cnn.keras'}",
                  sparsities=(0.5,), engine="jax")
    splits = preflight(study, tmp_path / "out")
    assert splits.input_shape == (8, 8, 1) and splits.x_test.shape == (len(digits.x_test), 8, 8, 1)
    np.testing.assert_array_equal(splits.x_test[..., 0], digits.x_test[..., 0])
    built = families.get_family(study.family).build((3,), splits.input_shape, splits.num_classes, keras)
    assert built.count_params() == 9 * 3 + 3 + 6 * 6 * 3 * 10 + 10


ON_JAX = textwrap.dedent("""
    import json, sys, zipfile
    import keras
    from widthvsprune import family_from_model
    from widthvsprune.families.derived import configs
    assert keras.backend.backend() == "jax"
    sys.path.insert(0, sys.argv[2])
    from test_from_model import residual_cnn
    model = residual_cnn(keras)
    family = family_from_model(model, name="residual")
    with configs.serializing(model):
        model.save(sys.argv[1])
    print(json.dumps({"digest": family.digest, "widths": family.default_widths,
                      "saved": zipfile.ZipFile(sys.argv[1]).read("config.json").decode(),
                      "tensorflow": "tensorflow" in sys.modules}))
""")


def test_a_keras_3_config_is_derived_and_saved_without_importing_tensorflow_and_is_the_same_as_with_it(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.update(KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", ON_JAX, str(tmp_path / "unimported.keras"), os.path.dirname(__file__)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    alone = json.loads(done.stdout.splitlines()[-1])
    assert not alone["tensorflow"] and alone["widths"] == [6, 10, 16]

    pytest.importorskip("tensorflow")  # here, Keras asks TensorFlow about every value it serializes
    with fresh_layer_names():  # the automatic layer names of a new process
        model = residual_cnn(keras)
    assert family_from_model(model, name="residual").digest == alone["digest"]
    model.save(tmp_path / "imported.keras")
    saved = zipfile.ZipFile(tmp_path / "imported.keras").read("config.json")
    assert without_object_ids(json.loads(alone["saved"])) == without_object_ids(json.loads(saved))


def without_object_ids(config):
    """A saved config without Keras's ``shared_object_id`` entries (Python object ids, other in every process)."""
    if isinstance(config, dict):
        return {k: without_object_ids(v) for k, v in config.items() if k != "shared_object_id"}
    if isinstance(config, list):
        return [without_object_ids(v) for v in config]
    return config
