"""Transformers, embeddings, wrappers, registered layers and one-unit heads: derived, counted, pruned and studied."""

import io
import re

import keras
import numpy as np
import pandas as pd
import pytest
from conftest import tiny_study

from widthvsprune import Recipe, StudyError, Tuning, engines, families, family_from_model, register_layer, run_study
from widthvsprune.data import Splits
from widthvsprune.engines import base
from widthvsprune.engines.jax import models
from widthvsprune.families import budgets
from widthvsprune.pruning import kernel_masks, masks, schedules

SEQUENCE, FEATURES, VOCABULARY = 8, 3, 20


def token_arrays(n, seed, classes=3):
    """Token sequences whose label is their first token's class (``token % classes``): learnable in an epoch."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, VOCABULARY, size=(n, SEQUENCE)).astype("int32")
    return x, (x[:, 0] % classes).astype("int32")


def float_arrays(n, seed, classes=3):
    """Float sequences whose label is the feature with the largest mean."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, SEQUENCE, FEATURES)).astype("float32")
    x[np.arange(n), :, rng.integers(0, classes, n)] += 1.0
    return x, np.argmax(x.mean(axis=1)[:, :classes], axis=-1).astype("int32")


def write_npz(path, make, **kwargs):
    x_train, y_train = make(600, 0, **kwargs)
    x_test, y_test = make(200, 1, **kwargs)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return f"npz:{path}"


def stock_transformer(classes=3):
    """A functional transformer classifier of stock layers: input projection, attention and feed-forward with
    residuals, layer normalization, pooling."""
    inputs = keras.Input((SEQUENCE, FEATURES))
    x = keras.layers.Dense(8, name="projection")(inputs)
    attended = keras.layers.MultiHeadAttention(num_heads=2, key_dim=4, name="attention")(x, x)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, attended]))
    hidden = keras.layers.Dense(16, activation="relu", name="ff_in")(x)
    x = keras.layers.LayerNormalization()(keras.layers.Add()([x, keras.layers.Dense(8, name="ff_out")(hidden)]))
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="stock_transformer")


def bidirectional_classifier():
    inputs = keras.Input((SEQUENCE,), dtype="int32")
    x = keras.layers.Embedding(VOCABULARY, 6, name="tokens")(inputs)
    x = keras.layers.Bidirectional(keras.layers.LSTM(5), name="bilstm")(x)
    x = keras.layers.Dense(7, activation="relu", name="hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="bilstm_classifier")


class TokenAndPositionEmbedding(keras.layers.Layer):
    """keras.io's text classification with a transformer: token and position embeddings, added."""

    def __init__(self, maxlen, vocab_size, embed_dim, **kwargs):
        super().__init__(**kwargs)
        self.token_emb = keras.layers.Embedding(input_dim=vocab_size, output_dim=embed_dim)
        self.pos_emb = keras.layers.Embedding(input_dim=maxlen, output_dim=embed_dim)

    def call(self, x):
        positions = keras.ops.arange(0, keras.ops.shape(x)[-1], 1)
        return self.token_emb(x) + self.pos_emb(positions)


class TransformerBlock(keras.layers.Layer):
    """keras.io's transformer block: attention and feed-forward, each with a residual and layer normalization."""

    def __init__(self, embed_dim, num_heads, ff_dim, rate=0.1, **kwargs):
        super().__init__(**kwargs)
        self.att = keras.layers.MultiHeadAttention(num_heads=num_heads, key_dim=embed_dim)
        self.ffn = keras.Sequential([keras.layers.Dense(ff_dim, activation="relu"), keras.layers.Dense(embed_dim)])
        self.layernorm1 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.layernorm2 = keras.layers.LayerNormalization(epsilon=1e-6)
        self.dropout1 = keras.layers.Dropout(rate)
        self.dropout2 = keras.layers.Dropout(rate)

    def call(self, inputs, training=False):
        attn_output = self.dropout1(self.att(inputs, inputs), training=training)
        out1 = self.layernorm1(inputs + attn_output)
        ffn_output = self.dropout2(self.ffn(out1), training=training)
        return self.layernorm2(out1 + ffn_output)


register_layer(TokenAndPositionEmbedding, widths=("embed_dim",), overwrite=True)
register_layer(TransformerBlock, widths=("num_heads", "ff_dim"), passes_width=True, tied=("embed_dim",),
               overwrite=True)


def keras_io_transformer():
    inputs = keras.Input((SEQUENCE,), dtype="int32")
    x = TokenAndPositionEmbedding(SEQUENCE, VOCABULARY, 8)(inputs)
    x = TransformerBlock(8, 2, 12, rate=0.0)(x)
    x = keras.layers.GlobalAveragePooling1D()(x)
    x = keras.layers.Dense(6, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x), name="keras_io_transformer")


