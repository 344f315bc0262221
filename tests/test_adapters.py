"""Each library's private names live in one adapter module, and a test names the release that lost one."""

import importlib.metadata
import pathlib
import re

import numpy as np
import pytest

from widthvsprune.adapters import keras_tuner as kt_adapter
from widthvsprune.adapters import sklearn as sk_adapter
from widthvsprune.run import tuning

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "widthvsprune"


def test_keras_tuner_still_has_every_private_name_the_adapter_uses():
    version = importlib.metadata.version("keras-tuner")
    assert kt_adapter.missing() == [], (
        f"KerasTuner {version} no longer has {kt_adapter.missing()}: update widthvsprune/adapters/keras_tuner.py")


def test_scikit_learn_still_has_every_private_name_the_adapter_uses():
    version = importlib.metadata.version("scikit-learn")
    assert sk_adapter.missing() == [], (
        f"scikit-learn {version} no longer has {sk_adapter.missing()}: update widthvsprune/adapters/sklearn.py")


def test_keras_still_has_every_private_name_the_adapter_uses():
    pytest.importorskip("jax")
    from widthvsprune.adapters import keras as keras_adapter

    version = importlib.metadata.version("keras")
    assert keras_adapter.missing() == [], (
        f"Keras {version} no longer has {keras_adapter.missing()}: update widthvsprune/adapters/keras.py")


def test_tf_keras_still_has_every_private_name_the_adapter_uses():
    pytest.importorskip("tf_keras")
    from widthvsprune.adapters import tf_keras as tf_keras_adapter

    version = importlib.metadata.version("tf-keras")
    assert tf_keras_adapter.missing() == [], (
        f"tf_keras {version} no longer has {tf_keras_adapter.missing()}: update widthvsprune/adapters/tf_keras.py")


def test_the_fast_posterior_equals_scikit_learns_public_predict_bit_for_bit():
    from sklearn.gaussian_process import GaussianProcessRegressor, kernels

    rng = np.random.default_rng(0)
    x, y = rng.uniform(size=(7, 3)), rng.normal(size=7)
    gpr = GaussianProcessRegressor(kernel=kernels.ConstantKernel(1.0) * kernels.Matern(nu=2.5), normalize_y=True,
                                   alpha=1e-4, random_state=0).fit(x, y)
    for point in rng.uniform(size=(20, 1, 3)):
        mean, std = tuning._posterior(gpr, point)
        expected_mean, expected_std = gpr.predict(point, return_std=True)
        assert mean.tobytes() == np.squeeze(expected_mean).tobytes()
        assert std.tobytes() == np.squeeze(expected_std).tobytes()


@pytest.mark.parametrize("kernel", ["matern", "constant_times_matern"])
def test_each_row_of_a_batched_posterior_equals_scikit_learns_predict_on_that_row_alone(kernel):
    from sklearn.gaussian_process import GaussianProcessRegressor, kernels

    rng = np.random.default_rng(1)
    x, y = rng.uniform(size=(8, 3)), rng.normal(size=8)
    chosen = kernels.Matern(nu=2.5) if kernel == "matern" else kernels.ConstantKernel(1.0) * kernels.Matern(nu=2.5)
    gpr = GaussianProcessRegressor(kernel=chosen, normalize_y=True, alpha=1e-4, random_state=0).fit(x, y)
    for rows in (1, 3, 4, 5, 50):
        points = rng.uniform(size=(rows, 3))
        mean, std = tuning._posterior(gpr, points)
        alone = [gpr.predict(points[i:i + 1], return_std=True) for i in range(rows)]
        assert mean.tobytes() == np.array([np.squeeze(m) for m, _ in alone]).tobytes()
        assert std.tobytes() == np.array([np.squeeze(s) for _, s in alone]).tobytes()


def private_uses(path, library):
    """Lines of ``path`` that import a library's private modules."""
    return [i for i, line in enumerate(path.read_text().splitlines(), 1) if re.search(rf"\b{library}\.src\b", line)]


def test_only_the_keras_adapter_imports_keras_src():
    found = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in PACKAGE.rglob("*.py")
             if p.name != "keras.py" or p.parent.name != "adapters" for i in private_uses(p, "keras")]
    assert found == []


def test_only_the_tf_keras_adapter_names_tf_keras_src_outside_its_engine():
    found = [f"{p.relative_to(PACKAGE.parent)}:{i}" for p in PACKAGE.rglob("*.py")
             if p.parent.name not in ("adapters", "tf_keras") for i in private_uses(p, "tf_keras")]
    assert found == []


def test_tuning_reads_no_private_attribute_of_another_library():
    source = (PACKAGE / "run" / "tuning.py").read_text()
    assert re.findall(r"\._[a-z]\w*", source) == []
