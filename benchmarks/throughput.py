"""Study throughput: widthvsprune's runner against the naive way, on the same trainings.

For each workload this script alternates, in fresh subprocesses (so that peak
memory is each approach's own and TensorFlow's import is not timed):

(b) widthvsprune's runner: ``run_study`` on an empty results folder, which
    trains the baselines, the pruned arm, every narrow search trial and the
    narrow retrains, evaluates, measures and writes every table;
(a) the naive way, exactly as TensorFlow's "Pruning in Keras" notebook does
    it: one ``compile`` + ``fit(validation_data=...)`` + ``evaluate`` per
    model, in sequence, for the same list of trainings the runner did (same
    widths, learning rates, epochs, batch sizes, seeds and pruning schedule;
    the trial list is read from the runner's KerasTuner projects).

It prints the wall time of each, their ratio, training samples per second,
peak resident memory, and the achieved arithmetic rate as a fraction of this
machine's peak (a large float32 matmul in TensorFlow, measured in the same
run). Its last line is ``speedup: <ratio>`` for the quickstart workload.
The ratio is a first run's: every repeat compiles its programs as a first run
does (the jax engine's persistent compilation cache starts empty). Beside it
the runner runs once more on the cache the first run filled (``warm``), and
the benchmark prints where each run's time went, all its processes together
(the runner's imports, setup, compiling, training, proposals, records and
reports) and the training share of the wall time (training seconds over wall
time times processes).

Usage::

    python benchmarks/throughput.py                 # every workload, both engines, 2 repeats
    python benchmarks/throughput.py --workload quickstart --engine jax --repeats 1
    python benchmarks/throughput.py --workload mnist1d --engine jax --repeats 1
    python benchmarks/throughput.py --workload mnist_convnet --engine jax --repeats 1
    python benchmarks/throughput.py --workload resnet20 --engine both --repeats 1
"""

import argparse
import dataclasses
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# --------------------------------------------------------------------------
# Workloads.


def quickstart_study():
    from widthvsprune import load_study

    return load_study(ROOT / "studies" / "quickstart.py")


def seed_cnn_study(npz):
    """The seed notebook's model and recipe on MNIST-shaped synthetic data (offline)."""
    from widthvsprune import Pruning, Recipe, Study, Tuning

    return Study(
        name="seed_cnn_synthetic",
        dataset=f"npz:{npz}",
        family="seed_cnn",
        widths=(12,),
        sparsities=(0.5, 0.8),
        seeds=(0, 1, 2),
        baseline=Recipe(epochs=1, batch_size=32),
        finetune=Recipe(epochs=1, batch_size=128),
        pruning=Pruning(initial_sparsity=0.5, frequency=100, end_fraction=1.0),
        tuning=Tuning(oracle="bayesian", trials=2),
    )


def mnist1d_study():
    """``studies/mnist1d.py`` trimmed to fit a benchmark: its CNN, data and recipe's shape, fewer epochs and runs."""
    import dataclasses

    from widthvsprune import Recipe, Tuning, load_study

    study = load_study(ROOT / "studies" / "mnist1d.py")
    return dataclasses.replace(
        study, name="mnist1d_trimmed", sparsities=(0.5, 0.9), seeds=(0, 1),
        baseline=Recipe(epochs=40, batch_size=100, learning_rate=1e-2, optimizer="adam"),
        finetune=Recipe(epochs=10, batch_size=100, learning_rate=1e-2, optimizer="adam"),
        tuning=Tuning(oracle="bayesian", trials=4))


def one_epoch_study(name, npz, family):
    """``family`` at its default widths on a synthetic npz, one epoch at batch 64 per training: the pruned arm at
    80% and one-trial searches (the ``mnist_convnet`` and ``resnet20`` workloads)."""
    from widthvsprune import Pruning, Recipe, Study, Tuning

    return Study(
        name=name,
        dataset=f"npz:{npz}",
        family=family,
        sparsities=(0.8,),
        seeds=(0,),
        baseline=Recipe(epochs=1, batch_size=64),
        finetune=Recipe(epochs=1, batch_size=64),
        pruning=Pruning(initial_sparsity=0.5, end_fraction=1.0),
        tuning=Tuning(oracle="bayesian", trials=1),
    )


