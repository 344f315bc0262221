"""The jax engine behind the :class:`~widthvsprune.engines.base.Engine` seam."""

import os
import time

import jax

from widthvsprune.engines import base
from widthvsprune.engines.jax import cache, chunks, optimizers, packing, programs, training

#: Share of the free device memory a pack may use (:meth:`JaxEngine.max_pack_models`).
MEMORY_FRACTION = 0.5


def _devices(platform):
    try:
        return jax.devices(platform)
    except RuntimeError:  # no such backend
        return []


class JaxEngine(base.Engine):
    """Keras 3 models trained by compiled JAX programs, several models per program.

    Args:
        pad: train models of one family and different widths in a common
            (padded) shape when they embed in it; ``False`` compiles one
            program per distinct widths.
        max_models: most models per compiled program; ``None`` sizes them to
            the device memory (:meth:`max_pack_models`) and, for batched
            convolutional models on a CPU, to its caches
            (:func:`~widthvsprune.engines.jax.training.models_per_program`).
        compilation_cache: a folder where JAX keeps compiled programs across
            processes (its persistent compilation cache: a study's later runs
            and helper processes then load instead of compiling); ``None``
            keeps the one chosen when the engine was imported
            (:func:`~widthvsprune.engines.jax.cache.compilation_cache_dir`). The
            setting is JAX's, for the whole process.
        forward: ``"auto"`` (the default), ``"batched"`` or ``"keras"``: how
            a pack's forward pass runs
            (:func:`~widthvsprune.engines.jax.training.batched_forward`).

    Attributes:
        stats: figures of the last :meth:`train` call: ``seconds``,
            ``compile_seconds``, ``compiled`` (programs compiled in it),
            ``compiled_quickly`` (of those, compiled with XLA's quicker
            options: :func:`~widthvsprune.engines.jax.programs.compiles_quickly`),
            ``models``.

    Example:

    ```python
    from widthvsprune import data
    from widthvsprune.engines import base, load

    engine = load("jax")
    pack = base.Pack(
        models=(base.ModelSpec("mlp", (32, 16), seed=0, learning_rate=1e-3),),
        batch_size=32, optimizer="adam", epochs=2,
    )
    (outcome,) = engine.train(pack, data.load("digits"))
    print(outcome.test_accuracy)
    ```
    """

    name = "jax"

    def __init__(self, pad=True, max_models=None, compilation_cache=None, forward="auto"):
        training.check_forward(forward)
        self.pad = bool(pad)
        self.max_models = max_models
        self.forward = forward
        if compilation_cache:
            cache.use_compilation_cache(compilation_cache)
        self.templates = packing.Templates()
        self.cache = programs.ProgramCache()
        self._data = None
        self.stats = {}

    def train(self, pack, splits, observe=None, observe_steps=()):
        """Trains every model of ``pack`` on ``splits``; one :class:`~widthvsprune.engines.base.Outcome` each.

        ``observe(step, run)`` is a hook for tests: called with a
        :class:`~widthvsprune.engines.jax.training.GroupRun` after each
        optimizer step in ``observe_steps``.
        """
        if not pack.models:
            return []
        start, compile_before, compiled_before = time.perf_counter(), self.cache.compile_seconds, self.cache.compiled
        quickly_before = self.cache.compiled_quickly
        if self._data is None or self._data.splits is not splits:
            self._data = training.DeviceData(splits)
        max_models = self.max_models
        if max_models is None:
            shape, classes = splits.input_shape, splits.num_classes

            def max_models(key):
                most = self.max_pack_models(key[0], key[1], shape, classes, pack.batch_size, pack.optimizer)
                model, layout = self.templates.get(*key)
                per_program = training.models_per_program(model, layout, pack.batch_size, self.forward)
                return most if per_program is None else min(most, per_program)

        outcomes = training.train_pack(pack, splits, self.templates, self.cache, self._data, self.pad, max_models,
                                       observe, observe_steps, self.forward)
        self.stats = {
            "seconds": time.perf_counter() - start,
            "compile_seconds": self.cache.compile_seconds - compile_before,
            "compiled": self.cache.compiled - compiled_before,
            "compiled_quickly": self.cache.compiled_quickly - quickly_before,
            "models": len(pack.models),
        }
        return outcomes

    @property
    def compile_seconds(self):
        return self.cache.compile_seconds

    @property
    def programs_compiled(self):
        return self.cache.compiled

    def count_params(self, family, widths, input_shape, num_classes):
        """Parameters of the Keras 3 model of ``family`` at ``widths``."""
        model, _ = self.templates.get(family, widths, tuple(input_shape), num_classes)
        return int(model.count_params())

    def gpus(self):
        """GPUs JAX sees (training runs on the first, JAX's default device)."""
        return len(_devices("gpu"))

    def limit_threads(self, workers):
        """Nothing to do: XLA's CPU runtime keeps the thread pool it sizes from the cores.

        Measured on 2 cores, with the pool of each process made one thread
        (the CPU client created while the process could use one core): a
        step of eight quickstart MLPs took 71 instead of 92 microseconds a
        model with two processes at once, and the same weights bit for bit;
        but a seed CNN pack alone trained an epoch in 5.61 s instead of
        3.95 s, and a study's stages of a single pack leave one process
        alone. Whole workloads (``benchmarks/throughput.py``'s studies, the
        same code otherwise): MNIST-1D 37.2 s against 41.3 s, the seed CNN
        73.9 s and 76.0 s against 71.4 s. No single pool size serves both, so
        the pool stays as XLA sizes it.
        """

    def max_pack_models(self, family, widths, input_shape, num_classes, batch_size, optimizer="adam",
                        memory_fraction=MEMORY_FRACTION):
        """How many models of this shape one compiled program may train, from the device's free memory.

        An estimate: per model, float32 weights with their gradients, masks,
        padding blocks and optimizer slots (``4 + slots`` copies of the
        parameters), plus the activations of one batch kept for the backward
        pass (three copies of every layer's output, and of a convolution's
        patches: :func:`~widthvsprune.engines.jax.chunks.activation_floats`)
        and of one evaluation chunk. ``memory_fraction`` of the free memory (the GPU's
        ``bytes_limit - bytes_in_use``; on a CPU the available RAM) is shared
        out. At least 1.
        """
        model, layout = self.templates.get(family, widths, tuple(input_shape), num_classes)
        slots = optimizers.OPTIMIZERS.get(optimizer, optimizers.OPTIMIZERS["adam"])[1]
        activations = chunks.activation_floats(model)
        per_model = 4 * layout.params * (4 + slots)
        per_model += 4 * activations * (3 * int(batch_size) + training.EVAL_CHUNK_MAX)
        return max(1, int(memory_fraction * _free_memory() // max(1, per_model)))


def _free_memory():
    device = jax.devices()[0]
    if device.platform != "cpu":
        stats = device.memory_stats() or {}
        if "bytes_limit" in stats:
            return int(stats["bytes_limit"]) - int(stats.get("bytes_in_use", 0))
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return 8 << 30
