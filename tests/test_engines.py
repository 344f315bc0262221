"""Choosing the engine: auto, the run keys, and the quickstart on JAX where TensorFlow cannot be imported."""

import importlib.util
import os
import pathlib
import subprocess
import sys

import pandas as pd
from conftest import tiny_study

from widthvsprune import Tuning, engines, planning

QUICKSTART = pathlib.Path(__file__).resolve().parent.parent / "studies" / "quickstart.py"
SMALLER = ["--set", "seeds=[0,1]", "--set", "sparsities=[0.5,0.9]", "--set", "baseline.epochs=3",
           "--set", "finetune.epochs=2", "--set", "tuning.trials=2"]
NO_TENSORFLOW = """
import sys


class _NoTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("tensorflow", "tf_keras", "tensorflow_model_optimization"):
            raise ImportError(f"{name} cannot be imported here")


sys.meta_path.insert(0, _NoTensorFlow())
"""


def test_auto_is_jax_where_jax_is_installed(monkeypatch):
    assert engines.resolve("tf_keras") == "tf_keras" and engines.resolve("jax") == "jax"
    assert engines.resolve("auto") == ("jax" if importlib.util.find_spec("jax") else "tf_keras")
    monkeypatch.setattr(engines.importlib.util, "find_spec", lambda name: None)
    assert engines.resolve("auto") == "tf_keras"


def test_the_engine_is_part_of_every_run_key():
    def keys(engine):
        study = tiny_study(engine=engine, tuning=Tuning(controls=True))
        return {(r.arm, r.seed, r.target): r.key for r in planning.plan(study).runs}

    tf_keras, jax = keys("tf_keras"), keys("jax")
    assert tf_keras.keys() == jax.keys() and not set(tf_keras.values()) & set(jax.values())


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "widthvsprune", *map(str, args)], capture_output=True, text=True,
                          timeout=900, env=env)


def test_the_quickstart_runs_on_jax_where_tensorflow_cannot_be_imported_and_writes_the_same_tables(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(NO_TENSORFLOW)
    blocked = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])}
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
    assert "tuned vs tuned: large-sparse beat small-dense at" in on_jax.stdout
