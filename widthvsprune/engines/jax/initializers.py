"""Keras 3 initial weights without compiling a program per weight shape.

Under the JAX backend every variable Keras initializes runs a small compiled
program (``jax.random.uniform`` and friends) for its shape: 0.2-0.3 s per new
shape on a 2-core CPU, about 1.5 s per model of new widths, which would
dominate a pack of narrow models of assorted widths.

:func:`build` therefore builds the model with initialization deferred
(``keras.StatelessScope(initialize_variables=False)``) and computes each
variable's initial value here, the same value Keras would compute:

- ``Zeros``, ``Ones`` and ``Constant`` initializers in NumPy;
- initializers drawing from ``keras.random.uniform`` (``glorot_uniform``,
  ``he_uniform``, ``RandomUniform`` ... with an integer seed, as Keras gives
  every unseeded initializer) from JAX's threefry2x32 bits computed in NumPy
  (:func:`random_bits`) and JAX's bits-to-float mapping (with the fused
  multiply-add XLA compiles it to, :func:`fma_f32`), bit for bit equal to
  ``jax.random.uniform`` when JAX uses its default partitionable threefry
  (tested against a plain Keras build);
- anything else through Keras itself.
"""

import math
from fractions import Fraction

import jax
import keras
import numpy as np

from widthvsprune.adapters import keras as keras_adapter

_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotate_left(x, r):
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def threefry2x32(key, x1, x2):
    """The threefry2x32 block cipher (JAX's reference arithmetic) on uint32 arrays."""
    k1, k2 = np.uint32(key[0]), np.uint32(key[1])
    ks = (k1, k2, np.uint32(k1 ^ k2 ^ np.uint32(0x1BD11BDA)))
    x = [x1 + ks[0], x2 + ks[1]]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x[0] = x[0] + x[1]
            x[1] = _rotate_left(x[1], r)
            x[1] = x[0] ^ x[1]
        x[0] = x[0] + ks[(i + 1) % 3]
        x[1] = x[1] + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x[0], x[1]


def random_bits(key, size):
    """The 32-bit random bits of ``jax.random`` (partitionable threefry) for ``size`` elements, row-major."""
    index = np.arange(size, dtype=np.uint64)
    hi, lo = (index >> np.uint64(32)).astype(np.uint32), (index & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    with np.errstate(over="ignore"):
        b1, b2 = threefry2x32(key, hi, lo)
    return b1 ^ b2


def fast_path():
    """Whether JAX draws random bits as :func:`random_bits` computes them."""
    return bool(jax.config.jax_threefry_partitionable) and jax.config.jax_default_prng_impl == "threefry2x32"


def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
    """``keras.random.uniform`` under the JAX backend, in NumPy for float32 and an integer seed."""
    dtype = dtype or keras.config.floatx()
    if not isinstance(seed, int) or np.dtype(dtype) != np.float32 or not fast_path():
        return keras_adapter.keras_uniform(shape, minval=minval, maxval=maxval, dtype=dtype, seed=seed)
    bits = random_bits((seed & 0xFFFFFFFF, 0), math.prod(shape))
    floats = ((bits >> np.uint32(9)) | np.uint32(0x3F800000)).view(np.float32) - np.float32(1.0)
    low, high = np.float32(minval), np.float32(maxval)
    return np.maximum(low, fma_f32(floats, high - low, low)).reshape(shape)


def fma_f32(a, b, c):
    """``a * b + c`` on float32 arrays with one rounding, as XLA computes it (fused multiply-add).

    The product of two float32 numbers is exact in float64; the sum is
    rounded to float64 and then to float32, which is the single rounding
    except when the float64 sum lies exactly halfway between two float32
    numbers: those (rare) elements are recomputed exactly.
    """
    a, b, c = np.broadcast_arrays(np.asarray(a, np.float32), np.asarray(b, np.float32), np.asarray(c, np.float32))
    wide = a.astype(np.float64) * b.astype(np.float64) + c.astype(np.float64)
    out = wide.astype(np.float32)
    halfway = (wide.view(np.uint64) & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000)
    for i in zip(*np.nonzero(halfway)):
        exact = Fraction(float(a[i])) * Fraction(float(b[i])) + Fraction(float(c[i]))
        below = np.float32(float(exact))
        above = np.nextafter(below, np.float32(np.inf) if Fraction(float(below)) < exact else np.float32(-np.inf))
        pick = min((below, above), key=lambda v: (abs(Fraction(float(v)) - exact), int(v.view(np.uint32)) & 1))
        out[i] = pick
    return out



def value(initializer, shape, dtype):
    """The initial value ``initializer`` gives a variable of ``shape`` and ``dtype``, as a NumPy array."""
    name = type(initializer).__name__
    if name == "Zeros":
        return np.zeros(shape, dtype)
    if name == "Ones":
        return np.ones(shape, dtype)
    if name == "Constant" and np.ndim(initializer.value) == 0:
        return np.full(shape, initializer.value, dtype)
    with keras_adapter.uniform_replaced(uniform):
        return np.asarray(initializer(shape, dtype=dtype))


class _Fixed:
    def __init__(self, array):
        self.array = jax.device_put(array)  # a device array: Keras's conversion of it compiles nothing

    def __call__(self, shape, dtype=None):
        return self.array


def build(make):
    """Runs ``make()`` (which builds a Keras 3 model) and initializes the variables it created (module doc).

    ``make`` must seed Keras itself when it wants seeded weights; if it
    creates a variable that cannot be deferred, it runs again the plain way.

    Returns:
        What ``make`` returns.
    """
    before = {id(v) for v in keras_adapter.uninitialized_variables()}
    try:
        with keras.StatelessScope(initialize_variables=False):
            model = make()
    except ValueError:  # a layer that creates a variable from a value cannot defer: Keras's own way
        keras_adapter.initialize_all_variables()
        return make()
    for variable in keras_adapter.uninitialized_variables():
        initializer = keras_adapter.initializer(variable)
        if id(variable) not in before and initializer is not None:
            keras_adapter.set_initializer(variable, _Fixed(value(initializer, tuple(variable.shape), variable.dtype)))
    keras_adapter.initialize_all_variables()
    return model
