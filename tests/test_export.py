"""Taking a studied model home: `widthvsprune export` and `export_model`, loaded in a Python without widthvsprune."""

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

STUDY = """
from widthvsprune import Pruning, Recipe, Study, Tuning

STUDY = Study(name="home", dataset="digits", family="mlp", widths=(24, 12), sparsities=(0.5, 0.9), seeds=(0, 1),
              baseline=Recipe(epochs=2, batch_size=64), finetune=Recipe(epochs=2, batch_size=64),
              pruning=Pruning(frequency=5, end_fraction=0.75), tuning=Tuning(oracle="random", trials=2))
"""

# Run in a fresh Python that never imports widthvsprune: load the file, evaluate it on the study's test split.
LOAD = """
import json, sys
import numpy as np
import keras

model = keras.models.load_model(sys.argv[1])
with np.load(sys.argv[2]) as f:
    x, y = f["x"], f["y"]
_, accuracy = model.evaluate(x, y, batch_size=64, verbose=0)
predicted = np.argmax(model.predict(x, batch_size=64, verbose=0), axis=-1)
print(json.dumps({
    "evaluate": float(accuracy),
    "argmax": float(np.mean(predicted == y)),
    "nonzero": int(sum(np.count_nonzero(w) for w in model.get_weights())),
    "shapes": [list(w.shape) for w in model.get_weights()],
    "imported": "widthvsprune" in sys.modules,
}))
"""


def cli(*args):
    return subprocess.run([sys.executable, "-m", "widthvsprune", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A finished tiny study and its test split as an npz: ``(results folder, test.npz)``."""
    from widthvsprune import data

    base = tmp_path_factory.mktemp("export")
    (base / "home.py").write_text(STUDY)
    result = cli("run", base / "home.py", "--out", base / "out", "--workers", "1")
    assert result.returncode == 0, result.stderr
    splits = data.load("digits")
    np.savez(base / "test.npz", x=splits.x_test, y=splits.y_test)
    return base / "out" / "home", base / "test.npz"


def load_elsewhere(model_file, test, tmp_path):
    script = tmp_path / "load.py"
    script.write_text(LOAD)
    result = subprocess.run([sys.executable, str(script), str(model_file), str(test)], capture_output=True,
                            text=True, timeout=300, cwd=tmp_path, env={**_env(), "PYTHONPATH": ""})
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _env():
    import os

    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def row(root, arm, sparsity, seed, tuning="tuned"):
    runs = pd.read_csv(root / "runs.csv")
    found = runs[(runs.arm == arm) & (runs.role == "eval") & np.isclose(runs.target_sparsity, sparsity)
                 & (runs.seed == seed) & (runs.tuning == tuning)]
    assert len(found) == 1
    return found.iloc[0]


@pytest.mark.parametrize("arm,sparsity,seed,tuning", [
    ("pruned", 0.9, 1, "tuned"),
    ("narrow", 0.9, 0, "tuned"),
    ("pruned", 0.5, 0, "untuned"),
])
def test_an_exported_model_loads_without_widthvsprune_and_scores_its_recorded_accuracy(study, tmp_path, arm,
                                                                                      sparsity, seed, tuning):
    root, test = study
    target = tmp_path / f"{arm}.keras"
    result = cli("export", root, "--arm", arm, "--sparsity", sparsity, "--seed", seed, "--tuning", tuning,
                 "-o", target)
    assert result.returncode == 0, result.stderr
    assert result.stderr == "" and target.is_file()
    expected = row(root, arm, sparsity, seed, tuning)
    record = json.loads((root / "runs" / expected.key / f"seed-{seed}" / "record.json").read_text())
    found = load_elsewhere(target, test, tmp_path)
    assert found["imported"] is False
    assert found["argmax"] == pytest.approx(record["test_accuracy"], abs=1e-9)
    assert found["evaluate"] == pytest.approx(record["test_accuracy"], abs=1e-6)
    assert found["nonzero"] == record["nonzero_params"] == expected.nonzero_params
    widths = [int(w) for w in expected.widths.split("x")]
    assert [s[-1] for s in found["shapes"][0:-2:2]] == widths  # a pruned model keeps its wide widths
    if arm == "pruned":
        assert widths == [24, 12] and found["nonzero"] < sum(np.prod(s) for s in found["shapes"])


def test_export_model_returns_the_keras_model_from_python(study, tmp_path):
    from widthvsprune import data, export_model

    root, _ = study
    model = export_model(root, arm="baseline", seed=0, path=tmp_path / "baseline.keras")
    splits = data.load("digits")
    accuracy = float(np.mean(np.argmax(model.predict(splits.x_test, verbose=0), axis=-1) == splits.y_test))
    assert accuracy == pytest.approx(row(root, "baseline", 0.0, 0).test_accuracy, abs=1e-9)
    assert (tmp_path / "baseline.keras").is_file()


@pytest.mark.parametrize("args,line", [
    (["--arm", "pruned", "--sparsity", "0.9"],
     "error: seed: Expected one of [0, 1] for arm 'pruned' (tuned) at sparsity 0.9 (several exist; name one). "
     "Received: seed=None"),
    (["--arm", "pruned", "--seed", "0"],
     "error: sparsity: Expected one of [0.5, 0.9] for arm 'pruned' (tuned) (several exist; name one). "
     "Received: sparsity=None"),
    (["--arm", "pruned", "--sparsity", "0.8", "--seed", "0"],
     "error: sparsity: Expected one of [0.5, 0.9] for arm 'pruned' (tuned). Received: sparsity=0.8"),
    (["--arm", "prunned", "--sparsity", "0.9", "--seed", "0"],
     "error: arm: Expected one of ['baseline', 'dense_finetuned', 'narrow', 'pruned'] for the arm. "
     "Received: arm='prunned'"),
    (["--arm", "pruned", "--sparsity", "0.9", "--seed", "7"],
     "error: seed: Expected one of [0, 1] for arm 'pruned' (tuned) at sparsity 0.9. Received: seed=7"),
])
def test_a_missing_or_ambiguous_selection_is_one_line_listing_what_exists(study, tmp_path, args, line):
    root, _ = study
    result = cli("export", root, *args, "-o", tmp_path / "m.keras")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "m.keras").exists()
