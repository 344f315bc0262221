"""scikit-learn's private names used to evaluate a Gaussian process quickly (:mod:`widthvsprune.run.tuning`).

``GaussianProcessRegressor.predict(x, return_std=True)`` validates its input
on every call, which took most of the time of Bayesian optimization's
acquisition search (tens of thousands of one-point calls). The same
arithmetic written out needs the normalization of the targets the process
was fitted to, which scikit-learn keeps in private attributes. Tested
against ``predict`` itself (``tests/test_adapters.py``).
"""

#: Private attributes of a fitted ``GaussianProcessRegressor``.
PRIVATE = ("_y_train_mean", "_y_train_std")


def missing():
    """The names of :data:`PRIVATE` that a fitted ``GaussianProcessRegressor`` of the installed release lacks."""
    import numpy as np
    from sklearn.gaussian_process import GaussianProcessRegressor

    gpr = GaussianProcessRegressor(normalize_y=True).fit(np.array([[0.0], [1.0]]), np.array([0.0, 1.0]))
    return [f"GaussianProcessRegressor.{name}" for name in PRIVATE if not hasattr(gpr, name)]


def target_scale(gpr):
    """``(mean, std)`` of the targets a fitted ``GaussianProcessRegressor`` was normalized with."""
    return gpr._y_train_mean, gpr._y_train_std
