"""MNIST-1D: generated offline with the package's published defaults, split like every dataset, no network."""

import json
import os
import pathlib
import random
import socket
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

from widthvsprune import Study, StudyError, data
from widthvsprune.run import preflight

pytest.importorskip("mnist1d")

# Facts of the published mnist1d_data.pkl (github.com/greydanus/mnist1d), which the generated arrays equal.
TRAIN_CLASS_COUNTS = [398, 396, 411, 394, 394, 402, 401, 404, 402, 398]
TEST_CLASS_COUNTS = [102, 104, 89, 106, 106, 98, 99, 96, 98, 102]
FIRST_TRAIN_LABELS = [2, 6, 4, 5, 6, 6, 6, 0, 3, 1]
FIRST_TRAIN_STEPS = [-0.33200567, -0.47191037, -0.77869708, -1.00974083, -0.88235257]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection or download raises."""

    def refuse(*args, **kwargs):
        raise AssertionError("MNIST-1D must load without the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    import mnist1d.data
    import requests

    monkeypatch.setattr(requests.Session, "request", refuse)
    monkeypatch.setattr(mnist1d.data, "get_dataset", refuse)
    monkeypatch.setattr(data, "_GENERATED", {})  # generate again, under the patches
    monkeypatch.setenv(data.DATA_CACHE, "0")


def test_the_no_network_fixture_refuses_downloads(no_network, tmp_path):
    from mnist1d.data import get_dataset_args

    args = get_dataset_args()
    for attempt in (lambda: urllib.request.urlopen(args.url), lambda: socket.create_connection(("github.com", 443))):
        with pytest.raises(AssertionError, match="without the network"):
            attempt()


def test_generates_offline_with_the_published_defaults(no_network):
    x_train, y_train, x_test, y_test = data._mnist1d()
    assert x_train.shape == (4000, 40) and x_test.shape == (1000, 40)
    assert x_train.dtype == np.float32 and y_train.dtype == np.int32
    assert np.bincount(y_train).tolist() == TRAIN_CLASS_COUNTS
    assert np.bincount(y_test).tolist() == TEST_CLASS_COUNTS
    assert y_train[:10].tolist() == FIRST_TRAIN_LABELS
    np.testing.assert_allclose(x_train[0, :5], FIRST_TRAIN_STEPS, atol=1e-6)
    everything = np.concatenate([x_train, x_test]).astype("float64")
    assert abs(everything.mean()) < 1e-6 and abs(everything.std() - 1) < 1e-6  # standardized over all 5,000


def test_splits_hold_out_the_validation_fraction_of_the_training_sequences(no_network):
    splits = data.load("mnist1d", validation_fraction=0.1, data_seed=0)
    assert splits.x_train.shape == (3600, 40) and splits.x_val.shape == (400, 40)
    assert splits.x_test.shape == (1000, 40) and splits.num_classes == 10
    assert splits.input_shape == (40,)
    np.testing.assert_array_equal(np.bincount(np.concatenate([splits.y_train, splits.y_val])), TRAIN_CLASS_COUNTS)


def test_loading_is_deterministic_and_leaves_global_random_state_alone(no_network):
    random.seed(5)
    np.random.seed(5)
    expected_python, expected_numpy = random.random(), np.random.random()
    random.seed(5)
    np.random.seed(5)
    a = data.load("mnist1d")
    assert (random.random(), np.random.random()) == (expected_python, expected_numpy)
    a.x_test[:] = 0  # callers get copies; the kept arrays do not change
    b = data.load("mnist1d")
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_val, b.y_val)
    assert np.count_nonzero(b.x_test) > 0


def test_a_study_can_name_mnist1d_and_a_family_must_accept_sequences(tmp_path):
    splits = preflight(Study(name="m", dataset="mnist1d", family="cnn1d"), tmp_path)
    assert splits.input_shape == (40,)
    with pytest.raises(StudyError, match=r"family: Expected a family that accepts inputs of shape \(40,\)"):
        preflight(Study(name="m", dataset="mnist1d", family="resnet"), tmp_path)


LOAD_1000 = """
import json, sys
from widthvsprune import data
arrays = data._mnist1d(1000)
print(json.dumps({"digest": data.arrays_digest(arrays), "generator_imported": "mnist1d" in sys.modules}))
"""


def load_elsewhere(cache):
    """MNIST-1D (1,000 sequences) loaded by a new process with ``cache`` as its dataset cache."""
    env = dict(os.environ, **{data.DATA_CACHE: str(cache)})
    done = subprocess.run([sys.executable, "-c", LOAD_1000], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture
def fresh(monkeypatch, tmp_path):
    """Nothing generated in this process; the dataset cache an empty folder (returned)."""
    monkeypatch.setattr(data, "_GENERATED", {})
    monkeypatch.setenv(data.DATA_CACHE, str(tmp_path / "datasets"))
    return tmp_path / "datasets"


def test_generated_once_then_read_from_the_cache_by_other_processes_without_the_generator(fresh):
    generated = data._mnist1d(1000)
    [cached] = fresh.iterdir()
    assert cached.name.startswith("mnist1d-1000-") and cached.suffix == ".npz"
    written = cached.read_bytes()
    for _ in range(2):
        assert load_elsewhere(fresh) == {"digest": data.arrays_digest(generated), "generator_imported": False}
    assert cached.read_bytes() == written  # read, never written again


def test_a_damaged_or_changed_cache_file_is_generated_again_and_replaced(fresh, monkeypatch):
    generated = data._mnist1d(1000)
    [cached] = fresh.iterdir()
    whole = cached.read_bytes()
    with np.load(cached) as f:
        changed = {k: f[k] for k in f.files}
    changed["x_train"] = changed["x_train"] + np.float32(1e-3)  # another dataset under the same digest
    np.savez(cached, **changed)
    for damage in (lambda: None, lambda: cached.write_bytes(whole[: len(whole) // 2])):
        damage()
        monkeypatch.setattr(data, "_GENERATED", {})
        again = data._mnist1d(1000)
        assert data.arrays_digest(again) == data.arrays_digest(generated)
        assert load_elsewhere(fresh)["generator_imported"] is False  # replaced by a valid file
        np.savez(cached, **changed)


def test_without_a_usable_cache_folder_each_process_generates_and_nothing_is_written(fresh, monkeypatch, tmp_path):
    expected = data.arrays_digest(data._mnist1d(1000))
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    for cache in ("0", str(blocked / "datasets")):
        monkeypatch.setattr(data, "_GENERATED", {})
        monkeypatch.setenv(data.DATA_CACHE, cache)
        assert data.arrays_digest(data._mnist1d(1000)) == expected
    assert load_elsewhere("0") == {"digest": expected, "generator_imported": True}
    assert blocked.read_text() == "not a folder"


def test_the_cache_folder_is_the_users_own_or_under_xdg_cache_home():
    home = os.path.expanduser("~")
    assert data.generated_cache_dir({}) == pathlib.Path(home, ".cache", "widthvsprune", "datasets")
    assert data.generated_cache_dir({"XDG_CACHE_HOME": "/x"}) == pathlib.Path("/x/widthvsprune/datasets")
    assert data.generated_cache_dir({"XDG_CACHE_HOME": "/x", data.DATA_CACHE: "/mine"}) == pathlib.Path("/mine")
    assert data.generated_cache_dir({data.DATA_CACHE: "0"}) is None
    a = data.generated_file("mnist1d:1000", ("numpy",), {data.DATA_CACHE: "/c"})
    b = data.generated_file("mnist1d:1000", ("numpy", "scipy"), {data.DATA_CACHE: "/c"})
    assert a.parent == pathlib.Path("/c") and a.name.startswith("mnist1d-1000-") and a != b
