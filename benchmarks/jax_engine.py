"""The quickstart's trainings in four packs, on the jax engine and on the tf_keras engine.

The workload is the quickstart study's list of trainings (digits, MLP
128x64), in four packs, one per stage:

1. 3 baselines: 12 epochs, batch 32, Adam at 1e-3, seeds 0-2;
2. 12 pruned fine-tunes of those baselines: 8 epochs, ``layerwise`` to 50, 80,
   90 and 95% sparsity, a mask update every 5 steps until half the fine-tune;
3. 24 narrow search trials: 6 per sparsity, widths of assorted splits solved
   within the pruned model's nonzero count, log-uniform learning rates in
   [1e-4, 3e-2], 20 epochs, validated after the last epoch only;
4. 12 narrow retrains: each sparsity's best trial, seeds 0-2, 20 epochs.

Each engine runs in its own fresh process (``--engine``), through the engine
seam (``engine.train(pack, splits)``). For each pack the script prints wall
time, compile time (jax), training samples per second (examples x epochs over
all models, divided by the pack's wall time) and the mean accuracy of its
models (test; validation for the trials). The whole-study comparison with the
naive way is ``benchmarks/throughput.py``.

Usage::

    python benchmarks/jax_engine.py                  # jax, then tf_keras
    python benchmarks/jax_engine.py --engine jax     # one engine, in this process
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
    from widthvsprune.pruning import masks

    sizes = [math.prod(input_shape)] + list(WIDE) + [num_classes]
    return sum(masks.kept_count(a * b, sparsity) + b for a, b in zip(sizes, sizes[1:]))


def trials(input_shape, num_classes):
    """``(sparsity, widths, learning_rate)`` of the 24 search trials: random splits and rates, fixed seed."""
    import numpy as np

    from widthvsprune.families import budgets

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
    from widthvsprune.pruning import schedules

    return schedules.schedule_steps(len(splits.x_train), BATCH, FINETUNE_EPOCHS, 5, 0, 0.5)


def row(name, models, epochs, n_train, seconds, accuracy, compile_seconds=None):
    return {"pack": name, "models": models, "seconds": seconds, "compile_seconds": compile_seconds,
            "samples_per_second": models * epochs * n_train / seconds, "mean_accuracy": accuracy}


# --------------------------------------------------------------------------
# One engine: the four packs through the engine seam.


def run_engine(name):
    import numpy as np

    start = time.perf_counter()
    from widthvsprune import data
    from widthvsprune.engines import base, load

    engine = load(name)
    splits = data.load("digits")
    setup = time.perf_counter() - start
    n, shape, classes = len(splits.x_train), splits.input_shape, splits.num_classes
    rows = []

    def train(pack_name, pack, accuracy="test_accuracy"):
        began = time.perf_counter()
        outcomes = engine.train(pack, splits)
        seconds = time.perf_counter() - began
        assert all(o.ok for o in outcomes), [o.error for o in outcomes if not o.ok]
        compile_seconds = getattr(engine, "stats", {}).get("compile_seconds")
        rows.append(row(pack_name, len(outcomes), pack.epochs, n, seconds,
                        float(np.mean([getattr(o, accuracy) for o in outcomes])), compile_seconds))
        return outcomes

    baselines = train("baseline", base.Pack(
        tuple(base.ModelSpec("mlp", WIDE, seed=s, learning_rate=LR) for s in SEEDS), BATCH, "adam", BASELINE_EPOCHS))
    steps = schedule(splits)
    train("pruned", base.Pack(tuple(
        base.ModelSpec("mlp", WIDE, seed=s, learning_rate=LR, initial_weights=tuple(b.weights),
                       prune=base.PruneSpec(sparsity, steps))
        for s, b in zip(SEEDS, baselines) for sparsity in SPARSITIES), BATCH, "adam", FINETUNE_EPOCHS))
    trial_list = trials(shape, classes)
    searched = train("narrow trials", base.Pack(
        tuple(base.ModelSpec("mlp", w, seed=SEEDS[0], learning_rate=lr) for _, w, lr in trial_list), BATCH, "adam",
        NARROW_EPOCHS, validate="last_epoch", test=False, weights=False), accuracy="val_accuracy")
    best = best_per_sparsity(trial_list, [o.val_accuracy for o in searched])
    train("narrow retrains", base.Pack(tuple(
        base.ModelSpec("mlp", best[sparsity][0], seed=s, learning_rate=best[sparsity][1])
        for sparsity in SPARSITIES for s in SEEDS), BATCH, "adam", NARROW_EPOCHS))
    return {"engine": name, "setup_seconds": setup, "rows": rows, "best": {str(k): v for k, v in best.items()}}


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
    return total


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=["jax", "tf_keras"], help="run one engine in this process")
    parser.add_argument("--json", action="store_true", help="print the result as JSON (with --engine)")
    args = parser.parse_args(argv)
    if args.engine:
        result = run_engine(args.engine)
        print(json.dumps(result) if args.json else "", end="\n" if args.json else "")
        if not args.json:
            print_result(result)
        return
    totals = {}
    for engine in ("jax", "tf_keras"):
        command = [sys.executable, __file__, "--engine", engine, "--json"]
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if done.returncode != 0:
            raise SystemExit(done.stderr[-3000:])
        result = json.loads(done.stdout.strip().splitlines()[-1])
        totals[engine] = print_result(result)
    print(f"\ntraining wall time, jax engine vs tf_keras engine: {totals['jax']:.1f} s vs "
          f"{totals['tf_keras']:.1f} s ({totals['tf_keras'] / totals['jax']:.1f}x)")


if __name__ == "__main__":
    main()
