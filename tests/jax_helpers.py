"""Shared pieces of the jax engine's tests: a small digits split and a fresh-process fallback."""

import os
import pathlib
import subprocess
import sys

from widthvsprune import data

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_engine_package():
    """``widthvsprune.engines.jax``, or ``None`` when Keras 3 was already imported with another backend."""
    try:
        from widthvsprune.engines import jax as jax_engine
    except RuntimeError:
        return None
    return jax_engine


def small_splits(n_train=300):
    """Digits with ``n_train`` training examples (300 at batch 32: nine full batches and a short one of 12)."""
    full = data.load("digits")
    return data.Splits(
        name="digits-small",
        x_train=full.x_train[:n_train],
        y_train=full.y_train[:n_train],
        x_val=full.x_val,
        y_val=full.y_val,
        x_test=full.x_test,
        y_test=full.y_test,
        num_classes=full.num_classes,
    )


def run_module_in_fresh_process(path):
    """Runs one test module with pytest in a new interpreter (where Keras 3 can still pick JAX)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("KERAS_BACKEND", None)
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