def hub_transformer():
    keras_hub = pytest.importorskip("keras_hub", reason="keras-hub is optional (pip install keras-hub)")
    inputs = keras.Input((SEQUENCE,), dtype="int32")
    x = keras_hub.layers.TokenAndPositionEmbedding(VOCABULARY, SEQUENCE, 8)(inputs)
    x = keras_hub.layers.TransformerEncoder(intermediate_dim=12, num_heads=2)(x)
    x = keras.layers.GlobalMaxPooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x), name="hub_transformer")


def sigmoid_head():
    inputs = keras.Input((SEQUENCE, FEATURES))
    x = keras.layers.Dense(6, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x), name="sigmoid_head")


# What each model's plan must say: its knobs (config sites) in model order.
PLANS = {
    "stock": (stock_transformer, (8, 2, 4, 16), [
        [("ff_out", "units"), ("projection", "units")],
        [("attention", "num_heads")],
        [("attention", "key_dim"), ("attention", "value_dim")],
        [("ff_in", "units")],
    ]),
    "bidirectional": (bidirectional_classifier, (6, 5, 7), [
        [("tokens", "output_dim")],
        [("bilstm", "backward_layer.config.units"), ("bilstm", "layer.config.units")],
        [("hidden", "units")],
    ]),
    "registered": (keras_io_transformer, (8, 2, 12, 6), [
        [("token_and_position_embedding", "embed_dim"), ("transformer_block", "embed_dim")],
        [("transformer_block", "num_heads")],
        [("transformer_block", "ff_dim")],
        [("dense", "units")],
    ]),
    "hub": (hub_transformer, (8, 12, 2), [
        [("token_and_position_embedding", "embedding_dim")],
        [("transformer_encoder", "intermediate_dim")],
        [("transformer_encoder", "num_heads")],
    ]),
}


def _plain(sites):
    """Sites with Keras's automatic name suffixes (``dense_3``) removed, sorted."""
    return sorted((re.sub(r"_\d+$", "", name), field) for name, field in sites)


def _shape(model):
    return tuple(int(d) for d in model.input_shape[1:])


