"""Helper processes and their settings."""

import os

import pytest
from threadpoolctl import threadpool_info

from widthvsprune.run import fresh_process, processes


def blas_threads():
    return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]


def test_blas_is_single_threaded_inside_a_study_only():
    before = blas_threads()
    assert before, "NumPy's BLAS was not found"
    with processes.single_threaded_blas():
        assert all(n == 1 for n in blas_threads())
    assert blas_threads() == before


def test_a_swallowed_ctrl_c_is_not_printed_and_stops_the_study_at_the_next_check(capsys):
    import sys
    import types

    import pytest

    interrupts = processes.Interrupts()
    with interrupts:
        interrupts.check()  # nothing pending
        # What Python does when a callback whose exceptions are ignored (a garbage-collection hook) raised it:
        sys.unraisablehook(types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=KeyboardInterrupt(),
                                                 exc_traceback=None, err_msg=None, object=None))
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()
    assert capsys.readouterr().err == ""
    assert sys.unraisablehook is sys.__unraisablehook__ or sys.unraisablehook is not interrupts._unraisable


def _dies(code, stream):
    os._exit(code)  # as a process killed while it starts, before it reports anything


def test_a_fresh_process_that_dies_without_a_word_is_reported_never_waited_for():
    with pytest.raises(RuntimeError, match=r"^the study's process stopped: it ended with exit code 3 before it "
                                           r"reported$"):
        fresh_process.call_in_fresh_process(_dies, (3,), {})

