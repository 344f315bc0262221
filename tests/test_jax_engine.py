"""The jax engine on its own: packs, masks, stops, failures and the TensorFlow-free import.

Runs on a CPU with a 300-example digits split. When Keras 3 was imported
with another backend earlier in the session, the module reruns itself in a
fresh interpreter.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from conftest import without_imports
from jax_helpers import ROOT, pack, prune_spec, spec

from widthvsprune import families, sizes
from widthvsprune.engines import base
from widthvsprune.pruning import masks, schedules


def assert_same_weights(a, b, atol=2e-5):
    assert [w.shape for w in a] == [w.shape for w in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-4)


def test_import_and_training_need_no_tensorflow(tmp_path):
    script = textwrap.dedent("""
        import sys
        from widthvsprune import data
        from widthvsprune.pruning import schedules
        from widthvsprune.engines import base, load
        engine = load("jax")
        splits = data.load("digits")
        steps = schedules.schedule_steps(len(splits.x_train), 64, 1, 5, 0, 0.5)
        models = (
            base.ModelSpec("mlp", (8,), seed=0, learning_rate=1e-2),
            base.ModelSpec("mlp", (6,), seed=1, learning_rate=1e-2,
                           prune=base.PruneSpec(0.5, steps)),
        )
        out = engine.train(base.Pack(models=models, batch_size=64, optimizer="adam", epochs=1), splits)
        assert all(o.ok and o.test_accuracy > 0.2 for o in out), [o.test_accuracy for o in out]
        assert not [m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tf_keras")]
        import jax
        print("cache limit", jax.config.jax_compilation_cache_max_size)
        print("ok", out[1].mask_updates)
    """)
    env = {**without_imports(tmp_path), "HOME": str(tmp_path)}
    for name in ("KERAS_BACKEND", "XDG_CACHE_HOME", "JAX_COMPILATION_CACHE_DIR", "WIDTHVSPRUNE_COMPILATION_CACHE",
                 "WIDTHVSPRUNE_JAX_CACHE"):
        env.pop(name, None)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-2:] == ["ok", "2"]
    # Its compiled programs were kept for the next process, in the user's cache folder, of a bounded size (with
    # a size, JAX locks the cache's files: the processes of a study share them).
    assert [p for p in (tmp_path / ".cache" / "widthvsprune" / "jax").iterdir() if p.name.endswith("-cache")]
    assert f"cache limit {1 << 30}" in result.stdout


def test_the_compilation_cache_is_the_users_cache_folder_unless_they_chose_otherwise():
    from widthvsprune.engines.jax.cache import compilation_cache_dir

    assert compilation_cache_dir({"XDG_CACHE_HOME": "/c"}) == os.path.join("/c", "widthvsprune", "jax")
    assert compilation_cache_dir({}) == os.path.join(os.path.expanduser("~"), ".cache", "widthvsprune", "jax")
    assert compilation_cache_dir({"JAX_COMPILATION_CACHE_DIR": "/mine"}) is None  # JAX uses the user's own
    assert compilation_cache_dir({"WIDTHVSPRUNE_JAX_CACHE": "/ours", "XDG_CACHE_HOME": "/c"}) == "/ours"
    assert compilation_cache_dir({"WIDTHVSPRUNE_COMPILATION_CACHE": "0", "XDG_CACHE_HOME": "/c"}) is None


def test_loading_refuses_keras_running_another_backend(tmp_path):
    script = "import keras\nfrom widthvsprune.engines import jax\n"
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "KERAS_BACKEND": "numpy"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "Expected Keras 3 to be imported with the JAX backend" in result.stderr
    assert "Received: KERAS_BACKEND='numpy'" in result.stderr


def test_keras_runs_the_jax_backend(engine):
    import keras

    assert keras.backend.backend() == "jax"


@pytest.mark.parametrize("family,widths,shape", [
    ("mlp", (16, 8), (8, 8, 1)), ("mlp", (300, 100), (28, 28)), ("seed_cnn", (12,), (28, 28)),
    ("seed_cnn", (3,), (8, 8, 1)), ("lenet5", (6, 16, 120, 84), (32, 32, 3)), ("lenet5", (2, 3, 5, 4), (8, 8, 1)),
    ("mnist_convnet", (32, 64), (28, 28, 1)), ("mnist_convnet", (2, 3), (10, 10, 1)),
])
def test_count_params_equals_the_family_count(engine, family, widths, shape):
    assert engine.count_params(family, widths, shape, 10) == families.get_family(family).count_params(widths, shape, 10)


def test_models_of_different_widths_in_one_pack_train_as_each_alone(engine, splits):
    specs = [spec((24, 12), seed=0, lr=3e-3), spec((16, 8), seed=1, lr=1e-3), spec((12, 6), seed=2, lr=5e-3),
             spec((12, 6), seed=3, lr=2e-3, prune=prune_spec(splits, 0.7, prune_output=False))]
    together = engine.train(pack(*specs), splits)
    assert engine.stats["compiled"] >= 1
    for s, packed in list(zip(specs, together))[1::2]:  # a dense and a pruned model, both padded in the pack
        (alone,) = engine.train(pack(s), splits)
        assert_same_weights(packed.weights, alone.weights)
        assert packed.history[-1]["loss"] == pytest.approx(alone.history[-1]["loss"], rel=1e-4)
        assert packed.test_accuracy == pytest.approx(alone.test_accuracy, abs=1 / 360 + 1e-9)
    assert not np.allclose(together[1].weights[-1], together[2].weights[-1])


def test_a_pack_of_known_shapes_compiles_nothing_new(engine, splits):
    engine.train(pack(spec(seed=5), spec(seed=6), spec(seed=7)), splits)
    engine.train(pack(spec(seed=8, lr=1e-2), spec(seed=9), spec((12, 8), seed=10)), splits)
    assert engine.stats["compiled"] == 0


def test_max_steps_stops_in_the_middle_of_an_epoch(engine, splits):
    seen = {}

    def observe(step, run):
        seen[step] = run.weights()[0]

    full = engine.train(pack(spec(seed=4), epochs=2), splits, observe=observe, observe_steps=(13,))
    (short,) = engine.train(pack(spec(seed=4), epochs=2, max_steps=13), splits)
    assert [r["epoch"] for r in short.history] == [1, 2] and len(full[0].history) == 2
    assert short.history[0]["loss"] == full[0].history[0]["loss"]
    assert_same_weights(short.weights, seen[13], atol=0)


def test_validate_last_epoch_only_validates_the_last_epoch(engine, splits):
    (out,) = engine.train(pack(spec(seed=1), epochs=3, validate="last_epoch", test=False, weights=False), splits)
    assert ["val_accuracy" in r for r in out.history] == [False, False, True]
    assert out.val_accuracy == out.history[-1]["val_accuracy"]
    assert out.test_accuracy is None and out.test_correct is None and out.weights is None and out.layers is None


def test_a_diverging_model_fails_alone(engine, splits):
    good, bad = spec(seed=0, lr=1e-2), spec(seed=1, lr=1e35)
    ok, failed = engine.train(pack(good, bad, optimizer="sgd"), splits)
    assert failed.error.startswith("the training loss became non-finite in epoch 1 (loss=")
    assert failed.weights is None and len(failed.history) == 1
    (alone,) = engine.train(pack(good, optimizer="sgd"), splits)
    assert ok.ok and ok.test_accuracy > 0.15
    assert_same_weights(ok.weights, alone.weights)


def test_test_correct_agrees_with_test_accuracy(engine, splits):
    (out,) = engine.train(pack(spec(seed=2, lr=1e-2)), splits)
    assert out.test_correct.dtype == bool and out.test_correct.shape == (len(splits.y_test),)
    assert out.test_correct.mean() == pytest.approx(out.test_accuracy)
    assert 0.2 < out.test_accuracy < 1.0 and np.isfinite(out.test_loss)
    assert [r["epoch"] for r in out.history] == [1, 2] and all("val_loss" in r for r in out.history)


def test_layerwise_masks_follow_tfmot_at_every_update(engine, splits):
    prune = prune_spec(splits, 0.8, frequency=3, prune_output=False)
    s = prune.steps
    updates = [t for t in range(1, s.total_steps + 1) if schedules.updates_masks_at(t, s.begin_step, s.end_step, 3)]
    kernels, got = {}, {}

    def observe(step, run):
        kernels[step] = run.weights()[0]
        got[step] = run.masks(0)

    (dense,) = engine.train(pack(spec((16, 8), seed=3)), splits)
    (out,) = engine.train(pack(spec((16, 8), seed=3, initial_weights=tuple(dense.weights), prune=prune)), splits,
                          observe=observe, observe_steps=tuple(sorted({t - 1 for t in updates} | set(updates))))
    assert out.mask_updates == len(updates)
    kernel_index = [0, 2, 4]
    sizes_ = [dense.weights[i].size for i in kernel_index]
    final = 0.8 * sum(sizes_) / sum(sizes_[:2])  # the output layer dense: the other two hold its zeros
    for t in updates:
        sparsity = masks.polynomial_sparsity_f32(t, 0.0, final, s.begin_step, s.end_step, 3)
        before = kernels[t - 1] if t > 1 else list(dense.weights)
        for j, w in enumerate(kernel_index[:2]):
            _, expected = masks.layerwise_mask(before[w], sparsity)
            np.testing.assert_array_equal(got[t][j], expected)
        np.testing.assert_array_equal(got[t][2], np.ones_like(got[t][2]))
    counts = sizes.layer_counts(out.layers)
    assert [c["pruned"] for c in counts] == [True, True, False]
    for c in counts[:2]:
        assert c["kernel_nonzero"] == masks.kept_count(c["kernel_params"], final)
    assert counts[2]["sparsity"] < 0.05


def one_threshold(kernels, current, target):
    """Global magnitude pruning by definition: the round(target * n) smallest of all |kernel * mask| go, ties by
    position."""
    flat = np.concatenate([np.abs(k * m).ravel() for k, m in zip(kernels, current)])
    keep = np.ones(flat.size, dtype=bool)
    keep[np.argsort(flat, kind="stable")[: int(round(target * flat.size))]] = False
    out, start = [], 0
    for k in kernels:
        out.append(keep[start : start + k.size].reshape(k.shape).astype(k.dtype))
        start += k.size
    return out


@pytest.mark.parametrize("variant", ["global", "random"])
def test_global_and_random_masks_come_from_the_numpy_rules(engine, splits, variant):
    prune = prune_spec(splits, 0.75, variant=variant, frequency=4, seed=11)
    s = prune.steps
    updates = [t for t in range(1, s.total_steps + 1) if schedules.updates_masks_at(t, s.begin_step, s.end_step, 4)]
    state = {}

    def observe(step, run):
        state[step] = (run.weights()[0], run.masks(0))

    start = engine.train(pack(spec((16, 8), seed=5)), splits)[0].weights
    (out,) = engine.train(pack(spec((16, 8), seed=5, initial_weights=tuple(start), prune=prune)), splits,
                          observe=observe, observe_steps=tuple(sorted({t - 1 for t in updates} | set(updates))))
    rng = np.random.default_rng(11)
    current = [np.ones_like(start[i]) for i in (0, 2, 4)]
    for t in updates:
        weights = state[t - 1][0] if t > 1 else start
        kernels = [weights[i] for i in (0, 2, 4)]
        target = schedules.polynomial_sparsity(t, 0.0, 0.75, s.begin_step, s.end_step, 3)
        if variant == "global":
            current = one_threshold(kernels, current, target)
        else:
            current = masks.random_masks(kernels, current, target, rng)
        for got, expected in zip(state[t][1], current):
            np.testing.assert_array_equal(got, expected)
    summary = sizes.summarize(out.layers, out.other_params)
    assert summary["sparsity"] == pytest.approx(0.75, abs=1e-3)
    assert out.mask_updates == len(updates)


def test_layers_report_kernels_biases_positions_and_other_params(engine, splits):
    (out,) = engine.train(pack(base.ModelSpec("seed_cnn", (4,), seed=0, learning_rate=1e-3), epochs=1), splits)
    names = [layer.name for layer in out.layers]
    assert names == ["conv2d", "dense"]
    assert [layer.positions for layer in out.layers] == [36, 1]
    assert out.layers[0].kernel.shape == (3, 3, 1, 4) and out.layers[0].bias.shape == (4,)
    assert out.other_params == 0
    assert sum(w.size for w in out.weights) == families.get_family("seed_cnn").count_params((4,), (8, 8, 1), 10)


def test_convolutions_before_a_flatten_do_not_share_a_padded_shape(engine, splits):
    from widthvsprune.engines.jax import models

    small = models.build("seed_cnn", (3,), splits.input_shape, 10)
    big = models.build("seed_cnn", (4,), splits.input_shape, 10)
    assert not models.can_embed(small, big)
    assert models.can_embed(models.build("mlp", (5, 3), (8, 8, 1), 10), models.build("mlp", (6, 4), (8, 8, 1), 10))
    specs = [base.ModelSpec("seed_cnn", (w,), seed=w, learning_rate=1e-3) for w in (3, 4)]
    together = engine.train(pack(*specs, epochs=1), splits)
    for s, packed in zip(specs, together):
        (alone,) = engine.train(pack(s, epochs=1), splits)
        assert_same_weights(packed.weights, alone.weights, atol=0)


def test_batch_normalization_runs_the_short_batch_at_its_own_size(engine, splits):
    def build(widths, input_shape, num_classes, keras):
        return keras.Sequential([
            keras.Input(shape=input_shape), keras.layers.Flatten(), keras.layers.Dense(widths[0]),
            keras.layers.BatchNormalization(), keras.layers.ReLU(), keras.layers.Dense(num_classes),
        ])

    def count(widths, input_shape, num_classes):
        n_in = int(np.prod(input_shape))
        return n_in * widths[0] + widths[0] + 4 * widths[0] + widths[0] * num_classes + num_classes

    families.register_family(families.Family("bn_mlp_test", (8,), count, build, 1), overwrite=True)
    specs = [base.ModelSpec("bn_mlp_test", (w,), seed=w, learning_rate=1e-2) for w in (6, 8)]
    # SGD: the gradient of a bias before batch normalization is rounding noise, which Adam would scale up.
    together = engine.train(pack(*specs, epochs=1, optimizer="sgd"), splits)
    (alone,) = engine.train(pack(specs[0], epochs=1, optimizer="sgd"), splits)  # padded to 8 in the pack
    assert_same_weights(together[0].weights, alone.weights)
    moving_mean = together[0].weights[4]
    assert moving_mean.shape == (6,) and np.abs(moving_mean).max() > 0
    assert together[0].other_params == 4 * 6


def test_pack_sizing_shrinks_with_the_model_and_the_batch(engine):
    small = engine.max_pack_models("mlp", (16, 8), (8, 8, 1), 10, batch_size=32)
    wide = engine.max_pack_models("mlp", (300, 100), (28, 28), 10, batch_size=32)
    big_batch = engine.max_pack_models("mlp", (300, 100), (28, 28), 10, batch_size=4096)
    assert small > wide > big_batch >= 1
    assert engine.max_pack_models("mlp", (300, 100), (28, 28), 10, 32, memory_fraction=1e-12) == 1
    assert isinstance(engine.gpus(), int)
