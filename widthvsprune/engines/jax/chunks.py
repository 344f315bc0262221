"""How many models and examples a batched step of the jax engine takes at once, so its activations fit the caches."""

import math

from widthvsprune.engines.jax import batched, models

#: Activation bytes a batched step of a chunk of models may hold on a CPU (:func:`models_per_chunk`).
CHUNK_BYTES = 16 << 20


def activation_floats(model):
    """Floats of activations one example produces in ``model``'s forward pass: every layer's output, and the
    patches of every convolution (``prod(kernel_size) * in_channels`` per output position)."""
    total = 0
    for layer in models.flat_layers(model):
        try:
            out = [int(d) for d in layer.output.shape[1:]]
            total += math.prod(out)
            if type(layer).__name__ in batched.CONVOLUTIONS:
                total += math.prod(out[:-1]) * math.prod(layer.kernel_size) * int(layer.input.shape[-1])
        except (AttributeError, TypeError, ValueError):
            continue
    return total


def examples_per_slice(model, models, budget=CHUNK_BYTES):
    """How many examples an evaluation of ``models`` models should take at once (a power of two, at least 1).

    The same budget as a training step's (:func:`models_per_chunk`).
    """
    fits = max(1, int(budget // max(1, 4 * activation_floats(model) * int(models))))
    return 1 << (fits.bit_length() - 1)


def models_per_chunk(model, batch_size, budget=CHUNK_BYTES):
    """How many models a batched training step should hold so that its activations stay within ``budget`` bytes.

    Measured on a 2-core CPU: a seed CNN step (28x28, 76 KB of activations
    per example by :func:`activation_floats`) costs about the same CPU time
    per example from 32 to 256 examples (8 models at batch 32, 2 at batch
    128), and two to three times as much from 384 examples (29 MB) on, once
    its activations outgrow the caches. At least 1.
    """
    per_model = 4 * activation_floats(model) * int(batch_size)
    return max(1, int(budget // max(1, per_model)))
