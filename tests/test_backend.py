"""The one module that imports TensorFlow: thread settings."""

from threadpoolctl import threadpool_info

from widthvsprune import backend


def blas_threads():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_is_single_threaded_inside_a_study_only():
    before = blas_threads()
    assert before, "NumPy's BLAS was not found"
    with backend.single_threaded_blas():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
