"""A results folder holds one study: another study's run is refused before training, study.json never replaced."""

import json
import subprocess
import sys

STUDY = """
from widthvsprune import Recipe, Study, Tuning

STUDY = Study(name="one", dataset="digits", family="model:a.keras", sparsities=(0.9,), seeds=(0,),
              baseline=Recipe(epochs=1, batch_size=64), finetune=Recipe(epochs=1, batch_size=64),
              tuning=Tuning(oracle="random", trials=2, controls=False))
"""

MODELS = """
import keras

for name, units in (("a", 16), ("b", 20)):
    keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(units, activation="relu"),
                      keras.layers.Dense(10)]).save(f"{name}.keras")
"""


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "widthvsprune", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def records(root):
    return sorted(str(p) for p in root.glob("runs/*/seed-*/record.json"))


def test_a_different_study_in_the_same_folder_stops_before_training_and_keeps_study_json(tmp_path):
    subprocess.run([sys.executable, "-c", MODELS], check=True, cwd=tmp_path, timeout=300)
    (tmp_path / "one.py").write_text(STUDY)
    first = cli("run", "one.py", "--out", "out", "--workers", "1", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    root = tmp_path / "out" / "one"
    study_json, done = (root / "study.json").read_bytes(), records(root)
    assert json.loads(study_json)["family"] == "model:a.keras" and done

    for extra in ([], ["--dry-run"]):
        other = cli("run", "one.py", "--out", "out", "--set", "family=model:b.keras", "--set", "finetune.epochs=2",
                    *extra, cwd=tmp_path)
        assert other.returncode == 2
        assert other.stderr.strip().splitlines() == [
            "error: study: Expected the study that 'out/one/study.json' records, or another name "
            "(--set name=...) or another --out for a different study. Received: a study 'one' that differs in "
            "family ('model:a.keras' there, 'model:b.keras' here), finetune.epochs (1 there, 2 here), "
            "widths ([16] there, [20] here)"]
        assert (root / "study.json").read_bytes() == study_json and records(root) == done

    renamed = cli("run", "one.py", "--out", "out", "--set", "family=model:b.keras", "--set", "name=one_b",
                  "--workers", "1", cwd=tmp_path)
    assert renamed.returncode == 0, renamed.stderr
    assert json.loads((tmp_path / "out" / "one_b" / "study.json").read_text())["family"] == "model:b.keras"

    more = cli("run", "one.py", "--out", "out", "--set", "seeds=[0,1]", "--workers", "1", cwd=tmp_path)
    assert more.returncode == 0, more.stderr  # more seeds of the same study: study.json covers both
    assert json.loads((root / "study.json").read_text())["seeds"] == [0, 1]
    resumed = cli("run", root, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert set(done) <= set(records(root))
