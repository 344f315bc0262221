"""The quickstart's trainings on the jax engine, and the same on tf_keras's packed ``fit``.

The workload is the quickstart study's list of trainings (digits, MLP
128x64), in four packs, one per stage:

1. 3 baselines: 12 epochs, batch 32, Adam at 1e-3, seeds 0-2;
2. 12 pruned fine-tunes of those baselines: 8 epochs, ``layerwise`` to 50, 80,
   90 and 95% sparsity, a mask update every 5 steps until half the fine-tune;
3. 24 narrow search trials: 6 per sparsity, widths of assorted splits solved
   within the pruned model's nonzero count, log-uniform learning rates in
   [1e-4, 3e-2], 20 epochs, validated after the last epoch only;
4. 12 narrow retrains: each sparsity's best trial, seeds 0-2, 20 epochs.

Each engine runs in its own fresh process (``--engine``). For each pack the
script prints wall time, compile time (jax), training samples per second
(examples x epochs over all models, divided by the pack's wall time) and the
mean accuracy of its models (test; validation for the trials). ``--naive``
also times the notebook way on tf_keras: one ``compile`` + ``fit`` +
``evaluate`` per model, in sequence.

Usage::

    python benchmarks/jax_engine.py                  # jax, then tf_keras's packed fit
    python benchmarks/jax_engine.py --engine jax     # one engine, in this process
    python benchmarks/jax_engine.py --naive          # also the naive way (about 80 s)
"""

import argparse
import json
import math
import pathlib
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDE = (128, 64)
SPARSITIES = (0.5, 0.8, 0.9, 0.95)
SEEDS = (0, 1, 2)
BATCH, LR = 32, 1e-3
BASELINE_EPOCHS, FINETUNE_EPOCHS = 12, 8
NARROW_EPOCHS = BASELINE_EPOCHS + FINETUNE_EPOCHS
TRIALS_PER_SPARSITY = 6


# --------------------------------------------------------------------------
# The workload (pure: no framework).


def pruned_nonzeros(sparsity, input_shape, num_classes):
    """Nonzero parameters of the wide MLP with every kernel at ``sparsity`` (tfmot's kept counts, biases dense)."""
    from widthvsprune import masks

    sizes = [math.prod(input_shape)] + list(WIDE) + [num_classes]
    return sum(masks.kept_count(a * b, sparsity) + b for a, b in zip(sizes, sizes[1:]))


def trials(input_shape, num_classes):
    """``(sparsity, widths, learning_rate)`` of the 24 search trials: random splits and rates, fixed seed."""
    import numpy as np

    from widthvsprune import budgets

    rng = np.random.default_rng(2024)
    out = []
    for sparsity in SPARSITIES:
        budget = pruned_nonzeros(sparsity, input_shape, num_classes)
        for _ in range(TRIALS_PER_SPARSITY):
            multipliers = 4.0 ** rng.uniform(-1, 1, size=len(WIDE) - 1)
            proportions = budgets.split_proportions(WIDE, multipliers)
            widths = budgets.solve_widths("mlp", budget, proportions, input_shape, num_classes).widths
            out.append((sparsity, tuple(int(w) for w in widths), float(10 ** rng.uniform(-4, math.log10(3e-2)))))
    return out


def best_per_sparsity(trial_list, val_accuracies):
    best = {}
    for (sparsity, widths, lr), acc in zip(trial_list, val_accuracies):
        if sparsity not in best or acc > best[sparsity][2]:
            best[sparsity] = (widths, lr, acc)
    return {s: (w, lr) for s, (w, lr, _) in best.items()}


def schedule(splits):
    from widthvsprune import schedules

    return schedules.schedule_steps(len(splits.x_train), BATCH, FINETUNE_EPOCHS, 5, 0, 0.5)


def row(name, models, epochs, n_train, seconds, accuracy, compile_seconds=None):
    return {"pack": name, "models": models, "seconds": seconds, "compile_seconds": compile_seconds,
            "samples_per_second": models * epochs * n_train / seconds, "mean_accuracy": accuracy}


# --------------------------------------------------------------------------
# The jax engine.


