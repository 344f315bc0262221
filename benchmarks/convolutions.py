"""Convolutional packs on the jax engine: stacked convolution methods per layer shape, whole packs, one model's epoch.

Three measurements on whatever device JAX has (``layers`` and ``packs`` in
this process, ``fit`` in fresh ones):

``layers``
    For the convolution layers of the shipped convolutional families, the
    time of one training step's convolution work (forward, and the gradient
    of a fixed cotangent with respect to the kernels and, except for a first
    layer, the input), run as the engine runs it: ten steps in one compiled
    loop (XLA's CPU convolutions are several times slower in a loop than
    alone), for ``m`` stacked models, by each method of
    :mod:`widthvsprune.engines.jax.convolutions`, and the method
    :func:`~widthvsprune.engines.jax.convolutions.choose` picks. Times are
    CPU seconds of this process (``time.process_time``: XLA spreads a step
    over several threads; when every core is busy, as in a study with one
    worker per core, CPU time is what a step costs), the best of several
    repetitions.

``packs``
    Packs of 1, 4 and 12 models of the seed CNN (28x28, batch 32) and of
    the MNIST-1D CNN (length 40, batch 100) trained for one epoch of 3,200
    synthetic examples through the engine seam, with the batched forward
    pass and with Keras's ``stateless_call`` (``forward="keras"``, the
    engine's way before the batched pass). It prints the first call's wall
    time and compile time, and the best wall and CPU time of two more calls
    (programs compiled), as training samples per second.

``fit``
    One model's epoch of keras.io's simple MNIST convnet (7,200 28x28
    images) and of a CIFAR-size ResNet-20 (1,600 32x32x3 images), batch 64,
    Adam, on synthetic data, each way in a fresh process: the engine (one
    model, a pack of two per model, and Keras's own forward pass), and
    plain ``model.fit`` of Keras 3 on JAX and on TensorFlow and of tf_keras.
    It prints the first epoch (compiling) and the best of two more, and
    the ratio to the fastest plain Keras.

Usage::

    python benchmarks/convolutions.py fit               # one model's epoch, the engine against plain Keras
    python benchmarks/convolutions.py                   # layers and packs
    python benchmarks/convolutions.py layers --models 1 4
    python benchmarks/convolutions.py packs --forward batched
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: ``(name, input (spatial..., channels), kernel size, filters, strides, padding, batch, first layer, pool)``.
LAYERS = (
    ("seed_cnn conv", (28, 28, 1), (3, 3), 12, (1, 1), "valid", 32, True),
    ("seed_cnn conv, batch 128", (28, 28, 1), (3, 3), 12, (1, 1), "valid", 128, True),
    ("seed_cnn conv+pool", (28, 28, 1), (3, 3), 12, (1, 1), "valid", 32, True, (2, 2)),
    ("seed_cnn conv+pool, b128", (28, 28, 1), (3, 3), 12, (1, 1), "valid", 128, True, (2, 2)),
    ("seed_cnn 4 conv+pool", (28, 28, 1), (3, 3), 4, (1, 1), "valid", 32, True, (2, 2)),
    ("lenet5 conv1", (28, 28, 1), (5, 5), 6, (1, 1), "same", 32, True),
    ("lenet5 conv1+pool", (28, 28, 1), (5, 5), 6, (1, 1), "same", 32, True, (2, 2)),
    ("lenet5 conv2", (14, 14, 6), (5, 5), 16, (1, 1), "same", 32, False),
    ("lenet5 conv2+pool", (14, 14, 6), (5, 5), 16, (1, 1), "same", 32, False, (2, 2)),
    ("cnn1d conv1", (42, 1), (5,), 25, (2,), "valid", 100, True),
    ("cnn1d conv2", (21, 25), (3,), 25, (2,), "valid", 100, False),
    ("cnn1d conv3", (12, 25), (3,), 25, (2,), "valid", 100, False),
    ("resnet 3x3, 16 channels", (32, 32, 16), (3, 3), 16, (1, 1), "same", 32, False),
    ("resnet 3x3, 64 channels", (8, 8, 64), (3, 3), 64, (1, 1), "same", 32, False),
    ("resnet 3x3 stride 2", (16, 16, 16), (3, 3), 32, (2, 2), "same", 32, False),
    ("resnet 1x1 projection", (16, 16, 16), (1, 1), 32, (2, 2), "same", 32, False),
    ("mobilenet 1x1", (16, 16, 32), (1, 1), 64, (1, 1), "valid", 32, False),
    ("mnist_convnet conv1+pool", (28, 28, 1), (3, 3), 32, (1, 1), "valid", 64, True, (2, 2)),
    ("mnist_convnet conv2+pool", (13, 13, 32), (3, 3), 64, (1, 1), "valid", 64, False, (2, 2)),
)


#: Steps of the compiled loop a layer is timed in (the engine runs its steps in one).
LOOP_STEPS = 10


def cpu_seconds(fn, args, repeats=5, calls=3):
    """Best CPU seconds of one call of a compiled ``fn`` (``calls`` calls timed together, ``repeats`` times)."""
    import jax

    jax.block_until_ready(fn(*args))
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(calls):
            out = fn(*args)
        jax.block_until_ready(out)
        best = min(best, (time.process_time() - start) / calls)
    return best


def layer_step(method, strides, padding, first, pool):
    """A compiled function: :data:`LOOP_STEPS` training steps of the layer's convolution work in one loop.

    Each step is the forward pass (and pooling) and the gradients for a
    fixed cotangent, and moves the kernel by its gradient, the next step's
    input depending on it, so that every step is computed: inside a loop,
    as the engine's programs run them (XLA's CPU convolutions run several
    times slower inside a compiled loop than alone, jax-ml/jax#12868).
    """
    import jax
    import jax.numpy as jnp

    from widthvsprune.engines.jax import convolutions

    def objective(kernel, x, cotangent):
        if pool is None:
            return jnp.vdot(convolutions.conv(x, kernel, strides, padding, method), cotangent)
        return jnp.vdot(convolutions.conv_max_pool(x, kernel, strides, padding, pool, method), cotangent)

    grad = jax.grad(objective, argnums=(0,) if first else (0, 1))

    def steps(kernel, x, cotangent):
        def body(_, carry):
            kernel, x = carry
            grads = grad(kernel, x, cotangent)
            x = x * (1 + 1e-7 * jnp.mean(grads[0])) + (0 if first else 1e-7 * grads[1])
            return kernel - 1e-7 * grads[0], x

        return jax.lax.fori_loop(0, LOOP_STEPS, body, (kernel, x))

    return jax.jit(steps)


def bench_layers(model_counts, methods, only=None):
    import numpy as np

    from widthvsprune.engines.jax import convolutions

    rng = np.random.default_rng(0)
    columns = list(methods) + ["phases"]
    print(f"{'layer':<26} {'m':>3}  " + "".join(f"{m:>10}" for m in columns) + "   fastest / chosen   (us per example)")
    for name, shape, kernel_size, filters, strides, padding, batch, first, *pool in LAYERS:
        if only and not any(part in name for part in only):
            continue
        pool = pool[0] if pool else None
        for m in model_counts:
            x = rng.random((m, batch) + shape, dtype=np.float32)
            kernel = rng.normal(size=(m,) + kernel_size + (shape[-1], filters)).astype(np.float32)
            out = convolutions.output_spatial(shape[:-1], kernel_size, strides, padding)
            if pool is not None:
                out = tuple(n // p for n, p in zip(out, pool))
            cotangent = rng.normal(size=(m, batch) + out + (filters,)).astype(np.float32)
            times = {}
            for method in list(methods) + (["phases"] if pool is not None else []):
                step = layer_step(method, strides, padding, first, pool)
                calls = 1 if method == "grouped" and m > 1 else 3
                seconds = cpu_seconds(step, (kernel, x, cotangent), calls=calls) / LOOP_STEPS
                times[method] = seconds / (m * batch) * 1e6
            if pool is None:
                chosen = convolutions.choose(kernel_size, shape[-1], strides)
            else:
                chosen = convolutions.choose_pooled(kernel_size, shape[-1], strides, pool)
            fastest = min(times, key=times.get)
            print(f"{name:<26} {m:>3}  " + "".join(f"{times[k]:>10.2f}" if k in times else f"{'':>10}"
                                                   for k in columns) + f"   {fastest} / {chosen}", flush=True)


def synthetic(shape, n=3200, classes=10):
    import numpy as np

    from widthvsprune import data

    rng = np.random.default_rng(0)
    x = rng.random((n,) + tuple(shape), dtype=np.float32)
    y = rng.integers(0, classes, n).astype(np.int32)
    return data.Splits("synthetic", x, y, x[:512], y[:512], x[:512], y[:512], classes)


PACKS = (("seed_cnn", (12,), (28, 28), 32), ("cnn1d", (25, 25, 25), (40,), 100))


def bench_packs(model_counts, forwards):
    from widthvsprune.engines import base
    from widthvsprune.engines.jax import engine as jax_engine

    print(f"{'family':<9} {'forward':<8} {'m':>3} {'first call s':>13} {'compile s':>10} {'epoch wall s':>13} "
          f"{'epoch cpu s':>12} {'samples/s':>10}")
    for forward in forwards:
        engine = jax_engine.JaxEngine(forward=forward)
        for family, widths, shape, batch in PACKS:
            splits = synthetic(shape)
            for m in model_counts:
                specs = tuple(base.ModelSpec(family, widths, seed=s, learning_rate=1e-3) for s in range(m))
                pack = base.Pack(specs, batch, "adam", 1, validate="last_epoch", test=False, weights=False)
                start = time.perf_counter()
                engine.train(pack, splits)
                first, compiled = time.perf_counter() - start, engine.stats["compile_seconds"]
                wall, cpu = float("inf"), float("inf")
                for _ in range(2):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    engine.train(pack, splits)
                    wall = min(wall, time.perf_counter() - start)
                    cpu = min(cpu, time.process_time() - start_cpu)
                samples = m * len(splits.x_train)
                print(f"{family:<9} {forward:<8} {m:>3} {first:>13.2f} {compiled:>10.2f} {wall:>13.3f} {cpu:>12.3f} "
                      f"{samples / wall:>10,.0f}", flush=True)


#: ``(family, widths, input shape, training examples, batch size)`` of the ``fit`` comparison.
FITS = (("mnist_convnet", (32, 64), (28, 28, 1), 7_200, 64), ("resnet", (16, 32, 64), (32, 32, 3), 1_600, 64))
#: The ways one model's epoch is trained in ``fit``, each in a fresh process.
FIT_WAYS = ("engine", "engine, pack of 2", "engine, keras forward", "keras jax", "keras tensorflow", "tf_keras")


def fit_one(way, family, repeats=2):
    """Seconds of one epoch of ``family`` (:data:`FITS`) trained ``way``: the best of ``repeats`` epochs after a
    first one (which compiles), per model. Run in its own process (Keras's backend is fixed at its import)."""
    import numpy as np

    name, widths, shape, n, batch = next(f for f in FITS if f[0] == family)
    rng = np.random.default_rng(0)
    x = rng.random((n,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, n).astype(np.int32)
    times = []
    if way.startswith("engine"):
        from widthvsprune import data
        from widthvsprune.engines import base
        from widthvsprune.engines.jax import engine as jax_engine

        splits = data.Splits("synthetic", x, y, x[:512], y[:512], x[:512], y[:512], 10)
        engine = jax_engine.JaxEngine(forward="keras" if way.endswith("keras forward") else "auto")
        models = 2 if way.endswith("pack of 2") else 1
        specs = tuple(base.ModelSpec(name, widths, seed=s, learning_rate=1e-3) for s in range(models))
        trained = base.Pack(specs, batch, "adam", 1, validate="last_epoch", test=False, weights=False)
        for _ in range(repeats + 1):
            start = time.perf_counter()
            engine.train(trained, splits)
            times.append((time.perf_counter() - start) / models)
    else:
        from widthvsprune import families

        if way == "tf_keras":
            from widthvsprune.engines.tf_keras.backend import keras
        else:
            import keras
        model = families.get_family(name).build(widths, shape, 10, keras)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        for _ in range(repeats + 1):
            start = time.perf_counter()
            model.fit(x, y, batch_size=batch, epochs=1, verbose=0)
            times.append(time.perf_counter() - start)
    print(json.dumps({"first": times[0], "epoch": min(times[1:])}))


def bench_fit(names):
    """One model's epoch trained every way of :data:`FIT_WAYS`, each in a fresh process."""
    print(f"{'family':<14} {'way':<24} {'first epoch s':>14} {'epoch s':>9} {'vs fastest Keras':>17}")
    for family, widths, shape, n, batch in FITS:
        if names and family not in names:
            continue
        results = {}
        for way in FIT_WAYS:
            env = dict(os.environ, KERAS_BACKEND="tensorflow" if way == "keras tensorflow" else "jax")
            out = subprocess.run([sys.executable, __file__, "fit-one", "--way", way, "--family", family],
                                 env=env, capture_output=True, text=True, check=True).stdout
            results[way] = json.loads(out.strip().splitlines()[-1])
        fastest = min(results[w]["epoch"] for w in ("keras jax", "keras tensorflow", "tf_keras"))
        for way, r in results.items():
            print(f"{family:<14} {way:<24} {r['first']:>14.2f} {r['epoch']:>9.2f} {r['epoch'] / fastest:>16.2f}x",
                  flush=True)
        print(f"({family} at widths {widths}: {n:,} examples of {shape}, batch {batch}, Adam; per model)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", nargs="?", choices=["layers", "packs", "fit", "fit-one", "both"], default="both")
    parser.add_argument("--way", choices=FIT_WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--family", nargs="+", help="fit: only these families (mnist_convnet, resnet)")
    parser.add_argument("--models", type=int, nargs="+", default=[1, 4, 12], help="models per pack")
    parser.add_argument("--methods", nargs="+", help="convolution methods (layers; default: all)")
    parser.add_argument("--layers", nargs="+", help="only the layers whose names hold one of these (layers)")
    parser.add_argument("--forward", nargs="+", default=["batched", "keras"], help="forward passes (packs)")
    args = parser.parse_args(argv)
    if args.what == "fit":
        return bench_fit(args.family)
    if args.what == "fit-one":
        if args.way.startswith("engine"):
            from widthvsprune.engines import jax as _  # noqa: F401  (selects Keras's JAX backend)
        return fit_one(args.way, args.family[0])
    from widthvsprune.engines import jax as _  # noqa: F401  (selects Keras's JAX backend)
    from widthvsprune.engines.jax import convolutions

    if args.what in ("layers", "both"):
        bench_layers(args.models, args.methods or list(convolutions.METHODS), args.layers)
    if args.what in ("packs", "both"):
        bench_packs(args.models, args.forward)


if __name__ == "__main__":
    main()