@pytest.mark.parametrize("case", sorted(PLANS))
def test_widths_are_found_tied_and_every_narrow_model_counts_as_built(case):
    make, defaults, knobs = PLANS[case]
    model = make()
    family = family_from_model(model, name=f"transformers_{case}")
    assert family.default_widths == defaults
    plan = family.build.plan
    assert [_plain(sites) for sites in plan.knobs] == [_plain(sites) for sites in knobs]
    families.register_family(family, overwrite=True)
    engine = engines.load("jax")
    shape, classes = _shape(model), int(model.output_shape[-1])
    rebuilt = models.build(family.name, defaults, shape, classes, seed=0)
    assert rebuilt.count_params() == model.count_params()
    wide = rebuilt.count_params()
    for budget in (wide // 2, wide // 4):
        match = budgets.solve_widths(family, budget, defaults, shape, classes, engine.count_params)
        built = models.build(family.name, match.widths, shape, classes, seed=0)
        assert match.fits and built.count_params() == match.params <= budget
        assert tuple(built(np.zeros((2,) + shape, model.inputs[0].dtype)).shape) == (2, classes)  # it runs
        if case == "stock":  # the residual stream: projection, attention output and feed-forward output agree
            assert built.get_layer("projection").units == built.get_layer("ff_out").units == match.widths[0]
            attention = built.get_layer("attention")
            assert (attention.num_heads, attention.key_dim) == match.widths[1:3]
            assert tuple(attention.output.shape) == (None, SEQUENCE, match.widths[0])
        if case == "registered":
            block = next(layer for layer in built.layers if isinstance(layer, TransformerBlock))
            assert block.att.num_heads == match.widths[1] and block.ffn.layers[0].units == match.widths[2]
            assert block.ffn.layers[1].units == match.widths[0]  # back to the residual stream's width
        if case == "bidirectional":
            bilstm = built.get_layer("bilstm")
            assert bilstm.forward_layer.units == bilstm.backward_layer.units == match.widths[1]
            assert tuple(bilstm.output.shape) == (None, 2 * match.widths[1])
            assert built.get_layer("tokens").output_dim == match.widths[0]
        if case == "hub":
            encoder = built.layers[2]
            assert (encoder.intermediate_dim, encoder.num_heads) == match.widths[1:]
            assert tuple(encoder.output.shape) == (None, SEQUENCE, match.widths[0])


def test_an_unregistered_custom_layer_is_refused_in_one_line_saying_how_to_register_it():
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(Doubler()(keras.layers.Dense(5)(inputs))))
    with pytest.raises(StudyError) as raised:
        family_from_model(model)
    message = str(raised.value)
    assert message.startswith("Expected layers whose effect on the width is known") and "\n" not in message
    assert message.endswith("Received: layer 'doubler' of type Doubler; register it with "
                            "widthvsprune.register_layer('Doubler', widths=(...), passes_width=...)")


def test_a_registered_layer_that_changes_its_width_while_said_to_pass_it_is_refused():
    class Widen(keras.layers.Layer):
        def __init__(self, size, **kwargs):
            super().__init__(**kwargs)
            self.size = size
            self.inner = keras.layers.Dense(size)

        def call(self, x):
            return self.inner(x)

    register_layer(Widen, widths=("size",), passes_width=True, overwrite=True)
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(3)(Widen(7)(keras.layers.Dense(5)(inputs))))
    with pytest.raises(StudyError, match=r"registered with passes_width=True\)\. Received: layer 'widen.*' of type "
                                         r"Widen maps width 5 to 7$"):
        family_from_model(model)


def test_the_one_unit_sigmoid_head_keeps_its_unit_and_its_predictions():
    model = sigmoid_head()
    family = family_from_model(model, name="transformers_sigmoid")
    assert family.build.plan.binary and family.default_widths == (6,)
    rebuilt = family.build((6,), (SEQUENCE, FEATURES), 2, keras)
    assert rebuilt.output_shape == (None, 1) and rebuilt.layers[-1].get_config()["activation"] == "linear"
    rebuilt.set_weights(model.get_weights())
    x, _ = float_arrays(16, 0)
    logits = np.asarray(rebuilt(x))
    np.testing.assert_allclose(1 / (1 + np.exp(-logits)), np.asarray(model(x)), rtol=1e-5, atol=1e-6)
    with pytest.raises(StudyError, match=r"^Expected a dataset of 2 classes .* Received: num_classes=3$"):
        family.build((6,), (SEQUENCE, FEATURES), 3, keras)


def test_binary_cross_entropy_and_accuracy_at_one_half_for_a_one_unit_head():
    from widthvsprune.engines.jax import programs

    logits = np.array([[-2.0], [0.5], [3.0], [-0.1]], "float32")
    labels = np.array([0, 0, 1, 1], "int32")
    expected = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)(labels[:, None].astype("float32"),
                                                                                   logits)
    np.testing.assert_allclose(programs.cross_entropy(logits, labels), expected, rtol=1e-6)
    assert list(np.asarray(programs.predicted(logits))) == [0, 1, 1, 0]