def run_jax():
    import numpy as np

    start = time.perf_counter()
    from widthvsprune import data
    from widthvsprune.engines import base, load

    engine = load("jax")
    splits = data.load("digits")
    setup = time.perf_counter() - start
    n, shape, classes = len(splits.x_train), splits.input_shape, splits.num_classes
    rows = []

    def train(name, pack, accuracy="test_accuracy"):
        outcomes = engine.train(pack, splits)
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
        stats = engine.stats
        rows.append(row(name, len(outcomes), pack.epochs, n, stats["seconds"],
                        float(np.mean([getattr(o, accuracy) for o in outcomes])), stats["compile_seconds"]))
        return outcomes

    baselines = train("baseline", base.Pack(
        tuple(base.ModelSpec("mlp", WIDE, seed=s, learning_rate=LR) for s in SEEDS), BATCH, "adam", BASELINE_EPOCHS))
    steps = schedule(splits)
    train("pruned", base.Pack(tuple(
        base.ModelSpec("mlp", WIDE, seed=s, learning_rate=LR, initial_weights=tuple(b.weights),
                       prune=base.PruneSpec("layerwise", sparsity, 0.0, 3, steps))
        for s, b in zip(SEEDS, baselines) for sparsity in SPARSITIES), BATCH, "adam", FINETUNE_EPOCHS))
    trial_list = trials(shape, classes)
    searched = train("narrow trials", base.Pack(
        tuple(base.ModelSpec("mlp", w, seed=SEEDS[0], learning_rate=lr) for _, w, lr in trial_list), BATCH, "adam",
        NARROW_EPOCHS, validate="last_epoch", test=False, weights=False), accuracy="val_accuracy")
    best = best_per_sparsity(trial_list, [o.val_accuracy for o in searched])
    train("narrow retrains", base.Pack(tuple(
        base.ModelSpec("mlp", best[sparsity][0], seed=s, learning_rate=best[sparsity][1])
        for sparsity in SPARSITIES for s in SEEDS), BATCH, "adam", NARROW_EPOCHS))
    return {"engine": "jax", "setup_seconds": setup, "rows": rows, "best": {str(k): v for k, v in best.items()}}


# --------------------------------------------------------------------------
# tf_keras: the packed fit of ``widthvsprune.training`` (and the naive way).


def run_tf_keras(naive=False):
    start = time.perf_counter()
    from widthvsprune import Pruning, Recipe, data, models, pruning, training

    splits = data.load("digits")
    setup = time.perf_counter() - start
    n, shape, classes = len(splits.x_train), splits.input_shape, splits.num_classes
    rows = []

    def accuracy(model):
        return training.evaluate(model, splits.x_test, splits.y_test)[1]

    def timed(name, epochs, fn):
        begin = time.perf_counter()
        branches, accuracies = fn()
        rows.append(row(name, len(branches), epochs, n, time.perf_counter() - begin,
                        sum(accuracies) / len(accuracies)))
        return branches

    def baselines():
        branches = [models.build("mlp", WIDE, shape, classes, seed=s) for s in SEEDS]
        training.fit_packed(branches, splits, Recipe(epochs=BASELINE_EPOCHS, batch_size=BATCH, learning_rate=LR),
                            list(SEEDS))
        return branches, [accuracy(b) for b in branches]

    wide = timed("baseline", BASELINE_EPOCHS, baselines)
    steps = schedule(splits)
    spec = Pruning(variant="layerwise", frequency=5, end_fraction=0.5)

    def finetunes():
        branches, targets, seeds = [], [], []
        for seed, baseline in zip(SEEDS, wide):
            for sparsity in SPARSITIES:
                model = models.build("mlp", WIDE, shape, classes)
                model.set_weights(baseline.get_weights())
                branches.append(pruning.wrap(model, pruning.make_schedule(sparsity, spec, steps)))
                targets.append(sparsity)
                seeds.append(seed)
        training.fit_packed(branches, splits, Recipe(epochs=FINETUNE_EPOCHS, batch_size=BATCH, learning_rate=LR),
                            seeds, callbacks=pruning.callbacks(spec, targets, steps, branches, seeds))
        return branches, [accuracy(pruning.strip(b)) for b in branches]

    timed("pruned", FINETUNE_EPOCHS, finetunes)
    trial_list = trials(shape, classes)
    val = []

    def search():
        branches = [models.build("mlp", w, shape, classes, seed=SEEDS[0]) for _, w, _ in trial_list]
        histories, _, _ = training.fit_packed(
            branches, splits, Recipe(epochs=NARROW_EPOCHS, batch_size=BATCH), [SEEDS[0]] * len(branches),
            learning_rates=[lr for _, _, lr in trial_list], validate="last_epoch")
        val.extend(h[-1]["val_accuracy"] for h in histories)
        return branches, val

    timed("narrow trials", NARROW_EPOCHS, search)
    best = best_per_sparsity(trial_list, val)

    def retrains():
        configs = [(best[s][0], best[s][1], seed) for s in SPARSITIES for seed in SEEDS]
        branches = [models.build("mlp", w, shape, classes, seed=seed) for w, _, seed in configs]
        training.fit_packed(branches, splits, Recipe(epochs=NARROW_EPOCHS, batch_size=BATCH), [c[2] for c in configs],
                            learning_rates=[c[1] for c in configs])
        return branches, [accuracy(b) for b in branches]

    timed("narrow retrains", NARROW_EPOCHS, retrains)
    result = {"engine": "tf_keras packed", "setup_seconds": setup, "rows": rows,
              "best": {str(k): v for k, v in best.items()}}
    if naive:
        result["naive"] = run_naive(splits, trial_list, best, steps, spec)
    return result


