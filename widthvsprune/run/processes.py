"""Helper processes that share a study with the process that started them.

A helper runs its own :class:`~widthvsprune.run.scheduler.Runner` on the
same results folder: the run locks split the work, exactly as for separately
started ``widthvsprune run`` commands. Helpers ignore Ctrl-C (the parent
stops them) and die with their parent, however it dies.
"""

import contextlib
import os
import signal
import sys
import threading

from threadpoolctl import threadpool_limits


def single_threaded_blas():
    """A context in which NumPy's BLAS uses one thread.

    The only BLAS work of a study is on small matrices (the Bayesian oracle's
    Gaussian process), where extra threads only spin on cores that the
    engine or another worker is using: with them, proposing a trial took
    several times longer.
    """
    return threadpool_limits(limits=1, user_api="blas")


@contextlib.contextmanager
def _sigint_ignored():
    """Ctrl-C ignored while children start: they inherit it, and Python then installs no KeyboardInterrupt."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Interrupts:
    """Remembers Ctrl-C, so that it stops the study even where a library swallows the KeyboardInterrupt.

    Python raises KeyboardInterrupt wherever the main thread happens to be;
    raised inside a callback whose exceptions are ignored (JAX's garbage
    collection hook, say), it would be printed with a traceback and lost.
    Inside this context Ctrl-C still raises at once; a swallowed one is not
    printed, and :meth:`check` raises it again at the runner's next safe point.
    """

    def __init__(self):
        self.requested = False
        self._previous = self._hook = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
            self._hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def _handle(self, signum, frame):
        self.requested = True
        raise KeyboardInterrupt

    def _unraisable(self, info):
        if issubclass(info.exc_type, KeyboardInterrupt):
            self.requested = True  # swallowed where it was raised: raised again by check()
            return
        self._hook(info)

    def check(self):
        if self.requested:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            sys.unraisablehook = self._hook


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped a study: its message says what is kept and how to resume."""


def queue():
    """A queue helper processes can put to (made in the context they are started with)."""
    import multiprocessing

    return multiprocessing.get_context("spawn").Queue()


def start(count, target, args):
    """Starts ``count`` helper processes running ``target(*args, index)`` (``index`` from 2)."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    helpers = []
    with _sigint_ignored():
        for index in range(2, count + 2):
            helper = context.Process(target=target, args=(*args, index), daemon=True)
            helper.start()
            helpers.append(helper)
    return helpers


def stop(helpers):
    """Kills the helpers now (their finished runs are on disk, written atomically)."""
    for helper in helpers:
        if helper.is_alive():
            helper.kill()
    for helper in helpers:
        helper.join()


def join(helpers):
    for helper in helpers:
        helper.join()


def die_with_parent():
    """Linux: this process gets SIGKILL when its parent dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


def exit_now(code, queues=()):
    """Leaves without the frameworks' slow interpreter teardown, which the parent would wait for.

    Everything a helper writes is on disk (atomically) before it calls this.
    What it put on ``queues`` is sent first: leaving while a queue's feeder
    thread writes would keep the queue's lock held forever, and the parent
    would wait for it.
    """
    for queue in queues:
        queue.close()
        queue.join_thread()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
