"""Shared fixtures. Tests never download: they use scikit-learn's bundled digits."""

import atexit
import os
import random
import shutil
import tempfile

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Keras 3 runs JAX in the test process, so the jax engine and the tf_keras engine (whose tf_keras is a separate
# package) both load here; KerasTuner's oracles work on any backend.
os.environ.setdefault("KERAS_BACKEND", "jax")
# Generated datasets (MNIST-1D) are kept for this session's tests and their processes, not in the user's cache.
_DATASETS = tempfile.mkdtemp(prefix="widthvsprune-datasets-")
os.environ.setdefault("WIDTHVSPRUNE_DATA_CACHE", _DATASETS)
atexit.register(shutil.rmtree, _DATASETS, True)


@pytest.fixture(scope="module")
def engine():
    """The jax engine, shared by a module's tests."""
    from widthvsprune.engines import jax as jax_engine

    return jax_engine.create()


@pytest.fixture(scope="module")
def splits():
    """A 300-example digits split (:func:`jax_helpers.small_splits`); a module with data of its own overrides it."""
    from jax_helpers import small_splits

    return small_splits()


@pytest.fixture(autouse=True)
def _seed_everything():
    random.seed(0)
    np.random.seed(0)


def tiny_study(name="tiny", **overrides):
    """A study that trains in seconds: a small MLP on digits, two epochs per model, two trials per search, no
    controls."""
    from widthvsprune import Pruning, Recipe, Study, Tuning

    fields = dict(
        name=name,
        dataset="digits",
        family="mlp",
        widths=(24, 12),
        sparsities=(0.5, 0.9),
        seeds=(0, 1),
        baseline=Recipe(epochs=2, batch_size=64),
        finetune=Recipe(epochs=2, batch_size=64),
        pruning=Pruning(frequency=5, end_fraction=0.75),
        tuning=Tuning(oracle="random", trials=2, controls=False),
    )
    fields.update(overrides)
    return Study(**fields)


def fit_alone(model, splits, epochs, batch_size, seed, callbacks=(), learning_rate=1e-3, optimizer="adam",
              **options):
    """Trains one tf_keras model with the engine's packed trainer (a pack of one); returns its history."""
    from widthvsprune.engines.base import ModelSpec, Pack
    from widthvsprune.engines.tf_keras import training

    pack = Pack((ModelSpec("mlp", (1,), seed, learning_rate),), batch_size, optimizer, epochs, **options)
    histories, diverged, _ = training.fit_packed([model], splits, pack, callbacks)
    assert not diverged
    return histories[0]


TENSORFLOW = ("tensorflow", "tf_keras", "tensorflow_model_optimization")


def without_imports(folder, names=TENSORFLOW):
    """The environment of a Python in which importing any of ``names`` fails (a ``sitecustomize`` in ``folder``)."""
    (folder / "sitecustomize.py").write_text(
        "import sys\n\n\n"
        "class _Blocked:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {tuple(names)!r}:\n"
        "            raise ImportError(f'{name} cannot be imported here')\n\n\n"
        "sys.meta_path.insert(0, _Blocked())\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def runs_rows(path):
    """The rows of a ``runs.csv`` as written (text, cell for cell), sorted by key and seed, without the columns
    that may differ between two runs of one study: its name and the wall-time columns (``*_seconds``)."""
    import pandas as pd

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    kept = [c for c in table.columns if c != "study" and not c.endswith("_seconds")]
    return table.sort_values(["key", "seed"])[kept].values.tolist(), kept


def assert_same_runs(path, reference):
    """Asserts that two ``runs.csv`` files hold the same rows, bit for bit (:func:`runs_rows`)."""
    (rows, columns), (expected, expected_columns) = runs_rows(path), runs_rows(reference)
    assert columns == expected_columns
    assert len(rows) == len(expected)
    for row, wanted in zip(rows, expected):
        differ = {c: (a, b) for c, a, b in zip(columns, row, wanted) if a != b}
        assert not differ, f"run {row[columns.index('key')]} seed {row[columns.index('seed')]}: {differ}"


def search_of(plan, arm, target=0.0, tuning="tuned"):
    """The plan's search of ``arm`` at ``target``, or ``None``."""
    from widthvsprune.plan.planner import matching

    return next(iter(matching(plan.searches, arm=arm, target=target, tuning=tuning)), None)
