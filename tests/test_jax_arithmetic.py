"""The jax engine's training arithmetic, bit for bit against the formulation it replaced.

The optimizers keep their slots as one flat vector over all the variables,
and the cross-entropy picks the label's log-probability by a comparison
instead of a gather: fewer kernels for XLA to compile. Element by element the
arithmetic must be the same, so every result here is compared with
``np.array_equal``, not a tolerance.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from widthvsprune.engines.jax import optimizers, programs

F32 = np.float32
SHAPES = [(5, 7), (7,), (3, 3, 2, 4), (4,), (4, 1), (1,)]


def per_variable_adam(params, slots, grads, lr, powers, block):
    """tf_keras ``legacy.Adam`` written variable by variable, slots per variable."""
    alpha = lr * jnp.sqrt(F32(1) - powers[1]) / (F32(1) - powers[0])
    new_params, new_slots = [], []
    for w, (m, v), g, b in zip(params, slots, grads, block):
        g = g * b
        m = m + (g - m) * (F32(1) - optimizers.BETA_1)
        v = v + (jnp.square(g) - v) * (F32(1) - optimizers.BETA_2)
        new_params.append(w - (m * alpha) / (jnp.sqrt(v) + optimizers.EPSILON))
        new_slots.append((m, v))
    return new_params, new_slots


def per_variable_sgd(params, slots, grads, lr, powers, block):
    new_params, new_slots = [], []
    for w, (a,), g, b in zip(params, slots, grads, block):
        a = a * optimizers.MOMENTUM - (g * b) * lr
        new_params.append(w + a)
        new_slots.append((a,))
    return new_params, new_slots


def _random(rng, shapes, scale=1.0):
    return [jnp.asarray((rng.standard_normal(s) * scale).astype(F32)) for s in shapes]


@pytest.mark.parametrize("name, reference", [("adam", per_variable_adam), ("sgd", per_variable_sgd)])
def test_flat_slots_update_every_variable_as_the_per_variable_optimizer_does_bit_for_bit(name, reference):
    rng = np.random.default_rng(0)
    update, n_slots = optimizers.OPTIMIZERS[name]
    params = _random(rng, SHAPES)
    block = [jnp.asarray((rng.random(s) > 0.3).astype(F32)) for s in SHAPES]  # zeros: padding
    stacked = [p[None] for p in params]
    slots = tuple(s[0] for s in optimizers.init_slots(name, stacked))
    assert [np.shape(s) for s in slots] == [(sum(int(np.prod(s)) for s in SHAPES),)] * n_slots
    ref_params = list(params)
    ref_slots = [tuple(jnp.zeros(s, F32) for _ in range(n_slots)) for s in SHAPES]
    lr = F32(3e-3)
    flat_step, ref_step = jax.jit(update), jax.jit(reference)
    for t, powers in enumerate(optimizers.adam_powers(1, 5)):
        grads = _random(rng, SHAPES, scale=10.0 ** (t - 2))
        params, slots = flat_step(params, slots, grads, lr, powers, block)
        ref_params, ref_slots = ref_step(ref_params, ref_slots, grads, lr, powers, block)
        for got, want in zip(params, ref_params):
            assert got.shape == want.shape and np.array_equal(np.asarray(got), np.asarray(want))
        for k in range(n_slots):
            want = np.concatenate([np.asarray(s[k]).reshape(-1) for s in ref_slots])
            assert np.array_equal(np.asarray(slots[k]), want)
    # a padded weight's slots never move: its gradient is zeroed before the update
    offsets = np.cumsum([0] + [int(np.prod(s)) for s in SHAPES])
    padded = np.concatenate([np.asarray(b).reshape(-1) for b in block]) == 0
    assert padded.any() and offsets[-1] == len(padded)
    assert not np.asarray(slots[0])[padded].any()


def gathered_cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, labels[:, None].astype(jnp.int32), axis=-1)[:, 0]


def test_cross_entropy_and_its_gradient_equal_the_gathered_log_probability_bit_for_bit():
    rng = np.random.default_rng(1)
    logits = jnp.asarray((rng.standard_normal((64, 10)) * np.logspace(-3, 2, 64)[:, None]).astype(F32))
    labels = jnp.asarray(rng.integers(0, 10, 64).astype(np.int32))
    got, want = jax.jit(programs.cross_entropy)(logits, labels), jax.jit(gathered_cross_entropy)(logits, labels)
    assert np.array_equal(np.asarray(got), np.asarray(want))

    def mean(fn):
        return jax.jit(jax.grad(lambda z: jnp.mean(fn(z, labels))))(logits)

    assert np.array_equal(np.asarray(mean(programs.cross_entropy)), np.asarray(mean(gathered_cross_entropy)))


def test_one_threshold_search_finds_each_kernels_kth_largest_magnitude_exactly():
    rng = np.random.default_rng(2)
    arrays = [np.abs(rng.standard_normal((40, 32))).astype(F32), np.abs(rng.standard_normal((32, 10))).astype(F32),
              np.zeros((6, 6), F32), np.repeat(np.abs(rng.standard_normal(8)).astype(F32), 5)]
    arrays[2][:3, :3] = np.float32(0.25)  # ties, and zeros as padding holds them
    arrays[0][0, :5] = np.float32(np.finfo(np.float32).tiny)  # the smallest normal float
    for ks in ([1, 1, 1, 1], [1280, 320, 9, 40], [7, 100, 3, 6], [640, 2, 10, 13]):
        got = np.asarray(jax.jit(programs.kth_largest)([jnp.asarray(a) for a in arrays], jnp.asarray(ks)))
        want = [np.sort(a.reshape(-1))[::-1][k - 1] for a, k in zip(arrays, ks)]
        assert got.dtype == np.float32 and np.array_equal(got, np.array(want, F32))
    masks = programs.layerwise_masks([jnp.asarray(-a) for a in arrays], jnp.asarray([100, 5, 9, 7]),
                                     [jnp.ones_like(jnp.asarray(a)) for a in arrays])
    assert [int(np.asarray(m).sum()) for m in masks] == [100, 5, 9, 10]  # ties at the threshold are all kept