def synthetic_images(path, shape=(28, 28), train=60_000, test=10_000, signal=0.1):
    """``train`` + ``test`` images of ``shape``: noisy class templates (``signal`` of each image), learnable but
    not trivial."""
    import numpy as np

    rng = np.random.default_rng(0)
    templates = rng.random((10,) + shape).astype("float32")

    def make(n):
        y = rng.integers(0, 10, n).astype("uint8")
        x = signal * templates[y] + (1 - signal) * rng.random((n,) + shape, dtype=np.float32)
        return (x * 255).astype("uint8"), y

    x_train, y_train = make(train)
    x_test, y_test = make(test)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


#: The workloads on synthetic images: ``name: (npz file, synthetic_images arguments, study)``. The one-epoch
#: workloads' images carry a stronger signal, which one epoch learns.
IMAGE_WORKLOADS = {
    "seed_cnn": ("synthetic_mnist.npz", {}, seed_cnn_study),
    # keras.io's "Simple MNIST convnet", 34,826 parameters, on 7,200 training images of 28x28.
    "mnist_convnet": ("synthetic_mnist_8000.npz", dict(train=8_000, test=2_000, signal=0.3),
                      lambda npz: one_epoch_study("mnist_convnet_synthetic", npz, "mnist_convnet")),
    # A CIFAR-size ResNet-20 (the resnet family, 274,042 parameters on 32x32x3) on 1,800 training images.
    "resnet20": ("synthetic_cifar_2000.npz", dict(shape=(32, 32, 3), train=1_800, test=200, signal=0.3),
                 lambda npz: one_epoch_study("resnet20_synthetic", npz, "resnet")),
}


def load_workload(name, workdir):
    if name == "quickstart":
        return quickstart_study()
    if name == "mnist1d":
        return mnist1d_study()
    filename, images, study = IMAGE_WORKLOADS[name]
    npz = pathlib.Path(workdir) / filename
    if not npz.exists():
        synthetic_images(npz, **images)
    return study(npz)


# --------------------------------------------------------------------------
# One approach, in its own process.


def peak_matmul_gflops():
    from widthvsprune.engines.tf_keras.backend import tf

    n = 2048
    a = tf.random.normal((n, n))
    b = tf.random.normal((n, n))
    tf.linalg.matmul(a, b).numpy()  # warm up
    best = 0.0
    for _ in range(5):
        start = time.perf_counter()
        tf.linalg.matmul(a, b).numpy()
        best = max(best, 2 * n**3 / (time.perf_counter() - start) / 1e9)
    return best


@dataclasses.dataclass
class Job:
    """One training the runner did: what the naive way trains again, alone."""

    arm: str  # an arm's name, or trial
    fit: object  # widthvsprune.arms.Fit
    spec: object  # widthvsprune.engines.base.ModelSpec, without its initial weights
    id: object = None  # a run's id, for the runs that start from it
    needs: object = None  # the run whose weights this one starts from


WEIGHTS_OF = "weights of"  # what a trial's initial weights are here: a marker naming the run they come from


class Replay:
    """What an arm's search context asks of the running study, answered from a finished study's records."""

    def __init__(self, survey):
        self.survey, self.count = survey, None

    def state(self, run_id):
        return self.survey.states[run_id]

    def weights(self, run_id):
        return (WEIGHTS_OF, run_id)

    def note(self, text):
        pass


