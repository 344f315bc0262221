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