def _attention_pack(splits, allocation, target):
    family = families.register_family(family_from_model(stock_transformer(), name="transformers_pruned"),
                                      overwrite=True)
    engine = engines.load("jax")
    template = models.build(family.name, family.default_widths, (SEQUENCE, FEATURES), 3, seed=0)
    steps = schedules.schedule_steps(len(splits.x_train), 32, 2, 3, 0, 0.75)
    prune = base.PruneSpec(target, steps, allocation=allocation)
    spec = base.ModelSpec(family.name, family.default_widths, seed=0, learning_rate=1e-3,
                          initial_weights=tuple(template.get_weights()), prune=prune)
    (out,) = engine.train(base.Pack(models=(spec,), batch_size=32, optimizer="adam", epochs=2), splits)
    return engine, template, prune, out


@pytest.fixture(scope="module")
def sequence_splits():
    x, y = float_arrays(300, 0)
    xv, yv = float_arrays(64, 1)
    return Splits("sequences", x, y, xv, yv, xv, yv, 3)


@pytest.mark.parametrize("allocation", ["uniform", "erk", "lamp"])
def test_the_jax_engine_prunes_attention_kernels_to_each_kernels_target_exactly(sequence_splits, allocation):
    engine, template, prune, out = _attention_pack(sequence_splits, allocation, 0.7)
    assert out.ok, out.error
    layout = models.layout_of(template)
    layers = models.allocation_layers(layout, template.get_weights())
    targets = kernel_masks.kernel_targets(prune, layers)
    names = [info.name for info in layout.kernels]
    assert [n for n in names if n.startswith("multi_head_attention")] == [
        "multi_head_attention", "multi_head_attention/key_dense", "multi_head_attention/value_dense",
        "multi_head_attention/output_dense"]
    shapes = [tuple(entry.kernel.shape) for entry in out.layers]
    assert (8, 2, 4) in shapes and (2, 4, 8) in shapes  # the attention's rank-3 kernels
    for entry, target in zip(out.layers, targets):
        assert np.count_nonzero(entry.kernel) == masks.kept_count(entry.kernel.size, target), entry.name
    total = sum(entry.kernel.size for entry in out.layers)
    zeros = sum(entry.kernel.size - np.count_nonzero(entry.kernel) for entry in out.layers)
    assert abs(zeros / total - 0.7) < 0.01


def _run(tmp_path, name, family, dataset, engine="jax", **fields):
    study = tiny_study(name=name, family=family, dataset=dataset, widths=None, sparsities=(0.75,), seeds=(0,),
                       engine=engine, baseline=Recipe(epochs=3, batch_size=32, learning_rate=1e-2),
                       tuning=Tuning(oracle="random", trials=1, controls=False), **fields)
    result = run_study(study, tmp_path, stream=io.StringIO(), workers=1)
    assert not result.failed, result.failed
    runs = pd.read_csv(tmp_path / name / "runs.csv")
    evals = runs[runs.role == "eval"]
    assert set(evals.arm) >= {"baseline", "pruned", "narrow"}
    assert np.isfinite(evals.test_accuracy).all()
    narrow = evals[evals.arm == "narrow"]
    assert (narrow.total_params <= narrow.budget).all()
    return evals


@pytest.mark.parametrize("case", sorted(PLANS))
def test_a_tiny_study_runs_end_to_end(tmp_path, case):
    make = PLANS[case][0]
    model = make()
    family = families.register_family(family_from_model(model, name=f"transformers_study_{case}"), overwrite=True)
    dataset = write_npz(tmp_path / "data.npz", float_arrays if case == "stock" else token_arrays)
    evals = _run(tmp_path, case, family.name, dataset)
    baseline = evals[evals.arm == "baseline"].test_accuracy.iloc[0]
    assert baseline > 0.5  # three classes: well above chance (1/3) after three epochs


def test_a_one_unit_sigmoid_head_trains_with_binary_cross_entropy(tmp_path):
    family = families.register_family(family_from_model(sigmoid_head(), name="transformers_study_sigmoid"),
                                      overwrite=True)
    dataset = write_npz(tmp_path / "binary.npz", float_arrays, classes=2)
    evals = _run(tmp_path, "sigmoid", family.name, dataset)
    assert evals[evals.arm == "baseline"].test_accuracy.iloc[0] > 0.75