def run_naive(splits, trial_list, best, steps, spec):
    """One ``compile`` + ``fit(validation_data=...)`` + ``evaluate`` per model, as the seed notebook does."""
    from widthvsprune import Recipe, models, pruning, training

    shape, classes = splits.input_shape, splits.num_classes
    begin, count = time.perf_counter(), 0

    def fit(model, epochs, lr, callbacks=()):
        nonlocal count
        training.compile_model(model, Recipe(epochs=epochs, batch_size=BATCH, learning_rate=lr))
        model.fit(splits.x_train, splits.y_train, batch_size=BATCH, epochs=epochs,
                  validation_data=(splits.x_val, splits.y_val), verbose=0, callbacks=list(callbacks))
        model.evaluate(splits.x_test, splits.y_test, verbose=0)
        count += 1
        return model

    baselines = [fit(models.build("mlp", WIDE, shape, classes, seed=s), BASELINE_EPOCHS, LR) for s in SEEDS]
    for baseline in baselines:
        for sparsity in SPARSITIES:
            model = models.build("mlp", WIDE, shape, classes)
            model.set_weights(baseline.get_weights())
            wrapped = pruning.wrap(model, pruning.make_schedule(sparsity, spec, steps))
            fit(wrapped, FINETUNE_EPOCHS, LR, [pruning.sparsity.UpdatePruningStep()])
    for _, widths, lr in trial_list:
        fit(models.build("mlp", widths, shape, classes, seed=SEEDS[0]), NARROW_EPOCHS, lr)
    for sparsity in SPARSITIES:
        for seed in SEEDS:
            fit(models.build("mlp", best[sparsity][0], shape, classes, seed=seed), NARROW_EPOCHS, best[sparsity][1])
    return {"seconds": time.perf_counter() - begin, "models": count}


# --------------------------------------------------------------------------
# Reporting.


def print_result(result):
    print(f"\n{result['engine']} (imports and data: {result['setup_seconds']:.1f} s)")
    print(f"{'pack':<16} {'models':>6} {'wall s':>8} {'compile s':>10} {'samples/s':>11} {'mean acc':>9}")
    for r in result["rows"]:
        compile_s = "" if r["compile_seconds"] is None else f"{r['compile_seconds']:.2f}"
        print(f"{r['pack']:<16} {r['models']:>6} {r['seconds']:>8.2f} {compile_s:>10} "
              f"{r['samples_per_second']:>11,.0f} {r['mean_accuracy']:>9.4f}")
    total = sum(r["seconds"] for r in result["rows"])
    compile_total = sum(r["compile_seconds"] or 0.0 for r in result["rows"])
    models = sum(r["models"] for r in result["rows"])
    line = f"{'total':<16} {models:>6} {total:>8.2f}"
    if any(r["compile_seconds"] is not None for r in result["rows"]):
        line += f" {compile_total:>10.2f}"
    print(line)
    if "naive" in result:
        print(f"naive (one compile + fit + evaluate per model): {result['naive']['models']} models in "
              f"{result['naive']['seconds']:.1f} s")
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["jax", "tf_keras"], help="run one engine in this process")
    parser.add_argument("--naive", action="store_true", help="also time one compile + fit per model (tf_keras)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (with --engine)")
    args = parser.parse_args(argv)
    if args.engine:
        result = run_jax() if args.engine == "jax" else run_tf_keras(args.naive)
        print(json.dumps(result) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            print_result(result)
        return
    totals = {}
    for engine in ("jax", "tf_keras"):
        command = [sys.executable, __file__, "--engine", engine, "--json"] + (["--naive"] if args.naive else [])
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        totals[engine] = print_result(result)
    print(f"\ntraining wall time, jax engine vs tf_keras packed fit: {totals['jax']:.1f} s vs "
          f"{totals['tf_keras']:.1f} s ({totals['tf_keras'] / totals['jax']:.1f}x)")


if __name__ == "__main__":
    main()
