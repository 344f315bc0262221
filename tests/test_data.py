"""Datasets: digits offline, npz validated with clear errors, no downloads."""

import numpy as np
import pytest

from widthvsprune import data
from widthvsprune.errors import DataError


def test_digits_splits_are_disjoint_and_fixed():
    a = data.load("digits", validation_fraction=0.1, data_seed=0)
    b = data.load("digits", validation_fraction=0.1, data_seed=0)
    assert a.x_train.shape[1:] == (8, 8, 1) and a.num_classes == 10
    assert len(a.x_train) + len(a.x_val) + len(a.x_test) == 1797
    assert len(a.x_val) == round(0.1 * (1797 - 360))
    np.testing.assert_array_equal(a.y_val, b.y_val)
    c = data.load("digits", validation_fraction=0.1, data_seed=1)
    np.testing.assert_array_equal(a.y_test, c.y_test)  # the test split never moves
    assert not np.array_equal(a.y_val, c.y_val)


def write_npz(path, **arrays):
    base = dict(x_train=np.random.rand(50, 4, 4).astype("float32"), y_train=np.arange(50) % 3,
                x_test=np.random.rand(20, 4, 4).astype("float32"), y_test=np.arange(20) % 3)
    base.update(arrays)
    base = {k: v for k, v in base.items() if v is not None}
    np.savez(path, **base)
    return f"npz:{path}"


def test_npz_loads(tmp_path):
    splits = data.load(write_npz(tmp_path / "ok.npz"))
    assert splits.input_shape == (4, 4) and splits.num_classes == 3
    assert len(splits.x_train) + len(splits.x_val) == 50


@pytest.mark.parametrize("arrays,message", [
    (dict(y_test=None), r"Expected keys \['x_train', 'y_train', 'x_test', 'y_test'\].*lacks \['y_test'\]"),
    (dict(y_train=np.arange(49) % 3), r"Expected one label per example in y_train \(50\)"),
    (dict(x_train=np.full((50, 4, 4), np.nan, "float32")), r"Expected finite values in x_train.*800 non-finite"),
    (dict(y_test=np.arange(20) % 5), r"Expected labels in \[0, 3\).*labels from 0 to 4"),
    (dict(y_test=-(np.arange(20) % 3)), r"Expected labels in \[0, 3\).*labels from -2 to 2"),
    (dict(x_test=np.random.rand(20, 5, 5)), r"Expected x_train and x_test with the same example shape"),
    (dict(y_train=np.linspace(0, 1, 50)), r"Expected integer labels in y_train"),
])
def test_bad_npz_names_the_dataset_and_the_problem(tmp_path, arrays, message):
    name = write_npz(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message) as info:
        data.load(name)
    assert f"Received: dataset={name!r}" in str(info.value)


def test_missing_npz(tmp_path):
    with pytest.raises(DataError, match=r"Expected an existing .npz file. Received: dataset='npz:"):
        data.load(f"npz:{tmp_path / 'nope.npz'}")


def test_unreadable_npz(tmp_path):
    path = tmp_path / "text.npz"
    path.write_text("not a zip")
    with pytest.raises(DataError, match=r"Expected a readable .npz file"):
        data.load(f"npz:{path}")


