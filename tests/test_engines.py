"""Choosing the engine: auto, the run keys, and the quickstart on JAX where TensorFlow cannot be imported."""

import importlib.util
import pathlib
import subprocess
import sys

import pandas as pd
from conftest import tiny_study, without_imports

from widthvsprune import Tuning, engines
from widthvsprune.plan import planner

QUICKSTART = pathlib.Path(__file__).resolve().parent.parent / "studies" / "quickstart.py"
SMALLER = ["--set", "dataset='digits'", "--set", "seeds=[0,1]", "--set", "sparsities=[0.5,0.9]",
           "--set", "baseline.epochs=3", "--set", "finetune.epochs=2", "--set", "tuning.trials=2"]


def test_auto_picks_jax_where_it_is_faster(monkeypatch):
    assert engines.resolve("tf_keras", "mlp") == "tf_keras" and engines.resolve("jax", "seed_cnn") == "jax"
    has_jax = importlib.util.find_spec("jax") is not None
    assert engines.resolve("auto", "mlp") == ("jax" if has_jax else "tf_keras")
    monkeypatch.setattr(engines, "_gpu_for_jax", lambda: False)
    assert engines.resolve("auto", "seed_cnn") == ("jax" if has_jax else "tf_keras")  # batched convolutions
    assert engines.resolve("auto", "resnet") == "tf_keras"  # not measured faster on a CPU
    monkeypatch.setattr(engines, "_gpu_for_jax", lambda: True)
    assert engines.resolve("auto", "resnet") == ("jax" if has_jax else "tf_keras")
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: None)
    assert engines.resolve("auto", "mlp") == "tf_keras"


def test_the_engine_is_part_of_every_run_key():
    def keys(engine):
        study = tiny_study(engine=engine, tuning=Tuning(controls=True))
        return {(r.arm, r.seed, r.target): r.key for r in planner.plan(study).runs}

    tf_keras, jax = keys("tf_keras"), keys("jax")
    assert tf_keras.keys() == jax.keys() and not set(tf_keras.values()) & set(jax.values())


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "widthvsprune", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env=env)


def test_without_jax_the_jax_engine_says_which_extra_to_install_and_auto_takes_tf_keras(tmp_path):
    env = without_imports(tmp_path, ("jax",))
    refused = cli("run", QUICKSTART, "--out", tmp_path / "out", "--engine", "jax", env=env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: engine: Expected an engine whose packages are installed; 'jax' needs jax (pip install "
        "'widthvsprune[jax]'), or use engine 'tf_keras'. Received: engine='jax'"]
    assert not (tmp_path / "out" / "quickstart").exists()
    listed = cli("run", QUICKSTART, "--out", tmp_path / "out", "--dry-run", env=env)
    assert listed.returncode == 0 and "with engine tf_keras" in listed.stdout.splitlines()[0]


def test_the_quickstart_runs_on_jax_where_tensorflow_cannot_be_imported_and_writes_the_same_tables(tmp_path):
    blocked = without_imports(tmp_path)
    blocked.pop("KERAS_BACKEND", None)
    on_jax = cli("run", QUICKSTART, "--out", tmp_path / "jax", "--engine", "jax", *SMALLER, env=blocked)
    assert on_jax.returncode == 0, on_jax.stderr
    on_tf = cli("run", QUICKSTART, "--out", tmp_path / "tf_keras", "--engine", "tf_keras", *SMALLER)
    assert on_tf.returncode == 0, on_tf.stderr
    for table in ("runs.csv", "comparison.csv", "frontier.csv"):
        a = pd.read_csv(tmp_path / "jax" / "quickstart" / table)
        b = pd.read_csv(tmp_path / "tf_keras" / "quickstart" / table)
        assert list(a.columns) == list(b.columns), table
    runs_jax = pd.read_csv(tmp_path / "jax" / "quickstart" / "runs.csv")
    runs_tf = pd.read_csv(tmp_path / "tf_keras" / "quickstart" / "runs.csv")
    rows = ["arm", "tuning", "target_sparsity", "seed"]
    assert sorted(map(tuple, runs_jax[rows].values)) == sorted(map(tuple, runs_tf[rows].values))
    assert set(runs_jax.engine) == {"jax"} and set(runs_tf.engine) == {"tf_keras"}
    assert not set(runs_jax.key) & set(runs_tf.key)
    assert "best vs best: large-sparse won at" in on_jax.stdout
