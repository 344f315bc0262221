"""tf_keras's legacy optimizers in their fused kernels' float32 arithmetic, for stacked weights.

Each update takes one model's ``params``, its ``slots``, the gradients, the
learning rate, for Adam the step's ``beta ** t`` powers (:func:`adam_powers`),
and the padding ``block`` (ones where the model has the weight, zeros in its
padding: the padding's gradients are zeroed), and returns the new params and
slots. Each slot is one flat vector over all the variables laid end to end
(:func:`init_slots`): the arithmetic is each variable's, element by element,
and a program holds one fused update of the slots instead of one per
variable, which XLA compiles in less time. :data:`OPTIMIZERS` maps a recipe's
optimizer name to ``(update, slots)``.
"""

import jax
import jax.numpy as jnp
import numpy as np

F32 = np.float32
BETA_1, BETA_2, EPSILON = F32(0.9), F32(0.999), F32(1e-7)
MOMENTUM = F32(0.9)
ONE = F32(1.0)


def adam_powers(first_step, count):
    """``beta_1 ** t`` and ``beta_2 ** t`` for ``t = first_step .. first_step + count - 1``, in float32.

    Computed on the host with NumPy's float32 ``pow`` (as TensorFlow's
    ``tf.pow`` computes them), and passed to the program per epoch.
    """
    t = np.arange(first_step, first_step + count, dtype=F32)
    return np.stack([np.power(BETA_1, t), np.power(BETA_2, t)], axis=-1).astype(F32)


def _flat(arrays):
    """The arrays laid end to end, one flat vector (the slots' layout)."""
    return jnp.concatenate([jnp.reshape(a, (-1,)) for a in arrays])


def _pieces(flat, params):
    """``flat`` cut back into arrays of ``params``' shapes."""
    out, start = [], 0
    for w in params:
        size = int(np.prod(np.shape(w), dtype=np.int64))
        out.append(jnp.reshape(flat[start : start + size], np.shape(w)))
        start += size
    return out


def adam(params, slots, grads, lr, powers, block):
    """tf_keras ``legacy.Adam`` (``ResourceApplyAdam``): one step for every variable.

    ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``; ``m += (g - m) * (1 -
    beta_1)``; ``v += (g^2 - v) * (1 - beta_2)``; ``w -= m * alpha / (sqrt(v) + epsilon)``.
    The slots ``(m, v)`` are flat vectors over all the variables (:func:`init_slots`).
    """
    beta_1_power, beta_2_power = powers[0], powers[1]
    alpha = lr * jnp.sqrt(ONE - beta_2_power) / (ONE - beta_1_power)
    m, v = slots
    g = _flat(grads) * _flat(block)
    m = m + (g - m) * (ONE - BETA_1)
    v = v + (jnp.square(g) - v) * (ONE - BETA_2)
    step = (m * alpha) / (jnp.sqrt(v) + EPSILON)
    return [w - s for w, s in zip(params, _pieces(step, params))], (m, v)


def sgd(params, slots, grads, lr, powers, block):
    """tf_keras ``legacy.SGD(momentum=0.9)`` (``ResourceApplyKerasMomentum``): ``a = a * 0.9 - g * lr; w += a``."""
    del powers
    (a,) = slots
    a = a * MOMENTUM - (_flat(grads) * _flat(block)) * lr
    return [w + aw for w, aw in zip(params, _pieces(a, params))], (a,)


OPTIMIZERS = {"adam": (adam, 2), "sgd": (sgd, 1)}


def init_slots(optimizer, params):
    """Zero optimizer slots for stacked ``params`` (on the device): each slot one ``(models, parameters)`` array,
    every variable's entries laid end to end."""
    _, n = OPTIMIZERS[optimizer]
    models = np.shape(params[0])[0]
    size = sum(int(np.prod(np.shape(p)[1:], dtype=np.int64)) for p in params)
    return tuple(jax.device_put(np.zeros((models, size), np.float32)) for _ in range(n))