def tf_keras_text_model(k):
    """Embedding, a Bidirectional LSTM, self-attention and a one-unit sigmoid head, in tf_keras."""
    inputs = k.Input((SEQUENCE,), dtype="int32")
    x = k.layers.Embedding(VOCABULARY, 6)(inputs)
    x = k.layers.Add()([x, k.layers.MultiHeadAttention(num_heads=2, key_dim=3)(x, x)])
    x = k.layers.Bidirectional(k.layers.LSTM(4))(x)
    return k.Model(inputs, k.layers.Dense(1, activation="sigmoid")(x), name="tf_keras_text")


def test_tf_keras_names_the_layers_tfmot_cannot_prune_and_prunes_attention(tmp_path):
    from widthvsprune import arms
    from widthvsprune.engines.tf_keras import models as tf_models
    from widthvsprune.engines.tf_keras import pruning as tf_pruning
    from widthvsprune.engines.tf_keras.backend import keras as tf_keras

    family = families.register_family(family_from_model(tf_keras_text_model(tf_keras), name="transformers_tf_keras"),
                                      overwrite=True)
    assert family.keras == "2" and family.build.plan.binary
    study = tiny_study(name="tf_keras_text", family=family.name, widths=None)
    (note,) = [n for n in arms.get("pruned").notes(study, 500) if "tfmot" in n]
    assert note.startswith("warning: tfmot (engine 'tf_keras') cannot prune layer 'bidirectional") and "\n" not in note
    model = family.build(family.default_widths, (SEQUENCE,), 2, tf_keras)
    steps = schedules.schedule_steps(64, 32, 1, 1, 0, 1.0)
    wrapped, targets = tf_pruning.wrap(model, base.PruneSpec(0.5, steps))
    attention = [e for e in tf_models.layer_weights(model, targets) if e.name.startswith("multi_head_attention")]
    assert [tuple(e.kernel.shape) for e in attention] == [(6, 2, 3), (6, 2, 3), (6, 2, 3), (2, 3, 6)]
    assert all(e.pruned for e in attention)  # tfmot wraps the attention: its four kernels are pruned
    assert sum(isinstance(layer, tf_pruning.PruneLowMagnitude) for layer in wrapped.layers) == 3


def test_a_one_unit_sigmoid_head_trains_on_tf_keras_too(tmp_path):
    from widthvsprune.engines.tf_keras.backend import keras as tf_keras

    def head(k):
        inputs = k.Input((SEQUENCE, FEATURES))
        x = k.layers.GlobalAveragePooling1D()(k.layers.Dense(6, activation="relu")(inputs))
        return k.Model(inputs, k.layers.Dense(1, activation="sigmoid")(x), name="tf_keras_sigmoid")

    family = families.register_family(family_from_model(head(tf_keras), name="transformers_tf_keras_sigmoid"),
                                      overwrite=True)
    dataset = write_npz(tmp_path / "binary.npz", float_arrays, classes=2)
    evals = _run(tmp_path, "tf_keras_sigmoid", family.name, dataset, engine="tf_keras")
    assert evals[evals.arm == "baseline"].test_accuracy.iloc[0] > 0.75


def test_integer_token_ids_load_exactly_and_ids_beyond_float32_are_refused(tmp_path):
    from widthvsprune import DataError, data

    dataset = write_npz(tmp_path / "tokens.npz", token_arrays)
    splits = data.load(dataset)
    with np.load(tmp_path / "tokens.npz") as f:
        ids = np.concatenate([f["x_train"], f["x_test"]])
    loaded = np.concatenate([splits.x_train, splits.x_val, splits.x_test])
    assert np.array_equal(np.sort(loaded.astype("int64"), axis=None), np.sort(ids, axis=None))
    assert np.array_equal(loaded, np.round(loaded)) and loaded.max() == VOCABULARY - 1  # ids, not scaled
    big = np.full((4, SEQUENCE), (1 << 24) + 1, "int64")
    np.savez(tmp_path / "big.npz", x_train=big, y_train=np.arange(4) % 2, x_test=big, y_test=np.arange(4) % 2)
    with pytest.raises(DataError, match=r"^dataset: Expected integers \(token ids\) of at most 16777216"):
        data.load(f"npz:{tmp_path / 'big.npz'}")