def test_offline_keras_dataset_names_the_cache_file(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setenv("HOME", str(tmp_path))  # an empty Keras cache
    monkeypatch.setattr(data.urllib.request, "urlretrieve", no_network)
    with pytest.raises(DataError) as info:
        data.load("mnist")
    message = str(info.value)
    assert str(tmp_path / ".keras" / "datasets" / "mnist.npz") in message
    assert "Received: dataset='mnist'" in message


def test_keras_cache_files_are_read_without_a_framework(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    cache = data.keras_cache_dir()
    cache.mkdir(parents=True)
    x = (np.arange(30 * 28 * 28) % 256).astype("uint8").reshape(30, 28, 28)
    y = (np.arange(30) % 10).astype("uint8")
    np.savez(cache / "mnist.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    splits = data.load("mnist", validation_fraction=0.1)
    assert splits.input_shape == (28, 28) and splits.num_classes == 10
    assert len(splits.x_train) == 27 and len(splits.x_test) == 10
    assert splits.x_test.dtype == np.float32 and splits.x_test.max() <= 1.0
    np.testing.assert_allclose(splits.x_test[3], x[3] / 255.0)


def small_arrays(shift=0.0):
    rng = np.random.default_rng(0)
    x = rng.random((80, 6)).astype("float32") + np.float32(shift)
    return x[:60], np.arange(60) % 3, x[60:], np.arange(20) % 3


def test_a_registered_datasets_fingerprint_is_in_every_run_key_and_changes_with_its_content():
    from widthvsprune import Recipe, Study, Tuning, register_dataset
    from widthvsprune.plan import planner

    def keys(shift):
        register_dataset("shifting", lambda: small_arrays(shift), overwrite=True)
        study = Study(name="k", dataset="shifting", family="mlp", widths=(8,), sparsities=(0.5,),
                      baseline=Recipe(epochs=1), finetune=Recipe(epochs=1), tuning=Tuning(trials=2), engine="jax")
        return {r.key for r in planner.plan(study).runs}, data.fingerprint("shifting")

    same, fingerprint = keys(0.0)
    assert keys(0.0) == (same, fingerprint) and len(fingerprint) == 16
    changed, other = keys(1e-3)
    assert other != fingerprint and same and changed and not same & changed  # no run key is shared
    splits = data.load("shifting")
    assert splits.num_classes == 3 and len(splits.x_train) + len(splits.x_val) == 60
    np.testing.assert_array_equal(splits.x_test, small_arrays(1e-3)[2])


def test_a_loader_that_returns_bad_arrays_is_one_line_naming_the_dataset():
    from widthvsprune import register_dataset

    register_dataset("bad_labels", lambda: (np.zeros((5, 2)), np.array([0.5] * 5), np.zeros((2, 2)), np.zeros(2)),
                     overwrite=True)
    with pytest.raises(DataError, match=r"^dataset: Expected integer labels in y_train. Received: dataset='bad_"):
        data.load("bad_labels")
    with pytest.raises(ValueError, match="not a shipped dataset"):
        register_dataset("digits", small_arrays)


STUDY_WITH_DATA = """
import os

import numpy as np
from sklearn.datasets import load_digits

from widthvsprune import Recipe, Study, Tuning, register_dataset


def load():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls.txt"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return x[:1400], y[:1400], x[1400:], y[1400:]


register_dataset("my_digits", load)
STUDY = Study(name="mine", dataset="my_digits", family="mlp", widths=(24, 12), sparsities=(0.5, 0.9), seeds=(0, 1),
              baseline=Recipe(epochs=1, batch_size=64), finetune=Recipe(epochs=1, batch_size=64),
              tuning=Tuning(oracle="random", trials=2, controls=False))
"""


def test_a_registered_dataset_trains_with_two_workers_that_read_it_from_the_study_folder(tmp_path):
    import subprocess
    import sys

    import pandas as pd

    (tmp_path / "mine.py").write_text(STUDY_WITH_DATA)
    result = subprocess.run([sys.executable, "-m", "widthvsprune", "run", "mine.py", "--out", "out", "--workers",
                             "2"], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # (The helper loads the data when it starts, whether or not it claims a pack: one loader call below says that
    # it read the arrays from the study's folder.)
    import re

    counted = [int(n) for n in re.findall(r"^\[(\d+) left \| ", result.stdout, re.M)]
    steps = {a - b for a, b in zip(counted, counted[1:])}
    assert counted[-1] == 0 and counted.count(0) == 1 and steps <= {0, 1}  # one down per model, no skip
    assert len(set((tmp_path / "calls.txt").read_text().split())) == 1  # the loader ran in one process only
    root = tmp_path / "out" / "mine"
    with np.load(root / "data" / "my_digits.npz") as f:
        assert f["x_test"].shape == (397, 64) and len(str(f["fingerprint"])) == 16
    runs = pd.read_csv(root / "runs.csv")
    assert set(runs.dataset) == {"my_digits"} and (runs.test_examples == 397).all()
    status = subprocess.run([sys.executable, "-m", "widthvsprune", "status", root], capture_output=True, text=True,
                            timeout=300, cwd=tmp_path / "out")  # from records alone: no loader registered there
    assert status.returncode == 0, status.stderr
    assert all(", 0 failed, 0 missing" in line for line in status.stdout.splitlines() if " done, " in line)


def test_arrays_given_to_a_study_are_a_dataset_named_by_their_content():
    from widthvsprune import Recipe, Study, Tuning
    from widthvsprune.errors import StudyError
    from widthvsprune.plan import planner

    def study(arrays):
        return Study(name="a", dataset=arrays, family="mlp", widths=(8,), sparsities=(0.5,),
                     baseline=Recipe(epochs=1), finetune=Recipe(epochs=1), tuning=Tuning(trials=2), engine="jax")

    first = study(small_arrays(0.0))
    assert first.dataset.startswith("arrays-") and len(first.dataset) == len("arrays-") + 16
    assert study(small_arrays(0.0)).dataset == first.dataset  # the same arrays: the same name, in any process
    as_dict = study(dict(zip(("x_train", "y_train", "x_test", "y_test"), small_arrays(0.0))))
    assert as_dict.dataset == first.dataset
    other = study(small_arrays(1e-3))
    assert other.dataset != first.dataset
    assert not {r.key for r in planner.plan(first).runs} & {r.key for r in planner.plan(other).runs}
    np.testing.assert_array_equal(data.load(first.dataset).x_test, small_arrays(0.0)[2])
    assert first.to_dict()["dataset"] == first.dataset  # study.json holds the name, not the arrays
    with pytest.raises(StudyError) as error:
        study(small_arrays(0.0)[:3])
    assert error.value.problems == ["dataset: Expected 4 arrays (x_train, y_train, x_test, y_test). Received: tuple "
                                    "of 3"]


HELPER = """
import json, sys
from widthvsprune import data, store
from widthvsprune.study import study_from_dict

# What a helper process does: it never saw the arrays, only the study's folder.
root, study = sys.argv[1], json.load(open(sys.argv[1] + "/study.json"))
data.use_materialised(root, study["dataset"])
study = study_from_dict(study)
splits = data.load(study.dataset, study.validation_fraction, study.data_seed)
print(json.dumps({"dataset": study.dataset, "fingerprint": data.fingerprint(study.dataset),
                  "x_test": float(splits.x_test.sum()), "n": len(splits.x_train)}))
"""


def test_a_helper_that_never_saw_the_arrays_reads_them_from_the_study_folder(tmp_path):
    import json
    import subprocess
    import sys

    from widthvsprune import Recipe, Study, Tuning, run_study

    arrays = small_arrays(0.5)
    study = Study(name="arr", dataset=arrays, family="mlp", widths=(8,), sparsities=(0.5,), seeds=(0,),
                  baseline=Recipe(epochs=1, batch_size=16), finetune=Recipe(epochs=1, batch_size=16),
                  tuning=Tuning(oracle="random", trials=1, controls=False, rescore=0), engine="jax")
    assert not run_study(study, out=tmp_path, workers=1, stream=open(tmp_path / "log.txt", "w")).failed
    root = tmp_path / "arr"
    (tmp_path / "helper.py").write_text(HELPER)
    result = subprocess.run([sys.executable, str(tmp_path / "helper.py"), str(root)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["dataset"] == study.dataset and seen["fingerprint"] == data.fingerprint(study.dataset)
    assert seen["x_test"] == float(np.asarray(arrays[2], np.float32).sum())
    assert seen["n"] == len(data.load(study.dataset).x_train)
