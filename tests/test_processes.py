"""Helper processes and their settings."""

from threadpoolctl import threadpool_info

from widthvsprune.running import processes


def blas_threads():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_is_single_threaded_inside_a_study_only():
    before = blas_threads()
    assert before, "NumPy's BLAS was not found"
    with processes.single_threaded_blas():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before