def trainings_of(study, results_root):
    """The trainings the runner did, from its plan, records and searches' trials, in an order that trains every
    run before the models that start from its weights."""
    from widthvsprune import arms, data, store
    from widthvsprune.store import results

    root = store.study_dir(results_root, study.name)
    splits = data.load(study.dataset, study.validation_fraction, study.data_seed)
    survey = results.survey(study, root)
    n = len(splits.x_train)
    jobs = []
    for run in survey.plan.runs:
        if survey.states[run.id].done:
            arm = arms.get(run.arm)
            source = survey.states[run.needs[0]].record if run.needs else None
            jobs.append(Job(run.arm if run.role == "eval" else "trial", arm.fit(study, n),
                            arm.model_spec(study, run, splits, None, source), run.id,
                            run.needs[0] if run.needs and arm.loads_weights else None))
    for search in survey.plan.searches:
        if not search.trials:
            continue
        arm = arms.get(search.arm)
        context = arm.context(study, search, Replay(survey))
        for trial in sorted(store.search_dir(root, search.key).glob("trial_*/trial.json")):
            values = json.loads(trial.read_text())["hyperparameters"]["values"]
            fit, spec, _ = arm.trial(study, splits, context, values)
            start = spec.initial_weights
            needs = start[1] if start and start[0] == WEIGHTS_OF else None
            jobs.append(Job("trial", fit, dataclasses.replace(spec, initial_weights=None), needs=needs))
    return sorted(jobs, key=lambda job: job.needs is not None)


def run_runner(study, results):
    """``(wall, accuracies, parts, processes)``: the runner's wall time, test accuracies per arm, where its time
    went (all its processes together, as ``run -v`` prints it) and how many processes shared it."""
    import io

    from widthvsprune import arms, data, run_study
    from widthvsprune.store import results as results_module

    data.load(study.dataset, study.validation_fraction, study.data_seed)  # warm the file cache
    start = time.perf_counter()
    result = run_study(study, results, stream=io.StringIO())
    wall = time.perf_counter() - start
    survey = results_module.survey(study, pathlib.Path(results) / study.name)
    records = [r for r in survey.records() if r.get("status") == "ok" and r.get("role") == "eval"]
    names = [arm.name for arm in arms.of(study)]
    return (wall, {name: [r["test_accuracy"] for r in records if r["arm"] == name] for name in names},
            result.timings, result.workers)


