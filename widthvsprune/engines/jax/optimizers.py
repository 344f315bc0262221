"""tf_keras's legacy optimizers in their fused kernels' float32 arithmetic, for stacked weights.

Each update takes the stacked ``params``, their ``slots`` (a tuple per
variable), the gradients, the learning rate and, for Adam, the step's
``beta ** t`` powers (:func:`adam_powers`), and returns the new params and
slots. :data:`OPTIMIZERS` maps a recipe's optimizer name to
``(update, slots per variable)``.
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


def adam(params, slots, grads, lr, powers):
    """tf_keras ``legacy.Adam`` (``ResourceApplyAdam``): one step for every variable.

    ``alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)``; ``m += (g - m) * (1 -
    beta_1)``; ``v += (g^2 - v) * (1 - beta_2)``; ``w -= m * alpha / (sqrt(v) + epsilon)``.
    """
    beta_1_power, beta_2_power = powers[0], powers[1]
    alpha = lr * jnp.sqrt(ONE - beta_2_power) / (ONE - beta_1_power)
    new_params, new_slots = [], []
    for w, (m, v), g in zip(params, slots, grads):
        m = m + (g - m) * (ONE - BETA_1)
        v = v + (jnp.square(g) - v) * (ONE - BETA_2)
        new_params.append(w - (m * alpha) / (jnp.sqrt(v) + EPSILON))
        new_slots.append((m, v))
    return new_params, new_slots


def sgd(params, slots, grads, lr, powers):
    """tf_keras ``legacy.SGD(momentum=0.9)`` (``ResourceApplyKerasMomentum``): ``a = a * 0.9 - g * lr; w += a``."""
    del powers
    new_params, new_slots = [], []
    for w, (a,), g in zip(params, slots, grads):
        a = a * MOMENTUM - g * lr
        new_params.append(w + a)
        new_slots.append((a,))
    return new_params, new_slots


OPTIMIZERS = {"adam": (adam, 2), "sgd": (sgd, 1)}


def init_slots(optimizer, params):
    """Zero optimizer slots for stacked ``params`` (on the device)."""
    _, n = OPTIMIZERS[optimizer]
    return tuple(tuple(jax.device_put(np.zeros(np.shape(p), np.float32)) for _ in range(n)) for p in params)