STUDY_FILE = '''
import keras
import numpy as np
from widthvsprune import Pruning, Recipe, Study, Tuning, family_from_model, register_family, register_layer


class Scale(keras.layers.Layer):
    """A learned scale per feature: keeps its input's width."""

    def build(self, input_shape):
        self.scale = self.add_weight(shape=(input_shape[-1],), initializer="ones", name="scale")

    def call(self, x):
        return x * self.scale


class Block(keras.layers.Layer):
    """Attention and a feed-forward pair around a residual stream of width ``width``."""

    def __init__(self, width, heads, hidden, **kwargs):
        super().__init__(**kwargs)
        self.width, self.heads, self.hidden = width, heads, hidden
        self.attention = keras.layers.MultiHeadAttention(num_heads=heads, key_dim=4)
        self.ff = keras.Sequential([keras.layers.Dense(hidden, activation="relu"), keras.layers.Dense(width)])

    def call(self, x):
        x = x + self.attention(x, x)
        return x + self.ff(x)


register_layer(Scale, passes_width=True)
register_layer(Block, widths=("heads", "hidden"), passes_width=True, tied=("width",))
inputs = keras.Input((8,), dtype="int32")
x = keras.layers.Embedding(20, 8)(inputs)
x = Block(8, 2, 12)(Scale()(x))
x = keras.layers.GlobalAveragePooling1D()(x)
register_family(family_from_model(keras.Model(inputs, keras.layers.Dense(3)(x)), name="file_blocks"), overwrite=True)
STUDY = Study(name="file_blocks", dataset="npz:DATA", family="file_blocks", sparsities=(0.5, 0.75), seeds=(0,),
              baseline=Recipe(epochs=1, batch_size=64), finetune=Recipe(epochs=1, batch_size=64),
              pruning=Pruning(frequency=2, end_fraction=0.75), tuning=Tuning(oracle="random", trials=1,
              controls=False), engine="jax")
'''


def test_a_study_file_registering_layers_runs_in_two_processes_with_one_key_per_run(tmp_path):
    import subprocess
    import sys

    from widthvsprune.study import loading as files

    dataset = write_npz(tmp_path / "tokens.npz", token_arrays)
    path = tmp_path / "blocks.py"
    path.write_text(STUDY_FILE.replace("npz:DATA", dataset))
    first, again = files.load_study(path), files.load_study(path)  # the same layer names, config and keys
    assert families.get_family(first.family).digest == families.get_family(again.family).digest
    result = subprocess.run([sys.executable, "-m", "widthvsprune", "run", str(path), "--out", str(tmp_path / "out"),
                             "--workers", "2"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    runs = pd.read_csv(tmp_path / "out" / "file_blocks" / "runs.csv")
    assert len(runs) >= 5 and np.isfinite(runs.test_accuracy).all()  # (exit status 0: no run failed)
    folders = (tmp_path / "out" / "file_blocks" / "runs").iterdir()
    trained = {p.name for p in folders if not p.name.startswith("search-")}
    assert trained == set(runs.key)  # no run trained again under another key by the helper process


def test_ray_refuses_a_family_that_a_study_file_defines_before_any_training(tmp_path):
    family = families.register_family(family_from_model(sigmoid_head(), name="transformers_on_ray"), overwrite=True)
    study = tiny_study(name="on_ray", family=family.name, widths=None)
    with pytest.raises(StudyError, match=r"^family: Expected a shipped family or family='model:PATH' with --executor "
                                         r"ray .* Received: family='transformers_on_ray'$"):
        run_study(study, tmp_path, stream=io.StringIO(), executor="ray")
    assert not (tmp_path / "on_ray" / "runs").exists()