def run_naive(study, jobs):
    """The seed notebook's way: one compile + fit(validation_data) + evaluate per model, in sequence."""
    from widthvsprune import data, families
    from widthvsprune.engines.tf_keras import pruning
    from widthvsprune.engines.tf_keras.backend import keras

    splits = data.load(study.dataset, study.validation_fraction, study.data_seed)
    x, y = splits.x_train, splits.y_train
    accuracies = {}
    trained = {}

    def compile_(model, recipe, lr):
        optimizer = keras.optimizers.SGD(lr, momentum=0.9) if recipe.optimizer == "sgd" else keras.optimizers.Adam(lr)
        model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])

    start = time.perf_counter()
    for job in jobs:
        spec, recipe = job.spec, job.fit
        keras.utils.set_random_seed(int(spec.seed))
        model = families.get_family(spec.family).build(spec.widths, splits.input_shape, splits.num_classes, keras)
        callbacks = []
        if job.needs is not None:
            model.set_weights(trained[job.needs])
        if spec.prune is not None:
            model, _ = pruning.wrap(model, spec.prune)
            callbacks = pruning.callbacks([model], [spec.prune], defer_masks=False)
        compile_(model, recipe, spec.learning_rate)
        per_epoch = -(-len(x) // recipe.batch_size)
        epochs, rest = (recipe.epochs, 0) if recipe.max_steps is None else divmod(recipe.max_steps, per_epoch)
        fit = dict(batch_size=recipe.batch_size, validation_data=(splits.x_val, splits.y_val), callbacks=callbacks,
                   verbose=0)
        model.fit(x, y, epochs=epochs, **fit)
        if rest:  # the narrow arm's last, partial epoch
            model.fit(x[: rest * recipe.batch_size], y[: rest * recipe.batch_size], epochs=1, **fit)
        if spec.prune is not None:
            model = pruning.strip(model)
            compile_(model, recipe, spec.learning_rate)
        if job.id is not None and job.arm in ("baseline", "trial"):
            trained[job.id] = model.get_weights()
        if job.arm != "trial":
            accuracies.setdefault(job.arm, []).append(model.evaluate(splits.x_test, splits.y_test, verbose=0)[1])
    return time.perf_counter() - start, accuracies


def training_flops(study, jobs):
    """Floating-point operations of all trainings: 2 x 3 x multiply-adds x examples (forward and backward)."""
    from widthvsprune import data, sizes
    from widthvsprune.engines.tf_keras import models

    splits = data.load(study.dataset, study.validation_fraction, study.data_seed)
    total, samples = 0, 0
    for job in jobs:
        model = models.build(job.spec.family, job.spec.widths, splits.input_shape, splits.num_classes)
        macs = sizes.flops(models.layer_weights(model))
        per_epoch = -(-len(splits.x_train) // job.fit.batch_size)
        steps = job.fit.max_steps or job.fit.epochs * per_epoch
        n = min(len(splits.x_train) * steps // per_epoch, steps * job.fit.batch_size)
        total += 6 * macs * n
        samples += n
    return total, samples


def child(args):
    import dataclasses

    from widthvsprune import engines

    # The engine's framework is imported before timing (the naive way is always tf_keras); the runner's imports
    # are timed apart.
    start = time.perf_counter()
    engines.load(args.engine if args.approach == "runner" else "tf_keras")
    imports = time.perf_counter() - start
    study = dataclasses.replace(load_workload(args.workload, args.workdir), engine=args.engine)
    parts, processes = {}, 1
    if args.approach == "runner":
        wall, accuracies, parts, processes = run_runner(study, args.results)
    else:
        wall, accuracies = run_naive(study, trainings_of(study, args.reference))
    # Peak resident memory of this process plus its largest helper process (the runner's workers).
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = {"wall": wall, "accuracies": accuracies, "peak_rss_mb": rss / 1024, "parts": {"imports": imports, **parts},
           "processes": processes}
    if args.approach == "naive":
        jobs = trainings_of(study, args.reference)
        out["flops"], out["samples"] = training_flops(study, jobs)
        out["trainings"] = len(jobs)
        out["peak_gflops"] = peak_matmul_gflops()
    print("RESULT " + json.dumps(out), flush=True)


# --------------------------------------------------------------------------
# The driver: alternate the two approaches and report.


def spawn(*argv, cache=None):
    """A child run; ``cache``: the jax engine's compilation cache folder (``None``: none at all)."""
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    environment.pop("JAX_COMPILATION_CACHE_DIR", None)
    if cache is None:
        environment["WIDTHVSPRUNE_COMPILATION_CACHE"] = "0"
    else:
        environment.pop("WIDTHVSPRUNE_COMPILATION_CACHE", None)
        environment["WIDTHVSPRUNE_JAX_CACHE"] = str(cache)
    result = subprocess.run([sys.executable, __file__, "--child", *argv], capture_output=True, text=True,
                            env=environment)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode or not lines:
        sys.exit(f"benchmark child failed ({' '.join(argv)}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def mean(values):
    return sum(values) / len(values) if values else float("nan")


SHOWN = ("imports", "setup", "compiling", "training", "proposals", "records", "surveys", "waiting", "reports")


def show_parts(label, run):
    """One line: where a runner's time went (all its processes together) and the training share of its wall."""
    parts = run["parts"]
    shown = "  ".join(f"{p} {parts[p]:.1f}" for p in SHOWN if p in parts)
    share = parts.get("training", 0.0) / (run["wall"] * max(1, run["processes"]))
    programs = f", {parts['programs']} programs compiled" if parts.get("programs") else ""
    if parts.get("searches ahead"):
        programs += f", {parts['searches ahead']:g} search(es) run ahead"
    print(f"  {label}: wall {run['wall']:.1f} s, {run['processes']} process(es){programs}; seconds: {shown}; "
          f"training share {share:.0%}", flush=True)


def bench(workload, engine, repeats, workdir):
    runner, naive, warm = [], [], []
    reference = None
    for rep in range(repeats):
        results = tempfile.mkdtemp(prefix=f"{workload}-{engine}-runner-", dir=workdir)
        cache = tempfile.mkdtemp(prefix="cache-", dir=workdir)  # empty: a first run
        runner.append(spawn("--workload", workload, "--engine", engine, "--approach", "runner", "--results", results,
                            "--workdir", workdir, cache=cache))
        again = tempfile.mkdtemp(prefix=f"{workload}-{engine}-warm-", dir=workdir)
        warm.append(spawn("--workload", workload, "--engine", engine, "--approach", "runner", "--results", again,
                          "--workdir", workdir, cache=cache))  # the programs the first run compiled
        reference = reference or results
        naive.append(spawn("--workload", workload, "--engine", engine, "--approach", "naive", "--reference",
                           reference, "--workdir", workdir))
        print(f"  {workload} ({engine}) repeat {rep + 1}: runner {runner[-1]['wall']:.1f}s "
              f"(warm cache {warm[-1]['wall']:.1f}s), naive {naive[-1]['wall']:.1f}s", flush=True)
        show_parts("runner, cold cache", runner[-1])
        show_parts("runner, warm cache", warm[-1])
    t_runner = statistics.median(r["wall"] for r in runner)
    t_naive = statistics.median(r["wall"] for r in naive)
    info = naive[-1]
    ratio = t_naive / t_runner
    print(f"\n== {workload}, engine {engine}: {info['trainings']} trainings, {info['samples']:,} training samples, "
          f"{info['flops'] / 1e9:.1f} GFLOP of training arithmetic")
    print(f"{'':>22}{'naive':>12}{'widthvsprune':>14}")
    print(f"{'wall time (s)':>22}{t_naive:>12.1f}{t_runner:>14.1f}")
    print(f"{'samples / s':>22}{info['samples'] / t_naive:>12,.0f}{info['samples'] / t_runner:>14,.0f}")
    print(f"{'peak memory (MB)':>22}{max(r['peak_rss_mb'] for r in naive):>12.0f}"
          f"{max(r['peak_rss_mb'] for r in runner):>14.0f}")
    peak = info["peak_gflops"]
    print(f"{'GFLOP/s achieved':>22}{info['flops'] / 1e9 / t_naive:>12.2f}{info['flops'] / 1e9 / t_runner:>14.2f}")
    print(f"{'of peak':>22}{info['flops'] / 1e9 / t_naive / peak:>12.2%}{info['flops'] / 1e9 / t_runner / peak:>14.2%}"
          f"   (peak: {peak:.1f} GFLOP/s, float32 2048^3 matmul)")
    for arm in ("baseline", "pruned", "narrow"):
        a = [v for r in naive for v in r["accuracies"][arm]]
        b = [v for r in runner for v in r["accuracies"][arm]]
        print(f"{'test acc ' + arm:>22}{mean(a):>12.4f}{mean(b):>14.4f}")
    print(f"{'ratio (naive/ours)':>22}{ratio:>12.2f}")
    print(f"{'ratio, warm cache':>22}{t_naive / statistics.median(r['wall'] for r in warm):>12.2f}")
    return ratio


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", choices=["quickstart", "seed_cnn", "mnist1d", "mnist_convnet", "resnet20", "all"],
                        default="all",
                        help="seed_cnn: the seed notebook's CNN on MNIST-shaped synthetic data; mnist1d: "
                             "studies/mnist1d.py's CNN, trimmed; mnist_convnet: keras.io's simple MNIST convnet "
                             "on 8,000 synthetic images; resnet20: a CIFAR-size ResNet-20 on 2,000 synthetic "
                             "images; all: the five")
    parser.add_argument("--engine", choices=["tf_keras", "jax", "both"], default="both",
                        help="the runner's engine (the naive way is always one tf_keras fit per model)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--approach", choices=["runner", "naive"], help=argparse.SUPPRESS)
    parser.add_argument("--results", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    workdir = tempfile.mkdtemp(prefix="widthvsprune-bench-")
    print(f"cores: {os.cpu_count()}, repeats: {args.repeats}, alternating runner / naive in fresh processes")
    ratios = {}
    everything = ["seed_cnn", "mnist1d", "mnist_convnet", "resnet20", "quickstart"]
    for workload in (everything if args.workload == "all" else [args.workload]):
        for engine in (["tf_keras", "jax"] if args.engine == "both" else [args.engine]):
            ratios[workload, engine] = bench(workload, engine, args.repeats, workdir)
    print()
    for (workload, engine), ratio in ratios.items():
        if workload != "quickstart":
            print(f"{workload} speedup ({engine}): {ratio:.2f}")
    for (workload, engine), ratio in ratios.items():
        if workload == "quickstart":
            print(f"speedup ({engine}): {ratio:.2f}")


if __name__ == "__main__":
    main()
