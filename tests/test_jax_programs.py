"""Programs compiled with XLA's quicker options: the same results, and which programs get them decided by the pack.

Runs on a CPU with a 300-example digits split. Where the installed XLA does
not know the options, every program compiles as usual and the tests that
compare the two ways are skipped.
"""

import jax.numpy as jnp
import numpy as np
import pytest
from jax_helpers import pack, prune_spec, spec

from widthvsprune import sizes
from widthvsprune.engines import base
from widthvsprune.engines.jax import programs


def quick_options_known():
    cache = programs.ProgramCache()
    cache.call("probe", lambda x: x + 1, (jnp.zeros(3),), quick=True)
    return cache.compiled_quickly == 1


needs_quick_options = pytest.mark.skipif(not quick_options_known(), reason="this XLA lacks the quicker options")


def fresh_engine():
    from widthvsprune.engines import jax as jax_engine

    return jax_engine.create()


def trained(engine, the_pack, splits):
    out = engine.train(the_pack, splits)
    assert all(o.ok for o in out), [o.error for o in out]
    return out, dict(engine.stats)


def assert_same_history(a, b):
    """The same epochs and accuracies; losses to float32's precision (a sum over a batch's examples may be
    emitted in another order: a digits MLP's mean training loss differed in its seventh digit)."""
    assert [sorted(row) for row in a] == [sorted(row) for row in b]
    for x, y in zip(a, b):
        assert {k: v for k, v in x.items() if "loss" not in k} == {k: v for k, v in y.items() if "loss" not in k}
        assert {k: v for k, v in x.items() if "loss" in k} == pytest.approx(
            {k: v for k, v in y.items() if "loss" in k}, rel=1e-6)


@needs_quick_options
@pytest.mark.parametrize("family, widths", [("mlp", (24, 12)), ("seed_cnn", (4,))])
def test_programs_compiled_quickly_train_the_same_models(splits, monkeypatch, family, widths):
    models = (base.ModelSpec(family, widths, seed=0, learning_rate=3e-3),
              base.ModelSpec(family, widths, seed=1, learning_rate=1e-3, prune=prune_spec(splits, 0.7)))
    the_pack = pack(*models, epochs=2)
    monkeypatch.setattr(programs, "QUICK_FLOPS", float("inf"))
    quick, quick_stats = trained(fresh_engine(), the_pack, splits)
    assert quick_stats["compiled"] == quick_stats["compiled_quickly"] >= 2  # training and evaluation
    monkeypatch.setattr(programs, "QUICK_OPTIONS", {})  # XLA's defaults
    usual, usual_stats = trained(fresh_engine(), the_pack, splits)
    assert usual_stats["compiled"] == quick_stats["compiled"]
    for a, b in zip(quick, usual):
        assert_same_history(a.history, b.history)
        assert np.array_equal(a.test_correct, b.test_correct) and a.test_loss == pytest.approx(b.test_loss, rel=1e-6)
        for x, y in zip(a.weights, b.weights):  # equal bit for bit on this CPU, but not promised
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    assert [c["kernel_nonzero"] for c in sizes.layer_counts(quick[1].layers)] == \
        [c["kernel_nonzero"] for c in sizes.layer_counts(usual[1].layers)]


@needs_quick_options
def test_the_pack_alone_decides_which_programs_compile_quickly(splits, monkeypatch):
    short = pack(spec(seed=0), epochs=1, validate="last_epoch", test=False)
    long = pack(spec(seed=1), epochs=20, validate="last_epoch", test=False)
    (probe,), _ = trained(fresh_engine(), short, splits)
    forward = 2 * sizes.flops(probe.layers)  # one example's forward pass through the kernels
    # One epoch is 320 examples' steps (about 1,000 forward passes), twenty epochs about 19,000; an evaluation
    # of the validation split, at most 1,024.
    monkeypatch.setattr(programs, "QUICK_FLOPS", 5_000 * forward)
    engine = fresh_engine()
    _, short_stats = trained(engine, short, splits)
    assert short_stats["compiled"] == short_stats["compiled_quickly"] == 2
    (after_short,), long_stats = trained(engine, long, splits)
    # The same shapes: only the training program is compiled again, without the quicker options; evaluation
    # programs always compile quickly, so the short pack's serves.
    assert long_stats["compiled"] == 1 and long_stats["compiled_quickly"] == 0
    (alone,), alone_stats = trained(fresh_engine(), long, splits)
    assert alone_stats["compiled"] == 2 and alone_stats["compiled_quickly"] == 1
    assert after_short.history == alone.history
    assert all(np.array_equal(x, y) for x, y in zip(after_short.weights, alone.weights))


def test_an_xla_without_the_options_compiles_as_usual(monkeypatch):
    monkeypatch.setattr(programs, "QUICK_OPTIONS", {"xla_cpu_no_such_option_anywhere": True})
    cache = programs.ProgramCache()
    x = jnp.arange(6.0).reshape(2, 3)
    quick = cache.call("double", lambda a: a * 2 + 1, (x,), quick=True)
    assert np.array_equal(np.asarray(quick), np.arange(6.0).reshape(2, 3) * 2 + 1)
    assert cache.compiled == 1 and cache.compiled_quickly == 0
    cache.call("triple", lambda a: a * 3, (x,), quick=True)  # known now: compiled as usual at once
    assert cache.compiled == 2 and cache.compiled_quickly == 0


@pytest.mark.parametrize("flops, quickly", [
    (0, True), (programs.QUICK_FLOPS, True), (programs.QUICK_FLOPS * 1.01, False)])
def test_the_rule_is_a_bound_on_the_arithmetic(flops, quickly):
    assert programs.compiles_quickly(flops) is quickly
