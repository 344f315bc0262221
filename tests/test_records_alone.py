"""A finished study's status, report and summary need only its study.json and records, not its family's code."""

import subprocess
import sys

import pandas as pd
import pytest

SCRIPT = """
import keras
from widthvsprune import Recipe, Study, Tuning, family_from_model, register_family, run_study

model = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Flatten(), keras.layers.Dense(16),
                          keras.layers.BatchNormalization(), keras.layers.Activation("relu"),  # its keys say how
                          keras.layers.Dense(10, activation="softmax")])                        # it was evaluated
register_family(family_from_model(model, name="my_mlp"))
study = Study(name="mine", dataset="digits", family="my_mlp", sparsities=(0.5, 0.9), seeds=(0,),
              baseline=Recipe(epochs=1, batch_size=64), finetune=Recipe(epochs=1, batch_size=64),
              tuning=Tuning(oracle="random", trials=2, controls=False))

if __name__ == "__main__":
    run_study(study, out="out", workers=1)
"""


def cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "widthvsprune", *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    base = tmp_path_factory.mktemp("alone")
    (base / "mine.py").write_text(SCRIPT)
    result = subprocess.run([sys.executable, "mine.py"], capture_output=True, text=True, timeout=600, cwd=base)
    assert result.returncode == 0, result.stderr[-2000:]
    return base


def test_status_report_and_summary_of_a_study_whose_family_a_script_registered(finished):
    root = finished / "out" / "mine"
    before = pd.read_csv(root / "runs.csv")
    (root / "runs.csv").unlink()
    status = cli("status", root, cwd=finished)
    assert status.returncode == 0, status.stderr
    lines = [line for line in status.stdout.splitlines() if " done, " in line]
    assert lines and all(", 0 failed, 0 missing" in line for line in lines)  # every run found under its key
    report = cli("report", root, cwd=finished)
    assert report.returncode == 0, report.stderr
    pd.testing.assert_frame_equal(pd.read_csv(root / "runs.csv"), before)  # rebuilt from the records alone
    summary = cli("summary", root, "--out", finished / "summary", cwd=finished)
    assert summary.returncode == 0, summary.stderr
    assert "my_mlp" not in summary.stderr and (finished / "summary" / "summary.csv").is_file()


def test_training_with_a_family_known_only_from_records_is_refused_in_one_line(finished):
    root = finished / "out" / "mine"
    records = sorted(root.glob("runs/*/seed-*/record.json"))
    records[0].unlink()
    result = cli("run", root, cwd=finished)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: family: Expected a family registered in this process (register_family in the script that defines "
        "it, or an existing model:PATH file) to build models. Received: family='my_mlp', known here only from a "
        "finished study's records"]
    assert not records[0].exists()


def test_export_of_a_script_registered_family_names_the_study_file_option(finished, tmp_path):
    root = finished / "out" / "mine"
    refused = cli("export", root, "--arm", "pruned", "--sparsity", "0.9", "-o", tmp_path / "m.keras", cwd=finished)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "--study FILE" in refused.stderr and not (tmp_path / "m.keras").exists()
    done = cli("export", root, "--arm", "pruned", "--sparsity", "0.9", "-o", tmp_path / "m.keras",
               "--study", "mine.py", cwd=finished)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "m.keras").is_file()
